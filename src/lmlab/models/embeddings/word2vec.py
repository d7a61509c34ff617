"""word2vec (Mikolov et al. 2013): skip-gram with negative sampling (SGNS) and CBOW, in PyTorch.

Two ways to train it, both through `lmlab train --model word2vec`:
  - `epochs` > 0 (default 5): `fit_from_tokens` trains the tables with plain SGD over the whole train split,
    `epochs` passes, learning rate `alpha` → `min_alpha` (lmlab.models.embeddings.sgd: the C tool's and gensim's
    method, vectorised in mini-batches); the tables are then frozen and the run is saved as fitted, like the
    counting models. This is the fast way.
  - `epochs` = 0: `fit_from_tokens` only records the counts, and the ordinary training loop trains the tables with
    AdamW, handing `forward` batches of token windows (B, block_size) from which the model makes its pairs (resume,
    val-loss curves and the trainer's settings then apply).

From words to training pairs (both ways):
  1. Subsampling of frequent words: each occurrence of word w is kept with probability
     min(1, (√(f(w)/t) + 1) · t/f(w)), f(w) = #(w) / Σ #(words), t = `subsample` (1e-4; 0 turns it off) — the
     C tool's and gensim's form of Mikolov et al. 2013b's 1 − √(t/f) discard rule (it keeps a little more of the
     frequent words). Only while training; evaluation keeps every word.
  2. Non-words (punctuation, whitespace, special tokens) and discarded words are removed, so windows are counted
     in *kept words*, as in the original C code; `<eos>` ends a document and no pair spans it.
  3. Skip-gram: every (centre, context) pair at most `window` words apart, both directions.
     CBOW: each centre with the mean of the in-vectors of its ≤ 2·window context words.
     With `shrink_window` (default, as the C tool and gensim) each centre draws its reach b uniformly from
     1..window while training and only uses the contexts at most b away, so near words weigh more.
  4. k = `negatives` noise words per pair, drawn with replacement from the unigram distribution raised to 0.75,
     P_n(w) ∝ #(w)^0.75 over words (`noise_power`).

Objective (mean over the pairs of the batch, in nats), with v = in-vectors, u = out-vectors, σ the logistic function:
    SGNS:  −log σ(u_o · v_c) − Σ_{i=1..k} log σ(−u_{n_i} · v_c)        (c centre, o context, n_i ~ P_n)
    CBOW:  −log σ(u_c · h)   − Σ_{i=1..k} log σ(−u_{n_i} · h),  h = mean of v over the context words of centre c
The word vectors are the in-vectors v (Mikolov's choice; gensim's `wv`).

Unigram counts #(w) and the word mask come from the whole train split: `lmlab train` calls
`fit_from_tokens(tokens, tokenizer)` first. Embedding rows are only ever indexed (never a dense (V, d) product), so
the work scales with the pairs, not with the vocabulary; the trainer's AdamW (epochs = 0) needs dense gradients,
hence `nn.Embedding(sparse=False)`.
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
from lmlab.models.embeddings.sgd import draw_noise, noise_cdf, train_sgd
from lmlab.models.embeddings.windows import batch_compact, compact_words, window_pairs, word_mask_of

ARCHITECTURES = ("skipgram", "cbow")
_EVAL_CHUNK = 2048  # pairs per piece of the loss computed without autograd


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
    epochs: int = 5  # passes of word2vec's own SGD over the train split (C tool: -iter; gensim: epochs); 0: train
    #                  with the ordinary training loop (AdamW, max_iters, resume) instead
    alpha: float = 0.025  # SGD learning rate at the start (C tool: -alpha; gensim: alpha); unused when epochs = 0
    min_alpha: float = 1e-4  # SGD learning rate at the end, reached linearly (gensim: min_alpha)
    sgd_batch: int = 1024  # examples per vectorised SGD update (C tool / gensim: 1, updated one by one)
    block_size: int = 128  # tokens per row of the training loop's batches (epochs = 0) and of evaluation windows

    def __post_init__(self) -> None:
        check_common(self)
        if self.architecture not in ARCHITECTURES:
            raise LmlabError(f"architecture must be one of {', '.join(ARCHITECTURES)} (got {self.architecture!r})")
        if self.negatives < 1:
            raise LmlabError(f"negatives must be ≥ 1 (got {self.negatives})")
        if self.subsample < 0:
            raise LmlabError(f"subsample must be ≥ 0 (got {self.subsample}; 0 disables it)")
        if self.epochs < 0:
            raise LmlabError(f"epochs must be ≥ 0 (got {self.epochs}; 0 trains with the training loop)")
        if not 0 <= self.min_alpha <= self.alpha:
            raise LmlabError(f"need 0 ≤ min_alpha ≤ alpha (got alpha {self.alpha}, min_alpha {self.min_alpha})")
        if self.sgd_batch < 1:
            raise LmlabError(f"sgd_batch must be ≥ 1 (got {self.sgd_batch})")


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
        subsampling distributions); then, with `epochs` > 0, train both tables by SGD and freeze them (the trainer
        saves the run as fitted). Randomness comes from torch's global seed (`lmlab train --seed`).
        Returns {words, vocabulary} and, after SGD, {epoch_losses} (mean loss per example of each epoch, nats)."""
        V = self.config.vocab_size
        mask = word_mask_of(tokenizer)
        if len(mask) > V:
            raise LmlabError(f"the tokenizer has {len(mask)} ids but the model's vocab_size is {V}")
        mask = np.pad(mask, (0, V - len(mask)))
        counts = np.bincount(np.asarray(tokens, dtype=np.int64), minlength=V)[:V]
        self.counts.copy_(torch.from_numpy(counts.astype(np.float32)))
        self.word_mask.copy_(torch.from_numpy(mask))
        self.eos_id.fill_(tokenizer.eos_id if tokenizer.eos_id is not None else -1)
        summary: dict = {"words": int(counts[mask].sum()), "vocabulary": int((counts[mask] > 0).sum())}
        if self.config.epochs > 0:
            words, doc = compact_words(np.asarray(tokens), mask, tokenizer.eos_id)
            generator = torch.Generator().manual_seed(int(torch.randint(0, 2 ** 62, (1,))))
            losses = train_sgd(self.in_embed.weight.data, self.out_embed.weight.data, words, doc,
                               config=self.config, keep=self.keep_probability().cpu(),
                               noise=self.noise_distribution().cpu(), generator=generator,
                               progress=progress)
            self.requires_grad_(False)  # trained: nothing is left for the gradient loop
            summary["epoch_losses"] = [round(x, 4) for x in losses]
        return summary

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
        """(V,) min(1, (√(f/t) + 1) · t/f), the chance an occurrence of w survives subsampling (1 when t = 0)."""
        c = self._word_counts()
        if self.config.subsample <= 0:
            return torch.ones_like(c)
        ratio = self.config.subsample / (c / c.sum().clamp(min=1)).clamp(min=1e-30)  # t / f(w)
        return ((ratio.rsqrt() + 1) * ratio).clamp(max=1.0)

    # --- training ----------------------------------------------------------------------------------------------
    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """idx (B, T) token ids → (None, mean negative-sampling loss in nats per pair). targets are not used."""
        keep = self.word_mask[idx]
        if self.training and self.config.subsample > 0:
            keep = keep & (torch.rand(idx.shape, device=idx.device) < self.keep_probability()[idx])
        words, valid, doc = batch_compact(idx, keep, self.eos_id)
        reach = None  # every context up to `window` away
        if self.training and self.config.shrink_window:
            reach = torch.randint(1, self.config.window + 1, words.shape, device=idx.device)
        pos, centres, contexts = window_pairs(words, valid, doc, self.config.window, reach)
        if centres.numel() == 0:
            return None, self._zero_loss()
        if self.config.architecture == "skipgram":
            return None, self._negative_sampling_loss(self.in_embed(centres), contexts)
        h, centres = self._cbow_contexts(words, pos, contexts)
        return None, self._negative_sampling_loss(h, centres)

    def _cbow_contexts(self, words, pos, contexts) -> tuple[torch.Tensor, torch.Tensor]:
        """((P, dim) mean context in-vector, (P,) centre ids) for every kept word with at least one context word;
        pos (pairs,) are the centres' flat positions in words (B, T), contexts (pairs,) their context ids."""
        total = torch.zeros(words.numel(), self.config.dim, device=words.device,
                            dtype=self.in_embed.weight.dtype).index_add(0, pos, self.in_embed(contexts))
        n = torch.bincount(pos, minlength=words.numel())
        has = n > 0
        return total[has] / n[has].unsqueeze(-1).to(total.dtype), words.reshape(-1)[has]

    def _negative_sampling_loss(self, h: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
        """Mean over P of −log σ(u_pos·h) − Σ_k log σ(−u_neg·h); h (P, dim), positives (P,) output word ids.
        Without autograd (evaluation) the pairs go in chunks: one (P, k, dim) gather of a whole val batch is
        hundreds of MB, and allocating that much is slower than the arithmetic."""
        k = self.config.negatives
        noise = draw_noise(noise_cdf(self.noise_distribution()), positives.numel() * k).view(-1, k)
        chunk = len(positives) if torch.is_grad_enabled() else _EVAL_CHUNK
        total = h.new_zeros(())
        for s in range(0, len(positives), chunk):
            rows = torch.cat([positives[s:s + chunk].unsqueeze(1), noise[s:s + chunk]], 1)  # (p, k+1)
            u = self.out_embed(rows)  # (p, k+1, dim)
            score = torch.bmm(h[s:s + chunk].unsqueeze(1), u.transpose(1, 2)).squeeze(1)  # (p, k+1)
            total = total + F.logsigmoid(score[:, 0]).sum() + F.logsigmoid(-score[:, 1:]).sum()
        return -total / len(positives)

    def _zero_loss(self) -> torch.Tensor:
        # A batch without a single pair (e.g. all punctuation) still has a graph, so backward() works.
        return self.in_embed.weight.sum() * 0.0
