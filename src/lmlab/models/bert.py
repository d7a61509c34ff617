"""A BERT-style bidirectional transformer encoder, pre-trained with masked-LM (and optionally next-sentence
prediction), read top to bottom.

Layout (the transformer blocks are `lmlab.models.gpt.Block`, run with is_causal=False and a padding mask):

    idx (B,T) ──► wte + wpe (learned positions) + wtt (segment / token type 0|1) ─► LayerNorm ─► dropout
              ──► blocks[0..L-1]  (pre-LN by default: x = x + attn(ln_1(x)); x = x + mlp(ln_2(x));
                                   norm_position="post" gives the original BERT / 2017 post-LN blocks)
              ──► ln_f (pre-LN only) ─► hidden states h (B,T,D)              ← `encode` returns these
    MLM head:  h ─► dense(D→D) ─► GELU ─► LayerNorm ─► · wteᵀ + bias  (decoder tied to the token embedding)
    NSP head:  h[:, 0] (<cls>) ─► dense(D→D) ─► tanh ─► Linear(D→2)     (only with nsp=True)

Objective (nats). The trainer feeds random token windows x (B, block_size) of the training stream (the default
`batch_format`, as for the GPT; its shifted targets y are not used). `forward(x, y)` builds each pre-training
example itself:

    without NSP:  <cls> w <sep>               w = the window's first block_size − 2 tokens, segment ids all 0
    with NSP:     <cls> A <sep> B <sep>       A, B = the first and second half of the window's first block_size − 3
                                              tokens; for each row with probability ½ B is replaced by the B of the
                                              previous row of the batch (rolled by one), label 1 = "not next";
                                              segment ids 0 for <cls> A <sep>, 1 for B <sep>

then masks it as Devlin et al. 2019 (§3.1, appendix A.1): every position that is not <cls>, <sep> or <pad> is
selected independently with probability mask_prob (0.15); a selected token is replaced by <mask> with probability
0.8, by a token drawn uniformly from the whole vocabulary with probability 0.1, and left unchanged with probability
0.1. With M the set of selected positions,

    L_MLM = −(1/|M|) Σ_{i∈M} log p(x_i | x̃)        (x̃ = the masked input; 0 when a batch selects nothing)
    L     = L_MLM  (+ L_NSP = −(1/B) Σ_b log p(is_next_b | x̃_b)   when nsp=True)

Masking randomness: in training mode it draws from torch's global RNG of the input's device (which the trainer
seeds, saves and restores, so a resumed run masks exactly as the uninterrupted one); in eval mode from a private
torch.Generator re-seeded with `eval_mask_seed` whenever the model is switched to eval mode, so every evaluation
of the same windows sees the same masks and the val loss is deterministic.

BERT is not a left-to-right language model: `forward` without targets (what sampling, scoring and perplexity
call) raises an LmlabError pointing to `lmlab fill`. Predictions use `mlm_logits` (logits at every position of an
input the caller built, e.g. `<cls> The capital of X is <mask> . <sep>`), features use `encode`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmlab.errors import LmlabError
from lmlab.models.config_dict import ConfigDictMixin, check_heads_divide, check_sizes, check_unit_interval
from lmlab.models.gpt import GPT, Block, GPTConfig

NORM_POSITIONS = ("pre", "post")
# What sampling / scoring / perplexity get when they call forward(idx) on a BERT (see BERT.forward).
NOT_A_CAUSAL_LM = ("a bert model is not a left-to-right LM, so it cannot sample, score or measure perplexity; "
                   "use `lmlab fill RUN_DIR \"text with [MASK]\"` for masked-word prediction")


# ========================================================================================================= config ===
@dataclass
class BERTConfig(ConfigDictMixin):
    """Shape of a BERT-style encoder and its pre-training objective."""

    config_label = "BERT config"  # names this config in error messages

    vocab_size: int = 1024       # rows of the token embedding / MLM decoder (the trainer sets it to the tokenizer's)
    n_layer: int = 4             # transformer blocks
    n_head: int = 4              # attention heads per block; n_embd must be divisible by it
    n_embd: int = 128            # width of the hidden states (D)
    block_size: int = 128        # most positions of one input, <cls>/<sep> included (BERT: max_position_embeddings)
    dropout: float = 0.1         # dropout on embeddings, attention weights and residual branches (training only)
    bias: bool = True            # biases in Linear layers and LayerNorms
    mlp_ratio: int = 4           # MLP hidden width = mlp_ratio * n_embd
    layer_norm_eps: float = 1e-5  # LayerNorm epsilon (BERT: 1e-12; 1e-5 is safer in low precision)
    norm_position: str = "pre"   # "pre": LayerNorm before each sub-layer (stable to train, our default);
                                 # "post": after the residual add, as the original BERT
    activation: str = "gelu"     # MLP nonlinearity of the blocks: "gelu" (tanh approximation), "relu", "silu"
    type_vocab_size: int = 2     # segment (token type) ids: 0 = sentence A, 1 = sentence B
    mask_prob: float = 0.15      # fraction of (non-special) positions selected for prediction
    mask_token_frac: float = 0.8  # of the selected: replaced by <mask> ...
    random_token_frac: float = 0.1  # ... or by a uniformly random token; the rest (0.1) keep their token
    nsp: bool = False            # also train next-sentence prediction on <cls> (inputs <cls> A <sep> B <sep>)
    eval_mask_seed: int = 0      # seed of the masks drawn in eval mode (re-seeded at each switch to eval mode)
    # Ids of the special tokens in the tokenizer the model was trained with; `lmlab train` sets them from the
    # tokenizer's <cls> <sep> <mask> <pad> (-1 = not set yet: the model cannot be built).
    cls_id: int = -1             # <cls>: first position; its hidden state summarises the input (NSP, classifiers)
    sep_id: int = -1             # <sep>: ends each segment
    mask_id: int = -1            # <mask>: replaces a selected token
    pad_id: int = 0              # <pad>: right padding of batched inputs; never attended to, never masked

    def __post_init__(self) -> None:
        check_sizes("BERT config", self, "vocab_size", "n_layer", "n_head", "n_embd", "block_size", "mlp_ratio",
                    "type_vocab_size")
        check_heads_divide("BERT config", self)
        if self.norm_position not in NORM_POSITIONS:
            raise LmlabError(f"BERT config: norm_position must be one of {NORM_POSITIONS}, got {self.norm_position!r}")
        need = 5 if self.nsp else 3  # room for the special tokens and at least one text token (per segment)
        if self.block_size < need:
            raise LmlabError(f"BERT config: block_size must be at least {need} (<cls>, <sep>s and text), "
                             f"got {self.block_size}")
        check_unit_interval("BERT config", self, "dropout")
        check_unit_interval("BERT config", self, "mask_prob", low_open=True)
        if not (0.0 <= self.mask_token_frac and 0.0 <= self.random_token_frac
                and self.mask_token_frac + self.random_token_frac <= 1.0):
            raise LmlabError("BERT config: mask_token_frac and random_token_frac must be ≥ 0 and sum to at most 1")
        for name in ("cls_id", "sep_id", "mask_id", "pad_id"):
            value = getattr(self, name)
            if not isinstance(value, int) or value >= self.vocab_size:
                raise LmlabError(f"BERT config: {name}={value!r} is not an id below vocab_size={self.vocab_size}")

    def block_config(self) -> GPTConfig:
        """The GPTConfig that shapes the shared transformer `Block`s (positions are BERT's own, not GPT's)."""
        return GPTConfig(n_layer=self.n_layer, n_head=self.n_head, n_embd=self.n_embd, block_size=self.block_size,
                         vocab_size=self.vocab_size, dropout=self.dropout, bias=self.bias,
                         norm_position=self.norm_position, activation=self.activation,
                         layer_norm_eps=self.layer_norm_eps, mlp_ratio=self.mlp_ratio)


# Named model settings of type `bert` (registered in lmlab.models.registry; trained by the recipe that names it in
# lmlab.recipes). bert-tiny: the shape of Turc et al.'s smallest BERTs scaled to a 2-core CPU.
BERT_PRESETS: dict[str, dict[str, Any]] = {
    "bert-tiny": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.0),
}


class PretrainingBatch(NamedTuple):
    """One batch of masked-LM (+ NSP) examples built from raw token windows (all tensors on the input's device)."""

    input_ids: torch.Tensor       # (B,T) int64, the masked input x̃
    token_type_ids: torch.Tensor  # (B,T) int64, 0 = segment A (and <cls>), 1 = segment B
    labels: torch.Tensor          # (B,T) int64, the original token at selected positions, -100 elsewhere
    nsp_labels: torch.Tensor | None  # (B,) int64, 0 = B follows A, 1 = B is another row's; None without NSP


# =========================================================================================================== BERT ===
class BERT(nn.Module):
    """Bidirectional encoder with a masked-LM head (and an optional next-sentence head). See the module docstring."""

    special_tokens = ("<cls>", "<sep>", "<mask>")  # `lmlab train` gives the tokenizer these
    batch_format = "windows"                      # random token windows, as the GPT; forward builds the examples

    def __init__(self, config: BERTConfig):
        super().__init__()
        unset = [n for n in ("cls_id", "sep_id", "mask_id") if getattr(config, n) < 0]
        if unset:
            raise LmlabError(f"BERT config: {', '.join(unset)} not set; they are the ids of the tokenizer's "
                             f"<cls> <sep> <mask> tokens (`lmlab train --model bert` sets them)")
        self.config = config
        D = config.n_embd
        self.wte = nn.Embedding(config.vocab_size, D)
        self.wpe = nn.Embedding(config.block_size, D)
        self.wtt = nn.Embedding(config.type_vocab_size, D)
        self.ln_emb = nn.LayerNorm(D, eps=config.layer_norm_eps, bias=config.bias)  # as BERT's embedding LayerNorm
        self.drop = nn.Dropout(config.dropout)
        block_config = config.block_config()
        self.blocks = nn.ModuleList(Block(block_config, i) for i in range(config.n_layer))
        # Post-LN blocks already end in a LayerNorm; pre-LN ones need a final one (as in GPT-2).
        self.ln_f = (nn.LayerNorm(D, eps=config.layer_norm_eps, bias=config.bias)
                     if config.norm_position == "pre" else nn.Identity())
        # MLM head: transform, then a decoder that shares its matrix with wte (plus an output bias), as BERT.
        self.mlm_dense = nn.Linear(D, D, bias=config.bias)
        self.mlm_act = nn.GELU()
        self.mlm_ln = nn.LayerNorm(D, eps=config.layer_norm_eps, bias=config.bias)
        self.mlm_bias = nn.Parameter(torch.zeros(config.vocab_size))
        if config.nsp:
            self.pooler = nn.Linear(D, D, bias=config.bias)
            self.nsp_head = nn.Linear(D, 2, bias=config.bias)
        self.apply(GPT._init_weights)  # N(0, 0.02) weights, zero biases (BERT's initializer_range is 0.02 too)
        self._eval_generator: torch.Generator | None = None

    def train(self, mode: bool = True) -> "BERT":
        # Entering eval mode restarts the eval masks, so every evaluation of the same data masks it the same way.
        if not mode:
            self._eval_generator = None
        return super().train(mode)

    # --- the encoder ----------------------------------------------------------------------------------------------
    def encode(self, idx: torch.Tensor, attention_mask: torch.Tensor | None = None, *,
               token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Final hidden states (B,T,n_embd) of inputs idx (B,T) int64 (the caller puts <cls> first and <sep> where
        wanted; position 0's state is the [CLS] vector). attention_mask: (B,T), 1 = real token, 0 = padding: no
        position attends to padding, so the states of real tokens do not depend on it. token_type_ids: (B,T)
        segment ids (default all 0)."""
        c = self.config
        B, T = idx.shape
        if T > c.block_size:
            raise LmlabError(f"input of {T} tokens is longer than the model's context (block_size {c.block_size}); "
                             "shorten the text")
        pos = torch.arange(T, device=idx.device)
        types = token_type_ids if token_type_ids is not None else torch.zeros_like(idx)
        x = self.drop(self.ln_emb(self.wte(idx) + self.wpe(pos) + self.wtt(types)))
        mask = None
        if attention_mask is not None:
            keep = attention_mask.to(device=idx.device, dtype=torch.bool)
            # A row of padding only would attend to nothing (softmax of all -inf = NaN): let it see itself instead.
            keep = keep | ~keep.any(dim=-1, keepdim=True)
            mask = keep[:, None, None, :]  # (B,1,1,T): every query may attend to every real key
        for block in self.blocks:
            x = block(x, None, mask, False, None)
        return self.ln_f(x)

    def mlm_logits(self, idx: torch.Tensor, attention_mask: torch.Tensor | None = None, *,
                   token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Masked-LM logits (B,T,vocab_size) at every position of an input the caller built (see `encode`)."""
        return self._mlm_head(self.encode(idx, attention_mask, token_type_ids=token_type_ids))

    def _mlm_head(self, h: torch.Tensor) -> torch.Tensor:
        h = self.mlm_ln(self.mlm_act(self.mlm_dense(h)))
        return F.linear(h, self.wte.weight, self.mlm_bias)

    def nsp_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Next-sentence logits (B,2) from hidden states h (B,T,D) (reads h[:, 0], the <cls> state; nsp=True only).
        Class 0 = B follows A, 1 = B is random."""
        if not self.config.nsp:
            raise LmlabError("this BERT was trained without next-sentence prediction (nsp=false)")
        return self.nsp_head(torch.tanh(self.pooler(h[:, 0])))

    # --- size -------------------------------------------------------------------------------------------------------
    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count; non_embedding leaves out the lookup-only tables (positions, token types). The token
        embedding stays: it is also the MLM decoder, a matmul at every position."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.wpe.weight.numel() + self.wtt.weight.numel()
        return n

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per input token, counted as `GPT.flops_per_token` (PaLM appendix B): 6·N for the weight
        matmuls (the MLM head decodes every position, so its decoder counts) + 12·L·H·Q·T for attention scores and
        weighted sums (T = seq_len, default block_size). Used for the trainer's MFU."""
        c = self.config
        T = seq_len or c.block_size
        return 6 * self.num_params(non_embedding=True) + 12 * c.n_layer * c.n_head * (c.n_embd // c.n_head) * T

    # --- pre-training -----------------------------------------------------------------------------------------------
    def pretraining_batch(self, x: torch.Tensor, generator: torch.Generator | None = None) -> PretrainingBatch:
        """Masked-LM (+ NSP) examples from raw token windows x (B, ≥ block_size−2) int64, as the module docstring
        describes. Random draws come from `generator` (default: torch's global RNG of x's device)."""
        c = self.config
        B = x.shape[0]
        dev = x.device
        cls = torch.full((B, 1), c.cls_id, dtype=x.dtype, device=dev)
        sep = torch.full((B, 1), c.sep_id, dtype=x.dtype, device=dev)
        nsp_labels = None
        if c.nsp:
            n = min(x.shape[1], c.block_size - 3)
            half = n // 2
            a, b = x[:, :half], x[:, half:n]
            swap = torch.rand(B, generator=generator, device=dev) < 0.5
            b = torch.where(swap[:, None], b.roll(1, dims=0), b)  # another row's second half: "not next"
            nsp_labels = swap.long()
            ids = torch.cat([cls, a, sep, b, sep], dim=1)
            types = torch.cat([torch.zeros(B, half + 2, dtype=torch.long, device=dev),
                               torch.ones(B, n - half + 1, dtype=torch.long, device=dev)], dim=1)
        else:
            n = min(x.shape[1], c.block_size - 2)
            ids = torch.cat([cls, x[:, :n], sep], dim=1)
            types = torch.zeros_like(ids)
        ids = ids.long()
        eligible = ~(torch.isin(ids, torch.tensor([c.cls_id, c.sep_id, c.pad_id], device=dev)))
        selected = (torch.rand(ids.shape, generator=generator, device=dev) < c.mask_prob) & eligible
        how = torch.rand(ids.shape, generator=generator, device=dev)
        to_mask = selected & (how < c.mask_token_frac)
        to_random = selected & (how >= c.mask_token_frac) & (how < c.mask_token_frac + c.random_token_frac)
        random_ids = torch.randint(0, c.vocab_size, ids.shape, generator=generator, device=dev)
        labels = torch.where(selected, ids, torch.full_like(ids, -100))
        inputs = torch.where(to_mask, torch.full_like(ids, c.mask_id), ids)
        inputs = torch.where(to_random, random_ids, inputs)
        return PretrainingBatch(inputs, types, labels, nsp_labels)

    def _eval_rng(self, device: torch.device) -> torch.Generator:
        if self._eval_generator is None or self._eval_generator.device != device:
            self._eval_generator = torch.Generator(device=device).manual_seed(self.config.eval_mask_seed)
        return self._eval_generator

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-training step: (MLM logits (B,T,vocab_size) of the built examples, loss in nats) for raw token
        windows x (B, block_size) from the trainer. y (the trainer's shifted windows) only says "training
        call"; its values are not used, since the targets are x's own masked tokens. Without y this raises
        LmlabError: a BERT is not a left-to-right LM (use `mlm_logits` / `encode` for predictions)."""
        if y is None:
            raise LmlabError(NOT_A_CAUSAL_LM)
        batch = self.pretraining_batch(x, None if self.training else self._eval_rng(x.device))
        h = self.encode(batch.input_ids, token_type_ids=batch.token_type_ids)
        logits = self._mlm_head(h)
        n_selected = (batch.labels != -100).sum()
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), batch.labels.view(-1), ignore_index=-100,
                               reduction="sum") / n_selected.clamp(min=1)
        if batch.nsp_labels is not None:
            loss = loss + F.cross_entropy(self.nsp_logits(h).float(), batch.nsp_labels)
        return logits, loss
