"""A decoder-only transformer (GPT), in one file you can read top to bottom.

Layout, in the order the data flows:

    idx (B,T) ──► wte (+ wpe | sinusoidal table)  ─► hook `embed` ─► dropout
               ──► blocks[0..L-1]:  x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))      (pre-LN, GPT-2)
                                    x = ln_1(x + attn(x));  x = ln_2(x + mlp(x))      (post-LN, 2017 Transformer)
               ──► ln_f ─► hook `final_norm` ─► lm_head (tied to wte or not) ─► hook `logits`

With `pos_embedding="learned"`, `activation="gelu"`, `norm_position="pre"`, `bias=True` and tied embeddings the
parameter names and maths are those of GPT-2, so `lmlab.hub` can load Hugging Face GPT-2 weights and match its
logits.

Hook points. Every activation named in ARCHITECTURE.md is the output of a `HookPoint` submodule whose module path
*is* the hook name, so `model.get_submodule("blocks.3.mlp.post")` is that hook point and ordinary torch forward hooks
read (return None) or replace (return a tensor) the activation. Shapes (B batch, T new tokens in this call, S = keys
seen so far incl. cached ones, H heads, D = n_embd, d = D/H):

    embed                       (B,T,D)   token (+ absolute position) embedding, before dropout
    blocks.{l}.resid_pre        (B,T,D)   residual stream entering block l
    blocks.{l}.attn.q|k|v       (B,H,T,d) per-head queries/keys/values (q, k after rotary, if any)
    blocks.{l}.attn.pattern     (B,H,T,S) softmax attention weights (only computed when hooked, see below)
    blocks.{l}.attn.out         (B,T,D)   attention output after the output projection
    blocks.{l}.resid_mid        (B,T,D)   residual stream after the attention sub-layer
    blocks.{l}.mlp.pre          (B,T,mlp_ratio·D)  MLP hidden pre-activation
    blocks.{l}.mlp.post         (B,T,mlp_ratio·D)  MLP hidden after the nonlinearity: the "key" coefficients m_i
    blocks.{l}.mlp.out          (B,T,D)   MLP output after the output projection
    blocks.{l}.resid_post       (B,T,D)   residual stream leaving block l
    final_norm                  (B,T,D)   after the final LayerNorm
    logits                      (B,T,V)

Hook points cost nothing when unused: the forward pass only calls a hook point module when it has hooks.
`attn.pattern` cannot come out of the fused `scaled_dot_product_attention` kernel, so attention is computed
explicitly (softmax(QKᵀ/√d)·V, same numbers up to float rounding) only while a hook is registered on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmlab.errors import LmlabError
from lmlab.models import int8
from lmlab.models.config_dict import ConfigDictMixin, check_heads_divide, check_sizes, check_unit_interval

POS_EMBEDDINGS = ("learned", "sinusoidal", "rotary")
NORM_POSITIONS = ("pre", "post")
ACTIVATIONS = ("gelu", "gelu_exact", "relu", "silu")


# ========================================================================================================= config ===
@dataclass
class GPTConfig(ConfigDictMixin):
    """Shape and architecture choices of a GPT. Names follow GPT-2 / nanoGPT."""

    config_label = "GPT config"  # names this config in error messages

    n_layer: int = 12            # number of transformer blocks
    n_head: int = 12             # attention heads per block; n_embd must be divisible by it
    n_embd: int = 768            # width of the residual stream (model dimension D)
    block_size: int = 1024       # context length: the most positions one forward pass (or a KV cache) can hold
    vocab_size: int = 50304      # rows of the embedding; GPT-2's 50257 padded up to a multiple of 64 for speed
    dropout: float = 0.0         # dropout on embeddings, attention weights and residual branches (training only)
    bias: bool = True            # biases in Linear layers and LayerNorms (GPT-2: True; slightly faster: False)
    pos_embedding: str = "learned"   # "learned" (GPT-2, absolute), "sinusoidal" (fixed, Vaswani 2017), "rotary" (RoPE)
    norm_position: str = "pre"   # "pre": LayerNorm before each sub-layer (GPT-2); "post": after the residual add
    activation: str = "gelu"     # MLP nonlinearity: "gelu" (tanh approximation, as GPT-2/HF), "gelu_exact" (erf
                                 # form, as nanoGPT/BERT; ~2x cheaper on CPU), "relu", "silu"
    tie_embeddings: bool = True  # share the token embedding with the output projection (GPT-2 does)
    layer_norm_eps: float = 1e-5  # LayerNorm epsilon (GPT-2: 1e-5)
    mlp_ratio: int = 4           # MLP hidden width = mlp_ratio * n_embd
    rotary_base: float = 10000.0  # RoPE base frequency θ (used only with pos_embedding="rotary")
    rotary_pct: float = 1.0      # share of each head's channels RoPE rotates (GPT-NeoX/Pythia: 0.25); the rest of
                                 # q and k carry no position, so those channels match on content alone

    def __post_init__(self) -> None:
        check_sizes("model config", self, "n_layer", "n_head", "n_embd", "block_size", "vocab_size", "mlp_ratio")
        check_heads_divide("model config", self)
        if self.pos_embedding not in POS_EMBEDDINGS:
            raise LmlabError(f"model config: pos_embedding must be one of {POS_EMBEDDINGS}, got {self.pos_embedding!r}")
        if self.norm_position not in NORM_POSITIONS:
            raise LmlabError(f"model config: norm_position must be one of {NORM_POSITIONS}, got {self.norm_position!r}")
        if self.activation not in ACTIVATIONS:
            raise LmlabError(f"model config: activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.pos_embedding == "rotary" and (self.n_embd // self.n_head) % 2:
            raise LmlabError("model config: rotary positions need an even head size (n_embd / n_head)")
        check_unit_interval("model config", self, "rotary_pct", low_open=True, high_open=False)
        if self.pos_embedding == "rotary" and self.rotary_dims < 2:
            raise LmlabError(f"model config: rotary_pct={self.rotary_pct} rotates no channel pair of a "
                             f"{self.head_dim}-channel head; raise it to at least {2 / self.head_dim:.3g}")
        check_unit_interval("model config", self, "dropout")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def rotary_dims(self) -> int:
        """Channels per head that RoPE rotates: the first rotary_pct of head_dim, rounded down to an even count."""
        return int(self.head_dim * float(self.rotary_pct)) // 2 * 2


# ===================================================================================================== hook point ===
class HookPoint(nn.Module):
    """Identity module marking a named activation; attach torch forward hooks to read or replace it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _hook(point: HookPoint, x: torch.Tensor) -> torch.Tensor:
    # Calling a Module costs a few microseconds even without hooks; skip the call when nothing is attached so the
    # decode loop pays only two dict checks per hook point.
    if point._forward_hooks or point._forward_pre_hooks:
        return point(x)
    return x


def _has_hooks(point: HookPoint) -> bool:
    return bool(point._forward_hooks or point._forward_pre_hooks)


# ======================================================================================================= KV cache ===
KV_STORAGES = ("fp32", "bf16", "int8")


def check_kv_storage(storage: str) -> None:
    """LmlabError unless `storage` is one of KV_STORAGES."""
    if storage not in KV_STORAGES:
        raise LmlabError(f"unknown KV cache storage {storage!r}; choose one of {', '.join(KV_STORAGES)}")


class KVCache:
    """Keys and values of past positions, preallocated as (n_layer, B, H, max_len, d) so decoding never reallocates.

    Each forward pass writes its T new keys/values at positions [length, length+T) of every layer, then advances
    `length` by T. Keys are stored after rotary rotation, so cached keys are never re-rotated.

    storage: how the keys/values are held. "fp32" (default): in the model's own dtype, as computed. "bf16": rounded
    to bfloat16 (half the bytes of fp32). "int8": each key and value vector (one position of one head, d numbers)
    rounded to int8 with its own float32 scale, x ≈ q · max|x|/127 (a quarter of the bytes, plus 4 per vector).
    New keys/values are rounded once, when written; reads return the filled part converted back to the model's
    dtype, which attention then uses. The held tensors are `held` (k, v, and for int8 their scales
    (n_layer, B, H, max_len, 1)): code that moves positions or rows around moves all of them alike.
    """

    def __init__(self, n_layer: int, batch_size: int, n_head: int, max_len: int, head_dim: int, *,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, storage: str = "fp32"):
        check_kv_storage(storage)
        shape = (n_layer, batch_size, n_head, max_len, head_dim)
        held = {"fp32": dtype, "bf16": torch.bfloat16, "int8": torch.int8}[storage]
        self.k = torch.zeros(shape, device=device, dtype=held)
        self.v = torch.zeros(shape, device=device, dtype=held)
        self.k_scale = self.v_scale = None
        if storage == "int8":
            self.k_scale = torch.zeros(shape[:-1] + (1,), device=device, dtype=torch.float32)
            self.v_scale = torch.zeros(shape[:-1] + (1,), device=device, dtype=torch.float32)
        self.storage, self.dtype = storage, dtype  # dtype: what reads return (the model's)
        self._scratch: tuple[torch.Tensor, torch.Tensor] | None = None  # see `attended`
        self.max_len = max_len
        self.length = 0  # positions filled so far (same for every layer and batch row)

    @classmethod
    def for_model(cls, model: "GPT", batch_size: int, max_len: int | None = None, *,
                  storage: str = "fp32") -> "KVCache":
        """A cache sized for `model` (max_len defaults to its block_size), on the model's device, read back in the
        model's dtype; `storage` as in the class docstring."""
        c = model.config
        p = model.lm_head.weight
        return cls(c.n_layer, batch_size, c.n_head, max_len or c.block_size, c.head_dim, device=p.device,
                   dtype=p.dtype, storage=storage)

    @property
    def batch_size(self) -> int:
        return self.k.shape[1]

    @property
    def held(self) -> list[torch.Tensor]:
        """The tensors holding the cache, all indexed alike over (layer, row, head, position)."""
        return [t for t in (self.k, self.v, self.k_scale, self.v_scale) if t is not None]

    def nbytes(self) -> int:
        """Bytes the cache holds (values and int8 scales), for all max_len positions."""
        return sum(t.numel() * t.element_size() for t in self.held)

    def write(self, index: tuple, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store k, v (shaped like self.k[index]) at `index`, a tuple over (layer, row, head, position), rounding
        them to the cache's storage."""
        if self.storage == "int8":
            for values, scales, x in ((self.k, self.k_scale, k), (self.v, self.v_scale, v)):
                scale = int8.int8_scales(x)
                scales[index] = scale
                values[index] = int8.to_int8(x, scale)
        else:
            self.k[index] = k
            self.v[index] = v

    def read(self, index: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values at `index` (as in `write`), in the model's dtype (new tensors unless fp32)."""
        if self.storage == "int8":
            return ((self.k[index] * self.k_scale[index]).to(self.dtype),
                    (self.v[index] * self.v_scale[index]).to(self.dtype))
        return self.k[index].to(self.dtype), self.v[index].to(self.dtype)

    def attended(self, layer: int, rows: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
        """What attention reads: keys and values (rows,H,end,d) of `layer`'s first `rows` rows, positions [0, end),
        in the model's dtype. fp32: views of the cache itself. bf16/int8: converted into one scratch buffer per cache
        (for one layer's keys and values), reused by every layer and step, so decoding allocates nothing per step;
        the views hold until the next call."""
        index = (layer, slice(None, rows), slice(None), slice(None, end))
        if self.storage == "fp32":
            return self.k[index], self.v[index]
        if self._scratch is None or self._scratch[0].shape != self.k.shape[1:]:
            self._scratch = tuple(torch.empty(self.k.shape[1:], dtype=self.dtype, device=self.k.device)
                                  for _ in range(2))
        out = []
        pairs = ((self.k, self.k_scale, self._scratch[0]), (self.v, self.v_scale, self._scratch[1]))
        for held, scales, buffer in pairs:
            values = buffer[:rows, :, :end].copy_(held[index])
            out.append(values if scales is None else values.mul_(scales[index]))
        return out[0], out[1]

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B,H,T,d) of `layer` after the filled part; return all keys/values (B,H,length+T,d)."""
        start, end = self.length, self.length + k.shape[2]
        if end > self.max_len:
            raise LmlabError(f"KV cache full: {end} positions needed, cache holds {self.max_len}")
        self.write((layer, slice(None), slice(None), slice(start, end)), k, v)
        return self.attended(layer, k.shape[0], end)

    def advance(self, n: int) -> None:
        """Mark n more positions as filled (GPT.forward calls this once, after all layers wrote)."""
        self.length += n

    def reorder(self, index: torch.Tensor) -> None:
        """Select/reorder batch rows (beam search): row i becomes old row index[i]."""
        self.k, self.v = self.k.index_select(1, index), self.v.index_select(1, index)
        if self.storage == "int8":
            self.k_scale, self.v_scale = self.k_scale.index_select(1, index), self.v_scale.index_select(1, index)


class FrozenPrefix:
    """Keys and values of a fixed prefix, reused by many forward passes over different continuations of it.

    Built from a filled `KVCache`; `update` returns the prefix's keys/values with the new ones concatenated (not
    written in place, so gradients can flow through the continuation on every pass) and `advance` keeps nothing,
    so each pass sees only the prefix plus its own positions. Why: when only the states from some position on
    change (ROME's δ at the subject token), the positions before it need computing once, not on every step.
    """

    def __init__(self, cache: KVCache):
        n = cache.length
        k, v = cache.read((slice(None), slice(None), slice(None), slice(None, n)))
        self.k, self.v = k.detach(), v.detach()
        self.length = n

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(prefix + k, prefix + v) for `layer`: (B,H,length+T,d)."""
        return torch.cat([self.k[layer], k], dim=2), torch.cat([self.v[layer], v], dim=2)

    def advance(self, n: int) -> None:
        """Nothing: the prefix stays as it is."""


# ====================================================================================================== positions ===
def sinusoidal_table(n_positions: int, dim: int) -> torch.Tensor:
    """(n_positions, dim) fixed encodings of Vaswani et al. 2017: sin on even, cos on odd channels."""
    pos = torch.arange(n_positions, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(n_positions, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table


def rotary_tables(n_positions: int, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of RoPE's angles (Su et al. 2021), each (n_positions, head_dim // 2): position t turns channel
    pair j by t·base^(−2j/head_dim) radians."""
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.arange(n_positions, dtype=torch.float32)[:, None] * inv_freq[None, :]
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs (2j, 2j+1) of x (..., d) by their positions' angles: (a, b) → (a cos − b sin,
    a sin + b cos). cos and sin are rows of `rotary_tables`, shaped to broadcast against (..., d/2).

    The pairs are read as complex numbers and multiplied by e^{iθ}: one kernel forward and one backward, where
    the real-valued form (GPT-NeoX's rotate_half) costs four of each — measurable on a small model's CPU step.
    The pairing is interleaved (RoFormer's and Meta's original Llama code), not GPT-NeoX's halves (i, i + d/2)."""
    pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(pairs * torch.complex(cos.float(), sin.float())).flatten(-2).type_as(x)


# ===================================================================================================== attention ===
def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, is_causal: bool,
              dropout_p: float) -> torch.Tensor:
    """softmax(QKᵀ/√d + mask)·V through `F.scaled_dot_product_attention`: q (B,H,T,d), k and v (B,H,S,d) →
    (B,H,T,d); mask (B|1,1,T,S) bool (True = may attend) or None.

    On CPU, bfloat16 q/k/v (autocast) are attended in float32: PyTorch's CPU flash-attention kernel is 2.5–3.6×
    slower in bf16 than in fp32 at 64–128 tokens and only ~1.2× faster at 1024 (measured on AVX-512 with bf16
    instructions), while the matmuls around it run ~2× faster in bf16. The output is cast back to bf16.
    """
    if q.device.type == "cpu" and q.dtype == torch.bfloat16:
        with torch.autocast("cpu", enabled=False):  # autocast would cast the inputs straight back to bf16
            y = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask,
                                               is_causal=is_causal, dropout_p=dropout_p)
        return y.to(torch.bfloat16)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal, dropout_p=dropout_p)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig, layer: int):
        super().__init__()
        self.layer = layer
        self.n_head, self.head_dim = config.n_head, config.head_dim
        self.dropout = config.dropout
        # Hook points first, in data-flow order, so `GPT.hook_names()` lists them in that order.
        self.q, self.k, self.v, self.pattern, self.out = HookPoint(), HookPoint(), HookPoint(), HookPoint(), HookPoint()
        # One matmul makes queries, keys and values for all heads (GPT-2's c_attn), then an output projection.
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor] | None,
                mask: torch.Tensor | None, is_causal: bool, kv_cache: KVCache | None) -> torch.Tensor:
        B, T, C = x.shape
        qkv = self.c_attn(x).view(B, T, 3, self.n_head, self.head_dim)
        if rotary is None:
            q, k = qkv[:, :, 0], qkv[:, :, 1]
        else:
            # Queries and keys rotated in one pass (a step of the tiny model is bound by the number of ops).
            qk, n_rot = qkv[:, :, :2], 2 * rotary[0].shape[-1]
            if n_rot == self.head_dim:
                q, k = apply_rotary(qk, *rotary).unbind(2)
            else:  # partial RoPE: only the first n_rot channels of each head turn with position
                q, k = torch.cat([apply_rotary(qk[..., :n_rot], *rotary), qk[..., n_rot:]], dim=-1).unbind(2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), qkv[:, :, 2].transpose(1, 2)  # (B,H,T,d)
        q, k, v = _hook(self.q, q), _hook(self.k, k), _hook(self.v, v)
        if kv_cache is not None:
            k, v = kv_cache.update(self.layer, k, v)  # now (B,H,S,d) with the past included

        if _has_hooks(self.pattern):
            # Explicit attention, only so that the weights can be read or patched.
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_dim))
            if mask is None and is_causal:
                mask = torch.ones(T, k.shape[2], dtype=torch.bool, device=x.device).tril()
            if mask is not None:
                att = att.masked_fill(~mask, float("-inf"))
            att = self.pattern(F.softmax(att, dim=-1))
            y = self.attn_dropout(att) @ v
        else:
            y = attention(q, k, v, mask, is_causal, self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return _hook(self.out, self.resid_dropout(self.c_proj(y)))


# =========================================================================================================== MLP ===
class MLP(nn.Module):
    """Two-layer feed-forward network, read as a key-value memory (Geva et al. 2021):
    `mlp.post` holds the key coefficients m_i (activation after the nonlinearity), and the value vectors v_i are the
    columns of `c_proj.weight` — i.e. the rows of `c_proj.weight.T` (shape (mlp_ratio·D, D)); out = Σ_i m_i v_i."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.pre, self.post, self.out = HookPoint(), HookPoint(), HookPoint()
        hidden = config.mlp_ratio * config.n_embd
        self.c_fc = nn.Linear(config.n_embd, hidden, bias=config.bias)
        self.act = {"gelu": nn.GELU(approximate="tanh"), "gelu_exact": nn.GELU(), "relu": nn.ReLU(),
                    "silu": nn.SiLU()}[config.activation]
        self.c_proj = nn.Linear(hidden, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = _hook(self.post, self.act(_hook(self.pre, self.c_fc(x))))
        return _hook(self.out, self.dropout(self.c_proj(h)))


# ========================================================================================================= block ===
class Block(nn.Module):
    def __init__(self, config: GPTConfig, layer: int):
        super().__init__()
        self.pre_norm = config.norm_position == "pre"
        self.resid_pre = HookPoint()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias)
        self.attn = CausalSelfAttention(config, layer)
        self.resid_mid = HookPoint()
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias)
        self.mlp = MLP(config)
        self.resid_post = HookPoint()

    def forward(self, x, rotary, mask, is_causal, kv_cache):
        x = _hook(self.resid_pre, x)
        if self.pre_norm:
            x = _hook(self.resid_mid, x + self.attn(self.ln_1(x), rotary, mask, is_causal, kv_cache))
            x = x + self.mlp(self.ln_2(x))
        else:
            x = _hook(self.resid_mid, self.ln_1(x + self.attn(x, rotary, mask, is_causal, kv_cache)))
            x = self.ln_2(x + self.mlp(x))
        return _hook(self.resid_post, x)


# =========================================================================================================== GPT ===
class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        if config.pos_embedding == "learned":
            self.wpe = nn.Embedding(config.block_size, config.n_embd)
        # Fixed tables are buffers that are not saved (persistent=False): they are a function of the config.
        elif config.pos_embedding == "sinusoidal":
            self.register_buffer("pos_table", sinusoidal_table(config.block_size, config.n_embd), persistent=False)
        else:
            cos, sin = rotary_tables(config.block_size, config.rotary_dims, config.rotary_base)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.embed = HookPoint()
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.n_layer))
        # Post-LN blocks already end in a LayerNorm, so a final norm would be redundant there (as in BERT).
        self.ln_f = (nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias)
                     if config.norm_position == "pre" else nn.Identity())
        self.final_norm = HookPoint()
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.logits = HookPoint()
        if config.tie_embeddings:
            self.lm_head.weight = self.wte.weight  # one matrix reads tokens in and writes them out
        self.apply(self._init_weights)
        # GPT-2: residual projections scaled by 1/√(2·n_layer) so the residual stream's variance does not grow
        # with depth (each block adds two branches).
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    # --- forward ------------------------------------------------------------------------------------------------
    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, *,
                attention_mask: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
                kv_cache: KVCache | None = None,
                last_only: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits for every position, and the loss when targets are given.

        idx: (B,T) int64 token ids. targets: (B,T) int64, -100 = ignore; loss is the mean cross-entropy (nats).
        attention_mask: (B, past+T) with 1 for real tokens and 0 for padding (left padding for batched prompts of
        different lengths); past = kv_cache.length. position_ids: (B,T) absolute positions (default past..past+T-1;
        with left padding pass cumsum(mask)-1 so each row's first real token is position 0).
        kv_cache: a `KVCache`; this call appends its T positions to it, so decoding one token at a time gives the
        same logits as one full forward pass. last_only: compute logits for the last position only (B,1,V) — all a
        decoder needs after a prompt, and it skips most of the output layer's work. Returns (logits, loss or None).
        """
        c = self.config
        B, T = idx.shape
        past = self._past_length(kv_cache, T)
        if position_ids is None:
            position_ids = torch.arange(past, past + T, device=idx.device).unsqueeze(0)  # (1,T), broadcasts

        x = self.wte(idx)
        if c.pos_embedding == "learned":
            x = x + self.wpe(position_ids)
        elif c.pos_embedding == "sinusoidal":
            x = x + self.pos_table[position_ids].to(x.dtype)
        x = self.drop(_hook(self.embed, x))
        x = self.forward_from_layer(x, 0, attention_mask=attention_mask, position_ids=position_ids,
                                    kv_cache=kv_cache)
        if last_only:
            if targets is not None:
                raise ValueError("last_only=True computes no loss; pass targets=None")
            x = x[:, -1:, :]
        logits = _hook(self.logits, self.lm_head(x))

        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100)
        return logits, loss

    def forward_from_layer(self, resid: torch.Tensor, layer: int, *, attention_mask: torch.Tensor | None = None,
                           position_ids: torch.Tensor | None = None,
                           kv_cache: KVCache | FrozenPrefix | None = None) -> torch.Tensor:
        """Blocks `layer`, …, n_layer−1 and the final norm, on the residual stream entering block `layer`.

        resid: (B,T,D) float. attention_mask, position_ids, kv_cache: as in `forward` (kv_cache may also be a
        `FrozenPrefix`). Returns the normed final hidden state (B,T,D); `lm_head` of it gives the logits.
        `forward` is the embeddings followed by this from layer 0; called directly it lets an optimisation that
        changes only the residual stream above some layer (ROME's and MEMIT's δ) skip re-running the layers below.
        """
        if not 0 <= layer <= self.config.n_layer:
            raise ValueError(f"layer {layer} out of range 0..{self.config.n_layer}")
        B, T, _ = resid.shape
        past = self._past_length(kv_cache, T)
        if position_ids is None:
            position_ids = torch.arange(past, past + T, device=resid.device).unsqueeze(0)
        rotary = self._rotary(position_ids)
        mask, is_causal = self._attention_mask(attention_mask, past, T, resid.device)
        x = resid
        for block in self.blocks[layer:]:
            x = block(x, rotary, mask, is_causal, kv_cache)
        if kv_cache is not None:
            kv_cache.advance(T)
        return _hook(self.final_norm, self.ln_f(x))

    def _past_length(self, kv_cache: KVCache | FrozenPrefix | None, T: int) -> int:
        """Positions already in the cache (0 without one); an error when T more would not fit the context."""
        past = kv_cache.length if kv_cache is not None else 0
        if past + T > self.config.block_size:
            raise LmlabError(f"sequence of {past + T} tokens is longer than the model's context (block_size "
                             f"{self.config.block_size}); shorten or left-truncate the input")
        return past

    def _rotary(self, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """RoPE's (cos, sin) at position_ids (B|1,T), shaped (B|1, T, 1, 1, d/2) to broadcast over the (q, k) pair
        and the heads of the (B,T,2,H,d) projections (d/2 → rotary_dims/2 with partial RoPE); None unless positions
        are rotary."""
        if self.config.pos_embedding != "rotary":
            return None
        return self.rope_cos[position_ids][:, :, None, None], self.rope_sin[position_ids][:, :, None, None]

    @staticmethod
    def _attention_mask(attention_mask: torch.Tensor | None, past: int, T: int,
                        device: torch.device) -> tuple[torch.Tensor | None, bool]:
        """(mask (B|1,1,T,S) bool or None, is_causal) for SDPA. S = past + T.

        Fast paths: no padding and no past → SDPA's built-in causal mask; one new token and no padding → no mask
        at all (it may see every cached key). SDPA's `is_causal` aligns the triangle to the top-left, which is
        wrong when T < S, hence an explicit mask whenever past > 0 and T > 1.
        """
        if attention_mask is None:
            if past == 0:
                return None, True
            if T == 1:
                return None, False
        S = past + T
        q_pos = torch.arange(past, S, device=device)[:, None]
        k_pos = torch.arange(S, device=device)[None, :]
        mask = (k_pos <= q_pos)[None, None]  # (1,1,T,S) causal
        if attention_mask is not None:
            if attention_mask.shape[-1] != S:
                raise ValueError(f"attention_mask covers {attention_mask.shape[-1]} positions, expected past+T = {S}")
            keep = attention_mask.bool()[:, None, None, :]  # (B,1,1,S)
            # A padding query would see no key at all (softmax of all -inf = NaN); let every query see itself.
            mask = mask & (keep | (k_pos == q_pos)[None, None])
        return mask, False

    # --- introspection ------------------------------------------------------------------------------------------
    def hook_names(self) -> list[str]:
        """Names of all hook points in data-flow order (each is also the module path for `get_submodule`)."""
        return [name for name, m in self.named_modules() if isinstance(m, HookPoint)]

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count (shared weights once). non_embedding=True leaves out the lookup tables that cost no
        matmul FLOPs: position embeddings, and the token embedding when it is not tied to the output layer
        (as nanoGPT does; a tied embedding is counted because it is the output projection)."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            if self.config.pos_embedding == "learned":
                n -= self.wpe.weight.numel()
            if not self.config.tie_embeddings:
                n -= self.wte.weight.numel()
        return n

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs (forward + backward) per token, as in the PaLM paper (appendix B) and nanoGPT:
        6·N + 12·L·H·Q·T, with N non-embedding parameters, L layers, H heads, Q head size, T sequence length
        (default block_size). 6N counts the matmuls with weights (2 forward + 4 backward per parameter), the second
        term the attention score and weighted-sum matmuls. Inference forward costs one third of it."""
        c = self.config
        T = seq_len or c.block_size
        return 6 * self.num_params(non_embedding=True) + 12 * c.n_layer * c.n_head * c.head_dim * T
