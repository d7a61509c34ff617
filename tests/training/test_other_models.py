"""n-gram, LSTM and bi-LSTM models through the same trainer, run dirs and CLI as the GPT: `lmlab train --model
ngram|lstm|bilstm`, then `lmlab eval ppl`, `lmlab sample` and `lmlab score` on the run dir."""

import json

import numpy as np
import pytest
import torch

from lmlab.checkpoint import load_run, load_train_state
from lmlab.cli import main
import lmlab.recipes as recipes
from lmlab.training.streams import ContiguousStreamSampler

# A recurrent model small enough that a step takes milliseconds on a busy 2-core CPU.
LSTM_TINY = dict(n_embd=16, n_hidden=32, n_layer=1, block_size=16, batch_size=8, eval_iters=2, dropout=0.0,
                 dtype="float32", device="cpu", warmup_iters=5, lr=1e-2, min_lr=1e-3)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_lstm_trains_and_its_run_dir_reloads_with_the_same_logits(char_data, tmp_path):
    probe = torch.arange(12)[None] % 20
    seen = {}

    def remember(record, model):
        seen["logits"] = model.eval()(probe)[0].detach().clone()
        model.train()

    result = recipes.run(out=tmp_path / "run", data_dir=char_data, model_type="lstm", progress=False, on_eval=remember,
                         overrides={**LSTM_TINY, "max_iters": 60, "eval_interval": 60, "log_interval": 5}).train
    losses = [r["train_loss"] for r in result.metrics if "train_loss" in r]
    assert losses[-1] < losses[0] - 0.5, losses
    run = load_run(tmp_path / "run")
    assert run.model_type == "lstm"
    assert torch.allclose(run.model(probe)[0], seen["logits"], atol=1e-6)


def test_carried_state_training_uses_contiguous_streams(char_data, tmp_path):
    result = recipes.run(out=tmp_path / "run", data_dir=char_data, model_type="lstm", progress=False,
                         overrides={**LSTM_TINY, "carry_state": True, "max_iters": 12, "eval_interval": 12}).train
    assert np.isfinite(result.last_val_loss)
    assert load_train_state(tmp_path / "run")["sampler"]["kind"] == "streams"
    # row i of each batch continues row i of the previous batch
    tokens = np.arange(1000) % 97
    sampler = ContiguousStreamSampler(tokens, 10, 4)
    x1, y1 = sampler.next_batch()
    x2, _ = sampler.next_batch()
    assert torch.equal(x2[:, 0], y1[:, -1]) and torch.equal(x1[:, 1:], y1[:, :-1])
    assert x1[:, 0].tolist() == [0, 250 % 97, 500 % 97, 750 % 97]


def _cli(args, capsys) -> str:
    assert main(args) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("model_args", [
    ["--model", "ngram", "--order", "3"],
    ["--preset", "ngram2"],
    ["--model", "lstm"] + [a for k, v in LSTM_TINY.items() for a in (f"--{k}", str(v))] + ["--max_iters", "10"],
    ["--model", "bilstm"] + [a for k, v in LSTM_TINY.items() for a in (f"--{k}", str(v))] + ["--max_iters", "10"],
], ids=["ngram3", "preset-ngram2", "lstm", "bilstm"])
def test_cli_run_dirs_work_with_eval_sample_and_score(model_args, char_data, tmp_path, capsys):
    run = str(tmp_path / "run")
    out = _cli(["train", "--data", str(char_data), "--out", run, "--no-progress"] + model_args, capsys)
    assert "val loss" in out
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    if "ngram" in " ".join(model_args):
        assert config["model_type"] == "ngram"
        assert config["model"]["order"] == (3 if "3" in model_args else 2)
        assert "fitted" in out and not (tmp_path / "run" / "train_state.pt").exists()
    ppl = json.loads(_cli(["eval", "ppl", run, "--json"], capsys))
    vocab = load_run(run).tokenizer.vocab_size
    # n-gram: fitted; the recurrent models had 10 steps — better than uniform guessing is all they can show
    assert 1.0 < ppl["ppl"] < (40 if config["model_type"] == "ngram" else vocab / 2) and ppl["bits_per_byte"] > 0
    sample = _cli(["sample", run, "--prompt", "the cat", "--max-new-tokens", "8", "--seed", "1"], capsys)
    assert sample.startswith("the cat")
    _cli(["sample", run, "--prompt", "a", "--prompt", "the dog", "--max-new-tokens", "4", "--temperature", "0"],
         capsys)
    assert "total log-prob" in _cli(["score", run, "--text", "the cat sees the moon."], capsys)


def test_count_models_have_nothing_to_resume_and_bad_presets_are_one_line_errors(char_data, tmp_path, capsys):
    run = str(tmp_path / "run")
    _cli(["train", "--preset", "ngram1", "--data", str(char_data), "--out", run, "--no-progress"], capsys)
    assert main(["train", "--resume", "--out", run, "--no-progress"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert main(["train", "--model", "lstm", "--preset", "ngram3", "--data", str(char_data), "--out",
                 str(tmp_path / "x"), "--no-progress"]) == 2
    assert "not a preset of model type 'lstm'" in capsys.readouterr().err
    assert main(["train", "--model", "ngram", "--order", "7", "--data", str(char_data), "--out",
                 str(tmp_path / "y"), "--no-progress"]) == 2
    assert "order must be between 1 and 5" in capsys.readouterr().err
