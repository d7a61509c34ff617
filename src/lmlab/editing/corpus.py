"""The corpus behind a shard dir, replayed document by document, and a corrected copy of it.

`lmlab data prepare` records in manifest.json every source file (path, size, SHA-256), its reading options, its
dedup mode and its split. `replay_documents` reads the same files with the same options and makes the same dedup
and split decisions, so it yields exactly the documents of the shards, per split and in shard order. Writing the
corrected documents as one JSONL file per split and preparing them with the train file as input and the val file
as `val_inputs` (no dedup) then gives shards whose documents line up one to one with the old ones: a document that
no statement touched has the same tokens as before (`verify.compare_shards` checks this).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from lmlab.data import iter_documents, load_manifest, make_deduplicator
from lmlab.data.reading import Document
from lmlab.data.split import plan_split
from lmlab.editing.statements import StatementPattern, correct_text
from lmlab.errors import LmlabError
from lmlab.utils import sha256_file


def locate_sources(data_dir: str | os.PathLike, corpus: str | os.PathLike | None = None) -> list[Path]:
    """The source files the shards in `data_dir` were prepared from, in reading order, each checked against the
    size and SHA-256 the manifest records.

    A recorded path is looked for as written (relative to the current directory), then relative to each
    directory above `data_dir` (the main job records "runs/world/corpus/facts.txt" for runs/world-data); with
    `corpus` (a directory), by file name inside it.
    """
    data_dir = Path(data_dir)
    sources = load_manifest(data_dir).get("sources") or []
    if not sources:
        raise LmlabError(f"{data_dir}/manifest.json lists no source files, so the corpus cannot be corrected; "
                         "prepare the shards with `lmlab data prepare` (which records them)")
    found = []
    for src in sources:
        recorded = Path(src["path"])
        if corpus is not None:
            candidates = [Path(corpus) / recorded.name]
        else:
            candidates = [recorded] + ([] if recorded.is_absolute() else
                                       [parent / recorded for parent in data_dir.resolve().parents])
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            where = f"in {corpus}" if corpus is not None else f"as written or under a directory above {data_dir}"
            raise LmlabError(f"source file {recorded} of {data_dir} not found {where}; give the directory that "
                             "holds the corpus with --corpus DIR")
        if path.stat().st_size != src["bytes"] or sha256_file(path) != src["sha256"]:
            raise LmlabError(f"{path} is not the file {data_dir} was prepared from (size or SHA-256 differ): the "
                             "corpus changed since; correct the shards' own corpus (--corpus DIR)")
        found.append(path)
    return found


def replay_documents(data_dir: str | os.PathLike, files: list[Path]) -> Iterator[tuple[str, Document]]:
    """(split, document) for every document of the shards in `data_dir`, in shard order within each split,
    re-read from `files` (see `locate_sources`) with the manifest's reading options, dedup and split."""
    manifest = load_manifest(data_dir)
    split_info = manifest.get("split") or {"by": "documents"}
    if split_info.get("by") == "val-files":
        raise LmlabError(f"{data_dir} was prepared with separate validation files (--val), which its manifest does "
                         "not tell apart from the training files; correcting such shards is not supported yet")
    opts = manifest.get("options") or {}
    read_opts = dict(text_field=opts.get("text_field", "text"), split_blank_lines=opts.get("split_blank_lines", False),
                     errors=opts.get("errors", "strict"))
    dedup = manifest.get("dedup") or {}
    filt = make_deduplicator(dedup.get("mode", "none"), **({"near_threshold": dedup["near_threshold"]}
                                                            if "near_threshold" in dedup else {}))
    exact = make_deduplicator("exact") if dedup.get("mode") == "near" else None
    keep, kept_chars = bytearray(), []
    for doc in iter_documents(files, **read_opts):
        dup = filt is not None and ((exact is not None and exact.seen(doc.text)) or filt.seen(doc.text))
        keep.append(0 if dup else 1)
        if not dup:
            kept_chars.append(len(doc.text))
    plan = plan_split(None, kept_chars, float(manifest.get("val_fraction", 0.1)), int(manifest.get("seed", 0)))
    j = 0
    for i, doc in enumerate(iter_documents(files, **read_opts)):
        if not keep[i]:
            continue
        yield from plan.parts(j, doc)
        j += 1


@dataclass
class CorrectedCorpus:
    """The result of `write_corrected_corpus`.

    files: {split: JSONL path}. documents: one record per changed document {split, document (number within the
    split, in the old shards), source, index (within its source file), counts {request number: statements},
    removed (True when nothing of it was left), before, after}. counts: statements changed per request number.
    """

    files: dict[str, Path]
    documents: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[int, int] = field(default_factory=dict)
    documents_per_split: dict[str, int] = field(default_factory=dict)


def write_corrected_corpus(data_dir: str | os.PathLike, files: list[Path], patterns: list[StatementPattern],
                           out_dir: str | os.PathLike, *, remove: bool = False) -> CorrectedCorpus:
    """Replay the shards' documents, correct each (`statements.correct_text`) and write them to
    OUT_DIR/{split}.jsonl ({"text": ...} per line); a document that removal leaves empty is left out."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = CorrectedCorpus(files={})
    handles: dict[str, Any] = {}
    numbers: dict[str, int] = {}
    try:
        for split, doc in replay_documents(data_dir, files):
            if split not in handles:
                result.files[split] = out_dir / f"{split}.jsonl"
                handles[split] = open(result.files[split], "w", encoding="utf-8", newline="\n")
            number = numbers.get(split, 0)
            numbers[split] = number + 1
            fixed = correct_text(doc.text, patterns, remove=remove)
            emptied = not fixed.text.strip()
            if not emptied:
                handles[split].write(json.dumps({"text": fixed.text}, ensure_ascii=False) + "\n")
            if fixed.counts:
                for k, n in fixed.counts.items():
                    result.counts[k] = result.counts.get(k, 0) + n
                result.documents.append({"split": split, "document": number, "source": doc.source,
                                         "index": doc.index, "counts": {str(k): n for k, n in fixed.counts.items()},
                                         "removed": emptied, "before": doc.text, "after": fixed.text})
    finally:
        for h in handles.values():
            h.close()
    result.documents_per_split = numbers
    return result
