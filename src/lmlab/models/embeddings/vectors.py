"""Queries on a matrix of word vectors: cosine nearest neighbours and 3CosAdd analogies.

All scores are cosine similarities: vectors are normalised to unit length once; ids that are not words (see
`word_mask`) or whose vector is zero (never seen) are never returned and cannot be asked about.
"""

from __future__ import annotations

import difflib

import numpy as np

from lmlab.errors import LmlabError


class WordVectors:
    """vectors (V, d) float, tokens: the V token strings, word_mask (V,) bool."""

    def __init__(self, vectors: np.ndarray, tokens: list[str], word_mask: np.ndarray):
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(tokens) > len(vectors):
            raise ValueError(f"vectors {vectors.shape} must be (V, d) with V ≥ {len(tokens)} tokens")
        vectors = vectors[:len(tokens)]
        norms = np.linalg.norm(vectors, axis=1)
        self.usable = np.asarray(word_mask[:len(tokens)], dtype=bool) & (norms > 0)
        self.unit = np.where(self.usable[:, None], vectors / np.maximum(norms, 1e-30)[:, None], 0.0).astype(np.float32)
        self.tokens = list(tokens)
        self._id = {t: i for i, t in enumerate(self.tokens) if self.usable[i]}

    @property
    def dim(self) -> int:
        return self.unit.shape[1]

    def __contains__(self, word: str) -> bool:
        return word in self._id

    def index(self, word: str) -> int:
        """The id of `word`; LmlabError naming close known words when it has no vector."""
        if word in self._id:
            return self._id[word]
        close = difflib.get_close_matches(word, list(self._id), n=5, cutoff=0.6)
        lower = [w for w in self._id if w.lower() == word.lower()]
        close = list(dict.fromkeys(lower + close))[:5]
        hint = f"; close words: {', '.join(close)}" if close else ""
        raise LmlabError(f"{word!r} has no vector in this model (not a word of its vocabulary, or never seen in "
                         f"training){hint}")

    def vector(self, word: str) -> np.ndarray:
        """(d,) unit vector of `word`."""
        return self.unit[self.index(word)]

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two words."""
        return float(self.vector(a) @ self.vector(b))

    def nearest(self, query: np.ndarray, k: int, exclude: set[int] = frozenset()) -> list[tuple[str, float]]:
        """The k words whose unit vectors have the largest dot product with `query` (d,), best first."""
        scores = self.unit @ np.asarray(query, dtype=np.float32)
        scores[~self.usable] = -np.inf
        for i in exclude:
            scores[i] = -np.inf
        k = max(0, min(k, int(np.isfinite(scores).sum())))
        top = np.argpartition(-scores, k - 1)[:k] if k else np.array([], dtype=np.int64)
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.tokens[i], float(scores[i])) for i in top]

    def neighbors(self, word: str, k: int = 10) -> list[tuple[str, float]]:
        """The k words most cosine-similar to `word` (itself excluded), best first: [(word, cosine), ...]."""
        i = self.index(word)
        return self.nearest(self.unit[i], k, exclude={i})

    def analogy(self, a: str, b: str, c: str, k: int = 5) -> list[tuple[str, float]]:
        """3CosAdd (Mikolov et al. 2013): "a is to b as c is to ?" — the words x maximising cos(x, b̂ − â + ĉ),
        with a, b, c themselves excluded. [(word, cosine), ...], best first."""
        ia, ib, ic = self.index(a), self.index(b), self.index(c)
        target = self.unit[ib] - self.unit[ia] + self.unit[ic]
        norm = float(np.linalg.norm(target))
        return self.nearest(target / norm if norm > 0 else target, k, exclude={ia, ib, ic})
