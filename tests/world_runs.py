"""A small GPT trained on a tiny world, built once and kept in pytest's cache (.pytest_cache/, ignored by git)
under a key made of the sources that determine it (model, training, recipes, data, tokenizer and world code, the settings,
torch's version): any change there retrains it. Shared by the test packages that need a model that has learned
something (editing, attribution, serving); each names its own settings."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

SRC = Path(__file__).resolve().parents[1] / "src" / "lmlab"


def trained_world_run(request, name: str, *, version: str, world_size: str, corpus_files: list[str],
                      prepare_options: dict[str, Any], train: dict[str, Any]) -> dict[str, Path]:
    """{"run_dir", "world_dir", "data_dir"} of the cached fixture `name` (read-only for the tests that use it)."""
    h = hashlib.sha256(version.encode() + repr(sorted(train.items())).encode()
                       + repr((world_size, corpus_files, sorted(prepare_options.items()))).encode())
    for sub in ("models", "training", "data", "tokenization", "world", "recipes"):
        for f in sorted((SRC / sub).rglob("*.py")):
            h.update(f.read_bytes())
    h.update(torch.__version__.encode())
    root = Path(request.config.cache.mkdir(f"lmlab-{name}-{h.hexdigest()[:12]}"))
    if not (root / "done").is_file():
        _build(root, world_size, corpus_files, prepare_options, train)
    return {"run_dir": root / "run", "world_dir": root / "world", "data_dir": root / "data"}


def _build(root: Path, world_size: str, corpus_files: list[str], prepare_options: dict[str, Any],
           train: dict[str, Any]) -> None:
    from lmlab.data import prepare
    import lmlab.recipes as recipes
    from lmlab.world import generate_world

    generate_world(root / "world", seed=0, size=world_size, progress=False)
    prepare([root / "world" / "corpus" / f for f in corpus_files], "bpe", root / "data", split_blank_lines=True,
            progress=False, **prepare_options)
    # One thread while training: on a machine shared by several test runs, two threads contend and run ~10x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        recipes.run(out=root / "run", data_dir=root / "data", overrides=dict(train), overwrite=True, progress=False)
    finally:
        torch.set_num_threads(threads)
    (root / "done").write_text("ok")
