"""Wall time of one ROME edit on the tiny model: key statistics computed (cold) vs read from the cache, beside
FT-L in the same run (the issue's bar: one ROME edit on `tiny` under 2 s on this CPU, statistics cached).

    .venv/bin/python benchmarks/bench_edit.py [--run runs/tiny] [--requests runs/world/edits.jsonl] [--n 5]

Each timed call is `lmlab.editing.edit(..., measure=False)` on a copy of the model with the default layer
(causal tracing, chosen once before timing). "cold" = a fresh statistics cache and fresh context prefixes;
"cached" = statistics read from disk by a new SecondMoments (as a second `lmlab edit` would), prefixes cached.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from lmlab.checkpoint import load_run
from lmlab.editing import SecondMoments, default_layers, edit, load_requests
from lmlab.editing.prompts import _PREFIX_CACHE


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="runs/tiny")
    ap.add_argument("--requests", default="runs/world/edits.jsonl")
    ap.add_argument("--n", type=int, default=5, help="edits timed per setting (median reported)")
    ap.add_argument("--stats-tokens", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default: torch's choice; on a shared 2-core machine 1 avoids contention)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not (Path(args.run) / "model.safetensors").is_file():
        print(f"no trained model at {args.run}: run `lmlab train` first", file=sys.stderr)
        return 1
    run = load_run(args.run)
    data = (run.training_config or {}).get("data_dir")
    reqs = [r for r in load_requests(args.requests) if r.kind != "outdated_to_current"][: args.n + 1]
    layer = default_layers(run.model, run.tokenizer, reqs, "rome")
    print(f"model {args.run}: {run.model.num_params() / 1e6:.2f}M params, {run.model.config.n_layer} layers; "
          f"ROME layer {layer}; torch threads {torch.get_num_threads()}")

    # Warm-up, untimed: torch's first backward pass initialises kernels (seconds on a busy machine), which is not
    # the cost of an edit.
    edit(run.model, run.tokenizer, reqs[0], "ft", layers=layer, measure=False)
    with tempfile.TemporaryDirectory() as cache:
        _PREFIX_CACHE.clear()
        t = time.perf_counter()
        stats = SecondMoments(run.model, run.tokenizer, data, n_tokens=args.stats_tokens, cache_dir=cache)
        edit(run.model, run.tokenizer, reqs[0], "rome", layers=layer, stats=stats, measure=False)
        cold = time.perf_counter() - t
        cached = []
        for r in reqs[1:]:
            t = time.perf_counter()
            stats = SecondMoments(run.model, run.tokenizer, data, n_tokens=args.stats_tokens, cache_dir=cache)
            edit(run.model, run.tokenizer, r, "rome", layers=layer, stats=stats, measure=False)
            cached.append(time.perf_counter() - t)
            assert stats.cache_hits == 1 and stats.computed == 0
    ft = []
    for r in reqs[1:]:
        t = time.perf_counter()
        edit(run.model, run.tokenizer, r, "ft", layers=layer, measure=False)
        ft.append(time.perf_counter() - t)
    rome_s, ft_s = statistics.median(cached), statistics.median(ft)
    print(f"ROME, statistics computed ({args.stats_tokens} tokens) + prefixes generated: {cold:.2f} s")
    print(f"ROME, statistics cached: median {rome_s:.2f} s over {len(cached)} edits "
          f"(min {min(cached):.2f}, max {max(cached):.2f})")
    print(f"FT-L: median {ft_s:.2f} s over {len(ft)} edits")
    print(f"RESULT rome_cold_s={cold:.3f} rome_cached_s={rome_s:.3f} ft_s={ft_s:.3f} "
          f"rome_over_ft={rome_s / ft_s:.2f} cold_over_cached={cold / rome_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
