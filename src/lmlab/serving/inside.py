"""Endpoints that show what happens inside the served model, over lmlab.inspection: the logit lens (before and
after each MLP), the FFN memories active at a position, attention patterns, and generation with memories
switched off or promoted."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

from lmlab.generation import generate
from lmlab.inspection import attention_report, hooked, logit_lens, memory_hooks, top_memories
from lmlab.serving.request_body import call_model, read_body


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str


class LensRequest(_Body):
    top_k: int = Field(5, ge=1, le=20)


class MemoriesRequest(_Body):
    position: int = -1
    top_k: int = Field(10, ge=1, le=100)
    n_tokens: int = Field(5, ge=1, le=20)
    layers: list[int] | None = None


class AttentionRequest(_Body):
    layers: list[int] | None = None


class Intervention(BaseModel):
    model_config = ConfigDict(extra="forbid")
    layer: int
    key: int
    value: float = 0.0   # the coefficient m_i the memory gets at every position: 0 = off, e.g. 10 = promote


class InterveneRequest(_Body):
    interventions: list[Intervention] = Field(default_factory=list)
    max_tokens: int = Field(16, ge=1)
    temperature: float = Field(0.0, ge=0)
    seed: int | None = None


def _complete(state, prompt: str, max_tokens: int, temperature: float, seed: int | None) -> dict[str, Any]:
    c = generate(state.model, state.tokenizer, prompt, max_new_tokens=max_tokens, temperature=temperature,
                 seed=seed, truncate="left", return_logprobs=True)[0]
    return {"text": c.text, "tokens": [state.tokenizer.decode([t]) for t in c.tokens],
            "token_logprobs": c.token_logprobs, "finish_reason": c.finish_reason}


def intervene(state, req: InterveneRequest) -> dict[str, Any]:
    """Greedy (or seeded) completions of the prompt without and with the memory interventions."""
    max_tokens = min(req.max_tokens, state.block_size - 1)
    original = _complete(state, req.prompt, max_tokens, req.temperature, req.seed)
    hooks = memory_hooks(state.model, [(i.layer, i.key, i.value) for i in req.interventions])
    with hooked(state.model, hooks):
        changed = _complete(state, req.prompt, max_tokens, req.temperature, req.seed)
    return {"prompt": req.prompt, "interventions": [i.model_dump() for i in req.interventions],
            "original": original, "intervened": changed}


def add_inside_routes(app: FastAPI) -> None:
    """POST /v1/inside/{lens,memories,attention,intervene}."""

    @app.post("/v1/inside/lens")
    async def lens(request: Request):
        req = LensRequest.model_validate(await read_body(request))
        state = request.app.state.served
        return await call_model(state, logit_lens, state.model, state.tokenizer, req.prompt, top_k=req.top_k,
                                all_positions=True, before_mlp=True)

    @app.post("/v1/inside/memories")
    async def memories(request: Request):
        req = MemoriesRequest.model_validate(await read_body(request))
        state = request.app.state.served
        return await call_model(state, top_memories, state.model, state.tokenizer, req.prompt, top_k=req.top_k,
                                layers=req.layers, position=req.position, n_tokens=req.n_tokens, rank="contribution")

    @app.post("/v1/inside/attention")
    async def attention(request: Request):
        req = AttentionRequest.model_validate(await read_body(request))
        state = request.app.state.served
        return await call_model(state, attention_report, state.model, state.tokenizer, req.prompt, req.layers)

    @app.post("/v1/inside/intervene")
    async def intervene_route(request: Request):
        req = InterveneRequest.model_validate(await read_body(request))
        state = request.app.state.served
        return await call_model(state, intervene, state, req)
