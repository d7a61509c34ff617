"""Property tests: byte-level BPE (every number policy) and char-with-byte-fallback round-trip every string."""

import pytest
from hypothesis import HealthCheck, assume, given, settings
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


WORD_PIECES = ["the", "cat", "don't", "3.5", "1,000", "42", ".", ",", "(", ")", "-", "/", "%", "$", "\"", "'", "!",
               "<eos>", "<extract>", "é"]
SEPARATORS = ["", " ", " ", " ", "  ", "\n", "\n\n", "\t", " \n"]


@pytest.fixture(scope="module")
def word_tok():
    text = " ".join(WORD_PIECES) + " " + "".join(WORD_PIECES) + " a\n\nb  c\td \n"
    return train_tokenizer("word", [text], special_tokens=["<extract>"], progress=False)


@SETTINGS
@given(parts=st.lists(st.tuples(st.sampled_from(WORD_PIECES), st.sampled_from(SEPARATORS)), max_size=30))
def test_word_tokenizer_round_trips_in_vocabulary_text(word_tok, parts):
    text = "".join(w + sep for w, sep in parts)
    ids = word_tok.encode(text)
    # Pieces written without a separator may fuse into a new word ("the"+"cat"); only in-vocabulary text counts.
    assume(word_tok.unk_id not in ids)
    assert word_tok.decode(ids) == text
