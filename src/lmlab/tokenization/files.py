"""Reading training text from files and directories, streamed in chunks so that files larger than RAM are fine."""

from __future__ import annotations

import codecs
import os
from pathlib import Path
from typing import Callable, Iterable, Iterator

from lmlab.errors import LmlabError

CHUNK_BYTES = 1 << 20


def expand_text_paths(inputs: Iterable[str | os.PathLike], pattern: str = "*.txt") -> list[Path]:
    """Files named in `inputs`, with each directory replaced by its files matching `pattern` (recursive, sorted).

    Raises LmlabError for a missing path or a directory without matching files.
    """
    out: list[Path] = []
    for p in map(Path, inputs):
        if p.is_dir():
            found = sorted(f for f in p.rglob(pattern) if f.is_file())
            if not found:
                raise LmlabError(f"directory {p} holds no {pattern} files")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise LmlabError(f"input not found: {p}")
    if not out:
        raise LmlabError("no input files given")
    return out


def iter_text_chunks(path: str | os.PathLike, chunk_bytes: int = CHUNK_BYTES,
                     on_bytes: Callable[[int], None] | None = None) -> Iterator[str]:
    """Text of a UTF-8 file in pieces of about `chunk_bytes`, each ending at a line break where there is one
    (so no word is cut in two). `on_bytes(n)` is called with the bytes read, for progress bars.

    Raises LmlabError naming the file and the byte offset of the first byte that is not valid UTF-8.
    """
    path = Path(path)
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0  # file offset of the next block
    carry = ""  # text after the last line break, waiting for the rest of its line
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk_bytes)
            final = not block
            pending = len(decoder.getstate()[0])
            try:
                text = decoder.decode(block, final=final)
            except UnicodeDecodeError as e:
                raise LmlabError(f"{path} is not UTF-8 text: invalid byte at offset {offset - pending + e.start}; "
                                 "convert it to UTF-8 or leave it out") from None
            offset += len(block)
            if on_bytes and block:
                on_bytes(len(block))
            text = carry + text
            if final:
                if text:
                    yield text
                return
            cut = text.rfind("\n") + 1
            if cut == 0 and len(text) > 16 * chunk_bytes:  # one giant line: cut at a space rather than grow forever
                space = text.rfind(" ")
                cut = space + 1 if space >= 0 else len(text)
            carry = text[cut:]
            if cut:
                yield text[:cut]
