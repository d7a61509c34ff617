"""The target vector of an edit: optimise a delta δ added to one hidden state at the last subject token so that
the model says target_new (ROME §3.1 step 2 "v*", MEMIT §4.2 "z*"; shared by both).

Loss, as in ROME's code (compute_v):

    L(δ) = mean over prompts of −(1/|o|) Σ log P(o_j | prefix_i + prompt + o_<j ; h += δ)        (new object)
         + kl_factor · KL( P(· | "{subject} is a") before ‖ after )  at the last subject token  (keep the subject)
         + weight_decay · ‖δ‖ / ‖h₀‖²                                                      (keep δ small)

with Adam, ‖δ‖ clamped to clamp_norm_factor · ‖h₀‖ after every step, stopping early once L < 0.05. h₀ is the
hidden state at the last subject token of the bare prompt. ROME adds δ to the MLP output (`blocks.{l}.mlp.out`);
MEMIT to the residual stream leaving the last edited layer (`blocks.{L}.resid_post`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmlab.editing.prompts import build_batch, contextual_prompts
from lmlab.editing.requests import EditRequest
from lmlab.inspection import hooked
from lmlab.tokenization import Tokenizer

KL_PROMPT = "{} is a"
EARLY_STOP_LOSS = 5e-2


@dataclass
class ValueResult:
    """δ (D,), h₀ (D,) (the state at the bare prompt before the edit), and the optimisation's last losses."""

    delta: torch.Tensor
    init: torch.Tensor
    nll: float
    kl: float
    steps: int

    @property
    def target(self) -> torch.Tensor:
        return self.init + self.delta


def optimise_delta(model: nn.Module, tokenizer: Tokenizer, request: EditRequest, hook_name: str,
                   prefixes: list[str], *, lr: float = 0.5, steps: int = 20, kl_factor: float = 0.0625,
                   weight_decay: float = 0.5, clamp_norm_factor: float = 4.0) -> ValueResult:
    """Optimise δ on `hook_name` (an activation (B,T,D)) for one request; see the module docstring."""
    prompts = contextual_prompts(request.prompt, prefixes)
    rewrite = build_batch(model, tokenizer, prompts, request.subject, request.target_new)
    kl = build_batch(model, tokenizer, [KL_PROMPT], request.subject)
    n_rw = rewrite.ids.shape[0]
    # One batch: the rewriting prompts and the KL prompt, right-padded to one length.
    T = max(rewrite.ids.shape[1], kl.ids.shape[1])
    ids = torch.full((n_rw + 1, T), tokenizer.eos_id, dtype=torch.long, device=rewrite.ids.device)
    ids[:n_rw, :rewrite.ids.shape[1]] = rewrite.ids
    ids[n_rw:, :kl.ids.shape[1]] = kl.ids
    targets = torch.full((n_rw, T), -100, dtype=torch.long, device=ids.device)
    targets[:, :rewrite.targets.shape[1]] = rewrite.targets
    pos = torch.cat([rewrite.subject_pos, kl.subject_pos])
    rows = torch.arange(n_rw + 1, device=ids.device)
    mask = targets != -100
    n_target = mask.sum(1).clamp(min=1)

    D = model.config.n_embd
    param = next(model.parameters())
    delta = torch.zeros(D, device=param.device, dtype=param.dtype, requires_grad=True)
    state: dict[str, torch.Tensor] = {}

    def add_delta(act: torch.Tensor, name: str) -> torch.Tensor:
        if "init" not in state:
            state["init"] = act[0, pos[0]].detach().clone()
        out = act.clone()
        out[rows, pos] = out[rows, pos] + delta
        return out

    # Only δ is trained: the model's weights must not collect gradients (and stay untouched).
    grads = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    was_training = model.training
    model.eval()
    opt = torch.optim.Adam([delta], lr=lr)
    init_kl = None
    nll_v = kl_v = 0.0
    step = 0
    try:
        with hooked(model, {hook_name: add_delta}):
            for step in range(1, steps + 1):
                logits, _ = model(ids)
                kl_logp = F.log_softmax(logits[n_rw:, :][torch.arange(1, device=ids.device), pos[n_rw:]].float(), -1)
                if init_kl is None:
                    init_kl = kl_logp.detach().clone()
                logp = F.log_softmax(logits[:n_rw].float(), -1)
                tok_lp = logp.gather(-1, targets.clamp(min=0)[..., None])[..., 0] * mask
                nll = (-(tok_lp.sum(1)) / n_target).mean()
                kl_loss = kl_factor * F.kl_div(kl_logp, init_kl, log_target=True, reduction="batchmean")
                wd = weight_decay * (delta.norm() / state["init"].norm() ** 2)
                loss = nll + kl_loss + wd
                nll_v, kl_v = float(nll.detach()), float(kl_loss.detach())
                if float(loss.detach()) < EARLY_STOP_LOSS or step == steps:
                    break
                opt.zero_grad()
                loss.backward()
                opt.step()
                with torch.no_grad():
                    max_norm = clamp_norm_factor * state["init"].norm()
                    if delta.norm() > max_norm:
                        delta.mul_(max_norm / delta.norm())
    finally:
        for p, g in zip(model.parameters(), grads):
            p.requires_grad_(g)
        model.train(was_training)
    return ValueResult(delta=delta.detach().clone(), init=state["init"], nll=nll_v, kl=kl_v, steps=step)
