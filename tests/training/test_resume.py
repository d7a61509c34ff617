"""Exact resume: a real `python -m lmlab train` killed with SIGKILL after a checkpoint, then `--resume`, logs the
same losses as an uninterrupted run (fp32 on CPU: bitwise, we allow 1e-6)."""

import os
import signal
import subprocess
import time

import pytest
import torch

from lmlab.checkpoint import load_train_state
from lmlab.training import read_metrics

from .conftest import make_char_data

pytestmark = pytest.mark.slow

# Dropout on, so resuming must also restore the RNG streams; lr_decay_iters fixed so that the killed run's larger
# max_iters does not change the schedule.
ARGS = ["--n_layer", "2", "--n_head", "2", "--n_embd", "64", "--block_size", "32", "--batch_size", "16",
        "--dropout", "0.1", "--dtype", "float32", "--device", "cpu", "--lr", "3e-3", "--warmup_iters", "5",
        "--lr_decay_iters", "40", "--eval_interval", "5", "--eval_iters", "2", "--log_interval", "1",
        "--no-progress"]
N = 40


def _env():
    # Same thread count in every process: float reductions then run in the same order.
    return {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONHASHSEED": "0"}


def test_killed_run_resumes_with_identical_losses(tmp_path, python_cmd):
    data = make_char_data(tmp_path / "d")
    full, killed = tmp_path / "full", tmp_path / "killed"
    base = [*python_cmd, "train", "--data", str(data), *ARGS]
    subprocess.run([*base, "--out", str(full), "--max_iters", str(N)], check=True, env=_env(), timeout=600)

    proc = subprocess.Popen([*base, "--out", str(killed), "--max_iters", "100000"], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 300
        while not (killed / "train_state.pt").exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.time() < deadline, "no checkpoint appeared"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)  # no chance to clean up: whatever is on disk is what resume gets
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    k = load_train_state(killed)["step"]
    logged = max(r["step"] for r in read_metrics(killed / "metrics.jsonl"))
    assert 0 < k < N and logged >= k  # killed mid-run; some steps after the checkpoint may have been logged

    subprocess.run([*base, "--out", str(killed), "--resume", "--max_iters", str(N)], check=True, env=_env(),
                   timeout=600)
    a, b = read_metrics(full / "metrics.jsonl"), read_metrics(killed / "metrics.jsonl")
    assert [r["step"] for r in b] == list(range(1, N + 1))  # truncated back to step k: no duplicates
    for ra, rb in zip(a, b):
        assert ra["step"] == rb["step"]
        assert abs(ra["train_loss"] - rb["train_loss"]) <= 1e-6, (ra, rb)
        assert ra["lr"] == rb["lr"]
        if "val_loss" in ra:
            assert abs(ra["val_loss"] - rb["val_loss"]) <= 1e-6
    from safetensors.torch import load_file

    wa, wb = load_file(str(full / "model.safetensors")), load_file(str(killed / "model.safetensors"))
    assert all(torch.allclose(wa[n], wb[n], atol=1e-6, rtol=0) for n in wa)


def test_resume_errors_are_one_line(tmp_path, python_cmd, char_data):
    from lmlab.cli import main

    run = tmp_path / "run"
    tiny = ["--n_layer", "1", "--n_head", "2", "--n_embd", "32", "--block_size", "16", "--device", "cpu",
            "--max_iters", "2", "--eval_iters", "1", "--no-progress"]
    assert main(["train", "--out", str(tmp_path / "none"), "--resume"]) == 2  # nothing to resume
    assert main(["train", "--data", str(char_data), "--out", str(run), *tiny]) == 0
    other = make_char_data(tmp_path / "other", seed=1, extra="ÆØÅ quick zebra jumps!\n")  # a different vocabulary
    r = subprocess.run([*python_cmd, "train", "--out", str(run), "--resume", "--data", str(other), "--max_iters",
                        "3"], capture_output=True, text=True, env=_env(), timeout=600)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "tokenizer" in r.stderr, r.stderr
