"""What the training loop needs from a model, declared as Protocols instead of probed with hasattr.

Every model the gradient loop trains is a `TrainableLM`: an nn.Module whose forward takes a batch of inputs and
targets and returns (logits, mean loss). A model may also offer optional capabilities, each a small
runtime-checkable Protocol; `traits(model)` is the one place that looks for them:

    FitsFromCounts   fit_from_tokens(tokens, [tokenizer=...,] progress=...): learns from corpus counts in one pass
                     over the train split (n-gram tables, co-occurrence + SVD, word2vec's unigram table); a model
                     left with no trainable parameter is finished without gradient steps (lmlab.training.counted)
    CountsFlops      flops_per_token(): training FLOPs per token, for MFU
    ReadsStreams     wants_contiguous_streams: truthy when each batch row must continue where the same row of the
                     previous batch ended (truncated BPTT with a carried state)
    ReadsDocuments   batch_format: "windows" (random token windows, the default) or "documents" (one whole document
                     per row, padded: seq2seq pairs, labelled texts)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Protocol, runtime_checkable

import numpy as np
import torch

from lmlab.errors import LmlabError


class TrainableLM(Protocol):
    """A model the gradient loop trains: `model(x, y)` with x, y (B, T) int64 token ids (or a model's own batch
    layout for "documents") returns (logits, loss), loss the mean cross-entropy in nats (a 0-d tensor), or None
    when the model computes none. The nn.Module methods listed are the others the loop calls."""

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        ...

    def parameters(self, recurse: bool = True) -> Iterator[torch.nn.Parameter]:
        ...

    def named_parameters(self, *args: Any, **kwargs: Any) -> Iterator[tuple[str, torch.nn.Parameter]]:
        ...

    def train(self, mode: bool = True) -> Any:
        ...

    def eval(self) -> Any:
        ...

    def to(self, *args: Any, **kwargs: Any) -> Any:
        ...


@runtime_checkable
class FitsFromCounts(Protocol):
    """A model that learns (part of) itself from corpus counts; `config` may record data-dependent sizes after."""

    config: Any

    def fit_from_tokens(self, tokens: np.ndarray, *args: Any, **kwargs: Any) -> dict | None:
        ...


@runtime_checkable
class CountsFlops(Protocol):
    def flops_per_token(self, seq_len: int | None = None) -> float:
        ...


@runtime_checkable
class ReadsStreams(Protocol):
    wants_contiguous_streams: bool


@runtime_checkable
class ReadsDocuments(Protocol):
    batch_format: str


BATCH_FORMATS = ("windows", "documents")


@dataclass(frozen=True)
class Traits:
    """The optional capabilities of one model, as the training loop uses them."""

    fits_from_counts: bool
    flops_per_token: float | None  # None: MFU is not reported
    contiguous_streams: bool
    batch_format: str  # one of BATCH_FORMATS

    @property
    def documents(self) -> bool:
        return self.batch_format == "documents"


def traits(model: torch.nn.Module) -> Traits:
    """What `model` offers beyond `TrainableLM` (see the module docstring). LmlabError for an unknown batch_format."""
    return Traits(fits_from_counts=isinstance(model, FitsFromCounts),
                  flops_per_token=float(model.flops_per_token()) if isinstance(model, CountsFlops) else None,
                  contiguous_streams=isinstance(model, ReadsStreams) and bool(model.wants_contiguous_streams),
                  batch_format=batch_format(model))


def batch_format(model: torch.nn.Module) -> str:
    """"windows" (the default) or "documents", as `model` declares; LmlabError for anything else."""
    fmt = model.batch_format if isinstance(model, ReadsDocuments) else "windows"
    if fmt not in BATCH_FORMATS:
        raise LmlabError(f"model batch_format {fmt!r} is not one of 'windows', 'documents'")
    return fmt
