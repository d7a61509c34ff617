"""An imported Hugging Face GPT-2 run dir (random weights, no download) can be edited from the CLI, with the key
statistics read from a text file (such a run dir records no training data). Random weights know no facts, so
only the plumbing is checked here; edit quality is tested on the trained world model."""

import json

import pytest
import torch

transformers = pytest.importorskip("transformers")
from ..hf_gpt2_files import save_random_hf_gpt2  # noqa: E402

from lmlab.checkpoint import load_run  # noqa: E402
from lmlab.cli import main  # noqa: E402
from lmlab.hub import import_hf_gpt2  # noqa: E402

SENTENCES = ["The quick brown fox jumps over the lazy dog.", "Paris is the capital of France.",
             "Berlin is the capital of Germany.", "Rome is the capital of Italy."] * 5


def test_edit_an_imported_gpt2(tmp_path, capsys):
    d = tmp_path / "hf"
    d.mkdir()
    save_random_hf_gpt2(d, SENTENCES, n_layer=3, n_embd=32)
    run_dir = import_hf_gpt2(d, tmp_path / "run")
    text = tmp_path / "text.txt"
    text.write_text(" ".join(SENTENCES))
    args = ["edit", str(run_dir), "--prompt", "The capital of {} is", "--subject", "France", "--target", "Rome",
            "--target-true", "Paris", "--layers", "1", "--out", str(tmp_path / "edited"), "--quiet",
            "--cache-dir", str(tmp_path / "cache")]
    assert main(args) == 2  # no training data recorded: the error says to pass --stats-data
    assert "--stats-data" in capsys.readouterr().err
    assert main(args + ["--stats-data", str(text)]) == 0
    edited, source = load_run(tmp_path / "edited"), load_run(run_dir)
    assert edited.model_type == source.model_type and edited.tokenizer.fingerprint == source.tokenizer.fingerprint
    new, old = edited.model.state_dict(), source.model.state_dict()
    assert [n for n in new if not torch.equal(new[n], old[n])] == ["blocks.1.mlp.c_proj.weight"]
    log = json.loads((tmp_path / "edited" / "edits.jsonl").read_text())
    assert log["method"] == "rome" and log["request"]["target_new"] == "Rome"
    assert list((tmp_path / "cache").glob("mom2-*-L1-n100000.safetensors"))  # statistics cached where asked
