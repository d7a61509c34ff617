"""MEMIT (Meng et al. 2023, "Mass-Editing Memory in a Transformer"): many edits at once, spread over a range of
layers R = [l₁..L] on the critical path.

    1. for each request i: z*_i = h_L + δ_i, δ_i optimised on the residual stream leaving layer L at the last
       subject token (lmlab.editing.values; MEMIT's defaults: 25 steps, ‖δ‖ ≤ 0.75 ‖h_L‖);
    2. for each layer l in R, in order (earlier updates already applied, so keys and residuals are recomputed):
         K  = keys at layer l (mlp.post at the last subject token; mean of the bare prompt's key and the mean
              key behind the generated prefixes, as MEMIT's compute_ks)                          (4D, n)
         R_ = (z* − h_L(current model)) / (layers left, including l)                          (D, n)
         ΔW = R_ Kᵀ (w·C + K Kᵀ + λI)⁻¹ = R_ U                                                 (D, 4D)
       the least-squares update that maps the new keys to their share of the residual while keeping
       W k ≈ the old output for the keys summarised by C (w = mom2_update_weight: how many "old" keys C stands for).
       Ours: C first gains the edit prompts' keys after the subject (protect_prompt, as ROME's) and the keys of
       other subjects of the same relations found in the statistics text (protect_relation,
       lmlab.editing.relation).
    3. (ours; refine_steps=0 protect_prompt=0 protect_relation=0 gives the paper's MEMIT) refine the values
       jointly: keep each layer's directions U and optimise the values R_ of all layers together by Adam on the
       edited model itself,
         L(R) = mean over requests and contexts of −log P(target_new | prompt) + kl_factor · KL("{subject} is a")
                + refine_spread · Σ_l E_k ‖ΔW_l k‖²   (k over C's keys: how far the update moves typical
                outputs),
       because step 2 fits each key to its own residual as if the other edits were not there: on the world model
       the other 90 edits of a batch add an error of ~0.5 ‖δ‖ at each edit prompt and half the edits do not land
       (docs/experiments/editing.md).
In nn.Linear layout (weight (D, 4D)) ΔW is added to `blocks.{l}.mlp.c_proj.weight` directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from lmlab.editing.prompts import (activation_at, build_batch, concat_batches, contextual_prompts, mlp_projection)
from lmlab.editing.requests import EditRequest
from lmlab.editing.rome import context_keys, protected_moments, relation_protected_moments
from lmlab.editing.values import KL_PROMPT, frozen_weights, optimise_delta
from lmlab.tokenization import Tokenizer

REFINE_CHUNK_ROWS = 64   # rows per forward pass in the refinement (bounds the logits' memory for large vocabularies)


@dataclass
class MemitHparams:
    """MEMIT's settings (defaults: the paper's GPT-J values; mom2_update_weight, protect_prompt and the refinement
    tuned on the world model)."""

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
    protect_prompt: float = 1.0    # as ROME's: the edit prompts' keys after the subject join C (0 = off)
    # Keys of other subjects of the edited relations, found in the statistics text, join C with this weight
    # (lmlab.editing.relation; 0 = off), relation_keys of them per relation template.
    protect_relation: float = 1.0
    relation_keys: int = 512
    refine_steps: int = 30         # Adam steps of the joint value refinement (step 3 above; 0 = the paper's MEMIT)
    refine_lr: float = 0.05
    refine_prefixes: int = 3       # contexts per request in the refinement: the bare prompt + this many prefixes
    refine_spread: float = 0.5     # weight of Σ_l E_k ‖ΔW_l k‖² (how far typical outputs move) in its loss


@dataclass
class LayerUpdate:
    """One layer's MEMIT update in factored form: ΔW = valuesᵀ · directions.

    values (n, D): what each request's key is mapped to (R_ᵀ);
    directions (n, 4D): U = ((w·C + K Kᵀ + λI)⁻¹ K)ᵀ;
    spread (n, n): U C Uᵀ, so that E_k ‖ΔW k‖² over C's keys = Σ (spread · values) ⊙ values."""

    layer: int
    values: torch.Tensor
    directions: torch.Tensor
    spread: torch.Tensor

    def delta(self, values: torch.Tensor | None = None) -> torch.Tensor:
        """ΔW (D, 4D) for these (or the given) values."""
        return (self.values if values is None else values).T @ self.directions


def context_type_key(keys: torch.Tensor) -> torch.Tensor:
    """The key MEMIT edits (its compute_ks.py) from a request's keys (1 + n_prefixes, 4D), row 0 the bare prompt:
    the mean over context *types* — the bare prompt, and the prompt behind generated prefixes — so the bare
    prompt's key weighs one half rather than 1/(1 + n_prefixes). (4D,)"""
    return keys[0] if len(keys) == 1 else 0.5 * (keys[0] + keys[1:].mean(0))


def memit_directions(C: torch.Tensor, keys: torch.Tensor, mom2_update_weight: float,
                     ridge: float = 1e-4) -> torch.Tensor:
    """U (n, 4D) = ((w·C + K Kᵀ + λI)⁻¹ K)ᵀ for keys (n, 4D), so ΔW = R U maps the keys to the residuals
    R (D, n) in MEMIT's least-squares sense; float64 inside, keys' dtype out."""
    C = C.double().cpu()
    K = keys.detach().double().cpu().T          # (4D, n)
    lam = ridge * float(C.diagonal().mean()) if ridge else 0.0
    A = mom2_update_weight * C + K @ K.T + lam * torch.eye(C.shape[0], dtype=C.dtype)
    return torch.linalg.solve(A, K).T.to(keys.dtype)   # A symmetric: (A⁻¹K)ᵀ


def memit_update(C: torch.Tensor, keys: torch.Tensor, residuals: torch.Tensor, mom2_update_weight: float,
                 ridge: float = 1e-4) -> torch.Tensor:
    """ΔW (D, 4D) = R Kᵀ (w·C + K Kᵀ + λI)⁻¹ for keys (n, 4D) and residuals (n, D); float64 inside."""
    U = memit_directions(C, keys, mom2_update_weight, ridge).double()
    return (residuals.detach().double().cpu().T @ U).to(keys.dtype)


def apply_memit(model: nn.Module, tokenizer: Tokenizer, requests: list[EditRequest], layers: list[int],
                C: dict[int, torch.Tensor], prefixes: list[str], hp: MemitHparams,
                text_tokens: np.ndarray | None = None, progress: bool = False) -> dict[str, Any]:
    """Edit `model` in place for all `requests` at once over `layers`; returns {"deltas": {layer: ΔW}, ...}.

    text_tokens: the statistics text (1-D token ids), where `protect_relation` finds the relations' other
    subjects; None skips that protection."""
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
    updates: list[LayerUpdate] = []
    for i, layer in enumerate(sorted(layers)):
        per_request = [context_keys(model, tokenizer, r, layer, prefixes) for r in requests]
        keys = torch.stack([context_type_key(k) for k, _ in per_request])                  # (n, 4D)
        Cl = protected_moments(C[layer], torch.cat([later for _, later in per_request]), hp.protect_prompt)
        Cl = relation_protected_moments(Cl, model, tokenizer, requests, layer, text_tokens, hp.protect_relation,
                                        hp.relation_keys, hp.seed)
        current = torch.cat([activation_at(model, build_batch(model, tokenizer, [r.prompt], r.subject), z_name)
                             for r in requests])                          # (n, D)
        residuals = (z - current) / (len(layers) - i)
        weight = hp.mom2_update_weight if hp.mom2_update_weight is not None else 15000.0 * keys.shape[1] / 16384
        U = memit_directions(Cl, keys, weight, hp.ridge)
        spread = (U.double().cpu() @ Cl.double().cpu() @ U.double().cpu().T).to(U.dtype)
        update = LayerUpdate(layer, residuals.detach().clone(), U.to(residuals.device), spread.to(residuals.device))
        proj = mlp_projection(model, layer)
        with torch.no_grad():
            proj.weight.add_(update.delta().to(proj.weight.dtype))
        updates.append(update)
    out: dict[str, Any] = {"z_nll_mean": float(sum(nlls) / len(nlls))}
    if hp.refine_steps > 0:
        out.update(refine_values(model, tokenizer, requests, updates, prefixes[:hp.refine_prefixes], hp,
                                 progress=progress))
    out["deltas"] = {u.layer: u.delta() for u in updates}
    return out


def refine_values(model: nn.Module, tokenizer: Tokenizer, requests: list[EditRequest], updates: list[LayerUpdate],
                  prefixes: list[str], hp: MemitHparams, progress: bool = False) -> dict[str, float]:
    """Step 3 of the module docstring: Adam on every layer's values (n, D) at once, the directions fixed, the loss
    measured on `model` with all the updates applied. `model` already holds the updates of step 2; on return it
    holds the refined ones and each `updates[i].values` is the refined value. Returns the last losses."""
    from tqdm import tqdm

    projs = [mlp_projection(model, u.layer) for u in updates]
    with torch.no_grad():
        for proj, u in zip(projs, updates):        # back to the unedited weights; the hooks below add ΔW
            proj.weight.sub_(u.delta().to(proj.weight.dtype))
    eos = tokenizer.eos_id
    rewrite = concat_batches([build_batch(model, tokenizer, contextual_prompts(r.prompt, prefixes), r.subject,
                                          r.target_new) for r in requests], eos)
    kl = concat_batches([build_batch(model, tokenizer, [KL_PROMPT], r.subject) for r in requests], eos)
    kl_rows = torch.arange(len(requests), device=kl.ids.device)
    with torch.no_grad():
        kl_ref = F.log_softmax(model(kl.ids)[0][kl_rows, kl.subject_pos].float(), -1)
    values = [u.values.clone().requires_grad_(True) for u in updates]

    def add_update(u: LayerUpdate, v: torch.Tensor):
        # (W + ΔW) h = W h + (h Uᵀ) V: two thin matmuls, and the gradient reaches V.
        return lambda _module, inputs, output: output + (inputs[0] @ u.directions.T) @ v

    handles = [proj.register_forward_hook(add_update(u, v)) for proj, u, v in zip(projs, updates, values)]
    n_rows = rewrite.ids.shape[0]
    n_target = (rewrite.targets != -100).sum(1).clamp(min=1)
    opt = torch.optim.Adam(values, lr=hp.refine_lr)
    losses: dict[str, float] = {}
    try:
        with frozen_weights(model):
            for _ in tqdm(range(hp.refine_steps), desc="MEMIT refine", unit="step", disable=not progress):
                opt.zero_grad()
                # The rewriting NLL in chunks of rows (each chunk's share of the mean), so the logits of a large
                # vocabulary never exist for every row at once.
                nll_total = 0.0
                for a in range(0, n_rows, REFINE_CHUNK_ROWS):
                    rows = slice(a, a + REFINE_CHUNK_ROWS)
                    logits = model(rewrite.ids[rows])[0]
                    tgt = rewrite.targets[rows]
                    tok_nll = F.cross_entropy(logits.float().transpose(1, 2), tgt, ignore_index=-100,
                                              reduction="none")          # (rows, T), 0 where ignored
                    nll = (tok_nll.sum(1) / n_target[rows]).sum() / n_rows
                    nll.backward()
                    nll_total += float(nll.detach())
                after = F.log_softmax(model(kl.ids)[0][kl_rows, kl.subject_pos].float(), -1)
                kl_loss = hp.kl_factor * F.kl_div(after, kl_ref, log_target=True, reduction="batchmean")
                spread = sum(((u.spread @ v) * v).sum() for u, v in zip(updates, values))
                (kl_loss + hp.refine_spread * spread).backward()
                opt.step()
                losses = {"refine_nll": nll_total, "refine_kl": float(kl_loss.detach()),
                          "refine_spread": float(spread.detach())}
    finally:
        for h in handles:
            h.remove()
        with torch.no_grad():
            for proj, u, v in zip(projs, updates, values):
                u.values = v.detach()
                proj.weight.add_(u.delta().to(proj.weight.dtype))
    return losses
