"""Inspection on an imported Hugging Face GPT-2 run dir (a small random transformers model, no download): hook
activations equal transformers' hidden states, and every verb runs on it."""


import pytest
import torch

transformers = pytest.importorskip("transformers")
from ..hf_gpt2_files import save_random_hf_gpt2  # noqa: E402

from lmlab.checkpoint import load_run  # noqa: E402
from lmlab.cli import main  # noqa: E402
from lmlab.hub import import_hf_gpt2  # noqa: E402
from lmlab.inspection import causal_trace, logit_lens, run_with_cache, top_memories  # noqa: E402

from .conftest import TEXTS  # noqa: E402


@pytest.fixture(scope="module")
def hf_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("hf")
    hf = save_random_hf_gpt2(d, TEXTS, n_layer=3, n_embd=32)
    return import_hf_gpt2(d, tmp_path_factory.mktemp("runs") / "gpt2"), hf


def test_hooks_match_transformers_hidden_states(hf_run):
    run_dir, hf = hf_run
    run = load_run(run_dir)
    ids = run.tokenizer.encode("The capital of Spain is Madrid")
    logits, cache = run_with_cache(run.model, ids, lambda n: n.endswith("resid_post") or n == "final_norm")
    with torch.no_grad():
        out = hf(torch.tensor([ids]), output_hidden_states=True)
    hs = out.hidden_states  # embeddings, then each block's output; the last one has ln_f applied
    for l in range(2):
        assert torch.allclose(cache[f"blocks.{l}.resid_post"], hs[l + 1], atol=1e-5)
    assert torch.allclose(cache["final_norm"], hs[3], atol=1e-5)
    assert torch.allclose(logits, out.logits, atol=1e-4)


def test_every_analysis_runs_on_imported_gpt2(hf_run, tmp_path, capsys):
    run_dir, _ = hf_run
    run = load_run(run_dir)
    tr = causal_trace(run.model, run.tokenizer, "The capital of Spain is", "Spain", "Madrid", samples=3)
    assert tr.scores["mlp"].shape == (3, len(tr.tokens)) and tr.window == 1
    assert logit_lens(run.model, run.tokenizer, "The capital of", top_k=2)["stages"][-1]["stage"] == "layer 2"
    assert len(top_memories(run.model, run.tokenizer, "The capital", top_k=3)["layers"]) == 3
    assert main(["locate", str(run_dir), "--prompt", "Alice plays the violin", "--subject", "Alice",
                 "--out", str(tmp_path), "--samples", "2"]) == 0
    assert "causal trace" in capsys.readouterr().out
    assert main(["inspect", "attention", str(run_dir), "--prompt", "Bob plays the lute",
                 "--out", str(tmp_path / "a.png")]) == 0
    assert (tmp_path / "a.png").is_file()
