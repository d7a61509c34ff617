"""How fast is `lmlab data prepare` with BPE, next to calling Hugging Face `tokenizers` directly?

Builds tiny Shakespeare repeated to ~--mb MB in a temp dir, trains a BPE tokenizer (vocab --vocab) once on the
original file, then, each in its own fresh process (so peak memory is measured per side):
  * lmlab:     `lmlab.data.prepare(corpus, tok, out, split_blank_lines=True, dedup="none")`: two reads of the
               corpus, document split, train/val split, parallel tokenization, shards, manifest.
  * hf_direct: read each file, cut it into the same blank-line documents, `tokenizers.Tokenizer.encode_batch`,
               append ids + <eos> as uint16 with numpy. The floor any pipeline on this engine can reach.
Dedup is off on both sides because the corpus is the same text repeated (exact dedup would drop all but one copy).

    python benchmarks/bench_tokenize.py            # ~100 MB (minutes on 2 cores)
    python benchmarks/bench_tokenize.py --mb 20    # quick check

Last line: RESULT prepare_mb_s=... hf_direct_mb_s=... overhead_pct=... peak_rss_mb=... (peak_rss_mb: the lmlab
side, its worker processes included).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHAKESPEARE = REPO / ".." / "shared" / "data" / "tinyshakespeare_input.txt"
# Same definition of a document as lmlab's split_blank_lines: blocks separated by blank lines.
BLANK_LINES = re.compile(r"\n(?:[ \t\r\f\v]*\n)+")
COPIES_PER_FILE = 10  # ~11 MB files: many files, each several MB


def peak_rss_mb() -> float:
    """Peak resident memory of this process and of its (waited-for) children, in MB (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) * 1024 / 1e6


def run_lmlab(corpus: Path, tok_path: Path, out: Path, workers: int | None) -> dict:
    from lmlab.data import prepare
    from lmlab.tokenization import load_tokenizer

    tok = load_tokenizer(tok_path)
    t0 = time.perf_counter()
    m = prepare([corpus], tok, out, dedup="none", split_blank_lines=True, workers=workers, progress=False)
    seconds = time.perf_counter() - t0
    tokens = sum(s["tokens"] for s in m["splits"].values())
    return {"seconds": seconds, "tokens": tokens, "peak_rss_mb": peak_rss_mb()}


def run_hf_direct(corpus: Path, tok_path: Path, out: Path) -> dict:
    import numpy as np

    from lmlab.tokenization import load_tokenizer

    lm_tok = load_tokenizer(tok_path)
    hf, eos = lm_tok.hf_tokenizer, lm_tok.eos_id  # the very same Rust tokenizer object lmlab uses
    t0 = time.perf_counter()
    tokens = 0
    with open(out, "wb") as f:
        for path in sorted(corpus.glob("*.txt")):
            docs = [d.rstrip("\r\n") for d in BLANK_LINES.split(path.read_text(encoding="utf-8")) if d.strip()]
            flat: list[int] = []
            for enc in hf.encode_batch(docs, add_special_tokens=False):
                flat.extend(enc.ids)
                flat.append(eos)
            np.asarray(flat, dtype=np.uint16).tofile(f)
            tokens += len(flat)
    return {"seconds": time.perf_counter() - t0, "tokens": tokens, "peak_rss_mb": peak_rss_mb()}


def child(args: argparse.Namespace) -> None:
    corpus, tok, out = Path(args.corpus), Path(args.tok), Path(args.out)
    res = run_lmlab(corpus, tok, out, args.workers) if args.phase == "lmlab" else run_hf_direct(corpus, tok, out)
    print(json.dumps(res))


def in_fresh_process(phase: str, corpus: Path, tok: Path, out: Path, workers: int | None) -> dict:
    cmd = [sys.executable, __file__, "--phase", phase, "--corpus", str(corpus), "--tok", str(tok), "--out", str(out)]
    if workers:
        cmd += ["--workers", str(workers)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"{phase} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=100.0, help="corpus size in MB (default 100)")
    ap.add_argument("--vocab", type=int, default=4096, help="BPE vocabulary size (default 4096)")
    ap.add_argument("--workers", type=int, default=None, help="lmlab workers (default: all cores)")
    ap.add_argument("--phase", choices=("lmlab", "hf"), help=argparse.SUPPRESS)
    ap.add_argument("--corpus", help=argparse.SUPPRESS)
    ap.add_argument("--tok", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        return child(args)

    if not SHAKESPEARE.is_file():
        sys.exit(f"needs {SHAKESPEARE} (the project's shared data folder next to the repo)")
    from lmlab.tokenization import train_tokenizer

    text = SHAKESPEARE.read_text(encoding="utf-8")
    copies = max(1, round(args.mb * 1e6 / len(text.encode("utf-8"))))
    with tempfile.TemporaryDirectory(prefix="bench_tokenize_") as tmp:
        tmp = Path(tmp)
        corpus = tmp / "corpus"
        corpus.mkdir()
        for i in range(0, copies, COPIES_PER_FILE):
            (corpus / f"part{i // COPIES_PER_FILE:04d}.txt").write_text(text * min(COPIES_PER_FILE, copies - i),
                                                                         encoding="utf-8")
        mb = sum(p.stat().st_size for p in corpus.iterdir()) / 1e6
        t0 = time.perf_counter()
        tok = train_tokenizer("bpe", [text], vocab_size=args.vocab, progress=False)
        tok.save(tmp / "tok.json")
        print(f"corpus: tiny Shakespeare x{copies} = {mb:.1f} MB in {len(list(corpus.iterdir()))} files; "
              f"BPE vocab {tok.vocab_size} trained in {time.perf_counter() - t0:.1f} s; {os.cpu_count()} CPU cores")

        hf = in_fresh_process("hf", corpus, tmp / "tok.json", tmp / "hf.bin", None)
        ours = in_fresh_process("lmlab", corpus, tmp / "tok.json", tmp / "data", args.workers)
        same = "yes" if hf["tokens"] == ours["tokens"] else f"NO ({hf['tokens']} vs {ours['tokens']})"
        print(f"hf_direct: {hf['seconds']:6.1f} s  {mb / hf['seconds']:6.2f} MB/s  peak RSS {hf['peak_rss_mb']:.0f} MB")
        print(f"lmlab    : {ours['seconds']:6.1f} s  {mb / ours['seconds']:6.2f} MB/s  "
              f"peak RSS {ours['peak_rss_mb']:.0f} MB  (tokens {ours['tokens']}, same count as hf_direct: {same})")
    prep, direct = mb / ours["seconds"], mb / hf["seconds"]
    overhead = (ours["seconds"] / hf["seconds"] - 1) * 100
    print(f"ratio lmlab/hf_direct throughput: {prep / direct:.3f} (overhead goal: < 10%)")
    print(f"RESULT prepare_mb_s={prep:.2f} hf_direct_mb_s={direct:.2f} overhead_pct={overhead:.1f} "
          f"peak_rss_mb={ours['peak_rss_mb']:.0f} hf_peak_rss_mb={hf['peak_rss_mb']:.0f} corpus_mb={mb:.1f}")


if __name__ == "__main__":
    main()
