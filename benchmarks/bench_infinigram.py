"""Reference for the suffix index: lmlab's `SuffixIndex` beside the `infini-gram` engine on the same token arrays, in
the same run: build time, bytes per token, `count` agreement and `count` latency.

    python benchmarks/bench_infinigram.py --data /tmp/bench_attr/data-1000000 --work /tmp/bench_infinigram

`infini-gram` is benchmark-only (its licence is non-commercial), so it is not an lmlab dependency: install it by
hand (`pip install infini-gram`); without it only lmlab's side runs, and the script says so. Its HF tokenizers are
not used: the train split's documents are written in its on-disk format (`tokenized.0`: per document the u16
separator 0xFFFF then the document's tokens; `offset.0`: each document's byte offset as uint64), which makes its
indexer skip tokenising and go straight to its suffix-array build (the bundled `rust_indexing`, one CPU).

Queries: n-grams of 1-8 tokens cut from the train split (present) and the val split (often absent there), plus a
few that cannot occur (an id beyond the vocab, random 8-token strings). Both indexes must give the same count for
each; mismatches are printed. Indexes go under --work, never into the shard dir. Ends with one
`RESULT key=value ...` line.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench_attribution import percentiles, sample_ngrams

INFINIGRAM_MISSING = ("infini-gram is not installed: skipping its side of the comparison (benchmark-only, non-"
                      "commercial licence, so not an lmlab dependency; `pip install infini-gram` to include it)")


def write_infinigram_tokens(tokens: np.ndarray, eos_id: int, out: Path) -> None:
    """Write `tokens` (1-D uint16 ids, `eos_id` after each document) as infini-gram's tokenized.0 / offset.0."""
    from lmlab.data.documents import document_spans

    offsets = []
    position = 0
    with open(out / "tokenized.0", "wb") as f:
        for start, end in document_spans(tokens, eos_id):
            offsets.append(position)
            chunk = b"\xff\xff" + np.ascontiguousarray(tokens[start:end], dtype="<u2").tobytes()
            f.write(chunk)
            position += len(chunk)
    np.asarray(offsets, dtype="<u8").tofile(out / "offset.0")


def build_infinigram(tokens: np.ndarray, eos_id: int, out: Path) -> dict:
    """Build infini-gram's index of `tokens` in `out` (replaced); wall seconds (conversion + its indexer, Python
    start-up included), its own suffix-array seconds, and bytes on disk."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    start = time.perf_counter()
    write_infinigram_tokens(tokens, eos_id, out)
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]  # it raises the soft limit to --ulimit; stay within ours
    proc = subprocess.run([sys.executable, "-m", "infini_gram.indexing", "--data_dir", str(out), "--save_dir",
                           str(out), "--token_dtype", "u16", "--cpus", "1", "--mem", "4", "--shards", "1",
                           "--ulimit", str(nofile)], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    sa = re.search(r"Step 2 \(build_sa\): Done\. Took ([0-9.]+) seconds", proc.stdout)
    disk = sum(p.stat().st_size for p in out.iterdir())
    return {"build_s": wall, "sa_s": float(sa.group(1)) if sa else float("nan"), "bytes_on_disk": disk}


def absent_queries(vocab_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Queries that should count 0: ids beyond the vocab, alone and after a real id, and random 8-token strings."""
    beyond = [np.array([vocab_size + 1]), np.array([10, vocab_size + 2]), np.array([vocab_size + 3] * 3)]
    return beyond + [rng.integers(10, vocab_size, size=8) for _ in range(3)]


def time_counts(count, queries: list) -> list[float]:
    """Seconds of `count(q)` for each query."""
    seconds = []
    for q in queries:
        t = time.perf_counter()
        count(q)
        seconds.append(time.perf_counter() - t)
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="a prepared shard dir (its train split is indexed)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_infinigram"), help="where both indexes go")
    ap.add_argument("--queries", type=int, default=300, help="n-grams cut from train (a quarter as many from val)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from lmlab.attribution import SuffixIndex, build_index
    from lmlab.data import load_manifest, load_split

    rng = np.random.default_rng(args.seed)
    work = args.work / args.data.name
    lm_dir = work / "lmlab-index"
    shutil.rmtree(lm_dir, ignore_errors=True)
    meta = build_index(args.data, index_dir=lm_dir)
    ix = SuffixIndex.open(args.data, lm_dir)
    tokens = np.asarray(ix.tokens)
    n_tokens = meta["n_tokens"]
    vocab_size = int(load_manifest(args.data)["tokenizer"]["vocab_size"])
    val = np.asarray(load_split(args.data, "val"))
    queries = (sample_ngrams(tokens, ix.eos_id, rng, args.queries)
               + sample_ngrams(val, ix.eos_id, rng, args.queries // 4) + absent_queries(vocab_size, rng))
    queries = [np.asarray(q, dtype=np.int64) for q in queries]
    lm_p50, lm_p99 = percentiles(time_counts(ix.count, queries))
    print(f"lmlab       {n_tokens:,} tokens: build {meta['build_seconds']:.2f} s, {meta['bytes_per_token']:.2f} B/token"
          f" | count p50 {lm_p50:.3f} p99 {lm_p99:.3f} ms over {len(queries)} queries", flush=True)
    result = {"tokens": n_tokens, "lmlab_build_s": f"{meta['build_seconds']:.2f}",
              "lmlab_bytes_per_token": meta["bytes_per_token"], "lmlab_count_p50_ms": f"{lm_p50:.4f}",
              "lmlab_count_p99_ms": f"{lm_p99:.4f}"}
    if importlib.util.find_spec("infini_gram") is None:
        print(INFINIGRAM_MISSING, flush=True)
    else:
        from infini_gram.engine import InfiniGramEngine

        ig_dir = work / "infinigram-index"
        built = build_infinigram(tokens, ix.eos_id, ig_dir)
        engine = InfiniGramEngine(index_dir=str(ig_dir), eos_token_id=ix.eos_id, token_dtype="u16")
        id_lists = [[int(t) for t in q] for q in queries]  # its API takes lists of Python ints
        agree = 0
        for q, ids in zip(queries, id_lists):
            ours, theirs = ix.count(q), engine.count(input_ids=ids)
            if "error" not in theirs and ours == theirs["count"] and not theirs["approx"]:
                agree += 1
            else:
                print(f"MISMATCH {ids}: lmlab {ours}, infini-gram {theirs}", flush=True)
        ig_p50, ig_p99 = percentiles(time_counts(lambda ids: engine.count(input_ids=ids), id_lists))
        ig_bpt = built["bytes_on_disk"] / n_tokens
        print(f"infini-gram {n_tokens:,} tokens: build {built['build_s']:.2f} s (its suffix array {built['sa_s']:.2f}"
              f" s), {ig_bpt:.2f} B/token | count p50 {ig_p50:.3f} p99 {ig_p99:.3f} ms | counts agree "
              f"{agree}/{len(queries)}", flush=True)
        result.update({"infinigram_build_s": f"{built['build_s']:.2f}", "infinigram_sa_s": f"{built['sa_s']:.2f}",
                       "infinigram_bytes_per_token": f"{ig_bpt:.3f}", "infinigram_count_p50_ms": f"{ig_p50:.4f}",
                       "infinigram_count_p99_ms": f"{ig_p99:.4f}", "counts_agree": f"{agree}/{len(queries)}"})
    print("RESULT " + " ".join(f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
