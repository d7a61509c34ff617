"""The named recipes, as data: each entry is one complete end-to-end job — where the text comes from, how it is
tokenized, the model, how it is trained, and what is shown at the end. Read one entry to know what `lmlab train
--recipe NAME` does; `lmlab recipes` lists them. Model *shapes* stay in their small named lists
(`lmlab.models.presets` for the GPT, each family's presets in `lmlab.models.registry`); the recipes refer to them by
name and hold every training setting.

Measured times and results of each recipe are in docs/recipes.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class WorldText:
    """Training text drawn from the built-in synthetic world (lmlab.world), generated on first use."""

    seed: int = 0  # the world's seed: the same seed and size always give the same bytes
    size: str = "2MB"  # approximate size of the world's corpus (lmlab.world.generate_world)
    world_dir: str = "runs/world"  # where the world is generated (shared by every world recipe)
    # corpus/NAME.txt files used whole; empty: the whole corpus directory (every section)
    sections: tuple[str, ...] = ()
    # corpus/NAME.txt files of which only the first `cut_kb` kilobytes (whole paragraphs) are used: a section cut
    # short leaves the step budget to the others
    cut_sections: tuple[str, ...] = ()
    cut_kb: int = 100
    # documents of extra 2-digit sums (lmlab.world.arithmetic.extra_sums_text), never a held-out 2D+ question
    extra_sums: int = 0
    sums_seed: int = 1


@dataclass(frozen=True)
class DataRecipe:
    """How a recipe's text becomes token shards (lmlab.data.prepare)."""

    # The text: the built-in world, or None when the recipe trains on the user's own files (`--text FILE...`).
    text: WorldText | None
    # A tokenizer kind trained on the text ("bpe", "char", "word"), or "recipe:NAME": reuse the tokenizer of
    # recipe NAME's shards (so the two recipes' models read the same tokens and their numbers compare).
    tokenizer: str = "bpe"
    vocab_size: int | None = None  # for a trained bpe/word tokenizer (None: the tokenizer's default)
    numbers: str = "gpt2"  # bpe's digit policy ("digits": one token per digit, which arithmetic needs)
    # Paragraphs are the documents, so the val split is a random 10% of paragraphs (not whole files)
    split_blank_lines: bool = True
    # No dedup on the world: it repeats each fact on purpose, and the repetitions are how a model learns them
    dedup: str = "none"
    # Where the shards go; recipes with the same text and tokenizer share one directory. None: RUN_DIR/data.
    data_dir: str | None = None
    # Where composed text (cut sections, extra sums) is written before preparing, kept for inspection/attribution.
    text_dir: str | None = None


@dataclass(frozen=True)
class Recipe:
    """One named end-to-end job (see the module docstring)."""

    name: str
    shows: str  # one line: what the recipe shows (printed by `lmlab recipes`)
    minutes: float  # expected wall minutes from an empty directory on a 2-core CPU (docs/recipes.md)
    outputs: str  # the directories it writes
    data: DataRecipe
    out: str  # the run dir it trains into, unless --out says otherwise
    model_type: str = "gpt"  # a type of lmlab.models.registry
    model_preset: str | None = "tiny"  # a named shape of that type (lmlab.models.presets / the family's presets;
                                       # None for a type without presets)
    model: dict[str, Any] = field(default_factory=dict)  # model settings over the preset
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig settings over TrainConfig's defaults
    # float32 where the recipe's documented numbers were measured in it: the same model on every CPU of one kind
    # (`dtype auto` would pick bf16 on CPUs that have it). Applies when the recipe runs by name; training the
    # preset on other data (`lmlab train --preset P --data DIR`) keeps `auto`.
    dtype: str = "float32"
    report: str = "none"  # what is shown at the end: "completions" | "arithmetic" | "fill" | "neighbours" | "none"

    def settings(self, *, named: bool = True) -> dict[str, Any]:
        """The recipe's model and training settings as one flat {key: value} dict (lmlab.training.train_run's
        `base_settings`). `named=False`: only the training settings, for the preset trained on other data
        (`lmlab train --preset P --data DIR`): the model stays the preset, and dtype stays `auto`."""
        if not named:
            return dict(self.train)
        return {**self.model, **self.train, "dtype": self.dtype}


# ---------------------------------------------------------------------------------------------------- training ---
# The tiny GPT's training: memorise the 2 MB world's facts on a 2-core CPU in minutes. 3000 steps × 2048 tokens
# ≈ 9.5 epochs of that world; fact accuracy still climbs steeply a third of the way in, so the budget is set by
# the facts, not the loss.
TINY_TRAIN = dict(batch_size=16, lr=1e-3, min_lr=1e-4, warmup_iters=100, max_iters=3000, eval_interval=500,
                  eval_iters=20, log_interval=10, weight_decay=0.1, beta2=0.99)
# Recurrent LMs: a higher lr than the GPT's suits the LSTM; only a touch of decay on its recurrent matrices.
LSTM_TRAIN = dict(batch_size=32, lr=3e-3, min_lr=3e-4, warmup_iters=50, max_iters=1000, eval_interval=200,
                  eval_iters=20, log_interval=10, weight_decay=0.01, beta2=0.99)
# word2vec trains itself by SGD for Word2VecConfig.epochs; these settings only size the val-loss measurement (a
# noisy negative-sampling objective: measuring more costs as much as an epoch). With --epochs 0 the loop trains
# it: a large decaying lr as in Mikolov's SGD, no weight decay (it would pull every vector to 0), no warmup or
# clipping (each step touches few rows).
WORD2VEC_TRAIN = dict(batch_size=64, lr=0.02, min_lr=0.002, warmup_iters=0, weight_decay=0.0, grad_clip=0.0,
                      max_iters=1000, eval_interval=250, eval_iters=2, log_interval=10)
# Masked LM: only 15% of positions give a loss, so a larger batch than the GPT's; weight decay 0.01 as BERT.
BERT_TRAIN = dict(batch_size=32, lr=1e-3, min_lr=1e-4, warmup_iters=100, max_iters=1000, eval_interval=250,
                  eval_iters=10, log_interval=10, weight_decay=0.01, beta2=0.99)
# Encoder-decoder: rows are short (sentence pairs, or spans), hence more of them per step than the GPT's.
SEQ2SEQ_TRAIN = dict(batch_size=64, lr=1e-3, min_lr=1e-4, warmup_iters=100, max_iters=2000, eval_interval=250,
                     eval_iters=5, log_interval=10, weight_decay=0.01, beta2=0.99)
# Count-fitted models (n-gram, co-occurrence) take no gradient steps; these only size the val-loss measurement.
COUNT_TRAIN = dict(eval_iters=20)

# Fine-tuning (lmlab.recipes.finetune, `lmlab finetune`): per classifier kind, and for instruction tuning. A linear
# model takes a large step; a pre-trained GPT a small one (GPT-1 fine-tuned with 6.25e-5 and batch 32 for 3 epochs);
# every classifier run evaluates ~512 val examples. Instruction tuning: a tenth of the base model's lr (the tiny GPT
# pre-trains at 1e-3); 600 steps of 16 examples are ~4 epochs of the world's instruction set.
FINETUNE_TRAIN: dict[str, dict[str, Any]] = {
    "bow": dict(batch_size=64, lr=2e-2, min_lr=2e-3, warmup_iters=0, max_iters=1000, weight_decay=0.0,
                eval_interval=250, eval_iters=8, log_interval=50),
    "lstm": dict(batch_size=32, lr=2e-3, min_lr=2e-4, warmup_iters=50, max_iters=1000, weight_decay=0.01,
                 eval_interval=250, eval_iters=16, log_interval=50),
    "gpt": dict(batch_size=16, lr=1e-4, min_lr=1e-5, warmup_iters=50, max_iters=600, weight_decay=0.01,
                eval_interval=200, eval_iters=32, log_interval=50),
    "bert": dict(batch_size=16, lr=1e-4, min_lr=1e-5, warmup_iters=50, max_iters=600, weight_decay=0.01,
                 eval_interval=200, eval_iters=32, log_interval=50),
    "instructions": dict(batch_size=16, lr=3e-4, min_lr=3e-5, warmup_iters=30, max_iters=600, weight_decay=0.01,
                         eval_interval=100, eval_iters=16, log_interval=25),
}

# ------------------------------------------------------------------------------------------------------- data ---
WORLD = WorldText()
# The main job's shards: BPE with one token per digit (arithmetic needs it), shared by every recipe that trains on
# the whole world in BPE tokens.
WORLD_BPE = DataRecipe(text=WORLD, tokenizer="bpe", vocab_size=1024, numbers="digits", data_dir="runs/world-data")
# Word-level text for word vectors: the sections written in sentences about entities (docs/embeddings.md).
WORLD_WORDS = DataRecipe(text=WorldText(sections=("facts", "temporal", "grammar")), tokenizer="word",
                         data_dir="runs/world-words-data")

RECIPES: dict[str, Recipe] = {r.name: r for r in [
    Recipe(name="world", minutes=8.5, report="completions",
           shows="the main job: a tiny GPT memorises the world's facts (val perplexity, greedy completions)",
           outputs="runs/world, runs/world-data, runs/tiny", data=WORLD_BPE, out="runs/tiny", train=TINY_TRAIN),
    # The main job's model answers ~1% of 2-digit sums: learned positions need more sums than fit in the budget.
    # GPT-NeoX's partial rotary positions (25% of each head's channels) plus 6,600 extra documents of sums, with
    # three sections that teach no facts cut to 100 KB, learn them in the same 3,000 steps
    # (docs/experiments/arithmetic-tokenization.md, follow-up 6).
    Recipe(name="arithmetic", minutes=8.5, report="arithmetic",
           shows="a tiny GPT that adds 2-digit numbers in context (2D+ and fact accuracy at 5 shots)",
           outputs="runs/world, runs/arithmetic-text, runs/arithmetic-data, runs/arithmetic",
           data=DataRecipe(text=WorldText(sections=("facts", "temporal", "arithmetic"),
                                          cut_sections=("grammar", "scramble", "sentiment"), extra_sums=6600),
                           tokenizer="recipe:world", data_dir="runs/arithmetic-data",
                           text_dir="runs/arithmetic-text"),
           out="runs/arithmetic", model=dict(pos_embedding="rotary", rotary_pct=0.25), train=TINY_TRAIN),
    # nanoGPT's CPU configuration for tiny Shakespeare (its README: block 64, batch 12, 4 × 4 × 128, 2000 steps,
    # lr 1e-3 decaying over all of them, no dropout); one text file: its last 10% is the val split, as nanoGPT's.
    Recipe(name="shakespeare-char", minutes=2.5, report="completions",
           shows="nanoGPT's CPU baseline: a character-level GPT on your text (tiny Shakespeare: --text input.txt)",
           outputs="runs/shakespeare-char (with its data/ inside)",
           data=DataRecipe(text=None, tokenizer="char"), out="runs/shakespeare-char",
           model=dict(block_size=64, dropout=0.0),
           train=dict(batch_size=12, lr=1e-3, min_lr=1e-4, warmup_iters=100, max_iters=2000, lr_decay_iters=2000,
                      eval_interval=250, eval_iters=20, log_interval=10, weight_decay=0.1, beta2=0.99)),
    # One per family of the model zoo (docs/experiments/model-zoo.md), on the world.
    Recipe(name="ngram", minutes=0.5, report="completions", model_type="ngram", model_preset="ngram3",
           shows="Kneser-Ney 3-gram LM fitted by counting (the baseline every neural model must beat)",
           outputs="runs/world, runs/world-data, runs/ngram", data=WORLD_BPE, out="runs/ngram", train=COUNT_TRAIN),
    Recipe(name="lstm", minutes=3.5, report="completions", model_type="lstm", model_preset="lstm-tiny",
           shows="an LSTM LM on the world's BPE tokens (the pre-transformer baseline)",
           outputs="runs/world, runs/world-data, runs/lstm", data=WORLD_BPE, out="runs/lstm", train=LSTM_TRAIN),
    Recipe(name="bilstm", minutes=4.0, model_type="bilstm", model_preset="bilstm-tiny",
           shows="a bidirectional LSTM (ELMo-style forward + backward LMs) on the world's BPE tokens",
           outputs="runs/world, runs/world-data, runs/bilstm", data=WORLD_BPE, out="runs/bilstm",
           train=LSTM_TRAIN),
    Recipe(name="word2vec", minutes=2.0, report="neighbours", model_type="word2vec", model_preset="word2vec-100",
           shows="word2vec skip-gram vectors of the world's words (nearest neighbours)",
           outputs="runs/world, runs/world-words-data, runs/word2vec", data=WORLD_WORDS, out="runs/word2vec",
           train=WORD2VEC_TRAIN),
    Recipe(name="cooc", minutes=0.5, report="neighbours", model_type="cooc", model_preset=None,
           shows="co-occurrence counts + SVD word vectors (the count-based baseline)",
           outputs="runs/world, runs/world-words-data, runs/cooc", data=WORLD_WORDS, out="runs/cooc",
           train=COUNT_TRAIN),
    Recipe(name="ppmi", minutes=0.5, report="neighbours", model_type="ppmi", model_preset=None,
           shows="PPMI + SVD word vectors (Levy & Goldberg's count-based equivalent of word2vec)",
           outputs="runs/world, runs/world-words-data, runs/ppmi", data=WORLD_WORDS, out="runs/ppmi",
           train=COUNT_TRAIN),
    Recipe(name="bert", minutes=3.5, report="fill", model_type="bert", model_preset="bert-tiny",
           shows="a BERT-style masked LM on the world (fills [MASK] in a fact)",
           outputs="runs/world, runs/world-bert-data, runs/bert",
           data=DataRecipe(text=WORLD, tokenizer="bpe", vocab_size=1024, numbers="digits",
                           data_dir="runs/world-bert-data"),
           out="runs/bert", train=BERT_TRAIN),
    Recipe(name="seq2seq", minutes=15.0, model_type="seq2seq", model_preset="seq2seq-tiny",
           shows="an encoder-decoder trained by T5 span corruption on the world (for translation: --text pairs)",
           outputs="runs/world, runs/world-seq2seq-data, runs/seq2seq",
           data=DataRecipe(text=WORLD, tokenizer="bpe", vocab_size=1024, numbers="digits",
                           data_dir="runs/world-seq2seq-data"),
           out="runs/seq2seq", model=dict(objective="span_corruption"), train=SEQ2SEQ_TRAIN),
]}


def format_recipes() -> str:
    """The table `lmlab recipes` prints: name, expected minutes on a 2-core CPU, what it shows, what it writes."""
    width = max(len(n) for n in RECIPES)
    lines = [f"{'recipe':<{width}}  {'min':>4}  shows / writes"]
    for r in RECIPES.values():
        lines.append(f"{r.name:<{width}}  {r.minutes:>4.1f}  {r.shows}")
        lines.append(f"{'':<{width}}  {'':>4}  → {r.outputs}")
    return "\n".join(lines)
