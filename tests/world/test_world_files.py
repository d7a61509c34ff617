"""The world directory as a whole: determinism, size, safe writes, readers, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lmlab.cli import main
from lmlab.errors import LmlabError
from lmlab.utils import sha256_file
from lmlab.world import (generate_world, is_world, list_tasks, load_edits, load_facts, load_task, load_world_info,
                         sample_prompts)

REPO = Path(__file__).resolve().parents[2]


def tree_hashes(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): sha256_file(p) for p in sorted(d.rglob("*")) if p.is_file()}


def test_same_arguments_give_byte_identical_worlds_in_process_and_subprocess(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate_world(a, seed=3, size="200KB", progress=False)
    generate_world(b, seed=3, size="200KB", progress=False)
    env = dict(os.environ, PYTHONHASHSEED="123")  # set ordering must not leak into the output
    subprocess.run([sys.executable, "-m", "lmlab", "world", "--out", str(c), "--seed", "3", "--size", "200KB"],
                   check=True, cwd=REPO, env=env, capture_output=True)
    ha = tree_hashes(a)
    assert len(ha) > 20
    assert ha == tree_hashes(b) == tree_hashes(c)


def test_different_seed_gives_different_world(tmp_path):
    generate_world(tmp_path / "s0", seed=0, size="200KB", progress=False)
    generate_world(tmp_path / "s1", seed=1, size="200KB", progress=False)
    h0, h1 = tree_hashes(tmp_path / "s0"), tree_hashes(tmp_path / "s1")
    assert h0.keys() == h1.keys()
    assert all(h0[k] != h1[k] for k in h0 if k.startswith("corpus/"))
    assert load_facts(tmp_path / "s0")[0]["subject"] != load_facts(tmp_path / "s1")[0]["subject"]


@pytest.mark.parametrize("size", ["200KB", "1MB"])
def test_training_text_size_matches_request(tmp_path, size):
    summary = generate_world(tmp_path / "w", size=size, progress=False)
    total = sum(p.stat().st_size for p in (tmp_path / "w" / "corpus").glob("*.txt"))
    requested = {"200KB": 200_000, "1MB": 1_000_000}[size]
    assert abs(total - requested) <= 0.2 * requested
    assert summary["corpus_bytes"] == total
    assert sorted(p.name for p in (tmp_path / "w" / "corpus").glob("*.txt")) == sorted(summary["sections"])


def test_entity_count_grows_with_size_and_mentions_stay_high(tmp_path):
    small = generate_world(tmp_path / "s", size="500KB", progress=False)
    big = generate_world(tmp_path / "b", size="3MB", progress=False)
    assert big["counts"]["static_facts"] > 3 * small["counts"]["static_facts"]
    for s in (small, big):
        assert s["mentions"]["static_min"] >= 30
        assert s["mentions"]["outdated_mean"] > 2 * s["mentions"]["current_mean"] > 0


@pytest.mark.parametrize("size", ["10KB", "3GB", "-5MB", "lots"])
def test_nonsense_sizes_are_rejected(tmp_path, size):
    with pytest.raises(LmlabError):
        generate_world(tmp_path / "w", size=size, progress=False)
    assert not (tmp_path / "w").exists()


def test_refuses_a_non_world_directory_but_regenerates_a_world(tmp_path):
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(LmlabError, match="not empty"):
        generate_world(other, size="100KB", progress=False)
    assert (other / "keep.txt").read_text() == "mine"

    w = tmp_path / "w"
    generate_world(w, seed=0, size="100KB", progress=False)
    first = tree_hashes(w)
    generate_world(w, seed=1, size="100KB", progress=False)
    assert tree_hashes(w) != first and load_world_info(w)["seed"] == 1
    # no temporary or backup directories are left next to the world
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "w"]

    empty = tmp_path / "empty"
    empty.mkdir()
    generate_world(empty, size="100KB", progress=False)
    assert is_world(empty)


def test_readers(tmp_path):
    w = tmp_path / "w"
    summary = generate_world(w, size="300KB", progress=False)
    facts = load_facts(w)
    assert len(facts) == summary["counts"]["facts"]
    assert len(load_edits(w)) == summary["counts"]["edits"]
    names = list_tasks(w)
    assert {"facts_train", "facts_paraphrase", "temporal", "sentiment", "arithmetic_2da", "arithmetic_1dc",
            "scramble_unscramble_reversed_words", "scramble_scramble_anagrams2"} <= set(names)
    assert load_task(w, "arithmetic_2da")[0]["task"] == "2D+"
    with pytest.raises(LmlabError, match="no task"):
        load_task(w, "nope")

    prompts = sample_prompts(w, 5, seed=1)
    assert prompts == sample_prompts(w, 5, seed=1) and len(prompts) == 5
    text = (w / "corpus" / "facts.txt").read_text()
    assert all("{}" not in p and p in text for p in prompts)

    for bad in (tmp_path / "missing", tmp_path):
        with pytest.raises(LmlabError, match="not a world"):
            load_facts(bad)


def test_corrupt_jsonl_is_reported_with_line_number(tmp_path):
    w = tmp_path / "w"
    generate_world(w, size="100KB", progress=False)
    with open(w / "edits.jsonl", "a") as f:
        f.write("{not json\n")
    with pytest.raises(LmlabError, match=r"edits.jsonl:\d+"):
        load_edits(w)


def test_cli_prints_summary_and_reports_errors(tmp_path, capsys):
    assert main(["world", "--out", str(tmp_path / "w"), "--size", "100KB", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "world:" in out and "facts:" in out and "corpus:" in out
    assert json.loads((tmp_path / "w" / "world.json").read_text())["seed"] == 2
    assert main(["world", "--out", str(tmp_path / "w2"), "--size", "3GB"]) == 2
    assert "lmlab: error: world size" in capsys.readouterr().err


def test_interrupted_generation_leaves_no_world_and_no_temp_dir(tmp_path):
    import signal
    import time

    out = tmp_path / "w"
    # A test run started in the background by a non-interactive shell (CI runners, nohup ... &) inherits SIGINT as
    # *ignored*, and Python keeps it ignored: give the child the default disposition, as a terminal's Ctrl-C sees.
    proc = subprocess.Popen([sys.executable, "-m", "lmlab", "world", "--out", str(out), "--size", "500MB"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 30
    while not any(p.name.startswith(".w.tmp-") for p in tmp_path.iterdir()):  # wait until writing has begun
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and b"interrupted" in err
    assert not out.exists() and not is_world(out)
    assert list(tmp_path.iterdir()) == []
