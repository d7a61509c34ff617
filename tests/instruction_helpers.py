"""Helpers of the instruction-tuning tests (tests/world, tests/training, tests/evaluation, tests/serving): a 50 KB
world with its instruction set, a tiny BPE GPT pre-trained on it for a few steps (the "base" run), and a run tuned
from it until it answers a handful of instructions word for word. Each is built once per test session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

# One layer, 32 wide: a few seconds of training on a busy 2-core CPU. block_size 128 fits every world example.
BASE = dict(n_layer=1, n_head=2, n_embd=32, block_size=128, max_iters=20, eval_interval=20, eval_iters=2,
            batch_size=8, device="cpu", dtype="float32")
# Enough steps at a large lr to learn EXAMPLES by heart (the tests check exact answers).
TUNE = dict(max_iters=150, eval_interval=150, eval_iters=2, batch_size=8, lr=3e-3, min_lr=3e-4, warmup_iters=5)
EXAMPLES = [
    {"instruction": "What is 2 plus 2?", "response": "4"},
    {"instruction": "Which colour is the sky?", "response": "blue"},
    {"instruction": "Write the word backwards.", "input": "cat", "response": "tac"},
    {"instruction": "Is this review positive or negative?", "input": "It broke after two days.",
     "response": "negative"},
]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _one_thread(fn):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: a second spinning thread only slows a shared machine down
    try:
        return fn()
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def instruction_world(tmp_path_factory) -> dict:
    """{"world", "data", "base", "instructions"}: paths of a 50 KB world, its BPE shards, a base run trained on them
    (read-only) and the world's instruction set."""
    from lmlab.data import prepare
    import lmlab.recipes as recipes
    from lmlab.world import generate_world, instruction_set

    root = tmp_path_factory.mktemp("instruct")
    generate_world(root / "world", seed=0, size="50KB", progress=False)
    prepare([root / "world" / "corpus"], "bpe", root / "data", vocab_size=512, numbers="digits",
            split_blank_lines=True, dedup="none", progress=False)
    _one_thread(lambda: recipes.run(out=root / "base", data_dir=root / "data", overrides=dict(BASE), progress=False))
    instruction_set(root / "world", root / "instructions")
    return {"world": root / "world", "data": root / "data", "base": root / "base",
            "instructions": root / "instructions"}


@pytest.fixture(scope="session")
def tuned_run(instruction_world, tmp_path_factory) -> Path:
    """A run tuned from the base run on EXAMPLES (validated on them too) until it answers them exactly."""
    from lmlab.recipes import finetune

    root = tmp_path_factory.mktemp("tuned")
    data = write_jsonl(root / "examples.jsonl", EXAMPLES)
    _one_thread(lambda: finetune(root / "run", run_dir=instruction_world["base"], instructions=data, val_data=data,
                                 overrides=dict(TUNE), progress=False))
    return root / "run"
