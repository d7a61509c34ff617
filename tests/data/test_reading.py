"""Reading corpora: files, directories, JSONL, blank-line blocks, and the errors a user sees."""

import json

import pytest

from lmlab.data import iter_documents, list_input_files
from lmlab.errors import LmlabError


def write(path, text, encoding="utf-8"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def test_directory_is_walked_recursively_in_sorted_order_with_include_globs(tmp_path):
    write(tmp_path / "b.txt", "bee")
    write(tmp_path / "a" / "z.md", "zed")
    write(tmp_path / "a" / "c.txt", "sea")
    write(tmp_path / "skip.py", "print()")
    write(tmp_path / ".hidden" / "h.txt", "hidden")
    docs = list(iter_documents([tmp_path], include=["*.txt", "*.md"]))
    assert [d.text for d in docs] == ["sea", "zed", "bee"]
    assert docs[0].source.endswith("c.txt") and docs[0].index == 0
    # Without globs every (non-hidden) file is a document.
    assert len(list(iter_documents(tmp_path))) == 4


def test_named_file_is_read_even_if_include_would_not_match(tmp_path):
    f = write(tmp_path / "notes.log", "log text")
    assert list_input_files([f], include=["*.txt"]) == [f]


def test_jsonl_records_are_documents_with_chosen_field(tmp_path):
    lines = [json.dumps({"body": "first", "id": 1}), "", json.dumps({"body": "second ü"})]
    f = write(tmp_path / "c.jsonl", "\n".join(lines) + "\n")
    docs = list(iter_documents(f, text_field="body"))
    assert [(d.text, d.index) for d in docs] == [("first", 0), ("second ü", 1)]


def test_jsonl_errors_name_file_and_line(tmp_path):
    f = write(tmp_path / "bad.jsonl", '{"text": "ok"}\n{"text": broken}\n')
    with pytest.raises(LmlabError, match=r"bad\.jsonl:2: not a valid JSON line"):
        list(iter_documents(f))
    g = write(tmp_path / "nofield.jsonl", '{"body": "x"}\n')
    with pytest.raises(LmlabError, match=r"nofield\.jsonl:1: record has no field 'text'.*--text-field"):
        list(iter_documents(g))


def test_blank_line_blocks(tmp_path):
    f = write(tmp_path / "p.txt", "one\nline two\n\n\ntwo\n\nthree\n")
    docs = list(iter_documents(f, split_blank_lines=True))
    assert [d.text for d in docs] == ["one\nline two", "two", "three"]
    assert [d.index for d in docs] == [0, 1, 2]
    assert [d.text for d in iter_documents(f)] == ["one\nline two\n\n\ntwo\n\nthree\n"]


def test_non_utf8_names_file_and_byte_offset_and_replace_goes_on(tmp_path):
    f = write(tmp_path / "latin.txt", "café".encode("latin-1") + b" ok")
    with pytest.raises(LmlabError, match=r"latin\.txt: not valid UTF-8 at byte offset 3 .*--errors replace"):
        list(iter_documents(f))
    assert [d.text for d in iter_documents(f, errors="replace")] == ["caf\ufffd ok"]
    # Offsets count from the start of the file also when reading line by line.
    g = write(tmp_path / "blocks.txt", b"aaaa\n\nbb\xffb\n")
    with pytest.raises(LmlabError, match="byte offset 8"):
        list(iter_documents(g, split_blank_lines=True))


def test_missing_path_and_empty_corpus_are_errors(tmp_path):
    with pytest.raises(LmlabError, match="input path not found: .*nope"):
        list(iter_documents([tmp_path / "nope"]))
    write(tmp_path / "empty.txt", "  \n\n")
    with pytest.raises(LmlabError, match="empty corpus"):
        list(iter_documents(tmp_path))
    with pytest.raises(LmlabError, match="empty corpus"):
        list(iter_documents(tmp_path, include=["*.md"]))


def test_source_files_are_hashed_while_reading(tmp_path):
    import hashlib

    f = write(tmp_path / "a.txt", "hello")
    seen = []
    list(iter_documents(f, on_file=seen.append))
    assert [(s.path, s.bytes, s.sha256) for s in seen] == [(str(f), 5, hashlib.sha256(b"hello").hexdigest())]


def reference_blocks(text):
    """Line-by-line definition of split_blank_lines: a blank line is empty or only spaces/tabs/CR."""
    out, block = [], []
    for line in text.split("\n"):
        if line.strip(" \t\r\f\v"):
            block.append(line)
        elif block:
            out.append("\n".join(block).rstrip("\r\n"))
            block = []
    if block:
        out.append("\n".join(block).rstrip("\r\n"))
    return out


def test_blank_line_blocks_across_read_boundaries_match_the_line_by_line_definition(tmp_path):
    import random

    rng = random.Random(0)
    pool = []
    for _ in range(300):
        lines = ["".join(rng.choice("abcé \t") for _ in range(rng.randint(1, 60))).strip() or "x"
                 for _ in range(rng.randint(1, 4))]
        sep = rng.choice(["\n\n", "\n\n\n", "\n  \n", "\r\n\r\n", "\n\t\n \n"])
        pool.append("\n".join(lines) + sep)
    # ~9 MB: the reader works in 4 MiB pieces, so blocks and separators straddle two piece boundaries.
    text = "".join(rng.choices(pool, k=9_000_000 // 60))
    f = write(tmp_path / "big.txt", text)
    got = [d.text for d in iter_documents(f, split_blank_lines=True)]
    assert got == reference_blocks(text)


def test_byte_order_mark_is_not_part_of_the_text(tmp_path):
    bom = "\ufeff".encode("utf-8")
    f = write(tmp_path / "win.txt", bom + b"hello")
    g = write(tmp_path / "win.jsonl", bom + b'{"text": "rec"}\n')
    assert [d.text for d in iter_documents([f, g])] == ["hello", "rec"]
    assert [d.text for d in iter_documents(f, split_blank_lines=True)] == ["hello"]
