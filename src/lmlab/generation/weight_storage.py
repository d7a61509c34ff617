"""How a model's Linear weights are held for decoding and scoring on CPU: fp32 (as trained), bf16 or int8.

    from lmlab.generation import generate, set_weight_storage
    set_weight_storage(run.model, "int8")   # converts every nn.Linear once; from now on generate, stream, scoring,
    generate(run.model, run.tokenizer, "The capital of", temperature=0)  # perplexity and BatchedDecoder use it

Why. A decode step feeds one token per row through the model, so every weight matrix is read once per step and on
a CPU the step time is the time to stream the weights from memory (docs/generation.md, "Weight storage"). Fewer
bytes per weight make the step faster; the arithmetic is PyTorch's own quantized CPU kernels (fbgemm), not ours.

- int8: each output row of a weight W (out, in) gets a scale s = max|W_row| / 127 and is rounded to int8, so
  W ≈ q · s (per-channel, symmetric). With fbgemm (x86) the product is `quantized::linear_dynamic`, which also
  quantizes the activations per call to 7 bits over the whole input tensor and accumulates in int32 — 7, not 8
  bits, because AVX2 without VNNI sums u8·s8 pairs into a saturating int16 (`reduce_range`, PyTorch's own setting
  for this backend). So a row's numbers depend slightly on the other rows of its batch.
- bf16: each weight rounded to bfloat16 (8 significant bits). With fbgemm the rounded weights are held in its
  packed fp16 layout, which represents every bf16 value of magnitude 2^-14…65504 exactly (smaller ones to 6e-8),
  and multiplied with fp32 activations in fp32 (`quantized::linear_dynamic_fp16`); CPUs without bf16 arithmetic
  have no faster bf16 product in PyTorch.
- fp32: the weights as trained (long decodes use the oneDNN copies of lmlab.generation.cpu_kernels).
Without fbgemm (non-x86 builds) int8 and bf16 give the same weight rounding, dequantized for every product in fp32:
the same numbers (activations unquantized), no speed-up.

The copies are made once, by `set_weight_storage`, and cached per Linear exactly like the oneDNN copies
(`cpu_kernels.cached_copy`): an in-place change of a weight (an edit, a training step, load_state_dict) makes the
next forward convert that Linear again. The fp32 weights stay in the model — editing, inspection, autograd and the
token embedding use them — so a process holds the fp32 weights plus the copies; what shrinks is what each decode
step reads. Only `nn.Linear` layers are converted (GPT's output layer, tied to the token embedding, included); with
autograd on or in train mode a Linear computes with its live fp32 weights.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
import weakref
from typing import Callable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmlab.errors import LmlabError
from lmlab.generation.cpu_kernels import cached_copy, drop_copies, inference_forward, patched_linears
from lmlab.models import int8

STORAGES = ("fp32", "bf16", "int8")
BYTES_PER_WEIGHT = {"fp32": 4, "bf16": 2, "int8": 1}
_FP16_MAX = 65504.0  # largest finite fp16: a bf16 weight above it cannot be held in fbgemm's fp16 layout

# The storage chosen for each model, weakly keyed so it goes with the model.
_STORAGE: "weakref.WeakKeyDictionary[nn.Module, str]" = weakref.WeakKeyDictionary()


@functools.cache
def fbgemm_available() -> bool:
    """True when this torch build runs its quantized Linear ops on fbgemm (x86 CPUs with AVX2). torch 2.13 marks
    quantized tensors deprecated: a build without these ops gets the dequantizing path."""
    ops = torch.ops.quantized
    return (all(hasattr(ops, name) for name in ("linear_prepack", "linear_dynamic", "linear_prepack_fp16",
                                                   "linear_dynamic_fp16"))
            and "fbgemm" in torch.backends.quantized.supported_engines
            and torch.backends.quantized.engine in ("x86", "fbgemm")
            and torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"))


def check_weight_storage(storage: str) -> None:
    """LmlabError unless `storage` is one of STORAGES (for callers that check before loading a model)."""
    if storage not in STORAGES:
        raise LmlabError(f"unknown weight storage {storage!r}; choose one of {', '.join(STORAGES)}")


def weight_storage(model: nn.Module) -> str:
    """The storage set for `model` with `set_weight_storage` ("fp32" when none was)."""
    return _STORAGE.get(model, "fp32")


def set_weight_storage(model: nn.Module, storage: str) -> None:
    """Decode and score `model` with its Linear weights held as `storage` ("fp32" | "bf16" | "int8"; see the module
    docstring), converting them now. "fp32" goes back to the trained weights and frees the copies.
    The model must be fp32 on CPU; its own parameters are not changed."""
    check_weight_storage(storage)
    if storage == "fp32":
        _STORAGE.pop(model, None)
        drop_copies(model)
        return
    _check_convertible(model, storage)
    _STORAGE[model] = storage
    for module in _linears(model):
        _stored_product(module, storage)


def linear_weight_bytes(model: nn.Module, storage: str) -> int:
    """Bytes of the values of the model's Linear weights (and int8 scales) as `storage` — what one decode step must
    read, apart from the KV cache and a few embedding rows; fbgemm's packed layout pads rows, so it holds somewhat
    more (docs/generation.md). A weight shared by several Linears counts once."""
    seen: set[int] = set()
    total = 0
    for module in _linears(model):
        if id(module.weight) in seen:
            continue
        seen.add(id(module.weight))
        out_features, in_features = module.weight.shape
        total += out_features * in_features * BYTES_PER_WEIGHT[storage] + (out_features * 4 if storage == "int8" else 0)
    return total


@contextlib.contextmanager
def stored_linears(model: nn.Module) -> Iterator[str]:
    """While open, the model's Linear layers compute with the copies of `set_weight_storage` (nothing changes for
    fp32). Yields the storage. Opened by every decode and scoring function of lmlab.generation."""
    storage = weight_storage(model)
    if storage == "fp32":
        yield storage
        return
    _check_convertible(model, storage)
    with patched_linears(model, lambda module: inference_forward(module, _stored_product(module, storage))):
        yield storage


# ============================================================================================== conversions ===
def int8_scales(weight: torch.Tensor) -> torch.Tensor:
    """The per-row scales (out,) of a weight (out, in): max |row| / 127, so every row uses the int8 range ±127."""
    return int8.int8_scales(weight).squeeze(1)


def int8_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row symmetric int8 of a weight (out, in): (q int8 (out, in), scale float32 (out,)), weight ≈ q · scale
    (q rounded to nearest, ties to even, as torch.quantize_per_channel)."""
    scale = int8.int8_scales(weight)
    return int8.to_int8(weight, scale), scale.squeeze(1)


def _stored_product(module: nn.Linear, storage: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """x ↦ x @ Wᵀ + b computed from the module's weights held as `storage` (cached; see cpu_kernels.cached_copy)."""
    use_fbgemm = fbgemm_available()
    return cached_copy(module, (storage, use_fbgemm), lambda m: _make_product(m, storage, use_fbgemm))


def _make_product(module: nn.Linear, storage: str, use_fbgemm: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """Convert the module's weights to `storage` and return the function computing the product with them."""
    weight = module.weight.detach()
    bias = module.bias.detach().clone() if module.bias is not None else None
    if storage == "int8" and use_fbgemm:
        scale = int8_scales(weight)
        with warnings.catch_warnings():  # torch 2.13 warns that quantized tensors are deprecated (see docs)
            warnings.simplefilter("ignore")
            qweight = torch.quantize_per_channel(weight, scale.double(), torch.zeros_like(scale, dtype=torch.long),
                                                 0, torch.qint8)
        packed = torch.ops.quantized.linear_prepack(qweight, bias)
        return lambda x: torch.ops.quantized.linear_dynamic(x, packed, True)
    if storage == "int8":
        q, scale = int8_rows(weight)
        return lambda x: F.linear(x, q.to(x.dtype) * scale[:, None].to(x.dtype), bias)
    rounded = weight.to(torch.bfloat16)
    if use_fbgemm and float(rounded.abs().max()) <= _FP16_MAX:
        packed = torch.ops.quantized.linear_prepack_fp16(rounded.float(), bias)
        return lambda x: torch.ops.quantized.linear_dynamic_fp16(x, packed)
    return lambda x: F.linear(x, rounded.to(x.dtype), bias)


def _linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if type(m) is nn.Linear]


def _check_convertible(model: nn.Module, storage: str) -> None:
    p = next(model.parameters(), None)
    if p is None or p.device.type != "cpu" or p.dtype != torch.float32:
        where = "no parameters" if p is None else f"{p.dtype} weights on {p.device}"
        raise LmlabError(f"weights={storage} converts a model's fp32 weights on CPU; this model has {where} "
                         "(use weights fp32, or load the model on the CPU in float32)")
