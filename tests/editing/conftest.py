"""Shared fixtures for the editing tests: a small GPT trained on a tiny world, built once.

Training it takes ~2-4 min on a busy 2-core machine, so the trained run is kept in pytest's cache directory
(.pytest_cache/, ignored by git) under a key made of the sources that determine it (model, training, data,
tokenizer and world code); any change there retrains it. Tests must treat the run dir as read-only (edits write
new run dirs under tmp_path).
"""

from __future__ import annotations

import pytest

from ..world_runs import trained_world_run

# Enough training that the model knows the tiny world's facts (before any edit, P(true) > P(new) on ~97% of the
# edit prompts), so "the edit flips the fact" means something. No weight decay: it slows memorisation.
TRAIN = dict(n_layer=4, n_head=4, n_embd=64, block_size=64, max_iters=1000, eval_interval=1000, eval_iters=2,
             batch_size=16, warmup_iters=50, lr=3e-3, weight_decay=0.0, device="cpu", dtype="float32", seed=1)


@pytest.fixture(scope="session")
def world_run(request) -> dict:
    """{"run_dir", "world_dir", "data_dir"} of the trained fixture (read-only!)."""
    # vocab 1024 (as the main job): every entity name is one token, so P(object) is one token's probability.
    return trained_world_run(request, "editing", version="2", world_size="100KB",
                             corpus_files=["facts.txt", "temporal.txt"],
                             prepare_options=dict(vocab_size=1024, numbers="digits", dedup="none"), train=TRAIN)


@pytest.fixture(scope="session")
def loaded(world_run):
    """The fixture run loaded once (tests that edit must use in_place=False or restore)."""
    from lmlab.checkpoint import load_run

    return load_run(world_run["run_dir"])


@pytest.fixture(scope="session")
def world_requests(world_run):
    from lmlab.editing import load_requests

    return load_requests(world_run["world_dir"] / "edits.jsonl")


@pytest.fixture(scope="session")
def stats(loaded, world_run, tmp_path_factory):
    """Key statistics over 20k training tokens, cached in a session temp dir."""
    from lmlab.editing import SecondMoments

    return SecondMoments(loaded.model, loaded.tokenizer, world_run["data_dir"], n_tokens=20_000,
                         cache_dir=tmp_path_factory.mktemp("edit-stats"))


@pytest.fixture(autouse=True)
def _editing_uses_one_torch_thread(one_torch_thread):
    """Editing tests run many tiny forward/backward passes (see tests/conftest.py)."""
    yield
