"""`Tokenizer.to_hf_tokenizer()`: a standalone Hugging Face `tokenizers.Tokenizer` (what `lmlab export hf` writes
as tokenizer.json) gives the same ids and decodes to the same text as ours, for every string; word tokenizers are
refused with the reason."""

import pytest
from hypothesis import given
from tokenizers import Tokenizer as HFTokenizer

from lmlab.errors import LmlabError
from lmlab.tokenization import train_tokenizer

from .test_roundtrip_properties import SETTINGS, TEXTS


@pytest.fixture(scope="module")
def pairs(corpus):
    """(ours, its HF equivalent reloaded from JSON text, as tokenizer.json would be) for every exportable kind."""
    toks = [train_tokenizer("bpe", corpus, vocab_size=500, numbers=n, special_tokens=["<extract>"], progress=False)
            for n in ("gpt2", "groups3", "digits")]
    toks += [train_tokenizer("char", corpus, byte_fallback=b, special_tokens=["<extract>"], progress=False)
             for b in (True, False)]
    return [(t, HFTokenizer.from_str(t.to_hf_tokenizer().to_str())) for t in toks]


@SETTINGS
@given(text=TEXTS)
def test_hf_equivalent_gives_the_same_ids_and_text(pairs, text):
    for ours, hf in pairs:
        ids = ours.encode(text)
        assert hf.encode(text, add_special_tokens=False).ids == ids
        assert hf.decode(ids, skip_special_tokens=False) == ours.decode(ids)


def test_hf_equivalent_is_a_copy(pairs):
    ours, _ = pairs[0]
    copy = ours.to_hf_tokenizer()
    copy.add_special_tokens(["<new>"])
    assert ours.token_to_id("<new>") is None


def test_word_tokenizer_is_refused_with_the_reason(corpus):
    word = train_tokenizer("word", corpus, progress=False)
    with pytest.raises(LmlabError, match="implicit single spaces and <glue> tokens depend on the neighbouring words"):
        word.to_hf_tokenizer()
