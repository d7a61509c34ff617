"""`lmlab train --text` on what a new user has: one text file (and, optionally, their own validation file)."""

import json
import subprocess
import sys

import pytest


def lmlab(*args, cwd):
    return subprocess.run([sys.executable, "-m", "lmlab", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"}, timeout=300)


@pytest.fixture
def one_file(tmp_path):
    f = tmp_path / "story.txt"
    f.write_text("".join(f"Once upon a time a fox number {i} ran to the river and drank.\n" for i in range(300)))
    return f


TINY = ["--n_layer", "1", "--n_embd", "32", "--n_head", "2", "--block_size", "32", "--batch_size", "4",
        "--max_iters", "6", "--eval_interval", "3", "--eval_iters", "2", "--no-progress"]


def test_train_text_one_file_holds_out_its_tail_and_trains(tmp_path, one_file):
    r = lmlab("train", "--text", one_file, "--tokenizer", "char", "--out", "run", *TINY, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # One line saying what happened to the split, no Python warning boilerplate.
    notes = [line for line in r.stderr.splitlines() if "validation split" in line]
    assert len(notes) == 1 and notes[0].startswith("lmlab: warning:") and "--val" in notes[0]
    assert "val loss" in r.stdout
    manifest = json.loads((tmp_path / "run" / "data" / "manifest.json").read_text())
    assert manifest["split"]["by"] == "tail" and manifest["splits"]["val"]["tokens"] > 0


def test_train_text_with_own_validation_file(tmp_path, one_file):
    val = tmp_path / "val.txt"
    val.write_text("A fox drank at the river once upon a time.\n")
    r = lmlab("train", "--text", one_file, "--val", val, "--tokenizer", "char", "--out", "run", *TINY, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    manifest = json.loads((tmp_path / "run" / "data" / "manifest.json").read_text())
    assert manifest["split"]["by"] == "val-files" and manifest["splits"]["val"]["documents"] == 1
    r = lmlab("train", "--data", tmp_path / "run" / "data", "--val", val, "--out", "run2", *TINY, cwd=tmp_path)
    assert r.returncode == 2 and "--val goes with --text" in r.stderr
