"""Metric definitions of the harness, on plain numbers (log-likelihoods in nats, strings), as published.

Per-item scores (one value per evaluated item; the task's score is their aggregate):
- `acc` (multiple choice): 1 when the gold choice has the highest log-likelihood log P(choice | context) among the
  candidates, i.e. the answer is restricted to the candidates (Brown et al. 2020, §2.4; lm-evaluation-harness).
- `acc_norm` (multiple choice): the same after dividing each log-likelihood by the number of *characters* of the
  choice (lm-evaluation-harness's `acc_norm`; Gao et al. 2021 "Multiple choice normalization in LM evaluation"),
  which removes the bias towards short answers.
- `exact_match` (generation): 1 when the generated text, stripped of surrounding white space, equals the target.
- `acc` for `loglikelihood` tasks is `is_greedy`: 1 when every token of the target is the model's argmax
  (the target is what greedy decoding would produce, as in LAMBADA, Paperno et al. 2016).
Ties go to the first candidate (numpy argmax), as in lm-evaluation-harness.

Aggregates over items (x_i = per-item log-likelihood in nats):
- mean metrics (acc, acc_norm, exact_match): (1/n) Σ score_i.
- `perplexity` of a loglikelihood task: exp(-(1/n) Σ x_i)  (per item, not per token: lm-evaluation-harness).
- rolling log-likelihood of documents (each token predicted once, see `lmlab.generation.token_logprobs`):
  perplexity = exp(-Σ x_i / Σ tokens_i), word_perplexity = exp(-Σ x_i / Σ words_i),
  byte_perplexity = exp(-Σ x_i / Σ bytes_i), bits_per_byte = -Σ x_i / (Σ bytes_i · ln 2)
  (words = whitespace-separated pieces, bytes = UTF-8 bytes; Gao et al. 2020 "The Pile", §3).
Standard errors are bootstrap estimates (Efron & Tibshirani 1993): the standard deviation of the aggregate over
`iters` resamples of the items drawn with replacement, from a seeded generator (same seed → same error bars).
"""

from __future__ import annotations

import math
import re
from typing import Callable, Sequence

import numpy as np

_WHITESPACE = re.compile(r"\s+")


# ============================================================================================ per-item scores ===
def multiple_choice_scores(loglikelihoods: Sequence[float], choices: Sequence[str], gold: int) -> dict[str, int]:
    """{"acc", "acc_norm"} (each 0 or 1) for one multiple-choice item.

    loglikelihoods: log P(choice_j | context) in nats, one per choice; choices: the choice strings (their character
    counts normalise acc_norm); gold: index of the right choice.
    """
    lls = np.asarray(loglikelihoods, dtype=np.float64)
    lengths = np.asarray([max(len(c), 1) for c in choices], dtype=np.float64)
    return {"acc": int(np.argmax(lls) == gold), "acc_norm": int(np.argmax(lls / lengths) == gold)}


def exact_match(prediction: str, target: str) -> int:
    """1 when prediction and target are equal after stripping surrounding white space, else 0."""
    return int(prediction.strip() == target.strip())


def count_words(text: str) -> int:
    """Words of a document for word perplexity: pieces between runs of white space (lm-evaluation-harness)."""
    return len([w for w in _WHITESPACE.split(text) if w])


# =============================================================================================== aggregates ===
def mean(values: Sequence[float]) -> float:
    """Arithmetic mean of per-item scores."""
    return float(np.mean(np.asarray(values, dtype=np.float64)))


def loglikelihood_perplexity(loglikelihoods: Sequence[float]) -> float:
    """exp(-mean log-likelihood) over items (nats in, a perplexity per item out)."""
    return math.exp(-mean(loglikelihoods))


def rolling_metrics(loglikelihoods: Sequence[float], n_tokens: Sequence[int], n_words: Sequence[int],
                    n_bytes: Sequence[int]) -> dict[str, float]:
    """Corpus-level perplexities of documents scored whole: {"perplexity" (per token), "word_perplexity",
    "byte_perplexity", "bits_per_byte"}; each argument has one entry per document (log-likelihoods in nats)."""
    total = float(np.sum(loglikelihoods))
    tokens, words, nbytes = float(np.sum(n_tokens)), float(np.sum(n_words)), float(np.sum(n_bytes))
    return {"perplexity": _safe_exp(-total / tokens) if tokens else float("nan"),
            "word_perplexity": _safe_exp(-total / words) if words else float("nan"),
            "byte_perplexity": _safe_exp(-total / nbytes) if nbytes else float("nan"),
            "bits_per_byte": -total / nbytes / math.log(2) if nbytes else float("nan")}


def _safe_exp(x: float) -> float:
    return math.exp(x) if x < 700 else float("inf")


# ========================================================================================= bootstrap errors ===
def bootstrap_stderr(columns: Sequence[Sequence[float]], aggregate: Callable[..., float], *, iters: int = 1000,
                     seed: int = 1234) -> float | None:
    """Bootstrap standard error of `aggregate(*columns)`: items (rows across the columns) are resampled with
    replacement `iters` times by a numpy generator seeded with `seed`; returns the standard deviation (ddof=1) of the
    resampled aggregates, or None for fewer than 2 items. Every column has one entry per item."""
    cols = [np.asarray(c, dtype=np.float64) for c in columns]
    n = len(cols[0])
    if n < 2:
        return None
    rng = np.random.default_rng(seed)
    stats = np.empty(iters, dtype=np.float64)
    for k in range(iters):
        idx = rng.integers(0, n, size=n)
        stats[k] = aggregate(*(c[idx] for c in cols))
    finite = stats[np.isfinite(stats)]
    return float(np.std(finite, ddof=1)) if len(finite) > 1 else None


def mean_with_stderr(values: Sequence[float], *, iters: int = 1000, seed: int = 1234) -> tuple[float, float | None]:
    """(mean, bootstrap standard error of the mean) of per-item scores."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return float(v.mean()) if len(v) else float("nan"), None
    # Vectorised form of bootstrap_stderr for the common case: all resampled means in one matrix product.
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(len(v), np.full(len(v), 1.0 / len(v)), size=iters)  # (iters, n) resample counts
    stats = counts @ v / len(v)
    return float(v.mean()), float(np.std(stats, ddof=1))
