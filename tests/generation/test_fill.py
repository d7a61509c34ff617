"""Masked-word prediction (`fill_mask`, `lmlab fill`) with a tiny BERT trained by the real trainer on a small,
repetitive text until it knows two capitals and a job."""

import json
import random

import pytest
import torch

from lmlab.checkpoint import load_run
from lmlab.cli import main
from lmlab.data import prepare
from lmlab.errors import LmlabError
from lmlab.generation.fill import fill_mask, mask_input_ids
from lmlab.models.bert import BERT
from lmlab.tokenization.bpe import BPETokenizer
from lmlab.tokenization.char import CharTokenizer
from lmlab.tokenization.word import WordTokenizer
import lmlab.recipes as recipes

FACTS = ["The capital of Veruna is Lorbas.", "The capital of Kaldia is Mirvel."]
FILLER = ["Zedom works as a pilot.", "Brodik plays the harp.", "Piteis likes green tea.", "Vresousk reads old books."]
# 300 steps of 64 windows: the smallest budget at which every answer below was top-1 (about 15 s on a busy CPU).
TRAIN = dict(n_layer=2, n_head=2, n_embd=64, block_size=16, dropout=0.0, batch_size=64, lr=3e-3, min_lr=1e-4,
             warmup_iters=20, max_iters=300, eval_interval=300, eval_iters=4, log_interval=50, dtype="float32",
             device="cpu")


@pytest.fixture(scope="module")
def bert_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("fill")
    rng = random.Random(0)
    paragraphs = [" ".join(rng.sample(FACTS + FILLER, 3)) for _ in range(400)]
    (root / "corpus.txt").write_text("\n\n".join(paragraphs) + "\n")
    prepare([root / "corpus.txt"], "word", root / "data", split_blank_lines=True, dedup="none",
            special_tokens=BERT.special_tokens, progress=False, workers=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls gain nothing from threads on a busy shared CPU
    try:
        recipes.run(out=root / "run", data_dir=root / "data", model_type="bert", progress=False, overrides=TRAIN)
    finally:
        torch.set_num_threads(threads)
    return root / "run"


def test_fill_predicts_the_learned_words(bert_run):
    assert fill_mask(bert_run, "The capital of Veruna is [MASK].")[0][0][0] == "Lorbas"
    assert fill_mask(bert_run, "The capital of Kaldia is <mask>.")[0][0][0] == "Mirvel"
    run = load_run(bert_run)
    (job,), = [fill_mask(run, "Zedom works as a [MASK].", top_k=1)]
    assert job[0][0] == "pilot"
    both = fill_mask(run.model, "The capital of [MASK] is Lorbas. Zedom works as a [MASK].", top_k=3,
                     tokenizer=run.tokenizer)
    assert len(both) == 2 and all(len(rows) == 3 for rows in both)
    assert both[0][0][0] == "Veruna" and both[1][0][0] == "pilot"
    probs = [p for _, p in both[0]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6


def test_cli_prints_top_k_and_json(bert_run, capsys):
    assert main(["fill", str(bert_run), "The capital of Veruna is [MASK].", "--top-k", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "The capital of Veruna is Lorbas." and out[1] == "mask 1:" and len(out) == 4
    assert "'Lorbas'" in out[2]
    assert main(["fill", str(bert_run), "The capital of Kaldia is [MASK].", "--json", "--top-k", "3"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["filled"] == "The capital of Kaldia is Mirvel."
    assert len(data["masks"]) == 1 and len(data["masks"][0]) == 3 and data["masks"][0][0][0] == "Mirvel"


def test_user_mistakes_are_clear_errors(bert_run, tmp_path, capsys):
    with pytest.raises(LmlabError, match="no mask"):
        fill_mask(bert_run, "The capital of Veruna is Lorbas.")
    with pytest.raises(LmlabError, match="top_k"):
        fill_mask(bert_run, "[MASK]", top_k=0)
    with pytest.raises(LmlabError, match="longer than the model's context"):
        fill_mask(bert_run, "[MASK] " + "tea " * 40)
    assert main(["fill", str(bert_run), "no mask here"]) == 2
    assert "no mask" in capsys.readouterr().err
    assert main(["fill", str(tmp_path / "missing"), "[MASK]"]) == 2
    capsys.readouterr()


def test_a_run_that_is_not_bert_is_refused(tmp_path, capsys):
    from lmlab.checkpoint import save_run
    from lmlab.models import GPT, GPTConfig

    tok = CharTokenizer.train(["abc"])
    config = GPTConfig(n_layer=1, n_head=1, n_embd=8, block_size=8, vocab_size=tok.vocab_size)
    save_run(tmp_path / "gpt", GPT(config), tok, model_type="gpt", model_config=config)
    assert main(["fill", str(tmp_path / "gpt"), "a [MASK]"]) == 2
    assert "holds a gpt model, not a BERT-style encoder" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["word", "bpe", "char"])
def test_mask_input_matches_how_the_tokenizer_spaces_words(kind):
    specials = BERT.special_tokens
    text = "The capital of Veruna is Lorbas. It is here now. " * 20
    if kind == "word":
        tok = WordTokenizer.train([text], special_tokens=specials)
    elif kind == "bpe":
        tok = BPETokenizer.train([text], vocab_size=400, special_tokens=specials)
    else:
        tok = CharTokenizer.train([text], special_tokens=specials)
    ids = mask_input_ids(tok, "The capital of Veruna is [MASK]. It is <mask> now.")
    mask = tok.token_to_id("<mask>")
    # The input is exactly what the true sentence encodes to, with the masked words' tokens swapped for <mask>.
    truth = [tok.token_to_id("<cls>")] + tok.encode("The capital of Veruna is Lorbas. It is here now.") + \
        [tok.token_to_id("<sep>")]
    if kind == "char":  # one character per mask
        ids = mask_input_ids(tok, "The capital of Veruna is [MASK]orbas. It is <mask>ere now.")
    assert len(ids) == len(truth) and ids.count(mask) == 2
    assert [t for t, m in zip(truth, ids) if m != mask] == [t for t in ids if t != mask]
