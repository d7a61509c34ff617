"""ROME (Meng et al. 2022, "Locating and Editing Factual Associations in GPT"): a rank-one update of one MLP
output projection so that the subject's key maps to a value that makes the model say the new object.

    k* = mean over '{prefix}. {prompt}' contexts (and the bare prompt) of the key (mlp.post) at the last subject
         token                                                                                        (ROME eq. 3)
    δ  optimised on the MLP output at that token (lmlab.editing.values)                               (ROME eq. 4)
    W ← W + Λ (C⁻¹ k*)ᵀ                                                                              (ROME eq. 2)

The update's direction C⁻¹k* comes from the context-averaged key, so it generalises over contexts, and every key j
with (C⁻¹k*)ᵀ j = 0 maps as before. Its size follows ROME's code (rome/compute_v.py): Λ = (v* − W k − b) /
((C⁻¹k*)ᵀ k) with k the key of the bare prompt and v* = W k + b + δ, so the bare prompt's key maps to v* exactly
(W' k + b = v*). (Dividing by (C⁻¹k*)ᵀk* instead, as eq. 2 reads, hits the bare prompt only by the fraction
(C⁻¹k*)ᵀk / (C⁻¹k*)ᵀk*, which on small models is often far below 1.) In nn.Linear layout (weight (D, 4D),
out = W k + b) Λ is a column (D,) and C⁻¹k* a row (4D,). C = E[k kᵀ] (lmlab.editing.stats); its scale cancels,
so ROME's mom2_update_weight matters only to MEMIT. A small ridge λ·mean(diag C)·I keeps C invertible.

One addition of ours (`protect_prompt`, on by default): the keys at the edit prompts' positions *after* the subject
are added to C (`protected_moments`), so the update also leaves the template's own later tokens mapped as before;
without it, an update can shift those positions enough to undo the edit (see docs/experiments/editing.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from lmlab.editing.prompts import (after_subject, at_subject, build_batch, contextual_prompts, key_activations,
                                   mlp_projection)
from lmlab.editing.relation import relation_subject_keys
from lmlab.editing.requests import EditRequest
from lmlab.editing.values import optimise_delta
from lmlab.tokenization import Tokenizer


@dataclass
class RomeHparams:
    """ROME's settings (defaults: the paper's GPT-2 XL values, except four tuned on small models: the prefix
    count, δ's steps, its weight decay and the KL weight — on the default world model, 20 steps / decay 0.5 gave
    efficacy 80, paraphrase 79 (40 cases); decay 0.1 with 40 / 80 / 160 steps gave S 79.6 / 85.2 / 91.7 on 150
    cases: the extra steps keep shrinking δ under the decay and KL terms once the new object is reached, so the
    update spares the neighbours more. With the prompt protection (protect_prompt) a stronger decay pays: on 200
    edits decay 0.1 / 0.2 / 0.25 / 0.3 gave S 90.8 / 92.7 / 92.6 / 93.6 (neighbourhood 80.5 → 93.4, paraphrase
    94.2 → 88.5). Then the KL weight (decay 0.3): 0 / 0.0625 / 0.25 / 0.5 / 1.0 gave paraphrase 86.0 / 88.5 /
    89.2 / 90.2 / 91.5 and neighbourhood 93.2 / 93.4 / 92.6 / 90.9 / 88.3 — keeping the subject's own predictions
    steers δ towards a change that other templates read too. See docs/experiments/editing.md)."""

    v_lr: float = 0.5              # Adam learning rate of δ
    v_steps: int = 160             # optimisation steps of δ (stops early when the whole loss is < 0.05)
    kl_factor: float = 0.5         # weight of KL(P(·|"{subject} is a") before ‖ after) (paper: 0.0625)
    v_weight_decay: float = 0.3    # weight of ‖δ‖/‖h₀‖²
    clamp_norm_factor: float = 4.0  # ‖δ‖ ≤ this × ‖h₀‖
    n_prefixes: int = 10           # model-generated context prefixes for k* and v*
    prefix_length: int = 10        # tokens per prefix
    ridge: float = 1e-4            # λ, relative to the mean diagonal of C
    protect_prompt: float = 1.0    # weight of the edit prompts' own keys after the subject, added to C (0 = off)
    # Weight of the keys of other subjects of the edited relation, read from the statistics text, added to C
    # (lmlab.editing.relation; 0 = off): 200 edits NS 90.9 → 93.2, PS 90.2 unchanged; cases 200–395 NS
    # 90.7 → 97.4.
    protect_relation: float = 1.0
    relation_keys: int = 512       # how many of those keys (at most)
    seed: int = 0                  # seed of the prefixes (and of the relation keys' sample)


def context_keys(model: nn.Module, tokenizer: Tokenizer, request: EditRequest, layer: int,
                 prefixes: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass over the bare and the prefixed prompts: the keys (mlp.post of `layer`) at the last subject
    token, (1 + len(prefixes), 4D) with row 0 the bare prompt, and the keys at every position after it, (n, 4D)."""
    batch = build_batch(model, tokenizer, contextual_prompts(request.prompt, prefixes), request.subject)
    acts = key_activations(model, batch, layer)
    return at_subject(acts, batch), after_subject(acts, batch)


def subject_keys(model: nn.Module, tokenizer: Tokenizer, request: EditRequest, layer: int,
                 prefixes: list[str]) -> torch.Tensor:
    """Keys (mlp.post of `layer`) at the last subject token, one per context: (1 + len(prefixes), 4D); row 0 is
    the bare prompt."""
    return context_keys(model, tokenizer, request, layer, prefixes)[0]


def subject_key(model: nn.Module, tokenizer: Tokenizer, request: EditRequest, layer: int,
                prefixes: list[str]) -> torch.Tensor:
    """k*: the key (4D,) at the last subject token averaged over the bare prompt and the prefixed contexts."""
    return subject_keys(model, tokenizer, request, layer, prefixes).mean(0)


def protected_moments(C: torch.Tensor, keys: torch.Tensor, weight: float) -> torch.Tensor:
    """C + weight · mean(k kᵀ) over `keys` (n, 4D): the update must then also leave these keys' outputs alone.

    Why: δ is optimised with the hidden state changed at the subject token only, but W + ΔW also acts on every
    later position of the same prompt ('… is a national of'); where those keys overlap C⁻¹k*, the update shifts
    them too and can undo the edit (on the world model: 7 of 200 ROME edits reached P(new) ≈ 0.99 while δ was
    optimised and failed after the update; protecting these keys makes all 7 succeed). float64, (4D, 4D)."""
    C = C.double()
    if weight == 0 or keys.numel() == 0:
        return C
    k = keys.detach().double().to(C.device)
    return C + weight * (k.T @ k) / k.shape[0]


def relation_protected_moments(C: torch.Tensor, model: nn.Module, tokenizer: Tokenizer,
                               requests: list[EditRequest], layer: int, text_tokens: np.ndarray | None,
                               weight: float, per_template: int, seed: int) -> torch.Tensor:
    """C + weight · mean(k kᵀ) over keys of other subjects of the requests' relations, found in `text_tokens`
    (lmlab.editing.relation, the requests' own subjects skipped); C itself when weight is 0 or there is no text.
    (4D, 4D) float64."""
    if not weight or text_tokens is None:
        return C
    others = relation_subject_keys(model, tokenizer, [r.prompt for r in requests], text_tokens, layer,
                                   exclude=[r.subject for r in requests], per_template=per_template, seed=seed)
    return protected_moments(C, others, weight)


def rank_one_update(weight: torch.Tensor, bias: torch.Tensor | None, C: torch.Tensor, key: torch.Tensor,
                    value: torch.Tensor, ridge: float = 1e-4, *, at: torch.Tensor | None = None) -> torch.Tensor:
    """ΔW (D, 4D) = Λ (C⁻¹ key)ᵀ with (W + ΔW) a + b = value for a = `at` (default: key itself), and ΔW j = 0 for
    every j with (C⁻¹ key)ᵀ j = 0.

    weight (D, 4D), bias (D,) or None, C (4D, 4D) second moment of keys, key/at (4D,), value (D,). float64 inside.
    """
    W, k, v = weight.detach().double().cpu(), key.detach().double().cpu(), value.detach().double().cpu()
    a = k if at is None else at.detach().double().cpu()
    C = C.double().cpu()
    lam = ridge * float(C.diagonal().mean()) if ridge else 0.0
    cinv_k = torch.linalg.solve(C + lam * torch.eye(C.shape[0], dtype=C.dtype), k)   # (4D,)
    current = W @ a + (bias.detach().double().cpu() if bias is not None else 0.0)
    residual = (v - current) / (cinv_k @ a)                                           # Λ (D,)
    return torch.outer(residual, cinv_k).to(weight.dtype).to(weight.device)


def apply_rome(model: nn.Module, tokenizer: Tokenizer, request: EditRequest, layer: int, C: torch.Tensor,
               prefixes: list[str], hp: RomeHparams, text_tokens: np.ndarray | None = None) -> dict[str, Any]:
    """Edit `model` in place for one request; returns {"delta": ΔW, "key_norm", "value_delta_norm", "nll", ...}.

    text_tokens: the statistics text (1-D token ids), where `protect_relation` finds the relation's other
    subjects; None skips that protection."""
    proj = mlp_projection(model, layer)
    keys, later = context_keys(model, tokenizer, request, layer, prefixes)
    key, bare = keys.mean(0), keys[0]
    C = protected_moments(C, later, hp.protect_prompt)
    C = relation_protected_moments(C, model, tokenizer, [request], layer, text_tokens, hp.protect_relation,
                                   hp.relation_keys, hp.seed)
    vr = optimise_delta(model, tokenizer, request, f"blocks.{layer}.mlp.out", prefixes, lr=hp.v_lr,
                        steps=hp.v_steps, kl_factor=hp.kl_factor, weight_decay=hp.v_weight_decay,
                        clamp_norm_factor=hp.clamp_norm_factor)
    with torch.no_grad():
        value = proj.weight @ bare + (proj.bias if proj.bias is not None else 0.0) + vr.delta
        delta = rank_one_update(proj.weight, proj.bias, C, key, value, hp.ridge, at=bare)
        proj.weight.add_(delta)
    return {"delta": delta, "key_norm": float(key.norm()), "value_delta_norm": float(vr.delta.norm()),
            "v_nll": vr.nll, "v_kl": vr.kl, "v_steps": vr.steps}
