"""The functions behind the CLI verbs `lmlab inspect memories|lens|attention` and `lmlab locate`: each takes a run
dir and the verb's options, writes the verb's files, and returns the JSON-ready result the CLI prints."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lmlab.checkpoint import run_data_dir
from lmlab.errors import LmlabError
from lmlab.utils import iter_jsonl


def _load(run_dir: str | os.PathLike, device: str = "cpu"):
    from lmlab.checkpoint import load_run

    run = load_run(run_dir, device=device)
    if not hasattr(run.model, "hook_names"):
        raise LmlabError(f"{run_dir} holds a {run.model_type} model; inspection needs a GPT run dir")
    return run


def corpus_tokens(run, data: str | os.PathLike | None, split: str = "train"):
    """(token ids of `split` of a shard dir, note). The dir is `data`, else the one training recorded; ids are
    checked against the run's tokenizer. A missing `data` dir is an error; a recorded dir that no longer exists
    (a run dir copied elsewhere) gives (None, note), as does a run with no recorded dir."""
    from lmlab.data import load_split

    if data is None:
        recorded = run_data_dir(run)
        if recorded is None:
            return None, "no corpus: pass --data DIR (token shards) for trigger examples and agreement rates"
        if not recorded.is_dir():
            return None, (f"the data dir recorded by training ({recorded}) is missing: pass --data DIR for "
                          "trigger examples and agreement rates")
        data = recorded
    elif not Path(data).is_dir():
        raise LmlabError(f"data dir {data} not found; pass --data DIR (token shards from `lmlab data prepare`)")
    return load_split(data, split, tokenizer=run.tokenizer), None


def inspect_memories(run_dir: str | os.PathLike, prompt: str, *, top_k: int = 5, layer: int | None = None,
                     data: str | os.PathLike | None = None, split: str = "train", n_windows: int = 256,
                     window: int = 64, triggers: int = 3, n_tokens: int = 5, position: int = -1, seed: int = 0,
                     progress: bool = False, device: str = "cpu") -> dict[str, Any]:
    """`top_memories` of the prompt; with a corpus (data dir, or the one training recorded) also each shown key's
    top trigger prefixes and every inspected layer's agreement rate (see lmlab.inspection.memories)."""
    from lmlab.inspection.memories import collect_key_stats, key_triggers, memory_agreement, top_memories

    run = _load(run_dir, device)
    layers = None if layer is None else [layer]
    result = top_memories(run.model, run.tokenizer, prompt, top_k=top_k, layers=layers, position=position,
                          n_tokens=n_tokens)
    tokens, note = corpus_tokens(run, data, split)
    result["corpus"], result["corpus_note"] = None, note
    if tokens is not None:
        stats = collect_key_stats(run.model, tokens, layers=layers, n_windows=n_windows, window=window, seed=seed,
                                  progress=progress)
        for entry in result["layers"]:
            for key in entry["keys"]:
                key["triggers"] = key_triggers(stats, run.tokenizer, entry["layer"], key["key"], triggers)
        result["agreement"] = memory_agreement(run.model, stats)
        result["corpus"] = {"windows": len(stats.windows), "window": stats.windows.shape[1] - 1, "split": split,
                            "seed": seed, "data_dir": str(data or run_data_dir(run))}
    return result


def inspect_lens(run_dir: str | os.PathLike, prompt: str, *, top_k: int = 5, all_positions: bool = False,
                 device: str = "cpu") -> dict[str, Any]:
    """`logit_lens` of a run dir's model on `prompt`."""
    from lmlab.inspection.lens import logit_lens

    run = _load(run_dir, device)
    return logit_lens(run.model, run.tokenizer, prompt, top_k=top_k, all_positions=all_positions)


def inspect_attention(run_dir: str | os.PathLike, prompt: str, out: str | os.PathLike, *, layer: int | None = None,
                      device: str = "cpu") -> dict[str, Any]:
    """Attention patterns of `prompt` (all layers, or one): writes the PNG grid to `out`, returns
    `attention_report` plus {"figure": out}."""
    import torch

    from lmlab.inspection.attention import attention_report, plot_attention

    if Path(out).suffix.lower() != ".png":
        raise LmlabError(f"--out {out} must be a .png file")
    run = _load(run_dir, device)
    report = attention_report(run.model, run.tokenizer, prompt, None if layer is None else [layer])
    plot_attention(torch.tensor(report["patterns"]), report["tokens"], out, layers=report["layers"],
                   title=f"attention patterns: {prompt!r}")
    return {**report, "figure": str(out)}


def read_facts(path: str | os.PathLike, limit: int | None = None) -> list[dict[str, Any]]:
    """Facts from a JSONL file (one {"prompt", "subject", "target" | "object"} per line; the world's facts.jsonl
    qualifies), the first `limit` of them. LmlabError names the line of a malformed record."""
    from lmlab.inspection.tracing import check_fact

    path = Path(path)
    facts = []
    for n, rec in iter_jsonl(path, missing=f"facts file {path} not found"):
        try:
            check_fact(rec)
        except LmlabError as e:
            raise LmlabError(f"{path}:{n}: {e}") from None
        facts.append(rec)
        if limit is not None and len(facts) >= limit:
            break
    if not facts:
        raise LmlabError(f"{path} holds no facts")
    return facts


def locate(run_dir: str | os.PathLike, out: str | os.PathLike, *, prompt: str | None = None,
           subject: str | None = None, target: str | None = None, facts: str | os.PathLike | None = None,
           limit: int | None = None, samples: int = 10, noise: float = 3.0, window: int | None = None,
           seed: int = 0, all_facts: bool = False, progress: bool = False, device: str = "cpu") -> dict[str, Any]:
    """Causal tracing of one fact (prompt + subject [+ target]) or the average over a facts file.

    One fact → OUT/causal_trace.json and OUT/causal_trace.png (Trace.to_dict()). A facts file →
    OUT/average.json (average_traces + {"facts": per-fact summaries}), OUT/average.png and OUT/traces.jsonl
    (every fact's full trace). noise: multiple of the subject-embedding std (ROME: 3).
    """
    from lmlab.inspection.tracing import (average_traces, causal_trace, plot_average, plot_trace, trace_facts)
    from lmlab.utils import atomic_write_json, atomic_write_text

    if (prompt is None) == (facts is None):
        raise LmlabError("give either --prompt TEXT --subject S (one fact) or --facts FILE (average over facts)")
    if limit is not None and limit < 1:
        raise LmlabError("--limit must be at least 1")
    if noise < 0:
        raise LmlabError("--noise must be ≥ 0 (a multiple of the embedding std)")
    if window is not None and window < 1:
        raise LmlabError("--window must be at least 1 layer")
    run = _load(run_dir, device)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise LmlabError(f"--out {out} is a file; locate writes a directory (causal_trace.json and plots)")
    out.mkdir(parents=True, exist_ok=True)
    if prompt is not None:
        if subject is None:
            raise LmlabError("--prompt needs --subject (the words to corrupt)")
        trace = causal_trace(run.model, run.tokenizer, prompt, subject, target, samples=samples, noise_scale=noise,
                             window=window, seed=seed)
        result = trace.to_dict()
        atomic_write_json(out / "causal_trace.json", result)
        plot_trace(trace, out / "causal_trace.png")
        return {**result, "files": [str(out / "causal_trace.json"), str(out / "causal_trace.png")]}
    records = read_facts(facts, limit)
    traces = trace_facts(run.model, run.tokenizer, records, samples=samples, noise_scale=noise, window=window,
                         seed=seed, progress=progress)
    avg = average_traces(traces, known_only=not all_facts)
    avg["noise_std"] = traces[0].noise_std
    avg["samples"], avg["window"] = samples, traces[0].window
    avg["facts"] = [{"prompt": t.prompt, "subject": t.subject, "target": t.target, "clean_prob": t.clean_prob,
                     "corrupted_prob": t.corrupted_prob, "known": t.known, "peaks": {k: t.peak(k) for k in t.scores}}
                    for t in traces]
    atomic_write_json(out / "average.json", avg)
    atomic_write_text(out / "traces.jsonl", "".join(json.dumps(t.to_dict(), ensure_ascii=False) + "\n"
                                                    for t in traces))
    plot_average(avg, out / "average.png")
    return {**avg, "files": [str(out / n) for n in ("average.json", "average.png", "traces.jsonl")]}
