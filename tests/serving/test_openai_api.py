"""The API as the official `openai` client and plain HTTP see it, against a live `lmlab serve` on 127.0.0.1."""

from __future__ import annotations

import httpx
import openai
import pytest

from lmlab.generation import generate

from .conftest import API_KEY

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(tiny_server):
    return openai.OpenAI(base_url=tiny_server.url + "/v1", api_key=API_KEY, max_retries=0, timeout=30)


def auth():
    return {"Authorization": f"Bearer {API_KEY}"}


def test_models_and_plain_completion_match_generate(client, trained):
    model, tok = trained
    [served] = client.models.list().data
    assert served.id == "tiny"
    out = client.completions.create(model="tiny", prompt="the cat", max_tokens=20, temperature=0)
    ref = generate(model, tok, "the cat", max_new_tokens=20, temperature=0)[0]
    assert out.choices[0].text == ref.text == " sat on the mat."
    assert out.choices[0].finish_reason == "stop"  # <eos>, as OpenAI reports it
    assert out.usage.prompt_tokens == 7 and out.usage.completion_tokens == len(ref.tokens)
    several = client.completions.create(model="tiny", prompt=["the cat", "the"], max_tokens=4, temperature=0, n=2,
                                        stop=[" o"])
    assert [c.index for c in several.choices] == [0, 1, 2, 3]
    assert several.choices[0].text == several.choices[1].text == " sat"
    seeded = [client.completions.create(model="tiny", prompt="the", max_tokens=8, temperature=1.3, seed=5)
              .choices[0].text for _ in range(2)]
    assert seeded[0] == seeded[1] == generate(model, tok, "the", max_new_tokens=8, temperature=1.3, seed=5)[0].text


def test_streamed_completion_with_usage(client):
    chunks = list(client.completions.create(model="tiny", prompt="the cat", max_tokens=20, temperature=0, stream=True,
                                            stream_options={"include_usage": True}))
    pieces = [c.choices[0].text for c in chunks if c.choices]
    assert len(pieces) > 5 and "".join(pieces) == " sat on the mat."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 17


def test_logprobs_and_echo_give_prompt_logprobs(client, trained):
    from lmlab.generation import prompt_logprobs

    model, tok = trained
    out = client.completions.create(model="tiny", prompt="the cat", max_tokens=3, temperature=0, logprobs=3)
    lp = out.choices[0].logprobs
    assert lp.tokens == [" ", "s", "a"] and len(lp.top_logprobs[0]) == 3
    assert max(lp.top_logprobs[0].values()) == pytest.approx(lp.token_logprobs[0])
    echoed = client.completions.create(model="tiny", prompt="the cat", max_tokens=1, temperature=0, logprobs=1,
                                       echo=True)
    e = echoed.choices[0]
    assert e.text == "the cat " and e.logprobs.token_logprobs[0] is None
    ids = tok.encode("the cat ")
    want, _ = prompt_logprobs(model, ids)
    assert e.logprobs.token_logprobs[1:] == pytest.approx(want, abs=1e-5)
    # token-id prompts (what lm-evaluation-harness sends) are accepted too
    by_ids = client.completions.create(model="tiny", prompt=[ids[:-1]], max_tokens=1, temperature=0, logprobs=1,
                                       echo=True)
    assert by_ids.choices[0].logprobs.token_logprobs[1:] == pytest.approx(want, abs=1e-5)


def test_wrong_or_missing_key_is_refused(tiny_server):
    bad = openai.OpenAI(base_url=tiny_server.url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.completions.create(model="tiny", prompt="the", max_tokens=2)
    r = httpx.post(tiny_server.url + "/v1/completions", json={"prompt": "the"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    assert httpx.get(tiny_server.url + "/health").status_code == 200  # open, like the page and /metrics


def test_limits_answer_with_openai_errors(client, tiny_server):
    with pytest.raises(openai.BadRequestError, match="context"):
        client.completions.create(model="tiny", prompt="the cat " * 4, max_tokens=10)
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.completions.create(model="tiny", prompt="the", max_tokens=500)
    with pytest.raises(openai.BadRequestError, match="logprobs"):
        client.completions.create(model="tiny", prompt="the", max_tokens=2, logprobs=21)
    with pytest.raises(openai.BadRequestError, match="max_n"):
        client.completions.create(model="tiny", prompt="the", max_tokens=2, n=17)
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="gpt-4", prompt="the", max_tokens=2)
    r = httpx.post(tiny_server.url + "/v1/completions", content=b"x" * 1_000_001, headers=auth())
    assert r.status_code == 413 and r.json()["error"]["param"] == "max_body_bytes"
    r = httpx.post(tiny_server.url + "/v1/completions", json={"prompt": "the", "temperature": "hot"}, headers=auth())
    assert r.status_code == 400 and r.json()["error"]["param"] == "temperature"


def test_full_queue_answers_429(tiny_server):
    """max_waiting=8: a request for 16 sequences (2 prompts × n=8) can never be queued."""
    body = {"prompt": ["the", "the cat"], "max_tokens": 20, "n": 8, "temperature": 1.0}
    r = httpx.post(tiny_server.url + "/v1/completions", json=body, headers=auth(), timeout=30)
    assert r.status_code == 429 and r.json()["error"]["param"] == "max_waiting"
    assert r.json()["error"]["type"] == "rate_limit_error"


def test_tokenize_detokenize_metrics(tiny_server):
    r = httpx.post(tiny_server.url + "/tokenize", json={"prompt": "the cat"}, headers=auth()).json()
    assert r["count"] == 7 and r["max_model_len"] == 32
    back = httpx.post(tiny_server.url + "/detokenize", json={"tokens": r["tokens"]}, headers=auth()).json()
    assert back["prompt"] == "the cat"
    text = httpx.get(tiny_server.url + "/metrics").text
    for name in ("lmlab:num_requests_running", "lmlab:num_requests_waiting", "lmlab:time_to_first_token_seconds",
                 "lmlab:inter_token_latency_seconds", "lmlab:prompt_tokens_total", "lmlab:generation_tokens_total"):
        assert name in text


def test_health_is_503_while_loading_then_200(run_dir):
    from fastapi.testclient import TestClient

    from lmlab.serving.app import create_app
    from lmlab.serving.settings import ServerSettings

    app = create_app(ServerSettings(run_dir=run_dir), load_in_background=False)
    loading = TestClient(app)  # outside `with`: the startup that loads the model has not run
    assert loading.get("/health").status_code == 503
    r = loading.post("/v1/completions", json={"prompt": "the"})
    assert r.status_code == 503 and r.json()["error"]["code"] == "loading"
    with TestClient(app) as loaded:
        assert loaded.get("/health").status_code == 200


def test_edits_are_off_by_default(tiny_server):
    r = httpx.post(tiny_server.url + "/v1/edits", json={"prompt": "{} sat", "subject": "the cat", "target_new": "x"},
                   headers=auth())
    assert r.status_code == 403 and "--allow-edits" in r.json()["error"]["message"]
