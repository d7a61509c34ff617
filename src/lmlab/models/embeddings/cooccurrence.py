"""Count-based word vectors: windowed co-occurrence counts factorised by truncated SVD (Levy, Goldberg & Dagan 2015).

Two model types share this file:

  cooc  — the PCA view. X[w, c] = (weighted) number of times word c occurs within `window` words of word w
          (optionally transformed: log(1 + x) or √x). Centre the columns, X̃ = X − 1 μᵀ with μ the mean row, and
          take the rank-d truncated SVD X̃ ≈ U Σ Vᵀ. Word vectors are U Σ^p; with p = 1 these are exactly the
          principal-component scores of the rows of X (PCA = SVD of the centred matrix). X̃ is dense (centring
          fills every zero), so it is never built: `svds` sees a LinearOperator that applies X̃ x = X x − 1 (μᵀ x).
  ppmi  — PPMI[w, c] = max(0, log P(w, c) / (P(w) P_α(c))), with P_α(c) = #(c)^α / Σ #(c')^α the context
          distribution smoothed with α = 0.75 (α = 1: plain PMI), then the same truncated SVD (no centring: PPMI
          is sparse and non-negative), word vectors U Σ^p with p = 0.5 by default (Levy et al.'s symmetric choice).

Counting never loops over tokens in Python: for each distance d = 1..window the pairs are two shifted slices of the
word stream; a chunk's pair ids (left · n + right) are reduced with `np.unique` + `np.bincount` into a scipy COO
matrix and summed into a CSR matrix. Memory is O(non-zero pairs + one chunk), so a 50k vocabulary fits easily.

"Training" is counting + one SVD: `fit_from_tokens(tokens, tokenizer)` is called by `lmlab train` in place of the
gradient loop (the model has no trainable parameters).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn as nn
from scipy.sparse.linalg import LinearOperator, svds

from lmlab.errors import LmlabError
from lmlab.models.config_dict import ConfigDictMixin
from lmlab.models.embeddings.base import EmbeddingModel, check_common
from lmlab.models.embeddings.windows import compact_words, word_mask_of

COUNT_TRANSFORMS = ("none", "log1p", "sqrt")
_CHUNK = 1 << 21  # words per counting chunk: bounds the temporary pair arrays to ~ window · 2M · 8 bytes


# ============================================================================================= counting ===
def cooccurrence_matrix(words: np.ndarray, doc: np.ndarray, n: int, *, window: int,
                        distance_weighting: bool = False, progress: bool = False) -> sp.csr_matrix:
    """Symmetric (n, n) float64 CSR matrix of co-occurrence counts.

    words: (M,) ids in 0..n-1 (already restricted to words, in text order); doc: (M,) document number of each.
    X[a, b] = Σ over pairs of positions (i, j), 0 < |i − j| ≤ window, same document, words[i] = a, words[j] = b,
    of 1 (or 1/|i − j| with distance_weighting). X is symmetric; a pair of equal words adds 2 to the diagonal
    (each is the other's context).
    """
    words = np.asarray(words, dtype=np.int64)
    doc = np.asarray(doc)
    total = sp.csr_matrix((n, n), dtype=np.float64)
    starts = range(0, max(len(words), 1), _CHUNK)
    bar = _bar(len(starts), progress, "counting")
    for start in starts:
        # Pairs whose left word lies in [start, start + _CHUNK): the slice reaches `window` words further right.
        end = min(start + _CHUNK, len(words))
        w, dc = words[start:end + window], doc[start:end + window]
        ids, weights = [], []
        for d in range(1, window + 1):
            n_left = min(len(w) - d, end - start)  # pairs starting past the chunk belong to the next chunk
            if n_left <= 0:
                continue
            same = dc[:n_left] == dc[d:d + n_left]  # no pair spans two documents
            left, right = w[:n_left][same], w[d:d + n_left][same]
            ids.append(left * n + right)
            weights.append(np.full(len(left), 1.0 / d if distance_weighting else 1.0))
        if ids:
            pair_ids = np.concatenate(ids)
            uniq, inv = np.unique(pair_ids, return_inverse=True)
            summed = np.bincount(inv.ravel(), weights=np.concatenate(weights), minlength=len(uniq))
            total = total + sp.csr_matrix((summed, (uniq // n, uniq % n)), shape=(n, n))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return (total + total.T).tocsr()


def transform_counts(X: sp.csr_matrix, how: str) -> sp.csr_matrix:
    """Elementwise transform of the non-zero counts: "none", "log1p" (log(1 + x)) or "sqrt" (√x)."""
    if how not in COUNT_TRANSFORMS:
        raise LmlabError(f"count_transform must be one of {', '.join(COUNT_TRANSFORMS)} (got {how!r})")
    X = X.copy()
    if how == "log1p":
        X.data = np.log1p(X.data)
    elif how == "sqrt":
        X.data = np.sqrt(X.data)
    return X


def ppmi_matrix(X: sp.csr_matrix, alpha: float = 0.75) -> sp.csr_matrix:
    """Positive PMI of a co-occurrence count matrix (rows: words w, columns: contexts c).

    PPMI[w, c] = max(0, log( #(w,c) · Σ_c' #(c')^α / (#(w) · #(c)^α) )) with #(w) the row sums and #(c) the column
    sums; α < 1 (context-distribution smoothing, 0.75 in Levy et al. 2015) raises rare contexts' probability and so
    lowers their inflated PMI. Cells with no co-occurrence stay 0 (their PMI is −∞). Returns float64 CSR.
    """
    if not alpha > 0:
        raise LmlabError(f"ppmi alpha must be > 0 (got {alpha})")
    X = sp.coo_matrix(X)
    total = X.sum()
    row = np.asarray(X.sum(axis=1)).ravel()
    col = np.asarray(X.sum(axis=0)).ravel()
    col_alpha = col ** alpha
    p_context = col_alpha / col_alpha.sum()
    pmi = np.log(X.data) - np.log(total) - np.log(row[X.row] / total) - np.log(p_context[X.col])
    keep = pmi > 0
    return sp.csr_matrix((pmi[keep], (X.row[keep], X.col[keep])), shape=X.shape)


# ================================================================================================== SVD ===
def centred_operator(X: sp.spmatrix) -> LinearOperator:
    """The column-centred X̃ = X − 1 μᵀ (μ = mean row of X) as a LinearOperator: X̃ is dense, so it is applied,
    never built (X̃ v = X v − 1 (μᵀ v); X̃ᵀ u = Xᵀ u − μ (1ᵀ u))."""
    X = sp.csr_matrix(X, dtype=np.float64)
    m, n = X.shape
    mu = np.asarray(X.mean(axis=0)).ravel()
    XT = X.T.tocsr()

    def matvec(v):
        v = np.asarray(v).ravel()
        return X @ v - mu @ v

    def rmatvec(u):
        u = np.asarray(u).ravel()
        return XT @ u - mu * u.sum()

    def matmat(V):
        return X @ V - np.outer(np.ones(m), mu @ V)

    def rmatmat(U):
        return XT @ U - np.outer(mu, U.sum(axis=0))

    return LinearOperator((m, n), matvec=matvec, rmatvec=rmatvec, matmat=matmat, rmatmat=rmatmat, dtype=np.float64)


def truncated_svd(A, k: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The k largest singular triplets of A (a sparse matrix or LinearOperator, shape (m, n)): (U (m, k), S (k,)),
    singular values descending. Deterministic: a seeded start vector, and each column's sign fixed so that its
    largest-magnitude entry is positive. k is capped at min(m, n) − 1 (ARPACK's limit); missing columns are 0."""
    m, n = A.shape
    k_eff = min(k, min(m, n) - 1)
    U = np.zeros((m, k))
    S = np.zeros(k)
    if k_eff < 1:
        return U, S
    v0 = np.random.default_rng(seed).standard_normal(min(m, n))
    u, s, _ = svds(A, k=k_eff, v0=v0)
    order = np.argsort(-s)
    u, s = u[:, order], s[order]
    signs = np.sign(u[np.argmax(np.abs(u), axis=0), np.arange(k_eff)])
    signs[signs == 0] = 1
    U[:, :k_eff] = u * signs
    S[:k_eff] = s
    return U, S


# ============================================================================================== configs ===
@dataclass
class _CountConfig(ConfigDictMixin):
    """The fields of every count-based config (type `cooc` or `ppmi`); each subclass adds its transform's own."""

    vocab_size: int = 1024  # ids of the tokenizer (set from it by `lmlab train`)
    dim: int = 100  # vector size d = number of singular vectors kept
    window: int = 5  # symmetric window: pairs at most this many words apart
    distance_weighting: bool = False  # count a pair d words apart as 1/d instead of 1 (GloVe / word2vec style)
    svd_power: float = 1.0  # vectors = U Σ^p
    seed: int = 0  # ARPACK start vector
    block_size: int = 128  # unused by counting; kept so the trainer's window checks have a value

    def __post_init__(self) -> None:
        check_common(self)


@dataclass
class CoocConfig(_CountConfig):
    """Centred co-occurrence counts + truncated SVD (the PCA view)."""

    method: ClassVar[str] = "centred"
    svd_power: float = 1.0  # p = 1: PCA scores
    count_transform: str = "log1p"  # none | log1p | sqrt — applied to counts before centring (raw counts let the
    #                                 few most frequent words dominate every principal component)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.count_transform not in COUNT_TRANSFORMS:
            raise LmlabError(f"count_transform must be one of {', '.join(COUNT_TRANSFORMS)} "
                             f"(got {self.count_transform!r})")


@dataclass
class PPMIConfig(_CountConfig):
    """PPMI (with context-distribution smoothing) + truncated SVD."""

    method: ClassVar[str] = "ppmi"
    svd_power: float = 0.5  # Levy et al. 2015: p = 0.5 or 0 beat p = 1 on similarity
    alpha: float = 0.75  # context-distribution smoothing exponent (1.0: plain PPMI)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.alpha > 0:
            raise LmlabError(f"alpha must be > 0 (got {self.alpha})")


# ================================================================================================ model ===
class CountEmbeddings(EmbeddingModel):
    """Word vectors from a factorised co-occurrence matrix (type `cooc` with CoocConfig, `ppmi` with PPMIConfig).

    Saved in model.safetensors: `vectors` (V, dim) float32 (a frozen parameter), `singular_values` (dim,),
    `word_mask` (V,).
    Rows of ids that are not words, or never occurred, are zero. There are no trainable parameters: the model is
    fitted by `fit_from_tokens`, not by gradient descent.
    """

    def __init__(self, config: CoocConfig | PPMIConfig):
        super().__init__(config.vocab_size)
        self.config = config
        # A parameter that is never trained (set by fit_from_tokens): the model's weights, and how generic code
        # (`next(model.parameters())`) finds its device; requires_grad=False tells the trainer there is no loop.
        self.vectors = nn.Parameter(torch.zeros(config.vocab_size, config.dim), requires_grad=False)
        self.register_buffer("singular_values", torch.zeros(config.dim))

    def word_vectors(self) -> torch.Tensor:
        return self.vectors

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """(B, T) ids → ((B, T, dim) vectors, None): a lookup; there is no loss to train."""
        return self.vectors[idx], None

    def fit_from_tokens(self, tokens: np.ndarray, tokenizer, *, progress: bool = False) -> dict:
        """Count the (N,) token stream's co-occurrences, transform (centre / PPMI), and keep the rank-dim SVD.
        Returns a summary {words, pairs, nonzeros, seconds}."""
        t0 = time.perf_counter()
        cfg = self.config
        mask = word_mask_of(tokenizer)
        if len(mask) > cfg.vocab_size:
            raise LmlabError(f"the tokenizer has {len(mask)} ids but the model's vocab_size is {cfg.vocab_size}")
        mask = np.pad(mask, (0, cfg.vocab_size - len(mask)))
        words, doc = compact_words(np.asarray(tokens), mask, tokenizer.eos_id)
        if len(words) < 2:
            raise LmlabError("the training text has fewer than two word tokens; nothing to count")
        vocab_ids = np.flatnonzero(mask)  # matrix row/column r ↔ token id vocab_ids[r]
        row_of = np.full(cfg.vocab_size, -1, dtype=np.int64)
        row_of[vocab_ids] = np.arange(len(vocab_ids))
        X = cooccurrence_matrix(row_of[words], doc, len(vocab_ids), window=cfg.window,
                                distance_weighting=cfg.distance_weighting, progress=progress)
        if cfg.method == "ppmi":
            A = ppmi_matrix(X, cfg.alpha)
        else:
            A = centred_operator(transform_counts(X, cfg.count_transform))
        U, S = truncated_svd(A, cfg.dim, seed=cfg.seed)
        vecs = U * (S ** cfg.svd_power)[None, :]
        occurred = np.asarray(X.sum(axis=1)).ravel() > 0  # words never seen in a window keep a zero vector
        vecs[~occurred] = 0.0
        full = np.zeros((cfg.vocab_size, cfg.dim), dtype=np.float32)
        full[vocab_ids] = vecs
        self.vectors.copy_(torch.from_numpy(full))
        self.singular_values.copy_(torch.from_numpy(S.astype(np.float32)))
        self.word_mask.copy_(torch.from_numpy(mask))
        return {"words": int(len(words)), "pairs": float(X.sum()) / 2, "nonzeros": int(X.nnz),
                "seconds": time.perf_counter() - t0}


def _bar(total: int, enabled: bool, desc: str):
    if not enabled or total <= 1:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="chunk", disable=None, file=sys.stderr)

