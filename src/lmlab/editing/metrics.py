"""Edit metrics with CounterFact's definitions (Meng et al. 2022, ROME §3.2 / appendix), reported ×100.

For a prompt and two objects, P(o) is the model's probability of o after the prompt, as ROME's code computes it:
exp of the mean per-token log-probability of ' ' + o (the geometric mean per token; equals P(o) for one token).

    efficacy      score: P(new) > P(true) on the edit prompt              magnitude: P(new) − P(true)
    paraphrase    score: P(new) > P(true) on held-out paraphrases        magnitude: P(new) − P(true)
    neighbourhood score: P(true') > P(new) on other subjects' prompts     magnitude: P(true') − P(new)
                  (true' = that neighbour's own true object)
    S             harmonic mean of the three scores
    entropy       generation entropy (fluency): the weighted mean of the 2-gram and 3-gram entropies (bits,
                  weights 2/3 and 4/3, ROME's `n_gram_entropy`) of sampled continuations of the request's
                  generation prompts

Scores are averaged over a case's prompts, then over cases.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any, Sequence

import numpy as np
import torch.nn as nn

from lmlab.editing.prompts import target_text
from lmlab.editing.requests import EditRequest
from lmlab.generation import generate, score_continuations
from lmlab.tokenization import Tokenizer

SCORE_KEYS = ("efficacy_score", "efficacy_magnitude", "paraphrase_score", "paraphrase_magnitude",
              "neighborhood_score", "neighborhood_magnitude")


def target_probs(model: nn.Module, tokenizer: Tokenizer, pairs: Sequence[tuple[str, str]]) -> list[float]:
    """P(target | prompt) per (filled prompt, target) pair: exp(mean per-token log-prob of ' ' + target)."""
    texts = [(p, target_text(p, t)) for p, t in pairs]
    scored = score_continuations(model, tokenizer, texts, batch_size=32)
    return [math.exp(lp / max(1, len(tokenizer.encode(c)))) for (lp, _), (_, c) in zip(scored, texts)]


def case_probs(model: nn.Module, tokenizer: Tokenizer, request: EditRequest) -> dict[str, Any]:
    """P(new), P(true) on the edit prompt, the paraphrases and the neighbours (one batched scoring call).

    {"edit": [p_new, p_true|None], "paraphrase": [[p_new, p_true], ...], "neighborhood": [[p_true', p_new], ...]}
    """
    fill = lambda p: p.replace("{}", request.subject, 1) if "{}" in p else p  # noqa: E731
    pairs: list[tuple[str, str]] = [(request.filled_prompt, request.target_new)]
    has_true = request.target_true is not None
    if has_true:
        pairs.append((request.filled_prompt, request.target_true))
        for p in request.paraphrase_prompts:
            pairs += [(fill(p), request.target_new), (fill(p), request.target_true)]
    for p, t in zip(request.neighborhood_prompts, request.neighborhood_targets):
        pairs += [(p, t), (p, request.target_new)]
    probs = target_probs(model, tokenizer, pairs)
    out: dict[str, Any] = {"edit": [probs[0], probs[1] if has_true else None]}
    i = 2 if has_true else 1
    n_par = len(request.paraphrase_prompts) if has_true else 0
    out["paraphrase"] = [probs[i + 2 * j: i + 2 * j + 2] for j in range(n_par)]
    i += 2 * n_par
    out["neighborhood"] = [probs[i + 2 * j: i + 2 * j + 2] for j in range(len(request.neighborhood_prompts))]
    return out


def case_scores(probs: dict[str, Any]) -> dict[str, float | None]:
    """CounterFact scores of one case (fractions in [0, 1], magnitudes in [−1, 1]; None when not measurable)."""
    out: dict[str, float | None] = dict.fromkeys(SCORE_KEYS)
    p_new, p_true = probs["edit"]
    if p_true is not None:
        out["efficacy_score"] = float(p_new > p_true)
        out["efficacy_magnitude"] = p_new - p_true
    if probs["paraphrase"]:
        out["paraphrase_score"] = float(np.mean([a > b for a, b in probs["paraphrase"]]))
        out["paraphrase_magnitude"] = float(np.mean([a - b for a, b in probs["paraphrase"]]))
    if probs["neighborhood"]:
        out["neighborhood_score"] = float(np.mean([a > b for a, b in probs["neighborhood"]]))
        out["neighborhood_magnitude"] = float(np.mean([a - b for a, b in probs["neighborhood"]]))
    return out


def harmonic_mean(values: Sequence[float]) -> float | None:
    """Harmonic mean (0 if any value is 0); None for no values."""
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    if any(v <= 0 for v in vals):
        return 0.0
    return len(vals) / sum(1.0 / v for v in vals)


def summarize(cases: Sequence[dict[str, float | None]], entropies: Sequence[float] = ()) -> dict[str, Any]:
    """Mean of each score over cases ×100, S = harmonic mean of the three scores, mean generation entropy."""
    out: dict[str, Any] = {"n_cases": len(cases)}
    for k in SCORE_KEYS:
        vals = [c[k] for c in cases if c.get(k) is not None]
        out[k] = 100.0 * float(np.mean(vals)) if vals else None
    out["S"] = harmonic_mean([out["efficacy_score"], out["paraphrase_score"], out["neighborhood_score"]])
    out["generation_entropy"] = float(np.mean(entropies)) if len(entropies) else None
    return out


def n_gram_entropy(text: str, ns: Sequence[int] = (2, 3), weights: Sequence[float] = (2 / 3, 4 / 3)) -> float:
    """ROME's fluency measure of one text: mean over n of weight_n × entropy (bits) of its word n-gram counts."""
    words = re.findall(r"\w+|[^\w\s]", text.lower())
    ents = []
    for n, w in zip(ns, weights):
        grams = Counter(tuple(words[i:i + n]) for i in range(max(0, len(words) - n + 1)))
        total = sum(grams.values())
        h = -sum(c / total * math.log2(c / total) for c in grams.values()) if total else 0.0
        ents.append(w * h)
    return float(np.mean(ents))


def generation_entropy(model: nn.Module, tokenizer: Tokenizer, prompts: Sequence[str], *, max_new_tokens: int = 40,
                       seed: int = 0) -> float:
    """Mean n-gram entropy of sampled continuations (top-k 5, as ROME) of `prompts`; 0.0 for no prompts."""
    if not prompts:
        return 0.0
    room = max(1, min(max_new_tokens, model.config.block_size // 2))
    outs = generate(model, tokenizer, list(prompts), max_new_tokens=room, temperature=1.0, top_k=5, seed=seed,
                    truncate="left")
    return float(np.mean([n_gram_entropy(o.prompt + o.text) for o in outs]))


def generation_prompts(request: EditRequest) -> list[str]:
    """The prompts whose continuations measure fluency: the request's generation prompts, else its edit prompt
    and paraphrases."""
    if request.generation_prompts:
        return list(request.generation_prompts)
    fill = lambda p: p.replace("{}", request.subject, 1) if "{}" in p else p  # noqa: E731
    return [request.filled_prompt] + [fill(p) for p in request.paraphrase_prompts]
