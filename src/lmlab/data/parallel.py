"""Parallel text (sentence pairs) for sequence-to-sequence models: reading, and shards of `source<sep>target`.

Accepted inputs (`read_parallel`):
- a TAB-separated file, one pair per line: `source<TAB>target[<TAB>anything else]` — the Tatoeba/Anki format
  (`English<TAB>French<TAB>attribution`); the columns fix the languages, so src_lang/tgt_lang are not used;
- line-aligned files named by language, `PREFIX.<src_lang>` and `PREFIX.<tgt_lang>` (Multi30k: train.en, train.fr):
  give the PREFIX path (`multi30k/val`) for one pair of files, or the directory for all its prefixes;
- several of the above (a list).
`reverse=True` swaps source and target (e.g. French → English from an English-French file).

`prepare_parallel` writes an ordinary shard directory (`lmlab.data.shards`) whose documents are
`source<sep>target` — no spaces around `<sep>`, so each side is tokenized exactly as that text alone would be at
translation time. The tokenizer is trained on the train split (both languages) with `<sep>` and any other
special tokens the model needs. A directory with `train.*` and `val.*` (or `valid.*`/`dev.*`) files keeps that
official split; otherwise a seeded random `val_fraction` of the pairs is held out. The val split is what
`lmlab eval translation` scores by default; `split_pairs` reads a split back as text pairs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lmlab.data.dedup import make_deduplicator
from lmlab.data.documents import document_spans
from lmlab.data.pipeline import encode_documents, resolve_tokenizer
from lmlab.data.shards import ShardWriter, load_manifest, load_split, load_tokenizer_of
from lmlab.data.split import split_mask
from lmlab.errors import LmlabError
from lmlab.tokenization import Tokenizer
from lmlab.utils import sha256_file

SEP = "<sep>"
VAL_PREFIXES = ("val", "valid", "dev")  # names of an official held-out split in a directory of aligned files

Pair = tuple[str, str]


# ======================================================================================================= reading ===
def read_parallel(path_or_paths: str | os.PathLike | Sequence[str | os.PathLike], *, src_lang: str = "en",
                  tgt_lang: str = "fr", reverse: bool = False) -> list[Pair]:
    """Sentence pairs (source, target) of the inputs, in reading order (see the module docstring for formats).

    Whitespace at both ends of each side is removed; pairs with an empty side are skipped. Raises LmlabError for a
    missing input, a TSV line without a TAB, aligned files of different lengths, or text containing `<sep>`."""
    pairs: list[Pair] = []
    for src_file, tgt_file, _ in _parallel_sources(path_or_paths, src_lang, tgt_lang):
        pairs += _read_source(src_file, tgt_file)
    return [(t, s) for s, t in pairs] if reverse else pairs


def _parallel_sources(path_or_paths, src_lang: str, tgt_lang: str) -> list[tuple[Path, Path | None, str]]:
    """(source file, target file or None for a TSV file, prefix name) for every input."""
    items = [path_or_paths] if isinstance(path_or_paths, (str, os.PathLike)) else list(path_or_paths)
    if not items:
        raise LmlabError("no parallel data given: pass a TSV file, a PREFIX of aligned files, or a directory")
    out: list[tuple[Path, Path | None, str]] = []
    for item in items:
        p = Path(item)
        if p.is_file():
            out.append((p, None, p.stem))
        elif p.is_dir():
            prefixes = sorted({f.name[:-len(src_lang) - 1] for f in p.iterdir()
                               if f.name.endswith(f".{src_lang}") and (p / f"{f.name[:-len(src_lang)]}{tgt_lang}").is_file()})
            if not prefixes:
                raise LmlabError(f"{p} holds no pair of aligned files PREFIX.{src_lang} + PREFIX.{tgt_lang}; choose "
                                 "the languages with --src-lang/--tgt-lang, or give a TAB-separated file")
            out += [(p / f"{x}.{src_lang}", p / f"{x}.{tgt_lang}", x) for x in prefixes]
        elif Path(f"{p}.{src_lang}").is_file() and Path(f"{p}.{tgt_lang}").is_file():
            out.append((Path(f"{p}.{src_lang}"), Path(f"{p}.{tgt_lang}"), p.name))
        else:
            raise LmlabError(f"parallel data {p} not found: give a TAB-separated file, a directory of aligned files, "
                             f"or a PREFIX with files PREFIX.{src_lang} and PREFIX.{tgt_lang}")
    return out


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise LmlabError(f"{path} is not UTF-8 text (byte {e.start})") from None


def _read_source(src_file: Path, tgt_file: Path | None) -> list[Pair]:
    if tgt_file is None:  # one TSV file
        rows = []
        for n, line in enumerate(_lines(src_file), 1):
            if not line.strip():
                continue
            cols = line.split("\t")
            if len(cols) < 2:
                raise LmlabError(f"{src_file}:{n}: no TAB: each line must be 'source<TAB>target' (a file of one "
                                 "language needs its partner: give PREFIX for PREFIX.<src> + PREFIX.<tgt>)")
            rows.append((cols[0], cols[1], f"{src_file}:{n}"))
    else:
        src, tgt = _lines(src_file), _lines(tgt_file)
        if len(src) != len(tgt):
            raise LmlabError(f"{src_file} has {len(src)} lines but {tgt_file} has {len(tgt)}: aligned files must "
                             "have one line per sentence, in the same order")
        rows = [(s, t, f"{src_file}:{n}") for n, (s, t) in enumerate(zip(src, tgt), 1)]
    pairs = []
    for s, t, where in rows:
        s, t = s.strip(), t.strip()
        if SEP in s or SEP in t:
            raise LmlabError(f"{where}: the text contains {SEP}, which separates source and target; remove it")
        if s and t:
            pairs.append((s, t))
    return pairs


# ====================================================================================================== shards ===
def pair_document(source: str, target: str) -> str:
    """The document text of one pair: `source<sep>target`."""
    return f"{source}{SEP}{target}"


def prepare_parallel(inputs: str | os.PathLike | Sequence[str | os.PathLike], out_dir: str | os.PathLike, *,
                     src_lang: str = "en", tgt_lang: str = "fr", reverse: bool = False,
                     tokenizer: Tokenizer | str | os.PathLike = "bpe", vocab_size: int | None = None,
                     special_tokens: Sequence[str] = (SEP,), val_fraction: float = 0.1, seed: int = 0,
                     dedup: bool = True, progress: bool = True) -> dict[str, Any]:
    """Write a shard directory of `source<sep>target` documents from parallel inputs; returns the manifest.

    tokenizer: a kind to train on the train split ("bpe" default, "char", "word"; with `vocab_size` and
    `special_tokens`, which always include <sep> — pass `Seq2Seq.special_tokens` to train a seq2seq model on it, as
    `lmlab data prepare-parallel` does), or a Tokenizer / tokenizer file that has <sep>. Held out: the official
    val files of a directory input, else a seeded random `val_fraction` of the pairs. dedup drops repeated
    identical pairs (before the split, so no pair is in both splits). The manifest records the languages under
    "parallel"."""
    sources = _parallel_sources(inputs, src_lang, tgt_lang)
    names = {name for _, tgt, name in sources if tgt is not None}
    # An official split: aligned `train.*` and `val.*` files; other prefixes (e.g. test.*) are then left out.
    official = names & set(VAL_PREFIXES) if "train" in names else set()
    splits: dict[str, list[Pair]] = {"train": [], "val": []}
    pairs_read = 0
    deduper = make_deduplicator("exact") if dedup else None
    kept: list[tuple[str, Pair]] = []  # (official split or "", pair)
    for src_file, tgt_file, name in sources:
        if official and name not in official and name != "train":
            continue
        pairs = _read_source(src_file, tgt_file)
        pairs_read += len(pairs)
        for s, t in pairs:
            pair = (t, s) if reverse else (s, t)
            if deduper is None or not deduper.seen(pair_document(*pair)):
                kept.append(("val" if name in official else "train" if official else "", pair))
    if not kept:
        raise LmlabError(f"no sentence pairs in {inputs}")
    if official:
        for split, pair in kept:
            splits[split].append(pair)
    else:
        is_val = split_mask(len(kept), val_fraction, seed)
        for (_, pair), v in zip(kept, is_val):
            splits["val" if v else "train"].append(pair)
    docs = {name: [pair_document(s, t) for s, t in pairs] for name, pairs in splits.items()}

    specials = [SEP] + [t for t in special_tokens if t != SEP]
    tok = resolve_tokenizer(tokenizer)
    trained_here = isinstance(tok, str)
    if trained_here:
        from lmlab.tokenization import train_tokenizer

        tok = train_tokenizer(tok, docs["train"], vocab_size=vocab_size, special_tokens=specials, progress=progress)
    else:
        if vocab_size is not None:
            raise LmlabError("vocab_size applies only to a tokenizer trained here (--tokenizer bpe|char|word)")
        missing = [t for t in specials if tok.token_to_id(t) is None]
        if missing:
            raise LmlabError(f"the tokenizer lacks the special token(s) {' '.join(missing)}; train one here "
                             "(--tokenizer bpe) or give one made with --special for each")
    longest = {}  # tokens of the longest document per split: the model's block_size should cover it
    with ShardWriter(out_dir, tok) as writer:
        for name, texts in docs.items():
            if texts:
                ids, text_bytes = encode_documents(tok, texts)
                writer.write(name, ids, documents=len(texts), text_bytes=text_bytes)
                spans = document_spans(ids, tok.eos_id)
                longest[name] = int((spans[:, 1] - spans[:, 0]).max())
        from lmlab import __version__

        return writer.commit({
            "created_by": f"lmlab {__version__}",
            "seed": seed,
            "val_fraction": None if official else val_fraction,
            "documents_read": pairs_read,
            "dedup": {"mode": "exact" if dedup else "none", "exact_duplicates_removed": pairs_read - len(kept),
                      "near_duplicates_removed": 0},
            "sources": [{"path": str(f), "bytes": f.stat().st_size, "sha256": sha256_file(f)}
                        for src, tgt, _ in sources for f in ([src] if tgt is None else [src, tgt])],
            "options": {"tokenizer_trained_here": trained_here,
                        **({"vocab_size": vocab_size, "special_tokens": specials} if trained_here else {})},
            "parallel": {"src_lang": src_lang, "tgt_lang": tgt_lang, "reverse": reverse,
                         "val_split": "official" if official else "random", "sep": SEP,
                         "longest_document_tokens": longest},
        })


def split_pairs(data_dir: str | os.PathLike, split: str = "val", tokenizer: Tokenizer | None = None) -> list[Pair]:
    """The (source, target) texts of a split of a `prepare_parallel` shard directory, decoded from its tokens
    (documents split at their first <sep>). Raises LmlabError when a document has no <sep>."""
    tok = tokenizer if tokenizer is not None else load_tokenizer_of(data_dir)
    tokens = np.asarray(load_split(data_dir, split, tok))
    sep = tok.token_to_id(SEP)
    if sep is None:
        raise LmlabError(f"the tokenizer of {data_dir} has no {SEP}: it is not a parallel data dir "
                         "(make one with `lmlab data prepare-parallel`)")
    pairs = []
    for start, end in document_spans(tokens, tok.eos_id):
        doc = tokens[start:end].tolist()
        if sep not in doc:
            raise LmlabError(f"a document of the {split} split of {data_dir} has no {SEP}; it is not "
                             "'source<sep>target' data (make it with `lmlab data prepare-parallel`)")
        cut = doc.index(sep)
        pairs.append((tok.decode(doc[:cut]), tok.decode(doc[cut + 1:])))
    return pairs


def parallel_options(data_dir: str | os.PathLike) -> dict[str, Any]:
    """The languages recorded by `prepare_parallel` ({} for a data dir made otherwise)."""
    return dict(load_manifest(data_dir).get("parallel") or {})
