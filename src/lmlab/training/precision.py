"""Mixed precision: which dtype the forward/backward computes in, the autocast context, and the grad scaler.

Weights and optimizer state always stay float32 ("master weights"); autocast runs matmuls in the low-precision
dtype. bfloat16 has float32's exponent range, so it needs no loss scaling; float16 does (small gradients underflow
to zero), hence a GradScaler for float16 only.

"auto" picks, per device:
- CUDA: bfloat16 where the GPU supports it (Ampere and newer), else float16 + GradScaler.
- CPU: bfloat16 when the CPU has bf16 matrix instructions (AMX), where it is clearly faster. On CPUs with
  AVX512-BF16 bfloat16 for the model types in `BF16_FASTER_ON_AVX512` (the GPT, which trains faster there at the
  same loss), float32 for the others until they are shown to gain too; docs/training.md has the figures. Without
  bf16 instructions bf16 autocast only adds casts, so float32. (The main job pins float32 itself: its model is the
  one the documented experiments describe, and fp32 makes it the same on every CPU of one kind; see
  lmlab.recipes.)
- MPS: float32 (autocast support on Apple GPUs varies with the OS version).

On CUDA the rest of the fast path is chosen the same way, without settings: fused AdamW (optim.make_optimizer asks
torch whether the device has the fused kernel), flash attention (the GPT calls scaled_dot_product_attention,
which picks the flash kernel for bf16/fp16 on GPUs), and torch.compile (`resolve_compile`: compile=None means yes
on CUDA, where it fuses the elementwise work between matmuls; no on CPUs, where the tiny models of this project
spend more time compiling than they save).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import lru_cache

import torch

from lmlab.errors import LmlabError

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@lru_cache(maxsize=None)
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU feature flags the kernel lists (x86 Linux: the `flags` line of /proc/cpuinfo); empty if unreadable."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


# Model types that train faster under bf16 autocast than in float32 on an AVX512-BF16 CPU at the same loss (the
# benchmark is in docs/training.md and benchmarks/RESULTS.md); the others keep float32 there until shown to gain.
BF16_FASTER_ON_AVX512 = frozenset({"gpt"})


def cpu_prefers_bf16(model_type: str = "gpt", flags: frozenset[str] | None = None) -> bool:
    """Whether `auto` trains `model_type` in bfloat16 on this CPU: AMX bf16 tiles (Intel Sapphire Rapids+) for
    every model, AVX512-BF16 for those in BF16_FASTER_ON_AVX512. flags: the CPU's feature flags
    (default: this machine's)."""
    flags = cpu_flags() if flags is None else flags
    return "amx_bf16" in flags or ("avx512_bf16" in flags and model_type in BF16_FASTER_ON_AVX512)


def bf16_supported(device: torch.device) -> bool:
    """Can this device run bfloat16 autocast at all (not: is it fast)?"""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type in ("cpu", "mps")


@dataclass(frozen=True)
class Precision:
    """The resolved precision of a run: compute dtype, and whether a GradScaler is needed."""

    name: str  # 'float32' | 'bfloat16' | 'float16'
    dtype: torch.dtype  # compute dtype inside autocast (float32: autocast off)
    device_type: str  # 'cpu' | 'cuda' | 'mps'

    @property
    def needs_scaler(self) -> bool:
        return self.dtype == torch.float16

    def autocast(self):
        """Context manager for forward passes (and the loss): autocast to `dtype`, or nothing for float32."""
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def make_scaler(self) -> "torch.amp.GradScaler | None":
        """A GradScaler for float16 training, else None (bf16 and fp32 need no loss scaling)."""
        if not self.needs_scaler:
            return None
        return torch.amp.GradScaler(self.device_type)


def resolve_compile(setting: bool | None, device: torch.device) -> bool:
    """Whether to torch.compile the model: the setting when given, else True on CUDA only."""
    return device.type == "cuda" if setting is None else bool(setting)


def resolve_precision(name: str, device: torch.device, *, model_type: str = "gpt",
                      flags: frozenset[str] | None = None) -> Precision:
    """'auto' | 'float32' | 'bfloat16' | 'float16' on `device` → Precision (see module docstring for 'auto').
    model_type: the registry name of the model being trained (auto's CPU choice depends on it); flags: the CPU's
    feature flags (default: this machine's)."""
    if name == "auto":
        if device.type == "cuda":
            name = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        elif device.type == "cpu":
            name = "bfloat16" if cpu_prefers_bf16(model_type, flags) else "float32"
        else:
            name = "float32"
    if name not in _DTYPES:
        raise LmlabError(f"unknown dtype {name!r}: use float32, bfloat16, float16 or auto")
    if name == "bfloat16" and not bf16_supported(device):
        raise LmlabError(f"this {device.type} device does not support bfloat16; use --dtype float16 or float32")
    return Precision(name=name, dtype=_DTYPES[name], device_type=device.type)
