"""Fixtures for the attribution tests: a tiny world, its shards, and a small GPT trained on them until it repeats
training text, built once and kept in pytest's cache (.pytest_cache/, ignored by git) under a key made of the
sources that determine it. Tests that index shards work on a copy (`indexed_data`), never on the cached dir."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ..world_runs import trained_world_run

TRAIN = dict(n_layer=2, n_head=2, n_embd=64, block_size=64, max_iters=300, eval_interval=300, eval_iters=2,
             batch_size=16, warmup_iters=20, lr=3e-3, weight_decay=0.0, device="cpu", dtype="float32", seed=1)


@pytest.fixture(scope="session")
def world_run(request) -> dict:
    """{"run_dir", "data_dir"} of the trained fixture (read-only: the run records this data dir)."""
    return trained_world_run(request, "attribution", version="1", world_size="50KB", corpus_files=["facts.txt"],
                             prepare_options=dict(vocab_size=300, workers=1), train=TRAIN)


@pytest.fixture(scope="session")
def indexed_data(world_run, tmp_path_factory) -> Path:
    """A copy of the fixture's shards with the train split indexed (treat as read-only)."""
    from lmlab.attribution import index

    path = tmp_path_factory.mktemp("attr") / "data"
    shutil.copytree(world_run["data_dir"], path)
    index(path)
    return path


@pytest.fixture(scope="session")
def index_of(indexed_data):
    from lmlab.attribution import SuffixIndex

    return SuffixIndex.open(indexed_data)
