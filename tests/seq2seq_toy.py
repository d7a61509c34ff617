"""A tiny encoder-decoder trained by the real trainer (~300 steps, a few seconds) to copy spaced letter strings,
shared by the seq2seq model, decoding, evaluation and CLI tests. Made once per test session (cached in pytest's
session temp dir), through the same path users take: TSV file → prepare_parallel → train_run."""

from __future__ import annotations

import random
from pathlib import Path

import torch

from lmlab.data.parallel import prepare_parallel
from lmlab.models.seq2seq import Seq2Seq
import lmlab.recipes as recipes

# Letters separated by spaces, one word-tokenizer token each; BLEU's 13a tokenisation also sees each letter as a
# word, so an exact copy scores 100.
TOY_MODEL = dict(n_enc_layer=1, n_dec_layer=1, n_head=2, n_embd=32, block_size=16, dropout=0.0)
TOY_TRAINING = dict(batch_size=32, max_iters=300, eval_interval=300, eval_iters=2, warmup_iters=20, lr=5e-3,
                    min_lr=5e-4, dtype="float32", device="cpu", log_interval=50)


def toy_pairs(n: int = 600, seed: int = 0) -> list[tuple[str, str]]:
    """n distinct (source, target) pairs where the target copies the source, e.g. ('c a f e', 'c a f e')."""
    rng = random.Random(seed)
    words: set[str] = set()
    while len(words) < n:
        words.add(" ".join(rng.choice("abcdefgh") for _ in range(rng.randint(3, 6))))
    return [(w, w) for w in sorted(words)]


def write_tsv(path: Path, pairs: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    return path


def toy_copy_run(tmp_path_factory) -> tuple[Path, Path]:
    """(run dir, data dir) of the trained copy model; trained on first use in this session."""
    base = tmp_path_factory.getbasetemp() / "seq2seq_toy"
    run, data = base / "run", base / "data"
    if (run / "model.safetensors").is_file():
        return run, data
    base.mkdir(exist_ok=True)
    tsv = write_tsv(base / "pairs.tsv", toy_pairs())
    prepare_parallel(tsv, data, tokenizer="word", special_tokens=Seq2Seq.special_tokens, progress=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls gain nothing from threads on a shared CPU
    try:
        recipes.run(out=run, data_dir=data, model_type="seq2seq", progress=False, overrides={**TOY_MODEL, **TOY_TRAINING})
    finally:
        torch.set_num_threads(threads)
    return run, data
