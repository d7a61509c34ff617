"""word2vec (Mikolov et al. 2013): skip-gram with negative sampling (SGNS) and CBOW, in PyTorch.

It trains through the ordinary training loop (`lmlab train --model word2vec`): the loop hands `forward` a batch of
token windows (B, block_size) and the model turns it into training pairs itself.

From a batch to pairs:
  1. Subsampling of frequent words (Mikolov et al. 2013b, eq. 5): each occurrence of word w is discarded with
     probability 1 − √(t / f(w)) (kept with min(1, √(t / f(w)))), f(w) = #(w) / Σ #(words), t = `subsample`
     (1e-4; 0 turns it off). Only while training (`model.train()`); evaluation keeps every word.
  2. Non-words (punctuation, whitespace, special tokens) and discarded words are removed from each row, so
     windows are counted in *kept words*, as in the original C code; `<eos>` ends a document and no pair spans it.
  3. Skip-gram: every (centre, context) pair at most `window` words apart, both directions.
     CBOW: each centre with the mean of the in-vectors of its ≤ 2·window context words.
     With `shrink_window` (default, as the C tool and gensim, which draw each centre's window b uniformly from
     1..window) a pair d words apart is used with probability (window − d + 1) / window while training, so near
     words weigh more.
  4. k = `negatives` noise words per pair, drawn with replacement from the unigram distribution raised to 0.75,
     P_n(w) ∝ #(w)^0.75 over words (`noise_power`).

Objective (mean over the pairs of the batch, in nats), with v = in-vectors, u = out-vectors, σ the logistic function:
    SGNS:  −log σ(u_o · v_c) − Σ_{i=1..k} log σ(−u_{n_i} · v_c)        (c centre, o context, n_i ~ P_n)
    CBOW:  −log σ(u_c · h)   − Σ_{i=1..k} log σ(−u_{n_i} · h),  h = mean of v over the context words of centre c
The word vectors are the in-vectors v (Mikolov's choice; gensim's `wv`).

Unigram counts #(w) and the word mask come from the whole train split: `lmlab train` calls
`fit_from_tokens(tokens, tokenizer)` before the first step. Embedding rows are only ever indexed (never a dense
(V, d) product), so the work per step scales with the pairs in the batch, not with the vocabulary; the trainer's
AdamW needs dense gradients, hence `nn.Embedding(sparse=False)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from lmlab.errors import LmlabError
from lmlab.models.config_dict import ConfigDictMixin
from lmlab.models.embeddings.base import EmbeddingModel, check_common
from lmlab.models.embeddings.windows import batch_compact, word_mask_of

ARCHITECTURES = ("skipgram", "cbow")


@dataclass
class Word2VecConfig(ConfigDictMixin):
    """word2vec settings (names as in Mikolov's C tool where one exists)."""

    vocab_size: int = 1024  # ids of the tokenizer (set from it by `lmlab train`)
    dim: int = 100  # vector size (C tool: -size)
    window: int = 5  # pairs at most this many kept words apart (C tool: -window)
    shrink_window: bool = True  # C tool / gensim: a pair d apart is used with probability (window − d + 1) / window
    architecture: str = "skipgram"  # skipgram (SGNS) | cbow (C tool: -cbow 0/1)
    negatives: int = 5  # noise words per pair (C tool: -negative)
    noise_power: float = 0.75  # P_n(w) ∝ #(w)^noise_power
    subsample: float = 1e-4  # t of the subsampling formula; 0 disables (C tool: -sample)
    block_size: int = 128  # tokens per training row handed over by the trainer

    def __post_init__(self) -> None:
        check_common(self)
        if self.architecture not in ARCHITECTURES:
            raise LmlabError(f"architecture must be one of {', '.join(ARCHITECTURES)} (got {self.architecture!r})")
        if self.negatives < 1:
            raise LmlabError(f"negatives must be ≥ 1 (got {self.negatives})")
        if self.subsample < 0:
            raise LmlabError(f"subsample must be ≥ 0 (got {self.subsample}; 0 disables it)")


class Word2Vec(EmbeddingModel):
    """Skip-gram / CBOW with negative sampling. `forward(idx, targets)` → (None, loss); `targets` is ignored (the
    pairs come from `idx` itself). Parameters: in_embed, out_embed (V, dim). Buffers: counts (V,) unigram counts of
    the train split, word_mask (V,), eos_id (1,) (−1 when the tokenizer has none)."""

    def __init__(self, config: Word2VecConfig):
        super().__init__(config.vocab_size)
        self.config = config
        self.in_embed = nn.Embedding(config.vocab_size, config.dim)
        self.out_embed = nn.Embedding(config.vocab_size, config.dim)
        # Mikolov's initialisation: small uniform in-vectors, zero out-vectors (all scores start at 0, loss log 2·(k+1)).
        nn.init.uniform_(self.in_embed.weight, -0.5 / config.dim, 0.5 / config.dim)
        nn.init.zeros_(self.out_embed.weight)
        self.register_buffer("counts", torch.zeros(config.vocab_size))
        self.register_buffer("eos_id", torch.full((1,), -1, dtype=torch.long))  # (1,): safetensors-friendly

    def word_vectors(self) -> torch.Tensor:
        return self.in_embed.weight.detach()

    def fit_from_tokens(self, tokens: np.ndarray, tokenizer, *, progress: bool = False) -> dict:
        """Record the unigram counts (V,) of the (N,) train tokens, the word mask and `<eos>` id (the noise and
        subsampling distributions). Called once before gradient training; returns {words, vocabulary}."""
        V = self.config.vocab_size
        mask = word_mask_of(tokenizer)
        if len(mask) > V:
            raise LmlabError(f"the tokenizer has {len(mask)} ids but the model's vocab_size is {V}")
        mask = np.pad(mask, (0, V - len(mask)))
        counts = np.bincount(np.asarray(tokens, dtype=np.int64), minlength=V)[:V]
        self.counts.copy_(torch.from_numpy(counts.astype(np.float32)))
        self.word_mask.copy_(torch.from_numpy(mask))
        self.eos_id.fill_(tokenizer.eos_id if tokenizer.eos_id is not None else -1)
        return {"words": int(counts[mask].sum()), "vocabulary": int((counts[mask] > 0).sum())}

    # --- distributions from the counts -----------------------------------------------------------------------
    def _word_counts(self) -> torch.Tensor:
        return self.counts * self.word_mask

    def noise_distribution(self) -> torch.Tensor:
        """(V,) P_n(w) ∝ #(w)^0.75 over words (uniform over words when no counts were recorded)."""
        c = self._word_counts()
        w = c.clamp(min=0) ** self.config.noise_power
        if not bool(w.sum() > 0):
            w = self.word_mask.float() if bool(self.word_mask.any()) else torch.ones_like(c)
        return w / w.sum()

    def keep_probability(self) -> torch.Tensor:
        """(V,) min(1, √(t / f(w))), the chance an occurrence of w survives subsampling (1 when t = 0)."""
        c = self._word_counts()
        if self.config.subsample <= 0:
            return torch.ones_like(c)
        f = c / c.sum().clamp(min=1)
        return torch.sqrt(self.config.subsample / f.clamp(min=1e-30)).clamp(max=1.0)

    # --- training ----------------------------------------------------------------------------------------------
    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """idx (B, T) token ids → (None, mean negative-sampling loss in nats per pair). targets are not used."""
        keep = self.word_mask[idx]
        if self.training and self.config.subsample > 0:
            keep = keep & (torch.rand(idx.shape, device=idx.device) < self.keep_probability()[idx])
        words, valid, doc = batch_compact(idx, keep, self.eos_id)
        if self.config.architecture == "skipgram":
            centres, contexts = self._skipgram_pairs(words, valid, doc)
            if centres.numel() == 0:
                return None, self._zero_loss()
            return None, self._negative_sampling_loss(self.in_embed(centres), contexts)
        h, centres = self._cbow_contexts(words, valid, doc)
        if centres.numel() == 0:
            return None, self._zero_loss()
        return None, self._negative_sampling_loss(h, centres)

    def _skipgram_pairs(self, words, valid, doc) -> tuple[torch.Tensor, torch.Tensor]:
        """(P,) centre and (P,) context ids: every pair ≤ window apart in a row, same document, both directions."""
        centres, contexts = [], []
        for d in range(1, min(self.config.window, words.shape[1] - 1) + 1):
            ok = self._pair_mask(valid, doc, d)
            left, right = words[:, :-d][ok], words[:, d:][ok]
            centres += [left, right]
            contexts += [right, left]
        if not centres:
            return words.new_zeros(0), words.new_zeros(0)
        return torch.cat(centres), torch.cat(contexts)

    def _pair_mask(self, valid, doc, d: int) -> torch.Tensor:
        """(B, T − d) bool: positions i, i + d are both kept words of one document (and survive window shrinking)."""
        ok = valid[:, :-d] & valid[:, d:] & (doc[:, :-d] == doc[:, d:])
        W = self.config.window
        if self.training and self.config.shrink_window and d > 1:
            ok = ok & (torch.rand(ok.shape, device=ok.device) < (W - d + 1) / W)
        return ok

    def _cbow_contexts(self, words, valid, doc) -> tuple[torch.Tensor, torch.Tensor]:
        """((P, dim) mean context in-vector, (P,) centre ids) for every kept word with at least one context word."""
        emb = self.in_embed(words) * valid.unsqueeze(-1)
        total = torch.zeros_like(emb)
        n = torch.zeros(words.shape, device=words.device, dtype=emb.dtype)
        for d in range(1, min(self.config.window, words.shape[1] - 1) + 1):
            ok = self._pair_mask(valid, doc, d).to(emb.dtype)
            # word at i gets the context at i + d, and the word at i + d gets the one at i
            total[:, :-d] += emb[:, d:] * ok.unsqueeze(-1)
            total[:, d:] += emb[:, :-d] * ok.unsqueeze(-1)
            n[:, :-d] += ok
            n[:, d:] += ok
        has = valid & (n > 0)
        return total[has] / n[has].unsqueeze(-1), words[has]

    def _negative_sampling_loss(self, h: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
        """Mean over P of −log σ(u_pos·h) − Σ_k log σ(−u_neg·h); h (P, dim), positives (P,) output word ids."""
        k = self.config.negatives
        noise = torch.multinomial(self.noise_distribution(), positives.numel() * k, replacement=True)
        u_pos = self.out_embed(positives)  # (P, dim)
        u_neg = self.out_embed(noise.view(-1, k))  # (P, k, dim)
        pos = F.logsigmoid((h * u_pos).sum(-1))
        neg = F.logsigmoid(-torch.bmm(u_neg, h.unsqueeze(-1)).squeeze(-1)).sum(-1)
        return -(pos + neg).mean()

    def _zero_loss(self) -> torch.Tensor:
        # A batch without a single pair (e.g. all punctuation) still has a graph, so backward() works.
        return self.in_embed.weight.sum() * 0.0
