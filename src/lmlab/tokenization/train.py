"""`train_tokenizer`: one entry point for every kind, from strings or (streamed) files, with checked options."""

from __future__ import annotations

import os
import sys
from typing import Iterable, Iterator

from tqdm import tqdm

from lmlab.errors import LmlabError
from lmlab.tokenization.base import Tokenizer, check_special_tokens
from lmlab.tokenization.bpe import BPETokenizer, check_number_policy
from lmlab.tokenization.char import CharTokenizer
from lmlab.tokenization.files import expand_text_paths, iter_text_chunks
from lmlab.tokenization.word import WordTokenizer

KINDS = ("char", "word", "bpe")
# BPE needs a target size; 4096 suits the small models this project trains on a CPU (GPT-2 used 50257).
DEFAULT_BPE_VOCAB_SIZE = 4096


class _TextStream:
    """Passes texts through unchanged, remembering whether any of them held a non-whitespace character."""

    def __init__(self, texts: Iterable[str]):
        self._texts = texts
        self.has_text = False

    def __iter__(self) -> Iterator[str]:
        for t in self._texts:
            if not isinstance(t, str):
                raise LmlabError(f"training texts must be strings, got {type(t).__name__}")
            if not self.has_text and t.strip():
                self.has_text = True
            yield t


def _show(progress: bool) -> bool:
    """Progress bars only for a person watching: requested and stderr is a terminal."""
    return bool(progress) and sys.stderr.isatty()


def _check_options(kind: str, vocab_size: int | None, numbers: str, min_frequency: int,
                   special_tokens: Iterable[str], byte_fallback: bool) -> None:
    if kind not in KINDS:
        raise LmlabError(f"unknown tokenizer kind {kind!r}: choose one of {', '.join(KINDS)}")
    check_number_policy(numbers)
    check_special_tokens(special_tokens)
    if not isinstance(min_frequency, int) or min_frequency < 1:
        raise LmlabError(f"min_frequency must be a whole number ≥ 1, got {min_frequency!r}")
    if vocab_size is None:
        return
    smallest = {"char": lambda: CharTokenizer.min_vocab_size(special_tokens, byte_fallback),
                "word": lambda: WordTokenizer.min_vocab_size(special_tokens),
                "bpe": lambda: BPETokenizer.min_vocab_size(special_tokens)}[kind]()
    if not isinstance(vocab_size, int) or vocab_size < smallest:
        why = {"char": " (special tokens + 256 byte tokens + 1; or turn byte fallback off)" if byte_fallback
               else " (special tokens + 1)",
               "word": " (special tokens + 4 reserved + 1)", "bpe": " (special tokens + 256 byte tokens)"}[kind]
        raise LmlabError(f"vocab_size {vocab_size} is too small for a {kind} tokenizer: it needs at least "
                         f"{smallest}{why}")


def _train(kind: str, texts: Iterable[str], *, vocab_size: int | None, numbers: str, min_frequency: int,
           special_tokens: Iterable[str], byte_fallback: bool, show_progress: bool) -> Tokenizer:
    stream = _TextStream(texts)
    special_tokens = list(special_tokens)
    if kind == "char":
        tok: Tokenizer = CharTokenizer.train(stream, vocab_size=vocab_size, min_frequency=min_frequency,
                                             special_tokens=special_tokens, byte_fallback=byte_fallback)
    elif kind == "word":
        tok = WordTokenizer.train(stream, vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=special_tokens)
    else:
        tok = BPETokenizer.train(stream, vocab_size=vocab_size or DEFAULT_BPE_VOCAB_SIZE, numbers=numbers,
                                 min_frequency=min_frequency, special_tokens=special_tokens,
                                 show_progress=show_progress)
    if not stream.has_text:
        raise LmlabError("the training text is empty (no non-whitespace characters); give it some text")
    return tok


def train_tokenizer(kind: str, texts: Iterable[str], *, vocab_size: int | None = None, numbers: str = "gpt2",
                    min_frequency: int = 1, special_tokens: Iterable[str] = (), byte_fallback: bool = True,
                    progress: bool = True) -> Tokenizer:
    """Train a tokenizer of `kind` ("char" | "word" | "bpe") on `texts` (any iterable of strings, read once).

    vocab_size: total ids including special (and byte) tokens; None = every char/word kept (bpe: 4096).
    numbers: BPE digit policy, "gpt2" | "groups3" | "digits" (checked for every kind, used by bpe only).
    min_frequency: drop characters/words (bpe: merges) seen fewer times than this.
    special_tokens: extra special tokens after <pad> <unk> <bos> <eos>, e.g. ["<extract>"].
    byte_fallback: char kind only — spell unknown characters as UTF-8 byte tokens instead of <unk>.
    Raises LmlabError for an unknown kind/policy, a too-small vocab_size, or empty text.
    """
    _check_options(kind, vocab_size, numbers, min_frequency, special_tokens, byte_fallback)
    with tqdm(texts, desc=f"training {kind} tokenizer", unit=" texts", disable=not _show(progress),
              file=sys.stderr) as bar:
        return _train(kind, bar, vocab_size=vocab_size, numbers=numbers, min_frequency=min_frequency,
                      special_tokens=special_tokens, byte_fallback=byte_fallback, show_progress=_show(progress))


def train_tokenizer_from_files(kind: str, paths: Iterable[str | os.PathLike], *, vocab_size: int | None = None,
                               numbers: str = "gpt2", min_frequency: int = 1, special_tokens: Iterable[str] = (),
                               byte_fallback: bool = True, progress: bool = True) -> Tokenizer:
    """`train_tokenizer` on UTF-8 files; `paths` may name files or directories (their *.txt files, recursively).

    Files are streamed in ~1 MiB chunks cut at line breaks, so their size is not limited by memory. Raises
    LmlabError for a missing path or a file that is not UTF-8 (naming the file and byte offset).
    """
    _check_options(kind, vocab_size, numbers, min_frequency, special_tokens, byte_fallback)
    files = expand_text_paths(paths)
    total = sum(f.stat().st_size for f in files)
    with tqdm(total=total, desc=f"reading {len(files)} file(s)", unit="B", unit_scale=True,
              disable=not _show(progress), file=sys.stderr) as bar:
        texts = (chunk for f in files for chunk in iter_text_chunks(f, on_bytes=bar.update))
        return _train(kind, texts, vocab_size=vocab_size, numbers=numbers, min_frequency=min_frequency,
                      special_tokens=special_tokens, byte_fallback=byte_fallback, show_progress=_show(progress))
