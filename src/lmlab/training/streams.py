"""Contiguous-stream batches, for recurrent models that carry their state from one batch to the next.

Truncated backpropagation through time (Williams & Peng 1990; Zaremba et al. 2014's PTB setup) cuts a long text into
`batch_size` parallel streams; step k gives row s the k-th block of stream s, so the hidden state a row ends a batch
with is the right state to start its next batch with (the model detaches it, so gradients stop at the cut). Random
windows (`lmlab.data.RandomWindowSampler`) would give each row an unrelated window and make a carried state wrong.

Layout: the token array is split into G = batch_size × world_size equal streams of L = len // G tokens; at step k,
global row s gets tokens[s·L + j·B' : s·L + j·B' + B' + 1] with j = k mod (steps per pass) and B' = block_size. After
a full pass each stream starts over at its beginning (a carried state then meets its own start: the same small
discontinuity an epoch boundary gives). Rank r takes rows [r·B, (r+1)·B), as the other samplers do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lmlab.errors import LmlabError

if TYPE_CHECKING:
    import torch


class ContiguousStreamSampler:
    """(x, y) batches of shape (batch_size, block_size) int64 where row i of step k+1 continues row i of step k.

    Same interface as `lmlab.data.RandomWindowSampler`: next_batch(), state_dict(), load_state_dict().
    """

    def __init__(self, tokens: np.ndarray, block_size: int, batch_size: int, *, rank: int = 0, world_size: int = 1):
        if block_size < 1 or batch_size < 1:
            raise LmlabError(f"block_size and batch_size must be ≥ 1 (got {block_size}, {batch_size})")
        if world_size < 1 or not 0 <= rank < world_size:
            raise LmlabError(f"rank must be in [0, world_size) (got rank={rank}, world_size={world_size})")
        n_streams = batch_size * world_size
        self.stream_len = len(tokens) // n_streams
        if self.stream_len < block_size + 1:
            raise LmlabError(f"{len(tokens)} tokens split into {n_streams} streams leave {self.stream_len} tokens "
                             f"each, fewer than block_size + 1 = {block_size + 1}; use a smaller --batch_size or "
                             "--block_size, or more data")
        self.tokens, self.block_size, self.batch_size = tokens, block_size, batch_size
        self.rank, self.world_size = rank, world_size
        self.steps_per_pass = (self.stream_len - 1) // block_size
        self.step = 0

    def next_batch(self) -> tuple["torch.Tensor", "torch.Tensor"]:
        """The next (x, y) pair, each (batch_size, block_size) int64; y is x shifted left by one token."""
        import torch

        rows = np.arange(self.rank * self.batch_size, (self.rank + 1) * self.batch_size)
        offset = (self.step % self.steps_per_pass) * self.block_size
        starts = rows * self.stream_len + offset
        window = np.asarray(self.tokens[starts[:, None] + np.arange(self.block_size + 1)], dtype=np.int64)
        self.step += 1
        return torch.from_numpy(window[:, :-1].copy()), torch.from_numpy(window[:, 1:].copy())

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "streams", "step": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind") != "streams":
            raise LmlabError(f"sampler state is of kind {state.get('kind')!r}, expected 'streams' (the run was "
                             "trained with another batch order; resume with the same model settings)")
        self.step = int(state["step"])
