"""POST /v1/attribution/spans on a live server: the verbatim training spans of a prompt + completion of the world
model, checked against the training documents and lmlab.attribution.count; and the errors without an index."""

from __future__ import annotations

import httpx
import pytest

from lmlab.attribution import SuffixIndex, count
from lmlab.data import load_tokenizer_of
from tests.serving.conftest import API_KEY, LiveServer

pytestmark = pytest.mark.slow


def post(server, path, body, status=200, headers=None):
    r = httpx.post(server.url + path, json=body, timeout=300, headers=headers)
    assert r.status_code == status, r.text
    return r.json()


def test_spans_of_a_completion_are_verbatim_training_text(world_server, world_run, training_index, edit_case):
    prompt = edit_case["prompt"].replace("{}", edit_case["subject"])
    completion = post(world_server, "/v1/completions", {"prompt": prompt, "max_tokens": 12,
                                                       "temperature": 0})["choices"][0]["text"]
    text = prompt + completion
    r = post(world_server, "/v1/attribution/spans", {"text": text, "min_len": 3, "limit": 20, "documents": 2})
    assert r["text"] == text and r["index"]["splits"] == ["train"]
    assert r["spans"], "the trained world model repeats its training facts, so some span must be found"
    ix = SuffixIndex.open(world_run["data_dir"], training_index)
    tok = load_tokenizer_of(world_run["data_dir"])
    for s in r["spans"]:
        assert text[s["start"]:s["end"]] == s["text"] and s["length"] == s["token_end"] - s["token_start"] >= 3
        assert s["count"] == count(world_run["data_dir"], s["text"], index_dir=training_index) >= 1
        assert len(s["documents"]) == min(s["count"], 2)
        for d in s["documents"]:
            start, end = ix.corpus.document_bounds(d["document"])
            document = tok.decode(ix.corpus.tokens[start:end].tolist())
            assert d["match"] == s["text"] and d["before"] + d["match"] + d["after"] in document
    covered = {i for s in r["spans"] for i in range(s["start"], s["end"])}
    assert covered == {i for h in r["highlights"] for i in range(h["start"], h["end"])}
    rarest = post(world_server, "/v1/attribution/spans", {"text": text, "min_len": 3, "limit": 1})["spans"]
    assert len(r["spans"]) < 20 and [s["unigram_logprob"] for s in rarest] == [min(s["unigram_logprob"]
                                                                                   for s in r["spans"])]


def test_span_requests_are_validated_by_field(world_server):
    for body, field in (({"text": ""}, "text"), ({"text": "a", "limit": 0}, "limit"),
                        ({"text": "a", "min_len": 0}, "min_len"), ({"text": "a", "colour": 1}, "colour")):
        err = post(world_server, "/v1/attribution/spans", body, status=400)["error"]
        assert err["param"] == field and err["type"] == "invalid_request_error"
    long = " ".join(str(i) for i in range(2000))  # digits are single tokens: well over max_trace_tokens
    err = post(world_server, "/v1/attribution/spans", {"text": long}, status=400)["error"]
    assert err["param"] == "text" and "max_trace_tokens=2048" in err["message"]
    assert post(world_server, "/v1/attribution/spans", {"text": "The capital of", "min_len": 50})["spans"] == []


@pytest.fixture(scope="module")
def unindexed_server(world_run, tmp_path_factory):
    """The world model served without --index: its data dir holds no index (the tests index into temp dirs)."""
    assert not (world_run["data_dir"] / "attribution-index").exists()
    server = LiveServer(world_run["run_dir"], tmp_path_factory.mktemp("logs") / "unindexed.log")
    server.wait_ready()
    yield server
    server.stop()


def test_without_an_index_the_answer_says_how_to_build_one(unindexed_server, world_run, tiny_server):
    err = post(unindexed_server, "/v1/attribution/spans", {"text": "The capital of"}, status=409)["error"]
    assert err["code"] == "no_index" and f"lmlab attribute index {world_run['data_dir']}" in err["message"]
    err = post(tiny_server, "/v1/attribution/spans", {"text": "the cat"}, status=409,
               headers={"Authorization": f"Bearer {API_KEY}"})["error"]
    assert err["code"] == "no_index" and "records no training data dir" in err["message"]
