"""How much of a model's output is copied from its training data: the share of tokens inside verbatim training
spans of at least k tokens, per k, for sampled text and, as the baseline, for held-out text of the same kind.

A token is "inside a span of ≥ k" when some substring of its sequence that contains it, k tokens or longer, occurs
in the index. Held-out text shares short spans with training too (common phrases, templates), so only the gap
between the two curves says the model memorised.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from lmlab.attribution.suffix_array import SuffixIndex
from lmlab.errors import LmlabError


@dataclass
class Coverage:
    """Share of tokens inside training spans of ≥ k tokens, for each k (`shares[i]` goes with `ks[i]`)."""

    ks: list[int]
    shares: list[float]
    n_tokens: int
    n_sequences: int

    def to_dict(self) -> dict:
        return asdict(self)


def longest_covering_span(index: SuffixIndex, ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """(len(ids),) int64: for each token, the length of the longest training match that contains it."""
    lengths, _ = index.longest_matches(ids)
    best = np.zeros(len(lengths), dtype=np.int64)
    for start, length in enumerate(lengths.tolist()):
        if length:
            np.maximum(best[start:start + length], length, out=best[start:start + length])
    return best


def span_coverage(index: SuffixIndex, sequences: Sequence[Sequence[int]], ks: Sequence[int]) -> Coverage:
    """`Coverage` of token sequences (each 1-D ids without `<eos>`; empty ones are skipped) for each k ≥ 1."""
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise LmlabError(f"span lengths k must be positive integers, got {list(ks)}")
    seqs = [np.asarray(s, dtype=np.int64) for s in sequences if len(s)]
    if not seqs:
        raise LmlabError("no tokens to measure: every sequence is empty")
    best = np.concatenate([longest_covering_span(index, s) for s in seqs])
    return Coverage(ks, [float(np.mean(best >= k)) for k in ks], int(len(best)), len(seqs))
