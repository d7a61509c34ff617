"""What `lmlab train --model TYPE --text DIR` gives with no model flag must be the model the docs describe.

Each family is trained from raw text through the CLI, with only run-length flags (--max_iters, --eval_iters), and
the config.json it writes is compared with the defaults stated in docs/models.md, docs/models-classic.md,
docs/models-bert.md, docs/models-seq2seq.md and docs/embeddings.md (issue 18: `--model ngram` used to write an
order-1 model, and word2vec trained on BPE pieces).
"""

import json
import re

import pytest

from lmlab.checkpoint import load_run
from lmlab.cli import main
from lmlab.data import load_split
from lmlab.generation import perplexity

# family → (model settings, training settings, tokenizer kind) that the docs give for `--model TYPE` alone.
DOCUMENTED = {
    # docs/models.md, preset tiny; its training settings are the recipe `world`'s (lmlab.recipes)
    "gpt": (dict(n_layer=4, n_head=4, n_embd=128, block_size=128, pos_embedding="learned"),
            dict(batch_size=16, lr=1e-3, min_lr=1e-4, warmup_iters=100), "bpe"),
    # docs/models-classic.md: "order (1–5, default 3)", block_size 256
    "ngram": (dict(order=3, block_size=256), {}, "bpe"),
    # docs/models-classic.md: preset lstm-tiny = `--model lstm`
    "lstm": (dict(n_embd=64, n_hidden=256, n_layer=2, dropout=0.1, block_size=64, carry_state=False),
             dict(batch_size=32, lr=3e-3, min_lr=3e-4, weight_decay=0.01), "bpe"),
    "bilstm": (dict(n_embd=64, n_hidden=192, n_layer=2, dropout=0.1, block_size=64),
               dict(batch_size=32, lr=3e-3, min_lr=3e-4), "bpe"),
    # docs/models-bert.md: bert-tiny, 4 layers, 4 heads, 128 wide, 64 positions; batch 32, lr 1e-3
    "bert": (dict(n_layer=4, n_head=4, n_embd=128, block_size=64), dict(batch_size=32, lr=1e-3, weight_decay=0.01),
             "bpe"),
    # docs/models-seq2seq.md: seq2seq-tiny, 3 + 3 layers, width 128, 4 heads, block 64, dropout 0.1, translation
    "seq2seq": (dict(n_enc_layer=3, n_dec_layer=3, n_head=4, n_embd=128, block_size=64, dropout=0.1,
                     objective="translation"), dict(batch_size=64, lr=1e-3, min_lr=1e-4), "bpe"),
    # docs/embeddings.md: word vectors of words (word tokenizer), dim 100, window 5
    "word2vec": (dict(dim=100, window=5, architecture="skipgram", negatives=5, subsample=1e-4, epochs=5,
                      alpha=0.025), dict(weight_decay=0.0), "word"),
    "cooc": (dict(dim=100, window=5, count_transform="log1p", svd_power=1.0), {}, "word"),
    "ppmi": (dict(dim=100, window=5, alpha=0.75, svd_power=0.5), {}, "word"),
}
RUN_LENGTH = ["--max_iters", "2", "--eval_interval", "2", "--eval_iters", "1", "--device", "cpu", "--no-progress"]


@pytest.fixture(scope="module")
def world_text(tmp_path_factory):
    """The corpus files of a small world: several files, so the val split is not empty."""
    from lmlab.world import generate_world

    world = tmp_path_factory.mktemp("world") / "w"
    generate_world(world, seed=0, size="100KB")
    return world / "corpus"


@pytest.fixture(scope="module")
def parallel_text(tmp_path_factory):
    """A directory of `source<sep>target` documents (what the default translation objective reads)."""
    root = tmp_path_factory.mktemp("parallel")
    words = ["cat", "dog", "house", "river", "tree", "moon", "bird", "stone", "apple", "door", "road", "ship"]
    for i in range(24):
        source = " ".join(words[(i + j) % len(words)] for j in range(3 + i % 4))
        (root / f"pair{i:02d}.txt").write_text(f"{source}<sep>{source[::-1]}")
    return root


@pytest.mark.parametrize("family", list(DOCUMENTED))
def test_train_model_type_alone_writes_the_documented_model(family, world_text, parallel_text, tmp_path):
    text = parallel_text if family == "seq2seq" else world_text
    out = tmp_path / family
    assert main(["train", "--model", family, "--text", str(text), "--out", str(out), *RUN_LENGTH]) == 0
    config = json.loads((out / "config.json").read_text())
    tokenizer = json.loads((out / "tokenizer.json").read_text())
    model_settings, train_settings, tokenizer_kind = DOCUMENTED[family]
    assert config["model_type"] == family
    assert {k: config["model"][k] for k in model_settings} == model_settings
    assert {k: config["training"][k] for k in train_settings} == train_settings
    assert tokenizer["kind"] == tokenizer_kind


def test_default_ngram_fits_its_training_text_far_better_than_a_unigram(world_text, tmp_path):
    def train_ppl(*flags):
        out = tmp_path / "-".join(flags)
        assert main(["train", *flags, "--text", str(world_text), "--out", str(out), *RUN_LENGTH]) == 0
        run = load_run(out)
        tokens = load_split(out / "data", "train", run.tokenizer)
        return perplexity(run.model, tokens[:20_000], batch_size=4)["ppl"]

    default, unigram = train_ppl("--model", "ngram"), train_ppl("--preset", "ngram1")
    assert default < unigram / 10  # measured: 3.4 vs 135 on this world text


def test_word2vec_on_tiny_shakespeare_answers_words(shakespeare, tmp_path):
    # One epoch and no val loss keep the test short.
    out = tmp_path / "w2v"
    assert main(["train", "--model", "word2vec", "--text", str(shakespeare), "--out", str(out), "--epochs", "1",
                 "--eval_iters", "0", "--no-progress"]) == 0
    from lmlab.evaluation.embeddings import neighbors

    answers = [w for w, _ in neighbors(out, "king", k=10)]
    text = shakespeare.read_text(encoding="utf-8")
    assert len(answers) == 10
    for word in answers:  # whole words of the text (BPE gave pieces such as 'Ġsho', 'bled', 'bling')
        assert re.fullmatch(r"[A-Za-z][A-Za-z']*", word), word
        assert re.search(rf"(?<![A-Za-z']){re.escape(word)}(?![A-Za-z'])", text), word


@pytest.fixture
def shakespeare():
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "tinyshakespeare_input.txt"
    if not path.is_file():
        pytest.skip(f"tiny Shakespeare ({path}) is absent (it sits beside the repository on the dev machines)")
    return path
