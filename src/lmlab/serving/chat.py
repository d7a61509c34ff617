"""`POST /v1/chat/completions` as OpenAI's chat API, for runs with a prompt template (instruction-tuned with
`lmlab finetune --instructions`): the messages are rendered with the run's template (lmlab.data.instructions) into
one prompt, which is then decoded exactly as a completion (same engine, limits, sampling, streaming and usage).

Answers carry `message: {"role": "assistant", "content"}` (streamed: `delta` chunks, the first with the role);
the response's leading template prefix (a space) is not part of the content. Decoding ends at `<eos>` (what the
tuned model writes after a response) or a stop string. Log-probabilities are not offered here (use
/v1/completions with the rendered prompt).
"""

from __future__ import annotations

import json
from typing import Any, Union

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field

from lmlab.errors import LmlabError
from lmlab.serving.completions import CompletionCall, CompletionRequest, StreamOptions, parse_request, respond
from lmlab.serving.errors import ApiError

DEFAULT_MAX_TOKENS = 64  # when the request names none (capped at what the context leaves after the prompt)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: str
    content: Union[str, list[dict[str, Any]], None] = None  # a string, or OpenAI's [{"type": "text", "text"}] parts

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    """The fields we honour; others an OpenAI client may send (user, presence_penalty = 0, ...) are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    messages: list[ChatMessage] = Field(default_factory=list)
    max_tokens: int | None = None
    max_completion_tokens: int | None = None  # OpenAI's newer name for max_tokens
    temperature: float | None = 1.0
    top_p: float | None = 1.0
    top_k: int | None = None
    stop: Union[str, list[str], None] = None
    n: int = 1
    seed: int | None = None
    logprobs: bool | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None


class ChatCall(CompletionCall):
    """A chat request turned into the completion of the template's prompt; answers in the chat format."""

    def __init__(self, req: ChatRequest, state):
        template = state.template
        if template is None:
            raise ApiError(400, f"{state.model_name} has no prompt template (it was not instruction-tuned with "
                           "`lmlab finetune --instructions`); use /v1/completions", code="no_chat_template")
        if req.logprobs:
            raise ApiError(400, "logprobs are not offered on chat completions here; use /v1/completions with the "
                           "rendered prompt", param="logprobs")
        tok = state.tokenizer
        try:
            prompt = template.chat_prompt([{"role": m.role, "content": m.text()} for m in req.messages],
                                          eos=tok.decode([tok.eos_id]))
        except LmlabError as e:
            raise ApiError(400, str(e), param="messages") from None
        max_tokens = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
        if max_tokens is None:
            max_tokens = max(1, min(DEFAULT_MAX_TOKENS, state.block_size - len(tok.encode(prompt))))
        super().__init__(CompletionRequest(model=req.model, prompt=prompt, max_tokens=max_tokens,
                                           temperature=req.temperature, top_p=req.top_p, top_k=req.top_k,
                                           stop=req.stop, n=req.n, seed=req.seed, stream=req.stream,
                                           stream_options=req.stream_options), state)
        self.id = "chatcmpl-" + self.id.removeprefix("cmpl-")
        self.prefix = template.response_prefix
        self._started: set[int] = set()  # choices whose first content (and role) went out

    def _content(self, index: int, text: str) -> str:
        """`text` without the template's response prefix when it is the start of choice `index`'s content."""
        if index in self._started or not text:
            return text
        self._started.add(index)
        return text.removeprefix(self.prefix)

    async def answer(self) -> dict:
        body = await super().answer()
        choices = [{"index": c["index"], "logprobs": None, "finish_reason": c["finish_reason"],
                    "message": {"role": "assistant", "content": self._content(c["index"], c["text"])}}
                   for c in body["choices"]]
        return {**body, "object": "chat.completion", "choices": choices}

    def _chunk(self, choices: list[dict], usage: dict | None = None) -> str:
        out = []
        for c in choices:
            first = c["index"] not in self._started
            delta: dict[str, Any] = {"role": "assistant"} if first else {}
            content = self._content(c["index"], c["text"])
            if content or first:
                delta["content"] = content
            out.append({"index": c["index"], "delta": delta, "logprobs": None, "finish_reason": c["finish_reason"]})
        body = {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.state.model_name, "choices": out}
        return f"data: {json.dumps(body)}\n\n"

    def _usage_chunk(self, usage: dict) -> str:
        body = {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.state.model_name, "choices": [], "usage": usage}
        return f"data: {json.dumps(body)}\n\n"


def add_chat_routes(app) -> None:
    """Register POST /v1/chat/completions on the app of lmlab.serving.app.create_app."""
    state = app.state.served

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        return await respond(state, request, lambda body: ChatCall(parse_request(body, ChatRequest), state))
