"""Batch samplers over a 1-D token array: random windows for training, sequential windows for evaluation.

Both return CPU int64 tensors `x, y` of shape (batch_size, block_size) where `y` is `x` shifted left by one token
(each row comes from one window of block_size + 1 consecutive tokens). Moving to a device / pinning memory is the
trainer's job.

Distributed training: every rank builds the sampler with the same seed and its own `rank`; per step the global
batch is batch_size × world_size windows and rank r takes rows [r·B, (r+1)·B). So 2 ranks × batch B see exactly
the windows one process with batch 2B sees, and a run is reproducible whatever the number of ranks.

Resuming: `state_dict()` is a small dict of ints; `load_state_dict()` on a fresh sampler continues with exactly
the batches the saved one would have produced next.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from lmlab.errors import LmlabError

if TYPE_CHECKING:
    import torch


def _check(tokens: np.ndarray, block_size: int, batch_size: int, rank: int, world_size: int) -> None:
    if block_size < 1 or batch_size < 1:
        raise LmlabError(f"block_size and batch_size must be ≥ 1 (got {block_size}, {batch_size})")
    if world_size < 1 or not 0 <= rank < world_size:
        raise LmlabError(f"rank must be in [0, world_size) (got rank={rank}, world_size={world_size})")
    if len(tokens) < block_size + 1:
        raise LmlabError(f"only {len(tokens)} tokens, but one window needs block_size + 1 = {block_size + 1}; "
                         "use a smaller block_size or more data")


def _windows(tokens: np.ndarray, starts: np.ndarray, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gather rows tokens[s : s + block_size + 1] for each start and split into (x, y) int64 tensors."""
    import torch  # here, not at module top: tokenizing worker processes import lmlab.data and never need torch

    rows = tokens[starts[:, None] + np.arange(block_size + 1)].astype(np.int64)
    return torch.from_numpy(rows[:, :-1].copy()), torch.from_numpy(rows[:, 1:].copy())


class RandomWindowSampler:
    """Uniformly random windows (with replacement), for training.

    Step k's window starts come from a generator seeded by (seed, k) alone, so the stream needs no hidden RNG
    state: resuming means restoring k. Window starts range over every position 0 .. len(tokens) - block_size - 1.
    """

    def __init__(self, tokens: np.ndarray, block_size: int, batch_size: int, *, seed: int = 0,
                 rank: int = 0, world_size: int = 1):
        _check(tokens, block_size, batch_size, rank, world_size)
        self.tokens, self.block_size, self.batch_size = tokens, block_size, batch_size
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.step = 0

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next (x, y) pair, each (batch_size, block_size) int64."""
        rng = np.random.default_rng([self.seed, self.step])
        n_starts = len(self.tokens) - self.block_size
        starts = rng.integers(0, n_starts, size=self.batch_size * self.world_size)
        mine = starts[self.rank * self.batch_size:(self.rank + 1) * self.batch_size]
        self.step += 1
        return _windows(self.tokens, mine, self.block_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            yield self.next_batch()

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "random", "seed": self.seed, "step": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind") != "random":
            raise LmlabError(f"sampler state is of kind {state.get('kind')!r}, expected 'random'")
        self.seed, self.step = int(state["seed"]), int(state["step"])


class SequentialWindowSampler:
    """Non-overlapping windows in order, for evaluation: window i covers tokens[i·block_size : (i+1)·block_size + 1],
    so every token after the first is predicted exactly once (the last (len - 1) mod block_size tokens, fewer than
    one window, are left out).

    Batches hold batch_size × world_size consecutive windows, rank r taking its rows as in `RandomWindowSampler`;
    the last batch may be partial (and empty for some ranks: shape (0, block_size)), so every rank runs the same
    number of batches — `len(sampler)`. `max_batches` caps that number.
    """

    def __init__(self, tokens: np.ndarray, block_size: int, batch_size: int, *, rank: int = 0,
                 world_size: int = 1, max_batches: int | None = None):
        _check(tokens, block_size, batch_size, rank, world_size)
        self.tokens, self.block_size, self.batch_size = tokens, block_size, batch_size
        self.rank, self.world_size = rank, world_size
        self.n_windows = (len(tokens) - 1) // block_size
        global_batch = batch_size * world_size
        n = -(-self.n_windows // global_batch)
        self.n_batches = n if max_batches is None else min(n, max_batches)
        self.position = 0

    def __len__(self) -> int:
        return self.n_batches

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next (x, y) pair of shape (≤ batch_size, block_size); raises StopIteration after the last batch."""
        if self.position >= self.n_batches:
            raise StopIteration
        first = self.position * self.batch_size * self.world_size + self.rank * self.batch_size
        windows = np.arange(first, min(first + self.batch_size, self.n_windows))
        self.position += 1
        return _windows(self.tokens, windows * self.block_size, self.block_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches from the current position to the end (call `reset()` to start over)."""
        while self.position < self.n_batches:
            yield self.next_batch()

    def reset(self) -> None:
        self.position = 0

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "sequential", "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind") != "sequential":
            raise LmlabError(f"sampler state is of kind {state.get('kind')!r}, expected 'sequential'")
        self.position = int(state["position"])
