"""Evaluate edit methods on many requests, CounterFact-style: one row per method, the unedited model included.

Single edits (rome, ft, and memit with batch 1) are applied one at a time and undone after measuring by copying
back the one edited matrix (`EditResult.restore`), so nothing is reloaded. `batch=N` applies N requests at once
(MEMIT's mass editing; ROME applies them in turn; FT-L fine-tunes on all N) and measures each of them afterwards.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import torch.nn as nn

from lmlab.editing.api import METHODS, default_layers, edit
from lmlab.editing.metrics import case_probs, case_scores, generation_entropy, generation_prompts, summarize
from lmlab.editing.requests import as_requests
from lmlab.editing.stats import DEFAULT_N_TOKENS, SecondMoments
from lmlab.errors import LmlabError
from lmlab.tokenization import Tokenizer

NONE = "none"


def evaluate_edits(model: nn.Module, tokenizer: Tokenizer, requests: Sequence[Any], methods: Sequence[str], *,
                   batch: int = 1, layers: dict[str, list[int]] | None = None, stats: SecondMoments | None = None,
                   stats_data: Any = None, n_tokens: int = DEFAULT_N_TOKENS, cache_dir: Any = None,
                   fluency: bool = True, hparams: dict[str, dict] | None = None, progress: bool = False
                   ) -> dict[str, Any]:
    """{"methods": {name: summary (see metrics.summarize) + layers, seconds}, "cases": {name: [per-case]}}.

    methods: any of "none", "rome", "memit", "ft". model is edited in place and restored after each edit.
    layers: {method: layers} overrides (default: causal tracing, chosen once). hparams: {method: {key: value}}.
    """
    from tqdm import tqdm

    reqs = as_requests(list(requests))
    bad = [m for m in methods if m != NONE and m not in METHODS]
    if bad or not methods:
        raise LmlabError(f"unknown method(s) {bad}; choose from: {NONE}, {', '.join(METHODS)}")
    if batch < 1:
        raise LmlabError(f"--batch must be at least 1, got {batch}")
    if any(m in ("rome", "memit") for m in methods) and stats is None:
        stats = SecondMoments(model, tokenizer, stats_data, n_tokens=n_tokens, cache_dir=cache_dir,
                              progress=progress)
    layers = dict(layers or {})
    hparams = hparams or {}
    out: dict[str, Any] = {"methods": {}, "cases": {}, "n_requests": len(reqs), "batch": batch}
    for method in methods:
        t0 = time.perf_counter()
        cases, entropies = [], []
        if method != NONE and method not in layers:
            layers[method] = default_layers(model, tokenizer, reqs, method)
        groups = [reqs[i:i + batch] for i in range(0, len(reqs), batch)]
        bar = tqdm(groups, desc=f"edit eval {method}", unit="edit" if batch == 1 else "batch",
                   disable=None if progress else True)  # None: only on a terminal
        for group in bar:
            result = None
            if method != NONE:
                result = edit(model, tokenizer, group, method, layers=layers[method], in_place=True, stats=stats,
                              measure=False, **hparams.get(method, {}))
            try:
                for r in group:
                    probs = case_probs(model, tokenizer, r)
                    scores = case_scores(probs)
                    if fluency:
                        entropies.append(generation_entropy(model, tokenizer, generation_prompts(r)))
                    cases.append({"case_id": r.case_id, "kind": r.kind, **scores, "probs": probs})
            finally:
                if result is not None:
                    result.restore()
        summary = summarize(cases, entropies)
        summary["layers"] = layers.get(method)
        summary["seconds"] = time.perf_counter() - t0
        out["methods"][method] = summary
        out["cases"][method] = cases
    return out


COLUMNS = [("S", "S"), ("efficacy_score", "ES"), ("paraphrase_score", "PS"), ("neighborhood_score", "NS"),
           ("efficacy_magnitude", "EM"), ("paraphrase_magnitude", "PM"), ("neighborhood_magnitude", "NM"),
           ("generation_entropy", "GE")]


def format_table(results: dict[str, Any]) -> str:
    """The ROME paper's table layout: one row per method; scores ×100 (GE in bits)."""
    head = f"{'method':<8}" + "".join(f"{short:>8}" for _, short in COLUMNS) + f"{'layers':>10}"
    lines = [head, "-" * len(head)]
    for name, s in results["methods"].items():
        cells = "".join(f"{s[k]:>8.1f}" if s.get(k) is not None else f"{'-':>8}" for k, _ in COLUMNS)
        lay = ",".join(map(str, s["layers"])) if s.get("layers") else "-"
        lines.append(f"{name:<8}{cells}{lay:>10}")
    lines.append(f"{results['n_requests']} requests, batch {results['batch']}. ES/PS/NS: efficacy/paraphrase/"
                 "neighbourhood score; EM/PM/NM: magnitudes (P differences ×100); S: harmonic mean of ES, PS, NS; "
                 "GE: generation entropy (bits)")
    return "\n".join(lines)
