"""Multiple-choice log-likelihood scoring speed: lmlab's harness batched vs one request at a time, and
lm-evaluation-harness's HFLM on the same (exported) GPT-2 checkpoint and the same requests, in one run.

    .venv/bin/python benchmarks/bench_eval.py [--items 200] [--batch-size 16]

"Batched" is the harness (`evaluate_task`: length-sorted batches, one-token answers to one context sharing a row);
"one at a time" calls `score_continuation` once per request. The model is a random GPT-2 (4 layers, 256 wide,
256 positions; a byte-level BPE of 2,000 ids trained on the task's text) written by transformers, imported into an
lmlab run dir (`lmlab.hub.import_hf_gpt2`) and exported back (`export_hf_gpt2`); HFLM loads the export.
The task is SST-2 (lm-evaluation-harness's prompt, 2 choices per item) on the first N rows of
../shared/data/sst2_alps_dev.tsv, or the world's sentiment task when that file is absent.
Both sides score the very same (context, continuation) pairs; their log-likelihoods and accuracies must agree.
lm-eval (and the accelerate its HFLM imports) are in the `dev` extra; without them that
column is skipped. Ends with one `RESULT key=value ...` line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / ".." / "shared" / "data"


def build_checkpoint(work: Path, texts: list[str]) -> tuple[Path, Path]:
    """(lmlab run dir, exported HF GPT-2 dir) of one random GPT-2."""
    import transformers
    from tokenizers import ByteLevelBPETokenizer

    from lmlab.hub import export_hf_gpt2, import_hf_gpt2

    hf_dir = work / "hf"
    hf_dir.mkdir()
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=2000, special_tokens=["<|endoftext|>"], show_progress=False)
    bpe.save_model(str(hf_dir))
    vocab = json.loads((hf_dir / "vocab.json").read_text())
    eot = vocab["<|endoftext|>"]
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_layer=4, n_head=4, n_embd=256, n_positions=256, vocab_size=len(vocab),
                                  bos_token_id=eot, eos_token_id=eot)
    transformers.GPT2LMHeadModel(cfg).save_pretrained(hf_dir)
    run_dir = import_hf_gpt2(hf_dir, work / "run")
    return run_dir, export_hf_gpt2(run_dir, work / "export")


def load_task(n: int):
    from lmlab.evaluation import resolve_tasks

    sst2 = DATA / "sst2_alps_dev.tsv"
    if sst2.is_file():
        task = resolve_tasks(f"sst2:{sst2}")[0]
    else:  # no shared data: the world's sentiment reviews
        from lmlab.world import generate_world

        world = Path(tempfile.mkdtemp()) / "w"
        generate_world(world, seed=0, size="100KB")
        task = resolve_tasks("sentiment", world=world)[0]
    task.docs = task.docs[:n]
    return task


def requests_of(task) -> tuple[list[tuple[str, str]], list[int], list[int]]:
    """The (context, continuation) pairs of every choice of every item, the item of each pair, the golds."""
    pairs, owner, golds = [], [], []
    for i, doc in enumerate(task.docs):
        ctx = task.context(i, 0)
        for ch in task.choices(doc):
            pairs.append((ctx, task.config.target_delimiter + ch))
            owner.append(i)
        golds.append(task.gold(doc))
    return pairs, owner, golds


def accuracy(lls: list[float], owner: list[int], golds: list[int]) -> float:
    per: dict[int, list[float]] = {}
    for i, ll in zip(owner, lls):
        per.setdefault(i, []).append(ll)
    return float(np.mean([int(np.argmax(per[i]) == g) for i, g in enumerate(golds)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()

    from lmlab.checkpoint import load_run
    from lmlab.evaluation import evaluate_task
    from lmlab.generation import score_continuation

    task = load_task(args.items)
    pairs, owner, golds = requests_of(task)
    n_items, n_req = len(task.docs), len(pairs)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir, export_dir = build_checkpoint(Path(tmp), [d.get("sentence") or d.get("text", "") for d in task.docs])
        run = load_run(run_dir)
        rows = {}
        evaluate_task(run.model, run.tokenizer, task, limit=8, batch_size=args.batch_size, bootstrap_iters=0)  # warm-up
        t0 = time.perf_counter()
        result, items = evaluate_task(run.model, run.tokenizer, task, batch_size=args.batch_size, bootstrap_iters=0)
        dt = time.perf_counter() - t0
        rows["lmlab batched"] = {"seconds": dt, "items_s": n_items / dt, "acc": result["metrics"]["acc"],
                                 "lls": [ll for it in items for ll in it["loglikelihoods"]]}
        # The baseline: one forward pass per (context, continuation) request, no batching, no sharing.
        t0 = time.perf_counter()
        lls = [score_continuation(run.model, run.tokenizer, ctx, cont)[0] for ctx, cont in pairs]
        dt = time.perf_counter() - t0
        rows["lmlab one at a time"] = {"seconds": dt, "items_s": n_items / dt, "acc": accuracy(lls, owner, golds),
                                       "lls": lls}

        try:
            from lm_eval.api.instance import Instance
            from lm_eval.models.huggingface import HFLM
        except ImportError as e:
            print(f"lm-eval not installed ({e}); skipping HFLM", file=sys.stderr)
            HFLM = None
        if HFLM is not None:
            lm = HFLM(pretrained=str(export_dir), batch_size=args.batch_size, device="cpu", dtype="float32")
            instances = [Instance("loglikelihood", {}, p, j) for j, p in enumerate(pairs)]
            lm.loglikelihood(instances[:8], disable_tqdm=True)  # warm-up
            t0 = time.perf_counter()
            out = lm.loglikelihood(instances, disable_tqdm=True)
            dt = time.perf_counter() - t0
            lls = [float(ll) for ll, _ in out]
            rows["lm-eval HFLM"] = {"seconds": dt, "items_s": n_items / dt, "acc": accuracy(lls, owner, golds),
                                   "lls": lls}

    ref = np.asarray(rows["lmlab batched"]["lls"])
    print(f"task {task.name}: {n_items} items, {n_req} log-likelihood requests, batch size {args.batch_size}, "
          f"torch threads {torch.get_num_threads()}")
    print(f"{'scorer':<22}{'seconds':>9}{'items/s':>10}{'acc':>8}{'max |Δll| vs batched':>24}")
    for label, r in rows.items():
        diff = float(np.max(np.abs(np.asarray(r["lls"]) - ref)))
        r["diff"] = diff
        print(f"{label:<22}{r['seconds']:>9.2f}{r['items_s']:>10.1f}{r['acc']:>8.4f}{diff:>24.2e}")
    b, one = rows["lmlab batched"], rows["lmlab one at a time"]
    result = (f"RESULT task={task.name} items={n_items} requests={n_req} batch={args.batch_size} "
              f"lmlab_batched_items_s={b['items_s']:.1f} lmlab_single_items_s={one['items_s']:.1f} "
              f"batched_speedup={b['items_s'] / one['items_s']:.2f} acc_lmlab={b['acc']:.4f}")
    if "lm-eval HFLM" in rows:
        h = rows["lm-eval HFLM"]
        result += (f" lm_eval_hflm_items_s={h['items_s']:.1f} lmlab_vs_hflm={b['items_s'] / h['items_s']:.2f} "
                   f"acc_hflm={h['acc']:.4f} max_abs_ll_diff={h['diff']:.2e}")
    else:
        result += " lm_eval=not_installed"
    print(result)


if __name__ == "__main__":
    main()
