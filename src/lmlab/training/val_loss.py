"""The validation loss: mean cross-entropy on fixed windows (or documents), the same at every evaluation."""

from __future__ import annotations

import numpy as np
import torch

from lmlab.data import SequentialDocumentSampler, SequentialWindowSampler
from lmlab.training.distributed import DistContext, all_reduce_mean, is_sharded
from lmlab.training.precision import Precision
from lmlab.training.trainable import batch_format


@torch.no_grad()
def evaluate(model: torch.nn.Module, tokens: np.ndarray, *, block_size: int, batch_size: int, eval_iters: int,
             precision: Precision, ctx: DistContext, eos_id: int = 3, pad_id: int = 0) -> float | None:
    """Mean cross-entropy (nats/token) over the first eval_iters × batch_size × world_size non-overlapping windows
    of `tokens` — the same windows at every evaluation, split across ranks, averaged per token over all ranks.
    For a model with `batch_format = "documents"`: over the first eval_iters × batch_size × world_size documents
    (eos_id ends a document, pad_id fills rows), weighted by the padded batch size.

    `model` is the plain model (not DDP-wrapped: evaluation needs no gradient sync, and ranks may get partial or
    empty last batches; an FSDP-sharded model runs its forward on an empty batch too, in lockstep). Leaves the
    model in training mode. None when the model computes no loss (e.g. word vectors fitted by counting).
    """
    device = next(model.parameters()).device
    if batch_format(model) == "documents":
        sampler = SequentialDocumentSampler(tokens, eos_id, pad_id, block_size, batch_size, rank=ctx.rank,
                                            world_size=ctx.world_size, max_batches=eval_iters)
    else:
        sampler = SequentialWindowSampler(tokens, block_size, batch_size, rank=ctx.rank, world_size=ctx.world_size,
                                          max_batches=eval_iters)
    model.eval()
    totals = torch.zeros(2, dtype=torch.float64, device=device)  # (sum of token losses, number of tokens)
    try:
        for x, y in sampler:
            if y.numel() == 0:
                if is_sharded(model):  # every rank takes part in each forward's parameter all-gathers
                    model(to_device(x, device))
                continue
            with precision.autocast():
                _, loss = model(to_device(x, device), to_device(y, device))
            if loss is None:
                return None
            totals += torch.stack([loss.double() * y.numel(), torch.tensor(float(y.numel()), device=device,
                                                                            dtype=torch.float64)])
    finally:
        model.train()
    totals = all_reduce_mean(totals, ctx)  # mean of sums ∝ sum of sums; the ratio is the per-token mean
    return (totals[0] / totals[1]).item()


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """`t` on `device`; on CUDA through pinned memory, so the copy overlaps the GPU work already queued."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)
