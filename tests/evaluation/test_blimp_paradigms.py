"""`lmlab eval tasks --tasks blimp:DIR`: each paradigm's accuracy and their unweighted mean (lm-evaluation-harness's
`blimp` group), in the table and in the JSON (issue 18)."""

import json
import re

import pytest

from lmlab.cli import main
from lmlab.errors import LmlabError
from lmlab.evaluation import resolve_tasks


def _paradigm(path, pairs):
    path.write_text("".join(json.dumps({"sentence_good": g, "sentence_bad": b, "UID": path.stem}) + "\n"
                            for g, b in pairs))


@pytest.fixture
def blimp_dir(tmp_path):
    """Two paradigms of different sizes (so an unweighted mean differs from a pooled one) and a file without pairs,
    like the published models_summary.jsonl beside the data."""
    d = tmp_path / "blimp"
    d.mkdir()
    _paradigm(d / "agreement.jsonl", [(f"The {n} sleeps.", f"The {n} sleep.") for n in
                                     ("cat", "dog", "bird", "king", "girl", "boy")])
    _paradigm(d / "determiners.jsonl", [(f"This {n} runs.", f"These {n} runs.") for n in
                                        ("cat", "dog", "bird", "king", "girl", "boy", "man", "cow", "fox", "hen")])
    (d / "models_summary.jsonl").write_text(json.dumps({"model": "gpt2", "acc": 0.8}) + "\n")
    return d


def _run(random_run, tasks, out, *extra):
    return main(["eval", "tasks", str(random_run), "--tasks", tasks, "--out", str(out), "--no-progress", *extra])


def test_blimp_directory_reports_each_paradigm_and_their_mean(random_run, blimp_dir, tmp_path, capsys):
    out = tmp_path / "results.json"
    assert _run(random_run, f"blimp:{blimp_dir}", out) == 0
    table = capsys.readouterr().out
    report = json.loads(out.read_text())
    by_task = {r["task"]: r for r in report["results"]}
    assert list(by_task) == ["blimp:agreement", "blimp:determiners", "blimp:blimp"]
    first, second, group = by_task.values()
    assert (first["n"], second["n"], group["n"]) == (6, 10, 16)
    # each paradigm's accuracy is its own items' P(good) > P(bad) rate
    items = [json.loads(line) for line in (tmp_path / "results.items.jsonl").read_text().splitlines()]
    for r in (first, second):
        mine = [it for it in items if it["task"] == r["task"]]
        assert r["metrics"]["acc"] == pytest.approx(
            sum(it["loglikelihoods"][0] > it["loglikelihoods"][1] for it in mine) / len(mine))
    # the group is the unweighted mean over paradigms (lm-eval's blimp), with its members named
    assert group["metrics"]["acc"] == pytest.approx((first["metrics"]["acc"] + second["metrics"]["acc"]) / 2)
    assert group["stderr"]["acc"] == pytest.approx(
        (first["stderr"]["acc"] ** 2 + second["stderr"]["acc"] ** 2) ** 0.5 / 2)
    assert group["subtasks"] == ["blimp:agreement", "blimp:determiners"]
    assert report["groups"] == {"blimp:blimp": ["blimp:agreement", "blimp:determiners"]}
    # the table has a row per paradigm and the mean's row, with the same values
    for r in (first, second):
        assert re.search(rf"^{re.escape(r['task'])} +0 +acc +{r['metrics']['acc']:.4f}", table, re.M)
    assert re.search(rf"^blimp:blimp \(mean of 2\) +0 +acc +{group['metrics']['acc']:.4f}", table, re.M)


def test_limit_applies_to_each_paradigm_and_json_output_has_the_mean(random_run, blimp_dir, tmp_path, capsys):
    assert _run(random_run, f"blimp:{blimp_dir}", tmp_path / "r.json", "--limit", "4", "--shots", "0,1",
                "--json") == 0
    printed = json.loads(capsys.readouterr().out)
    assert [(r["task"], r["shots"], r["n"]) for r in printed] == [
        ("blimp:agreement", 0, 4), ("blimp:agreement", 1, 4), ("blimp:determiners", 0, 4),
        ("blimp:determiners", 1, 4), ("blimp:blimp", 0, 8), ("blimp:blimp", 1, 8)]


def test_single_paradigm_file_is_one_task_without_a_group(blimp_dir):
    [task] = resolve_tasks(f"blimp:{blimp_dir / 'agreement.jsonl'}")
    assert task.name == "blimp:agreement" and task.config.group is None and len(task.docs) == 6


def test_directory_without_paradigms_is_a_one_line_error(tmp_path):
    (tmp_path / "notes.jsonl").write_text('{"a": 1}\n')
    with pytest.raises(LmlabError, match="no BLiMP paradigm file"):
        resolve_tasks(f"blimp:{tmp_path}")


@pytest.fixture
def long_context_run(shared_data, tmp_path):
    """An untrained char GPT whose context (128) holds a whole BLiMP sentence, over the characters of the data."""
    import torch

    from lmlab.checkpoint import save_run
    from lmlab.models import GPT, GPTConfig
    from lmlab.tokenization import CharTokenizer

    text = (shared_data / "blimp" / "determiner_noun_agreement_1.jsonl").read_text()
    tok = CharTokenizer.train([text], byte_fallback=False)
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=128, vocab_size=tok.vocab_size))
    save_run(tmp_path / "run", model, tok, model_config=model.config)
    return tmp_path / "run"


def test_shared_blimp_paradigm_under_two_names_and_the_shared_dir(long_context_run, shared_data, tmp_path):
    random_run = long_context_run
    source = shared_data / "blimp" / "determiner_noun_agreement_1.jsonl"
    head = "".join(source.read_text().splitlines(keepends=True)[:20])
    d = tmp_path / "two"
    d.mkdir()
    (d / "first.jsonl").write_text(head)
    (d / "second.jsonl").write_text(head)
    out = tmp_path / "two.json"
    assert _run(random_run, f"blimp:{d}", out) == 0
    results = {r["task"]: r for r in json.loads(out.read_text())["results"]}
    assert set(results) == {"blimp:first", "blimp:second", "blimp:two"}
    assert results["blimp:first"]["metrics"] == results["blimp:second"]["metrics"] == results["blimp:two"]["metrics"]
    # the shared dir: one paradigm (models_summary.jsonl has no pairs) and its group
    assert _run(random_run, f"blimp:{shared_data / 'blimp'}", tmp_path / "shared.json", "--limit", "10") == 0
    shared = json.loads((tmp_path / "shared.json").read_text())
    assert [r["task"] for r in shared["results"]] == ["blimp:determiner_noun_agreement_1", "blimp:blimp"]
