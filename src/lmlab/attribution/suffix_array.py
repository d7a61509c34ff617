"""An exact-match index over token shards: a suffix array (infini-gram's idea, Liu et al. 2024, at our scale).

Layout, in `DATA_DIR/attribution-index/` unless another directory is given:
    index.json          format, the shards' fingerprint, indexed splits, sizes, build time (written last)
    tokens.bin          the indexed splits' ids, concatenated (the shards' dtype, little-endian)
    suffix_array.bin    int32 (int64 past 2^31 tokens) start offsets of all suffixes of tokens.bin, sorted
    unigram.npy         (vocab,) int64 count of every id: ranges of 1-token prefixes and unigram probabilities
    doc_starts.npy      (documents,) int64 offset of each document's first token in tokens.bin

The suffixes that start with a query form one contiguous range of the suffix array; its width is the query's
count. Every query is matched one token at a time ("narrowing"): within a range whose suffixes share a prefix of
length l, the token at offset l is sorted, so two binary searches give the sub-range for the next query token; a
narrow range is read at once instead. The stream ends in `<eos>` and queries never contain `<eos>`, so a match
cannot run past the end of its document: no match spans two documents.

Everything is memory-mapped: opening an index reads only index.json, unigram.npy and doc_starts.npy.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from lmlab.attribution.corpus import Corpus, resolve_splits, shards_fingerprint
from lmlab.data import load_manifest
from lmlab.attribution.staging import absolute_output
from lmlab.data.shards import DTYPES
from lmlab.errors import LmlabError
from lmlab.utils import atomic_write_json, human_bytes, staged_directory

INDEX_DIRNAME = "attribution-index"
META_NAME = "index.json"
FORMAT_VERSION = 1
# Ranges at most this wide are read in one gather (a few µs) instead of binary-searched token by token.
_GATHER_WIDTH = 512


def default_index_dir(data_dir: str | os.PathLike) -> Path:
    """Where `build_index` puts the index of `data_dir` by default: beside the shards."""
    return Path(data_dir) / INDEX_DIRNAME


# ================================================================================================= building ===
def build_index(data_dir: str | os.PathLike, *, splits: str | Sequence[str] = "train",
                index_dir: str | os.PathLike | None = None) -> dict:
    """Build the suffix-array index of `splits` ("train", "all", or names) of a shard dir; returns index.json's
    content (sizes, bytes on disk, build seconds). Written to a temp dir and renamed into place at the end, so a
    failed build leaves any earlier index untouched."""
    from pydivsufsort import divsufsort

    data_dir = Path(data_dir)
    manifest = load_manifest(data_dir)
    names = resolve_splits(data_dir, splits)
    out = absolute_output(index_dir if index_dir is not None else default_index_dir(data_dir), META_NAME,
                          "an attribution index")
    start = time.perf_counter()
    corpus = Corpus.from_shards(data_dir, names)
    tokens = np.ascontiguousarray(corpus.tokens, dtype=DTYPES[manifest["dtype"]])
    suffix_array = divsufsort(tokens)  # int32 below 2^31 tokens, else int64
    unigram = np.bincount(tokens, minlength=int(manifest["tokenizer"]["vocab_size"])).astype(np.int64)
    with staged_directory(out) as tmp:
        tokens.tofile(tmp / "tokens.bin")
        suffix_array.astype(suffix_array.dtype.newbyteorder("<"), copy=False).tofile(tmp / "suffix_array.bin")
        np.save(tmp / "unigram.npy", unigram)
        np.save(tmp / "doc_starts.npy", corpus.doc_starts)
        seconds = time.perf_counter() - start
        disk = sum(p.stat().st_size for p in tmp.iterdir())
        meta = {"lmlab_attribution_index": FORMAT_VERSION, "shards_fingerprint": shards_fingerprint(manifest),
                "data_dir": str(data_dir.absolute()), "splits": names,
                "split_ranges": [list(r) for r in corpus.split_ranges], "dtype": manifest["dtype"],
                "suffix_array_dtype": str(suffix_array.dtype), "n_tokens": int(len(tokens)),
                "n_documents": int(corpus.n_documents), "eos_id": corpus.eos_id,
                "tokenizer_fingerprint": manifest["tokenizer"]["fingerprint"], "build_seconds": round(seconds, 3),
                "bytes_on_disk": disk, "bytes_per_token": round(disk / len(tokens), 3)}
        atomic_write_json(tmp / META_NAME, meta)
    return meta


def describe_build(meta: dict) -> str:
    """One line for a user: what was indexed, how big, how fast."""
    return (f"indexed {meta['n_tokens']:,} tokens in {meta['n_documents']:,} documents ({'+'.join(meta['splits'])}) "
            f"in {meta['build_seconds']:.2f} s ({meta['n_tokens'] / max(meta['build_seconds'], 1e-9):,.0f} tokens/s); "
            f"{human_bytes(meta['bytes_on_disk'])} on disk, {meta['bytes_per_token']:.2f} bytes/token")


# =================================================================================================== queries ===
@dataclass
class NextTokens:
    """Next-token counts after a context suffix: `suffix_len` tokens of context were used, `total` occurrences of
    that suffix were followed by `tokens[i]` `counts[i]` times (descending counts)."""

    suffix_len: int
    total: int
    tokens: np.ndarray
    counts: np.ndarray

    def prob(self, token: int) -> float:
        """count(suffix + token) / count(suffix); 0 for an unseen token (and for an unseen suffix)."""
        hit = np.flatnonzero(self.tokens == token)
        return float(self.counts[hit[0]] / self.total) if len(hit) and self.total else 0.0


class SuffixIndex:
    """An opened index (see the module docstring). `corpus` locates documents; `unigram` counts every id."""

    def __init__(self, index_dir: Path, meta: dict, corpus: Corpus, suffix_array: np.ndarray, unigram: np.ndarray):
        self.index_dir, self.meta, self.corpus = index_dir, meta, corpus
        # Plain ndarray views of the memmaps: scalar reads on an np.memmap subclass cost several times more.
        self.tokens = np.asarray(corpus.tokens)
        self.suffix_array = np.asarray(suffix_array)
        self.unigram = unigram
        self.first = np.concatenate([[0], np.cumsum(unigram)])  # suffixes starting with id c: [first[c], first[c+1])
        self.eos_id = corpus.eos_id

    @classmethod
    def open(cls, data_dir: str | os.PathLike, index_dir: str | os.PathLike | None = None) -> "SuffixIndex":
        """Memory-map the index of `data_dir`; LmlabError when there is none or it was built on other shards."""
        data_dir = Path(data_dir)
        manifest = load_manifest(data_dir)
        where = Path(index_dir) if index_dir is not None else default_index_dir(data_dir)
        meta_path = where / META_NAME
        if not meta_path.is_file():
            raise LmlabError(f"{data_dir} has no attribution index (no {meta_path}); build it with "
                             f"`lmlab attribute index {data_dir}`")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise LmlabError(f"{meta_path} is corrupted ({e}); rebuild with `lmlab attribute index {data_dir}`") \
                from None
        if meta.get("lmlab_attribution_index") != FORMAT_VERSION:
            raise LmlabError(f"{meta_path} is not an attribution index of format {FORMAT_VERSION}; rebuild with "
                             f"`lmlab attribute index {data_dir}`")
        now = shards_fingerprint(manifest)
        if meta["shards_fingerprint"] != now:
            raise LmlabError(f"the index in {where} was built on shards with fingerprint {meta['shards_fingerprint']}, "
                             f"but {data_dir} now holds shards with fingerprint {now}; rebuild with "
                             f"`lmlab attribute index {data_dir}`")
        n = int(meta["n_tokens"])
        tokens = _map(where / "tokens.bin", DTYPES[meta["dtype"]], n, data_dir)
        suffix_array = _map(where / "suffix_array.bin", np.dtype(meta["suffix_array_dtype"]).newbyteorder("<"), n,
                            data_dir)
        try:
            unigram, doc_starts = np.load(where / "unigram.npy"), np.load(where / "doc_starts.npy")
        except (OSError, ValueError) as e:
            raise LmlabError(f"{where} is damaged ({e}); rebuild with `lmlab attribute index {data_dir}`") from None
        ranges = [(str(s), int(p), int(d)) for s, p, d in meta["split_ranges"]]
        corpus = Corpus(tokens, int(meta["eos_id"]), ranges, doc_starts)
        return cls(where, meta, corpus, suffix_array, unigram)

    # --- the one primitive ------------------------------------------------------------------------------------
    def narrow(self, lo: int, hi: int, offset: int, token: int) -> tuple[int, int]:
        """Sub-range of suffix-array rows [lo, hi) (which share a prefix of `offset` tokens) whose token at
        `offset` equals `token`."""
        t, s = self.tokens, self.suffix_array
        if offset == 0 and lo == 0 and hi == len(s):
            if not 0 <= token < len(self.unigram):
                return 0, 0
            return int(self.first[token]), int(self.first[token + 1])
        if hi - lo <= _GATHER_WIDTH:
            values = t[s[lo:hi].astype(np.int64) + offset]
            return lo + int(np.searchsorted(values, token, "left")), lo + int(np.searchsorted(values, token, "right"))
        a, b = lo, hi
        while a < b:  # first row whose token at offset is ≥ token
            mid = (a + b) // 2
            if t[int(s[mid]) + offset] < token:
                a = mid + 1
            else:
                b = mid
        first, b = a, hi
        while a < b:  # first row whose token at offset is > token
            mid = (a + b) // 2
            if t[int(s[mid]) + offset] <= token:
                a = mid + 1
            else:
                b = mid
        return first, a

    def bounds(self, ids: Sequence[int] | np.ndarray) -> tuple[int, int]:
        """Suffix-array rows [lo, hi) of the suffixes that start with `ids` (no `<eos>` inside)."""
        self._check_query(ids)
        lo, hi = 0, len(self.suffix_array)
        for offset, token in enumerate(ids):
            lo, hi = self.narrow(lo, hi, offset, int(token))
            if lo == hi:
                break
        return lo, hi

    def _check_query(self, ids) -> None:
        if len(ids) == 0:
            raise LmlabError("the query is empty: give at least one token")
        if self.eos_id in np.asarray(ids):
            raise LmlabError("the query contains <eos>: matches never span two documents; query one document's "
                             "text at a time")

    # --- counts and occurrences -------------------------------------------------------------------------------
    def count(self, ids: Sequence[int] | np.ndarray) -> int:
        """Occurrences of the token sequence `ids` in the indexed splits."""
        lo, hi = self.bounds(ids)
        return hi - lo

    def positions(self, ids: Sequence[int] | np.ndarray, limit: int | None = None) -> np.ndarray:
        """Stream positions where `ids` occurs, ascending; the first `limit` of them when given."""
        lo, hi = self.bounds(ids)
        found = self.suffix_array[lo:hi].astype(np.int64)
        if limit is not None and limit < len(found):
            found = np.partition(found, limit - 1)[:limit]
        return np.sort(found)

    # --- next-token distributions -----------------------------------------------------------------------------
    def _followers(self, lo: int, hi: int, length: int) -> NextTokens:
        if length == 0:
            nz = np.flatnonzero(self.unigram)
            tokens, counts = nz, self.unigram[nz]
        else:
            nxt = self.tokens[self.suffix_array[lo:hi].astype(np.int64) + length]
            tokens, counts = np.unique(nxt, return_counts=True)
        order = np.argsort(-counts, kind="stable")
        return NextTokens(length, int(hi - lo), tokens[order].astype(np.int64), counts[order].astype(np.int64))

    def ngram_next(self, context: Sequence[int] | np.ndarray, n: int) -> NextTokens:
        """n-gram next-token counts: after the last n-1 tokens of `context` (within its last document); an unseen
        (n-1)-gram gives total 0."""
        if n < 1:
            raise LmlabError(f"n must be ≥ 1, got {n}")
        ctx = self._current_document(context)
        suffix = ctx[len(ctx) - min(n - 1, len(ctx)):]
        if len(suffix) == 0:
            return self._followers(0, len(self.suffix_array), 0)
        lo, hi = self.bounds(suffix)
        return self._followers(lo, hi, len(suffix))

    def infgram_next(self, context: Sequence[int] | np.ndarray) -> NextTokens:
        """∞-gram next-token counts (Liu et al. 2024): after the longest suffix of `context` (within its last
        document) that occurs in the index."""
        ctx = self._current_document(context)
        length, lo, hi = self._longest_suffix(ctx, len(ctx))
        return self._followers(lo, hi, length)

    def _current_document(self, context) -> np.ndarray:
        ctx = np.asarray(context, dtype=np.int64)
        ends = np.flatnonzero(ctx == self.eos_id)
        return ctx[ends[-1] + 1:] if len(ends) else ctx

    def _longest_suffix(self, ctx: np.ndarray, at_most: int) -> tuple[int, int, int]:
        """(length, lo, hi) of the longest suffix of ctx, at most `at_most` long, with a non-zero count. Counts only
        fall as a suffix grows, so "occurs" is monotone in the length: try the longest first (the usual answer
        when scanning a text left to right), then bisect."""
        full = (0, 0, len(self.suffix_array))
        top = min(at_most, len(ctx))
        if top == 0:
            return full
        lo, hi = self.bounds(ctx[len(ctx) - top:])
        if hi > lo:
            return top, lo, hi
        best, a, b = full, 1, top - 1  # a..b: lengths still in doubt
        while a <= b:
            mid = (a + b) // 2
            lo, hi = self.bounds(ctx[len(ctx) - mid:])
            if hi > lo:
                best, a = (mid, lo, hi), mid + 1
            else:
                b = mid - 1
        return best

    def infgram_logprobs(self, tokens: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """∞-gram log p(tokens[i] | tokens[doc start..i)) for i = 1..n-1, float64 (−inf where the longest suffix
        was never followed by that token), and the suffix length used for each; the context of a token is the
        text since the last `<eos>` before it. Uses that the longest matching suffix grows by at most one token
        per step."""
        arr = np.asarray(tokens, dtype=np.int64)
        out = np.full(max(len(arr) - 1, 0), -np.inf)
        lengths = np.zeros(len(out), dtype=np.int64)
        doc_start, prev = 0, 0
        n_total = float(self.unigram.sum())
        for i in range(1, len(arr)):
            if arr[i - 1] == self.eos_id:
                doc_start, prev = i, 0
            ctx = arr[doc_start:i]
            length, lo, hi = self._longest_suffix(ctx, prev + 1)
            target = int(arr[i])
            if length == 0:
                hit = self.unigram[target] if 0 <= target < len(self.unigram) else 0
                out[i - 1] = np.log(hit / n_total) if hit else -np.inf
            else:
                a, b = self.narrow(lo, hi, length, target)
                out[i - 1] = np.log((b - a) / (hi - lo)) if b > a else -np.inf
            lengths[i - 1] = prev = length
        return out, lengths

    # --- verbatim spans -----------------------------------------------------------------------------------------
    def longest_matches(self, ids: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each position i of `ids`: the length of the longest prefix of ids[i:] that occurs in the index
        (never crossing an `<eos>`), and that prefix's count. Two (len(ids),) int64 arrays."""
        arr = np.asarray(ids, dtype=np.int64)
        lengths = np.zeros(len(arr), dtype=np.int64)
        counts = np.zeros(len(arr), dtype=np.int64)
        for i in range(len(arr)):
            lo, hi, length = 0, len(self.suffix_array), 0
            while i + length < len(arr) and arr[i + length] != self.eos_id:
                a, b = self.narrow(lo, hi, length, int(arr[i + length]))
                if a == b:
                    break
                lo, hi, length = a, b, length + 1
            lengths[i], counts[i] = length, (hi - lo) if length else 0
        return lengths, counts

    def unigram_logprob(self, ids: Sequence[int] | np.ndarray) -> float:
        """Σ log p_unigram(token) over `ids` (nats): how rare a span is, OLMoTrace's span-ranking score."""
        counts = self.unigram[np.asarray(ids, dtype=np.int64)].astype(np.float64)
        return float(np.sum(np.log(np.maximum(counts, 1.0) / float(self.unigram.sum()))))


def _map(path: Path, dtype: np.dtype, n: int, data_dir: Path) -> np.ndarray:
    """A read-only memmap of n items, after checking the file's size."""
    expected = n * dtype.itemsize
    if not path.is_file() or path.stat().st_size != expected:
        raise LmlabError(f"{path} is missing or truncated (expected {expected} bytes); rebuild with "
                         f"`lmlab attribute index {data_dir}`")
    return np.memmap(path, dtype=dtype, mode="r", shape=(n,))
