"""Experiment: is scrambling a word easier for a small GPT than unscrambling it? (docs/experiments/scrambling.md)

One model is evaluated on both directions of GPT-3's five word-scrambling tasks (the world's held-out words):
unscramble (`ltsilbae =` → `bastille`, GPT-3's direction, exact match) and scramble (`bastille =` → any output the
rule allows, judged by `lmlab.world.is_valid_scramble`), few-shot. The model is either one you name (`--run`, e.g.
the default world model runs/tiny) or a short run trained here on the world's scramble.txt (both directions appear
in it equally often) with a char tokenizer, so every letter is visible to the model.

    .venv/bin/python scripts/experiments/scrambling.py --work /tmp/exp-scramble [--run runs/tiny --world runs/world]

Writes WORK/summary.json and docs/experiments/scrambling[-NAME].png; prints the table used in
docs/experiments/scrambling.md.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LMLAB = [sys.executable, "-m", "lmlab"]
RULES = ["cycle_letters", "anagrams1", "anagrams2", "random_insertion", "reversed_words"]
SHORT = {"cycle_letters": "CL", "anagrams1": "A1", "anagrams2": "A2", "random_insertion": "RI",
         "reversed_words": "RW"}


def sh(cmd: list[str], log: list[str]) -> None:
    shown = "lmlab " + " ".join(shlex.quote(c) for c in cmd[len(LMLAB):])
    log.append(shown)
    print(f"$ {shown}", file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--run", type=Path, default=None, help="evaluate this run dir instead of training one")
    ap.add_argument("--world", type=Path, default=None, help="world dir (default WORK/world, generated)")
    ap.add_argument("--max-iters", type=int, default=400)
    ap.add_argument("--limit", type=int, default=50)
    ap.add_argument("--shots", default="1,5")
    ap.add_argument("--name", default="", help="suffix of the plot's file name")
    args = ap.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    log: list[str] = []
    world = (args.world or work / "world").resolve()
    if not (world / "world.json").is_file():
        sh(LMLAB + ["world", "--out", str(world), "--seed", "0", "--size", "5MB"], log)
    run = args.run
    seconds = None
    if run is None:
        run = work / "run-char"
        data = work / "data-char"
        sh(LMLAB + ["data", "prepare", str(world / "corpus" / "scramble.txt"), "--tokenizer", "char", "--out",
                    str(data), "--split-blank-lines", "--dedup", "none", "--no-progress"], log)
        t0 = time.time()
        sh(LMLAB + ["train", "--data", str(data), "--out", str(run), "--overwrite", "--no-progress", "--n_layer", "2",
                    "--n_head", "4", "--n_embd", "128", "--block_size", "128", "--batch_size", "16",
                    "--max_iters", str(args.max_iters), "--lr", "3e-3",
                    "--min_lr", "3e-4", "--warmup_iters", "40", "--eval_interval", str(args.max_iters),
                    "--eval_iters", "10", "--dtype", "float32", "--seed", "0"], log)
        seconds = time.time() - t0
    out = work / f"eval{('-' + args.name) if args.name else ''}.json"
    sh(LMLAB + ["eval", "tasks", str(run), "--tasks", "scramble", "--shots", args.shots, "--limit", str(args.limit),
                "--world", str(world), "--out", str(out), "--no-progress"], log)
    write_up(out, log, seconds, args)


def write_up(out: Path, log: list[str], seconds, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    report = json.loads(out.read_text())
    shots = [int(s) for s in args.shots.split(",")]
    res = {(r["task"], r["shots"]): r for r in report["results"]}

    def score(direction: str, rule: str, k: int) -> tuple[float, float]:
        r = res[(f"scramble_{direction}_{rule}", k)]
        metric = "exact_match" if direction == "unscramble" else "valid"
        return r["metrics"][metric], r["stderr"][metric] or 0.0

    fig, axes = plt.subplots(1, len(shots), figsize=(4.5 * len(shots), 3.6), sharey=True)
    axes = axes if len(shots) > 1 else [axes]
    for ax, k in zip(axes, shots):
        for j, direction in enumerate(("unscramble", "scramble")):
            vals = [score(direction, r, k) for r in RULES]
            ax.bar([x + (j - 0.5) * 0.38 for x in range(len(RULES))], [v * 100 for v, _ in vals], 0.38,
                   yerr=[e * 100 for _, e in vals], capsize=2,
                   label="unscramble (exact match)" if direction == "unscramble" else "scramble (valid by rule)")
        ax.set_xticks(range(len(RULES)), [SHORT[r] for r in RULES])
        ax.set_title(f"{k}-shot")
        ax.set_ylim(0, 100)
    axes[0].set_ylabel("accuracy (%)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Word scrambling, both directions: {report['run_dir']}")
    fig.tight_layout()
    png = REPO / "docs" / "experiments" / f"scrambling{('-' + args.name) if args.name else ''}.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)

    rows = ["| rule | " + " | ".join(f"unscramble {k}-shot | scramble {k}-shot (valid / exact)" for k in shots) + " |",
            "|---" * (1 + 2 * len(shots)) + "|"]
    for rule in RULES:
        cells = []
        for k in shots:
            u = score("unscramble", rule, k)
            s = res[(f"scramble_scramble_{rule}", k)]
            cells.append(f"{u[0] * 100:.0f} ± {u[1] * 100:.0f}")
            cells.append(f"{s['metrics']['valid'] * 100:.0f} ± {(s['stderr']['valid'] or 0) * 100:.0f} / "
                         f"{s['metrics']['exact_match'] * 100:.0f}")
        rows.append(f"| {SHORT[rule]} | " + " | ".join(cells) + " |")
    table = "\n".join(rows)
    summary = {"run": report["run_dir"], "table": table, "train_seconds": seconds, "commands": log, "png": str(png)}
    (out.with_suffix(".summary.json")).write_text(json.dumps(summary, indent=2))
    print(table)
    print(json.dumps({k: v for k, v in summary.items() if k != "table"}, indent=2))


if __name__ == "__main__":
    main()
