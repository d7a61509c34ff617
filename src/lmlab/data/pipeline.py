"""`prepare`: corpus → deduplicated, split, tokenized shards with a manifest (the `lmlab data prepare` verb).

(Module named `pipeline`, not `prepare`, so that `lmlab.data.prepare` is unambiguously the function.)

Two streaming passes over the inputs, so neither the text nor the tokens are ever all in memory:
  1. read every document once: exact/near dedup decisions (one byte per document kept in memory), document count,
     source file sizes and SHA-256; then the seeded split by document;
  (1b. when `tokenizer` names a kind, train it on the train split, streamed;)
  2. read again, skip duplicates, and tokenize chunks of ~`CHUNK_CHARS` characters in parallel, appending each
     chunk's ids to its split's shard as soon as it is done, in order.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import warnings
from collections import deque
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from lmlab.data.dedup import DEDUP_MODES, make_deduplicator
from lmlab.data.reading import ERROR_MODES, Document, SourceFile, iter_documents
from lmlab.data.shards import DTYPES, ShardWriter, check_replaceable, dtype_for_vocab
from lmlab.data.split import SplitPlan, plan_split, validation_count
from lmlab.errors import LmlabError
from lmlab.tokenization import Tokenizer

TOKENIZER_KINDS = ("char", "word", "bpe")
# Characters per tokenization task: large enough that per-task overhead (pickling, process hops, Rust thread
# start-up) is small, small enough that 2 × workers chunks in flight stay a few tens of MB.
CHUNK_CHARS = 1 << 20
# ...or this many documents, whichever comes first: keeps tasks short for corpora of many tiny documents.
CHUNK_DOCS = 8192


def prepare(inputs: str | os.PathLike | Sequence[str | os.PathLike], tokenizer: Tokenizer | str | os.PathLike,
            out_dir: str | os.PathLike, *, val_fraction: float = 0.1, dedup: str = "exact", seed: int = 0,
            include: Sequence[str] | None = None, text_field: str = "text", split_blank_lines: bool = False,
            errors: str = "strict", vocab_size: int | None = None, numbers: str = "gpt2",
            workers: int | None = None, near_threshold: float = 0.8, special_tokens: Sequence[str] = (),
            val_inputs: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
            progress: bool = True) -> dict[str, Any]:
    """Read, deduplicate, split and tokenize a corpus into `out_dir` (train.bin, val.bin, tokenizer.json,
    manifest.json); returns the manifest.

    `tokenizer`: a Tokenizer, a path to a tokenizer JSON file, or a kind ("char", "word", "bpe") to train on the
    train split (with `vocab_size`, extra `special_tokens` such as "<sep>", and, for BPE, `numbers`). Documents
    are joined with `<eos>` after each one.
    `workers`: parallel tokenizing tasks (None: all cores, and for pure-Python tokenizers processes only when the
    corpus is over ~4 MB; 1: one background thread). BPE tokenizes in threads (its Rust engine releases the GIL);
    char and word tokenizers in worker processes. `dedup`: "none", "exact", or "near"
    (exact first, then MinHash near-duplicates at Jaccard ≥ `near_threshold`). An existing data dir at `out_dir`
    is replaced atomically, only once the new one is complete.

    Validation split (recorded in the manifest as `split.by`): with `val_inputs` (files/dirs of the user's own
    validation text), those documents are the val split and every input document is train ("val-files");
    otherwise a seeded `val_fraction` of the documents ("documents"), unless there are too few documents for that
    (fewer than 1 / val_fraction, e.g. one text file): then the last `val_fraction` of the text, cut at a line
    boundary, is held out as nanoGPT does ("tail"), with a warning saying so.
    """
    inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)  # read more than once
    if val_inputs is not None:
        val_inputs = [val_inputs] if isinstance(val_inputs, (str, os.PathLike)) else list(val_inputs)
    tok_or_kind = _check_options(tokenizer, dedup=dedup, errors=errors, val_fraction=val_fraction, workers=workers,
                                 vocab_size=vocab_size, special_tokens=special_tokens)
    out_dir = Path(out_dir)
    check_replaceable(out_dir)
    read_opts = dict(include=list(include) if include else None, text_field=text_field,
                     split_blank_lines=split_blank_lines, errors=errors)

    # --- pass 1: dedup decisions, counts, source hashes, the split -------------------------------------------
    corpus = _PlannedCorpus.read(inputs, val_inputs, read_opts, dedup=dedup, near_threshold=near_threshold,
                                 val_fraction=val_fraction, seed=seed, progress=progress)

    # --- tokenizer ------------------------------------------------------------------------------------------------
    trained_here = isinstance(tok_or_kind, str)
    if trained_here:
        from lmlab.tokenization import train_tokenizer

        tok = train_tokenizer(tok_or_kind, (d.text for _, d in corpus.documents("train")), vocab_size=vocab_size,
                              numbers=numbers, special_tokens=special_tokens, progress=progress)
    else:
        tok = tok_or_kind

    # --- pass 2: tokenize and write -------------------------------------------------------------------------------
    fields = {
        "created_by": f"lmlab {_version()}",
        "seed": seed,
        "val_fraction": val_fraction,
        "split": corpus.split.to_dict(),
        "documents_read": len(corpus.keep),
        "dedup": corpus.dedup_summary,
        "sources": [s.to_dict() for s in corpus.sources],
        "options": {**read_opts, "tokenizer_trained_here": trained_here,
                    **({"numbers": numbers, "vocab_size": vocab_size, "special_tokens": list(special_tokens)}
                       if trained_here else {})},
    }
    return _tokenize_and_write(corpus, tok, out_dir, fields, workers=workers, progress=progress)


def _check_options(tokenizer, *, dedup: str, errors: str, val_fraction: float, workers: int | None,
                   vocab_size: int | None, special_tokens: Sequence[str]) -> Tokenizer | str:
    """Check every option of `prepare` before a byte is read; returns the Tokenizer or the kind to train."""
    if dedup not in DEDUP_MODES:
        raise LmlabError(f"unknown dedup mode {dedup!r}: use one of {', '.join(DEDUP_MODES)}")
    if errors not in ERROR_MODES:
        raise LmlabError(f"unknown errors mode {errors!r}: use one of {', '.join(ERROR_MODES)}")
    validation_count(0, val_fraction)  # range check
    if workers is not None and workers < 1:
        raise LmlabError(f"workers must be ≥ 1, got {workers}")
    tok_or_kind = resolve_tokenizer(tokenizer)
    if (vocab_size is not None or special_tokens) and not isinstance(tok_or_kind, str):
        raise LmlabError("vocab_size and special tokens apply only when the tokenizer is trained here (--tokenizer "
                         "char|word|bpe); the given tokenizer file fixes its own vocabulary")
    return tok_or_kind


def _tokenize_and_write(corpus: "_PlannedCorpus", tok: Tokenizer, out_dir: Path, fields: dict[str, Any], *,
                        workers: int | None, progress: bool) -> dict[str, Any]:
    """Pass 2 of `prepare`: tokenize the kept documents in parallel and write the shards, committed with the
    manifest `fields`; returns the manifest."""
    n_workers = (os.cpu_count() or 1) if workers is None else workers
    total_bytes = sum(s.bytes for s in corpus.sources)
    parallel = _make_executor(tok, n_workers, total_bytes, explicit=workers is not None)
    with ShardWriter(out_dir, tok) as writer, parallel as (executor, encode):
        pending: deque = deque()
        bar = _progress(None, progress, "tokenizing", total=corpus.n_parts, unit="doc")
        for which, texts in _chunks(corpus.documents()):
            pending.append((which, len(texts), executor.submit(encode, texts)))
            # Bounded look-ahead: enough tasks to keep every worker busy, never the whole corpus.
            while len(pending) > 2 * n_workers:
                _write_done(writer, pending.popleft(), bar)
        while pending:
            _write_done(writer, pending.popleft(), bar)
        bar.close()
        return writer.commit(fields)


class _PlannedCorpus:
    """The inputs after the first read: which documents dedup keeps, how they split, and the files read. Later
    reads (`documents`) stream the same inputs again and apply these decisions, so no text is held in memory."""

    def __init__(self, inputs: list, val_inputs: list | None, read_opts: dict[str, Any], keep: bytearray,
                 split: SplitPlan, sources: list[SourceFile], dedup_summary: dict[str, Any]):
        self.inputs, self.val_inputs, self.read_opts = inputs, val_inputs, read_opts
        self.keep, self.split, self.sources, self.dedup_summary = keep, split, sources, dedup_summary
        self.n_parts = sum(keep) + (split.cut_doc >= 0)  # documents to tokenize: the tail split cuts one in two

    @classmethod
    def read(cls, inputs: list, val_inputs: list | None, read_opts: dict[str, Any], *, dedup: str,
             near_threshold: float, val_fraction: float, seed: int, progress: bool) -> "_PlannedCorpus":
        """Read every document once: dedup decisions, source sizes and hashes, then the train/val split."""
        exact = make_deduplicator("exact") if dedup in ("exact", "near") else None
        near = make_deduplicator("near", near_threshold=near_threshold) if dedup == "near" else None
        keep = bytearray()
        from_val_files: list[bool] = []  # per kept document: read from val_inputs
        kept_chars: list[int] = []  # per kept document: its length, for the tail split
        sources: list[SourceFile] = []
        for is_val_file, doc in _progress(_read_inputs(inputs, val_inputs, on_file=sources.append, **read_opts),
                                          progress, "reading + dedup", unit="doc"):
            dup = (exact is not None and exact.seen(doc.text)) or (near is not None and near.seen(doc.text))
            keep.append(0 if dup else 1)
            if not dup:
                from_val_files.append(is_val_file)
                kept_chars.append(len(doc.text))
        split = plan_split(from_val_files if val_inputs is not None else None, kept_chars, val_fraction, seed)
        if split.by == "tail":
            warnings.warn(f"the corpus has only {len(kept_chars)} document(s), too few to hold out "
                          f"{val_fraction:.0%} of them; the last {val_fraction:.0%} of the text is the validation "
                          "split instead (give your own validation text with --val FILE, or more documents)",
                          stacklevel=3)
        elif val_inputs is not None and not any(from_val_files):
            raise LmlabError(f"every document of the --val input(s) {', '.join(map(str, val_inputs))} also occurs "
                             "in the training input(s), so dedup left no validation text; give other validation text")
        summary = {"mode": dedup, "exact_duplicates_removed": exact.removed if exact else 0,
                   "near_duplicates_removed": near.removed if near else 0,
                   **({"near_threshold": near_threshold} if near else {})}
        return cls(inputs, val_inputs, read_opts, keep, split, sources, summary)

    def documents(self, which: str | None = None) -> Iterator[tuple[str, Document]]:
        """The kept documents with their split ("train" | "val"), in reading order, only those of split `which`
        if given (the document that the tail split cuts comes as its train part, then its val part)."""
        j = 0
        i = -1
        for i, (_, doc) in enumerate(_read_inputs(self.inputs, self.val_inputs, **self.read_opts)):
            if i >= len(self.keep):
                break
            if not self.keep[i]:
                continue
            for s, part in self.split.parts(j, doc):
                if which is None or s == which:
                    yield s, part
            j += 1
        if i + 1 != len(self.keep):  # dedup and split decisions are per position: they only hold for one stream
            raise LmlabError(f"the inputs changed while being prepared ({len(self.keep)} documents on the first "
                             f"read, {'more' if i + 1 > len(self.keep) else i + 1} on the next); run prepare again")


def _read_inputs(inputs: list, val_inputs: list | None, **read_opts) -> Iterator[tuple[bool, Document]]:
    """(from val_inputs?, document) for the documents of `inputs`, then those of `val_inputs`, in reading order."""
    for doc in iter_documents(inputs, **read_opts):
        yield False, doc
    if val_inputs is not None:
        for doc in iter_documents(val_inputs, **read_opts):
            yield True, doc


def resolve_tokenizer(spec: Tokenizer | str | os.PathLike) -> Tokenizer | str:
    """A Tokenizer as is; a kind name ("char", "word", "bpe") as the string; otherwise a tokenizer JSON path,
    loaded. Raises LmlabError when it is neither."""
    if isinstance(spec, Tokenizer):
        return spec
    text = os.fspath(spec)
    path = Path(text)
    if text in TOKENIZER_KINDS and not path.is_file():
        return text
    if not path.is_file():
        raise LmlabError(f"tokenizer {text!r} is neither a tokenizer file nor a kind to train "
                         f"({', '.join(TOKENIZER_KINDS)}); make one with `lmlab tokenizer train`")
    return Tokenizer.load(path)


def encode_documents(tokenizer: Tokenizer, texts: list[str]) -> tuple[np.ndarray, int]:
    """Token ids of `texts` with `<eos>` after each, as one flat array (uint16/uint32 as the shards), and the
    texts' total UTF-8 size in bytes."""
    dtype = DTYPES[dtype_for_vocab(tokenizer.vocab_size)]
    encoded = tokenizer.encode_batch(texts)
    out = np.empty(sum(map(len, encoded)) + len(encoded), dtype=dtype)
    pos = 0
    for ids in encoded:
        out[pos:pos + len(ids)] = ids
        pos += len(ids)
        out[pos] = tokenizer.eos_id
        pos += 1
    return out, sum(len(t.encode("utf-8")) for t in texts)


# --- parallelism ----------------------------------------------------------------------------------------------------
_WORKER_TOKENIZER: Tokenizer | None = None


def _init_worker(cls: type[Tokenizer], state: dict[str, Any]) -> None:
    global _WORKER_TOKENIZER
    # One process per core already: a tokenizer's own thread pool inside each would only oversubscribe the CPU.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _WORKER_TOKENIZER = cls.from_dict(state)


def _encode_in_worker(texts: list[str]) -> tuple[np.ndarray, int]:
    assert _WORKER_TOKENIZER is not None
    return encode_documents(_WORKER_TOKENIZER, texts)


# Kinds whose `encode_batch` runs in native code that releases the GIL (HF tokenizers' Rust BPE): threads in this
# process tokenize them in parallel with no copying of text between processes. Pure-Python kinds need processes.
NATIVE_KINDS = frozenset({"bpe"})


class _make_executor:
    """Context manager giving (executor, encode function) for `n_workers` parallel tokenizing tasks.

    Native kinds: a thread pool in this process. Pure-Python kinds (char, word): worker processes, each rebuilt
    from `to_dict()`, when more than one worker is asked for explicitly, or by default (`explicit=False`) when
    the corpus is big enough to repay their start-up (~0.5 s each). Otherwise one background thread (which still
    overlaps reading and writing with tokenizing).
    """

    def __init__(self, tok: Tokenizer, n_workers: int, total_bytes: int, explicit: bool):
        self.executor: Executor
        small = not explicit and total_bytes <= 4 * CHUNK_CHARS
        if tok.kind in NATIVE_KINDS or n_workers == 1 or small:
            self.executor = ThreadPoolExecutor(n_workers if tok.kind in NATIVE_KINDS else 1)
            self.encode = lambda texts: encode_documents(tok, texts)
        else:
            # spawn, not fork: forking a process that runs threads (torch's, tqdm's, the tokenizer's) can deadlock.
            self.executor = ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=_init_worker, initargs=(type(tok), tok.to_dict()))
            self.encode = _encode_in_worker

    def __enter__(self):
        return self.executor, self.encode

    def __exit__(self, *exc) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def _chunks(docs: Iterator[tuple[str, Document]]) -> Iterator[tuple[str, list[str]]]:
    """Group documents per split into lists of about CHUNK_CHARS characters (at most CHUNK_DOCS documents),
    keeping order within each split."""
    buf: dict[str, list[str]] = {"train": [], "val": []}
    size = {"train": 0, "val": 0}
    for split, doc in docs:
        buf[split].append(doc.text)
        size[split] += len(doc.text)
        if size[split] >= CHUNK_CHARS or len(buf[split]) >= CHUNK_DOCS:
            yield split, buf[split]
            buf[split], size[split] = [], 0
    for split in ("train", "val"):
        if buf[split]:
            yield split, buf[split]


def _write_done(writer: ShardWriter, item, bar) -> None:
    split, n_docs, future = item
    ids, text_bytes = future.result()
    writer.write(split, ids, documents=n_docs, text_bytes=text_bytes)
    bar.update(n_docs)


def _progress(iterable, enabled: bool, desc: str, **kw):
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, disable=not enabled or not sys.stderr.isatty(), file=sys.stderr,
                leave=False, **kw)


def _version() -> str:
    from lmlab import __version__

    return __version__
