"""Checks of a corrected corpus through the exact-match index (lmlab.attribution) and the shards themselves.

- `statement_documents`: where an index finds a statement as whole words — the documents that state an old fact.
  A statement is searched as the text itself (a document's first sentence) and with a space in front (any later
  one), since a byte-level BPE spells "The" and " The" with different tokens; a hit counts only when the tokens
  around it end a word ("Kesta" inside "Kestaville" is no hit).
- `compare_shards`: the documents whose tokens differ between old and new shards (documents line up one to one,
  see lmlab.editing.corpus), which must be exactly the documents the correction changed.
"""

from __future__ import annotations

import os

import numpy as np

from lmlab.attribution import SuffixIndex
from lmlab.data import document_spans, load_manifest, load_split
from lmlab.tokenization import Tokenizer


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def statement_documents(index: SuffixIndex, tokenizer: Tokenizer, text: str) -> list[tuple[str, int]]:
    """(split, document number within the split) of every whole-word occurrence of `text` in `index`, one entry
    per occurrence, in stream order."""
    variants = [tokenizer.encode(text)]
    spaced = tokenizer.encode(" " + text)
    if spaced[1:] != variants[0]:  # a tokenizer that spells the space as a token of its own needs no second form
        variants.append(spaced)
    tokens, eos = index.tokens, index.eos_id
    found: list[tuple[int, int]] = []
    for k, ids in enumerate(variants):
        for pos in index.positions(ids).tolist():
            if k == 0 and pos > 0 and tokens[pos - 1] != eos and _ends_word(tokenizer, int(tokens[pos - 1])):
                continue
            after = pos + len(ids)
            if after < len(tokens) and tokens[after] != eos and _starts_word(tokenizer, int(tokens[after])):
                continue
            found.append((pos, k))
    out = []
    for pos, _ in sorted(found):
        loc = index.corpus.locate(pos)
        out.append((loc.split, loc.split_document))
    return out


def _ends_word(tokenizer: Tokenizer, token: int) -> bool:
    text = tokenizer.decode([token])
    return bool(text) and _is_word_char(text[-1])


def _starts_word(tokenizer: Tokenizer, token: int) -> bool:
    text = tokenizer.decode([token])
    return bool(text) and _is_word_char(text[0])


def open_index(data_dir: str | os.PathLike, index_dir: str | os.PathLike) -> SuffixIndex:
    """Build an index of every split of `data_dir` into `index_dir` and open it."""
    from lmlab.attribution import build_index

    build_index(data_dir, splits="all", index_dir=index_dir)
    return SuffixIndex.open(data_dir, index_dir)


def compare_shards(old_dir: str | os.PathLike, new_dir: str | os.PathLike,
                   dropped: set[tuple[str, int]] = frozenset()) -> dict:
    """Documents whose tokens differ between the shards in `old_dir` and `new_dir`, split by split.

    dropped: (split, old document number) of documents the correction removed whole; the new shards lack them, and
    every other old document k must be the new document k − (dropped before k).
    Returns {"changed": sorted [(split, old document number)], "aligned": whether the document counts agree}.
    """
    changed: list[tuple[str, int]] = []
    aligned = True
    manifest = load_manifest(old_dir)
    eos = int(manifest["eos_id"])
    for split in manifest["splits"]:
        old, new = load_split(old_dir, split), load_split(new_dir, split)
        old_spans, new_spans = document_spans(old, eos), document_spans(new, eos)
        gone = sorted(d for s, d in dropped if s == split)
        keep = np.setdiff1d(np.arange(len(old_spans)), np.asarray(gone, dtype=np.int64))
        if len(keep) != len(new_spans):
            aligned = False
            continue
        for k_new, k_old in enumerate(keep.tolist()):
            (a, b), (c, d) = old_spans[k_old], new_spans[k_new]
            if b - a != d - c or not np.array_equal(old[a:b], new[c:d]):
                changed.append((split, k_old))
    return {"changed": sorted(changed), "aligned": aligned}
