"""Experiment: does augmentation (statement forms, shuffled sentences, name variants, several statements per round)
make facts extractable? (issue 27)

Write-up: docs/experiments/knowledge-augmentation.md.

Every row is the main job's world (2 MB) with the extraction split (`lmlab world --extraction`: half of each
subject kind's subjects also asked in question forms in the text, the other half only stated) and one setting of
the augmentation options, tokenized with the main job's tokenizer and trained with the `world` recipe's model and
settings (the same shape, steps and training tokens for every row). Each row is evaluated on facts_train,
facts_extract (question forms about held-out subjects), facts_paraphrase (held-out templates) and temporal at 0 and
5 shots. Chosen rows are also edited (ROME on 200 single edits, MEMIT on 100 in one batch), and so is the main
job's own model (`--main-run`, on a freshly generated copy of its world so that the held-out items are current).

    .venv/bin/python scripts/experiments/knowledge_augmentation.py --work /tmp/exp-ka \
        --tokenizer runs/world-data/tokenizer.json --runs A,B,C,D,E --edit-rows D --main-run runs/tiny

A run is ROW or ROW:SEED (SEED > 0: `lmlab world --seed SEED` — another world and split — and
`lmlab train --seed SEED`). Re-running skips finished steps. Writes WORK/summary.json,
docs/experiments/knowledge-augmentation.json and .png; prints the markdown table of the write-up.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import LMLAB, REPO, sh, shown  # noqa: E402

ROWS = {  # row → (`lmlab world` options, label)
    "A": (["--forms", "1", "--order", "fixed"], "1 form, fixed order (no augmentation)"),
    "C": (["--forms", "1", "--order", "shuffled"], "1 form, shuffled"),
    "E": (["--forms", "2"], "2 forms, shuffled"),
    "B": (["--forms", "4", "--order", "fixed"], "4 forms, fixed order"),
    "D": ([], "4 forms, shuffled (today's)"),
    "F": (["--name-variants"], "D + name variants"),
    "G": (["--statements", "2"], "D + 2 statements per round"),
    "H": (["--name-variants", "--statements", "2"], "D + both"),
}
TASKS = ["facts_train", "facts_extract", "facts_paraphrase", "temporal"]
WORLD = ["--size", "2MB", "--extraction"]
EDITS = {"rome": ["--method", "rome", "--limit", "200"], "memit": ["--method", "memit", "--limit", "100",
                                                                    "--batch", "100"]}


def step(cmd: list, log: list[str], done: bool, *, capture: bool = False) -> None:
    """Run `cmd` unless its output is already there; record it in `log` either way (the write-up lists them all)."""
    if done:
        log.append(shown(cmd))
    else:
        sh(cmd, log, capture=capture)


def parse_run(spec: str) -> tuple[str, int]:
    row, _, seed = spec.partition(":")
    if row not in ROWS:
        raise SystemExit(f"unknown row {row!r}; rows: {', '.join(ROWS)}")
    return row, int(seed or 0)


def run_name(row: str, seed: int) -> str:
    return f"ka-{row}" if seed == 0 else f"ka-{row}-s{seed}"


def finished(run: Path) -> bool:
    """The run trained to its last step (its metrics reach config's max_iters)."""
    if not (run / "config.json").is_file() or not (run / "metrics.jsonl").is_file():
        return False
    max_iters = json.loads((run / "config.json").read_text())["training"]["max_iters"]
    steps = [json.loads(line).get("step", -1) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    return bool(steps) and max(steps) >= max_iters


def build_and_train(work: Path, tokenizer: Path, row: str, seed: int, log: list[str]) -> dict:
    """World → shards → run → eval.json for one row; returns the wall seconds of the steps that ran."""
    name = run_name(row, seed)
    world, data, run = work / f"{name}-world", work / f"{name}-data", work / name
    seconds = {}
    step(LMLAB + ["world", "--out", world, "--seed", str(seed), *WORLD, *ROWS[row][0]], log,
         (world / "world.json").is_file())
    step(LMLAB + ["data", "prepare", world / "corpus", "--tokenizer", tokenizer, "--split-blank-lines", "--dedup",
                  "none", "--out", data], log, (data / "manifest.json").is_file())
    t0, done = time.time(), finished(run)
    resume = ["--resume"] if (run / "config.json").is_file() and not done else []
    seed_opt = ["--seed", str(seed)] if seed else []
    step(LMLAB + ["train", "--recipe", "world", "--data", data, "--out", run, "--no-progress", *resume, *seed_opt],
         log, done)
    if not done:
        seconds["train"] = time.time() - t0
    t0, done = time.time(), (run / "eval.json").is_file()
    step(LMLAB + ["eval", "tasks", run, "--world", world, "--shots", "0,5", "--tasks", ",".join(TASKS), "--out",
                  run / "eval.json"], log, done, capture=True)
    if not done:
        seconds["eval"] = time.time() - t0
    return seconds


def edit_scores(work: Path, name: str, run: Path, world: Path, log: list[str]) -> dict:
    """ROME (200 single edits) and MEMIT (100 in one batch) on one model: {method: summary}."""
    out = {}
    for method, opts in EDITS.items():
        path = work / f"edit-{name}-{method}.json"
        step(LMLAB + ["edit", "eval", run, "--requests", world / "edits.jsonl", *opts, "--no-fluency", "--quiet",
                      "--out", path], log, path.is_file(), capture=True)
        out[method] = json.loads(path.read_text())["methods"][method]
    return out


def main_job_scores(work: Path, run: Path, log: list[str]) -> dict:
    """The main job's model on a fresh copy of its world (the same training text; current held-out items)."""
    world = work / "today-world"
    step(LMLAB + ["world", "--out", world, "--seed", "0", "--size", "2MB"], log, (world / "world.json").is_file())
    path = work / "today-eval.json"
    step(LMLAB + ["eval", "tasks", run, "--world", world, "--shots", "0,5", "--tasks",
                  "facts_train,facts_paraphrase,temporal", "--out", path], log, path.is_file(), capture=True)
    return {"eval": row_results(json.loads(path.read_text())), "edits": edit_scores(work, "today", run, world, log)}


def row_results(report: dict) -> dict:
    """{"TASK@SHOTS": {"value", "stderr", "n"}} (exact_match; temporal: acc and per marker)."""
    out = {}
    for r in report["results"]:
        metric = "exact_match" if "exact_match" in r["metrics"] else "acc"
        key = f"{r['task']}@{r['shots']}"
        out[key] = {"value": 100 * r["metrics"][metric], "stderr": 100 * (r["stderr"].get(metric) or 0.0),
                    "n": r["n"]}
        for group, g in r.get("groups", {}).items():
            out[f"{key}:{group}"] = {"value": 100 * g["metrics"][metric], "n": g["n"]}
    return out


def extract_breakdown(run: Path, world: Path, shots: int = 0) -> dict:
    """facts_extract exact match (%, with n) at `shots` per relation and per form ("question" = `Q: ... A:`, "field" =
    `X's field:`), from the evaluation's per-item log joined with the task file."""
    items = [json.loads(line) for line in (world / "tasks" / "facts_extract.jsonl").read_text().splitlines()]
    logged = [json.loads(line) for line in (run / "eval.items.jsonl").read_text().splitlines()]
    groups: dict[str, list[int]] = {}
    for x in logged:
        if x["task"] == "facts_extract" and x["shots"] == shots:
            item = items[x["index"]]
            form = "question" if item["template"].startswith("Q:") else "field"
            for key in (item["relation"], f"form:{form}"):
                groups.setdefault(key, []).append(x["score"]["exact_match"])
    return {k: {"value": 100 * sum(v) / len(v), "n": len(v)} for k, v in sorted(groups.items())}


def val_loss(run: Path) -> float | None:
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    vals = [m["val_loss"] for m in lines if "val_loss" in m]
    return vals[-1] if vals else None


def world_counts(world: Path) -> dict:
    """Mean statements and question mentions per static fact, from facts.jsonl."""
    facts = [json.loads(line) for line in (world / "facts.jsonl").read_text().splitlines()]
    static = [f for f in facts if not f["temporal"]]
    mean = lambda xs: sum(xs) / max(len(xs), 1)  # noqa: E731
    return {"statements_per_fact": mean([f["mentions"]["train"] for f in static]),
            "questions_per_exposed_fact": mean([f["mentions"].get("question", 0) for f in static
                                                if f.get("extraction") == "exposed"])}


def table(summary: dict) -> str:
    cols = [("facts_train@0", "facts_train 0-shot"), ("facts_extract@0", "facts_extract 0-shot"),
            ("facts_extract@5", "facts_extract 5-shot"), ("facts_paraphrase@0", "facts_paraphrase 0-shot"),
            ("temporal@0", "temporal"), ("temporal@0:none", "temporal none"),
            ("temporal@0:paraphrase", "temporal paraphrase")]
    lines = ["| row | world | seed | statements / fact | " + " | ".join(c for _, c in cols) + " | val loss |",
             "|---|---|---|---|" + "---|" * len(cols) + "---|"]
    for name, r in summary["runs"].items():
        cells = []
        for key, _ in cols:
            v = r["eval"].get(key)
            cells.append("—" if v is None else (f"{v['value']:.1f} ± {v['stderr']:.1f}" if v.get("stderr")
                                                 else f"{v['value']:.1f}"))
        lines.append(f"| {r['row']} | {ROWS[r['row']][1]} | {r['seed']} | {r['world']['statements_per_fact']:.1f} | "
                     + " | ".join(cells) + f" | {r['val_loss']:.4f} |")
    return "\n".join(lines)


def edit_table(summary: dict) -> str:
    lines = ["| model | ROME S | ES | PS | NS | MEMIT S (100 in a batch) | ES | PS | NS |", "|---|" + "---|" * 8]
    for name, e in summary["edits"].items():
        r, m = e["rome"], e["memit"]
        lines.append(f"| {name} | " + " | ".join(f"{x[k]:.1f}" for x in (r, m) for k in
                                                ("S", "efficacy_score", "paraphrase_score", "neighborhood_score"))
                     + " |")
    return "\n".join(lines)


def plot(summary: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in summary["runs"].values() if r["seed"] == 0]
    runs.sort(key=lambda r: list(ROWS).index(r["row"]))
    series = [("facts_train@0", "facts_train 0-shot"), ("facts_extract@0", "facts_extract 0-shot"),
              ("facts_extract@5", "facts_extract 5-shot"), ("facts_paraphrase@0", "facts_paraphrase 0-shot")]
    fig, ax = plt.subplots(figsize=(10, 4.8))
    width = 0.8 / len(series)
    for k, (key, label) in enumerate(series):
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(runs))]
        ys = [r["eval"][key]["value"] for r in runs]
        es = [r["eval"][key]["stderr"] for r in runs]
        ax.bar(xs, ys, width, yerr=es, label=label, capsize=2)
    extra = [r for r in summary["runs"].values() if r["seed"] != 0]
    for k, r in enumerate(extra):  # other seeds: facts_extract 0-shot as a marker on their row
        i = [x["row"] for x in runs].index(r["row"])
        ax.plot(i - width / 2, r["eval"]["facts_extract@0"]["value"], "k_", markersize=14,
                label="facts_extract 0-shot, other seeds" if k == 0 else None)
    ax.axhline(80, color="grey", ls=":", lw=1)
    ax.set_xticks(range(len(runs)), [f"{r['row']}: {ROWS[r['row']][1]}" for r in runs], fontsize=7.5,
                  rotation=20, ha="right")
    ax.set_ylabel("exact match (%)")
    ax.set_ylim(0, 118)
    ax.set_yticks(range(0, 101, 20))
    ax.set_title("Extraction vs augmentation: tiny GPT, 2 MB world with the extraction split, 3,000 steps")
    ax.legend(fontsize=7.5, loc="upper center", ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def record_seconds(work: Path, name: str, ran: dict) -> dict:
    """Merge the seconds of the steps that just ran into WORK/seconds.json (kept across invocations, whatever runs
    each one lists) and return all recorded for `name`. Read and written at once, so invocations can overlap."""
    path = work / "seconds.json"
    recorded = json.loads(path.read_text()) if path.is_file() else {}
    recorded.setdefault(name, {}).update(ran)
    path.write_text(json.dumps(recorded, indent=1, sort_keys=True))
    return recorded[name]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True, type=Path, help="working directory (worlds, shards, runs, edits)")
    ap.add_argument("--tokenizer", required=True, type=Path, help="the main job's tokenizer (runs/world-data)")
    ap.add_argument("--runs", default="A,B,C,D,E", help="ROW or ROW:SEED, comma-separated")
    ap.add_argument("--edit-rows", default="", help="runs (ROW or ROW:SEED) to edit with ROME and MEMIT")
    ap.add_argument("--main-run", type=Path, default=None, help="the main job's run dir, evaluated and edited too")
    ap.add_argument("--plot", type=Path, default=REPO / "docs/experiments/knowledge-augmentation.png")
    args = ap.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    log: list[str] = []
    summary: dict = {"runs": {}, "edits": {}, "commands": log}
    for spec in filter(None, args.runs.split(",")):
        row, seed = parse_run(spec)
        name = run_name(row, seed)
        seconds = record_seconds(work, name, build_and_train(work, args.tokenizer.resolve(), row, seed, log))
        summary["runs"][name] = {"row": row, "seed": seed, "seconds": seconds, "val_loss": val_loss(work / name),
                                 "world": world_counts(work / f"{name}-world"),
                                 "eval": row_results(json.loads((work / name / "eval.json").read_text())),
                                 "extract_0shot": extract_breakdown(work / name, work / f"{name}-world")}
    for spec in filter(None, args.edit_rows.split(",")):
        name = run_name(*parse_run(spec))
        summary["edits"][name] = edit_scores(work, name, work / name, work / f"{name}-world", log)
    if args.main_run:
        today = main_job_scores(work, args.main_run.resolve(), log)
        summary["today"] = today["eval"]
        summary["edits"]["main job (today's world, no split)"] = today["edits"]
    (work / "summary.json").write_text(json.dumps(summary, indent=1))
    (REPO / "docs/experiments/knowledge-augmentation.json").write_text(json.dumps(summary, indent=1))
    if summary["runs"]:
        plot(summary, args.plot)
        print(table(summary))
    if summary["edits"]:
        print()
        print(edit_table(summary))


if __name__ == "__main__":
    main()
