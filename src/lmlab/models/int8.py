"""Symmetric int8 rounding along the last dimension: x ≈ q · scale, q in −127..127, one float32 scale per vector.

Shared by the int8 KV cache (`gpt.KVCache`, one scale per cached key/value vector) and the int8 copies of the
Linear weights (`lmlab.generation.weight_storage`, one scale per output row), so both round alike.
"""

from __future__ import annotations

import torch


def int8_scales(x: torch.Tensor) -> torch.Tensor:
    """Scales (..., 1) float32 of x (..., n): max |x| / 127 over the last dimension, so each vector uses the int8
    range ±127 (an all-zero vector gets the smallest positive float, not 0, so dividing by it is safe)."""
    return x.abs().amax(dim=-1, keepdim=True).float().clamp(min=torch.finfo(torch.float32).tiny) / 127


def to_int8(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x (..., n) / scale (..., 1) rounded to nearest (ties to even, as torch.quantize_per_channel) → int8 (..., n)."""
    return torch.round(x.float() / scale).clamp_(-127, 127).to(torch.int8)
