"""integer_coverage: the count of distinct tokens that write 0..N, GPT-2-style BPE vs one-digit tokens."""

import pytest

from lmlab.errors import LmlabError
from lmlab.tokenization import integer_coverage, token_table, train_tokenizer


@pytest.fixture(scope="module")
def number_text():
    return [" ".join(str(i) for i in range(0, 1000, 3)) + "\n"] * 3


def test_digits_policy_writes_every_integer_with_the_ten_digits(number_text):
    tok = train_tokenizer("bpe", number_text, vocab_size=400, numbers="digits", progress=False)
    c = integer_coverage(tok, 999)
    assert c == {"n": 999, "prefix": "", "integers": 1000, "distinct_tokens": 10, "single_token_integers": 10,
                 "max_tokens": 3, "mean_tokens": (10 * 1 + 90 * 2 + 900 * 3) / 1000, "max_tokens_example": 100}


def test_gpt2_policy_learns_many_number_tokens(number_text):
    gpt2 = integer_coverage(train_tokenizer("bpe", number_text, vocab_size=400, numbers="gpt2", progress=False),
                            999, prefix=" ")
    assert gpt2["distinct_tokens"] > 10 and gpt2["single_token_integers"] > 10
    assert gpt2["mean_tokens"] < 3


def test_char_tokenizer_coverage_and_bad_n():
    tok = train_tokenizer("char", ["0123456789"], progress=False)
    assert integer_coverage(tok, 12)["distinct_tokens"] == 10
    with pytest.raises(LmlabError, match="n must be"):
        integer_coverage(tok, -1)


def test_token_table_shows_what_each_byte_level_token_spells():
    tok = train_tokenizer("bpe", ["the the the"], vocab_size=300, progress=False)
    rows = token_table(tok, "the the")
    assert [r["text"] for r in rows] == ["the", " the"]
    assert rows[1]["token"] == "Ġthe" and rows[1]["id"] == tok.token_to_id("Ġthe")
