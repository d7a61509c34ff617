"""`lmlab plan`'s peak-memory estimate against the peak measured while training on this CPU (float32).

Measurement (lmlab.training.memory_probe.measure_peak_memory): peak resident set size (VmHWM, reset through
/proc/self/clear_refs) minus the resident size before the model is built, over 3 AdamW steps after a warm-up
step, with glibc told to mmap every allocation above 64 KiB and to trim freed heap at once (so resident memory
follows what torch holds). One thread. The same shapes as tests/training/test_plan.py, plus a larger one.

    python benchmarks/bench_plan_memory.py

Last line: RESULT shapes=N worst_ratio=... mean_abs_error_pct=... (ratio = estimate / measured)
"""

from __future__ import annotations

import torch

from lmlab.models.gpt import GPTConfig
from lmlab.training.memory_probe import measure_peak_memory
from lmlab.training.plan import plan

SHAPES = [
    (dict(n_layer=4, n_head=4, n_embd=256, block_size=64, vocab_size=512), 4, False),
    (dict(n_layer=2, n_head=2, n_embd=64, block_size=256, vocab_size=4096), 4, False),
    (dict(n_layer=6, n_head=4, n_embd=128, block_size=128, vocab_size=256), 4, False),
    (dict(n_layer=6, n_head=4, n_embd=128, block_size=128, vocab_size=256), 4, True),
    (dict(n_layer=4, n_head=4, n_embd=256, block_size=256, vocab_size=2048), 8, False),
]


def main() -> None:
    torch.set_num_threads(1)
    ratios = []
    for shape, batch, ckpt in SHAPES:
        cfg = GPTConfig(**shape)
        measured = measure_peak_memory(cfg, batch, activation_checkpointing=ckpt)
        estimate = plan(cfg, dtype="float32", micro_batch=batch, activation_checkpointing=ckpt,
                        strategies=["ddp"]).strategies[0].peak
        ratios.append(estimate / measured)
        print(f"L{cfg.n_layer} D{cfg.n_embd} T{cfg.block_size} V{cfg.vocab_size} B{batch}"
              f"{' +AC' if ckpt else ''}: measured {measured / 2**20:.1f} MiB, plan {estimate / 2**20:.1f} MiB, "
              f"ratio {ratios[-1]:.3f}")
    worst = max(ratios, key=lambda r: abs(r - 1))
    mean_err = 100 * sum(abs(r - 1) for r in ratios) / len(ratios)
    print(f"RESULT shapes={len(ratios)} worst_ratio={worst:.3f} mean_abs_error_pct={mean_err:.1f}")


if __name__ == "__main__":
    main()
