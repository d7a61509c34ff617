"""word2vec's own trainer: plain SGD on the rows a batch touches, epoch by epoch, as the C tool and gensim train it.

Why not the general training loop (AdamW, dense gradients)? A word2vec step touches a few thousand rows of two
(V, d) tables; AdamW reads and writes all of both tables and its two moment buffers every step, and the loop adds
its fixed costs (optimizer set-up, checkpoints, plots). Here an update costs O(examples · (k + 1) · d) whatever
the vocabulary, which made training ~8× faster on the benchmark world (benchmarks/RESULTS.md).

One epoch (the whole train split, in chunks of CHUNK_WORDS words; pairs never span two chunks, ≤ 1 in 10⁴ lost):
  1. subsampling: each occurrence of w is kept with the model's `keep_probability` (fresh draws every epoch);
  2. reduced windows: each kept word draws its reach b uniformly from 1..window (`window_pairs`);
  3. examples in text order — skip-gram: one per (centre, context) pair, the centre's in-vector predicting the
     context; CBOW: one per centre, the mean in-vector of its contexts predicting the centre;
  4. k = `negatives` noise words per example from the model's `noise_distribution` (a noise word equal to the
     target is kept, where the C tool skips it: with a vocabulary of thousands that is rare and harmless).
Mini-batches of `sgd_batch` examples: the gradient of the negative-sampling loss with respect to each row used is
computed from the tables as they were before the batch and added with `index_add_`, so a row used n times in a
batch gets the sum of its n updates (gensim with several workers is stale in the same way). The learning rate
falls linearly from `alpha` to `min_alpha` over all epochs (gensim's schedule).
"""

from __future__ import annotations

import sys

import numpy as np
import torch
import torch.nn.functional as F

from lmlab.models.embeddings.windows import window_pairs

CHUNK_WORDS = 1 << 17  # words of the train split per chunk: bounds the pair arrays (~10 pairs per kept word)


def noise_cdf(noise: torch.Tensor) -> torch.Tensor:
    """(V,) float32 cumulative distribution of (V,) probabilities, ending at exactly 1 (for `draw_noise`)."""
    cdf = torch.cumsum(noise.double(), 0)
    return (cdf / cdf[-1]).float()


def draw_noise(cdf: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(n,) ids drawn with replacement from the distribution of `cdf` (from `noise_cdf`), by inverse CDF: ~2.5×
    faster than torch.multinomial on CPU. side="right" never returns an id of probability 0."""
    u = torch.rand(n, generator=generator, device=cdf.device)
    return torch.searchsorted(cdf, u, right=True).clamp_(max=len(cdf) - 1)


def train_sgd(in_w: torch.Tensor, out_w: torch.Tensor, words: np.ndarray, doc: np.ndarray, *, config,
              keep: torch.Tensor, noise: torch.Tensor, generator: torch.Generator,
              progress: bool = False) -> list[float]:
    """Train the in- and out-vector tables (V, d) in place for `config.epochs` epochs; returns each epoch's mean
    negative-sampling loss (nats per example, measured before each batch's update).

    words, doc: (M,) word ids and document numbers of the train split (`compact_words`); keep, noise: (V,) keep
    probabilities and noise distribution; config: a Word2VecConfig (window, architecture, negatives, epochs, alpha,
    min_alpha, sgd_batch).
    """
    cdf = noise_cdf(noise)
    words_t, doc_t = torch.from_numpy(np.asarray(words, dtype=np.int64)), torch.from_numpy(np.asarray(doc))
    starts = range(0, len(words_t), CHUNK_WORDS)
    total = max(len(words_t), 1) * config.epochs
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.epochs * len(starts), desc="word2vec", unit="chunk", file=sys.stderr)
    losses = []
    with torch.no_grad():
        for epoch in range(config.epochs):
            loss_sum, n_examples = 0.0, 0
            for start in starts:
                w, dc = words_t[start:start + CHUNK_WORDS], doc_t[start:start + CHUNK_WORDS]
                kept = torch.rand(len(w), generator=generator) < keep[w]
                inputs, owner, targets = _examples(w[kept], dc[kept], config, generator)
                negatives = draw_noise(cdf, len(targets) * config.negatives, generator).view(-1, config.negatives)
                done = epoch * len(words_t) + start  # words of all epochs before this chunk, for the schedule
                for b0 in range(0, len(targets), config.sgd_batch):
                    b1 = min(b0 + config.sgd_batch, len(targets))
                    lr = _lr(config, (done + len(w) * b0 / len(targets)) / total)
                    i0, i1 = np.searchsorted(owner.numpy(), [b0, b1])  # owner is sorted: this batch's inputs
                    loss_sum += _sgd_step(in_w, out_w, inputs[i0:i1], owner[i0:i1] - b0, targets[b0:b1],
                                          negatives[b0:b1], lr)
                n_examples += len(targets)
                if bar is not None:
                    bar.update(1)
            losses.append(loss_sum / max(n_examples, 1))
    if bar is not None:
        bar.close()
    return losses


def _lr(config, progress: float) -> float:
    """alpha → min_alpha, linear in the share of all epochs' words done (0..1)."""
    return config.alpha - (config.alpha - config.min_alpha) * min(max(progress, 0.0), 1.0)


def _examples(w: torch.Tensor, dc: torch.Tensor, config, generator: torch.Generator
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The training examples of one chunk of kept words, in text order: (inputs (Q,) in-vector ids, owner (Q,)
    sorted example index of each input, targets (E,) the word each example predicts)."""
    reach = torch.randint(1, config.window + 1, (1, len(w)), generator=generator)
    valid = torch.ones(1, len(w), dtype=torch.bool)
    pos, centres, contexts = window_pairs(w.view(1, -1), valid, dc.view(1, -1), config.window, reach)
    order = torch.sort(pos, stable=True).indices  # text order of the centres, like the C tool's single pass
    pos, centres, contexts = pos[order], centres[order], contexts[order]
    if config.architecture == "skipgram":
        return centres, torch.arange(len(centres)), contexts
    # CBOW: one example per centre that has contexts; its inputs are those contexts.
    centre_positions, owner = torch.unique_consecutive(pos, return_inverse=True)
    return contexts, owner, w[centre_positions]


def _sgd_step(in_w: torch.Tensor, out_w: torch.Tensor, inputs: torch.Tensor, owner: torch.Tensor,
              targets: torch.Tensor, negatives: torch.Tensor, lr: float) -> float:
    """One SGD update on E examples; returns the summed loss (nats) of the examples before the update.

    inputs (Q,) in-vector ids, owner (Q,) their example 0..E-1, targets (E,), negatives (E, k) out-vector ids.
    h (E, d) = mean in-vector of each example's inputs; rows = [target, k noise words] per example;
    g = lr · (label − σ(u_row · h)) is the step along the gradient of log σ(±u·h) for both u_row and h."""
    (E, k), d = negatives.shape, in_w.shape[1]
    x = in_w.index_select(0, inputs)
    if len(inputs) == E:  # skip-gram: one input per example
        h = x
    else:  # CBOW: the mean of the context vectors (the C tool's -cbow 1 with cbow_mean)
        n = torch.bincount(owner, minlength=E).clamp(min=1).to(x.dtype)
        h = torch.zeros(E, d, dtype=x.dtype).index_add_(0, owner, x) / n.unsqueeze(1)
    rows = torch.cat([targets.unsqueeze(1), negatives], 1).view(-1)
    u = out_w.index_select(0, rows).view(E, k + 1, d)
    score = torch.bmm(h.unsqueeze(1), u.transpose(1, 2)).squeeze(1)  # (E, k+1); this bmm form is the fast one
    label = torch.zeros(E, k + 1, dtype=score.dtype)
    label[:, 0] = 1.0
    loss = -(F.logsigmoid(score[:, 0]).sum() + F.logsigmoid(-score[:, 1:]).sum())
    g = (label - torch.sigmoid(score)).mul_(lr)
    grad_h = torch.bmm(g.unsqueeze(1), u).squeeze(1)  # (E, d)
    out_w.index_add_(0, rows, (g.unsqueeze(-1) * h.unsqueeze(1)).view(-1, d))
    # Every input of an example gets the example's whole step (the C tool adds neu1e to each context word).
    in_w.index_add_(0, inputs, grad_h if len(inputs) == E else grad_h.index_select(0, owner))
    return float(loss)
