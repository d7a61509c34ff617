"""Tokenizers: one interface (`Tokenizer`), three kinds (char, word, byte-level BPE), one JSON file format."""

from lmlab.tokenization.base import DEFAULT_SPECIAL_TOKENS, Tokenizer

__all__ = ["Tokenizer", "DEFAULT_SPECIAL_TOKENS"]
