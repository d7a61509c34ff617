"""One interface for every edit method: `edit(model, tokenizer, requests, method=...) -> EditResult`."""

from __future__ import annotations

import copy
import dataclasses
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

from lmlab.editing.ft_l import FtHparams, apply_ft, ft_parameters
from lmlab.editing.memit import MemitHparams, apply_memit
from lmlab.editing.metrics import case_probs
from lmlab.editing.prompts import check_layers, context_prefixes, mlp_projection
from lmlab.editing.requests import EditRequest, as_requests
from lmlab.editing.rome import RomeHparams, apply_rome
from lmlab.editing.stats import DEFAULT_N_TOKENS, SecondMoments
from lmlab.errors import LmlabError
from lmlab.tokenization import Tokenizer

METHODS = {"rome": RomeHparams, "memit": MemitHparams, "ft": FtHparams}
TRACE_FACTS = 8      # facts traced to choose the default layer
_LAYER_CACHE: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()


@dataclass
class EditResult:
    """What an edit did.

    model: the edited model (a copy unless in_place=True). log: one entry per request ({request, method, layers,
    update_norms, before, after, seconds}). deltas: {parameter name: new − old} for every changed parameter.
    originals: {parameter name: the value before the edit}, for `restore()`.
    """

    model: nn.Module
    method: str
    layers: list[int]
    log: list[dict[str, Any]]
    deltas: dict[str, torch.Tensor]
    originals: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)

    def restore(self) -> None:
        """Put the changed parameters of `model` back to their values before the edit (exactly, no reload)."""
        with torch.no_grad():
            for name, value in self.originals.items():
                self.model.get_parameter(name).copy_(value)


def make_hparams(method: str, **hparams) -> Any:
    """The method's hyper-parameter dataclass with `hparams` applied; LmlabError for an unknown method or key."""
    if method not in METHODS:
        raise LmlabError(f"unknown edit method {method!r}; choose one of: {', '.join(METHODS)}")
    cls = METHODS[method]
    names = {f.name for f in dataclasses.fields(cls)}
    bad = sorted(set(hparams) - names)
    if bad:
        raise LmlabError(f"unknown {method} setting(s) {bad}; valid: {sorted(names)}")
    return cls(**hparams)


def parse_hparams(items: list[str]) -> dict[str, int | float]:
    """Method settings written KEY=VALUE (`lmlab edit --hparam v_steps=40`) → {key: number}: a value of digits is an
    int, any other a float. LmlabError naming the item for one without '=' or with a value that is no number."""
    out: dict[str, int | float] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise LmlabError(f"--hparam {item!r}: write KEY=VALUE, e.g. --hparam v_steps=40")
        try:
            out[key.strip()] = int(value) if value.strip().lstrip("-").isdigit() else float(value)
        except ValueError:
            raise LmlabError(f"--hparam {item!r}: the value must be a number") from None
    return out


def hparams_per_method(methods: list[str], given: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Route one set of settings to each method that has them: {method: {key: value}} for every method of
    `methods` but "none" (`evaluate_edits`' hparams). LmlabError when a key is a setting of none of them."""
    routed = {}
    for m in methods:
        if m != "none":
            known = {f.name for f in dataclasses.fields(make_hparams(m))}
            routed[m] = {k: v for k, v in given.items() if k in known}
    unused = sorted(set(given) - {k for h in routed.values() for k in h})
    if unused:
        raise LmlabError(f"--hparam {', '.join(unused)}: no method in {methods} has such a setting")
    return routed


def default_layers(model: nn.Module, tokenizer: Tokenizer, requests: list[EditRequest], method: str = "rome"
                   ) -> list[int]:
    """Layers to edit, chosen by causal tracing (lmlab.inspection) on up to 8 of the requests' facts: the layer
    where the average indirect effect of the MLP output at the last subject token peaks, restoring one layer at a
    time (window 1, so the peak names a layer, not a window). The last layer is never chosen: its MLP output at
    the subject token reaches the prediction through no later attention. ROME/FT edit that layer; MEMIT edits a
    range ending there of max(2, n_layer // 6) layers (MEMIT's critical path: 5 of GPT-2 XL's 48 layers), moved
    forward when it would start before layer 0 (never including the last layer).
    Cached per model object and facts."""
    peak = _traced_peak(model, tokenizer, requests[:TRACE_FACTS])
    if method == "memit":
        n = model.config.n_layer
        width = min(max(2, n // 6), max(1, n - 1))
        start = max(0, min(peak - width + 1, n - 1 - width))  # a range cut off at layer 0 extends forward instead
        return list(range(start, start + width))
    return [peak]


def _traced_peak(model: nn.Module, tokenizer: Tokenizer, requests: list[EditRequest]) -> int:
    from lmlab.inspection import average_traces, trace_facts

    facts = [{"prompt": r.prompt, "subject": r.subject, "target": r.target_true} for r in requests]
    key = tuple((f["prompt"], f["subject"], f["target"]) for f in facts)
    cache = _LAYER_CACHE.setdefault(model, {})
    if key not in cache:
        traces = trace_facts(model, tokenizer, facts, kinds=["mlp"], window=1)
        avg = average_traces(traces)
        row = avg["buckets"].index("last subject token")
        ie = [v if v is not None else float("-inf") for v in avg["indirect_effect"]["mlp"][row]]
        candidates = range(max(1, len(ie) - 1))
        cache[key] = int(max(candidates, key=ie.__getitem__))
    return cache[key]


def _probe(model: nn.Module, tokenizer: Tokenizer, r: EditRequest) -> dict[str, Any]:
    p_new, p_true = case_probs(model, tokenizer, dataclasses.replace(
        r, paraphrase_prompts=[], neighborhood_prompts=[], neighborhood_targets=[]))["edit"]
    return {"p_new": p_new, "p_true": p_true}


def edit(model: nn.Module, tokenizer: Tokenizer, requests: Any, method: str = "rome", *,
         layers: list[int] | None = None, in_place: bool = False, stats: SecondMoments | None = None,
         stats_data: Any = None, n_tokens: int = DEFAULT_N_TOKENS, cache_dir: Any = None, measure: bool = True,
         progress: bool = False, **hparams) -> EditResult:
    """Rewrite facts in `model`'s weights.

    requests: one or many EditRequest / records {prompt with '{}', subject, target_new, target_true?}.
    method: "rome" (one rank-one update per request, applied in turn), "memit" (all requests in one batch, spread
    over `layers`), "ft" (FT-L: constrained fine-tuning of one layer's MLP output projection on all requests).
    layers: the layers to edit (default: by causal tracing, see `default_layers`). in_place: edit `model` itself
    (else a deep copy). ROME/MEMIT need key statistics: `stats` (a SecondMoments to share across calls) or
    `stats_data` (shard dir, text file or token array; with n_tokens and cache_dir). measure: record P(new),
    P(true) on the edit prompt before and after in the log. hparams: fields of RomeHparams / MemitHparams /
    FtHparams (e.g. v_steps=30, mom2_update_weight=5000).
    """
    hp = make_hparams(method, **hparams)
    reqs = as_requests(requests)
    source = model  # context prefixes are cached per model object: ask the source, not a fresh copy
    if not in_place:
        model = copy.deepcopy(model)
    layers = check_layers(model, list(layers)) if layers else default_layers(model, tokenizer, reqs, method)
    if method in ("rome", "ft") and len(layers) != 1:
        raise LmlabError(f"{method} edits one layer; give one layer (got {layers})")
    if method in ("rome", "memit") and stats is None:
        stats = SecondMoments(model, tokenizer, stats_data, n_tokens=n_tokens, cache_dir=cache_dir,
                              progress=progress)
    if method == "ft":
        names = list(ft_parameters(model, layers[0], hp))
    else:
        names = [f"blocks.{layer}.mlp.c_proj.{n}" for layer in layers
                 for n, _ in mlp_projection(model, layer).named_parameters()]
    originals = {n: model.get_parameter(n).detach().clone() for n in names}
    before = [_probe(model, tokenizer, r) for r in reqs] if measure else [None] * len(reqs)
    t0 = time.perf_counter()
    entries: list[dict[str, Any]] = []
    if method == "rome":
        C = stats.get(layers[0])
        prefixes = context_prefixes(source, tokenizer, hp.n_prefixes, hp.prefix_length, hp.seed)
        text = stats.tokens() if hp.protect_relation else None
        for r in reqs:
            t = time.perf_counter()
            info = apply_rome(model, tokenizer, r, layers[0], C, prefixes, hp, text_tokens=text)
            entries.append({"update_norms": {f"blocks.{layers[0]}.mlp.c_proj.weight": float(info["delta"].norm())},
                            "key_norm": info["key_norm"], "value_delta_norm": info["value_delta_norm"],
                            "v_nll": info["v_nll"], "seconds": time.perf_counter() - t})
    elif method == "memit":
        C = stats.get_many(layers)
        prefixes = context_prefixes(source, tokenizer, hp.n_prefixes, hp.prefix_length, hp.seed)
        text = stats.tokens() if hp.protect_relation else None
        info = apply_memit(model, tokenizer, reqs, layers, C, prefixes, hp, text_tokens=text, progress=progress)
        norms = {f"blocks.{layer}.mlp.c_proj.weight": float(d.norm()) for layer, d in info["deltas"].items()}
        entries = [{"update_norms": norms, "z_nll_mean": info["z_nll_mean"],
                    "seconds": time.perf_counter() - t0}] * len(reqs)
    else:
        info = apply_ft(model, tokenizer, reqs, layers[0], hp)
        norms = {n: float(d.norm()) for n, d in info["deltas"].items()}
        entries = [{"update_norms": norms, "nll": info["nll"], "seconds": time.perf_counter() - t0}] * len(reqs)
    deltas = {n: (model.get_parameter(n).detach() - v) for n, v in originals.items()}
    deltas = {n: d for n, d in deltas.items() if bool(d.any())}
    after = [_probe(model, tokenizer, r) for r in reqs] if measure else [None] * len(reqs)
    log = []
    for r, e, b, a in zip(reqs, entries, before, after):
        entry = {"request": r.to_dict(), "method": method, "layers": layers, "hparams": dataclasses.asdict(hp),
                 **e}
        if measure:
            entry["before"], entry["after"] = b, a
        log.append(entry)
    return EditResult(model=model, method=method, layers=layers, log=log, deltas=deltas,
                      originals={n: originals[n] for n in deltas})
