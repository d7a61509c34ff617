"""`POST /v1/completions` as OpenAI's legacy completions API (the subset vLLM implements): request checking,
prompt echo with prompt-token log-probs, plain and server-sent-event answers, usage counts."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any, AsyncIterator, Callable, Union

from pydantic import BaseModel, ConfigDict, Field

from lmlab.generation import TokenEvent, prompt_logprobs, releasable_length
from lmlab.serving.engine import Job
from lmlab.serving.errors import ApiError


class StreamOptions(BaseModel):
    include_usage: bool = False


class CompletionRequest(BaseModel):
    """The fields we honour; others an OpenAI client may send (user, presence_penalty = 0, ...) are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    prompt: Union[str, list[str], list[int], list[list[int]]] = Field(default="")
    max_tokens: int | None = 16
    temperature: float | None = 1.0
    top_p: float | None = 1.0
    top_k: int | None = None          # vLLM's extension; -1 or None = off
    stop: Union[str, list[str], None] = None
    n: int = 1
    seed: int | None = None
    logprobs: int | None = None
    echo: bool = False
    stream: bool = False
    stream_options: StreamOptions | None = None


def prompt_list(req: CompletionRequest) -> list[str | list[int]]:
    """The request's prompts: texts or token-id lists (OpenAI accepts one or many of either)."""
    p = req.prompt
    if isinstance(p, str):
        return [p]
    if p and all(isinstance(x, int) for x in p):
        return [list(p)]
    return list(p)


class CompletionCall:
    """One checked completion request, ready to run on a served model (`state`: lmlab.serving.app.ServedModel)."""

    def __init__(self, req: CompletionRequest, state):
        self.req, self.state = req, state
        s, tok = state.settings, state.tokenizer
        block = state.block_size
        prompts = prompt_list(req)
        if not prompts:
            raise ApiError(400, "prompt is empty: give a string, a list of strings or token ids", param="prompt")
        if len(prompts) > s.max_prompts:
            raise ApiError(400, f"{len(prompts)} prompts in one request; the limit is max_prompts={s.max_prompts}",
                           param="prompt")
        if not 1 <= req.n <= s.max_n:
            raise ApiError(400, f"n must be between 1 and max_n={s.max_n}, got {req.n}", param="n")
        if req.logprobs is not None and not 0 <= req.logprobs <= s.max_logprobs:
            raise ApiError(400, f"logprobs must be between 0 and {s.max_logprobs}, got {req.logprobs}",
                           param="logprobs")
        self.max_tokens = 16 if req.max_tokens is None else req.max_tokens
        if self.max_tokens < (0 if req.echo else 1):
            raise ApiError(400, f"max_tokens must be at least 1 (0 only with echo), got {self.max_tokens}",
                           param="max_tokens")
        max_tokens_limit = s.max_tokens or block - 1
        if self.max_tokens > max_tokens_limit:
            raise ApiError(400, f"max_tokens={self.max_tokens} is over the limit max_tokens={max_tokens_limit}",
                           param="max_tokens")
        self.temperature = 1.0 if req.temperature is None else req.temperature
        if self.temperature < 0:
            raise ApiError(400, f"temperature must be ≥ 0, got {self.temperature}", param="temperature")
        top_p = 1.0 if req.top_p is None else req.top_p
        if not 0 < top_p <= 1:
            raise ApiError(400, f"top_p must be in (0, 1], got {top_p}", param="top_p")
        top_k = None if req.top_k in (None, -1, 0) else req.top_k
        if top_k is not None and top_k < 1:
            raise ApiError(400, f"top_k must be ≥ 1 (or -1 for off), got {top_k}", param="top_k")
        self.stop = [req.stop] if isinstance(req.stop, str) else [x for x in (req.stop or []) if x]
        self.prompt_ids: list[list[int]] = []
        max_prompt = s.max_prompt_tokens or block
        for p in prompts:
            ids = tok.encode(p) if isinstance(p, str) else [int(i) for i in p]
            ids = ids or [tok.eos_id]
            bad = [i for i in ids if not 0 <= i < tok.vocab_size]
            if bad:
                raise ApiError(400, f"prompt token id {bad[0]} is outside 0..{tok.vocab_size - 1}", param="prompt")
            if len(ids) > max_prompt:
                raise ApiError(400, f"prompt has {len(ids)} tokens; the limit is max_prompt_tokens={max_prompt}",
                               param="prompt", code="prompt_too_long")
            if len(ids) + self.max_tokens > block:
                raise ApiError(400, f"prompt of {len(ids)} tokens + max_tokens={self.max_tokens} exceeds the model's "
                               f"context of {block} tokens; shorten the prompt or lower max_tokens",
                               param="max_tokens", code="context_length_exceeded")
            self.prompt_ids.append(ids)
        self.options = dict(max_new_tokens=self.max_tokens, temperature=self.temperature,
                            top_k=top_k, top_p=None if top_p == 1 else top_p, stop=self.stop, seed=req.seed,
                            top_logprobs=req.logprobs or 0)
        self.id = f"cmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.jobs: list[Job] = []

    # --- pieces of the answer ------------------------------------------------------------------------------------
    def _token_str(self, t: int) -> str:
        return self.state.tokenizer.decode([t])

    def _top_dict(self, top: list[tuple[int, float]]) -> dict[str, float]:
        out: dict[str, float] = {}
        for t, lp in top:
            out.setdefault(self._token_str(t), lp)
        return out

    def _logprobs_block(self, tokens: list[int], lps: list[float | None], tops: list[list[tuple[int, float]] | None],
                        offset: int = 0) -> dict:
        strs = [self._token_str(t) for t in tokens]
        offsets, pos = [], offset
        for s in strs:
            offsets.append(pos)
            pos += len(s)
        return {"tokens": strs, "token_logprobs": lps,
                "top_logprobs": [None if t is None else self._top_dict(t) for t in tops], "text_offset": offsets}

    def _echo(self, ids: list[int]) -> tuple[str, dict | None]:
        """The prompt's text and (when logprobs were asked) its tokens' log-probs: None for the first token."""
        text = self.state.tokenizer.decode(ids)
        if self.req.logprobs is None:
            return text, None
        with self.state.lock:
            chosen, tops = prompt_logprobs(self.state.model, ids, top=self.req.logprobs)
        return text, self._logprobs_block(ids, [None, *chosen], [None, *tops])

    def _jobs(self) -> list[Job]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        return [Job(ids, self.options, self.req.n, loop, queue) for ids in self.prompt_ids]

    def usage(self, completion_tokens: int) -> dict:
        prompt = sum(len(p) for p in self.prompt_ids)
        return {"prompt_tokens": prompt, "completion_tokens": completion_tokens,
                "total_tokens": prompt + completion_tokens}

    @staticmethod
    def finish(reason: str) -> str:
        return "length" if reason == "length" else "stop"

    async def _echoes(self) -> list[tuple[str, dict | None]]:
        if not self.req.echo:
            return [("", None)] * len(self.prompt_ids)
        return [await asyncio.to_thread(self._echo, ids) for ids in self.prompt_ids]

    async def _events(self) -> AsyncIterator[tuple[int, TokenEvent]]:
        """(choice index, event) for every token of every choice, in the order they are decoded."""
        if self.max_tokens == 0:
            return
        self.jobs = self._jobs()
        self.state.engine.submit(self.jobs)
        queue = self.jobs[0].events
        remaining = len(self.prompt_ids) * self.req.n
        seq_choice: dict[int, int] = {}
        try:
            while remaining:
                item = await queue.get()
                if isinstance(item, ApiError):
                    raise item
                copy, event = item
                if event.seq_id not in seq_choice:
                    job_index = next(i for i, j in enumerate(self.jobs) if event.seq_id in j.seq_ids)
                    seq_choice[event.seq_id] = job_index * self.req.n + copy
                yield seq_choice[event.seq_id], event
                if event.finish_reason is not None:
                    remaining -= 1
        finally:
            if remaining:
                self.state.engine.cancel(self.jobs)

    # --- the two answers ----------------------------------------------------------------------------------------
    async def answer(self) -> dict:
        """The whole completion as one JSON object."""
        self.state.metrics.prompt_tokens.inc(sum(len(p) for p in self.prompt_ids))
        echoes = await self._echoes()
        n_choices = len(self.prompt_ids) * self.req.n
        tokens: list[list[TokenEvent]] = [[] for _ in range(n_choices)]
        async for index, event in self._events():
            tokens[index].append(event)
        choices = []
        for index in range(n_choices):
            echo_text, echo_lp = echoes[index // self.req.n]
            events = tokens[index]
            text = echo_text + (events[-1].text if events else "")
            reason = self.finish(events[-1].finish_reason) if events else "length"
            logprobs = None
            if self.req.logprobs is not None:
                gen = self._logprobs_block([e.token for e in events], [e.logprob for e in events],
                                           [e.top for e in events], offset=len(echo_text))
                logprobs = gen if echo_lp is None else {k: echo_lp[k] + gen[k] for k in gen}
            choices.append({"index": index, "text": text, "logprobs": logprobs, "finish_reason": reason})
        return {"id": self.id, "object": "text_completion", "created": self.created, "model": self.state.model_name,
                "choices": choices, "usage": self.usage(sum(len(t) for t in tokens))}

    def _chunk(self, choices: list[dict], usage: dict | None = None) -> str:
        body = {"id": self.id, "object": "text_completion", "created": self.created, "model": self.state.model_name,
                "choices": choices}
        if self.req.stream_options is not None and self.req.stream_options.include_usage:
            body["usage"] = usage
        return f"data: {json.dumps(body)}\n\n"

    async def stream(self) -> AsyncIterator[str]:
        """Server-sent events: `data: {chunk}` per piece of text (per token when logprobs are asked), the last one
        of each choice with its finish_reason, an optional usage chunk, then `data: [DONE]`."""
        self.state.metrics.prompt_tokens.inc(sum(len(p) for p in self.prompt_ids))
        echoes = await self._echoes()
        n_choices = len(self.prompt_ids) * self.req.n
        if self.req.echo:
            for index in range(n_choices):
                text, lp = echoes[index // self.req.n]
                yield self._chunk([{"index": index, "text": text, "logprobs": lp, "finish_reason": None}])
        emitted = [0] * n_choices
        produced = 0
        async for index, event in self._events():
            produced += 1
            final = event.finish_reason is not None
            safe = len(event.text) if final else releasable_length(event.text, emitted[index], self.stop)
            piece = event.text[emitted[index]:safe]
            emitted[index] = max(emitted[index], safe)
            if not piece and not final and self.req.logprobs is None:
                continue
            lp = None
            if self.req.logprobs is not None:
                lp = self._logprobs_block([event.token], [event.logprob], [event.top])
            yield self._chunk([{"index": index, "text": piece, "logprobs": lp,
                                "finish_reason": self.finish(event.finish_reason) if final else None}])
        if self.req.max_tokens == 0:
            for index in range(n_choices):
                yield self._chunk([{"index": index, "text": "", "logprobs": None, "finish_reason": "length"}])
        if self.req.stream_options is not None and self.req.stream_options.include_usage:
            yield self._usage_chunk(self.usage(produced))
        yield "data: [DONE]\n\n"

    def _usage_chunk(self, usage: dict) -> str:
        """The last event of a stream with stream_options.include_usage: no choices, the usage counts."""
        body = {"id": self.id, "object": "text_completion", "created": self.created, "model": self.state.model_name,
                "choices": [], "usage": usage}
        return f"data: {json.dumps(body)}\n\n"


async def respond(state, request, make_call: Callable[[dict[str, Any]], CompletionCall]):
    """Run one API call: `make_call(JSON body)` builds and checks it; the answer is a JSON object, or server-sent
    events when the request streams. ApiErrors (404 for another model's name) keep their status; every outcome is
    counted in the server's metrics."""
    from fastapi.responses import StreamingResponse

    from lmlab.serving.request_body import read_body

    try:
        call = make_call(await read_body(request))
        if call.req.model is not None and call.req.model != state.model_name:
            raise ApiError(404, f"model {call.req.model!r} is not served here; this server serves "
                           f"{state.model_name!r}", param="model", code="model_not_found")
        if call.req.stream:
            stream = call.stream()
            first = await anext(stream)  # errors before the first byte (queue full, ...) get their status
            state.metrics.requests.labels("200").inc()
            return StreamingResponse(_prepend(first, stream), media_type="text/event-stream")
        answer = await call.answer()
    except ApiError as e:
        state.metrics.requests.labels(str(e.status)).inc()
        raise
    state.metrics.requests.labels("200").inc()
    return answer


async def _prepend(first: str, rest: AsyncIterator[str]) -> AsyncIterator[str]:
    yield first
    async for chunk in rest:
        yield chunk


def parse_request(body: dict[str, Any], request_type: type[BaseModel] = CompletionRequest) -> Any:
    """Validate a JSON body as a `request_type`; ApiError 400 naming the first bad field."""
    from pydantic import ValidationError

    try:
        return request_type.model_validate(body)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(x) for x in err["loc"] if not isinstance(x, int)) or None
        raise ApiError(400, f"{field or 'request'}: {err['msg']}", param=field) from None
