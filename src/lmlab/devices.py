"""Device names a user types (--device auto|cpu|cuda|cuda:N|mps) → torch.device, checked, with clear errors.

Its own module on the lowest floor because every verb that computes takes --device: loading a run
(`lmlab.checkpoint.load_run`) and training (`lmlab.training.distributed`) resolve names the same way.
"""

from __future__ import annotations

import torch

from lmlab.errors import LmlabError


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """'auto' | 'cpu' | 'cuda' | 'cuda:N' | 'mps' → torch.device; 'auto' prefers CUDA, then MPS, then CPU.

    Under torchrun, 'auto'/'cuda' mean this process's own GPU, cuda:LOCAL_RANK.
    """
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            name = "mps"
        else:
            name = "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise LmlabError(f"device {name!r} asked for, but this machine has no usable CUDA GPU; use --device cpu")
        index = int(name.split(":", 1)[1]) if ":" in name else local_rank
        if index >= torch.cuda.device_count():
            raise LmlabError(f"device cuda:{index} does not exist (this machine has {torch.cuda.device_count()} GPUs)")
        return torch.device("cuda", index)
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise LmlabError("device 'mps' asked for, but MPS is not available here; use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise LmlabError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
