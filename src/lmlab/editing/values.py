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

import contextlib
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmlab.editing.prompts import build_batch, contextual_prompts
from lmlab.editing.requests import EditRequest
from lmlab.inspection import hooked, read_activations
from lmlab.models import FrozenPrefix, KVCache
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


@contextlib.contextmanager
def frozen_weights(model: nn.Module):
    """The model in eval mode with no parameter collecting gradients (an edit optimises its own tensors, never the
    weights directly); both restored after the block."""
    grads = [p.requires_grad for p in model.parameters()]
    was_training = model.training
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    try:
        yield model
    finally:
        for p, g in zip(model.parameters(), grads):
            p.requires_grad_(g)
        model.train(was_training)


def resume_layer(model: nn.Module, hook_name: str) -> int | None:
    """The block after the edited state when adding δ at `hook_name` equals adding it to the residual stream that
    enters that block (so the layers below need not re-run): `blocks.{l}.resid_post`, or `blocks.{l}.mlp.out` of a
    pre-LN block (whose output is x + mlp(x)). None otherwise (post-LN blocks, other hook points, other models)."""
    if not hasattr(model, "forward_from_layer"):
        return None
    parts = hook_name.split(".")
    if len(parts) < 3 or parts[0] != "blocks" or not parts[1].isdigit():
        return None
    rest = ".".join(parts[2:])
    if rest == "resid_post" or (rest == "mlp.out" and model.config.norm_position == "pre"):
        return int(parts[1]) + 1
    return None


def optimise_delta(model: nn.Module, tokenizer: Tokenizer, request: EditRequest, hook_name: str,
                   prefixes: list[str], *, lr: float = 0.5, steps: int = 20, kl_factor: float = 0.0625,
                   weight_decay: float = 0.5, clamp_norm_factor: float = 4.0, resume: bool = True) -> ValueResult:
    """Optimise δ on `hook_name` (an activation (B,T,D)) for one request; see the module docstring.

    resume=True (where `resume_layer` allows it): everything δ cannot change is computed once — the states up to
    the edited layer, and all positions before the subject token — so each step runs only the positions from the
    subject token to the last target token through the blocks above (`_resumed_logits`): the same δ to float
    rounding, in a fraction of the time (docs/editing.md has the figure). False: every step runs the whole model with δ added by a hook."""
    prompts = contextual_prompts(request.prompt, prefixes)
    rewrite = build_batch(model, tokenizer, prompts, request.subject, request.target_new)
    kl = build_batch(model, tokenizer, [KL_PROMPT], request.subject)
    n_rw = rewrite.ids.shape[0]
    # One batch: the rewriting prompts and the KL prompt, right-padded to one length (causal attention: padding
    # after a position never changes it).
    T = max(rewrite.ids.shape[1], kl.ids.shape[1])
    dev = rewrite.ids.device
    ids = torch.full((n_rw + 1, T), tokenizer.eos_id, dtype=torch.long, device=dev)
    ids[:n_rw, :rewrite.ids.shape[1]] = rewrite.ids
    ids[n_rw:, :kl.ids.shape[1]] = kl.ids
    targets = torch.full((n_rw, T), -100, dtype=torch.long, device=dev)
    targets[:, :rewrite.targets.shape[1]] = rewrite.targets
    pos = torch.cat([rewrite.subject_pos, kl.subject_pos])            # last subject token of each row
    rows = torch.arange(n_rw + 1, device=dev)
    # The loss reads the logits at the target tokens of the rewriting rows and at the KL row's subject token only.
    tgt_rows, tgt_cols = (targets != -100).nonzero(as_tuple=True)
    read_rows = torch.cat([tgt_rows, torch.tensor([n_rw], device=dev)])
    read_cols = torch.cat([tgt_cols, pos[n_rw:]])
    tgt_ids = targets[tgt_rows, tgt_cols]
    n_target = torch.bincount(tgt_rows, minlength=n_rw).clamp(min=1)

    D = model.config.n_embd
    param = next(model.parameters())
    delta = torch.zeros(D, device=param.device, dtype=param.dtype, requires_grad=True)
    start = resume_layer(model, hook_name) if resume else None

    # Only δ is trained: the model's weights must not collect gradients (and stay untouched).
    with frozen_weights(model):
        # h₀ (at the bare prompt, row 0) and, for resuming, the residual stream entering block `start`, with δ = 0.
        names = list(dict.fromkeys([hook_name] + ([f"blocks.{start - 1}.resid_post"] if start is not None else [])))
        cache = read_activations(model, ids, names)
        init = cache[hook_name][0, pos[0]].clone()
        if start is not None:
            read_logits = _resumed_logits(model, cache[names[-1]], start, pos, read_rows, read_cols, delta)
            adding_delta = contextlib.nullcontext()
        else:
            def add_delta(act: torch.Tensor, name: str) -> torch.Tensor:
                return act.index_put((rows, pos), delta.expand(len(rows), D), accumulate=True)

            def read_logits() -> torch.Tensor:
                return model(ids)[0][read_rows, read_cols]
            adding_delta = hooked(model, {hook_name: add_delta})
        with adding_delta:
            return _fit(read_logits, delta, init, tgt_rows, tgt_ids, n_target, n_rw, lr=lr, steps=steps,
                        kl_factor=kl_factor, weight_decay=weight_decay, clamp_norm_factor=clamp_norm_factor)


def _resumed_logits(model: nn.Module, base: torch.Tensor, start: int, pos: torch.Tensor, read_rows: torch.Tensor,
                    read_cols: torch.Tensor, delta: torch.Tensor):
    """A function of δ → logits (M, V) at (read_rows, read_cols), running only blocks `start`… on the residual stream
    `base` (B,T,D) with δ added at each row's position pos (B,).

    Causal attention means nothing before pos_i depends on δ: those positions (left-padded to a common length) go
    through the blocks once, and their keys/values are a `FrozenPrefix`; each call runs only positions pos_i up to
    the last one read in row i (a few tokens instead of the whole prefixed prompt)."""
    B, T, D = base.shape
    dev = base.device
    rows = torch.arange(B, device=dev)
    end = torch.zeros(B, dtype=torch.long, device=dev).scatter_reduce(0, read_rows, read_cols + 1, "amax")
    P, S = int(pos.max()), int((end - pos).max())
    if P == 0 or P + S > model.config.block_size:  # nothing to freeze, or no room for the padded layout
        def whole_rows() -> torch.Tensor:
            resid = base.index_put((rows, pos), delta.expand(B, D), accumulate=True)
            return model.lm_head(model.forward_from_layer(resid, start)[read_rows, read_cols])
        return whole_rows

    # Prefix: row i's positions 0..pos_i−1, right-aligned in P slots (left padding), its own position ids.
    slot = torch.arange(P, device=dev)[None, :] - (P - pos)[:, None]           # (B,P): source position, <0 = pad
    real = slot >= 0
    prefix = torch.where(real[..., None], base[rows[:, None], slot.clamp(min=0)], 0.0)
    with torch.no_grad():
        cache = KVCache.for_model(model, B, max_len=P)
        model.forward_from_layer(prefix, start, attention_mask=real.long(), position_ids=slot.clamp(min=0),
                                 kv_cache=cache)
    frozen = FrozenPrefix(cache)
    # Suffix: positions pos_i … pos_i+S−1 (past a row's end: padding nobody reads, causal so harmless).
    src = pos[:, None] + torch.arange(S, device=dev)[None, :]                  # (B,S)
    suffix = base[rows[:, None], src.clamp(max=T - 1)]
    suffix_ids = src.clamp(max=model.config.block_size - 1)
    mask = torch.cat([real.long(), torch.ones(B, S, dtype=torch.long, device=dev)], dim=1)
    first = torch.zeros(B, dtype=torch.long, device=dev)                       # the subject token: suffix slot 0
    cols = read_cols - pos[read_rows]

    def suffix_only() -> torch.Tensor:
        resid = suffix.index_put((rows, first), delta.expand(B, D), accumulate=True)
        hidden = model.forward_from_layer(resid, start, attention_mask=mask, position_ids=suffix_ids,
                                          kv_cache=frozen)
        return model.lm_head(hidden[read_rows, cols])
    return suffix_only


def _fit(read_logits, delta: torch.Tensor, init: torch.Tensor, tgt_rows: torch.Tensor, tgt_ids: torch.Tensor,
         n_target: torch.Tensor, n_rw: int, *, lr: float, steps: int, kl_factor: float, weight_decay: float,
         clamp_norm_factor: float) -> ValueResult:
    """Adam on δ. read_logits() → (M+1, V): the logits at the M target tokens (rows tgt_rows of the rewriting
    prompts, tokens tgt_ids), then at the KL prompt's subject token."""
    opt = torch.optim.Adam([delta], lr=lr)
    max_norm = clamp_norm_factor * init.norm()
    init_kl = None
    nll_v = kl_v = 0.0
    step = 0
    for step in range(1, steps + 1):
        logp = F.log_softmax(read_logits().float(), -1)
        kl_logp = logp[-1:]
        if init_kl is None:
            init_kl = kl_logp.detach().clone()
        tok_lp = logp[:-1].gather(-1, tgt_ids[:, None])[:, 0]
        per_row = torch.zeros(n_rw, dtype=tok_lp.dtype, device=tok_lp.device).index_add(0, tgt_rows, tok_lp)
        nll = (-per_row / n_target).mean()
        kl_loss = kl_factor * F.kl_div(kl_logp, init_kl, log_target=True, reduction="batchmean")
        wd = weight_decay * (delta.norm() / init.norm() ** 2)
        loss = nll + kl_loss + wd
        nll_v, kl_v = float(nll.detach()), float(kl_loss.detach())
        if float(loss.detach()) < EARLY_STOP_LOSS or step == steps:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            if delta.norm() > max_norm:
                delta.mul_(max_norm / delta.norm())
    return ValueResult(delta=delta.detach().clone(), init=init, nll=nll_v, kl=kl_v, steps=step)
