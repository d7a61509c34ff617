"""Tokenizers: one interface (`Tokenizer`), three kinds (char, word, byte-level BPE), one JSON file format.

    from lmlab.tokenization import train_tokenizer, load_tokenizer
    tok = train_tokenizer("bpe", texts, vocab_size=4096, numbers="digits", special_tokens=["<extract>"])
    tok.save("tok.json"); tok = load_tokenizer("tok.json")
"""

from lmlab.tokenization.analysis import format_integer_coverage, format_token_table, integer_coverage, token_table
from lmlab.tokenization.base import DEFAULT_SPECIAL_TOKENS, Tokenizer, load_tokenizer
from lmlab.tokenization.bpe import NUMBER_POLICIES, BPETokenizer
from lmlab.tokenization.char import CharTokenizer
from lmlab.tokenization.files import expand_text_paths, iter_text_chunks
from lmlab.tokenization.train import DEFAULT_BPE_VOCAB_SIZE, KINDS, train_tokenizer, train_tokenizer_from_files
from lmlab.tokenization.word import WordTokenizer

__all__ = [
    "Tokenizer", "DEFAULT_SPECIAL_TOKENS", "CharTokenizer", "WordTokenizer", "BPETokenizer",
    "train_tokenizer", "train_tokenizer_from_files", "load_tokenizer", "integer_coverage", "token_table",
    "format_token_table", "format_integer_coverage",
    "KINDS", "NUMBER_POLICIES", "DEFAULT_BPE_VOCAB_SIZE", "expand_text_paths", "iter_text_chunks",
]
