"""MEMIT (Meng et al. 2023, "Mass-Editing Memory in a Transformer"): many edits at once, spread over a range of
layers R = [l₁..L] on the critical path.

    1. for each request i: z*_i = h_L + δ_i, δ_i optimised on the residual stream leaving layer L at the last
       subject token (lmlab.editing.values; MEMIT's defaults: 25 steps, ‖δ‖ ≤ 0.75 ‖h_L‖);
    2. for each layer l in R, in order (earlier updates already applied, so keys and residuals are recomputed):
         K  = keys at layer l (mlp.post at the last subject token; mean of the bare prompt's key and the mean
              key behind the generated prefixes, as MEMIT's compute_ks)                          (4D, n)
         R_ = (z* − h_L(current model)) / (layers left, including l)                          (D, n)
         ΔW = R_ Kᵀ (w·C + K Kᵀ + λI)⁻¹                                                       (D, 4D)
       the least-squares update that maps the new keys to their share of the residual while keeping
       W k ≈ the old output for the keys summarised by C (w = mom2_update_weight: how many "old" keys C stands for).
In nn.Linear layout (weight (D, 4D)) ΔW is added to `blocks.{l}.mlp.c_proj.weight` directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from lmlab.editing.prompts import activation_at, build_batch, mlp_projection
from lmlab.editing.requests import EditRequest
from lmlab.editing.rome import subject_keys
from lmlab.editing.values import optimise_delta
from lmlab.tokenization import Tokenizer


@dataclass
class MemitHparams:
    """MEMIT's settings (defaults: the paper's GPT-J values; mom2_update_weight tuned on the world model)."""

    v_lr: float = 0.5
    v_steps: int = 25
    kl_factor: float = 0.0625
    v_weight_decay: float = 0.5
    clamp_norm_factor: float = 0.75
    # How many "old" keys C stands for against each new key. None: 15000 (MEMIT's GPT-J value) scaled by the key
    # width 4D / 16384 (GPT-J's), because C's share along one direction shrinks with the width.
    mom2_update_weight: float | None = None
    n_prefixes: int = 10
    prefix_length: int = 10
    ridge: float = 1e-4
    seed: int = 0


def context_type_key(model: nn.Module, tokenizer: Tokenizer, request: EditRequest, layer: int,
                     prefixes: list[str]) -> torch.Tensor:
    """The key MEMIT edits (its compute_ks.py): the mean over context *types* — the bare prompt, and the prompt
    behind generated prefixes — so the bare prompt's key weighs one half rather than 1/(1 + n_prefixes). (4D,)"""
    keys = subject_keys(model, tokenizer, request, layer, prefixes)
    return keys[0] if len(keys) == 1 else 0.5 * (keys[0] + keys[1:].mean(0))


def memit_update(C: torch.Tensor, keys: torch.Tensor, residuals: torch.Tensor, mom2_update_weight: float,
                 ridge: float = 1e-4) -> torch.Tensor:
    """ΔW (D, 4D) = R Kᵀ (w·C + K Kᵀ + λI)⁻¹ for keys (n, 4D) and residuals (n, D); float64 inside."""
    C = C.double().cpu()
    K = keys.detach().double().cpu().T          # (4D, n)
    R = residuals.detach().double().cpu().T     # (D, n)
    lam = ridge * float(C.diagonal().mean()) if ridge else 0.0
    A = mom2_update_weight * C + K @ K.T + lam * torch.eye(C.shape[0], dtype=C.dtype)
    adj = torch.linalg.solve(A, K)              # (4D, n) = A⁻¹ K (A symmetric)
    return (R @ adj.T).to(keys.dtype)


def apply_memit(model: nn.Module, tokenizer: Tokenizer, requests: list[EditRequest], layers: list[int],
                C: dict[int, torch.Tensor], prefixes: list[str], hp: MemitHparams,
                progress: bool = False) -> dict[str, Any]:
    """Edit `model` in place for all `requests` at once over `layers`; returns {"deltas": {layer: ΔW}, ...}."""
    from tqdm import tqdm

    z_layer = max(layers)
    z_name = f"blocks.{z_layer}.resid_post"
    targets, nlls = [], []
    for r in tqdm(requests, desc="MEMIT z*", unit="edit", disable=not progress):
        vr = optimise_delta(model, tokenizer, r, z_name, prefixes, lr=hp.v_lr, steps=hp.v_steps,
                            kl_factor=hp.kl_factor, weight_decay=hp.v_weight_decay,
                            clamp_norm_factor=hp.clamp_norm_factor)
        targets.append(vr.target)
        nlls.append(vr.nll)
    z = torch.stack(targets)                                              # (n, D)
    deltas: dict[int, torch.Tensor] = {}
    for i, layer in enumerate(sorted(layers)):
        keys = torch.stack([context_type_key(model, tokenizer, r, layer, prefixes) for r in requests])  # (n, 4D)
        current = torch.cat([activation_at(model, build_batch(model, tokenizer, [r.prompt], r.subject), z_name)
                             for r in requests])                          # (n, D)
        residuals = (z - current) / (len(layers) - i)
        weight = hp.mom2_update_weight if hp.mom2_update_weight is not None else 15000.0 * keys.shape[1] / 16384
        delta = memit_update(C[layer], keys, residuals, weight, hp.ridge)
        proj = mlp_projection(model, layer)
        with torch.no_grad():
            proj.weight.add_(delta.to(proj.weight.device))
        deltas[layer] = delta
    return {"deltas": deltas, "z_nll_mean": float(sum(nlls) / len(nlls))}
