"""KV cache storage fp32 | bf16 | int8 (lmlab.generation.set_kv_cache_storage): decode speed and cache bytes for
long prompts and large batches, and quality on a trained run.

Speed: a GPT-2-124M-shaped GPT (lmlab's default GPTConfig, random weights) decodes --new-tokens greedy steps after a
--prompt-tokens prompt, for each batch size in --batches and each storage in the same run (storages interleaved, so
a busy CPU slows them alike; compare the ratios). The prompt's keys/values are computed once (one row) and written
into every row of each storage's cache, so the prefill, the same for every storage, is not timed. A step runs as in
`generate` (eval mode, oneDNN Linears for long decodes): the weights are read once per step for the whole batch,
the cache once per row — which is why the cache matters for long prompts and large batches.

Quality (with --run): on a trained run, greedy continuations of --prompts validation prompts (agreement with the
fp32 cache, as bench_weight_quality.py counts it) and accuracy on --tasks at --shots shots (--limit documents).

    python benchmarks/bench_kv_cache.py [--batches 8,32] [--run /tmp/rec2/runs/arithmetic --world /tmp/rec2/runs/world]

The last line is `RESULT <storage>_b<B>_tok_s=... <storage>_b<B>_cache_mb=... [<storage>_agree=... <storage>_<task>=...]`.
"""

from __future__ import annotations

import argparse
import time

import torch

from bench_weight_quality import agreement, validation_prompts


def prefilled(model, prompt_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys and values (n_layer, 1, H, prompt_tokens, d) of one random prompt, in fp32."""
    from lmlab.models.gpt import KVCache

    cache = KVCache.for_model(model, 1, prompt_tokens)
    idx = torch.randint(0, model.config.vocab_size, (1, prompt_tokens))
    model(idx, kv_cache=cache, last_only=True)
    return cache.k, cache.v


def decode_seconds(model, storage: str, k: torch.Tensor, v: torch.Tensor, batch: int, new_tokens: int):
    """(seconds for `new_tokens` greedy steps of `batch` rows after the prompt k, v; the cache's bytes)."""
    from lmlab.generation.cpu_kernels import decode_rows, onednn_linears
    from lmlab.models.gpt import KVCache

    n = k.shape[3]
    cache = KVCache.for_model(model, batch, n + new_tokens, storage=storage)
    every = slice(None)
    cache.write((every, every, every, slice(None, n)), k.expand(-1, batch, -1, -1, -1),
                v.expand(-1, batch, -1, -1, -1))
    cache.advance(n)
    token = torch.zeros(batch, 1, dtype=torch.long)
    with onednn_linears(model, rows=decode_rows(batch, new_tokens)):
        model(token, kv_cache=cache)  # warm-up step (kernel choice, oneDNN weight copies), not timed
        t = time.perf_counter()
        for _ in range(new_tokens - 1):
            logits, _ = model(token, kv_cache=cache)
            token = logits[:, -1].argmax(-1, keepdim=True)
        seconds = time.perf_counter() - t
    return seconds * new_tokens / (new_tokens - 1), cache.nbytes()


def speed(args, fields: list[str]) -> None:
    from lmlab.generation import KV_STORAGES
    from lmlab.generation.weight_storage import linear_weight_bytes
    from lmlab.models import GPT, GPTConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig()).eval()
    c = model.config
    with torch.inference_mode():
        t = time.perf_counter()
        k, v = prefilled(model, args.prompt_tokens)
        print(f"model: GPT-2 124M shape, {model.num_params(non_embedding=False) / 1e6:.1f}M params, random weights; "
              f"prompt {args.prompt_tokens} tokens (prefill {time.perf_counter() - t:.1f} s, not timed), "
              f"{args.new_tokens} new tokens; torch threads {torch.get_num_threads()}", flush=True)
        weight_mb = linear_weight_bytes(model, "fp32") / 1e6
        positions = args.prompt_tokens + args.new_tokens / 2  # mean positions read per step
        for batch in args.batches:
            results = {s: [] for s in KV_STORAGES}
            for _ in range(args.rounds):
                for storage in KV_STORAGES:
                    results[storage].append(decode_seconds(model, storage, k, v, batch, args.new_tokens))
            base = min(s for s, _ in results["fp32"])
            for storage in KV_STORAGES:
                seconds, nbytes = min(s for s, _ in results[storage]), results[storage][0][1]
                per_value = nbytes / (2 * c.n_layer * batch * c.n_embd * (args.prompt_tokens + args.new_tokens))
                read_mb = 2 * c.n_layer * c.n_embd * per_value * positions * batch / 1e6
                tok_s = batch * args.new_tokens / seconds
                print(f"batch {batch:3d} {storage}: {tok_s:7.1f} tok/s ({base / seconds:.2f}x fp32) | cache "
                      f"{nbytes / 1e6:7.1f} MB | a step reads ~{read_mb:6.0f} MB of cache vs {weight_mb:.0f} MB of "
                      f"fp32 weights ({read_mb / batch:.1f} vs {weight_mb / batch:.1f} MB per token)", flush=True)
                fields += [f"{storage}_b{batch}_tok_s={tok_s:.1f}", f"{storage}_b{batch}_cache_mb={nbytes / 1e6:.1f}"]


def quality(args, fields: list[str]) -> None:
    import numpy as np

    from lmlab.checkpoint import load_run
    from lmlab.data import load_split
    from lmlab.evaluation import evaluate
    from lmlab.evaluation.builtin import resolve_tasks
    from lmlab.generation import KV_STORAGES, generate, set_kv_cache_storage

    run = load_run(args.run)
    model, tok = run.model, run.tokenizer
    val = np.asarray(load_split(run.training_config["data_dir"], "val", tokenizer=tok))
    prompts = validation_prompts(val, tok.eos_id, args.prompts, args.prompt_tokens_quality)
    new_tokens = model.config.block_size - args.prompt_tokens_quality
    tasks = resolve_tasks(args.tasks, world=args.world)
    print(f"run {args.run}: {model.num_params(non_embedding=False) / 1e6:.2f}M params; {len(prompts)} prompts of "
          f"{args.prompt_tokens_quality} tokens + {new_tokens} greedy tokens; {args.tasks} at {args.shots} shots, "
          f"first {args.limit} documents", flush=True)
    reference = None
    for storage in KV_STORAGES:
        t = time.perf_counter()
        set_kv_cache_storage(model, storage)
        greedy = [c.tokens for c in generate(model, tok, prompts, max_new_tokens=new_tokens, temperature=0)]
        reference = reference or greedy
        same, identical, prefix = agreement(greedy, reference)
        results, _ = evaluate(model, tok, tasks, shots=[args.shots], limit=args.limit, seed=1234, progress=False)
        scores = {r["task"]: 100 * next(iter(r["metrics"].values())) for r in results}
        print(f"{storage}: greedy {same:.1%} of fp32's tokens, {identical}/{len(greedy)} rows identical, "
              f"{prefix:.1f} tokens before the first difference | "
              + " | ".join(f"{k} {v:.1f}%" for k, v in scores.items()) + f" ({time.perf_counter() - t:.0f} s)",
              flush=True)
        fields += [f"{storage}_agree={same:.3f}", f"{storage}_identical={identical}"]
        fields += [f"{storage}_{k}={v:.1f}" for k, v in scores.items()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="8,32", help="batch sizes (default 8,32)")
    ap.add_argument("--prompt-tokens", type=int, default=768)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=1, help="timed decodes per storage and batch (best kept)")
    ap.add_argument("--run", default=None, help="trained run dir for the quality figures (default: none)")
    ap.add_argument("--world", default="runs/world")
    ap.add_argument("--tasks", default="2D+")
    ap.add_argument("--shots", type=int, default=5)
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--prompts", type=int, default=32, help="validation prompts continued greedily (default 32)")
    ap.add_argument("--prompt-tokens-quality", type=int, default=8)
    args = ap.parse_args()
    args.batches = [int(b) for b in args.batches.split(",")]
    fields: list[str] = []
    if args.batches != [0]:
        speed(args, fields)
    if args.run:
        quality(args, fields)
    print("RESULT " + " ".join(fields))


if __name__ == "__main__":
    main()
