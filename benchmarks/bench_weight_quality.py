"""Quality of int8 and bf16 weight storage against fp32 on a trained run: perplexity, task accuracy, greedy agreement.

For each storage (lmlab.generation.set_weight_storage) on the same loaded model:
- perplexity on the run's validation split (the shards it was trained from) and on a text file (default WikiText-2
  validation, ../shared/data/wikitext2_valid.txt; tokenised once, scored as one document);
- task accuracy with lmlab's harness (default facts_train and 2D+ from the world in --world, each task's own shots);
- greedy agreement with fp32: the first --prompt-tokens tokens of --prompts validation documents are continued
  greedily to fill the context (block_size - prompt tokens new tokens, or until <eos>); reported as the share of
  fp32's new tokens matched at the same position, the rows identical to fp32's, and the mean number of new tokens
  before a row's first difference (its whole length when identical).

    python benchmarks/bench_weight_quality.py RUN_DIR [--world runs/world] [--text FILE] [--tasks facts_train,2D+]

The last line is `RESULT fp32_val_ppl=... bf16_val_ppl=... int8_val_ppl=... ..._text_ppl=... ..._<task>=...
..._agree=...` (task figures are the first metric of each task, in %).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

DEFAULT_TEXT = Path(__file__).resolve().parents[2] / "shared" / "data" / "wikitext2_valid.txt"


def validation_prompts(tokens: np.ndarray, eos: int, n: int, length: int) -> list[list[int]]:
    """The first `length` tokens of the first `n` documents (separated by `eos`) of a token stream that are at least
    that long."""
    prompts, start = [], 0
    for end in np.flatnonzero(tokens == eos).tolist() + [len(tokens)]:
        if end - start >= length:
            prompts.append([int(t) for t in tokens[start:start + length]])
            if len(prompts) == n:
                break
        start = end + 1
    return prompts


def agreement(ours: list[list[int]], reference: list[list[int]]) -> tuple[float, int, float]:
    """(share of the reference's tokens matched at the same position, rows identical to the reference, mean number
    of tokens before a row's first difference — its whole length when identical) of two sets of rows."""
    same = sum(a == b for x, r in zip(ours, reference) for a, b in zip(x, r))
    total = sum(len(r) for r in reference)
    prefixes = []
    for x, r in zip(ours, reference):
        k = 0
        while k < min(len(x), len(r)) and x[k] == r[k]:
            k += 1
        prefixes.append(k)
    return same / total, sum(x == r for x, r in zip(ours, reference)), sum(prefixes) / len(prefixes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--world", default="runs/world", help="world dir for the world tasks (default runs/world)")
    ap.add_argument("--data", default=None, help="shard dir (default: the run's training data)")
    ap.add_argument("--text", default=str(DEFAULT_TEXT), help="text file scored as one document (WikiText-2 val)")
    ap.add_argument("--tasks", default="facts_train,2D+")
    ap.add_argument("--prompts", type=int, default=32, help="validation documents continued greedily (default 32)")
    ap.add_argument("--prompt-tokens", type=int, default=8)
    args = ap.parse_args()

    from lmlab.checkpoint import load_run
    from lmlab.data import load_split
    from lmlab.evaluation import evaluate
    from lmlab.evaluation.builtin import resolve_tasks
    from lmlab.generation import STORAGES, generate, perplexity, set_weight_storage

    run = load_run(args.run_dir)
    model, tok = run.model, run.tokenizer
    data = args.data or run.training_config["data_dir"]
    val = np.asarray(load_split(data, "val", tokenizer=tok))
    text = Path(args.text).read_text(encoding="utf-8")
    text_ids = np.asarray([tok.eos_id] + tok.encode(text) + [tok.eos_id], dtype=np.int64)
    tasks = resolve_tasks(args.tasks, world=args.world)
    prompts = validation_prompts(val, tok.eos_id, args.prompts, args.prompt_tokens)
    new_tokens = model.config.block_size - args.prompt_tokens
    print(f"run {args.run_dir}: {model.num_params(non_embedding=False) / 1e6:.2f}M params; val split {len(val)} "
          f"tokens of {data}; {args.text}: {len(text_ids)} tokens; {len(prompts)} prompts of {args.prompt_tokens} "
          f"tokens + {new_tokens} greedy tokens")

    rows, fields, reference = [], [], None
    for storage in STORAGES:
        t = time.perf_counter()
        set_weight_storage(model, storage)
        val_ppl = perplexity(model, val)["ppl"]
        text_ppl = perplexity(model, text_ids, text_bytes=len(text.encode("utf-8")))["ppl"]
        results, _ = evaluate(model, tok, tasks, seed=1234)
        scores = {r["task"]: 100 * next(iter(r["metrics"].values())) for r in results}
        greedy = [c.tokens for c in generate(model, tok, prompts, max_new_tokens=new_tokens, temperature=0)]
        reference = reference or greedy
        same, identical, prefix = agreement(greedy, reference)
        rows.append((storage, val_ppl, text_ppl, scores))
        print(f"{storage}: val ppl {val_ppl:.4f} | text ppl {text_ppl:.3f} | "
              + " | ".join(f"{k} {v:.1f}%" for k, v in scores.items())
              + f" | greedy: {same:.1%} of fp32's tokens, {identical}/{len(greedy)} rows identical, "
              f"{prefix:.1f} tokens before the first difference ({time.perf_counter() - t:.0f} s)", flush=True)
        fields += [f"{storage}_val_ppl={val_ppl:.4f}", f"{storage}_text_ppl={text_ppl:.3f}"]
        fields += [f"{storage}_{k}={v:.1f}" for k, v in scores.items()]
        fields += [f"{storage}_agree={same:.3f}", f"{storage}_identical={identical}"]
    base = rows[0]
    for storage, val_ppl, text_ppl, scores in rows[1:]:
        print(f"{storage} vs fp32: val ppl {100 * (val_ppl / base[1] - 1):+.2f}%, text ppl "
              f"{100 * (text_ppl / base[2] - 1):+.2f}%, "
              + ", ".join(f"{k} {v - base[3][k]:+.1f} points" for k, v in scores.items()))
    print("RESULT " + " ".join(fields))


if __name__ == "__main__":
    main()
