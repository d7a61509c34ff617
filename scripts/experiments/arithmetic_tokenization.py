"""Experiment: does writing numbers digit by digit help a small GPT learn arithmetic?

Write-up: docs/experiments/arithmetic-tokenization.md.

Two GPTs of the same shape are trained with the same compute (same steps × batch × context = the same number of
tokens, the same FLOPs) on the same text — the arithmetic section of a `lmlab world` corpus — differing only in the
BPE tokenizer's number policy: `gpt2` (digit strings merged by frequency, as GPT-2 does) or `digits` (one token per
digit). Both tokenizers are trained on the whole world corpus with the same vocabulary size. Then both are evaluated
on the ten GPT-3 arithmetic tasks (the world's held-out questions) at 0, 1 and 5 shots.

    .venv/bin/python scripts/experiments/arithmetic_tokenization.py --work /tmp/exp-arith

Writes WORK/{world,tok-*,data-*,run-*,eval-*}, WORK/summary.json (accuracies, integer coverage, tokens per line,
final val loss, the exact commands) and docs/experiments/arithmetic-tokenization.png; prints the table used in
docs/experiments/arithmetic-tokenization.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import LMLAB, REPO, sh  # noqa: E402

POLICIES = ("gpt2", "digits")
TASKS = ["arithmetic_2da", "arithmetic_2ds", "arithmetic_3da", "arithmetic_3ds", "arithmetic_4da", "arithmetic_4ds",
         "arithmetic_5da", "arithmetic_5ds", "arithmetic_2dm", "arithmetic_1dc"]
GPT3 = dict(zip(TASKS, ["2D+", "2D-", "3D+", "3D-", "4D+", "4D-", "5D+", "5D-", "2Dx", "1DC"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True, type=Path, help="working directory for worlds, shards, runs, results")
    ap.add_argument("--max-iters", type=int, default=400)
    ap.add_argument("--limit", type=int, default=50, help="items per task and shot count")
    ap.add_argument("--shots", default="0,1,5")
    ap.add_argument("--skip-train", action="store_true", help="reuse the runs already in --work")
    ap.add_argument("--write-up-only", action="store_true", help="only recompute tables/plot from --work")
    ap.add_argument("--ll-limit", type=int, default=200, help="items per task for the answer log-likelihoods")
    args = ap.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.write_up_only:
        old = json.loads((work / "summary.json").read_text()) if (work / "summary.json").is_file() else {}
        write_up(work, old.get("commands", []), old.get("train_seconds", {}), args)
        return
    world = work / "world"
    log: list[str] = []
    if not (world / "world.json").is_file():
        sh(LMLAB + ["world", "--out", str(world), "--seed", "0", "--size", "5MB"], log)
    # Same model shape and training settings for both: only the tokenizer differs.
    shape = ["--n_layer", "2", "--n_head", "4", "--n_embd", "128", "--block_size", "128", "--batch_size", "16",
             "--max_iters", str(args.max_iters), "--lr", "3e-3", "--min_lr", "3e-4", "--warmup_iters", "40",
             "--eval_interval", str(args.max_iters), "--eval_iters", "10", "--dtype", "float32", "--seed", "0"]
    timings = {}
    for policy in POLICIES:
        tok, data, run = work / f"tok-{policy}.json", work / f"data-{policy}", work / f"run-{policy}"
        if not args.skip_train:
            sh(LMLAB + ["tokenizer", "train", str(world / "corpus"), "--kind", "bpe", "--numbers", policy,
                        "--vocab-size", "1024", "--out", str(tok), "--quiet"], log)
            sh(LMLAB + ["data", "prepare", str(world / "corpus" / "arithmetic.txt"), "--tokenizer", str(tok),
                        "--out", str(data), "--split-blank-lines", "--dedup", "none", "--no-progress"], log)
            t0 = time.time()
            sh(LMLAB + ["train", "--data", str(data), "--out", str(run), "--overwrite", "--no-progress"] + shape, log)
            timings[policy] = time.time() - t0
        sh(LMLAB + ["eval", "tasks", str(run), "--tasks", ",".join(TASKS), "--shots", args.shots, "--limit",
                    str(args.limit), "--world", str(world), "--out", str(work / f"eval-{policy}.json"),
                    "--no-progress"], log)
    write_up(work, log, timings, args)


def coverage(tok_path: Path) -> dict:
    from lmlab.tokenization import integer_coverage, load_tokenizer

    tok = load_tokenizer(tok_path)
    return integer_coverage(tok, 1000, prefix=" ")


def tokens_per_line(tok_path: Path, world: Path) -> float:
    from lmlab.tokenization import load_tokenizer

    tok = load_tokenizer(tok_path)
    lines = [ln for ln in (world / "corpus" / "arithmetic.txt").read_text().splitlines() if ln.strip()][:2000]
    return sum(len(tok.encode(ln)) for ln in lines) / len(lines)


def answer_bits(run_dir: Path, world: Path, shots: list[int], limit: int) -> dict[str, dict[int, dict]]:
    """Per task and shot count: bits per character of the right answer (-log2 P(" 124" | prompt) / 4) and the
    share of answers that greedy decoding would write (is_greedy), over the first `limit` questions. A graded
    signal where exact match is still 0 for both models; per character, so tokenizers compare fairly."""
    import dataclasses
    import math

    from lmlab.checkpoint import load_run
    from lmlab.evaluation import Task, evaluate_task, resolve_tasks

    run = load_run(run_dir)
    out: dict[str, dict[int, dict]] = {}
    for task in resolve_tasks(TASKS, world=world):
        ll_task = Task(dataclasses.replace(task.config, output_type="loglikelihood"), task.docs)
        out[task.name] = {}
        for k in shots:
            result, items = evaluate_task(run.model, run.tokenizer, ll_task, shots=k, limit=limit,
                                          bootstrap_iters=0)
            chars = sum(len(" " + it["target"]) for it in items)
            out[task.name][k] = {"bits_per_char": -sum(it["loglikelihood"] for it in items) / math.log(2) / chars,
                                 "is_greedy": result["metrics"]["acc"]}
    return out


def write_up(work: Path, log: list[str], timings: dict, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shots = [int(s) for s in args.shots.split(",")]
    acc: dict[str, dict[tuple[str, int], tuple[float, float]]] = {}
    final_loss = {}
    for policy in POLICIES:
        report = json.loads((work / f"eval-{policy}.json").read_text())
        acc[policy] = {(r["task"], r["shots"]): (r["metrics"]["exact_match"], r["stderr"]["exact_match"] or 0.0)
                       for r in report["results"]}
        lines = [json.loads(ln) for ln in (work / f"run-{policy}" / "metrics.jsonl").read_text().splitlines()]
        vals = [ln["val_loss"] for ln in lines if "val_loss" in ln]
        final_loss[policy] = vals[-1] if vals else None
    cov = {p: coverage(work / f"tok-{p}.json") for p in POLICIES}
    bits = {p: answer_bits(work / f"run-{p}", work / "world", shots, args.ll_limit) for p in POLICIES}
    tpl = {p: tokens_per_line(work / f"tok-{p}.json", work / "world") for p in POLICIES}

    # Row 1: exact match (the GPT-3 metric); row 2: bits per character of the right answer (graded).
    fig, axes = plt.subplots(2, len(shots), figsize=(4.2 * len(shots), 7.0), sharey="row", squeeze=False)
    xs = range(len(TASKS))
    for col, k in enumerate(shots):
        for j, policy in enumerate(POLICIES):
            pos = [x + (j - 0.5) * 0.38 for x in xs]
            ys = [acc[policy][(t, k)][0] * 100 for t in TASKS]
            es = [acc[policy][(t, k)][1] * 100 for t in TASKS]
            axes[0][col].bar(pos, ys, 0.38, yerr=es, label=f"numbers={policy}", capsize=2)
            axes[1][col].bar(pos, [bits[policy][t][k]["bits_per_char"] for t in TASKS], 0.38,
                             label=f"numbers={policy}")
        for row in (0, 1):
            axes[row][col].set_xticks(list(xs), [GPT3[t] for t in TASKS], rotation=45)
        axes[0][col].set_title(f"{k}-shot")
        axes[0][col].set_ylim(0, 100)
    axes[0][0].set_ylabel("exact match (%), ±1 s.e.")
    axes[1][0].set_ylabel("bits per char of the answer")
    axes[0][0].legend()
    fig.suptitle(f"GPT-3 arithmetic after {args.max_iters} steps, same compute (2-layer GPT, arithmetic.txt)")
    fig.tight_layout()
    out_dir = REPO / "docs" / "experiments"
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "arithmetic-tokenization.png", dpi=110)

    head = "| task | " + " | ".join(f"{p} {k}-shot" for k in shots for p in POLICIES) + " |"
    rows = [head, "|---" * (1 + len(shots) * len(POLICIES)) + "|"]
    for t in TASKS:
        cells = [f"{acc[p][(t, k)][0] * 100:.0f} ± {acc[p][(t, k)][1] * 100:.0f}" for k in shots for p in POLICIES]
        rows.append(f"| {GPT3[t]} | " + " | ".join(cells) + " |")
    rows += ["", "| task | " + " | ".join(f"{p} {k}-shot" for k in shots for p in POLICIES) + " |",
             "|---" * (1 + len(shots) * len(POLICIES)) + "|"]
    for t in TASKS:
        cells = [f"{bits[p][t][k]['bits_per_char']:.2f} ({bits[p][t][k]['is_greedy'] * 100:.0f}%)"
                 for k in shots for p in POLICIES]
        rows.append(f"| {GPT3[t]} | " + " | ".join(cells) + " |")
    table = "\n".join(rows)
    summary = {"accuracy": {p: {f"{t}@{k}": acc[p][(t, k)][0] for t in TASKS for k in shots} for p in POLICIES},
               "answer_bits_per_char": bits,
               "coverage_0_1000": cov, "tokens_per_line": tpl, "final_val_loss": final_loss,
               "train_seconds": timings, "commands": log}
    (work / "summary.json").write_text(json.dumps(summary, indent=2))
    print(table)
    print(json.dumps({k: v for k, v in summary.items() if k != "accuracy"}, indent=2))


if __name__ == "__main__":
    main()
