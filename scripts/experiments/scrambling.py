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
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import LMLAB, REPO, sh  # noqa: E402

RULES = ["cycle_letters", "anagrams1", "anagrams2", "random_insertion", "reversed_words"]
SHORT = {"cycle_letters": "CL", "anagrams1": "A1", "anagrams2": "A2", "random_insertion": "RI",
         "reversed_words": "RW"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--run", type=Path, default=None, help="evaluate this run dir instead of training one")
    ap.add_argument("--world", type=Path, default=None, help="world dir (default WORK/world, generated)")
    ap.add_argument("--max-iters", type=int, default=400)
    ap.add_argument("--limit", type=int, default=50)
    ap.add_argument("--shots", default="1,5")
    ap.add_argument("--name", default="", help="suffix of the plot's file name")
    ap.add_argument("--write-up-only", action="store_true", help="only redo table and plot from --work's results")
    args = ap.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    out = work / f"eval{('-' + args.name) if args.name else ''}.json"
    if args.write_up_only:
        old = out.with_suffix(".summary.json")
        old = json.loads(old.read_text()) if old.is_file() else {}
        write_up(out, old.get("commands", []), old.get("train_seconds"), args)
        return
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
    sh(LMLAB + ["eval", "tasks", str(run), "--tasks", "scramble", "--shots", args.shots, "--limit", str(args.limit),
                "--world", str(world), "--out", str(out), "--no-progress"], log)
    write_up(out, log, seconds, args)


def letter_f1(prediction: str, word: str) -> float:
    """Overlap of the letters written with the word's letters, as multisets: 2|P∩W| / (|P| + |W|). Every right
    answer of either direction uses exactly the word's letters, so this grades both directions the same way."""
    from collections import Counter

    p, w = Counter(ch for ch in prediction if ch.isalpha()), Counter(word)
    total = sum(p.values()) + sum(w.values())
    return 2 * sum((p & w).values()) / total if total else 0.0


def write_up(out: Path, log: list[str], seconds, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    report = json.loads(out.read_text())
    shots = [int(s) for s in args.shots.split(",")]
    res = {(r["task"], r["shots"]): r for r in report["results"]}
    world = Path(report["settings"]["world"])
    words = {}  # task -> the item's word, in item order (the item log holds prompts, not the word field)
    from lmlab.world import load_task

    for direction in ("unscramble", "scramble"):
        for rule in RULES:
            name = f"scramble_{direction}_{rule}"
            words[name] = [d["word"] for d in load_task(world, name)]
    f1: dict[tuple[str, int], list[float]] = {}
    for line in out.with_name(out.stem + ".items.jsonl").read_text().splitlines():
        it = json.loads(line)
        f1.setdefault((it["task"], it["shots"]), []).append(
            letter_f1(it["prediction"], words[it["task"]][it["index"]]))

    def score(direction: str, rule: str, k: int) -> tuple[float, float]:
        r = res[(f"scramble_{direction}_{rule}", k)]
        metric = "exact_match" if direction == "unscramble" else "valid"
        return r["metrics"][metric], r["stderr"][metric] or 0.0

    # Row 1: the task metrics; row 2: letter F1, a graded signal that treats both directions alike.
    fig, axes = plt.subplots(2, len(shots), figsize=(4.5 * len(shots), 7.0), sharey="row", squeeze=False)
    for col, k in enumerate(shots):
        for j, direction in enumerate(("unscramble", "scramble")):
            pos = [x + (j - 0.5) * 0.38 for x in range(len(RULES))]
            vals = [score(direction, r, k) for r in RULES]
            axes[0][col].bar(pos, [v * 100 for v, _ in vals], 0.38, yerr=[e * 100 for _, e in vals], capsize=2,
                             label="unscramble (exact match)" if direction == "unscramble"
                             else "scramble (valid by rule)")
            f1s = [sum(f1[(f"scramble_{direction}_{r}", k)]) / len(f1[(f"scramble_{direction}_{r}", k)])
                   for r in RULES]
            axes[1][col].bar(pos, f1s, 0.38, label=direction)
        for row in (0, 1):
            axes[row][col].set_xticks(range(len(RULES)), [SHORT[r] for r in RULES])
        axes[0][col].set_title(f"{k}-shot")
        axes[0][col].set_ylim(0, 100)
        axes[1][col].set_ylim(0, 1)
    axes[0][0].set_ylabel("accuracy (%), ±1 s.e.")
    axes[1][0].set_ylabel("letter F1 with the word")
    axes[0][0].legend(fontsize=8)
    axes[1][0].legend(fontsize=8)
    fig.suptitle(f"Word scrambling, both directions: {report['run_dir']}")
    fig.tight_layout()
    png = REPO / "docs" / "experiments" / f"scrambling{('-' + args.name) if args.name else ''}.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)

    rows = ["| rule | " + " | ".join(f"unscramble {k}-shot | scramble {k}-shot (valid / exact)" for k in shots) + " |",
            "|---" * (1 + 2 * len(shots)) + "|"]
    f1_rows = ["| rule | " + " | ".join(f"unscramble {k}-shot | scramble {k}-shot" for k in shots) + " |",
               "|---" * (1 + 2 * len(shots)) + "|"]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    for rule in RULES:
        cells = [f"{mean(f1[(f'scramble_{d}_{rule}', k)]):.2f}" for k in shots for d in ("unscramble", "scramble")]
        f1_rows.append(f"| {SHORT[rule]} | " + " | ".join(cells) + " |")
    for rule in RULES:
        cells = []
        for k in shots:
            u = score("unscramble", rule, k)
            s = res[(f"scramble_scramble_{rule}", k)]
            cells.append(f"{u[0] * 100:.0f} ± {u[1] * 100:.0f}")
            cells.append(f"{s['metrics']['valid'] * 100:.0f} ± {(s['stderr']['valid'] or 0) * 100:.0f} / "
                         f"{s['metrics']['exact_match'] * 100:.0f}")
        rows.append(f"| {SHORT[rule]} | " + " | ".join(cells) + " |")
    table = "\n".join(rows) + "\n\nletter F1 (mean over items):\n\n" + "\n".join(f1_rows)
    summary = {"run": report["run_dir"], "table": table, "train_seconds": seconds, "commands": log, "png": str(png)}
    (out.with_suffix(".summary.json")).write_text(json.dumps(summary, indent=2))
    print(table)
    print(json.dumps({k: v for k, v in summary.items() if k != "table"}, indent=2))


if __name__ == "__main__":
    main()
