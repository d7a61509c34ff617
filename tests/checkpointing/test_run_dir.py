"""Run-dir save/load: round trips, atomic files, and the exact errors a damaged or mismatched run dir gives."""

import json

import pytest
import torch

from lmlab.checkpoint import (PREV_WEIGHTS_NAME, clear_checkpoints, is_run_dir, load_checkpoint_weights, load_run,
                              load_train_state, read_run_config, run_data_dir, save_checkpoint, save_run,
                              save_train_state, with_data_dir)
from lmlab.errors import LmlabError
from lmlab.models import GPT, GPTConfig
from lmlab.tokenization.char import CharTokenizer

TEXT = "the cat sat on the mat. a dog ate the log!"


@pytest.fixture
def tok():
    return CharTokenizer.train([TEXT], byte_fallback=False)


def make_model(tok, **kw):
    torch.manual_seed(0)
    cfg = GPTConfig(n_layer=2, n_head=2, n_embd=16, block_size=16, vocab_size=tok.vocab_size, **kw)
    return GPT(cfg).eval(), cfg


@pytest.mark.parametrize("kw", [{}, {"tie_embeddings": False, "pos_embedding": "rotary", "bias": False}])
def test_round_trip_gives_same_logits(tmp_path, tok, kw):
    model, cfg = make_model(tok, **kw)
    save_run(tmp_path / "run", model, tok, model_config=cfg, training_config={"lr": 1e-3, "data_dir": "x"})
    assert is_run_dir(tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.json", "model.safetensors",
                                                                      "tokenizer.json"]  # no temp files left
    run = load_run(tmp_path / "run")
    assert run.model_type == "gpt" and run.model_config == cfg and run.training_config["lr"] == 1e-3
    assert not run.model.training and run.tokenizer.fingerprint == tok.fingerprint
    idx = torch.tensor([tok.encode("the cat")])
    torch.testing.assert_close(run.model(idx)[0], model(idx)[0], atol=0, rtol=0)
    if cfg.tie_embeddings:
        assert run.model.lm_head.weight is run.model.wte.weight  # still tied after loading


def test_config_json_contents(tmp_path, tok):
    model, cfg = make_model(tok)
    save_run(tmp_path, model, tok, model_config=cfg)
    c = json.loads((tmp_path / "config.json").read_text())
    assert set(c) == {"lmlab_version", "model_type", "model", "training", "tokenizer_fingerprint"}
    assert c["model"]["n_embd"] == 16 and c["training"] is None and c["tokenizer_fingerprint"] == tok.fingerprint


def test_not_a_run_dir(tmp_path):
    with pytest.raises(LmlabError, match="is not a run dir \\(no config.json\\).*lmlab train"):
        load_run(tmp_path)
    with pytest.raises(LmlabError, match="does not exist"):
        load_run(tmp_path / "nope")


def test_replaced_tokenizer_is_refused(tmp_path, tok):
    model, cfg = make_model(tok)
    save_run(tmp_path, model, tok, model_config=cfg)
    CharTokenizer.train(["completely different letters xyz"], byte_fallback=False).save(tmp_path / "tokenizer.json")
    with pytest.raises(LmlabError, match="fingerprint"):
        load_run(tmp_path)


def test_shape_mismatch_names_the_tensor(tmp_path, tok):
    model, cfg = make_model(tok)
    save_run(tmp_path, model, tok, model_config=cfg)
    c = json.loads((tmp_path / "config.json").read_text())
    c["model"]["block_size"] = 32
    (tmp_path / "config.json").write_text(json.dumps(c))
    with pytest.raises(LmlabError, match=r"tensor wpe.weight: expected shape \[32, 16\].*found \[16, 16\]"):
        load_run(tmp_path)


def test_unknown_config_key_is_refused(tmp_path, tok):
    model, cfg = make_model(tok)
    save_run(tmp_path, model, tok, model_config=cfg)
    c = json.loads((tmp_path / "config.json").read_text())
    c["model"]["n_layers"] = 2
    (tmp_path / "config.json").write_text(json.dumps(c))
    with pytest.raises(LmlabError, match="unknown GPT config key.*n_layers"):
        read_run_config(tmp_path) and load_run(tmp_path)


def test_truncated_and_corrupted_weights_are_detected(tmp_path, tok):
    model, cfg = make_model(tok)
    save_run(tmp_path, model, tok, model_config=cfg)
    path = tmp_path / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(LmlabError, match="corrupted or truncated"):
        load_run(tmp_path)
    flipped = bytearray(data)
    flipped[-5] ^= 0xFF  # one byte of the last tensor's data
    path.write_bytes(bytes(flipped))
    with pytest.raises(LmlabError, match="checksum"):
        load_run(tmp_path)


def test_train_state_round_trip_and_damaged_file(tmp_path):
    assert load_train_state(tmp_path) is None
    state = {"step": 7, "lr": 1e-3, "opt": {"m": torch.ones(3)}, "rng": [torch.get_rng_state()], "name": "x"}
    save_train_state(tmp_path, state)
    back = load_train_state(tmp_path)
    assert back["step"] == 7 and torch.equal(back["opt"]["m"], torch.ones(3))
    (tmp_path / "train_state.pt").write_bytes(b"not a zip")
    with pytest.raises(LmlabError, match="damaged"):
        load_train_state(tmp_path)


# --- untrusted run dirs: refused before anything big is allocated ------------------------------------------------
def _write_config(run, **model_changes):
    cfg = json.loads((run / "config.json").read_text())
    cfg["model"].update(model_changes)
    (run / "config.json").write_text(json.dumps(cfg))


@pytest.mark.parametrize("change, message", [
    ({"n_layer": 10**9}, "n_layer=1000000000 is larger than any model lmlab can build"),
    ({"n_embd": 10**9, "n_head": 1}, "n_embd=1000000000 is larger than any model"),
    ({"vocab_size": 1e9}, "vocab_size must be a positive integer"),
    # Within the size limits but not the model the weights file holds: caught from the header, on the meta device.
    ({"n_embd": 1 << 20, "n_head": 1, "vocab_size": 1 << 20}, "does not match config.json"),
])
def test_hostile_config_is_refused_without_allocating(tmp_path, tok, change, message):
    save_run(tmp_path / "run", make_model(tok)[0], tok, model_config=make_model(tok)[1])
    _write_config(tmp_path / "run", **change)
    with pytest.raises(LmlabError, match=message):
        load_run(tmp_path / "run")


def _sparse_safetensors(path, shapes: dict[str, list[int]]) -> None:
    """A well-formed safetensors file declaring float32 tensors of `shapes`, its data a hole (sparse file): the
    header is honest about sizes the disk does not hold."""
    header, offset = {}, 0
    for name, shape in shapes.items():
        n = 4 * int(torch.tensor(shape).prod())
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little") + raw)
        f.truncate(8 + len(raw) + offset)


def test_header_declaring_huge_tensors_is_refused_before_reading(tmp_path, tok):
    save_run(tmp_path / "run", make_model(tok)[0], tok, model_config=make_model(tok)[1])
    weights = tmp_path / "run" / "model.safetensors"
    _sparse_safetensors(weights, {"wte.weight": [65536, 65536]})  # 16 GiB
    with pytest.raises(LmlabError, match=r"tensor wte.weight: expected shape \[.*\] from config.json \(gpt\), "
                                         r"found \[65536, 65536\]"):
        load_run(tmp_path / "run")


def test_model_larger_than_memory_is_refused(tmp_path, tok):
    """A config and header that agree on a model bigger than this machine's memory: an error, not a MemoryError
    (or the OOM killer) halfway through loading."""
    save_run(tmp_path / "run", make_model(tok)[0], tok, model_config=make_model(tok)[1])
    _write_config(tmp_path / "run", n_layer=1, n_head=1, n_embd=8192, vocab_size=1 << 22, block_size=8)
    cfg = GPTConfig(**json.loads((tmp_path / "run" / "config.json").read_text())["model"])
    with torch.device("meta"):
        skeleton = GPT(cfg)
    owned = {n for n, _ in skeleton.named_parameters()} | {n for n, _ in skeleton.named_buffers()}
    _sparse_safetensors(tmp_path / "run" / "model.safetensors",
                        {n: list(t.shape) for n, t in skeleton.state_dict().items() if n in owned})
    with pytest.raises(LmlabError, match=r"needs 1\d\d\.\d GiB for its weights but this machine has"):
        load_run(tmp_path / "run")


def test_is_run_dir_and_the_recorded_data_dir(tmp_path, tok):
    model, cfg = make_model(tok)
    assert not is_run_dir(tmp_path / "nothing") and not is_run_dir(tmp_path)
    hf = tmp_path / "hf"  # a Hugging Face directory (e.g. an export) is not a run
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_embd": 16}))
    assert not is_run_dir(hf)
    (hf / "config.json").write_text("{damaged")  # a damaged run config still marks a run (never overwritten)
    assert is_run_dir(hf)
    save_run(tmp_path / "run", model, tok, model_config=cfg, training_config={"data_dir": str(tmp_path / "d")})
    run = load_run(tmp_path / "run")
    assert is_run_dir(tmp_path / "run")
    assert run_data_dir(run) == run_data_dir(tmp_path / "run") == run_data_dir(run.training_config) == tmp_path / "d"
    save_run(tmp_path / "bare", model, tok, model_config=cfg)
    assert run_data_dir(tmp_path / "bare") is None and run_data_dir(None) is None
    with pytest.raises(LmlabError, match="bare records no training data dir; pass --data DATA_DIR"):
        run_data_dir(tmp_path / "bare", required="--data DATA_DIR")
    assert run_data_dir(with_data_dir({"lr": 1.0}, tmp_path / "d")) == (tmp_path / "d").resolve()


def test_a_crash_between_the_two_checkpoint_files_is_recovered(tmp_path, tok, monkeypatch):
    """save_checkpoint keeps the previous weights until the new train_state.pt is written: killed in between, the
    run dir still holds a train state and the weights it belongs to."""
    import lmlab.checkpoint as checkpoint

    model, cfg = make_model(tok)
    info = dict(model=model, tokenizer=tok, model_type="gpt", model_config=cfg, training_config=None)
    save_checkpoint(tmp_path, {"step": 1}, **info)
    first = {n: t.clone() for n, t in model.state_dict().items()}
    assert load_train_state(tmp_path)["step"] == 1 and not (tmp_path / PREV_WEIGHTS_NAME).exists()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "save_train_state", killed)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, {"step": 2}, **info)  # new weights written, train_state.pt not
    monkeypatch.undo()
    fresh, _ = make_model(tok)
    state = load_train_state(tmp_path)
    assert state["step"] == 1
    assert load_checkpoint_weights(tmp_path, fresh, state).name == PREV_WEIGHTS_NAME
    assert all(torch.equal(t, first[n]) for n, t in fresh.state_dict().items())
    save_checkpoint(tmp_path, {"step": 2}, **info)  # the next save commits normally
    assert load_checkpoint_weights(tmp_path, fresh, load_train_state(tmp_path)).name == "model.safetensors"
    (tmp_path / "model.safetensors").write_bytes((tmp_path / "model.safetensors").read_bytes()[:-1] + b"\0")
    with pytest.raises(LmlabError, match="is not the file train_state.pt was saved with"):
        load_checkpoint_weights(tmp_path, fresh, load_train_state(tmp_path))
    clear_checkpoints(tmp_path)
    assert not (tmp_path / "model.safetensors").exists() and not (tmp_path / "train_state.pt").exists()
