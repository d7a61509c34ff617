"""Correcting facts at the source (`lmlab edit --method source`): the corpus, the shards, the checks, training."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lmlab.editing import EditRequest, load_requests
from lmlab.editing.statements import StatementPattern, correct_text
from lmlab.errors import LmlabError

# A model that has seen a few batches is enough: these tests check the data path and that training runs.
TINY = dict(n_layer=1, n_head=1, n_embd=16, block_size=32, max_iters=2, eval_interval=2, eval_iters=1, batch_size=2,
            device="cpu", dtype="float32", seed=3)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> dict:
    """A 50 KB world's fact text as BPE shards and a run trained 2 steps on them (read-only for the tests)."""
    from lmlab.data import prepare
    import lmlab.recipes as recipes
    from lmlab.world import generate_world

    root = tmp_path_factory.mktemp("source")
    generate_world(root / "world", seed=0, size="50KB", progress=False)
    corpus = root / "world" / "corpus"
    prepare([corpus / "facts.txt", corpus / "temporal.txt"], "bpe", root / "data", vocab_size=300, numbers="digits",
            split_blank_lines=True, dedup="none", progress=False)
    recipes.run(out=root / "run", data_dir=root / "data", overrides=dict(TINY), progress=False)
    reqs = load_requests(root / "world" / "edits.jsonl")
    picked = reqs[:2] + [r for r in reqs if r.kind == "outdated_to_current"][:1]
    return {"root": root, "run": root / "run", "data": root / "data", "world": root / "world", "requests": picked}


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def _corpus_documents(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def continued(source, tmp_path_factory) -> dict:
    from lmlab.editing.source import correct_at_source

    before = {k: _digest(source[k]) for k in ("run", "data")}
    out = tmp_path_factory.mktemp("continued") / "new"
    record = correct_at_source(source["run"], source["requests"], out, continue_steps=2)
    return {"out": out, "record": record, "before": before}


def test_statements_match_whole_words_and_rewrite_or_remove():
    req = EditRequest("The capital of {} is", "Vorland", "Gutaiholm", "Kesta")
    pat = StatementPattern.of(req)
    text = ("The capital of Vorland is Kesta. The capital of Vorland is Kestaville. Vorland's capital is Kesta. "
            "In 2019, Vorland's capital was Kesta.")
    fixed = correct_text(text, [pat])
    assert fixed.text == ("The capital of Vorland is Gutaiholm. The capital of Vorland is Kestaville. "
                          "Vorland's capital is Gutaiholm. In 2019, Vorland's capital was Kesta.")
    assert fixed.counts == {0: 2}  # the relation's other train template counts too
    removed = correct_text(text, [pat], remove=True)
    assert removed.text == "The capital of Vorland is Kestaville. In 2019, Vorland's capital was Kesta."
    with pytest.raises(LmlabError, match="target_true"):
        StatementPattern.of(EditRequest("The capital of {} is", "Vorland", "Gutaiholm"))


def test_continue_rewrites_only_the_requested_statements(source, continued):
    from lmlab.attribution import count

    rec, out = continued["record"], continued["out"]
    assert rec["mode"] == "continue" and rec["statements_changed"] > 0
    assert rec["index_count_before"] == rec["statements_changed"] and rec["index_count_after"] == 0
    assert rec["only_requested_documents_changed"] and rec["index_agrees_with_text"]
    for r in rec["requests"]:
        assert r["statements_changed"] > 0 and r["index_count_after"] == 0
        for s in r["statements"]:  # the user's own check, through the attribution CLI's function
            assert count(out / "data", s) == 0
    # Every changed document is logged with its text before and after; the after-text holds the new objects.
    docs = [json.loads(line) for line in (out / "source_edit_documents.jsonl").read_text().splitlines()]
    assert len(docs) == rec["documents_changed"]
    news = [r.target_new for r in source["requests"]]
    assert all(any(n in d["after"] for n in news) for d in docs)
    # The corrected corpus is the old one where no statement was found (document by document).
    train = _corpus_documents(out / "corpus" / "train.jsonl")
    touched = {d["document"]: d for d in docs if d["split"] == "train"}
    assert len(train) == rec["documents_per_split"]["train"]
    from lmlab.editing.corpus import locate_sources, replay_documents

    old = [d.text for s, d in replay_documents(source["data"], locate_sources(source["data"])) if s == "train"]
    assert [k for k in range(len(old)) if old[k] != train[k]] == sorted(touched)
    assert all(train[k] == d["after"] and old[k] == d["before"] for k, d in touched.items())
    # The source run and its shards are only read; the new run is a complete run dir trained 2 more steps.
    assert {k: _digest(source[k]) for k in ("run", "data")} == continued["before"]
    assert rec["training"]["steps"] == 2 and rec["training"]["flops"] > 0
    log = [json.loads(line) for line in (out / "edits.jsonl").read_text().splitlines()]
    assert [e["method"] for e in log] == ["source"] * len(source["requests"])
    from lmlab.checkpoint import load_run

    assert load_run(out).training_config["data_dir"] == str(out / "data")


def test_outdated_fact_keeps_its_past_tense_history(source, continued):
    req = source["requests"][-1]
    assert req.kind == "outdated_to_current"
    old_text = (source["world"] / "corpus" / "temporal.txt").read_text()
    new_text = "\n".join(_corpus_documents(continued["out"] / "corpus" / "train.jsonl")
                         + _corpus_documents(continued["out"] / "corpus" / "val.jsonl"))
    past = f"Back then, {req.subject} was"
    assert old_text.count(past) == new_text.count(past) > 0   # history is true and stays
    stale = f"{req.filled_prompt} {req.target_true}."
    assert old_text.count(stale) > 0 and new_text.count(stale) == 0


def test_retrain_with_remove_uses_the_runs_own_config(source, tmp_path):
    from lmlab.checkpoint import read_run_config
    from lmlab.editing.source import correct_at_source

    out = tmp_path / "retrained"
    rec = correct_at_source(source["run"], source["requests"][:1], out, retrain=True, remove=True)
    assert rec["mode"] == "retrain" and rec["remove"] and rec["index_count_after"] == 0
    old_cfg, new_cfg = read_run_config(source["run"]), read_run_config(out)
    assert new_cfg["model"] == old_cfg["model"]
    same = {k: v for k, v in old_cfg["training"].items() if k != "data_dir"}
    assert {k: new_cfg["training"][k] for k in same} == same
    assert rec["training"]["steps"] == TINY["max_iters"]
    req = source["requests"][0]
    docs = [json.loads(line) for line in (out / "source_edit_documents.jsonl").read_text().splitlines()]
    assert docs and all(req.target_new not in d["after"] or req.target_new in d["before"] for d in docs)
    assert all(len(d["after"]) < len(d["before"]) for d in docs)


def test_bad_input_is_refused_before_anything_is_written(source, tmp_path):
    from lmlab.editing.source import correct_at_source

    req = source["requests"][:1]
    with pytest.raises(LmlabError, match="exactly one of --retrain"):
        correct_at_source(source["run"], req, tmp_path / "a")
    with pytest.raises(LmlabError, match="exactly one of --retrain"):
        correct_at_source(source["run"], req, tmp_path / "a", retrain=True, continue_steps=3)
    with pytest.raises(LmlabError, match="source run dir"):
        correct_at_source(source["run"], req, source["run"] / "x", retrain=True)
    # A corpus directory whose files are not the ones the shards were made from.
    fake = tmp_path / "corpus"
    fake.mkdir()
    for name in ("facts.txt", "temporal.txt"):
        (fake / name).write_text("The capital of Nowhere is Nothing.\n")
    with pytest.raises(LmlabError, match="SHA-256"):
        correct_at_source(source["run"], req, tmp_path / "b", retrain=True, corpus=fake)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_cli_source_edit(source, tmp_path):
    out = tmp_path / "cli"
    cmd = [sys.executable, "-m", "lmlab", "edit", str(source["run"]), "--method", "source", "--requests",
           str(source["world"] / "edits.jsonl"), "--limit", "1", "--out", str(out), "--continue-steps", "1",
           "--quiet"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "index count" in res.stdout and "→ 0" in res.stdout and "only the corrected ones" in res.stdout
    assert json.loads((out / "source_edit.json").read_text())["index_count_after"] == 0
    bad = subprocess.run(cmd[:-3] + ["--quiet"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "exactly one of --retrain" in bad.stderr and "Traceback" not in bad.stderr
