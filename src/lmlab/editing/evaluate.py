"""Evaluate edit methods on many requests, CounterFact-style: one row per method, the unedited model included.

Single edits (rome, ft, and memit with batch 1) are applied one at a time and undone after measuring by copying
back the one edited matrix (`EditResult.restore`), so nothing is reloaded. `batch=N` applies N requests at once
(MEMIT's mass editing; ROME applies them in turn; FT-L fine-tunes on all N) and measures each of them afterwards.

Batches follow MEMIT's MultiCounterFact rules: no batch holds two edits of one subject (one key cannot map to two
values; such requests go to different batches), and a neighbourhood prompt about a subject that is itself edited
in the same batch is left out of that case's neighbourhood score (it is meant to change; in the small world most
neighbours are other edited subjects: 409 of the first 100 cases' 500 neighbour prompts).
"""

from __future__ import annotations

import re
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
        cases, entropies, left_out = [], [], 0
        if method != NONE and method not in layers:
            layers[method] = default_layers(model, tokenizer, reqs, method)
        groups = conflict_free_groups(reqs, batch)
        bar = tqdm(groups, desc=f"edit eval {method}", unit="edit" if batch == 1 else "batch",
                   disable=None if progress else True)  # None: only on a terminal
        for group in bar:
            result = None
            if method != NONE:
                result = edit(model, tokenizer, group, method, layers=layers[method], in_place=True, stats=stats,
                              measure=False, **hparams.get(method, {}))
            try:
                edited = [r.subject for r in group] if len(group) > 1 else []
                for r in group:
                    probs = case_probs(model, tokenizer, r)
                    probs, n_left_out = without_edited_neighbours(probs, r, edited)
                    left_out += n_left_out
                    scores = case_scores(probs)
                    if fluency:
                        entropies.append(generation_entropy(model, tokenizer, generation_prompts(r)))
                    cases.append({"case_id": r.case_id, "kind": r.kind, **scores, "probs": probs})
            finally:
                if result is not None:
                    result.restore()
        summary = summarize(cases, entropies)
        summary["neighbours_left_out"] = left_out
        summary["layers"] = layers.get(method)
        summary["seconds"] = time.perf_counter() - t0
        out["methods"][method] = summary
        out["cases"][method] = cases
    return out


COLUMNS = [("S", "S"), ("efficacy_score", "ES"), ("paraphrase_score", "PS"), ("neighborhood_score", "NS"),
           ("efficacy_magnitude", "EM"), ("paraphrase_magnitude", "PM"), ("neighborhood_magnitude", "NM"),
           ("generation_entropy", "GE")]


def conflict_free_groups(requests: list[Any], batch: int) -> list[list[Any]]:
    """Requests in order, in groups of at most `batch` with no subject twice in a group (each request goes to the
    first group that has room and lacks its subject)."""
    groups: list[list[Any]] = []
    subjects: list[set[str]] = []
    for r in requests:
        for g, s in zip(groups, subjects):
            if len(g) < batch and r.subject not in s:
                g.append(r)
                s.add(r.subject)
                break
        else:
            groups.append([r])
            subjects.append({r.subject})
    return groups


def without_edited_neighbours(probs: dict[str, Any], request: Any, edited: Sequence[str]) -> tuple[dict, int]:
    """`probs` (metrics.case_probs) without the neighbourhood prompts that mention a subject in `edited` (other
    than the request's own); returns (probs, number left out)."""
    others = [re.compile(rf"(?<!\w){re.escape(s)}(?!\w)") for s in set(edited) - {request.subject}]
    if not others:
        return probs, 0
    kept = [pq for p, pq in zip(request.neighborhood_prompts, probs["neighborhood"])
            if not any(o.search(p) for o in others)]
    return {**probs, "neighborhood": kept}, len(probs["neighborhood"]) - len(kept)


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
