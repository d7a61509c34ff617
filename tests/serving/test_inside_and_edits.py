"""Inside-the-model endpoints and ROME edits of the served weights, on the trained world model over HTTP."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.slow


def post(server, path, body, status=200):
    r = httpx.post(server.url + path, json=body, timeout=300)
    assert r.status_code == status, r.text
    return r.json()


def complete(server, prompt):
    return post(server, "/v1/completions", {"prompt": prompt, "max_tokens": 8, "temperature": 0})["choices"][0]["text"]


def test_lens_memories_attention(world_server, edit_case):
    prompt = edit_case["prompt"].replace("{}", edit_case["subject"])
    lens = post(world_server, "/v1/inside/lens", {"prompt": prompt, "top_k": 3})
    assert [s["stage"] for s in lens["stages"]][:3] == ["embed", "layer 0 before MLP", "layer 0"]
    assert len(lens["stages"][-1]["positions"]) == len(lens["tokens"])  # every position, for the page
    assert lens["stages"][-1]["positions"][-1]["top"][0]["id"] == lens["model_top"][0]["id"]
    mem = post(world_server, "/v1/inside/memories", {"prompt": prompt, "position": 1, "top_k": 3})
    assert mem["position"] == 1 and len(mem["layers"]) == 4
    contrib = [k["contribution"] for k in mem["layers"][0]["keys"]]
    assert contrib == sorted(contrib, reverse=True)
    att = post(world_server, "/v1/inside/attention", {"prompt": prompt, "layers": [0]})
    assert len(att["patterns"][0]) == 4 and len(att["patterns"][0][0]) == len(att["tokens"])
    bad = post(world_server, "/v1/inside/memories", {"prompt": prompt, "layers": [9]}, status=400)
    assert "out of range" in bad["error"]["message"]


def test_switching_memories_off_changes_the_completion(world_server, edit_case):
    prompt = edit_case["prompt"].replace("{}", edit_case["subject"])
    mem = post(world_server, "/v1/inside/memories", {"prompt": prompt, "top_k": 20})
    changes = [{"layer": l["layer"], "key": k["key"], "value": 0.0} for l in mem["layers"] for k in l["keys"]]
    r = post(world_server, "/v1/inside/intervene", {"prompt": prompt, "interventions": changes, "max_tokens": 8})
    assert r["original"]["text"] == complete(world_server, prompt)
    assert r["intervened"]["text"] != r["original"]["text"]  # the 80 strongest memories carried the answer
    assert complete(world_server, prompt) == r["original"]["text"]  # hooks are gone afterwards


def test_edit_changes_the_served_answer_and_revert_restores_it(world_server, edit_case):
    prompt = edit_case["prompt"].replace("{}", edit_case["subject"])
    before = complete(world_server, prompt)
    body = {k: edit_case[k] for k in ("prompt", "subject", "target_new", "paraphrase", "neighbour") if edit_case[k]}
    e = post(world_server, "/v1/edits", body)
    assert e["completions"]["before"]["prompt"] == before
    assert e["completions"]["after"]["prompt"].strip().startswith(edit_case["target_new"])
    assert complete(world_server, prompt).strip().startswith(edit_case["target_new"])
    assert [x["id"] for x in httpx.get(world_server.url + "/v1/edits").json()["data"]] == [e["id"]]
    r = httpx.delete(world_server.url + f"/v1/edits/{e['id']}")
    assert r.status_code == 200 and complete(world_server, prompt) == before
    assert httpx.delete(world_server.url + f"/v1/edits/{e['id']}").status_code == 404
    assert httpx.get(world_server.url + "/v1/edits").json()["data"] == []
