"""Summary of a data dir (`lmlab data stats`): sizes per split, tokens per byte, most frequent tokens."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from lmlab.data.shards import check_tokenizer, load_manifest, load_split, load_tokenizer_of
from lmlab.tokenization import Tokenizer

# Tokens counted per step when finding the most frequent ones: bounds memory on shards larger than RAM.
_COUNT_CHUNK = 1 << 24


def data_stats(data_dir: str | os.PathLike, *, top: int = 10,
               tokenizer: Tokenizer | str | os.PathLike | None = None) -> dict[str, Any]:
    """Per split: tokens, documents, text bytes (UTF-8), tokens per byte, mean tokens per document; plus dtype,
    tokenizer kind / fingerprint / vocab size, dedup counts, and the `top` most frequent train tokens as
    [token string, count] pairs (0 to skip reading the shard). Sizes are checked as in `load_split`; when
    `tokenizer` (a Tokenizer, or a tokenizer file path) is given, also that the shards were made with it."""
    data_dir = Path(data_dir)
    m = load_manifest(data_dir)
    if tokenizer is not None:
        check_tokenizer(data_dir, m, tokenizer if isinstance(tokenizer, Tokenizer) else Tokenizer.load(tokenizer))
    splits: dict[str, Any] = {}
    for name, entry in m["splits"].items():
        tokens = load_split(data_dir, name)  # validates the file size
        n_bytes = entry.get("text_bytes", 0)
        splits[name] = {
            "tokens": int(len(tokens)),
            "documents": entry.get("documents", 0),
            "text_bytes": n_bytes,
            "tokens_per_byte": len(tokens) / n_bytes if n_bytes else None,
            "tokens_per_document": len(tokens) / entry["documents"] if entry.get("documents") else None,
        }
    out: dict[str, Any] = {
        "data_dir": str(data_dir),
        "dtype": m["dtype"],
        "tokenizer": m["tokenizer"],
        "splits": splits,
        "documents_read": m.get("documents_read"),
        "dedup": m.get("dedup"),
        "sources": len(m.get("sources", [])),
    }
    if top > 0 and "train" in m["splits"]:
        out["top_tokens"] = _top_tokens(data_dir, m["tokenizer"]["vocab_size"], top)
    return out


def _top_tokens(data_dir: Path, vocab_size: int, top: int) -> list[list]:
    tokens = load_split(data_dir, "train")
    counts = np.zeros(vocab_size, dtype=np.int64)
    for start in range(0, len(tokens), _COUNT_CHUNK):
        counts += np.bincount(tokens[start:start + _COUNT_CHUNK], minlength=vocab_size)[:vocab_size]
    tok = load_tokenizer_of(data_dir)
    order = np.argsort(-counts, kind="stable")[:top]
    # decode, not id_to_token: shows ' the' rather than byte-level BPE's internal spelling 'Ġthe'.
    return [[tok.decode([int(i)]), int(counts[i])] for i in order if counts[i] > 0]
