"""`eval_tasks`: what `lmlab eval tasks` does — tasks × shot counts on a run dir, a table, results JSON and a
per-item log.

    from lmlab.evaluation import eval_tasks
    report = eval_tasks("runs/tiny", "arithmetic_2da,facts_train", shots=[0, 5], limit=100, world="runs/world",
                        out="runs/tiny/eval/results.json")
    print(format_table(report))
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from lmlab import __version__
from lmlab.errors import LmlabError
from lmlab.evaluation.builtin import DEFAULT_SEED, resolve_tasks
from lmlab.evaluation.harness import BOOTSTRAP_ITERS, DEFAULT_BATCH_SIZE, evaluate_task
from lmlab.evaluation.tasks import Task, task_summary
from lmlab.generation import check_weight_storage, set_weight_storage
from lmlab.utils import atomic_write_json, atomic_write_text


def parse_shots(text: str | int | Sequence[int] | None) -> list[int] | None:
    """'0,1,5' → [0, 1, 5]; None stays None (each task's num_fewshot)."""
    if text is None:
        return None
    if isinstance(text, int):
        values = [text]
    elif isinstance(text, str):
        try:
            values = [int(s) for s in text.split(",") if s.strip()]
        except ValueError:
            raise LmlabError(f"--shots takes integers like 5 or 0,1,5, got {text!r}") from None
    else:
        values = [int(v) for v in text]
    if not values or any(v < 0 for v in values):
        raise LmlabError(f"shot counts must be integers ≥ 0, got {text!r}")
    return values


def evaluate(model, tokenizer, tasks: Sequence[Task], *, shots: Sequence[int] | None = None,
             limit: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE, seed: int | None = None,
             bootstrap_iters: int = BOOTSTRAP_ITERS, progress: bool = False) -> tuple[list[dict], list[dict]]:
    """Every task at every shot count (None: the task's num_fewshot; rolling tasks always 0).
    Returns (results, items): one `evaluate_task` result per (task, shots), then one `group_results` row per
    (group, shots) of the tasks that name a group (e.g. each BLiMP paradigm, then their mean), and all per-item
    records."""
    results, items = [], []
    for task in tasks:
        counts = shots if shots is not None else [task.config.num_fewshot]
        if task.config.output_type == "loglikelihood_rolling":
            counts = [0]
        for k in counts:
            r, it = evaluate_task(model, tokenizer, task, shots=k, limit=limit, batch_size=batch_size, seed=seed,
                                  bootstrap_iters=bootstrap_iters, progress=progress)
            results.append(r)
            items.extend(it)
    return results + group_results(tasks, results), items


def task_groups(tasks: Sequence[Task]) -> dict[str, list[str]]:
    """{group: [names of its tasks]} for the tasks whose config names a group, in task order."""
    groups: dict[str, list[str]] = {}
    for t in tasks:
        if t.config.group:
            groups.setdefault(t.config.group, []).append(t.name)
    return groups


def group_results(tasks: Sequence[Task], results: Sequence[dict]) -> list[dict]:
    """One result per (group, shots) for tasks whose config names a group: each metric the members share is the
    unweighted mean over the members (lm-evaluation-harness's group aggregation with weight_by_size: false, as its
    `blimp`), its stderr √(Σ seᵢ²) / N (the members are independent samples; None when a member has none).
    The row has the result keys of a task plus "subtasks" (member names) and "aggregation"."""
    rows = []
    for group, names in task_groups(tasks).items():
        for shots in dict.fromkeys(r["shots"] for r in results if r["task"] in names):
            rs = [r for r in results if r["task"] in names and r["shots"] == shots]
            shared = [m for m in rs[0]["metrics"] if all(m in r["metrics"] for r in rs)]
            metrics = {m: float(np.mean([r["metrics"][m] for r in rs])) for m in shared}
            stderr = {m: (math.sqrt(sum(r["stderr"][m] ** 2 for r in rs)) / len(rs)
                          if all(r["stderr"].get(m) is not None for r in rs) else None) for m in shared}
            seconds = sum(r["seconds"] for r in rs)
            requests = sum(r["requests"] for r in rs)
            rows.append({"task": group, "output_type": rs[0]["output_type"], "shots": shots,
                         "n": sum(r["n"] for r in rs), "metrics": metrics, "stderr": stderr, "seconds": seconds,
                         "requests": requests, "requests_per_second": requests / seconds if seconds > 0 else None,
                         "subtasks": [r["task"] for r in rs], "aggregation": "unweighted mean over subtasks"})
    return rows


def items_path(out: str | os.PathLike) -> Path:
    """Where the per-item log of a results file goes: results.json → results.items.jsonl."""
    out = Path(out)
    return out.with_name(out.stem + ".items.jsonl")


def eval_tasks(run_dir: str | os.PathLike, tasks: str | Sequence[str], *,
               shots: str | int | Sequence[int] | None = None,
               limit: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE, seed: int = DEFAULT_SEED,
               world: str | os.PathLike | None = None, out: str | os.PathLike | None = None, device: str = "cpu",
               bootstrap_iters: int = BOOTSTRAP_ITERS, progress: bool = True, weights: str = "fp32",
               checkpoints: bool = False) -> dict:
    """Evaluate the model of `run_dir` on `tasks` (see `resolve_tasks` for names) at each shot count.

    seed: seeds generated tasks, few-shot draws and the bootstrap. limit: first N documents of each task.
    out: write the report there as JSON and the per-item log (prompt, target, prediction, score per line) beside
    it as *.items.jsonl (see `items_path`). weights: how the Linear weights are held while scoring and decoding
    ("fp32" | "bf16" | "int8", see lmlab.generation.set_weight_storage). checkpoints: evaluate every checkpoint
    training kept (`--keep_checkpoints true`), in step order — a learning curve — instead of the final weights.
    Returns the report: {"run_dir", "settings", "tasks": {name: settings}, "groups": {group: [task names]},
    "results": [evaluate_task results, then the groups' rows], "lmlab_version"}; with checkpoints also "curve":
    [{"step", "weights", "results"} per kept checkpoint] ("results" is then the last checkpoint's, and each item
    of the log records its "step").
    """
    from lmlab.checkpoint import WEIGHTS_NAME, kept_checkpoints, load_run

    if limit is not None and limit < 1:
        raise LmlabError(f"--limit must be at least 1, got {limit}")
    check_weight_storage(weights)
    shot_list = parse_shots(shots)
    task_list = resolve_tasks(tasks, world=world, seed=seed)
    to_evaluate = kept_checkpoints(run_dir) if checkpoints else [(None, WEIGHTS_NAME)]
    if not to_evaluate:
        raise LmlabError(f"{run_dir} has no kept checkpoints to evaluate: train it with --keep_checkpoints true "
                         "(each evaluation's weights are then kept in RUN_DIR/checkpoints/)")
    curve, items = [], []
    for step, weights_name in to_evaluate:
        run = load_run(run_dir, device=device, weights_name=weights_name)
        set_weight_storage(run.model, weights)
        results, step_items = evaluate(run.model, run.tokenizer, task_list, shots=shot_list, limit=limit,
                                       batch_size=batch_size, seed=seed, bootstrap_iters=bootstrap_iters,
                                       progress=progress)
        curve.append({"step": step, "weights": weights_name, "results": results})
        items.extend({**it, "step": step} if checkpoints else it for it in step_items)
    report = {"run_dir": str(run_dir), "lmlab_version": __version__,
              "settings": {"shots": shot_list, "limit": limit, "batch_size": batch_size, "seed": seed,
                           "world": str(world) if world is not None else None, "bootstrap_iters": bootstrap_iters,
                           "weights": weights},
              "tasks": {t.name: task_summary(t) for t in task_list}, "groups": task_groups(task_list),
              "results": curve[-1]["results"]}
    if checkpoints:
        report["curve"] = curve
    if out is not None:
        write_report(report, items, out)
    return report


def write_report(report: dict, items: list[dict], out: str | os.PathLike) -> tuple[Path, Path]:
    """Write the report JSON to `out` and the item log next to it, both atomically; returns both paths."""
    out = Path(out)
    atomic_write_json(out, _finite(report))
    log = items_path(out)
    atomic_write_text(log, "".join(json.dumps(_finite(it), ensure_ascii=False) + "\n" for it in items))
    return out, log


def _finite(obj):
    """JSON has no inf/nan: write them as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def format_table(report: dict | list[dict]) -> str:
    """The results as an aligned text table: task, shots, metric, value ± stderr, items (and per-group rows; a
    task group's row reads "GROUP (mean of N)")."""
    results = report["results"] if isinstance(report, dict) else report
    rows = [("task", "shots", "metric", "value", "± stderr", "n")]
    for r in results:
        label = f"{r['task']} (mean of {len(r['subtasks'])})" if "subtasks" in r else r["task"]
        for name, value in r["metrics"].items():
            se = r["stderr"].get(name)
            rows.append((label, str(r["shots"]), name, _fmt(value), _fmt(se) if se is not None else "",
                         str(r["n"])))
        for group, g in r.get("groups", {}).items():
            for name, value in g["metrics"].items():
                rows.append((f"  {r['group_by']}={group}", str(r["shots"]), name, _fmt(value), "", str(g["n"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for k, row in enumerate(rows):
        cells = [row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].ljust(widths[2]),
                 row[3].rjust(widths[3]), row[4].rjust(widths[4]), row[5].rjust(widths[5])]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_curve(report: dict) -> str:
    """A learning curve (`eval_tasks(..., checkpoints=True)`) as an aligned text table: one row per kept
    checkpoint's step, one column TASK@SHOTS per task × shot count holding the task's first metric (named in a
    line under the table)."""
    curve = report["curve"]
    columns = [(r["task"], r["shots"], next(iter(r["metrics"]))) for r in curve[0]["results"]]
    rows = [["step"] + [f"{task}@{k}" for task, k, _ in columns]]
    for point in curve:
        value = {(r["task"], r["shots"]): r["metrics"][metric]
                 for r, (_, _, metric) in zip(point["results"], columns)}
        rows.append([str(point["step"])] + [_fmt(value[(task, k)]) for task, k, _ in columns])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    metrics = dict.fromkeys(f"{task}: {metric}" for task, _, metric in columns)
    return "\n".join(lines + ["metric: " + ", ".join(metrics)])


def _fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "nan" if x is not None else ""
    return f"{x:.4f}" if abs(x) < 1e5 else f"{x:.4g}"
