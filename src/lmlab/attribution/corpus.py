"""The token stream that attribution searches: chosen splits of a shard directory, concatenated, with its documents.

A shard split is a flat array of ids with `<eos>` after every document (`lmlab.data.shards`), so the documents of
the concatenation are the runs of tokens that end in `<eos>`. Document ids count from 0 over the concatenation in
split order; `Corpus.locate` turns a stream position into (document, split, document within split, offset).

`shards_fingerprint` names one exact set of shards: indexes and datastores record it, and refuse to answer when the
shards they were built from have changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lmlab.checkpoint import Run, run_data_dir
from lmlab.data import load_manifest, load_split
from lmlab.errors import LmlabError
from lmlab.tokenization import Tokenizer


def shards_fingerprint(manifest: dict[str, Any]) -> str:
    """16 hex chars naming the shards a manifest describes: tokenizer, dtype, and every split's token count and
    SHA-256. Re-preparing different text (or with another tokenizer) changes it; re-preparing the same bytes does
    not."""
    body = {"tokenizer": manifest["tokenizer"]["fingerprint"], "dtype": manifest["dtype"],
            "splits": {name: [entry.get("tokens"), entry.get("sha256")]
                       for name, entry in sorted(manifest["splits"].items())}}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def resolve_splits(data_dir: str | os.PathLike, splits: str | Sequence[str]) -> list[str]:
    """Split names from "train", "all" or a list ("train,val" is split on commas); each must exist in the manifest."""
    available = list(load_manifest(data_dir)["splits"])
    if isinstance(splits, str):
        names = available if splits == "all" else [s.strip() for s in splits.split(",") if s.strip()]
    else:
        names = list(splits)
    unknown = [s for s in names if s not in available]
    if not names or unknown:
        raise LmlabError(f"{data_dir} has no split(s) {unknown or names!r}: choose from {', '.join(available)} "
                         "or 'all'")
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class Location:
    """Where a stream position lies: its document (global id), that document's split and index within the split,
    and the offset (tokens) from the document's start."""

    document: int
    split: str
    split_document: int
    offset: int


class Corpus:
    """Token ids of some splits, concatenated, and their document boundaries.

    tokens: 1-D integer array (a memmap for one split, else in memory), always ending in `<eos>`.
    doc_starts: (n_documents,) int64 stream offset of each document's first token.
    split_ranges: [(split, first_position, first_document)] in stream order.
    """

    def __init__(self, tokens: np.ndarray, eos_id: int, split_ranges: list[tuple[str, int, int]],
                 doc_starts: np.ndarray | None = None):
        self.tokens = tokens
        self.eos_id = int(eos_id)
        self.split_ranges = split_ranges
        self.doc_starts = doc_starts if doc_starts is not None else document_starts(tokens, eos_id)

    @classmethod
    def from_shards(cls, data_dir: str | os.PathLike, splits: Sequence[str] = ("train",)) -> "Corpus":
        """The named splits of `data_dir` (validated by `load_split`), concatenated in the order given."""
        manifest = load_manifest(data_dir)
        arrays = [load_split(data_dir, s) for s in splits]
        ranges, pos, docs = [], 0, 0
        for name, arr in zip(splits, arrays):
            ranges.append((name, pos, docs))
            pos += len(arr)
            docs += int(manifest["splits"][name].get("documents", 0))
        tokens = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
        if len(tokens) == 0:
            raise LmlabError(f"split(s) {', '.join(splits)} of {data_dir} hold no tokens; prepare more text")
        eos = int(manifest["eos_id"])
        if tokens[-1] != eos:  # every document ends in <eos>; guard against hand-made shards
            tokens = np.append(tokens, np.array([eos], dtype=tokens.dtype))
        return cls(tokens, eos, ranges)

    @property
    def n_documents(self) -> int:
        return len(self.doc_starts)

    def document_of(self, positions: np.ndarray | int) -> np.ndarray:
        """Global document id of each stream position (same shape as `positions`)."""
        return np.searchsorted(self.doc_starts, positions, side="right") - 1

    def locate(self, position: int) -> Location:
        """The `Location` of one stream position."""
        doc = int(self.document_of(position))
        split, _, first_doc = next(r for r in reversed(self.split_ranges) if r[1] <= position)
        return Location(doc, split, doc - first_doc, int(position - self.doc_starts[doc]))

    def document_bounds(self, document: int) -> tuple[int, int]:
        """[start, end) stream offsets of a document's tokens, its `<eos>` excluded."""
        if not 0 <= document < self.n_documents:
            raise LmlabError(f"document {document} does not exist (the corpus has {self.n_documents})")
        start = int(self.doc_starts[document])
        end = int(self.doc_starts[document + 1]) - 1 if document + 1 < self.n_documents else len(self.tokens) - 1
        return start, end

    def window(self, position: int, length: int, before: int, after: int) -> tuple[list[int], list[int], list[int]]:
        """(ids before, ids of [position, position+length), ids after) with up to `before`/`after` context tokens,
        never reaching outside the document of `position`."""
        start, end = self.document_bounds(int(self.document_of(position)))
        lo, hi = max(start, position - before), min(end, position + length + after)
        ids = self.tokens[lo:hi].tolist()
        a, b = position - lo, position - lo + length
        return ids[:a], ids[a:b], ids[b:]


def document_starts(tokens: np.ndarray, eos_id: int) -> np.ndarray:
    """(n_documents,) int64 offsets where documents start in a stream that ends with `<eos>` (every document,
    including empty ones, ends with its own `<eos>`)."""
    ends = np.flatnonzero(np.asarray(tokens) == eos_id)
    return np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)


def encode_query(tokenizer: Tokenizer, text: str, *, what: str = "query") -> np.ndarray:
    """Token ids of a user's text as int64, refusing an empty text and one with characters the tokenizer only
    knows as `<unk>` (a match on `<unk>` would be meaningless)."""
    if not text:
        raise LmlabError(f"the {what} is empty: give some text")
    ids = tokenizer.encode(text)
    if not ids:
        raise LmlabError(f"the {what} {text!r} encodes to no tokens")
    unk = tokenizer.token_to_id("<unk>")
    if unk is not None and unk in ids:
        bad = sorted({ch for ch in text if tokenizer.encode(ch) == [unk]})
        raise LmlabError(f"the {what} has characters outside the tokenizer's vocabulary ({''.join(bad)!r}); "
                         "remove them or use a tokenizer with byte fallback")
    return np.asarray(ids, dtype=np.int64)


def data_dir_of(run: Run, data_dir: str | os.PathLike | None) -> Path:
    """`data_dir` when given, else the shard dir the run was trained on (LmlabError when it records none)."""
    return Path(data_dir) if data_dir is not None else run_data_dir(run, required="--data DATA_DIR")

