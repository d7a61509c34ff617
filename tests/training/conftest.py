"""Shared fixtures: a small char-level shard directory built with the real `lmlab.data.prepare`."""

import random
import sys
from pathlib import Path

import pytest

# Model/training settings small enough that a step takes milliseconds on a 2-core CPU.
TINY = ["--n_layer", "1", "--n_head", "2", "--n_embd", "32", "--block_size", "16", "--batch_size", "4",
        "--dtype", "float32", "--device", "cpu"]


def _text(seed: int, n_sentences: int) -> str:
    rng = random.Random(seed)
    subjects = ["the cat", "a dog", "my friend", "the old king", "her brother", "a small bird"]
    verbs = ["sees", "likes", "follows", "finds", "helps", "paints"]
    objects = ["the river", "a red apple", "the moon", "an open door", "the tall tree", "a quiet town"]
    paragraphs = []
    for _ in range(n_sentences // 4):
        paragraphs.append(" ".join(f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}."
                                   for _ in range(4)))
    return "\n\n".join(paragraphs) + "\n"


def make_char_data(root: Path, *, seed: int = 0, n_sentences: int = 2400, extra: str = "") -> Path:
    from lmlab.data import prepare

    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.txt").write_text(_text(seed, n_sentences) + extra)
    prepare([root / "corpus.txt"], "char", root / "data", split_blank_lines=True, progress=False, workers=1)
    return root / "data"


@pytest.fixture(scope="session")
def char_data(tmp_path_factory) -> Path:
    """~60 KB of simple sentences as char-level shards (train + val)."""
    return make_char_data(tmp_path_factory.mktemp("chardata"))


@pytest.fixture(scope="session")
def python_cmd() -> list[str]:
    return [sys.executable, "-m", "lmlab"]
