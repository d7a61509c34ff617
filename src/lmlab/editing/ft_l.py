"""FT-L (the baseline of the ROME paper, after Zhu et al. 2020): fine-tune one MLP layer's output projection on
the edit prompt → target_new, with an L∞ constraint: after every step each weight stays within ±norm_constraint
of its value before the edit. Nothing protects other facts except that constraint, which is the point of the
comparison (it shows the damage to neighbours that ROME/MEMIT avoid).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmlab.editing.prompts import build_batch, mlp_projection
from lmlab.editing.requests import EditRequest
from lmlab.tokenization import Tokenizer


@dataclass
class FtHparams:
    """FT-L settings: Adam on the weight and bias of `blocks.{l}.mlp.c_proj`."""

    lr: float = 5e-3
    steps: int = 25
    norm_constraint: float = 5e-3   # L∞ bound on the change of each weight (0: none)
    full: int = 0                   # 1: fine-tune every parameter of the model (full fine-tuning), not one layer


def apply_ft(model: nn.Module, tokenizer: Tokenizer, requests: list[EditRequest], layer: int,
             hp: FtHparams) -> dict[str, Any]:
    """Fine-tune `blocks.{layer}.mlp.c_proj` (every parameter with hp.full) in place on all requests together;
    returns {"deltas", "nll"}."""
    params = ft_parameters(model, layer, hp)
    originals = {n: p.detach().clone() for n, p in params.items()}
    batches = [build_batch(model, tokenizer, [r.prompt], r.subject, r.target_new) for r in requests]
    grads = {n: p.requires_grad for n, p in model.named_parameters()}
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params.values():
        p.requires_grad_(True)
    was_training = model.training
    model.eval()
    opt = torch.optim.Adam(list(params.values()), lr=hp.lr)
    loss_v = 0.0
    try:
        for _ in range(hp.steps):
            opt.zero_grad()
            total = 0.0
            for b in batches:
                logits, _ = model(b.ids)
                loss = F.cross_entropy(logits.float().flatten(0, 1), b.targets.flatten(), ignore_index=-100)
                (loss / len(batches)).backward()
                total += float(loss.detach())
            loss_v = total / len(batches)
            opt.step()
            with torch.no_grad():
                for n, p in params.items() if hp.norm_constraint > 0 else ():
                    p.copy_(torch.clamp(p, originals[n] - hp.norm_constraint, originals[n] + hp.norm_constraint))
    finally:
        for n, p in model.named_parameters():
            p.requires_grad_(grads[n])
        model.train(was_training)
    return {"deltas": {n: (p.detach() - originals[n]) for n, p in params.items()}, "nll": loss_v}


def ft_parameters(model: nn.Module, layer: int, hp: FtHparams) -> dict[str, nn.Parameter]:
    """{name: parameter} that FT changes: `blocks.{layer}.mlp.c_proj`'s weight and bias, or all with hp.full."""
    if hp.full:
        return dict(model.named_parameters())
    return {f"blocks.{layer}.mlp.c_proj.{n}": p for n, p in mlp_projection(model, layer).named_parameters()}
