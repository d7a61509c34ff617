"""Attribution speed: suffix-index build (time, tokens/s, bytes/token, peak memory), `count` and span-trace latency,
beside a brute-force numpy scan as the peer; kNN datastore build and query latency, exact (flat) vs approximate
(IVF), and the kNN-LM perplexity each gives.

    python benchmarks/bench_attribution.py --work /tmp/bench_attr --sizes 1M,10M --knn-keys 1M

Data: `lmlab world --size` scaled so the train split holds about each size's tokens, prepared with one BPE
tokenizer (vocab 1024, trained on the first size); cached under --work. `--data SIZE=DIR` uses a prepared shard
dir instead. The kNN part trains a small GPT on the smallest size's shards (cached) and stores the first
--knn-keys tokens of its train split. Ends with one `RESULT key=value ...` line.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BYTES_PER_TOKEN = 2.8  # world text bytes per BPE-1024 token, measured on a 20 MB world (train+val)


def parse_count(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 10**3, "M": 10**6, "G": 10**9}.get(text[-1], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def lmlab(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "lmlab", *args], check=True, stdout=subprocess.DEVNULL)


def data_dir_for(work: Path, tokens: int, tokenizer: Path | None) -> Path:
    out = work / f"data-{tokens}"
    if not (out / "manifest.json").is_file():
        world = work / f"world-{tokens}"
        lmlab("world", "--out", str(world), "--seed", "0", "--size", str(int(tokens * BYTES_PER_TOKEN)))
        tok = ["--tokenizer", str(tokenizer)] if tokenizer else ["--tokenizer", "bpe", "--vocab-size", "1024"]
        lmlab("data", "prepare", str(world / "corpus"), *tok, "--out", str(out), "--split-blank-lines")
    return out


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.asarray(seconds) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def sample_ngrams(tokens: np.ndarray, eos_id: int, rng: np.random.Generator, count: int,
                  max_len: int = 8) -> list[np.ndarray]:
    """`count` n-grams of 1..max_len tokens cut at random places of `tokens` (1-D ids), none holding `eos_id`
    (queries never span two documents)."""
    queries = []
    while len(queries) < count:
        n = int(rng.integers(1, max_len + 1))
        s = int(rng.integers(0, len(tokens) - n))
        q = tokens[s:s + n]
        if eos_id not in q:
            queries.append(q)
    return queries


def bench_index(data: Path, rng: np.random.Generator) -> dict:
    from lmlab.attribution import SuffixIndex, trace_ids
    from lmlab.data import load_split

    start = time.perf_counter()
    lmlab("attribute", "index", str(data))
    wall = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # max over the builds so far
    ix = SuffixIndex.open(data)
    meta = ix.meta
    val = np.asarray(load_split(data, "val"), dtype=np.int64)
    train = np.asarray(ix.tokens)
    queries = sample_ngrams(val, ix.eos_id, rng, 300)
    count_s = []
    for q in queries:
        t = time.perf_counter()
        ix.count(q)
        count_s.append(time.perf_counter() - t)
    scan_s = []
    for q in queries[:10]:  # the peer: one vectorised pass over the whole stream per query
        t = time.perf_counter()
        windows = np.lib.stride_tricks.sliding_window_view(train, len(q))
        int(np.count_nonzero((windows == q).all(axis=1)))
        scan_s.append(time.perf_counter() - t)
    trace_s = []
    for _ in range(10):
        s = int(rng.integers(0, len(val) - 200))
        t = time.perf_counter()
        trace_ids(ix, val[s:s + 200])
        trace_s.append(time.perf_counter() - t)
    c50, c99 = percentiles(count_s)
    t50, t99 = percentiles(trace_s)
    s50, _ = percentiles(scan_s)
    return {"tokens": meta["n_tokens"], "build_s": meta["build_seconds"], "wall_s": round(wall, 1),
            "tokens_per_s": meta["n_tokens"] / meta["build_seconds"], "bytes_per_token": meta["bytes_per_token"],
            "peak_mib": round(peak_mib), "count_p50_ms": c50, "count_p99_ms": c99, "scan_p50_ms": s50,
            "trace200_p50_ms": t50, "trace200_p99_ms": t99}


def train_small_gpt(work: Path, data: Path) -> Path:
    run = work / "run-gpt"
    if not (run / "model.safetensors").is_file():
        lmlab("train", "--data", str(data), "--out", str(run), "--overwrite", "--n_layer", "2", "--n_head", "2",
              "--n_embd", "64", "--block_size", "64", "--max_iters", "600", "--eval_interval", "600",
              "--batch_size", "32", "--lr", "3e-3", "--device", "cpu", "--dtype", "float32")
    return run


def bench_knn(work: Path, run: Path, data: Path, keys: int, eval_tokens: int) -> list[dict]:
    from lmlab.attribution import Datastore, knn, memory_perplexity
    from lmlab.attribution.datastore import keys_and_logprobs
    from lmlab.checkpoint import load_run
    from lmlab.data import load_split

    rows = []
    model = load_run(run).model
    val = np.asarray(load_split(data, "val")[:2000], dtype=np.int64)
    probe = next(keys_and_logprobs(model, val, -1, batch_size=8))[0][:256]
    for kind in ("flat", "ivf"):
        out = work / f"ds-{kind}-{keys}"
        meta = knn(run, out, data_dir=data, kind=kind, max_tokens=keys + 1, batch_size=32)
        store = Datastore.open(out)
        lat = []
        for row in probe[:100]:
            t = time.perf_counter()
            store.search(row[None], 64)
            lat.append(time.perf_counter() - t)
        p50, p99 = percentiles(lat)
        r = memory_perplexity(run, data=data, knn=out, lam=0.25, k=64, max_tokens=eval_tokens, batch_size=32)
        rows.append({"kind": kind, "keys": meta["n_keys"], "build_s": meta["build_seconds"], "query_p50_ms": p50,
                     "query_p99_ms": p99, "ppl_lm": r["lm"]["ppl"], "ppl_knn": r["knn"]["ppl"]})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_attr"))
    ap.add_argument("--sizes", default="1M,10M", help="train tokens per index size")
    ap.add_argument("--data", action="append", default=[], metavar="SIZE=DIR", help="use a prepared shard dir")
    ap.add_argument("--knn-keys", default="1M", help="comma-separated datastore sizes ('' to skip)")
    ap.add_argument("--knn-eval-tokens", type=int, default=5000)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    given = {parse_count(k): Path(v) for k, v in (d.split("=", 1) for d in args.data)}
    rng = np.random.default_rng(0)
    sizes = [parse_count(s) for s in args.sizes.split(",") if s]
    result = {}
    first_data = None
    for size in sizes:
        tokenizer = first_data / "tokenizer.json" if first_data else None
        data = given.get(size) or data_dir_for(args.work, size, tokenizer)
        first_data = first_data or data
        r = bench_index(data, rng)
        print(f"index {r['tokens']:>12,} tokens: build {r['build_s']:7.2f} s ({r['tokens_per_s']:,.0f} tok/s), "
              f"{r['bytes_per_token']:.2f} B/token, peak {r['peak_mib']} MiB | count p50 {r['count_p50_ms']:.3f} "
              f"p99 {r['count_p99_ms']:.3f} ms (numpy scan p50 {r['scan_p50_ms']:.1f} ms) | trace 200 tokens p50 "
              f"{r['trace200_p50_ms']:.0f} p99 {r['trace200_p99_ms']:.0f} ms", flush=True)
        tag = f"{size // 10**6}M" if size >= 10**6 else str(size)
        result.update({f"build_s_{tag}": f"{r['build_s']:.2f}", f"bytes_per_token_{tag}": r["bytes_per_token"],
                       f"count_p99_ms_{tag}": f"{r['count_p99_ms']:.3f}",
                       f"trace200_p99_ms_{tag}": f"{r['trace200_p99_ms']:.0f}"})
    knn_sizes = [parse_count(s) for s in args.knn_keys.split(",") if s]
    if knn_sizes and first_data:
        biggest = given.get(sizes[-1]) or args.work / f"data-{sizes[-1]}"
        run = train_small_gpt(args.work, first_data)
        for keys in knn_sizes:
            for row in bench_knn(args.work, run, biggest, keys, args.knn_eval_tokens):
                print(f"knn {row['kind']:>4} {row['keys']:>10,} keys: build {row['build_s']:6.1f} s | query "
                      f"p50 {row['query_p50_ms']:.2f} p99 {row['query_p99_ms']:.2f} ms | ppl LM {row['ppl_lm']:.3f} "
                      f"→ kNN-LM {row['ppl_knn']:.3f}", flush=True)
                result[f"knn_{row['kind']}_{keys // 10**6}M_ppl"] = f"{row['ppl_knn']:.3f}"
                result["ppl_lm"] = f"{row['ppl_lm']:.3f}"
    print("RESULT " + " ".join(f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
