"""Interpolating a language model with a non-parametric estimate, and the perplexity of the mixture.

Both infini-gram (∞-gram + neural) and kNN-LM mix per token: p = λ·p_other + (1−λ)·p_LM, computed in log space
so that p_other = 0 (−inf) is exact.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from lmlab.errors import LmlabError


def check_lambda(lam: float) -> float:
    """λ as a float in [0, 1], or a one-line error."""
    if not 0.0 <= float(lam) <= 1.0:
        raise LmlabError(f"lambda must be between 0 and 1, got {lam}")
    return float(lam)


def interpolate(logp_other: np.ndarray, logp_lm: np.ndarray, lam: float) -> np.ndarray:
    """log(λ·exp(logp_other) + (1−λ)·exp(logp_lm)) elementwise (float64 arrays of the same shape, nats)."""
    lam = check_lambda(lam)
    with np.errstate(divide="ignore"):
        return np.logaddexp(np.log(lam) + logp_other, np.log1p(-lam) + logp_lm)


def perplexity_of(logprobs: np.ndarray) -> float:
    """exp(mean negative log-likelihood) of per-token log-probs (nats); inf when a token has probability 0."""
    return math.exp(-float(np.mean(logprobs))) if len(logprobs) else float("nan")


def lambda_sweep(logp_other: np.ndarray, logp_lm: np.ndarray, lambdas: Sequence[float]) -> dict[float, float]:
    """{λ: perplexity of the mixture} for each λ."""
    return {float(lam): perplexity_of(interpolate(logp_other, logp_lm, lam)) for lam in lambdas}
