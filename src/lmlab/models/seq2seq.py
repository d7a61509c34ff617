"""An encoder-decoder transformer (Vaswani et al. 2017) for sequence-to-sequence tasks, built from the GPT's parts.

Layout:

    source (B,S) ──► wte + positions ─► dropout ─► encoder: n_enc_layer × gpt.Block (bidirectional, padding mask)
                 ──► enc_ln ─► memory (B,S,D)
    <bos> target (B,T) ──► wte + positions ─► dropout ─► decoder: n_dec_layer × DecoderLayer
                 ──► dec_ln ─► lm_head (tied to wte) ─► logits (B,T,V)

    DecoderLayer (pre-LN, Vaswani's order):  x = x + self_attn(ln_1(x))          causal; GPT's attention module
                                             x = x + cross_attn(ln_x(x), memory)  `CrossAttention` below
                                             x = x + mlp(ln_2(x))                 GPT's MLP module

One token embedding serves the encoder input, the decoder input and the output projection (tied), as in the 2017
Transformer with a shared source/target vocabulary.

Objectives (both read whole documents: `batch_format = "documents"`, so the normal trainer gives one document per
batch row, right-padded with <pad>; loss = mean cross-entropy in nats over target tokens, padding ignored):

- `translation`: each document is `source<sep>target`. forward splits it at the first <sep>: the encoder reads the
  source, the decoder reads `<bos> target` and predicts `target <eos>`:
      L = −(1/N) Σ_rows Σ_t log p(y_t | y_<t, source)
- `span_corruption` (T5, Raffel et al. 2020 §3.1.4): a batch row is plain text: a random block_size window of the
  token stream (`span_batches="windows"`, the default: works on any corpus) or one document (`"documents"`).
  About `noise_density` (15%) of its tokens, in spans of mean length `mean_span_length` (3), are dropped from the
  input, each span replaced by one sentinel token (<sentinel0>, <sentinel1>, ... in order); the target lists each
  sentinel followed by the tokens it replaced, then <eos>:  input "Thank you <sentinel0> me to your party <sentinel1> week."
                            target "<sentinel0> for inviting <sentinel1> last <eos>"
  Same loss as above on that target. In eval mode the corruption is seeded, so val losses are comparable.

Special token ids (pad, bos, eos, sep, sentinels) are config fields; `lmlab train` fills them from the tokenizer
(`lmlab.training.run`), which must have the tokens in `Seq2Seq.special_tokens`.

Decoding (greedy and beam search, with the encoder output computed once and a decoder KV cache) lives in
`lmlab.generation.seq2seq`; this module offers the pieces it needs: `encode` and `decode`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from lmlab.errors import LmlabError
from lmlab.models.config_dict import ConfigDictMixin, check_heads_divide, check_sizes, check_unit_interval
from lmlab.models.gpt import GPT, Block, GPTConfig, KVCache, sinusoidal_table

OBJECTIVES = ("translation", "span_corruption")
POS_EMBEDDINGS = ("learned", "sinusoidal")
N_SENTINELS = 32  # fixed: the sentinel tokens are part of the vocabulary, so their number cannot vary per run
SEP_TOKEN = "<sep>"
SENTINEL_TOKENS = tuple(f"<sentinel{i}>" for i in range(N_SENTINELS))


# ========================================================================================================= config ===
@dataclass
class Seq2SeqConfig(ConfigDictMixin):
    """Shape, objective and special token ids of an encoder-decoder transformer (model type `seq2seq`)."""

    config_label = "seq2seq config"  # names this config in error messages

    vocab_size: int = 4096        # rows of the shared embedding / output layer (the trainer sets the tokenizer's)
    n_enc_layer: int = 3          # encoder blocks (bidirectional self-attention + MLP)
    n_dec_layer: int = 3          # decoder layers (causal self-attention + cross-attention + MLP)
    n_head: int = 4               # attention heads in every attention layer; n_embd must be divisible by it
    n_embd: int = 128             # model width D
    block_size: int = 64          # most tokens per side (source, decoder input); also the longest training
                                  # document (source<sep>target) the trainer hands over: longer ones are cut
    dropout: float = 0.1          # dropout on embeddings, attention weights and residual branches (training only)
    bias: bool = True             # biases in Linear layers and LayerNorms
    mlp_ratio: int = 4            # MLP hidden width = mlp_ratio · n_embd
    activation: str = "gelu"      # MLP nonlinearity: gelu | relu | silu (as GPTConfig)
    pos_embedding: str = "learned"  # "learned" (one table per side) or "sinusoidal" (fixed, Vaswani 2017)
    layer_norm_eps: float = 1e-5  # LayerNorm epsilon
    objective: str = "translation"  # "translation" (source<sep>target documents) | "span_corruption" (T5)
    noise_density: float = 0.15   # span_corruption: share of a document's tokens that are masked (T5: 0.15)
    mean_span_length: float = 3.0  # span_corruption: mean length of a masked span in tokens (T5: 3)
    span_batches: str = "windows"  # span_corruption rows: "windows" (random block_size windows of the token
                                   # stream: any text, as T5 packs its examples) or "documents" (one document per
                                   # row, cut at block_size: e.g. paragraphs prepared with --split-blank-lines)
    # Special token ids, filled from the tokenizer at train time (defaults: a tokenizer trained with
    # Seq2Seq.special_tokens, whose ids follow <pad> <unk> <bos> <eos> = 0..3).
    pad_id: int = 0               # padding of batch rows (ignored by attention and loss)
    bos_id: int = 2               # first decoder input token
    eos_id: int = 3               # ends every target
    sep_id: int = 4               # separates source and target in a translation document
    sentinel_ids: tuple[int, ...] = field(default_factory=lambda: tuple(range(5, 5 + N_SENTINELS)))
                                  # span_corruption: <sentinel0>, <sentinel1>, ... in order

    def __post_init__(self) -> None:
        check_sizes("seq2seq config", self, "vocab_size", "n_enc_layer", "n_dec_layer", "n_head", "n_embd",
                    "block_size", "mlp_ratio")
        check_heads_divide("seq2seq config", self)
        if self.block_size < 2:
            raise LmlabError("seq2seq config: block_size must be at least 2 (<bos> and one token)")
        if self.objective not in OBJECTIVES:
            raise LmlabError(f"seq2seq config: objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.span_batches not in ("windows", "documents"):
            raise LmlabError(f"seq2seq config: span_batches must be 'windows' or 'documents', got {self.span_batches!r}")
        if self.pos_embedding not in POS_EMBEDDINGS:
            raise LmlabError(f"seq2seq config: pos_embedding must be one of {POS_EMBEDDINGS}, "
                             f"got {self.pos_embedding!r}")
        check_unit_interval("seq2seq config", self, "dropout")
        check_unit_interval("seq2seq config", self, "noise_density", low_open=True)
        if not float(self.mean_span_length) >= 1.0:
            raise LmlabError(f"seq2seq config: mean_span_length must be ≥ 1, got {self.mean_span_length!r}")
        self.sentinel_ids = tuple(int(i) for i in self.sentinel_ids)  # JSON gives a list; keep one type
        ids = {"pad_id": self.pad_id, "bos_id": self.bos_id, "eos_id": self.eos_id, "sep_id": self.sep_id}
        for name, value in ids.items():
            if not isinstance(value, int) or not 0 <= value < self.vocab_size:
                raise LmlabError(f"seq2seq config: {name}={value!r} is not an id of the vocabulary "
                                 f"(0..{self.vocab_size - 1})")
        if not self.sentinel_ids or not all(0 <= i < self.vocab_size for i in self.sentinel_ids):
            raise LmlabError(f"seq2seq config: sentinel_ids must be ids of the vocabulary (0..{self.vocab_size - 1})")

    def block_config(self) -> GPTConfig:
        """The GPTConfig that shapes the reused GPT blocks (pre-LN, same width, heads, MLP and dropout)."""
        return GPTConfig(n_layer=max(self.n_enc_layer, self.n_dec_layer), n_head=self.n_head, n_embd=self.n_embd,
                         block_size=self.block_size, vocab_size=self.vocab_size, dropout=self.dropout,
                         bias=self.bias, pos_embedding="learned", norm_position="pre", activation=self.activation,
                         layer_norm_eps=self.layer_norm_eps, mlp_ratio=self.mlp_ratio)

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head


# Named model settings (lmlab.models.registry); the first is the type's default. Training settings of the
# presets are in the recipes that name them (lmlab.recipes).
SEQ2SEQ_PRESETS: dict[str, dict[str, Any]] = {
    # Tatoeba-sized translation in a short CPU run (docs/models-seq2seq.md has the timings).
    "seq2seq-tiny": dict(n_enc_layer=3, n_dec_layer=3, n_head=4, n_embd=128, block_size=64, dropout=0.1),
}


# ================================================================================================ cross-attention ===
class CrossAttention(nn.Module):
    """Multi-head attention from decoder positions (queries) to encoder outputs (keys and values).

    The keys/values depend only on the encoder output, so a decoder step reuses them: `memory_kv(memory)` computes
    them once per source, `forward(x, kv, keep)` attends. keep: (B,S) bool, True at real (non-pad) source tokens.
    """

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.n_head, self.head_dim = config.n_head, config.head_dim
        self.dropout = config.dropout
        self.q_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.kv_proj = nn.Linear(config.n_embd, 2 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def memory_kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(k, v), each (B,H,S,d), of the encoder output memory (B,S,D)."""
        B, S, D = memory.shape
        k, v = self.kv_proj(memory).split(D, dim=2)
        return (k.view(B, S, self.n_head, self.head_dim).transpose(1, 2),
                v.view(B, S, self.n_head, self.head_dim).transpose(1, 2))

    def forward(self, x: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor], keep: torch.Tensor) -> torch.Tensor:
        """x (B,T,D) decoder states → (B,T,D) after attending over the source."""
        B, T, D = x.shape
        q = self.q_proj(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, kv[0], kv[1], attn_mask=keep[:, None, None, :],
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).contiguous().view(B, T, D)))


class DecoderLayer(nn.Module):
    """Causal self-attention and MLP of a GPT block, with cross-attention between them (Vaswani's order)."""

    def __init__(self, config: Seq2SeqConfig, layer: int):
        super().__init__()
        # The GPT block supplies ln_1 + causal attention (with KV cache) and ln_2 + MLP; its forward (attention
        # then MLP) has no place for cross-attention, so its sub-modules are called in order here.
        self.block = Block(config.block_config(), layer)
        self.ln_x = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias)
        self.cross = CrossAttention(config)

    def forward(self, x, cross_kv, keep, mask, is_causal, kv_cache):
        b = self.block
        x = x + b.attn(b.ln_1(x), None, mask, is_causal, kv_cache)
        x = x + self.cross(self.ln_x(x), cross_kv, keep)
        return x + b.mlp(b.ln_2(x))


# ================================================================================================ encoder output ===
@dataclass
class EncoderOutput:
    """What the decoder needs of a batch of sources, computed once per source (decoding reuses it every step).

    memory (B,S,D) encoder states; keep (B,S) bool, True at real source tokens; cross_kv: per decoder layer the
    cross-attention keys/values (B,H,S,d) of memory.
    """

    memory: torch.Tensor
    keep: torch.Tensor
    cross_kv: list[tuple[torch.Tensor, torch.Tensor]]

    def select(self, index: torch.Tensor) -> "EncoderOutput":
        """Rows `index` (e.g. one source repeated for every beam)."""
        return EncoderOutput(self.memory.index_select(0, index), self.keep.index_select(0, index),
                             [(k.index_select(0, index), v.index_select(0, index)) for k, v in self.cross_kv])


# ========================================================================================================= model ===
class Seq2Seq(nn.Module):
    """Encoder-decoder transformer (type `seq2seq`); see the module docstring for layout and objectives."""

    batch_format = "documents"  # the trainer hands over whole documents, one per batch row (see __init__)
    special_tokens = (SEP_TOKEN,) + SENTINEL_TOKENS  # a tokenizer trained for this model gets these

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.config = config
        # Translation needs whole pairs; span corruption reads any text, by default as random windows.
        if config.objective == "span_corruption" and config.span_batches == "windows":
            self.batch_format = "windows"
        block_cfg = config.block_config()
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        if config.pos_embedding == "learned":
            self.enc_wpe = nn.Embedding(config.block_size, config.n_embd)
            self.dec_wpe = nn.Embedding(config.block_size, config.n_embd)
        else:
            self.register_buffer("pos_table", sinusoidal_table(config.block_size, config.n_embd), persistent=False)
        self.drop = nn.Dropout(config.dropout)
        self.encoder = nn.ModuleList(Block(block_cfg, i) for i in range(config.n_enc_layer))
        self.enc_ln = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias)
        self.decoder = nn.ModuleList(DecoderLayer(config, i) for i in range(config.n_dec_layer))
        self.dec_ln = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # one matrix reads tokens in (both sides) and writes them out
        self.apply(GPT._init_weights)
        # As GPT-2: residual output projections scaled by 1/√(2·layers) so the residual stream's variance does not
        # grow with depth (the decoder adds three branches per layer; two is close enough).
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                depth = config.n_enc_layer if name.startswith("encoder") else config.n_dec_layer
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * depth))

    # --- pieces used by training and decoding -------------------------------------------------------------------
    def _embed(self, idx: torch.Tensor, table: str, start: int = 0) -> torch.Tensor:
        T = idx.shape[1]
        if start + T > self.config.block_size:
            raise LmlabError(f"a sequence of {start + T} tokens is longer than the model's block_size "
                             f"{self.config.block_size}; shorten the input")
        pos = torch.arange(start, start + T, device=idx.device)
        x = self.wte(idx)
        x = x + (getattr(self, table)(pos) if self.config.pos_embedding == "learned" else self.pos_table[pos])
        return self.drop(x)

    def encode(self, src: torch.Tensor) -> EncoderOutput:
        """Encoder pass over source ids src (B,S) int64, right-padded with pad_id. Rows with no real token (empty
        sources) keep their first position visible so attention never sees an empty set of keys."""
        keep = src != self.config.pad_id
        keep[:, 0] |= ~keep.any(dim=1)
        x = self._embed(src, "enc_wpe")
        # (B,1,1,S) broadcast over heads and queries; a padded query still sees the real keys of its row.
        mask = keep[:, None, None, :]
        for block in self.encoder:
            x = block(x, None, mask, False, None)
        memory = self.enc_ln(x)
        return EncoderOutput(memory, keep, [layer.cross.memory_kv(memory) for layer in self.decoder])

    def decode(self, tgt_in: torch.Tensor, enc: EncoderOutput, *, kv_cache: KVCache | None = None,
               last_only: bool = False) -> torch.Tensor:
        """Decoder logits (B,T,V) for decoder inputs tgt_in (B,T) (`<bos> y_1 … y_{T-1}`) given the encoded
        source. With kv_cache (a `gpt.KVCache` with n_dec_layer layers) the T new positions follow the cached ones,
        so one-token steps give the same logits as a full pass. last_only: logits of the last position (B,1,V)."""
        past = kv_cache.length if kv_cache is not None else 0
        T = tgt_in.shape[1]
        x = self._embed(tgt_in, "dec_wpe", past)
        mask, is_causal = GPT._attention_mask(None, past, T, tgt_in.device)  # causal, aware of the cached past
        for layer, kv in zip(self.decoder, enc.cross_kv):
            x = layer(x, kv, enc.keep, mask, is_causal, kv_cache)
        if kv_cache is not None:
            kv_cache.advance(T)
        x = self.dec_ln(x)
        if last_only:
            x = x[:, -1:, :]
        return self.lm_head(x)

    # --- training -------------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B,L) int64: one document per row, right-padded with pad_id (the trainer's `documents` batches;
        `targets` is the same tensor and unused). Returns (logits (B,T,V) of the decoder, mean cross-entropy in nats
        over target tokens) for the configured objective (module docstring)."""
        if self.config.objective == "translation":
            src, tgt_in, labels = self.translation_batch(x)
        else:
            src, tgt_in, labels = self.span_corruption_batch(x)
        logits = self.decode(tgt_in, self.encode(src))
        loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=-100)
        return logits, loss

    def translation_batch(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Split documents `source<sep>target` (B,L) into encoder input (B,S), decoder input `<bos> target` (B,T)
        and labels `target <eos>` (B,T) with -100 at padding. Raises LmlabError for a row without <sep>."""
        c = self.config
        B, L = x.shape
        is_sep = x == c.sep_id
        if not bool(is_sep.any(dim=1).all()):
            row = int((~is_sep.any(dim=1)).nonzero()[0])
            raise LmlabError(f"a translation document (batch row {row}) has no <sep> (id {c.sep_id}): each document "
                             "must be 'source<sep>target' (make the data with `lmlab data prepare-parallel`), and "
                             f"its source must be shorter than block_size={c.block_size}. To translate a text, use "
                             "`lmlab translate` (lmlab.generation.seq2seq.translate), not sample/score")
        sep = is_sep.int().argmax(dim=1)                       # first <sep> of each row
        length = (x != c.pad_id).sum(dim=1)                    # right-padded: real tokens come first
        tgt_len = (length - sep - 1).clamp(min=0)
        ar = torch.arange(L, device=x.device)
        S = max(int(sep.max()), 1)
        src = torch.where(ar[None, :S] < sep[:, None], x[:, :S], c.pad_id)
        T = int(tgt_len.max()) + 1
        tgt = x.gather(1, (sep[:, None] + 1 + ar[None, :T]).clamp(max=L - 1))
        real = ar[None, :T] < tgt_len[:, None]
        bos = torch.full((B, 1), c.bos_id, dtype=x.dtype, device=x.device)
        tgt_in = torch.cat([bos, torch.where(real, tgt, c.pad_id)[:, :T - 1]], dim=1)
        labels = torch.where(real, tgt, -100)
        # <eos> after the target, except where the trainer may have cut the document at block_size: its real
        # end is unknown, so no end is taught there.
        cut = length >= c.block_size
        labels[torch.arange(B, device=x.device), tgt_len.clamp(max=T - 1)] = torch.where(
            cut, torch.full_like(tgt_len, -100), torch.full_like(tgt_len, c.eos_id))
        return src, tgt_in, labels

    def span_corruption_batch(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """T5 span corruption of documents x (B,L): (encoder input (B,S), decoder input (B,T), labels (B,T))."""
        c = self.config
        # Training draws from torch's global RNG (seeded and checkpointed by the trainer); eval is seeded so
        # every evaluation corrupts the val documents the same way.
        gen = None if self.training else torch.Generator().manual_seed(0)
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
        rng = np.random.default_rng(seed)
        rows = x.cpu().numpy()
        srcs, tgts = [], []
        for row in rows:
            tokens = row[row != c.pad_id]  # right padding removed (<pad> never occurs in text)
            src, tgt = corrupt_spans(tokens, rng, noise_density=c.noise_density,
                                     mean_span_length=c.mean_span_length, sentinel_ids=c.sentinel_ids)
            srcs.append(src)
            tgts.append(np.concatenate([[c.bos_id], tgt, [c.eos_id]]))
        src = _pad_rows(srcs, c.pad_id, x.device)
        tgt = _pad_rows(tgts, c.pad_id, x.device)
        labels = tgt[:, 1:].masked_fill(tgt[:, 1:] == c.pad_id, -100)
        return src, tgt[:, :-1], labels

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count (the tied embedding once); non_embedding leaves out the position tables."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding and self.config.pos_embedding == "learned":
            n -= self.enc_wpe.weight.numel() + self.dec_wpe.weight.numel()
        return n


def _pad_rows(rows: list[np.ndarray], pad_id: int, device) -> torch.Tensor:
    width = max(1, max(len(r) for r in rows))
    out = np.full((len(rows), width), pad_id, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return torch.from_numpy(out).to(device)


# ================================================================================================ span corruption ===
def random_spans_noise_mask(length: int, rng: np.random.Generator, *, noise_density: float,
                            mean_span_length: float, max_spans: int) -> np.ndarray:
    """Boolean mask (length,) with about noise_density·length True entries in ≈ length·density/mean_span_length
    spans (at most max_spans), as T5's `random_spans_noise_mask`: non-noise and noise runs alternate, starting
    with non-noise, and the run lengths are random partitions of the two counts. Lengths < 2 have no noise."""
    if length < 2:
        return np.zeros(length, dtype=bool)
    n_noise = min(max(int(round(length * noise_density)), 1), length - 1)
    n_spans = min(max(int(round(n_noise / mean_span_length)), 1), max_spans, n_noise, length - n_noise)

    def partition(total: int) -> np.ndarray:
        # n_spans positive parts summing to total: cut [1, total) at n_spans−1 distinct random points.
        cuts = np.sort(rng.choice(np.arange(1, total), size=n_spans - 1, replace=False)) if n_spans > 1 else []
        return np.diff(np.concatenate([[0], cuts, [total]])).astype(np.int64)

    noise_lengths, keep_lengths = partition(n_noise), partition(length - n_noise)
    runs = np.stack([keep_lengths, noise_lengths], axis=1).reshape(-1)
    return np.repeat(np.tile([False, True], n_spans), runs)


def corrupt_spans(tokens: np.ndarray, rng: np.random.Generator, *, noise_density: float, mean_span_length: float,
                  sentinel_ids: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(input, target) of T5 span corruption for one document's token ids: each noise span is replaced by the
    next sentinel in the input; the target is each sentinel followed by the span it replaced (no <bos>/<eos>)."""
    tokens = np.asarray(tokens, dtype=np.int64)
    noise = random_spans_noise_mask(len(tokens), rng, noise_density=noise_density,
                                    mean_span_length=mean_span_length, max_spans=len(sentinel_ids))
    src, tgt = [], []
    span = -1
    for i, (tok, is_noise) in enumerate(zip(tokens.tolist(), noise.tolist())):
        if is_noise:
            if i == 0 or not noise[i - 1]:
                span += 1
                src.append(sentinel_ids[span])
                tgt.append(sentinel_ids[span])
            tgt.append(tok)
        else:
            src.append(tok)
    return np.asarray(src, dtype=np.int64), np.asarray(tgt, dtype=np.int64)
