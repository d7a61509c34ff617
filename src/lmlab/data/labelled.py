"""Labelled texts for classifiers: one reader for every format the project uses, returning
(texts, labels, label_names) with labels as class indices into label_names.

Formats (chosen from the path, see `read_labelled`):
    TSV / TXT   `sentence<TAB>label` per line, with or without a header line whose label column reads "label":
                SST-2 in GLUE form (`sst2_alps_train.tsv`: header, 1 = positive) and the UCI labelled sentences
                (`amazon_cells_labelled.txt`, `imdb_labelled.txt`, `yelp_labelled.txt`: no header, CRLF). Quoting
                is off: these files hold bare '"' characters.
    JSONL       one {"text": ..., "label": ...} object per line; label an index or a name. A "choices" list (the
                world's `tasks/sentiment.jsonl` items) names the classes, and "sentence" is read when "text" is absent.
    world       the world's training reviews, blank-line-separated 'Review: TEXT\\nSentiment: LABEL' documents
                (`WORLD/corpus/sentiment.txt`); a world directory itself means that file. Its held-out reviews
                (`WORLD/tasks/sentiment.jsonl`, never in the training text) are read as JSONL.

Label names: given `label_names`, integer labels index them and string labels must be one of them (anything else
is an error naming the file and line). Without them, the file decides: JSONL "choices", else the sorted distinct
string labels, else "0".."K-1" for integer labels.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import NamedTuple, Sequence

from lmlab.errors import LmlabError

# Class names of the sentiment task, in label-index order (GLUE SST-2 and the UCI files: 0 = negative, 1 = positive;
# the world's reviews use the words themselves).
SENTIMENT_LABELS = ("negative", "positive")
FORMATS = ("auto", "tsv", "jsonl", "world")
WORLD_REVIEWS = Path("corpus") / "sentiment.txt"


class LabelledData(NamedTuple):
    """Parallel lists of texts and class indices, and the class names the indices point into."""

    texts: list[str]
    labels: list[int]
    label_names: tuple[str, ...]


def read_labelled(path: str | os.PathLike, *, label_names: Sequence[str] | None = None,
                  format: str = "auto") -> LabelledData:
    """Read a labelled-text file (or a world dir) into (texts, labels, label_names).

    format: "auto" (a directory → world; *.jsonl → jsonl; a file whose first line starts with "Review:" → world;
    otherwise tsv), or one of "tsv", "jsonl", "world". Raises LmlabError naming the path (and line) for a missing
    file, a malformed line, a label outside `label_names`, or a file with no examples.
    """
    path = Path(path)
    if format not in FORMATS:
        raise LmlabError(f"unknown labelled-data format {format!r}; choose one of {', '.join(FORMATS)}")
    if path.is_dir():
        if format not in ("auto", "world") or not (path / WORLD_REVIEWS).is_file():
            raise LmlabError(f"{path} is a directory but not a world dir with {WORLD_REVIEWS}; give a labelled "
                             "file (.tsv, .txt, .jsonl) or a world made by `lmlab world --out DIR`")
        path, format = path / WORLD_REVIEWS, "world"
    if not path.is_file():
        raise LmlabError(f"labelled data file not found: {path}")
    if format == "auto":
        format = "jsonl" if path.suffix.lower() == ".jsonl" else "world" if _starts_with_review(path) else "tsv"
    reader = {"tsv": _read_tsv, "jsonl": _read_jsonl, "world": _read_world_reviews}[format]
    try:
        rows, file_names = reader(path)  # rows: (line number, text, raw label)
    except UnicodeDecodeError as e:
        raise LmlabError(f"{path} is not UTF-8 text ({e})") from None
    if not rows:
        raise LmlabError(f"{path} holds no labelled examples (expected {_EXPECTED[format]})")
    names = tuple(label_names) if label_names is not None else _infer_names(rows, file_names)
    if len(names) < 2 or len(set(names)) != len(names):
        raise LmlabError(f"{path}: a classifier needs at least two distinct classes, got {list(names)}")
    index = {n: i for i, n in enumerate(names)}
    labels = [_label_index(raw, names, index, path, lineno) for lineno, _, raw in rows]
    return LabelledData([text for _, text, _ in rows], labels, names)


_EXPECTED = {"tsv": "'sentence<TAB>label' lines", "jsonl": '{"text": ..., "label": ...} lines',
             "world": "'Review: ...\\nSentiment: ...' documents separated by blank lines"}
Row = tuple[int, str, "int | str"]


def _starts_with_review(path: Path) -> bool:
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.strip():
                return line.startswith("Review:")
    return False


def _read_tsv(path: Path) -> tuple[list[Row], None]:
    rows: list[Row] = []
    with open(path, encoding="utf-8", newline="") as f:
        for lineno, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            if not row or not "".join(row).strip():
                continue
            if len(row) != 2:
                raise LmlabError(f"{path}:{lineno}: expected 'sentence<TAB>label' (one TAB), got {row!r:.80}")
            text, label = row[0].strip(), row[1].strip()
            if not rows and label.lower() == "label":  # a header line (GLUE's 'sentence<TAB>label')
                continue
            rows.append((lineno, text, int(label) if _is_int(label) else label))
    return rows, None


def _read_jsonl(path: Path) -> tuple[list[Row], list[str] | None]:
    from lmlab.utils import iter_jsonl

    rows: list[Row] = []
    choices: list[str] | None = None
    for lineno, rec in iter_jsonl(path):
        text = rec.get("text", rec.get("sentence"))
        if not isinstance(text, str) or "label" not in rec:
            raise LmlabError(f'{path}:{lineno}: expected {{"text": "...", "label": ...}}, got keys {sorted(rec)}')
        label = rec["label"]
        if isinstance(label, bool) or not isinstance(label, (int, str)):
            raise LmlabError(f"{path}:{lineno}: label must be a class index or name, got {label!r}")
        if "choices" in rec:
            if choices is not None and rec["choices"] != choices:
                raise LmlabError(f"{path}:{lineno}: 'choices' differ from earlier lines ({rec['choices']} vs "
                                 f"{choices}); one file holds one set of classes")
            choices = list(rec["choices"])
        rows.append((lineno, text.strip(), label))
    return rows, choices


def _read_world_reviews(path: Path) -> tuple[list[Row], None]:
    rows: list[Row] = []
    lineno = 1  # line of the current document's first line
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for block in text.replace("\r\n", "\n").split("\n\n"):
        first = lineno
        lineno += block.count("\n") + 2
        if not block.strip():
            continue
        lines = block.strip("\n").split("\n")
        if len(lines) != 2 or not lines[0].startswith("Review:") or not lines[1].startswith("Sentiment:"):
            raise LmlabError(f"{path}:{first}: expected 'Review: TEXT' and 'Sentiment: LABEL' lines, got "
                             f"{block.strip()!r:.80}")
        rows.append((first, lines[0][len("Review:"):].strip(), lines[1][len("Sentiment:"):].strip()))
    return rows, None


def _is_int(s: str) -> bool:
    return s.isdigit() or (s.startswith("-") and s[1:].isdigit())


def _infer_names(rows: list[Row], file_names: list[str] | None) -> tuple[str, ...]:
    if file_names is not None:
        return tuple(file_names)
    raw = [r for _, _, r in rows]
    if all(isinstance(r, int) for r in raw):
        return tuple(str(i) for i in range(max(max(raw) + 1, 2)))
    return tuple(sorted({str(r) for r in raw}))


def _label_index(raw: int | str, names: tuple[str, ...], index: dict[str, int], path: Path, lineno: int) -> int:
    if isinstance(raw, str) and raw in index:
        return index[raw]
    if isinstance(raw, str) and _is_int(raw):
        raw = int(raw)
    if isinstance(raw, int) and 0 <= raw < len(names):
        return raw
    raise LmlabError(f"{path}:{lineno}: unknown label {raw!r}; the classes are "
                     + ", ".join(f"{i}={n}" for i, n in enumerate(names)))
