"""Experiment: digits vs groups3 vs GPT-2 number chunks where a tiny GPT *can* learn to add — learning curves.

Write-up: the first section of docs/experiments/arithmetic-tokenization.md.

Three tokenizers that differ only in the BPE number policy (`gpt2`, `groups3`, `digits`; each trained on the world
corpus, 1,024 ids) tokenize the same text: the `arithmetic` recipe's sums (the world's arithmetic section plus its
6,600 documents of extra 2-digit sums). The same GPT (the `tiny` shape with the recipe's partial rotary positions)
is trained on each with the same optimiser, seeds and number of passes over the text — so every policy sees the
same sums; the token counts (hence steps and FLOPs) differ and are reported. Training keeps a checkpoint at each
of 8 evaluations; `lmlab eval tasks --checkpoints` scores 2D+, 2D-, 3D+, 3D-, 2Dx and 1DC on the world's held-out
questions at 0 and 5 shots on each. Then: GPT-3 Table 3.9's shape on the best model and on the `arithmetic`
recipe's model, a check that no test question occurs in the shards (suffix-array count), and 6-digit questions
(outside every training range).

    .venv/bin/python scripts/experiments/arithmetic_policies.py --work /tmp/exp-arith-policies \
        --recipe-run runs/arithmetic

Re-running skips finished runs and evaluations. Writes WORK/summary.json and
docs/experiments/arithmetic-policies.png; prints the markdown tables of the write-up.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import LMLAB, REPO, sh  # noqa: E402

POLICIES = ("gpt2", "groups3", "digits")
CURVE_TASKS = ["arithmetic_2da", "arithmetic_2ds", "arithmetic_3da", "arithmetic_3ds", "arithmetic_2dm",
               "arithmetic_1dc"]
TABLE_TASKS = ["arithmetic_2da", "arithmetic_2ds", "arithmetic_3da", "arithmetic_3ds", "arithmetic_4da",
               "arithmetic_4ds", "arithmetic_5da", "arithmetic_5ds", "arithmetic_2dm", "arithmetic_1dc"]
GPT3 = dict(zip(TABLE_TASKS, ["2D+", "2D-", "3D+", "3D-", "4D+", "4D-", "5D+", "5D-", "2Dx", "1DC"]))
# GPT-3 175B few-shot, Brown et al. 2020, Table 3.9
GPT3_175B_FEWSHOT = {"2D+": 100.0, "2D-": 98.9, "3D+": 80.4, "3D-": 94.2, "4D+": 25.5, "4D-": 26.8, "5D+": 9.3,
                     "5D-": 9.9, "2Dx": 29.2, "1DC": 21.3}
BATCH, BLOCK = 16, 128  # the tiny shape's batch and context: tokens per step = BATCH × BLOCK
MODEL = ["--preset", "tiny", "--pos_embedding", "rotary", "--rotary_pct", "0.25"]
TRAIN = ["--batch_size", str(BATCH), "--lr", "1e-3", "--min_lr", "1e-4", "--warmup_iters", "100",
         "--weight_decay", "0.1", "--beta2", "0.99", "--eval_iters", "10", "--dtype", "float32",
         "--keep_checkpoints", "true"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True, type=Path, help="working directory (world, text, shards, runs, evals)")
    ap.add_argument("--passes", type=float, default=4.0, help="passes over the training text, the same for all")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--checkpoints", type=int, default=8, help="evaluations along training")
    ap.add_argument("--limit", type=int, default=50, help="questions per task and shot count on the curves")
    ap.add_argument("--table-limit", type=int, default=200, help="questions per task in the GPT-3 table")
    ap.add_argument("--recipe-run", type=Path, default=None,
                    help="the `arithmetic` recipe's run dir (lmlab train --recipe arithmetic), for the table")
    ap.add_argument("--plot", type=Path, default=REPO / "docs" / "experiments" / "arithmetic-policies.png",
                    help="where the learning-curve plot goes")
    ap.add_argument("--threads", type=int, default=0,
                    help="CPU threads of every process (0: torch's default); 1 lets two experiments share 2 cores "
                         "without oversubscribing them")
    args = ap.parse_args()
    if args.threads:
        import os

        import torch

        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # inherited by every lmlab command below
        torch.set_num_threads(args.threads)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    log: list[str] = []
    world, texts = prepare_text(work, log)
    shards = {p: prepare_shards(work, world, texts, p, log) for p in POLICIES}
    plan = {p: steps_for(shards[p], args.passes, args.checkpoints) for p in POLICIES}
    train_seconds = {}
    for policy in POLICIES:
        for seed in seeds:
            run = work / f"run-{policy}-s{seed}"
            train_seconds[f"{policy}-s{seed}"] = train(run, shards[policy], plan[policy], seed, log)
            curve_out = work / f"curve-{policy}-s{seed}.json"
            if not curve_out.is_file():
                sh(LMLAB + ["eval", "tasks", str(run), "--tasks", ",".join(CURVE_TASKS), "--shots", "0,5",
                            "--limit", str(args.limit), "--world", str(world), "--checkpoints", "--out",
                            str(curve_out), "--no-progress"], log)
    curves = {p: [json.loads((work / f"curve-{p}-s{s}.json").read_text())["curve"] for s in seeds] for p in POLICIES}
    lines = sums_per_token(texts, shards)
    summary = {"plan": plan, "train_seconds": train_seconds, "sums_per_token": lines,
               "tokens": {p: token_counts(shards[p]) for p in POLICIES},
               "flops_per_step": {p: flops_per_step(work / f"run-{p}-s{seeds[0]}") for p in POLICIES}}
    summary["curves"] = {p: mean_curves(curves[p], lines[p]) for p in POLICIES}
    summary["crossings"] = {p: crossings(summary["curves"][p]) for p in POLICIES}
    best = max(POLICIES, key=lambda p: summary["curves"][p]["arithmetic_2da@5"]["mean"][-1])
    summary["best"] = best
    table_runs = {f"{best} (seed {seeds[0]})": work / f"run-{best}-s{seeds[0]}"}
    if args.recipe_run is not None:
        table_runs["arithmetic recipe"] = args.recipe_run.resolve()
    summary["table"] = {name: gpt3_table(run, name, world, work, args.table_limit, log)
                        for name, run in table_runs.items()}
    summary["in_training"] = questions_in_shards(world, shards, work, log)
    summary["six_digits"] = {p: six_digit_accuracy(work / f"run-{p}-s{seeds[0]}", 100) for p in POLICIES}
    summary["commands"] = log
    (work / "summary.json").write_text(json.dumps(summary, indent=2))
    plot(summary, seeds, args.plot)
    print(write_up(summary, seeds, args))


# ------------------------------------------------------------------------------------------- text and shards ---
def prepare_text(work: Path, log: list[str]) -> tuple[Path, list[Path]]:
    """The world recipe's world and the arithmetic recipe's sums (arithmetic section + extra 2-digit sums)."""
    from lmlab.recipes import get_recipe
    from lmlab.recipes.table import WorldText
    from lmlab.recipes.texts import compose_world_text

    world = work / "world"
    recipe_text = get_recipe("arithmetic").data.text
    if not (world / "world.json").is_file():
        sh(LMLAB + ["world", "--out", str(world), "--seed", str(recipe_text.seed), "--size", recipe_text.size], log)
    spec = WorldText(seed=recipe_text.seed, size=recipe_text.size, world_dir=str(world), sections=("arithmetic",),
                     extra_sums=recipe_text.extra_sums, sums_seed=recipe_text.sums_seed)
    return world, compose_world_text(spec, work / "text")


def prepare_shards(work: Path, world: Path, texts: list[Path], policy: str, log: list[str]) -> Path:
    tok, data = work / f"tok-{policy}.json", work / f"data-{policy}"
    if not tok.is_file():
        sh(LMLAB + ["tokenizer", "train", str(world / "corpus"), "--kind", "bpe", "--numbers", policy,
                    "--vocab-size", "1024", "--out", str(tok), "--quiet"], log)
    if not (data / "manifest.json").is_file():
        sh(LMLAB + ["data", "prepare", *map(str, texts), "--tokenizer", str(tok), "--out", str(data),
                    "--split-blank-lines", "--dedup", "none", "--no-progress"], log)
    return data


def token_counts(data: Path) -> dict:
    manifest = json.loads((data / "manifest.json").read_text())
    return {split: manifest["splits"][split]["tokens"] for split in ("train", "val")}


def sums_per_token(texts: list[Path], shards: dict[str, Path]) -> dict[str, float]:
    """Question lines per token of each policy: the exchange rate from tokens seen to sums seen."""
    n_lines = sum(1 for t in texts for line in t.read_text().splitlines() if line.startswith("Q:"))
    return {p: n_lines / sum(token_counts(d).values()) for p, d in shards.items()}


def steps_for(data: Path, passes: float, checkpoints: int) -> dict:
    """Steps that read the train split `passes` times (rounded to a multiple of `checkpoints`)."""
    steps = passes * token_counts(data)["train"] / (BATCH * BLOCK)
    interval = max(1, round(steps / checkpoints))
    return {"max_iters": interval * checkpoints, "eval_interval": interval}


def train(run: Path, data: Path, plan: dict, seed: int, log: list[str]) -> float | None:
    """Train one run unless it already finished (its last kept checkpoint is there); returns wall seconds."""
    if (run / "checkpoints" / f"step-{plan['max_iters']:06d}.safetensors").is_file():
        return None
    t0 = time.time()
    sh(LMLAB + ["train", "--data", str(data), "--out", str(run), "--overwrite", "--no-progress", *MODEL, *TRAIN,
                "--max_iters", str(plan["max_iters"]), "--eval_interval", str(plan["eval_interval"]),
                "--seed", str(seed)], log)
    return time.time() - t0


def flops_per_step(run: Path) -> float:
    from lmlab.checkpoint import load_run

    return load_run(run).model.flops_per_token(BLOCK) * BATCH * BLOCK


# ------------------------------------------------------------------------------------------------ curves ---
def mean_curves(seed_curves: list[list[dict]], sums_per_tok: float) -> dict:
    """{"steps", "sums_seen", "TASK@K": {"mean", "se", "seeds"}} over seeds (exact match, %)."""
    steps = [point["step"] for point in seed_curves[0]]
    out: dict = {"steps": steps, "sums_seen": [round(s * BATCH * BLOCK * sums_per_tok) for s in steps]}
    for r in seed_curves[0][0]["results"]:
        key = f"{r['task']}@{r['shots']}"
        per_seed = [[100 * next(x["metrics"]["exact_match"] for x in point["results"]
                                if x["task"] == r["task"] and x["shots"] == r["shots"]) for point in curve]
                    for curve in seed_curves]
        n = len(per_seed)
        means = [sum(col) / n for col in zip(*per_seed)]
        ses = [math.sqrt(sum((v - m) ** 2 for v in col) / (n - 1) / n) if n > 1 else 0.0
               for col, m in zip(zip(*per_seed), means)]
        out[key] = {"mean": means, "se": ses, "seeds": per_seed}
    return out


def crossings(curve: dict) -> dict:
    """Sums seen at which the mean 2D+ accuracy first reaches 50% and 90%, at 0 and 5 shots (None: not reached)."""
    out = {}
    for k in (0, 5):
        means = curve[f"arithmetic_2da@{k}"]["mean"]
        for bar in (50, 90):
            out[f"{bar}%@{k}"] = next((s for s, m in zip(curve["sums_seen"], means) if m >= bar), None)
    return out


# ------------------------------------------------------------------------------------------ table and probes ---
def gpt3_table(run: Path, name: str, world: Path, work: Path, limit: int, log: list[str]) -> dict:
    out = work / f"table-{name.split()[0]}.json"
    if not out.is_file():
        sh(LMLAB + ["eval", "tasks", str(run), "--tasks", ",".join(TABLE_TASKS), "--shots", "0,5", "--limit",
                    str(limit), "--world", str(world), "--out", str(out), "--no-progress"], log)
    report = json.loads(out.read_text())
    return {f"{GPT3[r['task']]}@{r['shots']}": (100 * r["metrics"]["exact_match"], 100 * r["stderr"]["exact_match"])
            for r in report["results"]}


def questions_in_shards(world: Path, shards: dict[str, Path], work: Path, log: list[str]) -> dict:
    """How many test questions ("Q: What is 48 plus 76? A:") occur verbatim in each policy's shards (all splits),
    by a suffix-array count: 0 means a right answer cannot have been recalled from the training text."""
    from lmlab.attribution.corpus import encode_query
    from lmlab.attribution.suffix_array import SuffixIndex
    from lmlab.data import load_tokenizer_of
    from lmlab.world import load_task

    out = {}
    for policy, data in shards.items():
        index_dir = work / f"index-{policy}"
        if not (index_dir / "index.json").is_file():
            sh(LMLAB + ["attribute", "index", str(data), "--splits", "train,val", "--index-dir", str(index_dir)],
               log)
        ix, tok = SuffixIndex.open(data, index_dir), load_tokenizer_of(data)
        found = {}
        for task in TABLE_TASKS:
            prompts = [item["prompt"] for item in load_task(world, task)]
            found[GPT3[task]] = sum(ix.count(encode_query(tok, p)) > 0 for p in prompts)
        out[policy] = {"questions": sum(len(load_task(world, t)) for t in TABLE_TASKS),
                       "found": found, "total_found": sum(found.values())}
    return out


def six_digit_accuracy(run_dir: Path, n: int) -> dict:
    """Exact match (%) on n 6-digit sums and differences — longer operands than any line of the training text."""
    import dataclasses

    from lmlab.checkpoint import load_run
    from lmlab.evaluation import Task, evaluate_task, resolve_tasks
    from lmlab.world.arithmetic import draw

    run = load_run(run_dir)
    [five_digit] = resolve_tasks("arithmetic_5da")  # GPT-3 arithmetic's prompt layout and decoding settings
    rng = random.Random("arithmetic-policies:6D")
    out = {}
    for op, name in (("plus", "6D+"), ("minus", "6D-")):
        docs = [dict(zip(("prompt", "target"), draw(rng, 6, op))) for _ in range(n)]
        task = Task(dataclasses.replace(five_digit.config, task=name, max_gen_toks=16), docs)
        for k in (0, 5):
            result, _ = evaluate_task(run.model, run.tokenizer, task, shots=k, bootstrap_iters=0)
            out[f"{name}@{k}"] = 100 * result["metrics"]["exact_match"]
    return out


# ------------------------------------------------------------------------------------------------- outputs ---
def plot(summary: dict, seeds: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(CURVE_TASKS), figsize=(3.2 * len(CURVE_TASKS), 6.2), sharey=True,
                             sharex=True)
    for row, k in enumerate((0, 5)):
        for col, task in enumerate(CURVE_TASKS):
            ax = axes[row][col]
            for policy in POLICIES:
                c = summary["curves"][policy]
                xs = [s / 1000 for s in c["sums_seen"]]
                m, se = c[f"{task}@{k}"]["mean"], c[f"{task}@{k}"]["se"]
                ax.plot(xs, m, marker="o", ms=3, label=f"numbers={policy}")
                ax.fill_between(xs, [a - b for a, b in zip(m, se)], [a + b for a, b in zip(m, se)], alpha=0.2)
            ax.set_title(f"{GPT3[task]}, {k}-shot", fontsize=10)
            ax.set_ylim(-2, 102)
            if row == 1:
                ax.set_xlabel("sums seen (thousands)")
        axes[row][0].set_ylabel("exact match (%)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"Tiny rotary GPT on the arithmetic recipe's sums: mean ± s.e. over {len(seeds)} seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _sums(value: int | None) -> str:
    return f"{value / 1000:.0f}k" if value is not None else "not within budget"


def write_up(summary: dict, seeds: list[int], args) -> str:
    """The markdown tables of the write-up."""
    out = ["| policy | train tokens | tokens per sum | steps | FLOPs per run | train s (mean) | 2D+ 50% / 90% at "
           "5 shots (sums seen) | 2D+ 50% / 90% at 0 shots |", "|---" * 8 + "|"]
    for p in POLICIES:
        secs = [v for k, v in summary["train_seconds"].items() if k.startswith(p + "-") and v]
        c, plan = summary["crossings"][p], summary["plan"][p]
        out.append(f"| {p} | {summary['tokens'][p]['train']:,} | {1 / summary['sums_per_token'][p]:.1f} | "
                   f"{plan['max_iters']} | {summary['flops_per_step'][p] * plan['max_iters']:.2e} | "
                   f"{sum(secs) / len(secs) if secs else float('nan'):.0f} | {_sums(c['50%@5'])} / "
                   f"{_sums(c['90%@5'])} | {_sums(c['50%@0'])} / {_sums(c['90%@0'])} |")
    out += ["", "Final checkpoint, exact match % (mean ± s.e. over seeds), " + f"{args.limit} questions per cell:", "",
            "| task | " + " | ".join(f"{p} {k}-shot" for k in (0, 5) for p in POLICIES) + " |",
            "|---" * 7 + "|"]
    for task in CURVE_TASKS:
        cells = [f"{summary['curves'][p][f'{task}@{k}']['mean'][-1]:.1f} ± {summary['curves'][p][f'{task}@{k}']['se'][-1]:.1f}"
                 for k in (0, 5) for p in POLICIES]
        out.append(f"| {GPT3[task]} | " + " | ".join(cells) + " |")
    out += ["", "| task | " + " | ".join(f"{name} {k}-shot" for name in summary["table"] for k in (0, 5))
            + " | GPT-3 175B few-shot |", "|---" * (2 + 2 * len(summary["table"])) + "|"]
    for task in TABLE_TASKS:
        g = GPT3[task]
        cells = [f"{summary['table'][name][f'{g}@{k}'][0]:.1f} ± {summary['table'][name][f'{g}@{k}'][1]:.1f}"
                 for name in summary["table"] for k in (0, 5)]
        out.append(f"| {g} | " + " | ".join(cells) + f" | {GPT3_175B_FEWSHOT[g]} |")
    out += ["", json.dumps({k: summary[k] for k in ("in_training", "six_digits", "crossings", "best")}, indent=1)]
    return "\n".join(out)


if __name__ == "__main__":
    main()
