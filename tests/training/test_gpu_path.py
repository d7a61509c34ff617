"""The GPU path: what `lmlab train` picks by itself on CUDA, and benchmarks/bench_train_gpu.py, whose CPU branch
(a tiny shape) runs here so the script cannot rot. No GPU is needed: the choices are functions of the device."""

import subprocess
import sys
from pathlib import Path

import torch

from lmlab.training import TrainConfig
from lmlab.training.precision import resolve_compile

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_train_gpu.py"


def test_compile_is_on_by_default_on_cuda_only_and_a_setting_wins():
    assert TrainConfig().compile is None
    assert resolve_compile(None, torch.device("cuda")) is True
    assert resolve_compile(None, torch.device("cpu")) is False
    assert resolve_compile(False, torch.device("cuda")) is False and resolve_compile(True, torch.device("cpu"))


def test_gpu_benchmark_runs_its_cpu_smoke_shape():
    r = subprocess.run([sys.executable, str(BENCH), "--steps", "1", "--warmup", "0"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    result = dict(kv.split("=") for kv in r.stdout.strip().splitlines()[-1].split()[1:])
    assert r.stdout.strip().splitlines()[-1].startswith("RESULT ")
    assert result["device"] == "cpu" and result["dtype"] == "float32" and result["compiled"] == "0"
    assert float(result["tokens_per_sec"]) > 0 and 0 < float(result["mfu"])
    assert "smoke test" in r.stdout
