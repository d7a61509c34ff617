"""The GPT-NeoX half of `lmlab export hf`: our GPT with rotary positions as transformers' GPTNeoXForCausalLM.

GPT-NeoX (Pythia's architecture) is our rotary GPT once three layout choices are matched:
  - blocks: `use_parallel_residual=False` gives x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)), our pre-LN block
    (the default, True, would feed both sub-layers the same input);
  - fused q/k/v: ours is one (3·D, D) matrix ordered [q heads | k heads | v heads]; NeoX's `query_key_value` is
    ordered per head [head 0: q k v | head 1: q k v | ...];
  - rotary pairing: we turn channel pairs (2j, 2j+1) of each head's first `rotary_dims` channels; NeoX's rotate_half
    turns (j, j + rotary_dims/2) by the same angle t·base^(−2j/rotary_dims). Permuting each head's q and k rows to
    [0, 2, 4, …, 1, 3, 5, …] over the rotary channels maps one pairing onto the other; q·k is unchanged because q
    and k get the same permutation. Channels past `rotary_dims` (partial RoPE) keep their order.
Its LayerNorms and MLP always have biases: a model trained with bias=False gets zero biases (the same function).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from lmlab.hub.gpt2 import HF_ACTIVATION
from lmlab.models.gpt import GPTConfig

# Our names inside a block → GPTNeoXLayer's.
_BLOCK_NAMES = {"ln_1": "input_layernorm", "ln_2": "post_attention_layernorm", "attn.c_attn": "attention.query_key_value",
                "attn.c_proj": "attention.dense", "mlp.c_fc": "mlp.dense_h_to_4h", "mlp.c_proj": "mlp.dense_4h_to_h"}


def rotary_factor(c: GPTConfig) -> float:
    """The `partial_rotary_factor` (legacy `rotary_pct`) for which transformers' int(head_dim · factor) equals our
    `rotary_dims` (which rounds down to an even count, so our rotary_pct itself may not do)."""
    factor = c.rotary_dims / c.head_dim
    while int(c.head_dim * factor) < c.rotary_dims:  # float rounding could land just below the integer
        factor = math.nextafter(factor, 2.0)
    return factor


def neox_config(c: GPTConfig) -> dict[str, Any]:
    """The architecture keys of a transformers GPTNeoXConfig for the rotary GPT `c`; `lmlab.hub.export` adds the
    vocabulary, token ids and tying. RoPE is written both ways transformers has read it: `rope_parameters`
    (v5) and `rotary_pct` / `rotary_emb_base` (v4)."""
    factor = rotary_factor(c)
    return {
        "architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox",
        "num_hidden_layers": c.n_layer, "num_attention_heads": c.n_head, "hidden_size": c.n_embd,
        "intermediate_size": c.mlp_ratio * c.n_embd, "max_position_embeddings": c.block_size,
        "hidden_act": HF_ACTIVATION[c.activation], "layer_norm_eps": c.layer_norm_eps,
        "use_parallel_residual": False, "attention_bias": True,
        "rope_parameters": {"rope_type": "default", "rope_theta": c.rotary_base, "partial_rotary_factor": factor},
        "rotary_pct": factor, "rotary_emb_base": c.rotary_base,
        "hidden_dropout": c.dropout, "attention_dropout": c.dropout, "initializer_range": 0.02,
    }


def _neox_qkv(t: torch.Tensor, c: GPTConfig) -> torch.Tensor:
    """Our fused q/k/v weight (3·D, D) or bias (3·D,) in NeoX's per-head order, q and k channels permuted to its
    rotate-half pairing."""
    r = c.rotary_dims
    perm = torch.cat([torch.arange(0, r, 2), torch.arange(1, r, 2), torch.arange(r, c.head_dim)])
    qkv = t.reshape(3, c.n_head, c.head_dim, *t.shape[1:])        # (3, H, d, ...)
    q, k, v = qkv[0][:, perm], qkv[1][:, perm], qkv[2]            # each (H, d, ...)
    return torch.stack([q, k, v], dim=1).reshape(t.shape)         # (H, 3, d, ...) flattened


def neox_tensors(state: dict[str, torch.Tensor], c: GPTConfig) -> dict[str, torch.Tensor]:
    """Our rotary GPT's tensors (every bias present, `lm_head.weight` only when untied) under GPTNeoXForCausalLM's
    names. The output layer is written as `embed_out` (its name in transformers v4 and in Pythia's checkpoints;
    v5 reads it as `lm_head`)."""
    tensors = {}
    for name, t in state.items():
        if name == "lm_head.weight":
            tensors["embed_out.weight"] = t.contiguous()
            continue
        if name.startswith("blocks."):
            _, layer, rest = name.split(".", 2)
            module, param = rest.rsplit(".", 1)
            if module == "attn.c_attn":
                t = _neox_qkv(t, c)
            name = f"layers.{layer}.{_BLOCK_NAMES[module]}.{param}"
        else:
            name = {"wte.weight": "embed_in.weight", "ln_f.weight": "final_layer_norm.weight",
                    "ln_f.bias": "final_layer_norm.bias"}[name]
        tensors["gpt_neox." + name] = t.contiguous()
    return tensors
