"""Byte-level BPE: number policies on "12345", special tokens, batch encoding, determinism, pickling."""

import pickle

import pytest

from lmlab.errors import LmlabError
from lmlab.tokenization import BPETokenizer, train_tokenizer


@pytest.fixture(scope="module")
def trained(corpus):
    # Repeat one number so that the gpt2 policy can learn merges across all of it.
    texts = corpus + ["12345 shipped, order 12345 paid\n"] * 50
    return {numbers: train_tokenizer("bpe", texts, vocab_size=600, numbers=numbers, special_tokens=["<extract>"],
                                     progress=False)
            for numbers in ("gpt2", "groups3", "digits")}


def pieces(tok, text):
    return [tok.decode([i]) for i in tok.encode(text)]


def test_number_policies_split_12345_as_documented(trained):
    assert pieces(trained["digits"], "12345") == ["1", "2", "3", "4", "5"]
    assert pieces(trained["groups3"], "12345") == ["123", "45"]
    assert pieces(trained["gpt2"], "12345") == ["12345"]  # frequent in training, so merged whole
    # groups3 never glues a space to a number; gpt2 does (GPT-2's ' ?\p{N}+').
    assert pieces(trained["groups3"], "x 12345")[1:] == [" ", "123", "45"]
    assert pieces(trained["gpt2"], "x 12345")[1:] == [" 12345"]


def test_digits_policy_never_merges_digits_even_in_long_runs(trained):
    tok = trained["digits"]
    assert len(tok.encode("9876543210" * 3)) == 30


def test_special_tokens_have_fixed_ids_and_are_never_split(trained):
    tok = trained["gpt2"]
    assert [tok.token_to_id(t) for t in ("<pad>", "<unk>", "<bos>", "<eos>", "<extract>")] == [0, 1, 2, 3, 4]
    ids = tok.encode("Alice<extract>Bob<eos>")
    assert 4 in ids and 3 in ids
    assert tok.decode(ids) == "Alice<extract>Bob<eos>"


def test_non_ascii_special_token_decodes_to_its_name():
    tok = train_tokenizer("bpe", ["some text here"], vocab_size=300, special_tokens=["<é>"], progress=False)
    assert tok.decode(tok.encode("a <é> b")) == "a <é> b"


def test_encode_batch_equals_encode(trained, corpus):
    tok = trained["groups3"]
    assert tok.encode_batch(corpus[:50]) == [tok.encode(t) for t in corpus[:50]]


def test_training_twice_gives_the_same_fingerprint(corpus):
    a = train_tokenizer("bpe", corpus, vocab_size=500, progress=False)
    b = train_tokenizer("bpe", iter(corpus), vocab_size=500, progress=False)
    assert a.fingerprint == b.fingerprint
    c = train_tokenizer("bpe", corpus, vocab_size=500, numbers="digits", progress=False)
    assert c.fingerprint != a.fingerprint


def test_pickled_tokenizer_is_identical(trained, corpus):
    tok = trained["digits"]
    copy = pickle.loads(pickle.dumps(tok))
    assert isinstance(copy, BPETokenizer) and copy.fingerprint == tok.fingerprint
    assert copy.encode_batch(corpus[:20]) == tok.encode_batch(corpus[:20])


def test_unknown_number_policy_is_a_clear_error():
    with pytest.raises(LmlabError, match="number policy 'roman'.*gpt2, groups3, digits"):
        train_tokenizer("bpe", ["text"], numbers="roman", progress=False)
    with pytest.raises(LmlabError, match="at least 260"):
        train_tokenizer("bpe", ["text"], vocab_size=100, progress=False)
