"""`/v1/edits`: rewrite a fact in the served weights with ROME (lmlab.editing), list the edits, revert one.

Only with `--allow-edits`. An edit changes the model every later request sees; each keeps its exact weight deltas,
so reverting the newest edit restores the weights bit for bit and reverting an older one subtracts its delta
(ROME's update is additive: W + Δ₁ + Δ₂ − Δ₁ = W + Δ₂ up to float rounding).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

import torch
from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

from lmlab.checkpoint import run_data_dir
from lmlab.editing import SecondMoments, edit
from lmlab.editing.api import EditResult
from lmlab.errors import LmlabError
from lmlab.generation import generate
from lmlab.serving.errors import ApiError
from lmlab.serving.request_body import call_model, read_body


class EditBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str                       # with '{}' where the subject goes, or with the subject written out
    subject: str
    target_new: str
    method: str = "rome"
    layer: int | None = None          # default: chosen by causal tracing (lmlab.editing.default_layers)
    paraphrase: str | None = None     # extra prompts whose completions are shown before and after
    neighbour: str | None = None
    max_tokens: int = Field(8, ge=1, le=64)


@dataclass
class AppliedEdit:
    id: str
    body: EditBody
    result: EditResult
    before: dict[str, str]
    after: dict[str, str]
    created: int

    def summary(self) -> dict[str, Any]:
        entry = self.result.log[0]
        return {"id": self.id, "object": "edit", "created": self.created, **self.body.model_dump(),
                "layers": self.result.layers, "update_norms": entry["update_norms"],
                "probabilities": {"before": entry.get("before"), "after": entry.get("after")},
                "completions": {"before": self.before, "after": self.after}}


class EditLog:
    """The edits applied to one served model, oldest first."""

    def __init__(self, state):
        self.state = state
        self.applied: list[AppliedEdit] = []
        self._ids = itertools.count(1)
        self._stats: SecondMoments | None = None

    def _stats_for_rome(self) -> SecondMoments:
        if self._stats is None:
            s = self.state.settings
            data = s.edit_data or run_data_dir(self.state.training_config)
            self._stats = SecondMoments(self.state.model, self.state.tokenizer, data, n_tokens=s.edit_stats_tokens)
        return self._stats

    def _probes(self, body: EditBody) -> dict[str, str]:
        prompts = {"prompt": body.prompt.replace("{}", body.subject, 1), "paraphrase": body.paraphrase,
                   "neighbour": body.neighbour}
        return {k: generate(self.state.model, self.state.tokenizer, p, max_new_tokens=body.max_tokens,
                            temperature=0, truncate="left")[0].text for k, p in prompts.items() if p}

    def apply(self, body: EditBody) -> dict[str, Any]:
        """Edit the served model in place (call under the model lock)."""
        prompt = body.prompt
        if "{}" not in prompt:
            if body.subject not in prompt:
                raise LmlabError(f"subject {body.subject!r} is not in the prompt {prompt!r}; write '{{}}' where the "
                                 "subject goes, e.g. 'The capital of {} is'")
            prompt = prompt.replace(body.subject, "{}", 1)
        body = body.model_copy(update={"prompt": prompt})
        before = self._probes(body)
        stats = self._stats_for_rome() if body.method in ("rome", "memit") else None
        result = edit(self.state.model, self.state.tokenizer,
                      {"prompt": prompt, "subject": body.subject, "target_new": body.target_new}, body.method,
                      layers=None if body.layer is None else [body.layer], in_place=True, stats=stats)
        applied = AppliedEdit(f"edit-{next(self._ids)}", body, result, before, self._probes(body), int(time.time()))
        self.applied.append(applied)
        return applied.summary()

    def revert(self, edit_id: str) -> dict[str, Any]:
        """Undo one edit (call under the model lock)."""
        index = next((i for i, e in enumerate(self.applied) if e.id == edit_id), None)
        if index is None:
            raise ApiError(404, f"no edit {edit_id!r}; GET /v1/edits lists the applied ones", param="id")
        applied = self.applied.pop(index)
        if index == len(self.applied):  # the newest: put the exact old values back
            applied.result.restore()
        else:
            with torch.no_grad():
                for name, delta in applied.result.deltas.items():
                    self.state.model.get_parameter(name).sub_(delta)
        return {"id": edit_id, "object": "edit", "deleted": True}


def add_edit_routes(app: FastAPI) -> None:
    """POST /v1/edits, GET /v1/edits, DELETE /v1/edits/{id}."""

    def allowed(state) -> None:
        if not state.settings.allow_edits:
            raise ApiError(403, "edits are switched off on this server; start it with `lmlab serve RUN_DIR "
                           "--allow-edits` to let clients change the served weights", code="edits_disabled")

    @app.post("/v1/edits")
    async def create_edit(request: Request):
        state = request.app.state.served
        allowed(state)
        body = EditBody.model_validate(await read_body(request))
        return await call_model(state, state.edits.apply, body)

    @app.get("/v1/edits")
    async def list_edits(request: Request):
        state = request.app.state.served
        return {"object": "list", "data": [e.summary() for e in state.edits.applied]}

    @app.delete("/v1/edits/{edit_id}")
    async def delete_edit(edit_id: str, request: Request):
        state = request.app.state.served
        allowed(state)
        return await call_model(state, state.edits.revert, edit_id)
