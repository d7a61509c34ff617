"""Fixtures: a tiny random char-level GPT (and its run dir), whose scores tests recompute from the model's own
forward pass; a small world dir; the shared data dir."""

from pathlib import Path

import pytest
import torch

from lmlab.checkpoint import save_run
from lmlab.models import GPT, GPTConfig
from lmlab.tokenization import CharTokenizer

DATA_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def random_model():
    """An untrained char GPT (block_size 32): its scores are arbitrary, so tests compare them to the model's own
    forward pass."""
    tok = CharTokenizer.train(["abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.,:?=+-\n0123456789"],
                              byte_fallback=False)
    torch.manual_seed(1)
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=32, vocab_size=tok.vocab_size))
    return model.eval(), tok


@pytest.fixture(scope="session")
def world_dir(tmp_path_factory):
    from lmlab.world import generate_world

    path = tmp_path_factory.mktemp("world") / "w"
    generate_world(path, seed=0, size="100KB")
    return path


@pytest.fixture
def shared_data():
    if not DATA_DIR.is_dir():
        pytest.skip(f"real data dir {DATA_DIR} is absent (it sits beside the repository on the dev machines)")
    return DATA_DIR


@pytest.fixture(scope="session")
def random_run(random_model, tmp_path_factory):
    """random_model saved as a run dir (what `lmlab eval tasks` reads)."""
    model, tok = random_model
    path = tmp_path_factory.mktemp("runs") / "random"
    save_run(path, model, tok, model_config=model.config)
    return path
