"""Can the tiny GPT learn GPT-3's 2D+ at all, and do its position encodings matter? (docs/experiments/
arithmetic-tokenization.md, "Follow-up 2"; issue 4's 2D+ bar)

    .venv/bin/python scripts/experiments/addition_positions.py [--world runs/world] [--tokenizer
        runs/world-data/tokenizer.json] [--work /tmp/addition] [--runs learned:1500,rotary:300,rotary:700,rotary:1500]

1. Text: 6,000 documents of 3–8 two-digit sums in the GPT-3 format ("Q: What is 48 plus 76? A: 124"), operands
   uniform in [0, 100) as in the paper, never one of the world's 500 held-out 2D+ questions (~921 KB).
2. For each POSITIONS:STEPS: the `tiny` GPT (4 layers, 4 heads, 128 dims, block 128) with the main job's tokenizer
   (BPE, digits policy) trained on that text alone for STEPS steps of 16 × 128 tokens (the tiny preset's lr
   schedule, cosine over STEPS), then `lmlab eval tasks --tasks 2D+ --shots 0,5 --limit 200` on the held-out
   questions. Each run takes ~0.2 s per step on one busy core.

Main-job candidates (follow-ups 3–6) take two texts from here: `--sums-only PATH --docs N --seed 1` writes only the
extra sums, and `--cut-only DIR [--cut-kb 100]` writes DIR/{grammar,scramble,sentiment}.txt, the first 100 KB (whole
paragraphs) of the world's own files, to pass to `lmlab data prepare` in place of the full ones.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from lmlab.recipes.texts import cut_paragraphs
from lmlab.world.arithmetic import extra_sums_text


def write_sums(path: Path, held_out: set[str], n_docs: int = 6000, seed: int = 0) -> None:
    path.write_text(extra_sums_text(held_out, n_docs, seed), encoding="ascii")


def write_cut_sections(corpus: Path, out: Path, kilobytes: int,
                       sections: tuple[str, ...] = ("grammar", "scramble", "sentiment")) -> None:
    """out/NAME.txt for each section: the first `kilobytes` KB (whole paragraphs) of corpus/NAME.txt."""
    out.mkdir(parents=True, exist_ok=True)
    for name in sections:
        text = (corpus / f"{name}.txt").read_text(encoding="utf-8")
        (out / f"{name}.txt").write_text(cut_paragraphs(text, kilobytes), encoding="utf-8")


def lmlab(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "lmlab", *args], check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", default="runs/world", help="world dir (its held-out 2D+ questions are the test)")
    ap.add_argument("--tokenizer", default="runs/world-data/tokenizer.json", help="the main job's tokenizer")
    ap.add_argument("--work", default="/tmp/addition", help="scratch dir for the text, shards and runs")
    ap.add_argument("--runs", default="learned:1500,rotary:300,rotary:700,rotary:1500",
                    help="comma-separated POSITIONS:STEPS")
    ap.add_argument("--train-args", default="", help="extra `lmlab train` settings for every run, e.g. "
                    "'--lr 3e-3 --min_lr 3e-4' or '--weight_decay 0'")
    ap.add_argument("--sums-only", metavar="PATH", help="only write a sums text to PATH (no held-out question) and "
                    "exit: the extra 2D+ text of follow-up 3")
    ap.add_argument("--cut-only", metavar="DIR", help="only write the first --cut-kb KB of the world's grammar, "
                    "scramble and sentiment texts into DIR and exit (the cut main-job candidates)")
    ap.add_argument("--cut-kb", type=int, default=100, help="kilobytes kept per section by --cut-only (default 100)")
    ap.add_argument("--docs", type=int, default=6000, help="documents of 3-8 sums in the text (default 6000)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the sums text")
    args = ap.parse_args()
    if args.cut_only:
        write_cut_sections(Path(args.world) / "corpus", Path(args.cut_only), args.cut_kb)
        return 0
    held = {json.loads(line)["prompt"] for line in open(Path(args.world) / "tasks" / "arithmetic_2da.jsonl")}
    if args.sums_only:
        write_sums(Path(args.sums_only), held, n_docs=args.docs, seed=args.seed)
        return 0
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    write_sums(work / "sums.txt", held, n_docs=args.docs, seed=args.seed)
    lmlab("data", "prepare", str(work / "sums.txt"), "--tokenizer", args.tokenizer, "--out", str(work / "data"),
          "--split-blank-lines", "--dedup", "none", "--no-progress")
    rows = []
    for spec in args.runs.split(","):
        pos, steps = spec.split(":")
        run = work / f"run-{pos}-{steps}"
        lmlab("train", "--data", str(work / "data"), "--out", str(run), "--overwrite", "--no-progress",
              # float32 as in the write-up (auto picks bf16 on AVX512-BF16 CPUs); --train-args '--dtype X' wins
              "--pos_embedding", pos, "--max_iters", steps, "--eval_interval", steps, "--dtype", "float32",
              *args.train_args.split())
        lmlab("eval", "tasks", str(run), "--tasks", "2D+", "--shots", "0,5", "--limit", "200", "--world", args.world,
              "--out", str(run / "eval.json"), "--no-progress")
        res = json.loads((run / "eval.json").read_text())
        rows.append((pos, steps, res))
    print("\n| positions | steps | 2D+ 0-shot | 2D+ 5-shot |\n|---|---|---|---|")
    for pos, steps, res in rows:
        by_shots = {r["shots"]: r for r in res["results"]}
        cells = [f"{100 * by_shots[k]['metrics']['exact_match']:.1f} ± {100 * by_shots[k]['stderr']['exact_match']:.1f}"
                 for k in (0, 5)]
        print(f"| {pos} | {steps} | {cells[0]} | {cells[1]} |")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
