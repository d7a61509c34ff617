"""Faster matrix-vector products for decoding on CPU: every `nn.Linear` runs through oneDNN while a decode is on.

Why. Decoding feeds one token per row through the model, so each Linear is a matrix-*vector* product that reads
its whole weight once per token: the step time is the time to stream the weights. On CPU, PyTorch's `F.linear`
sends these products to MKL's sgemv on the (out, in) weight; oneDNN's inner-product on the same fp32 weights,
converted once to its own tensor format, streams them about twice as fast. For a batched decode each weight is
packed in the blocked layout oneDNN picks for that many rows (`_reorder_linear_weight`), which is faster again at
batch 8. At batch 1 the plain oneDNN layout is as fast and packing costs several times more than the plain
conversion, so one row is never packed, and a batch only when at least `PACK_MIN_NEW_TOKENS` tokens follow to
repay it. Same weights, same fp32 arithmetic; only the summation order differs (outputs agree to ~1e-6 relative).
The measured speeds and costs are in docs/generation.md (*Speed*).

Cost. The conversion copies every Linear weight (memory + the model's Linear weights), which a decode of a few
tens of tokens earns back; the decoder only asks for it when it will produce at least `MIN_NEW_TOKENS` tokens per
row. The copies are kept for the next decode as long as the model lives and its weights do not change (a server
converts once, not per request); `release_copies()` drops them.
Where memory is tighter than time, set the environment variable LMLAB_DECODE_ONEDNN=0 to turn the path off.

Safety. The converted copy is a snapshot: it is used only while the context is open, only under no-grad /
inference mode and in eval mode (any call with autograd on, e.g. a caller training between `stream` pieces,
falls back to `F.linear` on the live weight), and a decode after any in-place change to the weights converts them
again (the copies are tagged with the parameters' version counters). Forward hooks on the Linear modules keep
working: only `forward` is replaced, not `__call__`.
"""

from __future__ import annotations

import contextlib
import os
import weakref
from typing import Callable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

MIN_NEW_TOKENS = 16  # below this, converting the weights costs more than the faster steps save (see docstring)
# Packing for a batch costs more than the plain conversion and saves a little on every step: it pays only from this
# many steps on (the break-even is in docs/generation.md).
PACK_MIN_NEW_TOKENS = 32


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


def _onednn_weight(weight: torch.Tensor, packed_rows: int | None) -> torch.Tensor:
    """A oneDNN copy of the (out, in) fp32 weight, packed for `packed_rows` rows of input when given."""
    if packed_rows is not None and _REORDER_WEIGHT is not None and _LINEAR_POINTWISE is not None:
        return _REORDER_WEIGHT(weight, packed_rows)
    return weight.to_mkldnn()


# The weight copies (oneDNN fp32 here, int8/bf16 in lmlab.generation.weight_storage) outlive a decode, so the next
# one (a server's next request) skips the conversion. Keyed weakly by module, so they go with the model; each is
# tagged with its parameters' storage and in-place version counter, so any change to the weights (an optimizer step,
# an edit, load_state_dict) makes the next decode convert afresh. One copy per module: asking for another kind
# (another storage, another packing) replaces it.
_COPIES: "weakref.WeakKeyDictionary[nn.Linear, tuple]" = weakref.WeakKeyDictionary()


def _version_key(t: torch.Tensor | None):
    """(storage address, in-place version) of a parameter; None when it has no version counter (made under
    inference_mode), which makes its copy uncacheable. The copy also keeps a weak reference to the weight (see
    cached_copy), so a new parameter that reuses a dead one's address never matches."""
    if t is None:
        return ()
    try:
        return t.data_ptr(), t._version
    except RuntimeError:  # "Inference tensors do not track version counter"
        return None


def cached_copy(module: nn.Linear, kind: tuple, make: Callable[[nn.Linear], object]) -> object:
    """`make(module)` — a converted copy of the module's parameters of the given `kind` (any hashable tag, e.g.
    ("onednn", rows) or ("int8",)) — reused from an earlier call while the parameters have not changed since."""
    w_key, b_key = _version_key(module.weight), _version_key(module.bias)
    key = None if w_key is None or b_key is None else (w_key, b_key, kind)
    hit = _COPIES.get(module)
    if key is not None and hit is not None and hit[0] == key and hit[2]() is module.weight:
        return hit[1]
    with torch.no_grad():
        copy = make(module)
    if key is not None:
        _COPIES[module] = (key, copy, weakref.ref(module.weight))
    else:
        _COPIES.pop(module, None)
    return copy


def _onednn_copy(module: nn.Linear, rows: int | None) -> tuple:
    """(weight, bias, bias_onednn): oneDNN copies of the module's parameters for `rows` rows (see _onednn_weight),
    reused from an earlier decode when the parameters have not changed since."""
    packed = rows if rows is not None and rows > 1 else None

    def make(m: nn.Linear) -> tuple:
        weight = _onednn_weight(m.weight.detach(), packed)
        bias = m.bias.detach().clone() if m.bias is not None else None
        return weight, bias, bias.to_mkldnn() if bias is not None and _LINEAR_POINTWISE is None else None

    return cached_copy(module, ("onednn", packed), make)


def drop_copies(model: nn.Module) -> None:
    """Drop the cached copies of `model`'s Linear weights (other models' copies stay)."""
    for module in model.modules():
        _COPIES.pop(module, None)


def release_copies() -> None:
    """Drop every cached weight copy (oneDNN, int8, bf16) now (they are otherwise freed with their model)."""
    _COPIES.clear()


def inference_forward(module: nn.Linear, fast: Callable[[torch.Tensor], torch.Tensor]):
    """A forward for `module` that computes `fast(x)` (from a converted copy of its weights) in inference — no
    autograd, eval mode — and F.linear on the live parameters otherwise (autograd needs them; a caller training
    between `stream` pieces must not get a stale snapshot)."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or module.training:
            return F.linear(x, module.weight, module.bias)
        return fast(x)

    return forward


def _onednn_forward(module: nn.Linear, rows: int | None):
    """A forward for `module` computing x @ Wᵀ + b with a oneDNN copy of its weight (packed for `rows` input rows
    when given; other row counts still work, only a little slower)."""
    weight, bias, bias_onednn = _onednn_copy(module, rows)
    out_features = module.out_features

    def fast(x: torch.Tensor) -> torch.Tensor:
        if _LINEAR_POINTWISE is not None:
            return _LINEAR_POINTWISE(x, weight, bias, "none", [], "")
        rows = x.reshape(-1, x.shape[-1]).to_mkldnn()
        y = torch._C._nn.mkldnn_linear(rows, weight, bias_onednn).to_dense()
        return y.view(*x.shape[:-1], out_features)

    return inference_forward(module, fast)


def decode_rows(batch: int, new_tokens: int) -> int | None:
    """The `rows` to pack for in a decode of `batch` rows × `new_tokens` steps: the batch when packing repays its
    cost (see PACK_MIN_NEW_TOKENS), else None."""
    return batch if batch > 1 and new_tokens >= PACK_MIN_NEW_TOKENS else None


@contextlib.contextmanager
def onednn_linears(model: nn.Module, enabled: bool = True, rows: int | None = None) -> Iterator[bool]:
    """While open, every `nn.Linear` in `model` uses a oneDNN copy of its fp32 weights (see the module docstring).

    rows: the number of input rows most calls will have (a decode's batch size), to pack the weights for it
    (see `decode_rows`); None or 1: the plain oneDNN layout.

    Yields whether the fast path is on (False when disabled — `enabled=False` or LMLAB_DECODE_ONEDNN=0 — or when
    the model is not fp32 on CPU with oneDNN).
    Tied weights (GPT's output layer = token embedding) are converted once per module; the originals are untouched.
    The copies are reused by later calls while the weights are unchanged (see the module docstring).
    """
    if not (enabled and onednn_available(model)) or os.environ.get("LMLAB_DECODE_ONEDNN", "1") == "0":
        yield False
        return
    with patched_linears(model, lambda module: _onednn_forward(module, rows)):
        yield True


@contextlib.contextmanager
def patched_linears(model: nn.Module, make_forward: Callable[[nn.Linear], Callable]) -> Iterator[None]:
    """While open, every `nn.Linear` of `model` not already patched runs `make_forward(module)` as its forward
    (hooks still fire: only `forward` is replaced, not `__call__`); the plain forward is back on exit."""
    patched: list[nn.Linear] = []
    try:
        with torch.no_grad():
            for module in model.modules():
                if type(module) is nn.Linear and "forward" not in module.__dict__:
                    module.forward = make_forward(module)
                    patched.append(module)
        yield
    finally:
        for module in patched:
            del module.forward  # back to nn.Linear.forward; the copies stay in the cache (see cached_copy)
