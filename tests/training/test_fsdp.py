"""FSDP2 on CPU (gloo) under torchrun: two sharded ranks follow the loss curve of one process with the doubled
batch, sharded checkpoints resume on another number of ranks (2 → 1, 1 → 2) and survive kill -9 mid-save, and the
other commands read a sharded run dir (consolidated on load)."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lmlab.checkpoint import SHARDED_DIR, latest_sharded_checkpoint, load_run, load_train_state
from lmlab.cli import main
from lmlab.training import read_metrics

pytestmark = pytest.mark.slow

N = 12  # steps of the reference run; the interrupted runs stop at 6 (or when killed) and resume to N
# lr_decay_iters fixed, so runs with another max_iters have the same schedule; global batch 8 sequences always.
ARGS = ["--n_layer", "2", "--n_head", "2", "--n_embd", "32", "--block_size", "16", "--dtype", "float32",
        "--device", "cpu", "--lr", "3e-3", "--warmup_iters", "2", "--lr_decay_iters", str(N), "--eval_interval", "3",
        "--eval_iters", "2", "--log_interval", "1", "--grad_accum", "2", "--strategy", "fsdp", "--no-progress"]
ONE, TWO = ["--batch_size", "8"], ["--batch_size", "4"]  # per rank


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _single(*args):
    subprocess.run([sys.executable, "-m", "lmlab", "train", *args], env=_env(), check=True, timeout=600,
                   stdout=subprocess.DEVNULL)


def _torchrun_cmd(*args):
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "lmlab",
            "train", *args]


def _two_ranks(*args):
    r = subprocess.run(_torchrun_cmd(*args), env=_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]


def _kill_9_with_children(pid):
    """SIGKILL a torchrun launcher and its worker processes together (torchrun starts each worker in a session of
    its own, so killing the launcher's process group alone would leave the ranks running)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for p in [pid, *map(int, children)]:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _assert_same_curve(run, reference, steps):
    got = {r["step"]: r for r in read_metrics(run / "metrics.jsonl")}
    ref = {r["step"]: r for r in read_metrics(reference / "metrics.jsonl")}
    assert sorted(got) == list(range(1, max(steps) + 1))  # resumed logs are truncated back: no duplicates
    for s in steps:
        assert got[s]["train_loss"] == pytest.approx(ref[s]["train_loss"], rel=1e-4), s
        assert got[s]["lr"] == pytest.approx(ref[s]["lr"])
        if "val_loss" in ref[s]:
            assert got[s]["val_loss"] == pytest.approx(ref[s]["val_loss"], rel=1e-4), s


@pytest.fixture(scope="module")
def reference(char_data, tmp_path_factory):
    """One process, N steps, batch 8, uninterrupted: the loss curve every other run must follow."""
    out = tmp_path_factory.mktemp("fsdp") / "reference"
    _single("--data", str(char_data), "--out", str(out), "--max_iters", str(N), *ARGS, *ONE)
    return out


def test_two_sharded_ranks_match_one_process_and_resume_on_one(reference, char_data, tmp_path):
    two = tmp_path / "two"
    # Activation checkpointing on here: recomputing the blocks in backward must not change the numbers either.
    _two_ranks("--data", str(char_data), "--out", str(two), "--max_iters", "6", "--activation_checkpointing",
               *ARGS, *TWO)
    _assert_same_curve(two, reference, range(1, 7))
    ckpt = latest_sharded_checkpoint(two)
    assert ckpt.name == "step-00000006"
    assert sorted(p.name for p in ckpt.iterdir()) == [".metadata", "__0_0.distcp", "__1_0.distcp", "train_state.pt"]
    assert [p.name for p in (two / SHARDED_DIR).iterdir()] == [ckpt.name]  # older checkpoints removed
    assert load_train_state(two)["world_size"] == 2

    # a sharded run dir is an ordinary run dir for every reader: consolidated into one model on load
    run = load_run(two)
    assert run.training_config["strategy"] == "fsdp" and not (two / "model.safetensors").exists()
    assert main(["eval", "ppl", str(two), "--data", str(char_data), "--json"]) == 0
    assert main(["export", "hf", str(two), "--out", str(tmp_path / "hf")]) == 0
    assert (tmp_path / "hf" / "model.safetensors").is_file()
    best = load_run(two, weights_name="best.safetensors")  # gathered from the shards at the best evaluation
    assert set(best.model.state_dict()) == set(run.model.state_dict())

    _single("--out", str(two), "--resume", "--max_iters", str(N), *ONE)  # 2 → 1: re-sharded on load
    _assert_same_curve(two, reference, range(7, N + 1))


def test_one_process_checkpoint_resumes_on_two_ranks(reference, char_data, tmp_path):
    one = tmp_path / "one"
    _single("--data", str(char_data), "--out", str(one), "--max_iters", "6", *ARGS, *ONE)
    _two_ranks("--out", str(one), "--resume", "--max_iters", str(N), *TWO)  # 1 → 2
    _assert_same_curve(one, reference, range(1, N + 1))
    assert load_train_state(one)["world_size"] == 2


def test_kill_9_during_a_sharded_save_keeps_the_previous_checkpoint(reference, char_data, tmp_path):
    run = tmp_path / "killed"
    # A checkpoint every step, so saves are frequent enough to be caught half-written.
    proc = subprocess.Popen(_torchrun_cmd("--data", str(char_data), "--out", str(run), "--max_iters", "100000",
                                          "--save_interval", "1", *ARGS, *TWO),
                            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    caught = False
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            root = run / SHARDED_DIR
            names = [p.name for p in root.iterdir()] if root.is_dir() else []
            if any(n.startswith(".tmp-") for n in names) and any(n.startswith("step-") for n in names):
                _kill_9_with_children(proc.pid)  # mid-save, with an older checkpoint complete beside it
                caught = True
                break
            time.sleep(0.001)
    finally:
        if proc.poll() is None:
            _kill_9_with_children(proc.pid)
        proc.wait(timeout=60)
    assert caught, "no sharded save was seen in progress"

    k = load_train_state(run)["step"]
    assert 1 <= k < N
    load_run(run)  # the newest complete checkpoint consolidates
    _single("--out", str(run), "--resume", "--max_iters", str(N), *ONE)
    _assert_same_curve(run, reference, range(k + 1, N + 1))
    assert not any(p.name.startswith(".tmp-") for p in (run / SHARDED_DIR).iterdir())  # the next save cleaned up


def test_strategy_errors_are_one_line(char_data, tmp_path, capsys):
    tiny = ["--n_layer", "1", "--n_head", "2", "--n_embd", "16", "--block_size", "8", "--device", "cpu",
            "--max_iters", "1", "--eval_iters", "1", "--no-progress"]
    for bad, says in ((["--strategy", "zero"], "strategy must be one of ddp, fsdp"),
                      (["--cpu_offload"], "cpu_offload works with strategy fsdp only"),
                      (["--strategy", "fsdp", "--cpu_offload"], "cpu_offload needs a CUDA GPU")):
        assert main(["train", "--data", str(char_data), "--out", str(tmp_path / "bad"), *tiny, *bad]) == 2
        err = capsys.readouterr().err
        assert says in err and err.count("\n") == 1, err
    ddp_run = tmp_path / "ddp"
    assert main(["train", "--data", str(char_data), "--out", str(ddp_run), *tiny]) == 0
    assert main(["train", "--out", str(ddp_run), "--resume", "--max_iters", "2", "--strategy", "fsdp"]) == 2
    assert "resume it with --strategy ddp" in capsys.readouterr().err
    shutil.rmtree(ddp_run)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_by_c10d_rendezvous_on_loopback(reference, char_data, tmp_path):
    """Two torchrun launchers (`--nnodes 2`, one process each) meet at a c10d rendezvous on 127.0.0.1, as two
    machines would; the job is the same sharded training, so it follows the same loss curve."""
    out = tmp_path / "two-nodes"
    port = _free_port()
    launch = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
              "--rdzv_backend", "c10d", "--rdzv_endpoint", f"127.0.0.1:{port}", "--rdzv_id", "lmlab-test",
              "-m", "lmlab", "train", "--data", str(char_data), "--out", str(out), "--max_iters", "3",
              *ARGS, *TWO]
    nodes = [subprocess.Popen(launch, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    try:
        errors = [node.communicate(timeout=600)[1] for node in nodes]
    finally:
        for node in nodes:
            if node.poll() is None:
                _kill_9_with_children(node.pid)
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(e[-2000:] for e in errors)
    _assert_same_curve(out, reference, range(1, 4))
    assert load_train_state(out)["world_size"] == 2
