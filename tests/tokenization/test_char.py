"""Character tokenizer: id layout, unknown characters (<unk> vs byte fallback), caps, specials."""

import pytest

from lmlab.errors import LmlabError
from lmlab.tokenization import CharTokenizer, train_tokenizer


def test_ids_follow_the_documented_layout():
    tok = train_tokenizer("char", ["banana"], byte_fallback=True, progress=False)
    assert tok.special_tokens == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert [tok.token_to_id(t) for t in ("<pad>", "<unk>", "<bos>", "<eos>")] == [0, 1, 2, 3]
    assert tok.token_to_id("<0x00>") == 4 and tok.token_to_id("<0xFF>") == 4 + 255
    assert [tok.id_to_token(i) for i in range(260, tok.vocab_size)] == ["a", "b", "n"]  # code-point order
    assert tok.encode("ban") == [261, 260, 262]


def test_unknown_characters_become_unk_without_byte_fallback():
    tok = train_tokenizer("char", ["hello"], byte_fallback=False, progress=False)
    ids = tok.encode("hex!")
    assert ids[2:] == [tok.unk_id, tok.unk_id]
    assert tok.decode(ids) == "he<unk><unk>"


def test_byte_fallback_spells_unknown_characters_as_utf8_bytes():
    tok = train_tokenizer("char", ["hello"], byte_fallback=True, progress=False)
    ids = tok.encode("hé😀")
    assert [tok.id_to_token(i) for i in ids] == ["h", "<0xC3>", "<0xA9>", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>"]
    assert tok.decode(ids) == "hé😀"
    assert tok.decode([tok.token_to_id("<0xC3>")]) == "\ufffd"  # half a character reads as U+FFFD, no crash


def test_vocab_cap_keeps_the_most_frequent_characters_and_min_frequency_drops_rare_ones():
    text = ["aaaa bbb cc d"]
    capped = train_tokenizer("char", text, vocab_size=4 + 3, byte_fallback=False, progress=False)
    assert capped.vocab_size == 7 and sorted(capped.chars) == [" ", "a", "b"]  # 'c' (2) and 'd' (1) lost
    frequent = train_tokenizer("char", text, min_frequency=3, byte_fallback=False, progress=False)
    assert sorted(frequent.chars) == [" ", "a", "b"]


def test_special_tokens_in_text_are_single_ids_and_user_specials_follow_defaults():
    tok = train_tokenizer("char", ["abc"], special_tokens=["<extract>"], progress=False)
    assert tok.token_to_id("<extract>") == 4
    ids = tok.encode("a<extract>b<eos>")
    assert ids == [tok.token_to_id("a"), 4, tok.token_to_id("b"), tok.eos_id]
    assert tok.decode(ids) == "a<extract>b<eos>"


def test_vocab_too_small_is_a_clear_error():
    with pytest.raises(LmlabError, match="too small.*at least 261"):
        train_tokenizer("char", ["abc"], vocab_size=100, progress=False)
    with pytest.raises(LmlabError, match="single characters"):
        CharTokenizer(["ab"])


def test_decoding_an_id_outside_the_vocabulary_is_an_error():
    tok = train_tokenizer("char", ["abc"], progress=False)
    with pytest.raises(LmlabError, match="outside"):
        tok.decode([tok.vocab_size])
    with pytest.raises(LmlabError, match="outside"):
        tok.id_to_token(-1)
