"""An n-gram language model (order 1–5) with interpolated modified Kneser-Ney smoothing, as a torch module.

Objective. There is no gradient: "training" counts n-grams in one pass over the train tokens and sets every
probability in closed form (Chen & Goodman 1998, "An empirical study of smoothing techniques for language
modeling", §3.5 interpolated modified Kneser-Ney). For an order-n model, a context h (the k-1 tokens before the
predicted token w at order k, h' = h without its first token):

    P_k(w | h) = max(c_k(h w) − D_k(c_k(h w)), 0) / Σ_v c_k(h v)  +  γ_k(h) · P_{k−1}(w | h')
    γ_k(h)     = (D_k1 · N1(h•) + D_k2 · N2(h•) + D_k3+ · N3+(h•)) / Σ_v c_k(h v)
    P_0(w)     = 1 / V                                    (uniform over the vocabulary: the floor for unseen ids)

c_n is the raw count at the highest order; for k < n, c_k(g) is the continuation count N1+(• g), the number of
distinct tokens seen before g (how many contexts g completes, not how often it occurs). Ni(h•) is the number of
distinct w with c_k(h w) = i (3+: ≥ 3). When h was never seen as a context at order k, P_k(·|h) = P_{k−1}(·|h').
Per order, three discounts come from the count-of-counts n1..n4 of c_k:

    Y = n1 / (n1 + 2 n2),   D1 = 1 − 2Y n2/n1,   D2 = 2 − 3Y n3/n2,   D3+ = 3 − 4Y n4/n3

When the counts are too few for that estimate (some ni = 0, or a discount outside (0, i]) — tiny corpora — the
order uses the fixed discounts FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5). Any discounts with 0 ≤ D_i ≤ i keep every
P_k(·|h) a distribution (what is discounted is exactly γ_k(h)), so probabilities over the vocabulary sum to one
for every context, including contexts and ids never seen in training (they get the lower orders' mass, down to the
uniform floor).

Storage (safetensors, via the run dir). n-grams get dense ids order by order: the id of a k-gram is its index in
the sorted array `keys_k`, where key = id(first k−1 tokens) · V + last token (the unigram key is the token). So
`keys_k` is sorted by context and each context's entries are one contiguous slice. Per order k:

    keys_{k}   int64 (n_k,)       the k-grams seen, encoded as above
    probs_{k}  float64 (n_k,)     max(c − D(c), 0) / Σ_v c(h v), the discounted part of P_k(w|h)
    gammas_{k} float64 (n_{k−1},) γ_k(h) for each (k−1)-gram h (1 where h was never followed by a token);
                                  gammas_1 is (1,), the unigram level's weight on the uniform floor

The array sizes depend on the data, so fitting records them in the config (`table_sizes`) and `NGramLM(config)`
allocates tables of those sizes for the run dir loader to fill.

`forward(idx, targets)` returns log-probabilities (B,T,V) in the place of logits (softmax of log-probs is the
distribution itself), so scoring, perplexity and generation code treat it like any language model.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from lmlab.errors import LmlabError
from lmlab.models.config_dict import ConfigDictMixin, check_sizes

MAX_ORDER = 5
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)


# ========================================================================================================= config ===
@dataclass
class NGramConfig(ConfigDictMixin):
    """Settings of an n-gram model. Only `order` is a choice; the rest is filled in by the tokenizer and fitting."""

    config_label = "n-gram config"  # names this config in error messages

    vocab_size: int = 256      # V: ids 0..V-1 (the tokenizer's vocabulary); the uniform floor is 1/V
    order: int = 3             # n: the longest n-gram used (1 = unigram … 5)
    block_size: int = 256      # window length for training-loop evaluation and scoring; any value works (the model
                               # only ever looks at the last order−1 tokens)
    table_sizes: list[int] = field(default_factory=list)  # n-grams stored per order, set by fitting (not by hand)

    def __post_init__(self) -> None:
        check_sizes("n-gram config", self, "vocab_size", "order", "block_size")
        if not 1 <= self.order <= MAX_ORDER:
            raise LmlabError(f"n-gram config: order must be between 1 and {MAX_ORDER}, got {self.order}")
        self.table_sizes = [int(n) for n in self.table_sizes]
        if self.table_sizes and len(self.table_sizes) != self.order:
            raise LmlabError(f"n-gram config: table_sizes has {len(self.table_sizes)} entries for order "
                             f"{self.order}; it is written by fitting, leave it out")


# ====================================================================================================== discounts ===
def kn_discounts(count_of_counts: tuple[int, int, int, int] | list[int]) -> tuple[float, float, float]:
    """(D1, D2, D3+) of modified Kneser-Ney from n1..n4, the numbers of n-grams seen exactly 1..4 times
    (Chen & Goodman 1998, eq. 26); FALLBACK_DISCOUNTS when the counts do not support the estimate."""
    n1, n2, n3, n4 = (float(n) for n in count_of_counts)
    if min(n1, n2, n3, n4) <= 0:
        return FALLBACK_DISCOUNTS
    y = n1 / (n1 + 2 * n2)
    d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
    if not all(0 < di <= i + 1 for i, di in enumerate(d)):
        return FALLBACK_DISCOUNTS
    return d


# ========================================================================================================= model ===
class NGramLM(nn.Module):
    """Interpolated modified Kneser-Ney n-gram LM (see the module docstring for the formulas and the storage)."""

    def __init__(self, config: NGramConfig):
        super().__init__()
        self.config = config
        n = config.order
        sizes = config.table_sizes or [0] * n
        # A parameter (never trained) so that `next(model.parameters())` finds the device, as for neural models.
        self.discounts = nn.Parameter(torch.zeros(n, 3, dtype=torch.float64), requires_grad=False)
        for k in range(1, n + 1):
            self.register_buffer(f"keys_{k}", torch.zeros(sizes[k - 1], dtype=torch.int64))
            self.register_buffer(f"probs_{k}", torch.zeros(sizes[k - 1], dtype=torch.float64))
            self.register_buffer(f"gammas_{k}", torch.ones(sizes[k - 2] if k > 1 else 1, dtype=torch.float64))

    def _table(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return getattr(self, f"keys_{k}"), getattr(self, f"probs_{k}"), getattr(self, f"gammas_{k}")

    # --- fitting ------------------------------------------------------------------------------------------------
    def fit_from_tokens(self, tokens: np.ndarray, *, progress: bool = True) -> None:
        """Count the n-grams of a 1-D token stream (e.g. a train shard memmap) and set every table.

        One pass per order over the stream (a progress bar counts orders). Replaces any earlier fit, and records
        the table sizes in `self.config.table_sizes` so that the run dir can rebuild the model.
        """
        V, n = self.config.vocab_size, self.config.order
        t = np.asarray(tokens).astype(np.int64, copy=False)
        if len(t) < n:
            raise LmlabError(f"{len(t)} training tokens are too few for an order-{n} model; use more text")
        if t.min() < 0 or t.max() >= V:
            raise LmlabError(f"token ids must be in 0..{V - 1}; the data has {int(t.min())}..{int(t.max())}")
        from tqdm.auto import tqdm

        bar = tqdm(total=2 * n, desc="counting n-grams", unit="pass", file=sys.stderr,
                   disable=None if progress else True)
        # Dense ids of every k-gram occurrence: ids[k][i] = index of the k-gram starting at i in keys[k].
        keys, ids, first = [None], [None], [None]
        uniq, first_pos, inv = np.unique(t, return_index=True, return_inverse=True)
        keys.append(uniq)
        ids.append(inv.reshape(-1))
        first.append(first_pos)
        bar.update(1)
        for k in range(2, n + 1):
            combined = ids[k - 1][: len(t) - k + 1] * V + t[k - 1:]
            uniq, first_pos, inv = np.unique(combined, return_index=True, return_inverse=True)
            keys.append(uniq)
            ids.append(inv.reshape(-1))
            first.append(first_pos)
            bar.update(1)

        tables, discounts = {}, np.zeros((n, 3))
        for k in range(1, n + 1):
            if k == n:   # highest order: how often each n-gram occurs
                counts = np.bincount(ids[k], minlength=len(keys[k]))
            else:        # lower orders: how many distinct tokens precede each k-gram (its (k+1)-gram types)
                suffix = ids[k][first[k + 1] + 1]  # the k-gram inside each distinct (k+1)-gram, after its 1st token
                counts = np.bincount(suffix, minlength=len(keys[k]))
            coc = [int(np.count_nonzero(counts == i)) for i in (1, 2, 3, 4)]
            d = np.asarray(kn_discounts(coc))
            discounts[k - 1] = d
            n_contexts = len(keys[k - 1]) if k > 1 else 1
            context = keys[k] // V if k > 1 else np.zeros(len(keys[k]), dtype=np.int64)
            denom = np.bincount(context, weights=counts, minlength=n_contexts)
            # discount of each entry: D1, D2 or D3+ by its count (0 for count 0: entries only seen at the start)
            d_entry = np.where(counts >= 3, d[2], np.where(counts == 2, d[1], np.where(counts == 1, d[0], 0.0)))
            removed = np.bincount(context, weights=d_entry, minlength=n_contexts)
            seen = denom > 0
            gammas = np.ones(n_contexts)
            gammas[seen] = removed[seen] / denom[seen]
            probs = np.zeros(len(keys[k]))
            ok = denom[context] > 0
            probs[ok] = np.maximum(counts[ok] - d_entry[ok], 0.0) / denom[context][ok]
            tables[k] = (keys[k], probs, gammas)
            bar.update(1)
        bar.close()

        self.config = dataclasses.replace(self.config, table_sizes=[len(keys[k]) for k in range(1, n + 1)])
        device = self.discounts.device
        with torch.no_grad():
            self.discounts.data = torch.from_numpy(discounts).to(device)
        for k, (key, prob, gamma) in tables.items():
            setattr(self, f"keys_{k}", torch.from_numpy(np.ascontiguousarray(key, dtype=np.int64)).to(device))
            setattr(self, f"probs_{k}", torch.from_numpy(prob).to(device))
            setattr(self, f"gammas_{k}", torch.from_numpy(gamma).to(device))

    # --- probabilities ------------------------------------------------------------------------------------------
    def _lookup(self, k: int, ids: torch.Tensor, found: torch.Tensor, tok: torch.Tensor) -> tuple[torch.Tensor,
                                                                                                   torch.Tensor]:
        """Extend (k−1)-gram ids by one token: the k-gram ids (index in keys_k) and whether they were seen."""
        keys = self._table(k)[0]
        V = self.config.vocab_size
        if len(keys) == 0:  # nothing of this length was seen (an unfitted model)
            return torch.zeros_like(tok), torch.zeros_like(found)
        query = ids * V + tok if k > 1 else tok
        pos = torch.searchsorted(keys, query).clamp(max=len(keys) - 1)
        return pos, found & (tok >= 0) & (keys[pos] == query)

    def next_token_probs(self, idx: torch.Tensor) -> torch.Tensor:
        """P(next token | tokens so far) for every position of idx (B,T): float64 (B,T,V), each row sums to 1.

        Position t is conditioned on idx[:, max(0, t−n+2) : t+1] (at most order−1 tokens, ending with idx[:, t])."""
        n, V = self.config.order, self.config.vocab_size
        B, T = idx.shape
        device = idx.device
        N = B * T
        # unigram level: the same distribution for every position
        keys1, probs1, gamma1 = self._table(1)
        unigram = torch.full((V,), 1.0 / V, dtype=torch.float64, device=device) * gamma1[0]
        unigram.index_add_(0, keys1, probs1)
        P = unigram.expand(N, V).clone()
        # history[:, j] = the token j positions before the predicted one's predecessor (-1 before the start)
        padded = F.pad(idx, (n - 1, 0), value=-1)
        for k in range(2, n + 1):
            m = k - 1  # context length at order k
            # context tokens of position t: padded[:, n-1+t-m+1 .. n-1+t]
            ctx_ids = torch.zeros(N, dtype=torch.int64, device=device)
            found = torch.ones(N, dtype=torch.bool, device=device)
            for j in range(m):
                start = n - 1 - m + 1 + j
                tok = padded[:, start:start + T].reshape(-1)
                ctx_ids, found = self._lookup(j + 1, ctx_ids, found, tok)
            keys, probs, gammas = self._table(k)
            rows = found.nonzero().squeeze(-1)
            if rows.numel() == 0:
                continue
            ctx = ctx_ids[rows]
            lo = torch.searchsorted(keys, ctx * V)
            hi = torch.searchsorted(keys, ctx * V + V)
            weight = torch.ones(N, dtype=torch.float64, device=device)
            weight[rows] = gammas[ctx]
            P.mul_(weight.unsqueeze(-1))
            lengths = hi - lo
            total = int(lengths.sum())
            if total:
                row_of = torch.repeat_interleave(rows, lengths)
                starts = torch.repeat_interleave(lo - (lengths.cumsum(0) - lengths), lengths)
                entry = starts + torch.arange(total, device=device)
                # each (row, token) pair occurs once per order, so a flat gather-add-scatter is exact
                flat = row_of * V + keys[entry] % V
                P.view(-1)[flat] += probs[entry]
        return P.view(B, T, V)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> tuple[torch.Tensor,
                                                                                       torch.Tensor | None]:
        """(log-probabilities (B,T,V) float32 used as logits, mean cross-entropy in nats or None).

        idx: (B,T) int64; targets: (B,T) int64, -100 = ignore. An untrained (never fitted) model is uniform."""
        logp = self.next_token_probs(idx).log().float()
        loss = None
        if targets is not None:
            loss = F.nll_loss(logp.view(-1, logp.size(-1)), targets.reshape(-1), ignore_index=-100)
        return logp, loss

    def num_params(self, non_embedding: bool = True) -> int:
        """Number of stored probabilities (one per n-gram seen, plus one backoff weight per context)."""
        return sum(getattr(self, f"probs_{k}").numel() + getattr(self, f"gammas_{k}").numel()
                   for k in range(1, self.config.order + 1))


# Named orders: `lmlab train --preset ngram3` (the same as `--model ngram --order 3`).
NGRAM_PRESETS: dict[str, dict[str, Any]] = {f"ngram{k}": {"order": k} for k in range(1, MAX_ORDER + 1)}
