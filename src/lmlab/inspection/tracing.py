"""Causal tracing (Meng et al. 2022, "Locating and Editing Factual Associations in GPT", ROME §2).

For a fact (prompt, subject, object o):
  1. clean run: P_clean(o) at the last position, and every hidden state h_l[t] is kept;
  2. corrupted runs: Gaussian noise ε ~ N(0, ν²) is added to the input embeddings of the subject's tokens
     (hook `embed`), `samples` draws at once in the batch dimension: P_corrupted(o) = mean over the draws;
  3. corrupted-with-restoration runs: one state is set back to its clean value at (layer l, token t), and
     P_restored(o) is measured; the indirect effect of that state is IE(l, t) = P_restored − P_corrupted and the
     total effect of the subject is TE = P_clean − P_corrupted.

States ("kinds"): `resid` = the residual stream leaving block l (`blocks.{l}.resid_post`), restored at layer l
only; `mlp` = the MLP output (`blocks.{l}.mlp.out`) and `attn` = the attention output (`blocks.{l}.attn.out`),
restored at every layer of a window around l — range(max(0, l − w//2), min(L, l + ⌈w/2⌉)), ROME's window of 10
on GPT-2 XL's 48 layers. Default window: max(1, min(10, n_layer // 2)), i.e. 10 for deep models and a proportionally
smaller one for small models (2 for the 4-layer tiny model), so that a window never covers the whole model.

Noise: ν = noise_scale × σ with noise_scale = 3 (ROME), σ the standard deviation of all entries of the token
embedding rows (`wte`) of the subject tokens of the facts being traced (ROME's `collect_embedding_std` over the
subjects). The same noise draws (seeded) are used for every restoration of one fact, so the differences between
(l, t) cells are not sampling noise. Tokens before the subject are never corrupted, so restoring them changes
nothing: their cells equal P_corrupted and are not run.

Averaging over facts uses ROME's token buckets: first subject token, middle subject tokens, last subject token,
first subsequent token, further tokens, last token (tokens before the subject are left out; when the first token
after the subject is also the last token, it counts in both buckets, as in ROME's notebook).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import torch
import torch.nn as nn

from lmlab.errors import LmlabError
from lmlab.inspection.hooks import run_with_cache, run_with_hooks
from lmlab.inspection.plots import new_figure, save_figure
from lmlab.inspection.prompts import locate_subject, target_token, token_labels
from lmlab.tokenization import Tokenizer

KINDS = {"resid": "blocks.{l}.resid_post", "mlp": "blocks.{l}.mlp.out", "attn": "blocks.{l}.attn.out"}
KIND_TITLES = {"resid": "residual stream (resid_post)", "mlp": "MLP output (mlp.out)",
               "attn": "attention output (attn.out)"}
BUCKETS = ("first subject token", "middle subject tokens", "last subject token", "first subsequent token",
           "further tokens", "last token")
NOISE_SCALE = 3.0
SAMPLES = 10
# Floats of (rows, T, V) logits one restoration pass may hold (512 MB): bounds memory for GPT-2-sized vocabularies.
LOGIT_BUDGET = 1 << 27


def default_window(n_layer: int) -> int:
    """Layers restored together for mlp/attn: 10 as in ROME, at most half the model's depth, at least 1."""
    return max(1, min(10, n_layer // 2))


def window_layers(layer: int, window: int, n_layer: int) -> range:
    """The layers restored for a window centred on `layer` (ROME: [l − w//2, l + ⌈w/2⌉) clipped to the model)."""
    return range(max(0, layer - window // 2), min(n_layer, layer - (-window // 2)))


def embedding_std(model: nn.Module, token_ids: Iterable[int]) -> float:
    """Standard deviation of all entries of the token-embedding rows of `token_ids` (ROME's noise unit σ)."""
    ids = torch.as_tensor(sorted(set(int(i) for i in token_ids)), dtype=torch.long)
    if ids.numel() == 0:
        raise LmlabError("no subject tokens to estimate the embedding std from")
    rows = model.wte.weight[ids.to(model.wte.weight.device)].detach().float()
    return float(rows.std()) if rows.numel() > 1 else float(model.wte.weight.detach().float().std())


@dataclass
class Trace:
    """Causal trace of one fact. `scores[kind]` is P_restored(o), shape (n_layer, T) as [layer, token]."""

    prompt: str
    subject: str
    target: str | None              # the object as given; None when the model's own prediction was traced
    tokens: list[str]               # token strings of the filled prompt
    subject_range: tuple[int, int]  # [start, end) token indices of the subject
    target_id: int
    target_token: str
    clean_prob: float               # P_clean(o)
    corrupted_prob: float           # P_corrupted(o), mean over noise draws
    noise_std: float                # ν, absolute
    samples: int
    window: int
    scores: dict[str, torch.Tensor] = field(default_factory=dict)
    clean_top_id: int = -1          # the model's greedy next token on the clean prompt

    @property
    def total_effect(self) -> float:
        """TE = P_clean − P_corrupted."""
        return self.clean_prob - self.corrupted_prob

    @property
    def known(self) -> bool:
        """True when the clean model's greedy next token is the target token (ROME traces such 'known' facts)."""
        return self.clean_top_id == self.target_id

    def indirect_effect(self, kind: str) -> torch.Tensor:
        """IE = P_restored − P_corrupted, (n_layer, T)."""
        return self.scores[kind] - self.corrupted_prob

    def peak(self, kind: str) -> dict[str, Any]:
        """Where the indirect effect of `kind` is largest: {"layer", "token", "token_text", "ie"}."""
        ie = self.indirect_effect(kind)
        l, t = divmod(int(ie.argmax()), ie.shape[1])
        return {"layer": l, "token": t, "token_text": self.tokens[t], "ie": float(ie[l, t])}

    def buckets(self) -> dict[str, list[int]]:
        """Token indices of each of ROME's buckets (possibly empty), see the module docstring."""
        s, e, T = self.subject_range[0], self.subject_range[1], len(self.tokens)
        return {BUCKETS[0]: [s], BUCKETS[1]: list(range(s + 1, e - 1)), BUCKETS[2]: [e - 1],
                BUCKETS[3]: [e] if e < T else [], BUCKETS[4]: list(range(e + 1, T - 1)), BUCKETS[5]: [T - 1]}

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt, "subject": self.subject, "target": self.target, "tokens": self.tokens,
            "subject_range": list(self.subject_range), "target_id": self.target_id,
            "target_token": self.target_token, "clean_prob": self.clean_prob, "corrupted_prob": self.corrupted_prob,
            "total_effect": self.total_effect, "known": self.known, "noise_std": self.noise_std,
            "samples": self.samples, "window": self.window,
            "scores": {k: v.tolist() for k, v in self.scores.items()},
            "indirect_effect": {k: self.indirect_effect(k).tolist() for k in self.scores},
            "peaks": {k: self.peak(k) for k in self.scores},
        }


def _check_kinds(kinds: Sequence[str]) -> list[str]:
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise LmlabError(f"unknown state kind(s) {bad}; choose from {list(KINDS)}")
    return list(kinds)


@torch.no_grad()
def trace_tokens(model: nn.Module, ids: Sequence[int], subject_range: tuple[int, int], target_id: int, *,
                 noise_std: float, samples: int = SAMPLES, window: int | None = None,
                 kinds: Sequence[str] = tuple(KINDS), seed: int = 0, max_rows: int = 1024
                 ) -> tuple[float, float, dict[str, torch.Tensor], int]:
    """The numbers of a causal trace on token ids: (P_clean, P_corrupted, {kind: P_restored (n_layer, T)},
    clean greedy token id). subject_range: [start, end) token indices to corrupt; noise_std: ν (absolute).

    Restorations are batched: each forward pass holds up to `max_rows` rows (fewer when rows × T × V logits
    would exceed LOGIT_BUDGET floats), `samples` noisy copies per (kind, layer, token) cell.
    """
    kinds = _check_kinds(kinds)
    if samples < 1:
        raise LmlabError("the number of noise samples must be at least 1")
    L, T = model.config.n_layer, len(ids)
    s0, s1 = subject_range
    if not 0 <= s0 < s1 <= T:
        raise LmlabError(f"subject token range {subject_range} is not inside the {T} prompt tokens")
    window = default_window(L) if window is None else int(window)
    if window < 1:
        raise LmlabError("the restoration window must be at least 1 layer")
    device = next(model.parameters()).device
    idx = torch.as_tensor(list(ids), dtype=torch.long, device=device)[None]

    names = sorted({KINDS[k].format(l=l) for k in kinds for l in range(L)})
    logits, clean = run_with_cache(model, idx, names)
    clean_probs = logits[0, -1].float().softmax(-1)
    clean_prob, clean_top = float(clean_probs[target_id]), int(clean_probs.argmax())

    gen = torch.Generator().manual_seed(seed)
    noise = (torch.randn(samples, s1 - s0, model.config.n_embd, generator=gen) * noise_std).to(device)

    def corrupt(x: torch.Tensor, name: str) -> torch.Tensor:
        x = x.clone()
        x[:, s0:s1] += noise.repeat(x.shape[0] // samples, 1, 1).to(x.dtype)
        return x

    def target_prob(logits: torch.Tensor) -> torch.Tensor:  # (jobs·samples, T, V) → (jobs,) mean over draws
        p = logits[:, -1].float().softmax(-1)[:, target_id]
        return p.view(-1, samples).mean(1)

    corrupted_prob = float(target_prob(run_with_hooks(model, idx.expand(samples, T), {"embed": corrupt}))[0])

    # One job per (kind, layer, token) from the subject's first token on; earlier tokens are never corrupted.
    jobs = [(k, l, t) for k in kinds for l in range(L) for t in range(s0, T)]
    scores = {k: torch.full((L, T), corrupted_prob) for k in kinds}
    rows = min(max_rows, LOGIT_BUDGET // (T * model.config.vocab_size))
    per_pass = max(1, rows // samples)
    for c in range(0, len(jobs), per_pass):
        chunk = jobs[c: c + per_pass]
        where: dict[str, tuple[list[int], list[int]]] = {}  # hook name → (rows, positions) to restore
        for j, (k, l, t) in enumerate(chunk):
            restore = [l] if k == "resid" else window_layers(l, window, L)
            for layer in restore:
                rows, pos = where.setdefault(KINDS[k].format(l=layer), ([], []))
                rows.extend(range(j * samples, (j + 1) * samples))
                pos.extend([t] * samples)
        hooks = {"embed": corrupt}
        for name, (rows, pos) in where.items():
            hooks[name] = _restorer(clean[name][0], torch.tensor(rows, device=device),
                                    torch.tensor(pos, device=device))
        probs = target_prob(run_with_hooks(model, idx.expand(len(chunk) * samples, T), hooks))
        for (k, l, t), p in zip(chunk, probs.tolist()):
            scores[k][l, t] = p
    return clean_prob, corrupted_prob, scores, clean_top


def _restorer(clean_state: torch.Tensor, rows: torch.Tensor, pos: torch.Tensor):
    """Hook fn setting activation[rows[i], pos[i]] to the clean state at pos[i] (clean_state: (T, D))."""
    def fn(x: torch.Tensor, name: str) -> torch.Tensor:
        x = x.clone()
        x[rows, pos] = clean_state[pos].to(x.dtype)
        return x
    return fn


def check_fact(fact: dict[str, Any], line: int | None = None) -> tuple[str, str, str | None]:
    """(prompt, subject, target or None) of a fact record; LmlabError when a field is missing or mistyped."""
    where = f"fact {line}: " if line is not None else ""
    if not isinstance(fact, dict):
        raise LmlabError(f"{where}each fact must be an object with prompt, subject and target (or object)")
    prompt, subject = fact.get("prompt"), fact.get("subject")
    target = fact.get("target", fact.get("object"))
    if not isinstance(prompt, str) or not isinstance(subject, str):
        raise LmlabError(f"{where}needs string fields 'prompt' (with '{{}}' for the subject, or containing it) "
                         "and 'subject'")
    if target is not None and not isinstance(target, str):
        raise LmlabError(f"{where}'target'/'object' must be a string")
    return prompt, subject, target


def causal_trace(model: nn.Module, tokenizer: Tokenizer, prompt: str, subject: str, target: str | None = None, *,
                 samples: int = SAMPLES, noise_scale: float = NOISE_SCALE, noise_std: float | None = None,
                 window: int | None = None, kinds: Sequence[str] = tuple(KINDS), seed: int = 0) -> Trace:
    """Causal trace of one fact (see module docstring).

    prompt: text containing `subject`, or a template with '{}' where the subject goes. target: the object whose
    probability is traced (its first token after a space); None traces the model's own greedy next token.
    noise_std: ν in absolute units; default noise_scale × σ(embeddings of this subject's tokens).
    """
    span = locate_subject(tokenizer, prompt, subject, model.config.block_size)
    if noise_std is None:
        noise_std = noise_scale * embedding_std(model, span.ids[span.start: span.end])
    return _trace_span(model, tokenizer, span, prompt, subject, target, samples=samples, noise_std=noise_std,
                       window=window, kinds=kinds, seed=seed)


def _trace_span(model, tokenizer, span, prompt, subject, target, *, samples, noise_std, window, kinds, seed) -> Trace:
    if target is not None:
        tid = target_token(tokenizer, target, span.text)
    else:  # trace the model's own prediction: one clean pass to learn it
        logits, _ = run_with_cache(model, span.ids, [])
        tid = int(logits[0, -1].argmax())
    clean, corrupted, scores, top = trace_tokens(model, span.ids, (span.start, span.end), tid, noise_std=noise_std,
                                                 samples=samples, window=window, kinds=kinds, seed=seed)
    return Trace(prompt=span.text, subject=subject, target=target, tokens=token_labels(tokenizer, span.ids),
                 subject_range=(span.start, span.end), target_id=tid, target_token=tokenizer.decode([tid]),
                 clean_prob=clean, corrupted_prob=corrupted, noise_std=float(noise_std), samples=samples,
                 window=default_window(model.config.n_layer) if window is None else int(window), scores=scores,
                 clean_top_id=top)


def trace_facts(model: nn.Module, tokenizer: Tokenizer, facts: Sequence[dict[str, Any]], *,
                samples: int = SAMPLES, noise_scale: float = NOISE_SCALE, noise_std: float | None = None,
                window: int | None = None, kinds: Sequence[str] = tuple(KINDS), seed: int = 0,
                progress: bool = False) -> list[Trace]:
    """Causal traces of many facts ({"prompt", "subject", "target" or "object"}; the world's facts.jsonl records
    qualify). One ν for all: noise_scale × σ over the subject tokens of all the facts (ROME), unless noise_std."""
    from tqdm import tqdm

    if not facts:
        raise LmlabError("no facts to trace")
    fields = [check_fact(f, i + 1) for i, f in enumerate(facts)]
    spans = [locate_subject(tokenizer, p, s, model.config.block_size) for p, s, _ in fields]
    if noise_std is None:
        noise_std = noise_scale * embedding_std(model, [i for sp in spans for i in sp.ids[sp.start: sp.end]])
    bar = tqdm(list(zip(fields, spans)), desc="causal tracing", unit="fact", disable=not progress)
    return [_trace_span(model, tokenizer, span, p, s, t, samples=samples, noise_std=noise_std, window=window,
                        kinds=kinds, seed=seed + i) for i, ((p, s, t), span) in enumerate(bar)]


def average_traces(traces: Sequence[Trace], *, known_only: bool = True) -> dict[str, Any]:
    """Average indirect effect per (token bucket, layer) over facts, ROME-style. JSON-ready:

        {"n_facts", "n_known", "n_used", "known_only", "clean_prob", "corrupted_prob", "total_effect",
         "buckets": [...6 names...], "counts": [tokens per bucket],
         "indirect_effect": {kind: [bucket][layer]} (null where a bucket is empty),
         "peaks": {kind: {"layer", "bucket", "ie"}}}

    known_only: use only facts whose clean greedy next token is the target (ROME's "known facts"); when none is
    known, all facts are used (and n_known = 0 says so).
    """
    if not traces:
        raise LmlabError("no traces to average")
    known = [t for t in traces if t.known]
    used = known if (known_only and known) else list(traces)
    kinds = list(used[0].scores)
    L = used[0].scores[kinds[0]].shape[0]
    sums = {k: np.zeros((len(BUCKETS), L)) for k in kinds}
    counts = np.zeros(len(BUCKETS), dtype=int)
    for tr in used:
        for b, (name, toks) in enumerate(tr.buckets().items()):
            counts[b] += len(toks)
            for k in kinds:
                if toks:
                    sums[k][b] += tr.indirect_effect(k)[:, toks].sum(1).numpy()
    ie, peaks = {}, {}
    for k in kinds:
        with np.errstate(invalid="ignore", divide="ignore"):
            avg = sums[k] / counts[:, None]
        ie[k] = [[None if math.isnan(v) else float(v) for v in row] for row in avg]
        b, l = np.unravel_index(np.nanargmax(avg), avg.shape)
        peaks[k] = {"layer": int(l), "bucket": BUCKETS[b], "ie": float(avg[b, l])}
    mean = lambda xs: float(np.mean(xs))  # noqa: E731
    return {"n_facts": len(traces), "n_known": len(known), "n_used": len(used), "known_only": known_only,
            "clean_prob": mean([t.clean_prob for t in used]), "corrupted_prob": mean([t.corrupted_prob for t in used]),
            "total_effect": mean([t.total_effect for t in used]), "buckets": list(BUCKETS),
            "counts": counts.tolist(), "indirect_effect": ie, "peaks": peaks}


def best_layer(avg: dict[str, Any], kind: str = "mlp", bucket: str = "last subject token") -> int:
    """The layer where an `average_traces` result's indirect effect of `kind` peaks within one token bucket
    (default: MLP states at the last subject token, where ROME edits)."""
    if bucket not in BUCKETS:
        raise LmlabError(f"unknown token bucket {bucket!r}; choose from {list(BUCKETS)}")
    row = avg["indirect_effect"][kind][BUCKETS.index(bucket)]
    if all(v is None for v in row):
        raise LmlabError(f"no token of the traced facts falls in the bucket {bucket!r}")
    return max(range(len(row)), key=lambda l: -math.inf if row[l] is None else row[l])


def plot_trace_panels(values: dict[str, Any], row_labels: Sequence[str], path: str | os.PathLike, *,
                      title: str = "", highlight_rows: Iterable[int] = (), colorbar_label: str = "IE") -> None:
    """One PNG with a heatmap per kind (resid, mlp, attn side by side): rows = tokens or buckets, columns =
    layers, colour = indirect effect. values: {kind: (rows, n_layer) array-like, None = empty}; rows in
    `highlight_rows` (the subject) get a '*' after their label."""
    kinds = list(values)
    arrays = {k: np.array([[np.nan if v is None else v for v in row] for row in np.asarray(values[k], dtype=object)],
                          dtype=float) for k in kinds}
    n_rows, L = arrays[kinds[0]].shape
    hl = set(highlight_rows)
    labels = [repr(s)[1:-1] + (" *" if i in hl else "") for i, s in enumerate(row_labels)]
    fig = new_figure(3.2 * len(kinds) + 2.5, 0.32 * n_rows + 1.8)
    axes = fig.subplots(1, len(kinds), squeeze=False)[0]
    for ax, k in zip(axes, kinds):
        a = arrays[k]
        vmax = float(np.nanmax(np.abs(a))) if np.isfinite(a).any() else 1.0
        im = ax.imshow(a, aspect="auto", cmap={"resid": "Purples", "mlp": "Greens", "attn": "Reds"}.get(k, "Blues"),
                       vmin=min(0.0, float(np.nanmin(a)) if np.isfinite(a).any() else 0.0), vmax=max(vmax, 1e-9),
                       interpolation="nearest")
        ax.set_title(KIND_TITLES.get(k, k), fontsize=9)
        ax.set_xticks(range(L), [str(l) for l in range(L)], fontsize=7)
        ax.set_xlabel("layer", fontsize=8)
        ax.set_yticks(range(n_rows), labels if ax is axes[0] else [""] * n_rows, fontsize=7)
        bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        bar.ax.tick_params(labelsize=6)
        if ax is axes[-1]:
            bar.set_label(colorbar_label, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def plot_trace(trace: Trace, path: str | os.PathLike) -> None:
    """Heatmaps of one trace's indirect effects (tokens × layers), subject tokens starred."""
    s, e = trace.subject_range
    plot_trace_panels({k: trace.indirect_effect(k).T.tolist() for k in trace.scores}, trace.tokens, path,
                      highlight_rows=range(s, e), colorbar_label="P_restored − P_corrupted",
                      title=f"{trace.prompt!r} → {trace.target_token!r}: P_clean {trace.clean_prob:.3f}, "
                            f"P_corrupted {trace.corrupted_prob:.3f}")


def plot_average(avg: dict[str, Any], path: str | os.PathLike) -> None:
    """Heatmaps of an `average_traces` result (token buckets × layers)."""
    plot_trace_panels(avg["indirect_effect"], avg["buckets"], path, colorbar_label="average IE",
                      title=f"average indirect effect over {avg['n_used']} facts (P_clean {avg['clean_prob']:.3f}, "
                            f"P_corrupted {avg['corrupted_prob']:.3f})")
