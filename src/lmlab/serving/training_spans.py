"""POST /v1/attribution/spans: the verbatim spans of a text in the served run's training data and the documents
they occur in (OLMoTrace's procedure, lmlab.attribution.trace_ids), over the suffix-array index of the run's
training shards. The index is built beforehand (`lmlab attribute index DATA_DIR`), never inside a request, and
opened once per server, on first use."""

from __future__ import annotations

import os
import threading
from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

from lmlab.attribution import SuffixIndex, char_offsets, occurrences, open_run_index, trace_ids
from lmlab.attribution.corpus import encode_query
from lmlab.checkpoint import Run, run_data_dir
from lmlab.errors import LmlabError
from lmlab.serving.errors import ApiError
from lmlab.serving.request_body import call_off_loop, read_body
from lmlab.tokenization import Tokenizer


class SpansRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1)          # typically prompt + completion
    min_len: int = Field(4, ge=1)            # shortest span, in tokens
    limit: int = Field(10, ge=1, le=100)     # most spans answered: the rarest (lowest unigram probability) first
    documents: int = Field(3, ge=1, le=20)   # occurrences shown per span, in corpus order
    context: int = Field(16, ge=0, le=64)    # tokens of each occurrence's document shown either side of it


class TrainingIndex:
    """The index of the served run's training shards (the data dir the run recorded), opened on the first request
    that needs it and then shared: the arrays are memory-mapped and only read, so threads query it together.
    A failed open is not remembered, so an index built while the server runs is found by the next request."""

    def __init__(self, run: Run, index_dir: str | os.PathLike | None):
        self.run, self.index_dir = run, index_dir
        self._lock = threading.Lock()
        self._opened: SuffixIndex | None = None

    def get(self) -> SuffixIndex:
        """The opened index; ApiError 409 (code `no_index`) saying how to build it when it is missing or stale."""
        with self._lock:
            if self._opened is None:
                if run_data_dir(self.run) is None:
                    raise ApiError(409, f"{self.run.run_dir} records no training data dir, so its training text "
                                   "cannot be searched", code="no_index")
                try:
                    _, self._opened = open_run_index(self.run, index_dir=self.index_dir)
                except LmlabError as e:
                    where = "" if self.index_dir is None else f" (lmlab serve --index {self.index_dir})"
                    raise ApiError(409, f"no usable attribution index{where}: {e}", code="no_index") from None
            return self._opened


def training_spans(ix: SuffixIndex, tokenizer: Tokenizer, req: SpansRequest, max_tokens: int) -> dict[str, Any]:
    """The kept spans of `req.text` (by start) with character and token offsets into `text` (the decoded tokens,
    which the offsets index), occurrence counts and source documents, and `highlights`: the character ranges a
    reader sees marked (overlapping spans merged)."""
    ids = encode_query(tokenizer, req.text, what="text")
    if len(ids) > max_tokens:
        raise ApiError(400, f"text has {len(ids)} tokens; the limit is max_trace_tokens={max_tokens}", param="text")
    tr = trace_ids(ix, ids, min_len=req.min_len, docs_per_span=req.documents, max_spans=req.limit)
    text, at = tokenizer.decode(tr.ids), char_offsets(tokenizer, tr.ids)
    spans = [{"text": text[at[s.start]:at[s.end]], "start": at[s.start], "end": at[s.end],
              "token_start": s.start, "token_end": s.end, "length": s.end - s.start, "count": s.count,
              "unigram_logprob": s.unigram_logprob,
              "documents": [o.to_dict() for o in occurrences(ix, tokenizer, tr.ids[s.start:s.end],
                                                             limit=req.documents, context=req.context)]}
             for s in tr.spans]
    meta = ix.meta
    return {"object": "attribution.spans", "text": text, "n_tokens": len(tr.ids), "spans": spans,
            "highlights": [{"start": at[a], "end": at[b]} for a, b in tr.merged],
            "index": {"splits": meta["splits"], "n_tokens": meta["n_tokens"], "n_documents": meta["n_documents"]}}


def add_attribution_routes(app: FastAPI) -> None:
    """POST /v1/attribution/spans."""

    @app.post("/v1/attribution/spans")
    async def spans(request: Request):
        req = SpansRequest.model_validate(await read_body(request))
        state = request.app.state.served
        # Only the index is read (not the model), so no model lock: spans are searched while decoding goes on.
        ix = await call_off_loop(state.training_index.get)
        return await call_off_loop(training_spans, ix, state.tokenizer, req, state.settings.max_trace_tokens)
