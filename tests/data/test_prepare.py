"""prepare → shards + manifest, validated loading, atomic replacement, tokenizer checks."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lmlab.data import (data_stats, iter_documents, load_manifest, load_split, load_tokenizer_of, prepare,
                        verify_shards)
from lmlab.errors import LmlabError
from lmlab.tokenization import CharTokenizer, train_tokenizer

REPO = Path(__file__).resolve().parents[2]


def make_corpus(root: Path, n: int = 30) -> Path:
    corpus = root / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (corpus / f"doc{i:03d}.txt").write_text(f"Document number {i}: the café has {i * 7} chairs.\n",
                                                encoding="utf-8")
    (corpus / "dup.txt").write_text("Document number 3: the café   has 21 chairs.\n", encoding="utf-8")
    return corpus


def split_documents(tokens, tok) -> list[str]:
    text = tok.decode(tokens.tolist())
    assert text.endswith("<eos>")
    return text.split("<eos>")[:-1]


def test_prepare_round_trips_every_document_into_exactly_one_split(tmp_path):
    corpus = make_corpus(tmp_path)
    m = prepare([corpus], "char", tmp_path / "data", val_fraction=0.2, seed=1, progress=False)
    tok = load_tokenizer_of(tmp_path / "data")
    train, val = load_split(tmp_path / "data", "train", tok), load_split(tmp_path / "data", "val", tok)
    originals = [d.text for d in iter_documents(corpus) if d.source != str(corpus / "dup.txt")]
    got_train, got_val = split_documents(train, tok), split_documents(val, tok)
    assert sorted(got_train + got_val) == sorted(originals)
    assert len(got_val) == 6 and set(got_train).isdisjoint(got_val)
    # Order inside a split follows reading order.
    assert got_train == [t for t in originals if t in set(got_train)]
    # Manifest: counts, bytes of text, dedup, sources, tokenizer.
    assert m == load_manifest(tmp_path / "data")
    assert m["dtype"] == "uint16" and train.dtype == np.uint16 and not train.flags.writeable
    assert m["splits"]["train"]["tokens"] == len(train) and m["splits"]["val"]["documents"] == 6
    assert m["splits"]["val"]["text_bytes"] == sum(len(t.encode()) for t in got_val)
    assert m["dedup"] == {"mode": "exact", "exact_duplicates_removed": 1, "near_duplicates_removed": 0}
    assert m["documents_read"] == 31 and len(m["sources"]) == 31
    assert m["tokenizer"]["fingerprint"] == tok.fingerprint and m["tokenizer"]["kind"] == "char"
    verify_shards(tmp_path / "data")


def test_prepare_is_deterministic_and_the_same_with_worker_processes(tmp_path):
    corpus = tmp_path / "many"
    corpus.mkdir()
    # More documents than one task holds, so several tasks run and must come back in order.
    (corpus / "all.jsonl").write_text("".join(json.dumps({"text": f"line {i} " * (i % 5 + 1)}) + "\n"
                                              for i in range(20000)))
    tok = train_tokenizer("char", ["line 0123456789"], progress=False)
    a = prepare(corpus, tok, tmp_path / "a", workers=1, progress=False)
    b = prepare(corpus, tok, tmp_path / "b", workers=2, progress=False)
    assert a["splits"] == b["splits"]
    assert (tmp_path / "a" / "train.bin").read_bytes() == (tmp_path / "b" / "train.bin").read_bytes()


def test_tokenizer_file_and_uint32_for_big_vocabularies(tmp_path):
    words = [f"w{i}" for i in range(66000)]
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.txt").write_text(" ".join(words[:33000]))
    (tmp_path / "c" / "b.txt").write_text(" ".join(words[33000:]))
    tok = train_tokenizer("word", words, progress=False)
    tok.save(tmp_path / "tok.json")
    m = prepare(tmp_path / "c", tmp_path / "tok.json", tmp_path / "data", dedup="none", progress=False)
    assert m["dtype"] == "uint32"
    train = load_split(tmp_path / "data", "train")
    assert train.dtype == np.uint32 and train.max() >= 65535
    with pytest.raises(LmlabError, match="vocab_size and special tokens apply only"):
        prepare(tmp_path / "c", tmp_path / "tok.json", tmp_path / "data2", vocab_size=100, progress=False)


def test_loading_detects_corruption_and_wrong_tokenizer(tmp_path):
    prepare(make_corpus(tmp_path), "char", tmp_path / "data", progress=False)
    other = CharTokenizer("xyz")
    with pytest.raises(LmlabError, match=r"shards in .*data were made with tokenizer [0-9a-f]{16} but the model "
                                         r"uses [0-9a-f]{16}; prepare the text again .* into a new directory "
                                         r"\(`lmlab data prepare .*--tokenizer RUN_DIR/tokenizer.json --out NEW_DIR`"):
        load_split(tmp_path / "data", "train", other)
    with open(tmp_path / "data" / "train.bin", "r+b") as f:
        f.truncate(10)
    with pytest.raises(LmlabError, match="train.bin is corrupted: 10 bytes, but the manifest says"):
        load_split(tmp_path / "data", "train")
    (tmp_path / "data" / "manifest.json").write_text("{not json")
    with pytest.raises(LmlabError, match="manifest.json is corrupted"):
        load_split(tmp_path / "data")
    with pytest.raises(LmlabError, match="no manifest.json"):
        load_manifest(tmp_path)


def test_rerun_replaces_data_dir_and_refuses_foreign_directories(tmp_path):
    corpus = make_corpus(tmp_path)
    prepare(corpus, "char", tmp_path / "data", progress=False)
    (corpus / "new.txt").write_text("A brand new document with new letters: QJZ.\n")
    m2 = prepare(corpus, "char", tmp_path / "data", progress=False)
    assert load_manifest(tmp_path / "data") == m2 and m2["documents_read"] == 32
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "data"]  # no temp dirs left behind
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    with pytest.raises(LmlabError, match="not empty and is not an lmlab data dir"):
        prepare(corpus, "char", foreign, progress=False)
    assert (foreign / "precious.txt").read_text() == "keep me"


def test_near_dedup_and_blank_line_documents(tmp_path):
    para = ("the miller walked to town with a sack of flour on his back and sold it at the market for two silver "
            "coins before walking home again along the river in the cool evening air")
    f = tmp_path / "book.txt"
    f.write_text(f"{para}\n\n{para.replace('two', 'three')}\n\nSomething else entirely, short.\n\n{para}\n")
    m = prepare(f, "word", tmp_path / "data", dedup="near", near_threshold=0.6,
                split_blank_lines=True, progress=False)
    assert m["dedup"]["exact_duplicates_removed"] == 1 and m["dedup"]["near_duplicates_removed"] == 1
    # Two documents are too few to hold out 10% of them: the last 10% of the text is the val split (one document
    # cut in two), as for a single file.
    assert m["split"]["by"] == "tail" and m["splits"]["val"]["tokens"] > 0
    st = data_stats(tmp_path / "data")
    assert st["splits"]["train"]["tokens"] == m["splits"]["train"]["tokens"] and st["top_tokens"]


def test_killed_prepare_leaves_previous_data_dir_valid(tmp_path):
    small = make_corpus(tmp_path / "small", n=5)
    data = tmp_path / "data"
    before = prepare(small, "char", data, progress=False)
    big = tmp_path / "big"
    big.mkdir()
    line = "All work and no play makes Jack a dull boy, éh? 0123456789\n" * 200
    for i in range(400):  # ~4.7 MB: long enough to be caught in the middle
        (big / f"{i:04d}.txt").write_text(f"{i}\n{line}")
    proc = subprocess.Popen([sys.executable, "-m", "lmlab", "data", "prepare", str(big), "--tokenizer", "char",
                             "--out", str(data), "--workers", "1", "--dedup", "none", "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    caught = False
    while time.time() < deadline and proc.poll() is None:
        tmps = list(tmp_path.glob(".data.tmp-*"))
        if tmps and (tmps[0] / "train.bin").exists() and (tmps[0] / "train.bin").stat().st_size > 0:
            os.kill(proc.pid, signal.SIGKILL)
            caught = True
            break
        time.sleep(0.005)
    proc.wait()
    if not caught:
        pytest.skip("prepare finished before it could be interrupted")
    # The old data dir is intact and still loads; the half-written shards are only in a hidden temp dir.
    assert load_manifest(data) == before
    assert len(load_split(data, "train")) == before["splits"]["train"]["tokens"]
    assert not (next(tmp_path.glob(".data.tmp-*")) / "manifest.json").exists()
    # The next prepare cleans up the dead process's temp dir.
    prepare(small, "char", data, progress=False)
    assert list(tmp_path.glob(".data.*")) == []


def test_tokenizer_trained_on_the_fly_never_sees_validation_text(tmp_path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    for i in range(20):
        (corpus / f"{i:02d}.txt").write_text(f"doc {i} mark{'QWXZ'[i % 4] * 3}")
    m = prepare(corpus, "char", tmp_path / "data", val_fraction=0.5, progress=False)
    tok = load_tokenizer_of(tmp_path / "data")
    val_text = "".join(split_documents(load_split(tmp_path / "data", "val"), tok))
    train_text = "".join(split_documents(load_split(tmp_path / "data", "train"), tok))
    only_val = set(val_text) - set(train_text)
    assert m["splits"]["val"]["documents"] == 10
    assert only_val  # with seed 0 some digits/letters occur only in validation documents
    assert all(tok.token_to_id(c) is None for c in only_val)
    assert all(tok.token_to_id(c) is not None for c in set(train_text))


def test_errors_replace_goes_on_past_bad_bytes(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.txt").write_bytes(b"good text")
    (tmp_path / "c" / "b.txt").write_bytes(b"bad \xff text")
    with pytest.raises(LmlabError, match="b.txt: not valid UTF-8 at byte offset 4"):
        prepare(tmp_path / "c", "char", tmp_path / "data", progress=False)
    m = prepare(tmp_path / "c", "char", tmp_path / "data", errors="replace", progress=False)
    assert m["documents_read"] == 2 and m["options"]["errors"] == "replace"


def test_one_file_holds_out_the_last_tenth_of_its_text(tmp_path):
    """A single text file (the most common case) still gets a val split: its last ~10%, cut at a line boundary,
    with nothing lost or duplicated between the two splits."""
    lines = [f"line {i}: the quick brown fox number {i} jumps over the lazy dog" for i in range(400)]
    f = tmp_path / "book.txt"
    f.write_text("\n".join(lines) + "\n")
    with pytest.warns(UserWarning, match="last 10% of the text is the validation split"):
        m = prepare(f, "char", tmp_path / "data", progress=False)
    assert m["split"]["by"] == "tail"
    tok = load_tokenizer_of(tmp_path / "data")
    train_text = "".join(split_documents(load_split(tmp_path / "data", "train"), tok))
    val_text = "".join(split_documents(load_split(tmp_path / "data", "val"), tok))
    assert train_text + val_text == f.read_text()
    assert train_text.endswith("\n") and val_text.startswith("line ")  # cut between two lines
    assert 0.08 < len(val_text) / len(f.read_text()) < 0.12


def test_own_validation_files_are_the_val_split(tmp_path):
    corpus = make_corpus(tmp_path / "c", n=6)
    held = tmp_path / "held.txt"
    held.write_text("A validation text the user wrote.\n")
    m = prepare(corpus, "char", tmp_path / "data", val_inputs=[held], progress=False)
    tok = load_tokenizer_of(tmp_path / "data")
    assert m["split"] == {"by": "val-files"}
    assert m["splits"]["train"]["documents"] == 6 and m["splits"]["val"]["documents"] == 1
    assert "".join(split_documents(load_split(tmp_path / "data", "val"), tok)) == held.read_text()
    # Validation text that duplicates training text is removed by dedup, which would leave no val split at all.
    with pytest.raises(LmlabError, match="dedup left no validation text"):
        prepare(corpus, "char", tmp_path / "data2", val_inputs=[next(corpus.iterdir())], progress=False)
