"""HF GPT-2 interop: a random transformers GPT-2 (no download) imported into a run dir gives the same logits and
greedy generations; the export loads back into transformers with the same logits."""

import json

import pytest
import torch

transformers = pytest.importorskip("transformers")
from ..hf_gpt2_files import save_random_hf_gpt2  # noqa: E402

from lmlab.checkpoint import load_run, save_run  # noqa: E402
from lmlab.errors import LmlabError  # noqa: E402
from lmlab.generation import generate  # noqa: E402
from lmlab.hub import export_hf_gpt2, import_hf_gpt2  # noqa: E402
from lmlab.models import GPT, GPTConfig  # noqa: E402
from lmlab.tokenization import CharTokenizer  # noqa: E402

SENTENCES = ["The quick brown fox jumps over the lazy dog.", "A cat sat on the mat, and the dog barked.",
             "Paris is the capital of France. Berlin is the capital of Germany."] * 5


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    """A small random GPT-2 saved by transformers, with a byte-level BPE vocab.json/merges.txt beside it."""
    d = tmp_path_factory.mktemp("hf")
    return d, save_random_hf_gpt2(d, SENTENCES, n_layer=2, n_embd=64)


def our_ids(run, text):
    return torch.tensor([run.tokenizer.encode(text)])


def test_import_matches_hf_logits_and_greedy(hf_dir, tmp_path):
    d, hf = hf_dir
    run_dir = import_hf_gpt2(d, tmp_path / "run")
    run = load_run(run_dir)
    assert run.model_config.n_layer == 2 and run.model_config.block_size == 64
    ids = our_ids(run, "The capital of France is")
    with torch.no_grad():
        theirs = hf(ids).logits
    ours, _ = run.model(ids)
    assert (ours - theirs).abs().max().item() <= 1e-4
    for prompt in ("The quick brown", "A cat"):
        ids = our_ids(run, prompt)
        with torch.no_grad():
            hf_out = hf.generate(ids, do_sample=False, max_new_tokens=20, pad_token_id=run.tokenizer.eos_id)
        out = generate(run.model, run.tokenizer, prompt, max_new_tokens=20, temperature=0)[0]
        assert out.tokens == hf_out[0, ids.shape[1]:].tolist()


@pytest.mark.parametrize("activation,ours", [("gelu", "gelu_exact"), ("relu", "relu"), ("silu", "silu")])
def test_import_maps_other_activations(tmp_path, activation, ours):
    hf = save_random_hf_gpt2(tmp_path, SENTENCES, n_layer=1, n_embd=32, activation_function=activation)
    run = load_run(import_hf_gpt2(tmp_path, tmp_path / "run"))
    assert run.model_config.activation == ours
    ids = our_ids(run, "The capital of France is")
    with torch.no_grad():
        assert (run.model(ids)[0] - hf(ids).logits).abs().max().item() <= 1e-4


def test_import_from_pytorch_bin(hf_dir, tmp_path):
    d, hf = hf_dir
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("config.json", "vocab.json", "merges.txt"):
        (bin_dir / name).write_bytes((d / name).read_bytes())
    torch.save(hf.state_dict(), bin_dir / "pytorch_model.bin")
    run = load_run(import_hf_gpt2(bin_dir, tmp_path / "run"))
    ids = our_ids(run, "Berlin is")
    with torch.no_grad():
        assert (run.model(ids)[0] - hf(ids).logits).abs().max().item() <= 1e-4


class _RunsCode:
    """Unpickling this calls os.system: what a malicious pytorch_model.bin does."""

    def __reduce__(self):
        import os

        return os.system, ("touch PWNED",)


def test_pickle_that_would_run_code_is_refused_in_one_line(hf_dir, tmp_path, monkeypatch):
    d, _ = hf_dir
    evil = tmp_path / "evil"
    evil.mkdir()
    for name in ("config.json", "vocab.json", "merges.txt"):
        (evil / name).write_bytes((d / name).read_bytes())
    torch.save({"wte.weight": _RunsCode()}, evil / "pytorch_model.bin")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LmlabError, match="refuses to unpickle"):
        import_hf_gpt2(evil, tmp_path / "run")
    assert not (tmp_path / "PWNED").exists()


def test_export_round_trips_through_transformers(hf_dir, tmp_path):
    d, hf = hf_dir
    run_dir = import_hf_gpt2(d, tmp_path / "run")
    out = export_hf_gpt2(run_dir, tmp_path / "exported")
    assert {p.name for p in out.iterdir()} == {"config.json", "model.safetensors", "vocab.json", "merges.txt",
                                               "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}
    back = transformers.GPT2LMHeadModel.from_pretrained(out).eval()
    ids = torch.tensor([[5, 17, 42, 99, 123, 7]])
    with torch.no_grad():
        assert (back(ids).logits - hf(ids).logits).abs().max().item() <= 1e-5
    assert (out / "vocab.json").read_text() and json.loads((out / "vocab.json").read_text()) == \
        json.loads((d / "vocab.json").read_text())
    # re-importing the export gives the same tokenizer fingerprint
    assert load_run(import_hf_gpt2(out, tmp_path / "again")).tokenizer.fingerprint == \
        load_run(run_dir).tokenizer.fingerprint


def test_export_hf_gpt2_refuses_rotary_runs_and_points_to_export_hf(tmp_path):
    tok = CharTokenizer.train(["abc"], byte_fallback=False)
    model = GPT(GPTConfig(n_layer=1, n_head=1, n_embd=8, block_size=8, vocab_size=tok.vocab_size,
                          pos_embedding="rotary"))
    save_run(tmp_path / "run", model, tok, model_config=model.config)
    with pytest.raises(LmlabError, match="pos_embedding='rotary' does not fit gpt2.*`lmlab export hf`"):
        export_hf_gpt2(tmp_path / "run", tmp_path / "out")


def test_import_errors(tmp_path, hf_dir):
    with pytest.raises(LmlabError, match="does not exist"):
        import_hf_gpt2(tmp_path / "missing", tmp_path / "run")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LmlabError, match="no config.json"):
        import_hf_gpt2(tmp_path / "empty", tmp_path / "run")
    d, _ = hf_dir
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("config.json", "vocab.json", "merges.txt"):
        (partial / name).write_bytes((d / name).read_bytes())
    with pytest.raises(LmlabError, match="neither model.safetensors nor pytorch_model.bin"):
        import_hf_gpt2(partial, tmp_path / "run")


def test_cli_import_then_export(hf_dir, tmp_path, capsys):
    from lmlab.cli import main
    d, _ = hf_dir
    assert main(["import", "hf-gpt2", str(d), "--out", str(tmp_path / "run")]) == 0
    assert main(["sample", str(tmp_path / "run"), "--prompt", "The", "--max-new-tokens", "3", "--seed", "0"]) == 0
    assert main(["export", "hf-gpt2", str(tmp_path / "run"), "--out", str(tmp_path / "hf")]) == 0
    assert (tmp_path / "hf" / "model.safetensors").is_file()
    assert main(["import", "hf-gpt2", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2
    assert "does not exist" in capsys.readouterr().err
