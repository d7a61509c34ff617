"""Whole-document batches, for models that learn from one document at a time rather than from a running stream:
sequence-to-sequence pairs (`source <sep> target`), labelled texts for classifiers, sentence pairs.

A split is a flat token array with `<eos>` after every document (see `lmlab.data.shards`); `document_spans` finds
the documents once, then the samplers gather them. Each batch is `x` of shape (batch_size, L) int64: row i holds one
document's tokens (its `<eos>` left out) followed by `pad_id`, with L = the longest document of the batch, capped
at `max_len` (longer documents keep their first `max_len` tokens: put what must survive — a label, a source
sentence — first). `y` is `x` itself: what to predict from a document is the model's business (it splits at its
separator, reads its label token, masks, ...). Empty documents are skipped.

Distributed training and resume work as for the window samplers: step k's documents come from a generator seeded by
(seed, k) alone, rank r takes rows [r·B, (r+1)·B) of the global batch, and the state is the step count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from lmlab.errors import LmlabError

if TYPE_CHECKING:
    import torch


def document_spans(tokens: np.ndarray, eos_id: int) -> np.ndarray:
    """(n_docs, 2) int64 array of [start, end) token offsets of the non-empty documents in `tokens` (1-D ids with
    `eos_id` after each document; a last document without its `<eos>` counts too)."""
    ends = np.flatnonzero(np.asarray(tokens) == eos_id)
    if len(ends) == 0 or ends[-1] != len(tokens) - 1:
        ends = np.append(ends, len(tokens))  # trailing text without <eos>
    starts = np.concatenate([[0], ends[:-1] + 1])
    spans = np.stack([starts, ends], axis=1).astype(np.int64)
    return spans[spans[:, 1] > spans[:, 0]]


def _gather(tokens: np.ndarray, spans: np.ndarray, max_len: int, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of the documents `spans` (k, 2), right-padded with pad_id to the longest (≤ max_len); (x, x)."""
    import torch

    lengths = np.minimum(spans[:, 1] - spans[:, 0], max_len)
    width = int(lengths.max()) if len(lengths) else 0
    out = np.full((len(spans), width), pad_id, dtype=np.int64)
    for row, ((start, _), n) in enumerate(zip(spans, lengths)):
        out[row, :n] = tokens[start:start + n]
    x = torch.from_numpy(out)
    return x, x


def _check(spans: np.ndarray, max_len: int, batch_size: int, rank: int, world_size: int) -> None:
    if max_len < 1 or batch_size < 1:
        raise LmlabError(f"max_len and batch_size must be ≥ 1 (got {max_len}, {batch_size})")
    if world_size < 1 or not 0 <= rank < world_size:
        raise LmlabError(f"rank must be in [0, world_size) (got rank={rank}, world_size={world_size})")
    if len(spans) == 0:
        raise LmlabError("the split holds no non-empty document (documents end with <eos>); prepare the data "
                         "with one example per document (e.g. one line each with --split_blank_lines off)")


class RandomDocumentSampler:
    """Uniformly random documents (with replacement), for training; batches of (batch_size, ≤ max_len) int64."""

    def __init__(self, tokens: np.ndarray, eos_id: int, pad_id: int, max_len: int, batch_size: int, *,
                 seed: int = 0, rank: int = 0, world_size: int = 1):
        self.spans = document_spans(tokens, eos_id)
        _check(self.spans, max_len, batch_size, rank, world_size)
        self.tokens, self.pad_id, self.max_len, self.batch_size = tokens, pad_id, max_len, batch_size
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.step = 0

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next (x, x) pair: batch_size documents, padded."""
        rng = np.random.default_rng([self.seed, self.step])
        picks = rng.integers(0, len(self.spans), size=self.batch_size * self.world_size)
        mine = picks[self.rank * self.batch_size:(self.rank + 1) * self.batch_size]
        self.step += 1
        return _gather(self.tokens, self.spans[mine], self.max_len, self.pad_id)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            yield self.next_batch()

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "documents", "seed": self.seed, "step": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind") != "documents":
            raise LmlabError(f"sampler state is of kind {state.get('kind')!r}, expected 'documents' (the run was "
                             "trained with another batch order; resume with the same model settings)")
        self.seed, self.step = int(state["seed"]), int(state["step"])


class SequentialDocumentSampler:
    """Documents in order, for evaluation: the same documents every time, split across ranks like
    `SequentialWindowSampler` (the last batch may be partial or empty for some ranks; every rank runs
    `len(sampler)` batches). `max_batches` caps the number of batches."""

    def __init__(self, tokens: np.ndarray, eos_id: int, pad_id: int, max_len: int, batch_size: int, *,
                 rank: int = 0, world_size: int = 1, max_batches: int | None = None):
        self.spans = document_spans(tokens, eos_id)
        _check(self.spans, max_len, batch_size, rank, world_size)
        self.tokens, self.pad_id, self.max_len, self.batch_size = tokens, pad_id, max_len, batch_size
        self.rank, self.world_size = rank, world_size
        n = -(-len(self.spans) // (batch_size * world_size))
        self.n_batches = n if max_batches is None else min(n, max_batches)

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for b in range(self.n_batches):
            first = b * self.batch_size * self.world_size + self.rank * self.batch_size
            yield _gather(self.tokens, self.spans[first:first + self.batch_size], self.max_len, self.pad_id)
