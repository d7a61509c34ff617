"""Helpers of the classifier tests (tests/models, tests/training, tests/evaluation): a trivially separable toy
sentiment set (the word "good" or "bad" decides the label), a tiny random GPT saved as a run dir, and settings that
keep every training run to a few seconds on a busy 2-core CPU."""

import random
from pathlib import Path

import torch

from lmlab.checkpoint import save_run
from lmlab.models import GPT, GPTConfig
from lmlab.tokenization import train_tokenizer

FILLER = "the a movie film plot actor scene was is very quite story long short music".split()

# Small models and short runs: the toy set is learned in a few dozen steps.
BOW_FAST = dict(max_iters=60, eval_interval=60, eval_iters=2, batch_size=32, lr=0.1, pooling="sum",
                dtype="float32", device="cpu")
LSTM_FAST = dict(max_iters=80, eval_interval=80, eval_iters=2, batch_size=16, lr=1e-2, warmup_iters=5,
                 n_embd=16, n_hidden=16, dropout=0.0, dtype="float32", device="cpu")
GPT_FAST = dict(max_iters=80, eval_interval=80, eval_iters=2, batch_size=16, lr=3e-3, min_lr=3e-4, warmup_iters=5,
                dtype="float32", device="cpu")


def toy_examples(n: int = 120, seed: int = 0) -> list[tuple[str, int]]:
    """(text, label) pairs: filler words with "good" (label 1) or "bad" (label 0) somewhere in them."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = i % 2
        words = [rng.choice(FILLER) for _ in range(rng.randint(2, 7))]
        words.insert(rng.randrange(len(words) + 1), "good" if label else "bad")
        out.append((" ".join(words), label))
    return out


def write_toy_tsv(path: Path, n: int = 120, seed: int = 0) -> Path:
    """The toy set as an SST-2-style TSV (header 'sentence<TAB>label')."""
    rows = "".join(f"{t}\t{y}\n" for t, y in toy_examples(n, seed))
    path.write_text("sentence\tlabel\n" + rows, encoding="utf-8")
    return path


def save_tiny_gpt_run(path: Path) -> Path:
    """A random 1-layer GPT with a small BPE tokenizer (trained on the toy texts), saved as a run dir: stands in
    for a trained GPT to fine-tune (the toy set is learnable from scratch)."""
    tok = train_tokenizer("bpe", [t for t, _ in toy_examples(200, seed=1)] * 3, vocab_size=300, progress=False)
    torch.manual_seed(0)
    config = GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=32, vocab_size=tok.vocab_size)
    save_run(path, GPT(config), tok, model_config=config)
    return path


def save_tiny_bert_run(path: Path) -> Path:
    """A random 1-layer BERT with a small BPE tokenizer holding <cls> <sep> <mask>, saved as a run dir."""
    from lmlab.models.bert import BERT, BERTConfig

    tok = train_tokenizer("bpe", [t for t, _ in toy_examples(200, seed=1)] * 3, vocab_size=300,
                          special_tokens=["<cls>", "<sep>", "<mask>"], progress=False)
    torch.manual_seed(0)
    config = BERTConfig(n_layer=1, n_head=2, n_embd=32, block_size=32, vocab_size=tok.vocab_size, dropout=0.0,
                        cls_id=tok.token_to_id("<cls>"), sep_id=tok.token_to_id("<sep>"),
                        mask_id=tok.token_to_id("<mask>"))
    save_run(path, BERT(config), tok, model_type="bert", model_config=config)
    return path
