"""ROME (Meng et al. 2022, "Locating and Editing Factual Associations in GPT"): a rank-one update of one MLP
output projection so that the subject's key k* maps to a value v* that makes the model say the new object.

    k* = mean over '{prefix}. {prompt}' contexts (and the bare prompt) of the key (mlp.post) at the last subject
         token                                                                                        (ROME eq. 3)
    v* = W k* + b + δ, δ optimised on the MLP output at that token (lmlab.editing.values)            (ROME eq. 4)
    W ← W + Λ (C⁻¹ k*)ᵀ,  Λ = (v* − W k* − b) / ((C⁻¹ k*)ᵀ k*)                              (ROME eq. 2)

In nn.Linear layout (weight (D, 4D), out = W k + b) Λ is a column (D,) and C⁻¹k* a row (4D,), so after the update
W' k* + b = v* exactly, and every key j with (C⁻¹k*)ᵀ j = 0 maps as before. C = E[k kᵀ] (lmlab.editing.stats);
its scale cancels in Λ (C⁻¹k* / (C⁻¹k*)ᵀk*), so ROME's mom2_update_weight matters only to MEMIT.
A small ridge λ·mean(diag C)·I keeps C invertible when some key dimensions never fire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from lmlab.editing.prompts import build_batch, contextual_prompts, keys_at, mlp_projection
from lmlab.editing.requests import EditRequest
from lmlab.editing.values import optimise_delta
from lmlab.tokenization import Tokenizer


@dataclass
class RomeHparams:
    """ROME's settings (defaults: the paper's GPT-2 XL values, except the prefix count, scaled to small models)."""

    v_lr: float = 0.5              # Adam learning rate of δ
    v_steps: int = 20              # optimisation steps of δ
    kl_factor: float = 0.0625      # weight of KL(P(·|"{subject} is a") before ‖ after)
    v_weight_decay: float = 0.5    # weight of ‖δ‖/‖h₀‖²
    clamp_norm_factor: float = 4.0  # ‖δ‖ ≤ this × ‖h₀‖
    n_prefixes: int = 10           # model-generated context prefixes for k* and v*
    prefix_length: int = 10        # tokens per prefix
    ridge: float = 1e-4            # λ, relative to the mean diagonal of C
    seed: int = 0                  # seed of the prefixes


def subject_key(model: nn.Module, tokenizer: Tokenizer, request: EditRequest, layer: int,
                prefixes: list[str]) -> torch.Tensor:
    """k*: the key (mlp.post of `layer`, (4D,)) at the last subject token, averaged over the contexts."""
    batch = build_batch(model, tokenizer, contextual_prompts(request.prompt, prefixes), request.subject)
    return keys_at(model, batch, layer).mean(0)


def rank_one_update(weight: torch.Tensor, bias: torch.Tensor | None, C: torch.Tensor, key: torch.Tensor,
                    value: torch.Tensor, ridge: float = 1e-4) -> torch.Tensor:
    """ΔW (D, 4D) with (W + ΔW) key + b = value and ΔW j = 0 for every j with (C⁻¹ key)ᵀ j = 0.

    weight (D, 4D), bias (D,) or None, C (4D, 4D) second moment of keys, key (4D,), value (D,). Computed in float64.
    """
    W, k, v = weight.detach().double().cpu(), key.detach().double().cpu(), value.detach().double().cpu()
    C = C.double().cpu()
    lam = ridge * float(C.diagonal().mean()) if ridge else 0.0
    cinv_k = torch.linalg.solve(C + lam * torch.eye(C.shape[0], dtype=C.dtype), k)   # (4D,)
    current = W @ k + (bias.detach().double().cpu() if bias is not None else 0.0)
    residual = (v - current) / (cinv_k @ k)                                           # Λ (D,)
    return torch.outer(residual, cinv_k).to(weight.dtype).to(weight.device)


def apply_rome(model: nn.Module, tokenizer: Tokenizer, request: EditRequest, layer: int, C: torch.Tensor,
               prefixes: list[str], hp: RomeHparams) -> dict[str, Any]:
    """Edit `model` in place for one request; returns {"delta": ΔW, "key_norm", "value_delta_norm", "nll", ...}."""
    proj = mlp_projection(model, layer)
    key = subject_key(model, tokenizer, request, layer, prefixes)
    vr = optimise_delta(model, tokenizer, request, f"blocks.{layer}.mlp.out", prefixes, lr=hp.v_lr,
                        steps=hp.v_steps, kl_factor=hp.kl_factor, weight_decay=hp.v_weight_decay,
                        clamp_norm_factor=hp.clamp_norm_factor)
    with torch.no_grad():
        value = proj.weight @ key + (proj.bias if proj.bias is not None else 0.0) + vr.delta
        delta = rank_one_update(proj.weight, proj.bias, C, key, value, hp.ridge)
        proj.weight.add_(delta)
    return {"delta": delta, "key_norm": float(key.norm()), "value_delta_norm": float(vr.delta.norm()),
            "v_nll": vr.nll, "v_kl": vr.kl, "v_steps": vr.steps}
