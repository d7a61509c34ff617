"""Logit lens (nostalgebraist 2020): read the residual stream after every layer as if it were the last one.

The state h_l (hook `blocks.{l}.resid_post`, and `embed` before the first block) goes through the model's own
final norm and unembedding: logits_l = W_U · final_norm(h_l). After the last layer this is exactly the model's
output. (Post-LN models have no final norm; their blocks already end in a LayerNorm.)
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from lmlab.errors import LmlabError
from lmlab.inspection.hooks import run_with_cache
from lmlab.inspection.prompts import encode_prompt, token_labels
from lmlab.tokenization import Tokenizer


def unembed(model: nn.Module, resid: torch.Tensor) -> torch.Tensor:
    """Logits (..., V) of residual-stream states (..., D): the model's final norm, then its output layer."""
    return model.lm_head(model.ln_f(resid))


def lens_stages(model: nn.Module, before_mlp: bool = False) -> list[str]:
    """The hook names the lens reads, in order: 'embed', then 'blocks.{l}.resid_post' for every layer; with
    before_mlp, each layer's 'blocks.{l}.resid_mid' (after attention, before the MLP) comes before its resid_post,
    so the table shows what each MLP changed (LM-Debugger's prediction view)."""
    names = ["embed"]
    for l in range(model.config.n_layer):
        names += ([f"blocks.{l}.resid_mid"] if before_mlp else []) + [f"blocks.{l}.resid_post"]
    return names


def _stage_label(hook: str) -> str:
    """'embed', 'layer 3' (after block 3) or 'layer 3 before MLP'."""
    if hook == "embed":
        return hook
    layer = hook.split(".")[1]
    return f"layer {layer} before MLP" if hook.endswith("resid_mid") else f"layer {layer}"


@torch.no_grad()
def lens_logits(model: nn.Module, tokens, before_mlp: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(lens logits (stages, B, T, V) — row 0 after the embedding, then one row after each block (two with
    before_mlp: before and after its MLP, see `lens_stages`) —, model logits (B,T,V)). tokens: ids as a list,
    1-D or (B,T)."""
    names = lens_stages(model, before_mlp)
    logits, cache = run_with_cache(model, tokens, names)
    return torch.stack([unembed(model, cache[n]) for n in names]), logits


def _top(probs: torch.Tensor, tokenizer: Tokenizer, k: int) -> list[dict[str, Any]]:
    probs = probs[..., :tokenizer.vocab_size]  # not the rows a padded vocab adds (no token to show)
    p, i = probs.topk(min(k, probs.shape[-1]))
    return [{"token": tokenizer.decode([int(t)]), "id": int(t), "prob": float(q)} for q, t in zip(p, i)]


def logit_lens(model: nn.Module, tokenizer: Tokenizer, prompt: str, *, top_k: int = 5,
               all_positions: bool = False, before_mlp: bool = False) -> dict[str, Any]:
    """Top-k next tokens (with probabilities) read after every layer, for the last position of `prompt` (or for
    every position with all_positions=True); before_mlp adds a row before each layer's MLP. JSON-ready:

        {"prompt", "tokens": [str], "positions": [int],
         "stages": [{"stage": "embed" | "layer 0 before MLP" | "layer 0" ..., "hook": name,
                     "positions": [{"position": p, "token": str, "top": [{"token", "id", "prob"}]}]}],
         "model_top": [...top of the model's own output at the last position...]}
    """
    if top_k < 1:
        raise LmlabError("--top-k must be at least 1")
    ids = encode_prompt(tokenizer, prompt, model.config.block_size)
    lens, logits = lens_logits(model, ids, before_mlp)
    probs = lens[:, 0].float().softmax(-1)  # (stages, T, V)
    labels = token_labels(tokenizer, ids)
    positions = list(range(len(ids))) if all_positions else [len(ids) - 1]
    stages = []
    for s, hook in enumerate(lens_stages(model, before_mlp)):
        stages.append({"stage": _stage_label(hook), "hook": hook,
                       "positions": [{"position": p, "token": labels[p], "top": _top(probs[s, p], tokenizer, top_k)}
                                     for p in positions]})
    return {"prompt": prompt, "tokens": labels, "positions": positions, "stages": stages,
            "model_top": _top(logits[0, -1].float().softmax(-1), tokenizer, top_k)}
