"""`lmlab train` with no data option: world → BPE shards → tiny GPT → perplexity and completions (shortened here
with --key value overrides; the full job is timed by hand, see docs/training.md)."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_main_job_pipeline_runs_end_to_end(tmp_path):
    r = subprocess.run([sys.executable, "-m", "lmlab", "train", "--max_iters", "3", "--eval_interval", "3",
                        "--eval_iters", "1", "--n_layer", "1", "--device", "cpu", "--no-progress"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "runs" / "world" / "world.json").is_file()
    manifest = json.loads((tmp_path / "runs" / "world-data" / "manifest.json").read_text())
    assert manifest["tokenizer"]["kind"] == "bpe"
    run = tmp_path / "runs" / "tiny"
    assert (run / "model.safetensors").is_file() and (run / "metrics.jsonl").is_file()
    assert "perplexity" in r.stdout and "sample completions (greedy):" in r.stdout
    assert r.stdout.count(" → ") == 5
    # a second run reuses the world and the shards, and replaces the earlier main-job run
    r2 = subprocess.run([sys.executable, "-m", "lmlab", "train", "--max_iters", "1", "--eval_iters", "1",
                         "--n_layer", "1", "--device", "cpu"], cwd=tmp_path, capture_output=True, text=True,
                        timeout=900)
    assert r2.returncode == 0, r2.stderr[-2000:]
    assert "generating the world" not in r2.stderr and "preparing BPE shards" not in r2.stderr
    assert "[3/3] training" in r2.stderr


@pytest.mark.parametrize("case", range(6))
def test_bad_input_exits_2_with_one_line(tmp_path, char_data, capsys, case):
    from lmlab.cli import main

    cases = [
        ["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "r1")],
        ["train", "--data", str(char_data), "--out", str(tmp_path / "r2"), "--preset", "gigantic"],
        ["train", "--data", str(char_data), "--out", str(tmp_path / "r3"), "--learning_rate", "1e-3"],
        ["train", "--data", str(char_data), "--out", str(tmp_path / "r4"), "--model", "lstm9"],
        ["train", "--data", str(char_data), "--out", str(tmp_path / "r5"), "--config", str(tmp_path / "no.yaml")],
        ["train", "--data", str(char_data), "--out", str(tmp_path / "r6"), "--block_size", "0"],
    ]
    assert main(cases[case]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lmlab: error: ") and err.count("\n") == 1, err
    assert not (tmp_path / f"r{case + 1}" / "model.safetensors").exists()
