"""Experiment: ∞-gram and kNN-LM interpolation on real English (TinyStories, WikiText-2), beside the world's.

Write-up: docs/attribution.md, "On real English".

For each corpus: BPE shards (4,096 ids, 10% of the documents held out as val), a tiny GPT trained on the train
split (the main job's shape and settings, fewer steps), the suffix-array index and a flat kNN datastore of the
train split, then `lmlab eval ppl --knn --infgram` on the val split: the model's perplexity alone and mixed with
each memory at several λ. The texts are the files in ../shared/data (never copied into the project).

    .venv/bin/python scripts/experiments/memory_on_english.py --work /tmp/exp-memory-english

Re-running skips what is done. Writes WORK/summary.json; prints the table of the write-up.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import LMLAB, REPO, sh  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
TRAIN = ["--preset", "tiny", "--batch_size", "16", "--lr", "1e-3", "--min_lr", "1e-4", "--warmup_iters", "100",
         "--weight_decay", "0.1", "--beta2", "0.99", "--eval_iters", "20", "--dtype", "float32"]
LAMBDAS = (0.05, 0.1, 0.25, 0.5, 0.75)


def tinystories_documents(work: Path) -> Path:
    """The TinyStories sample as JSONL, one story per document (the file separates them by <|endoftext|>)."""
    out = work / "tinystories.jsonl"
    if not out.is_file():
        stories = (SHARED / "tinystories_sample_2MB.txt").read_text(encoding="utf-8").split("<|endoftext|>")
        # the file is a 2 MB cut: its last story is cut mid-sentence, so it is left out
        out.write_text("".join(json.dumps({"text": s.strip()}) + "\n" for s in stories[:-1] if s.strip()))
    return out


def wikitext_documents(work: Path) -> Path:
    """WikiText-2's validation file as JSONL, one article per document (articles start with a ' = Title = ' line,
    sections with ' = = ... = = ')."""
    out = work / "wikitext2.jsonl"
    if not out.is_file():
        articles: list[list[str]] = []
        for line in (SHARED / "wikitext2_valid.txt").read_text(encoding="utf-8").splitlines():
            stripped = line.strip()
            if stripped.startswith("= ") and not stripped.startswith("= ="):
                articles.append([])
            if articles and stripped:
                articles[-1].append(stripped)
        out.write_text("".join(json.dumps({"text": "\n".join(a)}) + "\n" for a in articles))
    return out


CORPORA = {"tinystories": (tinystories_documents, 1500), "wikitext2": (wikitext_documents, 600)}


def run_corpus(work: Path, name: str, log: list[str], max_tokens: int) -> dict:
    make_documents, steps = CORPORA[name]
    docs, data, run, store = make_documents(work), work / f"data-{name}", work / f"run-{name}", work / f"knn-{name}"
    if not (data / "manifest.json").is_file():
        sh(LMLAB + ["data", "prepare", str(docs), "--tokenizer", "bpe", "--vocab-size", "4096", "--out", str(data),
                    "--dedup", "none", "--no-progress"], log)
    if not (run / "model.safetensors").is_file():
        sh(LMLAB + ["train", "--data", str(data), "--out", str(run), "--overwrite", "--no-progress", *TRAIN,
                    "--max_iters", str(steps), "--eval_interval", str(steps)], log)
    if not (data / "attribution-index" / "index.json").is_file():
        sh(LMLAB + ["attribute", "index", str(data)], log)
    if not (store / "datastore.json").is_file():
        sh(LMLAB + ["attribute", "knn", str(run), "--out", str(store)], log)
    out = sh(LMLAB + ["eval", "ppl", str(run), "--knn", str(store), "--infgram", str(data), "--lambda", "0.25",
                      "--max-tokens", str(max_tokens), "--json"], log, capture=True)
    result = json.loads(out)
    manifest = json.loads((data / "manifest.json").read_text())
    result["train_tokens"] = manifest["splits"]["train"]["tokens"]
    result["steps"] = steps
    return result


def table(summary: dict) -> str:
    rows = ["| corpus | train tokens (= keys) | val tokens scored | LM ppl | "
            + " | ".join(f"kNN-LM λ={lam}" for lam in LAMBDAS) + " | "
            + " | ".join(f"∞-gram+LM λ={lam}" for lam in LAMBDAS) + " | ∞-gram mean suffix (tokens) |",
            "|---" * (5 + 2 * len(LAMBDAS)) + "|"]
    for name, r in summary.items():
        # the sweeps come from `lmlab eval ppl --json`, whose keys are the λ values as JSON strings
        knn = [r["knn"]["sweep"][str(float(lam))] for lam in LAMBDAS]
        inf = [r["infgram"]["sweep"][str(float(lam))] for lam in LAMBDAS]
        lm = r["lm"]["ppl"]
        rows.append(f"| {name} | {r['train_tokens']:,} | {r['n_tokens']:,} | {lm:.2f} | "
                    + " | ".join(f"{v:.2f} ({100 * (v / lm - 1):+.1f}%)" for v in knn) + " | "
                    + " | ".join(f"{v:.2f} ({100 * (v / lm - 1):+.1f}%)" for v in inf) + " | "
                    + f"{r['infgram']['mean_suffix_len']:.1f} |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--corpora", default="tinystories,wikitext2")
    ap.add_argument("--max-tokens", type=int, default=20000, help="val tokens scored per corpus")
    args = ap.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"{SHARED} is absent: this experiment reads TinyStories and WikiText-2 from ../shared/data")
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    log: list[str] = []
    summary = {name: run_corpus(work, name, log, args.max_tokens) for name in args.corpora.split(",")}
    (work / "summary.json").write_text(json.dumps({"results": summary, "commands": log}, indent=2))
    print(table(summary))


if __name__ == "__main__":
    main()
