"""Duplicate removal: exact (hash of whitespace-normalised text) and near-duplicate (MinHash LSH).

Both keep the first occurrence in reading order and drop later ones, and both are streaming filters with a
`seen(text) -> bool` method, so the corpus never has to be in memory: exact dedup keeps one 16-byte digest per
distinct document, near dedup keeps datasketch's LSH band tables (a few hundred bytes per document).
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

from lmlab.errors import LmlabError

DEDUP_MODES = ("none", "exact", "near")

_WORD = re.compile(r"\w+", re.UNICODE)


def normalise_for_dedup(text: str) -> str:
    """The form two documents must share to count as exact duplicates: runs of whitespace collapsed to one space,
    ends stripped. Case and punctuation are kept (they change what a model learns)."""
    return " ".join(text.split())


def exact_key(text: str) -> bytes:
    """16-byte BLAKE2b digest of the normalised text (collisions are astronomically unlikely)."""
    return hashlib.blake2b(normalise_for_dedup(text).encode("utf-8"), digest_size=16).digest()


class ExactDeduplicator:
    """`seen(text)` is True when a document with the same normalised text was offered before."""

    def __init__(self) -> None:
        self._keys: set[bytes] = set()
        self.removed = 0

    def seen(self, text: str) -> bool:
        key = exact_key(text)
        if key in self._keys:
            self.removed += 1
            return True
        self._keys.add(key)
        return False


def word_shingles(text: str, n: int) -> set[bytes]:
    """Set of n-word shingles (lower-cased words joined by spaces, UTF-8). Shorter documents give one shingle."""
    words = _WORD.findall(text.lower())
    if len(words) <= n:
        return {" ".join(words).encode("utf-8")}
    return {" ".join(words[i:i + n]).encode("utf-8") for i in range(len(words) - n + 1)}


class NearDeduplicator:
    """MinHash LSH over word shingles: `seen(text)` is True when an earlier document's estimated Jaccard
    similarity of shingle sets is at least `threshold` (datasketch's banded LSH decides; candidates are then
    confirmed against the stored signature so band collisions below the threshold do not remove documents).

    Memory: one `num_perm`-value signature (4 bytes per value) per kept document plus the band tables.
    Slower than exact dedup (shingling and hashing run in Python): roughly a few MB of text per second.
    """

    def __init__(self, threshold: float = 0.8, *, num_perm: int = 128, shingle_words: int = 5, seed: int = 1):
        if not 0.0 < threshold <= 1.0:
            raise LmlabError(f"near-duplicate threshold must be in (0, 1], got {threshold}")
        from datasketch import MinHash, MinHashLSH  # imported here: only near dedup needs it

        self._MinHash = MinHash
        # One set of hash permutations shared by every signature: building them per document costs more than
        # hashing a short document.
        template = MinHash(num_perm=num_perm, seed=seed)
        self._permutations, self._scheme = template.permutations, template.scheme
        self._lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._signatures: dict[int, np.ndarray] = {}
        self.threshold = threshold
        self.num_perm = num_perm
        self.shingle_words = shingle_words
        self.seed = seed
        self.removed = 0

    def signature(self, text: str):
        m = self._MinHash(num_perm=self.num_perm, seed=self.seed, permutations=self._permutations,
                          scheme=self._scheme)
        m.update_batch(list(word_shingles(text, self.shingle_words)))
        return m

    def seen(self, text: str) -> bool:
        m = self.signature(text)
        for key in self._lsh.query(m):
            # Fraction of equal MinHash values = unbiased estimate of the Jaccard similarity.
            if float(np.mean(m.hashvalues == self._signatures[key])) >= self.threshold:
                self.removed += 1
                return True
        key = len(self._signatures)
        self._signatures[key] = m.hashvalues.copy()
        self._lsh.insert(key, m)
        return False


def make_deduplicator(mode: str, *, near_threshold: float = 0.8):
    """The filter for a `--dedup` mode: None for "none", else an object with `seen(text)` and `removed`."""
    if mode == "none":
        return None
    if mode == "exact":
        return ExactDeduplicator()
    if mode == "near":
        return NearDeduplicator(near_threshold)
    raise LmlabError(f"unknown dedup mode {mode!r}: use one of {', '.join(DEDUP_MODES)}")
