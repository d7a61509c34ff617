"""Tokenizer.with_special_tokens: new special tokens at new ids after the last one, every old id unchanged."""

import pytest

from lmlab.errors import LmlabError
from lmlab.tokenization import Tokenizer, train_tokenizer

TEXTS = ["the film was good, the plot was bad"] * 20


def test_bpe_gains_tokens_at_the_end_and_keeps_every_old_id(tmp_path):
    tok = train_tokenizer("bpe", TEXTS, vocab_size=300, progress=False)
    grown = tok.with_special_tokens(["<extract>", "<label0>", "<label1>"])
    n = tok.vocab_size
    assert grown.vocab_size == n + 3
    assert [grown.token_to_id(t) for t in ("<extract>", "<label0>", "<label1>")] == [n, n + 1, n + 2]
    assert all(grown.id_to_token(i) == tok.id_to_token(i) for i in range(n))
    text = "the plot was good <extract>"
    assert grown.encode("the plot was good") == tok.encode("the plot was good")
    assert grown.encode(text)[-1] == n and grown.decode(grown.encode(text)) == text
    assert tok.token_to_id("<extract>") is None  # the original is left unchanged
    grown.save(tmp_path / "t.json")  # the saved file rebuilds the same mapping
    again = Tokenizer.load(tmp_path / "t.json")
    assert again.fingerprint == grown.fingerprint and again.token_to_id("<label1>") == n + 2
    assert grown.with_special_tokens(["<extract>"]) is grown  # nothing new: the same tokenizer


def test_kinds_with_specials_first_refuse_with_a_hint():
    tok = train_tokenizer("word", TEXTS, progress=False)
    with pytest.raises(LmlabError, match="--special <extract>"):
        tok.with_special_tokens(["<extract>"])
