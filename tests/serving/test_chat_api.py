"""`/v1/chat/completions` as the official `openai` client sees it, against a live `lmlab serve` of an
instruction-tuned run on 127.0.0.1 (and of a run without a template, which refuses chat)."""

from __future__ import annotations

import openai
import pytest

from lmlab.checkpoint import load_run
from lmlab.data.instructions import load_template
from lmlab.generation import generate
from tests.instruction_helpers import instruction_world, tuned_run  # noqa: F401

from .conftest import API_KEY, LiveServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chat_client(tuned_run, tmp_path_factory):  # noqa: F811
    server = LiveServer(tuned_run, tmp_path_factory.mktemp("logs") / "tuned.log")
    server.wait_ready()
    yield openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=30)
    server.stop()


def test_chat_answers_with_the_template_like_generate(chat_client, tuned_run):  # noqa: F811
    out = chat_client.chat.completions.create(
        model="run", messages=[{"role": "user", "content": "What is 2 plus 2?"}], temperature=0)
    assert out.object == "chat.completion"
    assert out.choices[0].message.role == "assistant" and out.choices[0].message.content == "4"
    assert out.choices[0].finish_reason == "stop"  # the model's <eos>
    run, template = load_run(tuned_run), load_template(tuned_run)
    [ref] = generate(run.model, run.tokenizer, template.prompt("What is 2 plus 2?"), max_new_tokens=16,
                     temperature=0)
    assert out.usage.prompt_tokens == len(run.tokenizer.encode(template.prompt("What is 2 plus 2?")))
    assert out.usage.completion_tokens == len(ref.tokens)


def test_streamed_chat_gives_role_then_content(chat_client):
    chunks = list(chat_client.chat.completions.create(
        model="run", messages=[{"role": "user", "content": "Which colour is the sky?"}], temperature=0, stream=True,
        stream_options={"include_usage": True}))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert deltas[0].role == "assistant"
    assert "".join(d.content or "" for d in deltas) == "blue"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens >= 2


def test_chat_errors(chat_client, tiny_server):
    with pytest.raises(openai.BadRequestError, match="must end with a user message"):
        chat_client.chat.completions.create(model="run", messages=[{"role": "assistant", "content": "hi"}])
    plain = openai.OpenAI(base_url=tiny_server.url + "/v1", api_key=API_KEY, max_retries=0, timeout=30)
    with pytest.raises(openai.BadRequestError, match="has no prompt template") as e:
        plain.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}])
    assert e.value.code == "no_chat_template"
