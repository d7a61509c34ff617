"""The training loop, in-process: learning, run-dir files, metrics, best/last checkpoints, early stop, NaN stop."""

import json
import math

import pytest
import torch

from lmlab.checkpoint import load_run, load_train_state
from lmlab.data import load_tokenizer_of
from lmlab.errors import LmlabError
from lmlab.models.gpt import GPT, GPTConfig
from lmlab.training import TrainConfig, TrainingDiverged, read_metrics, train, train_run
import lmlab.recipes as recipes

SMALL = dict(n_layer=1, n_head=2, n_embd=32, block_size=16)


def _fresh(tok, **kw):
    torch.manual_seed(0)
    cfg = GPTConfig(**{**SMALL, **kw}, vocab_size=tok.vocab_size)
    return GPT(cfg), cfg


def test_training_learns_and_writes_a_complete_run_dir(char_data, tmp_path):
    tok = load_tokenizer_of(char_data)
    model, mcfg = _fresh(tok)
    cfg = TrainConfig(max_iters=60, eval_interval=20, eval_iters=4, log_interval=5, batch_size=8, lr=3e-3,
                      warmup_iters=5, device="cpu", dtype="float32")
    res = train(model, mcfg, tok, char_data, tmp_path / "run", cfg, progress=False)
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"config.json", "tokenizer.json", "model.safetensors", "best.safetensors", "train_state.pt",
            "metrics.jsonl", "loss.png"} <= names
    recs = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in recs] == list(range(5, 61, 5))
    for r in recs:
        assert {"step", "train_loss", "lr", "tokens_per_sec", "mfu"} <= set(r)
        assert r["tokens_per_sec"] > 0 and 0 < r["mfu"] < 1
    vals = [r["val_loss"] for r in recs if "val_loss" in r]
    assert len(vals) == 3 and vals[-1] < vals[0] < math.log(tok.vocab_size) + 0.5  # it learns
    assert res.step == 60 and res.stop_reason == "max_iters" and res.best_val_loss == min(vals)
    assert res.tokens_seen == 60 * 8 * 16
    # the run dir loads back and reproduces the logged val loss
    run = load_run(tmp_path / "run")
    assert run.training_config["max_iters"] == 60 and run.training_config["data_dir"]
    state = load_train_state(tmp_path / "run")
    assert state["step"] == 60 and state["sampler"]["step"] == 60 and state["best_val_loss"] == min(vals)


def test_best_checkpoint_holds_the_lowest_val_loss_weights(char_data, tmp_path):
    tok = load_tokenizer_of(char_data)
    model, mcfg = _fresh(tok)
    # lr far too high after warmup: val loss gets worse later, so best != last
    cfg = TrainConfig(max_iters=30, eval_interval=5, eval_iters=4, log_interval=5, batch_size=8, lr=0.5,
                      min_lr=0.5, warmup_iters=0, grad_clip=0, device="cpu", dtype="float32")
    try:
        train(model, mcfg, tok, char_data, tmp_path / "run", cfg, progress=False)
    except TrainingDiverged:
        pass
    recs = read_metrics(tmp_path / "run" / "metrics.jsonl")
    vals = {r["step"]: r["val_loss"] for r in recs if r.get("val_loss") is not None}
    best_step = min(vals, key=vals.get)
    from lmlab.training import evaluate
    from lmlab.training.distributed import setup_distributed
    from lmlab.training.precision import resolve_precision
    from lmlab.data import load_split

    best = load_run(tmp_path / "run", weights_name="best.safetensors").model.train()
    loss = evaluate(best, load_split(char_data, "val"), block_size=16, batch_size=8, eval_iters=4,
                    precision=resolve_precision("float32", torch.device("cpu")), ctx=setup_distributed("cpu"))
    assert loss == pytest.approx(vals[best_step], rel=1e-5)


def test_target_loss_stops_early(char_data, tmp_path):
    tok = load_tokenizer_of(char_data)
    model, mcfg = _fresh(tok)
    cfg = TrainConfig(max_iters=500, eval_interval=10, eval_iters=2, batch_size=8, lr=3e-3, warmup_iters=5,
                      target_loss=3.0, device="cpu", dtype="float32")
    res = train(model, mcfg, tok, char_data, tmp_path / "run", cfg, progress=False)
    assert res.stop_reason == "target_loss" and res.step < 500 and res.last_val_loss <= 3.0
    assert load_train_state(tmp_path / "run")["step"] == res.step


def test_threads_setting_applies_during_training_and_is_restored_after(char_data, tmp_path):
    tok = load_tokenizer_of(char_data)
    model, mcfg = _fresh(tok)
    before = torch.get_num_threads()
    seen = []
    cfg = TrainConfig(max_iters=4, eval_interval=2, eval_iters=1, batch_size=4, threads=1, device="cpu",
                      dtype="float32")
    train(model, mcfg, tok, char_data, tmp_path / "run", cfg, progress=False,
          on_eval=lambda record, m: seen.append(torch.get_num_threads()))
    assert seen == [1, 1] and torch.get_num_threads() == before
    with pytest.raises(LmlabError, match="threads must be"):
        TrainConfig(threads=-1)


def test_the_run_dir_records_the_dtype_auto_chose(char_data, tmp_path):
    """`auto` resolves per machine; the saved settings name the dtype that ran, so a resume (or a rerun of the
    saved settings elsewhere) computes in the same precision."""
    from lmlab.training.precision import resolve_precision

    tok = load_tokenizer_of(char_data)
    model, mcfg = _fresh(tok)
    cfg = TrainConfig(max_iters=2, eval_interval=2, eval_iters=1, batch_size=4, device="cpu", dtype="auto")
    train(model, mcfg, tok, char_data, tmp_path / "run", cfg, progress=False)
    expected = resolve_precision("auto", torch.device("cpu"), model_type="gpt").name
    assert load_run(tmp_path / "run").training_config["dtype"] == expected


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(char_data, tmp_path, capsys):
    from lmlab.cli import main

    args = ["train", "--data", str(char_data), "--out", str(tmp_path / "run"), "--n_layer", "1", "--n_head", "2",
            "--n_embd", "32", "--block_size", "16", "--device", "cpu", "--dtype", "float32", "--no-progress",
            "--lr", "1e9", "--min_lr", "0", "--warmup_iters", "0", "--grad_clip", "0", "--weight_decay", "0",
            "--eval_interval", "1", "--eval_iters", "1", "--log_interval", "1", "--max_iters", "50"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lmlab: error: loss became nan") or err.startswith("lmlab: error: loss became inf")
    assert "\n" not in err and "last good checkpoint" in err
    state = load_train_state(tmp_path / "run")
    assert state["step"] == max(r["step"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl"))
    run = load_run(tmp_path / "run")  # the kept weights load (checksum intact) and are finite
    assert all(torch.isfinite(p).all() for p in run.model.parameters())


def test_train_run_layers_preset_file_and_overrides(char_data, tmp_path):
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps({"model": {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 16},
                                    "training": {"max_iters": 4, "lr": 1e-2, "eval_interval": 2}}))
    res = recipes.run(out=tmp_path / "run", data_dir=char_data, config_file=cfg_file,
                      overrides=["--max_iters", "6", "--device", "cpu", "--eval_iters", "1"], progress=False).train
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert res.step == 6 and saved["training"]["lr"] == 1e-2 and saved["model"]["n_layer"] == 1
    assert saved["model"]["vocab_size"] == load_tokenizer_of(char_data).vocab_size
    with pytest.raises(LmlabError, match="already holds a trained run"):
        recipes.run(out=tmp_path / "run", data_dir=char_data, config_file=cfg_file, progress=False)
    # resuming to a larger max_iters continues the same run
    res = train_run(tmp_path / "run", resume=True, overrides={"max_iters": "8"}, progress=False)
    assert res.step == 8 and [r["step"] for r in res.metrics] == [2, 4, 6, 8]
