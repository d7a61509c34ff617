"""`lmlab instruction-set WORLD --out DIR`: the world's instruction examples — stable bytes, the world left as it
was, tuning and evaluation kept apart (items, phrasings, and the held-out type)."""

from __future__ import annotations

import hashlib
import json

import pytest

from lmlab.errors import LmlabError
from lmlab.world import generate_world, instruction_set
from lmlab.world.instructions import FACT_QUESTIONS, TYPES


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "world"
    generate_world(path, seed=0, size="50KB", progress=False)
    return path


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _digests(root):
    return {p.relative_to(root): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def test_same_arguments_same_bytes_and_the_world_is_only_read(world, tmp_path):
    before = _digests(world)
    a = instruction_set(world, tmp_path / "a")
    b = instruction_set(world, tmp_path / "b")
    assert _digests(world) == before
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    assert a["counts"] == json.loads((tmp_path / "a" / "info.json").read_text())["counts"]
    other = instruction_set(world, tmp_path / "c", seed=1)
    assert other["seed"] == 1 and _digests(tmp_path / "c") != _digests(tmp_path / "a")


def test_tuning_and_evaluation_are_kept_apart(world, tmp_path):
    instruction_set(world, tmp_path / "s", heldout_type="current_value")
    train = _read(tmp_path / "s" / "train.jsonl")
    heldout = _read(tmp_path / "s" / "heldout_phrasings.jsonl")
    held_type = _read(tmp_path / "s" / "heldout_type.jsonl")
    assert {r["type"] for r in train} == set(TYPES) - {"current_value"}
    assert {r["type"] for r in held_type} == {"current_value"}
    assert {r["type"] for r in heldout} == set(TYPES) - {"current_value"}
    assert all(r["phrasing"] == "seen" for r in train) and all(r["phrasing"] == "heldout" for r in heldout)
    # No held-out phrasing is ever used for tuning, and no evaluated question (with its input) is tuned on.
    held_questions = {q for _, held in FACT_QUESTIONS.values() for q in held}
    subjects = {r["instruction"].split(" ")[-1].rstrip("?.") for r in train if r["type"] == "fact_question"}
    assert not any(q.replace("{s}", s) == r["instruction"] for q in held_questions for s in subjects for r in train)
    tuned_items = {(r["type"], r.get("input", ""), r["response"]) for r in train}
    assert not {(r["type"], r.get("input", ""), r["response"]) for r in heldout
                if r["type"] in ("unscramble", "reverse", "sentiment")} & tuned_items
    rec = next(r for r in heldout if r["type"] == "reverse")
    assert rec["response"] == rec["input"][::-1]


def test_user_errors(world, tmp_path):
    with pytest.raises(LmlabError, match="unknown instruction type 'poetry'"):
        instruction_set(world, tmp_path / "x", heldout_type="poetry")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(LmlabError, match="holds no instruction set"):
        instruction_set(world, tmp_path / "busy")
    with pytest.raises(LmlabError, match="not a world directory"):
        instruction_set(tmp_path / "busy", tmp_path / "y")
