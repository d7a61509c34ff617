"""Measure the peak memory of GPT training steps on the CPU, to check `lmlab.training.plan` against.

How: Linux keeps a process's peak resident set size (VmHWM in /proc/self/status), and writing "5" to
/proc/self/clear_refs resets it to the current size. glibc is told to serve every allocation above 64 KiB with
its own mmap (mallopt M_MMAP_THRESHOLD, which also stops glibc from raising that threshold on its own) and to hand
freed heap back at once (M_TRIM_THRESHOLD), so the resident size follows the bytes torch holds instead of what the
allocator keeps cached. Peak minus the resident size just before the model was built is what the model, its
gradients, AdamW's state and one step's activations took at their high point. One step of the same model at
micro-batch 1 runs first and is not counted: the first use of a kernel maps its code and per-thread buffers.
"""

from __future__ import annotations

import ctypes
import gc
import sys
from pathlib import Path

import torch

from lmlab.errors import LmlabError

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LmlabError(f"/proc/self/status has no {field}")


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def probe_available() -> bool:
    """True where the peak can be measured: Linux with glibc and a writable /proc/self/clear_refs."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        ctypes.CDLL("libc.so.6").mallopt
        _reset_peak()
        _status_kib("VmHWM")
    except (OSError, AttributeError, LmlabError):
        return False
    return True


def measure_peak_memory(model_config, micro_batch: int, *, steps: int = 3, activation_checkpointing: bool = False,
                        seed: int = 0) -> int:
    """Peak bytes above the starting point of `steps` float32 AdamW training steps of a GPT(model_config) with
    random token windows of micro_batch × block_size on the CPU, in this process (one thread is enough).
    LmlabError where `probe_available()` is False."""
    from lmlab.models.gpt import GPT
    from lmlab.training.distributed import apply_activation_checkpointing

    if not probe_available():
        raise LmlabError("measuring peak memory needs Linux with glibc and /proc/self/clear_refs")
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(_M_MMAP_THRESHOLD, 64 * 1024)
    libc.mallopt(_M_TRIM_THRESHOLD, 0)
    gen = torch.Generator().manual_seed(seed)

    def run(batch: int, n_steps: int) -> int:
        shape = (batch, model_config.block_size)
        x = torch.randint(0, model_config.vocab_size, shape, generator=gen)
        y = torch.randint(0, model_config.vocab_size, shape, generator=gen)
        gc.collect()
        libc.malloc_trim(0)
        start = _status_kib("VmRSS")
        _reset_peak()
        torch.manual_seed(seed)
        model = GPT(model_config)
        if activation_checkpointing:
            apply_activation_checkpointing(model)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=False)  # no multi-tensor temporaries
        for _ in range(n_steps):
            _, loss = model(x, y)  # the logits stay alive through backward, as in the training loop
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        peak = _status_kib("VmHWM")
        del model, optimizer, loss, x, y
        gc.collect()
        libc.malloc_trim(0)
        return (peak - start) * 1024

    run(1, 1)  # warm-up, not counted
    return run(micro_batch, steps)
