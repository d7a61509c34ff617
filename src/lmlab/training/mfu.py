"""Model FLOPs utilisation (MFU): how much of the machine's matmul throughput the training step turns into model math.

    MFU = flops_per_token × tokens_per_second ÷ peak_flops_per_second

`flops_per_token` is the model's training cost per token (forward + backward ≈ 3 × forward; the model's
`flops_per_token()`, PaLM appendix B accounting: 6·N plus attention). The peak is per device (per rank): under DDP
each rank divides its own share of tokens/s by its own peak.

Two peaks:
- measured: a short dense matmul probe in the training dtype, run at start-up on this machine (~0.3 s). This is the
  honest reference on CPUs, whose nominal peak depends on clocks, cores in use and other processes.
- nominal: the vendor's dense peak for known GPUs (A100/H100/H200), the reference in papers.
"""

from __future__ import annotations

import time

import torch

# Dense (no sparsity) peak FLOP/s from vendor datasheets, by compute dtype. float32 means TF32 tensor cores off.
_NOMINAL_PEAKS = {
    # name fragment: {dtype: flop/s}
    "H200": {torch.bfloat16: 989e12, torch.float16: 989e12, torch.float32: 67e12},
    "H100 PCIe": {torch.bfloat16: 756e12, torch.float16: 756e12, torch.float32: 51e12},
    "H100": {torch.bfloat16: 989e12, torch.float16: 989e12, torch.float32: 67e12},
    "A100": {torch.bfloat16: 312e12, torch.float16: 312e12, torch.float32: 19.5e12},
}


def nominal_peak_flops(device: torch.device, dtype: torch.dtype) -> float | None:
    """Vendor dense peak FLOP/s of a known GPU in `dtype`, or None (CPUs, unknown GPUs)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for fragment, peaks in _NOMINAL_PEAKS.items():  # ordered: "H100 PCIe" is tried before "H100"
        if fragment in name:
            return peaks.get(dtype)
    return None


def measure_peak_flops(device: torch.device, dtype: torch.dtype, seconds: float = 0.3) -> float:
    """Best achieved FLOP/s of an n×n @ n×n matmul in `dtype` on `device`, timed for about `seconds`.

    n is 1024 on CPU (big enough to reach the BLAS plateau, small enough for a few repeats in 0.3 s) and 4096 on
    GPUs. We report the best repeat: the question is what the hardware can do, not the average under noise.
    """
    n = 4096 if device.type == "cuda" else 1024
    # A private generator: the probe must not move the global RNG that dropout (and exact resume) depend on.
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, generator=gen).to(dtype)
    b = torch.randn(n, n, device=device, generator=gen).to(dtype)
    flops = 2.0 * n * n * n
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    torch.matmul(a, b)  # warm-up: kernel selection, thread-pool start
    sync()
    best = 0.0
    deadline = time.perf_counter() + seconds
    while True:
        t0 = time.perf_counter()
        torch.matmul(a, b)
        sync()
        dt = time.perf_counter() - t0
        best = max(best, flops / max(dt, 1e-9))
        if time.perf_counter() >= deadline:
            return best


def mfu(flops_per_token: float, tokens_per_sec: float, peak_flops: float | None) -> float | None:
    """Fraction (0..1) of `peak_flops` achieved; None when there is no peak to compare with."""
    if not peak_flops:
        return None
    return flops_per_token * tokens_per_sec / peak_flops
