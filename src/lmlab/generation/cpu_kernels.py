"""Faster matrix-vector products for decoding on CPU: every `nn.Linear` runs through oneDNN while a decode is on.

Why. Decoding feeds one token per row through the model, so each Linear is a matrix-*vector* product that reads
its whole weight once per token: the step time is the time to stream the weights. On CPU, PyTorch's `F.linear`
sends these products to MKL's sgemv on the (out, in) weight, which on an AVX-512 EPYC reads at ~13 GB/s; oneDNN's
inner-product on the same fp32 weights, converted once to its own tensor format, reads at ~25 GB/s
(measured on GPT-2-124M's 49 block matrices and its 50257×768 output layer: 21.5 ms instead of 35.9 ms per token
at batch 1, 31 vs 57 ms at batch 8). When the decode's row count is known, each weight is packed in the blocked
layout oneDNN picks for that many rows (`_reorder_linear_weight`), which matters for batches: at batch 8 the same
49 products take ~18 ms instead of ~32 (batch 1: no change). Same weights, same fp32 arithmetic; only the
summation order differs (outputs agree to ~1e-6 relative).

Cost. The conversion copies every Linear weight (peak memory + the model's Linear weights, for the duration of the
decode) and takes ~0.3 ms per MB (0.15 s for GPT-2-124M), which a decode of ≥ 10 tokens earns back; the decoder
only asks for it when it will produce at least `MIN_NEW_TOKENS` tokens per row. Where memory is tighter than time,
set the environment variable LMLAB_DECODE_ONEDNN=0 to turn it off.

Safety. The converted copy is a snapshot: it is used only while the context is open, only under no-grad /
inference mode and in eval mode (any call with autograd on, e.g. a caller training between `stream` pieces,
falls back to `F.linear` on the live weight), and it is dropped on exit. Forward hooks on the Linear modules keep
working: only `forward` is replaced, not `__call__`.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

MIN_NEW_TOKENS = 16  # below this, converting the weights costs more than the faster steps save (see docstring)


def onednn_available(model: nn.Module) -> bool:
    """True when the model's weights are fp32 tensors on CPU and this torch build has oneDNN (mkldnn)."""
    p = next(model.parameters(), None)
    return (p is not None and p.device.type == "cpu" and p.dtype == torch.float32
            and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled)


# oneDNN's linear on dense activations and a oneDNN weight (the op Inductor's CPU backend emits); older or newer
# builds without it fall back to the public mkldnn_linear, which converts the activations in and out each call.
_LINEAR_POINTWISE = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
# Packs a weight in the blocked layout oneDNN prefers for a given number of rows (also what Inductor emits).
_REORDER_WEIGHT = getattr(getattr(torch.ops, "mkldnn", None), "_reorder_linear_weight", None)


def _onednn_weight(weight: torch.Tensor, rows: int | None) -> torch.Tensor:
    """A oneDNN copy of the (out, in) fp32 weight, packed for `rows` rows of input when that is known."""
    if rows is not None and _REORDER_WEIGHT is not None and _LINEAR_POINTWISE is not None:
        return _REORDER_WEIGHT(weight, rows)
    return weight.to_mkldnn()


def _onednn_forward(module: nn.Linear, rows: int | None):
    """A forward for `module` computing x @ Wᵀ + b with a oneDNN copy of its weight, made now (packed for `rows`
    input rows when given; other row counts still work, only a little slower)."""
    weight = _onednn_weight(module.weight.detach(), rows)
    bias = module.bias.detach().clone() if module.bias is not None else None
    bias_onednn = bias.to_mkldnn() if bias is not None and _LINEAR_POINTWISE is None else None
    out_features = module.out_features

    def forward(x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or module.training:
            return F.linear(x, module.weight, module.bias)  # autograd needs the live parameters
        if _LINEAR_POINTWISE is not None:
            return _LINEAR_POINTWISE(x, weight, bias, "none", [], "")
        rows = x.reshape(-1, x.shape[-1]).to_mkldnn()
        y = torch._C._nn.mkldnn_linear(rows, weight, bias_onednn).to_dense()
        return y.view(*x.shape[:-1], out_features)

    return forward


@contextlib.contextmanager
def onednn_linears(model: nn.Module, enabled: bool = True, rows: int | None = None) -> Iterator[bool]:
    """While open, every `nn.Linear` in `model` uses a oneDNN copy of its fp32 weights (see the module docstring).

    rows: the number of input rows most calls will have (a decode's batch size), to pack the weights for it.

    Yields whether the fast path is on (False when disabled — `enabled=False` or LMLAB_DECODE_ONEDNN=0 — or when
    the model is not fp32 on CPU with oneDNN).
    Tied weights (GPT's output layer = token embedding) are converted once per module; the originals are untouched.
    """
    if not (enabled and onednn_available(model)) or os.environ.get("LMLAB_DECODE_ONEDNN", "1") == "0":
        yield False
        return
    patched: list[nn.Linear] = []
    try:
        with torch.no_grad():
            for module in model.modules():
                if type(module) is nn.Linear and "forward" not in module.__dict__:
                    module.forward = _onednn_forward(module, rows)
                    patched.append(module)
        yield True
    finally:
        for module in patched:
            del module.forward  # back to nn.Linear.forward; the oneDNN copies are freed with the closures
