"""Edit a run dir into a NEW run dir: the source is only read, never written (the CLI's `lmlab edit`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lmlab.checkpoint import EDITS_NAME, check_new_run_dir, is_run_dir, load_run, lock_run_dir, read_run_config, \
    run_data_dir, save_run
from lmlab.editing.api import EditResult, edit, hparams_per_method
from lmlab.editing.evaluate import NONE, evaluate_edits
from lmlab.editing.requests import as_requests, load_requests
from lmlab.editing.stats import DEFAULT_N_TOKENS
from lmlab.errors import LmlabError
from lmlab.generation import generate
from lmlab.utils import atomic_write_json, atomic_write_text

EVAL_METHODS = "none,rome,ft,memit"  # what `lmlab edit eval` compares by default
SHOWN = 20  # requests an edit report shows one by one


def stats_data_of(run_dir: str | os.PathLike, stats_data: Any = None) -> Any:
    """The text for key statistics: `stats_data` if given, else the training data dir the run dir records."""
    if stats_data is not None:
        return stats_data
    data = run_data_dir(run_dir)
    if data is not None and data.exists():
        return str(data)
    raise LmlabError(f"{run_dir} records no training data to estimate key statistics from (e.g. an imported GPT-2); "
                     "pass --stats-data FILE|DIR (a text file such as wikitext, or a shard dir)")


def check_out_dir(run_dir: str | os.PathLike, out: str | os.PathLike) -> Path:
    """LmlabError when `out` is the source run dir (or inside it) or already holds a run."""
    src, dst = Path(run_dir).resolve(), Path(out).resolve()
    if dst == src or src in dst.parents:
        raise LmlabError(f"--out {out} is the source run dir (or inside it); an edit never overwrites its source: "
                         "choose a new directory, e.g. --out runs/tiny-edited")
    if is_run_dir(dst):
        raise LmlabError(f"--out {out} already holds a run dir; choose a new directory or delete it first")
    check_new_run_dir(dst, overwrite=False)  # a directory of someone else's files is never written into
    return dst


def edit_run(run_dir: str | os.PathLike, requests: Any, out: str | os.PathLike, method: str = "rome", *,
             layers: list[int] | None = None, stats_data: Any = None, n_tokens: int = DEFAULT_N_TOKENS,
             cache_dir: Any = None, device: str = "cpu", completions: int = 5, max_new_tokens: int = 12,
             progress: bool = False,
             **hparams) -> EditResult:
    """Load `run_dir`, apply `requests` with `method`, write the edited model as a full run dir at `out` with an
    `edits.jsonl` log (one line per request, appended to the source's log if it has one). Returns the result.

    The log entries of the first `completions` requests also hold the greedy completion of the edit prompt before
    and after the edit ("completion_before", "completion_after", `max_new_tokens` tokens).
    """
    dst = check_out_dir(run_dir, out)
    with lock_run_dir(dst, "lmlab edit"):
        check_out_dir(run_dir, out)  # again under the lock: another edit may have finished into `out` meanwhile
        return _edit_into(run_dir, requests, dst, method, layers=layers, stats_data=stats_data, n_tokens=n_tokens,
                          cache_dir=cache_dir, device=device, completions=completions,
                          max_new_tokens=max_new_tokens, progress=progress, **hparams)


def _edit_into(run_dir, requests, dst: Path, method: str, *, layers, stats_data, n_tokens, cache_dir, device,
               completions: int, max_new_tokens: int, progress: bool, **hparams) -> EditResult:
    reqs = as_requests(requests)
    run = load_run(run_dir, device=device)
    data = stats_data_of(run_dir, stats_data) if method in ("rome", "memit") else None
    shown = [r.filled_prompt for r in reqs[:completions]]
    before = _greedy(run.model, run.tokenizer, shown, max_new_tokens)
    result = edit(run.model, run.tokenizer, reqs, method, layers=layers, in_place=True, stats_data=data,
                  n_tokens=n_tokens, cache_dir=cache_dir, progress=progress, **hparams)
    after = _greedy(result.model, run.tokenizer, shown, max_new_tokens)
    for entry, b, a in zip(result.log, before, after):
        entry["completion_before"], entry["completion_after"] = b, a
    cfg = read_run_config(run_dir)
    save_run(dst, result.model, run.tokenizer, model_type=run.model_type, model_config=run.model_config,
             training_config=cfg.get("training"))
    write_edit_log(Path(run_dir), dst, [{**entry, "source_run": str(Path(run_dir))} for entry in result.log])
    return result


def write_edit_log(source_run: Path, dst: Path, entries: list[dict]) -> None:
    """dst/edits.jsonl: the source run's log (if it has one), then one JSON line per entry."""
    previous = source_run / EDITS_NAME
    lines = previous.read_text(encoding="utf-8").splitlines() if previous.is_file() else []
    lines += [json.dumps(entry, ensure_ascii=False, sort_keys=True) for entry in entries]
    atomic_write_text(dst / EDITS_NAME, "\n".join(lines) + "\n")


def _greedy(model, tokenizer, prompts: list[str], max_new_tokens: int) -> list[str]:
    room = max(1, min(max_new_tokens, model.config.block_size // 2))
    return [c.text for c in generate(model, tokenizer, prompts, max_new_tokens=room, temperature=0,
                                     truncate="left")] if prompts else []


def format_edit_report(result: EditResult, method: str, out: str | os.PathLike) -> str:
    """What `lmlab edit` prints: per request (the first 20) P(new) and P(true) before → after and the greedy
    completions, then the method, layers and update norms."""
    fmt = lambda p: "-" if p is None else f"{p:.4f}"  # noqa: E731
    lines = []
    for entry in result.log[:SHOWN]:
        r, b, a = entry["request"], entry["before"], entry["after"]
        lines.append(f"{r['prompt'].replace('{}', r['subject'], 1)!r} → {r['target_new']!r}"
                     + (f" (was {r['target_true']!r})" if r.get("target_true") else ""))
        lines.append(f"  P(new)  {fmt(b['p_new'])} → {fmt(a['p_new'])}")
        if r.get("target_true"):
            lines.append(f"  P(true) {fmt(b['p_true'])} → {fmt(a['p_true'])}")
        if "completion_before" in entry:
            lines.append(f"  before: {entry['completion_before']!r}")
            lines.append(f"  after:  {entry['completion_after']!r}")
    if len(result.log) > SHOWN:
        lines.append(f"... {len(result.log) - SHOWN} more in {out}/{EDITS_NAME}")
    norms = ", ".join(f"{n} {v:.3g}" for n, v in result.log[0]["update_norms"].items())
    lines.append(f"{method} edited layer(s) {','.join(map(str, result.layers))} for {len(result.log)} request(s) "
                 f"(update norms: {norms}) → {out}")
    return "\n".join(lines)


def eval_methods(methods: str | list[str] | None = None) -> list[str]:
    """The methods `lmlab edit eval` compares: a comma list or list (default none,rome,ft,memit), always with the
    unedited model ("none") first unless it is listed."""
    if methods is None or isinstance(methods, str):
        methods = (methods or EVAL_METHODS).split(",")
    names = [m.strip() for m in methods if m.strip()]
    return names if NONE in names else [NONE] + names


def evaluate_run_edits(run_dir: str | os.PathLike, requests: str | os.PathLike, methods: str | list[str] | None = None,
                       *, limit: int | None = None, batch: int = 1, layers: list[int] | None = None,
                       stats_data: Any = None, n_tokens: int = DEFAULT_N_TOKENS, cache_dir: Any = None,
                       fluency: bool = True, hparams: dict[str, Any] | None = None, device: str = "cpu",
                       out: str | os.PathLike | None = None, progress: bool = False) -> dict[str, Any]:
    """`evaluate_edits` on a run dir's model with the requests of a file (the first `limit`): CounterFact's scores
    per method (`eval_methods`), next to the unedited model. layers: the same layers for every method (default:
    causal tracing). hparams: one {key: value} set, each key given to the methods that have it
    (`hparams_per_method`). Key statistics come from `stats_data`, else the run's training data. With `out`, the
    results (and the run dir and requests file) are written there as JSON. The run dir is only read."""
    if limit is not None and limit < 1:
        raise LmlabError("--limit must be at least 1")
    methods = eval_methods(methods)
    reqs = load_requests(requests, limit=limit)
    run = load_run(run_dir, device=device)
    data = stats_data_of(run_dir, stats_data) if any(m in ("rome", "memit") for m in methods) else None
    routed = hparams_per_method(methods, hparams or {})
    results = evaluate_edits(run.model, run.tokenizer, reqs, methods, batch=batch,
                             layers={m: layers for m in methods if m != NONE} if layers else None,
                             stats_data=data, n_tokens=n_tokens, cache_dir=cache_dir, fluency=fluency,
                             hparams=routed, progress=progress)
    if out:
        atomic_write_json(out, {"run_dir": str(run_dir), "requests": str(requests), **results})
    return results
