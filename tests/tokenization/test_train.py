"""`train_tokenizer` / `train_tokenizer_from_files`: option checks, empty text, files and directories, bad UTF-8."""

from pathlib import Path

import pytest

from lmlab.errors import LmlabError
from lmlab.tokenization import iter_text_chunks, train_tokenizer, train_tokenizer_from_files

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.mark.parametrize("kind", ["char", "word", "bpe"])
def test_empty_training_text_is_an_error(kind):
    with pytest.raises(LmlabError, match="training text is empty"):
        train_tokenizer(kind, [], progress=False)
    with pytest.raises(LmlabError, match="training text is empty"):
        train_tokenizer(kind, ["", "  \n"], progress=False)


def test_bad_options_are_clear_errors():
    with pytest.raises(LmlabError, match="unknown tokenizer kind 'sentencepiece': choose one of char, word, bpe"):
        train_tokenizer("sentencepiece", ["text"], progress=False)
    with pytest.raises(LmlabError, match="min_frequency"):
        train_tokenizer("word", ["text"], min_frequency=0, progress=False)
    with pytest.raises(LmlabError, match="special token"):
        train_tokenizer("word", ["text"], special_tokens=["has space"], progress=False)
    with pytest.raises(LmlabError, match="strings"):
        train_tokenizer("char", [b"bytes"], progress=False)


@pytest.mark.parametrize("kind", ["char", "word", "bpe"])
def test_training_from_files_and_directories_equals_training_from_strings(tmp_path, corpus, kind):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("".join(corpus[:200]), encoding="utf-8")
    (tmp_path / "sub" / "b.txt").write_text("".join(corpus[200:]), encoding="utf-8")
    (tmp_path / "sub" / "ignored.md").write_text("not text for training", encoding="utf-8")
    opts = {"vocab_size": 400} if kind == "bpe" else {}
    from_files = train_tokenizer_from_files(kind, [tmp_path], progress=False, **opts)
    from_strings = train_tokenizer(kind, ["".join(corpus[:200]), "".join(corpus[200:])], progress=False, **opts)
    assert from_files.fingerprint == from_strings.fingerprint


def test_chunks_end_at_line_breaks_and_cover_the_file(tmp_path, corpus):
    path = tmp_path / "big.txt"
    text = "".join(corpus) * 3
    path.write_text(text, encoding="utf-8")
    seen = []
    chunks = list(iter_text_chunks(path, chunk_bytes=1000, on_bytes=seen.append))
    assert len(chunks) > 10 and "".join(chunks) == text
    assert all(c.endswith("\n") for c in chunks)
    assert sum(seen) == path.stat().st_size


def test_non_utf8_file_names_the_file_and_byte_offset(tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("héllo".encode("utf-8") * 400 + "caf\xe9".encode("latin-1"))  # bad byte at 2400 + 3
    with pytest.raises(LmlabError, match=r"latin1\.txt is not UTF-8 text: invalid byte at offset 2403"):
        train_tokenizer_from_files("bpe", [bad], progress=False)
    with pytest.raises(LmlabError, match="offset 2403"):
        list(iter_text_chunks(bad, chunk_bytes=7))  # the bad byte's offset survives chunking


def test_missing_inputs_are_clear_errors(tmp_path):
    with pytest.raises(LmlabError, match="input not found"):
        train_tokenizer_from_files("char", [tmp_path / "nope.txt"], progress=False)
    with pytest.raises(LmlabError, match="holds no"):
        train_tokenizer_from_files("char", [tmp_path], progress=False)


def test_bpe_on_real_text_compresses_it():
    path = SHARED_DATA / "tinystories_sample_cs336.txt"
    if not path.is_file():
        pytest.skip(f"shared data not found at {path} (only present in the project workspace)")
    tok = train_tokenizer_from_files("bpe", [path], vocab_size=500, special_tokens=["<|endoftext|>"],
                                     progress=False)
    text = path.read_text(encoding="utf-8")
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert len(ids) < len(text.encode("utf-8")) / 2
    assert ids.count(tok.token_to_id("<|endoftext|>")) == text.count("<|endoftext|>")
