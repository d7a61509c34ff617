"""Training throughput of the GPT-2 124M shape on a GPU: tokens/s and MFU against the GPU's bf16 peak, with
nanoGPT's published figure beside it.

What runs is lmlab's training step with the choices `lmlab train` makes on CUDA by itself: bf16 autocast
(precision.resolve_precision "auto"), fused AdamW (optim.make_optimizer), flash attention (the GPT's
scaled_dot_product_attention), torch.compile (precision.resolve_compile); forward, backward, grad-norm clip at 1.0,
AdamW step, on random token windows (the data pipeline is not what is measured). Shape: preset "small" (12 layers,
12 heads, 768 dims, vocab 50304), block 1024.

Reference: nanoGPT's README (efficiency notes, Dec 2022) reports that torch.compile cut "iteration time from
~250ms / iter to 135ms / iter", beside its bench.py, whose default is this shape with micro-batch 12 (bias off,
bf16, A100). The README does not spell out the configuration it timed; read as bench.py's default, 135 ms/iter is
12 × 1024 / 0.135 ≈ 91k tokens/s on an A100, ≈ 0.25 of its 312 TFLOP/s bf16 peak by lmlab's FLOP count. That is
the figure printed beside ours (same micro-batch by default). Goal here: MFU ≥ 0.40 on an H100 in bf16.

Without a GPU the same script runs a tiny shape on the CPU (float32) for a few steps: a smoke test that keeps
the script working (tests/training/test_gpu_path.py runs it); its numbers are not a measurement of anything.

    python benchmarks/bench_train_gpu.py                       # GPU: 124M, block 1024, micro-batch 12
    python benchmarks/bench_train_gpu.py --batch-size 24 --steps 50 --no-compile
    python benchmarks/bench_train_gpu.py --steps 2             # CPU: the smoke test

Last line: RESULT device=... dtype=... compiled=... batch=... block=... ms_per_iter=... tokens_per_sec=... mfu=...
nanogpt_ref_tokens_per_sec_a100=91022 (mfu against the datasheet bf16 peak on known GPUs, against a measured
matmul peak elsewhere)
"""

from __future__ import annotations

import argparse
import time

import torch

from lmlab.models.gpt import GPT
from lmlab.models.presets import get_preset
from lmlab.training.config import TrainConfig
from lmlab.training.mfu import measure_peak_flops, mfu, nominal_peak_flops
from lmlab.training.optim import make_optimizer
from lmlab.training.precision import resolve_compile, resolve_precision

NANOGPT_REF_MS_PER_ITER = 135.0  # README, with torch.compile; read as bench.py's default: 12 × 1024 tokens, A100
NANOGPT_REF_TOKENS_PER_SEC = 12 * 1024 / (NANOGPT_REF_MS_PER_ITER / 1000)
SMOKE_SHAPE = dict(n_layer=2, n_head=2, n_embd=64, block_size=64, vocab_size=512)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch-size", type=int, default=None, help="sequences per step (GPU default 12, CPU 4)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (GPU default 30, CPU 3)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps first (compile happens here)")
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile on the GPU")
    args = ap.parse_args()

    gpu = torch.cuda.is_available()
    device = torch.device("cuda" if gpu else "cpu")
    config = get_preset("small") if gpu else get_preset("small", **SMOKE_SHAPE)
    batch = args.batch_size or (12 if gpu else 4)
    steps = args.steps or (30 if gpu else 3)
    warmup = args.warmup if args.warmup is not None else (5 if gpu else 1)
    precision = resolve_precision("auto" if gpu else "float32", device)
    compiled = resolve_compile(False if args.no_compile else None, device)

    torch.manual_seed(0)
    if gpu:
        torch.backends.cuda.matmul.allow_tf32 = True  # float32 leftovers (optimizer, norms) on tensor cores
    raw = GPT(config).to(device)
    model = torch.compile(raw) if compiled else raw
    optimizer = make_optimizer(raw, TrainConfig(lr=6e-4, weight_decay=0.1), device.type)
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randint(0, config.vocab_size, (batch, config.block_size), device=device, generator=gen)
    y = torch.randint(0, config.vocab_size, (batch, config.block_size), device=device, generator=gen)

    def step() -> float:
        with precision.autocast():
            _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(raw.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    sync = (lambda: torch.cuda.synchronize(device)) if gpu else (lambda: None)
    for _ in range(warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    sync()
    seconds = (time.perf_counter() - t0) / steps
    assert torch.isfinite(loss), "the loss is not finite"

    tokens_per_sec = batch * config.block_size / seconds
    peak = nominal_peak_flops(device, precision.dtype) or measure_peak_flops(device, precision.dtype)
    achieved = mfu(raw.flops_per_token(), tokens_per_sec, peak)
    name = torch.cuda.get_device_name(device) if gpu else "cpu (smoke test: tiny shape, not a measurement)"
    print(f"{name}: {sum(p.numel() for p in raw.parameters()) / 1e6:.1f}M parameters, batch {batch} × "
          f"{config.block_size}, {precision.name}{', compiled' if compiled else ''}: {1000 * seconds:.1f} ms/iter, "
          f"{tokens_per_sec:,.0f} tokens/s, MFU {achieved:.3f} of {peak / 1e12:.1f} TFLOP/s")
    print(f"nanoGPT reference (README, A100, compile): {NANOGPT_REF_MS_PER_ITER:.0f} ms/iter, read as 12 × 1024 "
          f"tokens ≈ {NANOGPT_REF_TOKENS_PER_SEC:,.0f} tokens/s")
    print(f"RESULT device={device.type} dtype={precision.name} compiled={int(compiled)} batch={batch} "
          f"block={config.block_size} ms_per_iter={1000 * seconds:.2f} tokens_per_sec={tokens_per_sec:.0f} "
          f"mfu={achieved:.4f} nanogpt_ref_tokens_per_sec_a100={NANOGPT_REF_TOKENS_PER_SEC:.0f}")


if __name__ == "__main__":
    main()
