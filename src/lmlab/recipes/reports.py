"""What a recipe shows at the end, once its model is trained: each report is a function that measures (returns
plain data) and `format_report` turns that data into the lines the CLI prints."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from lmlab.errors import LmlabError
from lmlab.world import load_facts, sample_prompts

# World prompts shown by the completions report, and the arithmetic report's tasks and shots (its bars: 2D+ ≥ 90%
# and facts ≥ 90% at 5 shots, docs/recipes.md).
N_COMPLETIONS = 5
ARITHMETIC_TASKS, ARITHMETIC_SHOTS = "2D+,facts_train", [5]
# The shakespeare-char sample: nanoGPT's sample.py defaults (newline prompt, temperature 0.8, top-k 200), shorter.
SAMPLE_TOKENS, SAMPLE_TEMPERATURE, SAMPLE_TOP_K, SAMPLE_SEED = 200, 0.8, 200, 1337


def completions_report(run_dir: str | os.PathLike, world_dir: str | os.PathLike | None) -> dict[str, Any]:
    """Greedy completions (≤ 16 tokens, stopped at a newline or full stop) of a few of the world's fact prompts;
    without a world (a recipe on the user's text), a sample from a newline prompt as nanoGPT's sample.py draws."""
    from lmlab.checkpoint import load_run
    from lmlab.generation import generate

    run = load_run(run_dir)
    if world_dir is None:
        # decoding has no sliding window: the sample fits in the model's context with its one-token prompt
        n_new = min(SAMPLE_TOKENS, run.model_config.block_size - 1)
        out = generate(run.model, run.tokenizer, ["\n"], max_new_tokens=n_new, temperature=SAMPLE_TEMPERATURE,
                       top_k=SAMPLE_TOP_K, seed=SAMPLE_SEED)
        return {"sample": out[0].text}
    prompts = sample_prompts(world_dir, N_COMPLETIONS, seed=0)
    out = generate(run.model, run.tokenizer, prompts, max_new_tokens=16, temperature=0.0, stop=["\n", "."])
    return {"completions": [[p, c.text] for p, c in zip(prompts, out)]}


def arithmetic_report(run_dir: str | os.PathLike, world_dir: str | os.PathLike | None) -> dict[str, Any]:
    """2D+ (the world's 500 held-out 2-digit sums) and facts_train accuracy at 5 shots (lmlab.evaluation)."""
    from lmlab.evaluation import eval_tasks

    out = Path(run_dir) / "eval" / "results.json"
    report = eval_tasks(run_dir, ARITHMETIC_TASKS, shots=ARITHMETIC_SHOTS, world=world_dir, out=out,
                        progress=False)
    return {"eval": report, "results_file": str(out)}


def fill_report(run_dir: str | os.PathLike, world_dir: str | os.PathLike | None) -> dict[str, Any]:
    """The masked LM's top tokens for the object of a few fact prompts ("The capital of X is [MASK].")."""
    from lmlab.generation.fill import fill_mask

    if world_dir is None:
        return {}
    texts = [f"{p} [MASK]." for p in sample_prompts(world_dir, 3, seed=0)]
    return {"fills": [[t, [tok for tok, _ in fill_mask(run_dir, t, top_k=3)[0]]] for t in texts]}


def neighbours_report(run_dir: str | os.PathLike, world_dir: str | os.PathLike | None) -> dict[str, Any]:
    """The 5 nearest words (cosine) to the subject and object of the world's first static fact."""
    from lmlab.evaluation.embeddings import neighbors

    if world_dir is None:
        return {}
    fact = next(f for f in load_facts(world_dir) if not f.get("temporal"))
    rows = {}
    for word in (fact["subject"], fact["object"]):
        try:
            rows[word] = [w for w, _ in neighbors(run_dir, word, k=5)]
        except LmlabError as e:  # a word the vocabulary cut: show why rather than fail the finished recipe
            rows[word] = [f"({e})"]
    return {"neighbours": rows}


REPORTS: dict[str, Callable[[str | os.PathLike, str | os.PathLike | None], dict[str, Any]]] = {
    "completions": completions_report, "arithmetic": arithmetic_report, "fill": fill_report,
    "neighbours": neighbours_report, "none": lambda run_dir, world_dir: {},
}


def format_report(report: dict[str, Any]) -> list[str]:
    """The lines a terminal shows for one report's data (empty for the "none" report)."""
    lines: list[str] = []
    if "completions" in report:
        lines.append("sample completions (greedy):")
        lines += [f"  {p!r} → {c!r}" for p, c in report["completions"]]
    if "sample" in report:
        lines += ["sample (temperature 0.8):", report["sample"]]
    if "eval" in report:
        from lmlab.evaluation import format_table

        lines += [format_table(report["eval"]), f"results: {report['results_file']}"]
    if "fills" in report:
        lines.append("masked-word predictions (top 3):")
        lines += [f"  {t!r} → {', '.join(map(repr, toks))}" for t, toks in report["fills"]]
    if "neighbours" in report:
        lines.append("nearest words (cosine):")
        lines += [f"  {w}: {', '.join(ns)}" for w, ns in report["neighbours"].items()]
    return lines
