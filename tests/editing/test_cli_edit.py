"""`lmlab edit` and `lmlab edit eval`: a new run dir with a log, the source untouched, one-line errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lmlab.checkpoint import load_run
from lmlab.cli import main
from lmlab.utils import sha256_file

REPO = Path(__file__).resolve().parents[2]


def _hashes(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): sha256_file(p) for p in sorted(d.rglob("*")) if p.is_file()}


def _world_fact(world_requests):
    r = next(r for r in world_requests if r.kind == "counterfactual")
    return r


def test_edit_writes_a_new_run_dir_and_leaves_the_source_unchanged(world_run, world_requests, tmp_path, capsys,
                                                                   monkeypatch):
    monkeypatch.setenv("LMLAB_CACHE_DIR", str(tmp_path / "cache"))
    src = world_run["run_dir"]
    before = _hashes(src)
    r = _world_fact(world_requests)
    out = tmp_path / "edited"
    code = main(["edit", str(src), "--prompt", r.prompt, "--subject", r.subject, "--target", r.target_new,
                 "--target-true", r.target_true, "--layers", "1", "--out", str(out), "--quiet",
                 "--stats-tokens", "4000"])
    text = capsys.readouterr().out
    assert code == 0
    assert "P(new)" in text and "P(true)" in text and "before:" in text and "after:" in text
    assert _hashes(src) == before                      # the source run dir is byte-identical
    edited = load_run(out)                             # a full, loadable run dir
    orig = load_run(src)
    changed = [n for n, p in edited.model.state_dict().items() if not (p == orig.model.state_dict()[n]).all()]
    assert changed == ["blocks.1.mlp.c_proj.weight"]
    log = [json.loads(line) for line in (out / "edits.jsonl").read_text().splitlines()]
    assert len(log) == 1 and log[0]["method"] == "rome" and log[0]["layers"] == [1]
    assert log[0]["request"]["subject"] == r.subject and "before" in log[0] and "after" in log[0]
    assert log[0]["update_norms"]["blocks.1.mlp.c_proj.weight"] > 0


def test_edit_with_a_requests_file_and_ft(world_run, tmp_path, capsys):
    reqs = tmp_path / "reqs.jsonl"
    reqs.write_text(json.dumps({"prompt": "The capital of {} is", "subject": "Lysaria", "target_new": "Batreiton"})
                    + "\n")
    out = tmp_path / "ft"
    assert main(["edit", str(world_run["run_dir"]), "--requests", str(reqs), "--method", "ft", "--layers", "2",
                 "--out", str(out), "--quiet"]) == 0
    assert "ft edited layer(s) 2 for 1 request(s)" in capsys.readouterr().out
    assert (out / "model.safetensors").is_file() and (out / "edits.jsonl").is_file()


@pytest.mark.parametrize("extra, message", [
    (["--prompt", "The capital of Vorland is", "--subject", "Lysaria", "--target", "X"], "is not in the prompt"),
    (["--prompt", "The capital of {} is", "--subject", "Lysaria", "--target", " "], "target is empty"),
    (["--prompt", "The capital of {} is", "--subject", "Lysaria", "--target", "X", "--layers", "7"],
     "layer 7 is out of range"),
    (["--prompt", "The capital of {} is", "--subject", "Lysaria", "--target", "X", "--layers", "a"],
     "--layers"),
])
def test_edit_errors_are_one_line_with_exit_2(world_run, tmp_path, capsys, extra, message):
    code = main(["edit", str(world_run["run_dir"]), *extra, "--method", "ft", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and message in err
    assert err.startswith("lmlab: error:") and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_malformed_requests_file_names_the_line(world_run, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "The capital of {} is", "subject": "Lysaria", "target_new": "Batreiton"}\n\n'
                   '{"prompt": "The capital of {} is", "subject": "Lysaria"\n')
    assert main(["edit", str(world_run["run_dir"]), "--requests", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:3" in err and err.count("\n") == 1
    missing = tmp_path / "missing.jsonl"
    missing.write_text('{"prompt": "The capital of {} is", "subject": "Lysaria", "target_new": ""}\n')
    assert main(["edit", str(world_run["run_dir"]), "--requests", str(missing), "--out", str(tmp_path / "o")]) == 2
    assert f"{missing}:1" in capsys.readouterr().err


def test_out_dir_equal_to_the_source_is_refused(world_run, capsys):
    src = str(world_run["run_dir"])
    before = _hashes(world_run["run_dir"])
    assert main(["edit", src, "--prompt", "The capital of {} is", "--subject", "Lysaria", "--target", "X",
                 "--out", src]) == 2
    assert "never overwrites its source" in capsys.readouterr().err
    assert _hashes(world_run["run_dir"]) == before


def test_edit_eval_prints_the_table_and_writes_json(world_run, tmp_path, monkeypatch):
    monkeypatch.setenv("LMLAB_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "results.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # see conftest.one_torch_thread
    proc = subprocess.run([sys.executable, "-m", "lmlab", "edit", "eval", str(world_run["run_dir"]), "--requests",
                           str(world_run["world_dir"] / "edits.jsonl"), "--method", "rome,ft", "--limit", "3",
                           "--layers", "1", "--no-fluency", "--quiet", "--out", str(out), "--stats-tokens", "4000"],
                          capture_output=True, text=True, cwd=REPO, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:5] == ["method", "S", "ES", "PS", "NS"]
    assert [ln.split()[0] for ln in lines[2:5]] == ["none", "rome", "ft"]
    res = json.loads(out.read_text())
    assert set(res["methods"]) == {"none", "rome", "ft"} and res["n_requests"] == 3
    assert all(len(res["cases"][m]) == 3 for m in res["methods"])
    assert 0 <= res["methods"]["rome"]["efficacy_score"] <= 100


def test_edit_help_shows_both_forms():
    proc = subprocess.run([sys.executable, "-m", "lmlab", "edit", "--help"], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert proc.returncode == 0
    assert "lmlab edit RUN_DIR" in proc.stdout and "lmlab edit eval RUN_DIR" in proc.stdout
