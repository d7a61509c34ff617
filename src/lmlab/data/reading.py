"""Reading a corpus: files, directories and JSONL turned into a stream of `Document`s.

A document is one plain-text file, one JSONL record, or (with `split_blank_lines=True`) one block of a plain-text
file separated from the next by blank lines. Documents are streamed one at a time, so a corpus larger than memory
can be read; only a single document has to fit in memory.

Order is deterministic: inputs in the order given, directories walked recursively in sorted path order, so the same
inputs always give the same documents in the same order (splits and dedup depend on it).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, NamedTuple, Sequence

from lmlab.errors import LmlabError
from lmlab.utils import parse_json_line

ERROR_MODES = ("strict", "replace")
JSONL_SUFFIXES = (".jsonl",)


class Document(NamedTuple):
    """One document: its text, the file it came from, and its position in that file.

    `index` counts documents within `source` from 0 (always 0 for a whole-file document; the record number for
    JSONL, counting non-empty lines; the block number with `split_blank_lines`). A NamedTuple, not a frozen
    dataclass: millions are made per corpus and tuple construction is several times cheaper.
    """

    text: str
    source: str
    index: int


@dataclass(frozen=True)
class SourceFile:
    """A file that was read: path as given/found, size in bytes and SHA-256 of its bytes (for the manifest)."""

    path: str
    bytes: int
    sha256: str

    def to_dict(self) -> dict:
        return {"path": self.path, "bytes": self.bytes, "sha256": self.sha256}


def list_input_files(inputs: str | os.PathLike | Sequence[str | os.PathLike], *,
                     include: Sequence[str] | None = None) -> list[Path]:
    """The files that `inputs` name, in reading order.

    A file given by name is always read (include globs filter only what directory walks find). Directories are
    walked recursively in sorted order, skipping hidden files and folders (names starting with '.'); `include`
    globs (e.g. ["*.txt", "*.md"]) match a file's name or its path relative to the directory. Raises LmlabError
    for a missing path.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            found = []
            for root, dirs, names in os.walk(p):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                for name in names:
                    if name.startswith("."):
                        continue
                    f = Path(root) / name
                    rel = f.relative_to(p).as_posix()
                    if include and not any(fnmatch.fnmatch(name, g) or fnmatch.fnmatch(rel, g) for g in include):
                        continue
                    found.append(f)
            files.extend(sorted(found, key=lambda f: f.relative_to(p).as_posix()))
        elif p.exists():
            raise LmlabError(f"input {p} is neither a file nor a directory")
        else:
            raise LmlabError(f"input path not found: {p}")
    return files


def iter_documents(inputs: str | os.PathLike | Sequence[str | os.PathLike], *,
                   include: Sequence[str] | None = None, text_field: str = "text",
                   split_blank_lines: bool = False, errors: str = "strict",
                   on_file: Callable[[SourceFile], None] | None = None) -> Iterator[Document]:
    """Stream the documents of `inputs` (files, directories, `.jsonl` files) in deterministic order.

    `errors="strict"` turns bytes that are not UTF-8 into an LmlabError naming the file and byte offset;
    `errors="replace"` substitutes U+FFFD and goes on. Documents whose text is empty or only whitespace are
    skipped. Raises LmlabError for a missing path, a malformed JSONL line (file:line), or a corpus with no
    documents at all. `on_file`, if given, is called with each file's `SourceFile` (size, SHA-256) after the
    file has been read completely (hashing happens in the same pass as reading).
    """
    if errors not in ERROR_MODES:
        raise LmlabError(f"unknown errors mode {errors!r}: use one of {', '.join(ERROR_MODES)}")
    files = list_input_files(inputs, include=include)
    n_docs = 0
    for path in files:
        for doc in _read_file(path, text_field=text_field, split_blank_lines=split_blank_lines, errors=errors,
                              on_file=on_file):
            n_docs += 1
            yield doc
    if n_docs == 0:
        named = ", ".join(str(i) for i in ([inputs] if isinstance(inputs, (str, os.PathLike)) else inputs))
        what = f"{len(files)} file(s)" + (f" matching {list(include)}" if include else "")
        raise LmlabError(f"empty corpus: no non-empty documents in {named} ({what} found); "
                         "check the paths, --include globs and --text-field")


def _read_file(path: Path, *, text_field: str, split_blank_lines: bool, errors: str,
               on_file: Callable[[SourceFile], None] | None) -> Iterator[Document]:
    # Hash only when someone wants the record: hashing is a visible share of the cost of a pure read pass.
    hasher = hashlib.sha256() if on_file is not None else None
    size = 0
    if path.suffix.lower() in JSONL_SUFFIXES:
        reader = _read_jsonl(path, text_field, errors)
    elif split_blank_lines:
        reader = _read_blocks(path, errors)
    else:
        reader = _read_whole(path, errors)
    # Each reader yields (raw bytes consumed, document or None) so one pass both hashes the file and parses it.
    for raw, doc in reader:
        if hasher is not None:
            hasher.update(raw)
        size += len(raw)
        if doc is not None and doc.text and not doc.text.isspace():  # isspace: no copy, unlike strip
            yield doc
    if hasher is not None:
        on_file(SourceFile(path=str(path), bytes=size, sha256=hasher.hexdigest()))


def _decode(raw: bytes, path: Path, offset: int, errors: str, where: str = "") -> str:
    """UTF-8 text of `raw` (which starts `offset` bytes into `path`); a byte-order mark at the start of a file
    (Windows editors write one) is dropped, not made part of the first document."""
    try:
        text = raw.decode("utf-8", errors=errors)
        return text[1:] if offset == 0 and text.startswith("\ufeff") else text
    except UnicodeDecodeError as e:
        raise LmlabError(f"{path}{where}: not valid UTF-8 at byte offset {offset + e.start} "
                         f"(byte 0x{raw[e.start]:02x}); convert the file to UTF-8, or pass --errors replace to "
                         "substitute U+FFFD") from None


def _read_whole(path: Path, errors: str) -> Iterator[tuple[bytes, Document | None]]:
    raw = path.read_bytes()
    yield raw, Document(_decode(raw, path, 0, errors), str(path), 0)


# One or more consecutive blank lines (empty, or only spaces/tabs/CR) — the separator of `split_blank_lines`.
# Matched with the newline that ends the previous line (a literal first character makes the scan much faster
# than a multi-line `^`); each piece is therefore searched with a "\n" put in front of it.
_BLANK_LINES = re.compile(r"\n(?:[ \t\r\f\v]*\n)+")
_TRAILING_BLANK = re.compile(r"(?:\n[ \t\r\f\v]*)+$")
_BLOCK_READ_BYTES = 1 << 22


def _read_blocks(path: Path, errors: str) -> Iterator[tuple[bytes, Document | None]]:
    """Blank-line-separated blocks, read in 4 MiB pieces cut at line ends (so no UTF-8 character and no blank
    line is ever cut in two) and split with one regex per piece: fast, and a huge file never sits in memory."""
    offset = 0
    index = 0
    carry: list[str] = []  # start of a block that continues into the next piece
    with open(path, "rb") as f:
        while raw := f.read(_BLOCK_READ_BYTES):
            if not raw.endswith(b"\n"):
                raw += f.readline()
            parts = _BLANK_LINES.split("\n" + _decode(raw, path, offset, errors))
            offset += len(raw)
            yield raw, None
            carry.append(parts[0][1:] if parts[0] else "")  # drop the "\n" put in front
            if len(parts) == 1:
                continue
            for text in ["".join(carry), *parts[1:-1]]:
                text = text.rstrip("\r\n")
                if text:
                    yield b"", Document(text, str(path), index)
                    index += 1
            carry = [parts[-1]]
    text = _TRAILING_BLANK.sub("", "".join(carry)).rstrip("\r\n")
    if text:
        yield b"", Document(text, str(path), index)


def _read_jsonl(path: Path, text_field: str, errors: str) -> Iterator[tuple[bytes, Document | None]]:
    offset = 0
    index = 0
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            line = _decode(raw, path, offset, errors, where=f":{lineno}")
            offset += len(raw)
            if not line.strip():
                yield raw, None
                continue
            record = parse_json_line(line, f"{path}:{lineno}")
            if not isinstance(record, dict) or text_field not in record:
                fields = sorted(record) if isinstance(record, dict) else type(record).__name__
                raise LmlabError(f"{path}:{lineno}: record has no field {text_field!r} (found: {fields}); "
                                 "choose the text field with --text-field")
            text = record[text_field]
            if not isinstance(text, str):
                raise LmlabError(f"{path}:{lineno}: field {text_field!r} is {type(text).__name__}, not a string")
            yield raw, Document(text, str(path), index)
            index += 1
