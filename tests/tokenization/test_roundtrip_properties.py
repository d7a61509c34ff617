"""Property tests: byte-level BPE (every number policy) and char-with-byte-fallback round-trip every string."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmlab.tokenization import train_tokenizer

# Arbitrary Unicode (hypothesis' default alphabet: every code point except surrogates), plus strings built from
# pieces that stress the pre-tokenizers: digit runs, contractions, whitespace mixes, special-token names.
TRICKY = st.lists(st.sampled_from(["12345", "0", " ", "  ", "\n", "\r\n", "\t", "'s", "don't", "<eos>",
                                   "<extract>", "<0xAB>", "Ġ", "é", "😀", "\u00a0", "\x00", "a", "Z"]),
                  max_size=20).map("".join)
TEXTS = st.one_of(st.text(max_size=200), TRICKY)
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def bpes(corpus):
    return [train_tokenizer("bpe", corpus, vocab_size=500, numbers=n, special_tokens=["<extract>"], progress=False)
            for n in ("gpt2", "groups3", "digits")]


@pytest.fixture(scope="module")
def char_tok(corpus):
    return train_tokenizer("char", corpus, byte_fallback=True, special_tokens=["<extract>"], progress=False)


@SETTINGS
@given(text=TEXTS)
def test_byte_level_bpe_round_trips_every_string(bpes, text):
    for tok in bpes:
        assert tok.decode(tok.encode(text)) == text


@SETTINGS
@given(text=TEXTS)
def test_char_with_byte_fallback_round_trips_every_string(char_tok, text):
    ids = char_tok.encode(text)
    assert char_tok.decode(ids) == text
    assert char_tok.unk_id not in ids


@SETTINGS
@given(texts=st.lists(TEXTS, max_size=8))
def test_bpe_batch_encoding_equals_one_by_one(bpes, texts):
    tok = bpes[1]
    assert tok.encode_batch(texts) == [tok.encode(t) for t in texts]
