"""BLEU/chrF of translations (sacrebleu), and the seq2seq CLI end to end: prepare-parallel → train → translate →
eval translation, with the special ids taken from the tokenizer and clear errors for the wrong kind of run dir."""

import json
import subprocess
import sys

import pytest

from lmlab.checkpoint import load_run, save_run
from lmlab.cli import main
from lmlab.data.parallel import prepare_parallel, split_pairs
from lmlab.evaluation.translation import corpus_scores, evaluation_pairs, translation_scores
from lmlab.models import GPT, GPTConfig
from lmlab.models.seq2seq import Seq2Seq
from lmlab.tokenization import CharTokenizer

from ..seq2seq_toy import TOY_MODEL, toy_copy_run, toy_pairs, write_tsv


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_a_perfect_translation_scores_100_and_a_wrong_one_less():
    refs = ["the cat sat on the mat .", "a dog barks at the postman today"]
    assert corpus_scores(refs, refs) == {"bleu": pytest.approx(100.0), "chrf": pytest.approx(100.0)}
    worse = corpus_scores(["the cat sat on a mat .", "a dog sleeps"], refs)
    assert 0 < worse["bleu"] < 100 and 0 < worse["chrf"] < 100


def test_translation_scores_of_a_model_that_copies_exactly(tmp_path_factory):
    run_dir, data_dir = toy_copy_run(tmp_path_factory)
    run = load_run(run_dir)
    pairs = evaluation_pairs(run)  # default: the val split of the run's own data
    assert pairs == split_pairs(data_dir, "val")
    r = translation_scores(run, pairs, limit=20, examples=2)
    assert r["n"] == 20 and r["bleu"] == pytest.approx(100.0) and r["chrf"] == pytest.approx(100.0)
    assert r["examples"][0]["translation"] == r["examples"][0]["reference"]
    assert translation_scores(run_dir, pairs[:5], beam=3)["bleu"] == pytest.approx(100.0)


def _cli(args, capsys) -> str:
    capsys.readouterr()
    assert main([str(a) for a in args]) == 0
    return capsys.readouterr().out


def test_cli_prepare_train_translate_eval(tmp_path, capsys):
    tsv = write_tsv(tmp_path / "pairs.tsv", toy_pairs(200, seed=1))
    out = _cli(["data", "prepare-parallel", tsv, "--out", tmp_path / "data", "--tokenizer", "word",
                "--no-progress"], capsys)
    assert "train: 180 pairs" in out
    settings = [f"--{k}={v}" for k, v in {**TOY_MODEL, "max_iters": 30, "eval_interval": 30, "eval_iters": 1,
                                          "batch_size": 16, "device": "cpu", "dtype": "float32"}.items()]
    _cli(["train", "--model", "seq2seq", "--data", tmp_path / "data", "--out", tmp_path / "run", "--no-progress",
          *settings], capsys)
    out = _cli(["translate", tmp_path / "run", "a b c", "--json"], capsys)
    row = json.loads(out)
    assert row["source"] == "a b c" and row["finish_reason"] in ("eos", "length")
    beam = _cli(["translate", tmp_path / "run", "a b c", "d e", "--beam", "3", "--max-new-tokens", "5"], capsys)
    assert len(beam.splitlines()) == 2
    r = json.loads(_cli(["eval", "translation", tmp_path / "run", "--limit", "8", "--json"], capsys))
    assert r["n"] == 8 and 0 <= r["bleu"] <= 100 and 0 <= r["chrf"] <= 100
    text = _cli(["eval", "translation", tmp_path / "run", "--data", tsv, "--limit", "4"], capsys)
    assert "BLEU" in text and "4 pairs, greedy" in text


def test_training_takes_the_special_ids_from_the_tokenizer(tmp_path, capsys):
    tsv = write_tsv(tmp_path / "pairs.tsv", toy_pairs(60, seed=2))
    # An extra special token (placed after <sep>) shifts every sentinel by one id from the config's defaults.
    prepare_parallel(tsv, tmp_path / "data", tokenizer="word", special_tokens=("<extra>",) + Seq2Seq.special_tokens,
                     progress=False)
    _cli(["train", "--model", "seq2seq", "--data", tmp_path / "data", "--out", tmp_path / "run", "--no-progress",
          "--max_iters", "2", "--eval_iters", "1", "--n_enc_layer", "1", "--n_dec_layer", "1", "--n_embd", "16",
          "--n_head", "2", "--device", "cpu"], capsys)
    run = load_run(tmp_path / "run")
    c, tok = run.model_config, run.tokenizer
    assert c.sep_id == tok.token_to_id("<sep>")
    assert list(c.sentinel_ids) == [tok.token_to_id(f"<sentinel{i}>") for i in range(32)]
    assert c.sentinel_ids[0] == 6  # not the default 5
    assert (c.pad_id, c.bos_id, c.eos_id) == (tok.pad_id, tok.bos_id, tok.eos_id)


def test_translate_refuses_a_run_dir_of_another_model_type(tmp_path, capsys):
    tok = CharTokenizer.train(["abc"])
    gpt = GPT(GPTConfig(n_layer=1, n_head=1, n_embd=8, block_size=8, vocab_size=tok.vocab_size))
    save_run(tmp_path / "gpt", gpt, tok, model_config=gpt.config)
    proc = subprocess.run([sys.executable, "-m", "lmlab", "translate", str(tmp_path / "gpt"), "abc"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "encoder-decoder" in proc.stderr and "Traceback" not in proc.stderr
    assert main(["eval", "translation", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
