"""Word embeddings on the synthetic world: our cooc (centred counts + SVD), PPMI + SVD and word2vec (skip-gram,
negative sampling; its own SGD, the default, and the training loop's AdamW, `--epochs 0`) against gensim's Word2Vec
trained on exactly the same word sequences, with the same vector size, window, negatives, subsampling threshold and
number of epochs.

    .venv/bin/python benchmarks/bench_embeddings.py [--size 2MB] [--dim 100] [--window 5] [--epochs 5] [--seeds 1337]

Corpus: `lmlab world --size SIZE` (seed 0), its knowledge text (corpus/facts.txt, temporal.txt, grammar.txt), one
document per blank-line block, word tokenizer, 10% of documents held out. Everything is trained on the train split.
The word2vec columns are means over `--seeds` (the analogy scores of one seed vary by ±0.1: they are shares of
72 and 72 questions). Reports training wall time (`train_run` from shards to saved run dir, for ours) and the world-relation scores
(lmlab.evaluation.embeddings) side by side, and our word2vec's time as a ratio of gensim's. gensim is optional (`pip install -c constraints.txt gensim`); without it
the gensim column says "absent" and the ratio is not reported. Last line: RESULT key=value ...
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lmlab.data import load_split, load_tokenizer_of, prepare
from lmlab.evaluation.embeddings import evaluate_word_vectors, evaluate_world_embeddings
from lmlab.models.embeddings import WordVectors, compact_words, word_mask_of
from lmlab.training.run import train_run
from lmlab.world import generate_world

SCORES = ("kind_clustering", "city_city_cos", "city_person_cos", "nn_kind_purity@1", "nn_kind_purity@5",
          "capital_analogy_acc", "language_analogy_acc")


def train_sentences(data_dir: Path) -> tuple[list[list[str]], int]:
    """The train split as gensim sentences: one list of word strings per document, exactly the words our models
    see (non-words dropped, documents split at <eos>). Returns (sentences, number of words)."""
    tok = load_tokenizer_of(data_dir)
    words, doc = compact_words(load_split(data_dir, "train", tok), word_mask_of(tok), tok.eos_id)
    strings = np.array([tok.id_to_token(i) for i in range(tok.vocab_size)], dtype=object)
    cuts = np.flatnonzero(np.diff(doc)) + 1
    return [list(strings[s]) for s in np.split(words, cuts) if len(s)], len(words)


def run_gensim(sentences, n_words: int, args, seed: int) -> tuple[WordVectors | None, float | None, str]:
    try:
        from gensim.models import Word2Vec as GensimWord2Vec
        import gensim
    except ImportError:
        return None, None, "absent (pip install -c constraints.txt gensim)"
    t0 = time.perf_counter()
    model = GensimWord2Vec(sentences, vector_size=args.dim, window=args.window, negative=args.negatives,
                           sample=args.subsample, sg=1, min_count=1, epochs=args.epochs, workers=args.threads,
                           seed=seed)
    seconds = time.perf_counter() - t0
    kv = model.wv
    return WordVectors(kv.vectors, list(kv.index_to_key), np.ones(len(kv.index_to_key), dtype=bool)), seconds, \
        f"gensim {gensim.__version__}"


def _mean(per_seed: list[tuple[float, dict]]) -> tuple[float, dict]:
    """(mean seconds, {score: mean}) over seeds' (seconds, scores)."""
    return (float(np.mean([t for t, _ in per_seed])),
            {k: float(np.mean([r[k] for _, r in per_seed])) for k in SCORES})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="2MB", help="world size (default 2MB)")
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--window", type=int, default=5)
    ap.add_argument("--negatives", type=int, default=5)
    ap.add_argument("--subsample", type=float, default=1e-4)
    ap.add_argument("--epochs", type=int, default=5, help="passes over the train words (word2vec, both)")
    ap.add_argument("--batch-size", type=int, default=64, help="our word2vec with AdamW: rows of 128 tokens per step")
    ap.add_argument("--lr", type=float, default=0.02, help="our word2vec with AdamW: peak learning rate")
    # One thread each by default: on a shared 2-core machine two torch threads ran ~10× slower (oversubscription).
    ap.add_argument("--threads", type=int, default=1, help="torch threads and gensim workers (default 1)")
    ap.add_argument("--seeds", default="1337", help="comma-separated seeds of the word2vec runs (means reported)")
    args = ap.parse_args()
    seeds = [int(x) for x in args.seeds.split(",")]
    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="bench_embeddings_"))
    world = tmp / "world"
    generate_world(world, seed=0, size=args.size)
    files = [world / "corpus" / f for f in ("facts.txt", "temporal.txt", "grammar.txt")]
    prepare(files, "word", tmp / "data", split_blank_lines=True, dedup="none", progress=False)
    tok = load_tokenizer_of(tmp / "data")
    n_tokens = len(load_split(tmp / "data", "train", tok))
    sentences, n_words = train_sentences(tmp / "data")
    print(f"world {args.size}: {n_tokens} train tokens, {n_words} words in {len(sentences)} documents, "
          f"vocabulary {tok.vocab_size}; dim {args.dim}, window {args.window}, {args.epochs} epochs, "
          f"{args.threads} threads; device cpu")

    results: dict[str, dict] = {}
    seconds: dict[str, float] = {}
    common = {"dim": args.dim, "window": args.window, "device": "cpu"}
    for name in ("cooc", "ppmi"):
        t0 = time.perf_counter()
        train_run(tmp / name, data_dir=tmp / "data", model_type=name, overrides={**common, "eval_iters": 0},
                  progress=False)
        seconds[name] = time.perf_counter() - t0
        results[name] = evaluate_world_embeddings(tmp / name, world)
    w2v = {**common, "negatives": args.negatives, "subsample": args.subsample, "eval_iters": 0}
    block = 128
    steps = max(1, round(args.epochs * n_tokens / (args.batch_size * block)))
    runs = {
        # word2vec, its own SGD (the default): `epochs` passes, alpha 0.025 → 1e-4 as gensim.
        "word2vec": {**w2v, "epochs": args.epochs},
        # word2vec through the training loop (--epochs 0, AdamW): as many steps as it takes to see every train token
        # `epochs` times.
        "w2v_adamw": {**w2v, "epochs": 0, "block_size": block, "max_iters": steps, "batch_size": args.batch_size,
                      "lr": args.lr, "min_lr": args.lr / 10, "weight_decay": 0.0, "warmup_iters": 0,
                      "eval_interval": steps, "grad_clip": 0.0},
    }
    for name, overrides in runs.items():
        per_seed = []
        for seed in seeds:
            t0 = time.perf_counter()
            train_run(tmp / f"{name}-{seed}", data_dir=tmp / "data", model_type="word2vec",
                      overrides={**overrides, "seed": seed}, progress=False)
            per_seed.append((time.perf_counter() - t0, evaluate_world_embeddings(tmp / f"{name}-{seed}", world)))
        seconds[name], results[name] = _mean(per_seed)
    g_label, per_seed = "", []
    for seed in seeds:
        vectors, g_seconds, g_label = run_gensim(sentences, n_words, args, seed)
        if vectors is not None:
            per_seed.append((g_seconds, evaluate_word_vectors(vectors, world)))
    if per_seed:
        seconds["gensim"], results["gensim"] = _mean(per_seed)
    print(f"word2vec: SGD, {args.epochs} epochs; w2v_adamw: {steps} steps × {args.batch_size} × {block} tokens "
          f"(AdamW lr {args.lr}); gensim: {g_label}; seeds {args.seeds}")

    cols = ["cooc", "ppmi", "word2vec", "w2v_adamw", "gensim"]
    print(f"\n{'':24s}" + "".join(f"{c:>12s}" for c in cols))
    print(f"{'train seconds':24s}" + "".join(f"{seconds[c]:12.1f}" if c in seconds else f"{'absent':>12s}"
                                              for c in cols))
    for key in SCORES:
        print(f"{key:24s}" + "".join(f"{results[c][key]:12.3f}" if c in results else f"{'absent':>12s}"
                                     for c in cols))
    ratio = seconds["word2vec"] / seconds["gensim"] if "gensim" in seconds else None
    if ratio is not None:
        print(f"\nour word2vec takes {ratio:.1f}× gensim's time "
              f"({seconds['word2vec']:.1f} s vs {seconds['gensim']:.1f} s)")
    else:
        print("\ngensim is absent: no speed ratio (install it with `pip install -c constraints.txt gensim`)")

    def fmt(x):
        return "na" if x is None else f"{x:.3f}"

    fields = [f"size={args.size}", f"words={n_words}", f"seeds={len(seeds)}"]
    for c in cols:
        if c in results:
            fields += [f"{c}_s={seconds[c]:.1f}", f"{c}_kind={fmt(results[c]['kind_clustering'])}",
                       f"{c}_capital={fmt(results[c]['capital_analogy_acc'])}",
                       f"{c}_language={fmt(results[c]['language_analogy_acc'])}"]
        else:
            fields.append(f"{c}=absent")
    fields.append(f"w2v_vs_gensim_time={fmt(ratio)}")
    print("RESULT " + " ".join(fields))


if __name__ == "__main__":
    sys.exit(main())
