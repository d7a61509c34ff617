"""Replay: whole documents of an earlier run's training data, drawn at random (seeded) to be mixed into a later
run's training split, so that the model rehearses what it knew while it learns something new (the classic remedy
for catastrophic forgetting).

One draw serves both callers: continued pretraining (`lmlab.training.continued`) asks for distinct documents until
they make up a share of the mixed train tokens (`n_tokens`); instruction tuning (`lmlab.training.instruct`) asks
for a number of documents, one per training row (`n_documents`).
"""

from __future__ import annotations

import os

import numpy as np

from lmlab.data import document_spans, load_split
from lmlab.errors import LmlabError
from lmlab.tokenization import Tokenizer


def check_replay(replay: float) -> None:
    """LmlabError unless 0 ≤ replay < 1 (the share of replayed original data in the training mix)."""
    if not 0.0 <= replay < 1.0:
        raise LmlabError(f"--replay is the share of original training documents in the training mix and must be in "
                         f"[0, 1), e.g. 0.2 (got {replay})")


def draw_replay(data_dir: str | os.PathLike, tokenizer: Tokenizer, *, seed: int, n_tokens: int | None = None,
                n_documents: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Documents drawn from the train split of the shards in `data_dir` (made with `tokenizer`).

    Returns (ids (N,) of that split, spans (k, 2) int64 of the documents drawn: [start, end) token offsets into
    ids, `<eos>` excluded, as `lmlab.data.document_spans` gives them). Give exactly one of:
      n_tokens     distinct documents in a seeded random order until they, each counted with its `<eos>`, hold at
                   least n_tokens tokens (none for n_tokens = 0; all of them when the split holds fewer);
      n_documents  that many documents, each drawn uniformly and independently (with replacement).
    The same seed gives the same documents.
    """
    if (n_tokens is None) == (n_documents is None):
        raise ValueError("draw_replay: give exactly one of n_tokens and n_documents")
    ids = load_split(data_dir, "train", tokenizer)
    spans = document_spans(ids, tokenizer.eos_id)
    rng = np.random.default_rng(seed)
    if n_documents is not None:
        return ids, spans[rng.integers(0, len(spans), size=n_documents)]
    order = rng.permutation(len(spans))
    lengths = np.minimum(spans[order, 1] + 1, len(ids)) - spans[order, 0]  # each document with its <eos>
    n = int(np.searchsorted(np.cumsum(lengths), n_tokens)) + 1 if n_tokens > 0 else 0
    return ids, spans[order[:n]]
