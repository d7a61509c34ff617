"""Experiment: what instruction tuning buys and costs on the world (docs/experiments/instruction-tuning.md).

The base model (the main job's runs/tiny) is asked the world's held-out instructions zero-shot and 5-shot (lmlab
eval's few-shot prompts); the same model instruction-tuned on the world's instruction set (without and with a
replay share of pre-training text) is asked them zero-shot with its template. Costs: facts_train exact match and
the val perplexity of the pre-training shards, before and after tuning.

    .venv/bin/python scripts/experiments/instruction_tuning.py --base runs/tiny --world runs/world \\
        --data runs/world-data --work /tmp/exp-instruct

Every step is an `lmlab` command (printed, and listed in WORK/summary.json); steps whose outputs exist are skipped,
so a rerun only does what is missing. Writes WORK/summary.json and docs/experiments/instruction-tuning.png, and
prints the tables used in docs/experiments/instruction-tuning.md.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import LMLAB, REPO, sh  # noqa: E402

TYPES = ["fact_question", "arithmetic", "unscramble", "reverse", "sentiment"]
HELDOUT_TYPE = "current_value"


def accuracies(results_file: Path) -> dict[str, dict[int, float]]:
    """{task: {shots: exact match}} from an `lmlab eval instructions` results file."""
    out: dict[str, dict[int, float]] = {}
    for r in json.loads(results_file.read_text())["results"]:
        out.setdefault(r["task"], {})[r["shots"]] = r["metrics"]["exact_match"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="the base GPT run dir (the main job's runs/tiny)")
    ap.add_argument("--world", required=True, help="its world dir (runs/world)")
    ap.add_argument("--data", required=True, help="its token shards (runs/world-data): replay and perplexity")
    ap.add_argument("--work", required=True, help="directory for the instruction set, tuned runs and results")
    ap.add_argument("--replay", type=float, default=0.2, help="replay share of the second tuned run (default 0.2)")
    ap.add_argument("--plot", default=str(REPO / "docs" / "experiments" / "instruction-tuning.png"))
    ap.add_argument("--tune-args", default="", help="extra --key value settings for both tunings")
    args = ap.parse_args()
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    log: list[str] = []
    ins = work / "instructions"
    if not (ins / "info.json").is_file():
        sh(LMLAB + ["instruction-set", args.world, "--out", ins], log)
    evals = [ins / "heldout_phrasings.jsonl", ins / "heldout_type.jsonl", ins / "seen_phrasings.jsonl"]

    runs = {"tuned": (work / "tuned", []), "tuned+replay": (work / "tuned-replay", ["--replay", str(args.replay)])}
    for name, (out, extra) in runs.items():
        if not (out / "finetune.json").is_file() or not (out / "model.safetensors").is_file():
            sh(LMLAB + ["finetune", args.base, "--instructions", ins / "train.jsonl", "--out", out, "--overwrite",
                        "--no-progress", *extra, *shlex.split(args.tune_args)], log)

    results: dict[str, dict] = {}
    plan = [("base", args.base, "0,5"), ("tuned", runs["tuned"][0], "0"),
            ("tuned+replay", runs["tuned+replay"][0], "0")]
    for name, run, shots in plan:
        out = work / "eval" / f"{name}.json"
        if not out.is_file():
            sh(LMLAB + ["eval", "instructions", run, "--data", *evals, "--shots", shots, "--out", out,
                        "--no-progress"], log)
        results[name] = {"instructions": accuracies(out)}
        facts = work / "eval" / f"{name}-facts.json"
        if not facts.is_file():
            sh(LMLAB + ["eval", "tasks", run, "--tasks", "facts_train", "--shots", "0", "--world", args.world,
                        "--out", facts], log)
        [row] = json.loads(facts.read_text())["results"]
        results[name]["facts_train"] = row["metrics"]["exact_match"]
        ppl = work / "eval" / f"{name}-ppl.json"
        if not ppl.is_file():
            ppl.write_text(sh(LMLAB + ["eval", "ppl", run, "--data", args.data, "--json"], log, capture=True))
        results[name]["val_ppl"] = json.loads(ppl.read_text())["ppl"]
    for name, (out, _) in runs.items():
        metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        results[name]["tuning"] = {"steps": metrics[-1]["step"], "val_loss": metrics[-1].get("val_loss"),
                                   "info": json.loads((out / "finetune.json").read_text())}

    summary = {"commands": log, "results": results}
    (work / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print_tables(results)
    plot(results, Path(args.plot))


def _cells(results: dict) -> list[tuple[str, str, dict]]:
    """(column label, run name, {row: accuracy}) for base 0-shot, base 5-shot and each tuned run 0-shot."""
    cols = [("base 0-shot", "base", 0), ("base 5-shot", "base", 5), ("tuned 0-shot", "tuned", 0),
            ("tuned+replay 0-shot", "tuned+replay", 0)]
    out = []
    for label, name, shots in cols:
        acc = results[name]["instructions"]
        row = {t: acc[f"heldout_phrasings:{t}"][shots] for t in TYPES}
        row["mean (held-out phrasings)"] = acc["heldout_phrasings"][shots]
        row["mean (seen phrasings, new items)"] = acc["seen_phrasings"][shots]
        row[f"{HELDOUT_TYPE} (held-out type)"] = acc[f"heldout_type:{HELDOUT_TYPE}"][shots]
        out.append((label, name, row))
    return out


def print_tables(results: dict) -> None:
    cells = _cells(results)
    print("| instruction type | " + " | ".join(label for label, _, _ in cells) + " |")
    print("|---|" + "---|" * len(cells))
    for row in cells[0][2]:
        print(f"| {row} | " + " | ".join(f"{100 * c[row]:.0f}" for _, _, c in cells) + " |")
    print()
    print("| run | facts_train exact match | val perplexity |")
    print("|---|---|---|")
    for name in ("base", "tuned", "tuned+replay"):
        print(f"| {name} | {100 * results[name]['facts_train']:.1f} | {results[name]['val_ppl']:.3f} |")


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cells = _cells(results)
    rows = list(cells[0][2])
    x = np.arange(len(rows))
    width = 0.8 / len(cells)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [3.2, 1]})
    for i, (label, _, row) in enumerate(cells):
        ax.bar(x + (i - (len(cells) - 1) / 2) * width, [100 * row[r] for r in rows], width, label=label)
    ax.set_xticks(x, [r.replace(" (", "\n(") for r in rows], fontsize=7, rotation=15, ha="right")
    ax.set_ylabel("exact match (%)")
    ax.set_title("held-out instructions: base model prompted vs instruction-tuned")
    ax.legend(fontsize=8)
    names = ["base", "tuned", "tuned+replay"]
    ax2.bar(names, [results[n]["val_ppl"] for n in names], color=["C0", "C2", "C3"])
    ax2.set_ylabel("val perplexity (pre-training shards)")
    ax2.set_title("cost")
    for i, n in enumerate(names):
        ax2.text(i, results[n]["val_ppl"], f"facts {100 * results[n]['facts_train']:.0f}%", ha="center",
                 va="bottom", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"plot: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
