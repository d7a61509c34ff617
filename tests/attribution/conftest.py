"""Fixtures for the attribution tests: a tiny world, its shards, and a small GPT trained on them until it repeats
training text, built once and kept in pytest's cache (.pytest_cache/, ignored by git) under a key made of the
sources that determine it. Tests that index shards work on a copy (`indexed_data`), never on the cached dir."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import torch

SRC = Path(__file__).resolve().parents[2] / "src" / "lmlab"
FIXTURE_VERSION = "1"
TRAIN = dict(n_layer=2, n_head=2, n_embd=64, block_size=64, max_iters=300, eval_interval=300, eval_iters=2,
             batch_size=16, warmup_iters=20, lr=3e-3, weight_decay=0.0, device="cpu", dtype="float32", seed=1)


def _source_key() -> str:
    h = hashlib.sha256(FIXTURE_VERSION.encode() + repr(sorted(TRAIN.items())).encode())
    for sub in ("models", "training", "data", "tokenization", "world"):
        for f in sorted((SRC / sub).rglob("*.py")):
            h.update(f.read_bytes())
    h.update(torch.__version__.encode())
    return h.hexdigest()[:12]


def _build(root: Path) -> None:
    from lmlab.data import prepare
    from lmlab.training import train_run
    from lmlab.world import generate_world

    generate_world(root / "world", seed=0, size="50KB", progress=False)
    prepare([root / "world" / "corpus" / "facts.txt"], "bpe", root / "data", vocab_size=300,
            split_blank_lines=True, progress=False, workers=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls: two threads on a shared 2-core machine only contend
    try:
        train_run(root / "run", data_dir=root / "data", overrides=dict(TRAIN), overwrite=True, progress=False)
    finally:
        torch.set_num_threads(threads)
    (root / "done").write_text("ok")


@pytest.fixture(scope="session")
def world_run(request) -> dict:
    """{"run_dir", "data_dir"} of the trained fixture (read-only: the run records this data dir)."""
    root = Path(request.config.cache.mkdir(f"lmlab-attribution-{_source_key()}"))
    if not (root / "done").is_file():
        _build(root)
    return {"run_dir": root / "run", "data_dir": root / "data"}


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
