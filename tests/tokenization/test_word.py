"""Word tokenizer: pieces, implicit spaces, exact reconstruction of in-vocabulary text, <unk>, caps."""

import pytest

from lmlab.errors import LmlabError
from lmlab.tokenization import train_tokenizer
from lmlab.tokenization.word import GLUE, split_pieces

TEXT = ("It's 3.5 km (about 2 miles) from here, isn't it?\n\n"
        "Prices rose 12% in 2019-2020; \"quotes\" and  two  spaces.\tTab.\n")


def test_pieces_are_words_numbers_punctuation_and_whitespace():
    assert split_pieces("It's 3.5 km, 1,000!") == ["It's", " ", "3.5", " ", "km", ",", " ", "1,000", "!"]


def test_in_vocabulary_text_round_trips_exactly_and_single_spaces_cost_nothing():
    tok = train_tokenizer("word", [TEXT], progress=False)
    ids = tok.encode(TEXT)
    assert tok.decode(ids) == TEXT
    plain = train_tokenizer("word", ["the cat sat on the mat."], progress=False)
    assert [plain.id_to_token(i) for i in plain.encode("the cat sat on the mat.")] == \
        ["the", "cat", "sat", "on", "the", "mat", "."]


def test_unusual_spacing_is_written_with_glue_and_whitespace_tokens():
    tok = train_tokenizer("word", ["a b , c ( d ) e.f"], progress=False)
    s = "a b , c ( d ) e.f"
    toks = [tok.id_to_token(i) for i in tok.encode(s)]
    assert toks == ["a", "b", " ", ",", "c", "(", " ", "d", " ", ")", "e", ".", GLUE, "f"]
    assert tok.decode(tok.encode(s)) == s


def test_unknown_words_become_unk():
    tok = train_tokenizer("word", ["the cat sat"], progress=False)
    ids = tok.encode("the dog sat")
    assert ids == [tok.token_to_id("the"), tok.unk_id, tok.token_to_id("sat")]
    assert tok.decode(ids) == "the <unk> sat"


def test_vocab_size_and_min_frequency_limit_the_vocabulary():
    text = ["a a a a b b b c c d"]
    capped = train_tokenizer("word", text, vocab_size=4 + 4 + 2, progress=False)
    assert capped.vocab_size == 10
    assert capped.token_to_id("a") is not None and capped.token_to_id("b") is not None
    assert capped.token_to_id("c") is None
    frequent = train_tokenizer("word", text, min_frequency=2, progress=False)
    assert frequent.token_to_id("c") is not None and frequent.token_to_id("d") is None
    with pytest.raises(LmlabError, match="too small"):
        train_tokenizer("word", text, vocab_size=5, progress=False)


def test_special_tokens_are_never_split_and_take_no_implicit_space():
    tok = train_tokenizer("word", ["one story.", "another one"], special_tokens=["<extract>"], progress=False)
    s = "one story.<eos>another one<extract>"
    ids = tok.encode(s)
    assert tok.eos_id in ids and tok.token_to_id("<extract>") in ids
    assert tok.decode(ids) == s


@pytest.mark.parametrize("name", ["tinystories_sample_cs336.txt", "amazon_cells_labelled.txt"])
def test_real_text_round_trips_when_trained_on_it(name):
    """Real files (CRLF line ends in the Amazon one) come back byte for byte, with few explicit spacing tokens."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / name
    if not path.is_file():
        pytest.skip(f"shared data not found at {path} (only present in the project workspace)")
    text = path.read_bytes().decode("utf-8")  # keep CRLF as it is
    tok = train_tokenizer("word", [text], progress=False)
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    explicit = sum(1 for i in ids if tok.id_to_token(i) in (GLUE, " "))
    assert explicit < 0.05 * len(ids)
