"""DDP on CPU: two real processes under torchrun follow the same loss curve as one process with the same global
batch (torchtitan's way of showing parallelism does not change the math)."""

import os
import subprocess
import sys

import pytest

from lmlab.checkpoint import load_run
from lmlab.training import read_metrics

pytestmark = pytest.mark.slow

ARGS = ["--n_layer", "1", "--n_head", "2", "--n_embd", "32", "--block_size", "16", "--dtype", "float32",
        "--device", "cpu", "--lr", "3e-3", "--warmup_iters", "2", "--max_iters", "12", "--eval_interval", "6",
        "--eval_iters", "3", "--log_interval", "1", "--grad_accum", "2", "--no-progress"]


def test_two_cpu_ranks_match_one_process_with_double_batch(char_data, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "lmlab", "train", "--data", str(char_data), "--out", str(ddp), "--batch_size", "4",
                        *ARGS], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    subprocess.run([sys.executable, "-m", "lmlab", "train", "--data", str(char_data), "--out", str(single),
                    "--batch_size", "8", *ARGS], env=env, check=True, timeout=600)

    a, b = read_metrics(ddp / "metrics.jsonl"), read_metrics(single / "metrics.jsonl")
    assert [x["step"] for x in a] == [x["step"] for x in b] == list(range(1, 13))  # rank 0 alone wrote the log
    for x, y in zip(a, b):
        assert x["train_loss"] == pytest.approx(y["train_loss"], rel=1e-4)
        if "val_loss" in y:
            assert x["val_loss"] == pytest.approx(y["val_loss"], rel=1e-4)
    # the DDP run dir is an ordinary run dir (no DDP 'module.' prefixes) that records its world size
    run = load_run(ddp)
    assert run.training_config["world_size"] == 2 and run.training_config["batch_size"] == 4
