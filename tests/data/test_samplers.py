"""Batch samplers: window shapes, DDP exactness, sequential coverage, save/restore."""

import numpy as np
import pytest
import torch

from lmlab.data import RandomWindowSampler, SequentialWindowSampler
from lmlab.errors import LmlabError

TOKENS = np.arange(1000, dtype=np.uint16)  # token i has value i, so a window's position is visible in it


def test_random_windows_are_contiguous_and_y_is_x_shifted():
    s = RandomWindowSampler(TOKENS, block_size=16, batch_size=4, seed=0)
    x, y = s.next_batch()
    assert x.shape == y.shape == (4, 16) and x.dtype == y.dtype == torch.int64
    assert torch.equal(y[:, :-1], x[:, 1:])
    assert torch.equal(x - x[:, :1], torch.arange(16).expand(4, 16))  # consecutive tokens
    assert int(y.max()) <= 999


def test_random_sampler_is_seeded_and_covers_the_last_window():
    a = [RandomWindowSampler(TOKENS, 8, 4, seed=5).next_batch()[0] for _ in range(2)]
    assert torch.equal(a[0], a[1])
    assert not torch.equal(a[0], RandomWindowSampler(TOKENS, 8, 4, seed=6).next_batch()[0])
    s = RandomWindowSampler(np.arange(10, dtype=np.uint16), block_size=8, batch_size=64)
    starts = {int(s.next_batch()[0][i, 0]) for _ in range(5) for i in range(64)}
    assert starts == {0, 1}  # 10 tokens: windows of 9 start at 0 or 1


def test_two_ranks_see_exactly_what_one_process_with_double_batch_sees():
    single = RandomWindowSampler(TOKENS, 8, 6, seed=3)
    ranks = [RandomWindowSampler(TOKENS, 8, 3, seed=3, rank=r, world_size=2) for r in range(2)]
    for _ in range(4):
        x, y = single.next_batch()
        parts = [r.next_batch() for r in ranks]
        assert torch.equal(x, torch.cat([p[0] for p in parts])) and torch.equal(y, torch.cat([p[1] for p in parts]))


@pytest.mark.parametrize("cls,kw", [(RandomWindowSampler, {"seed": 7}), (SequentialWindowSampler, {})])
def test_state_dict_resumes_with_the_same_batches(cls, kw):
    s = cls(TOKENS, 8, 4, **kw)
    for _ in range(3):
        s.next_batch()
    state = s.state_dict()
    expected = [s.next_batch() for _ in range(3)]
    fresh = cls(TOKENS, 8, 4, **kw)
    fresh.load_state_dict(state)
    for (x, y), (x2, y2) in zip(expected, (fresh.next_batch() for _ in range(3))):
        assert torch.equal(x, x2) and torch.equal(y, y2)


def test_sequential_covers_every_window_once_in_order_with_partial_last_batch():
    s = SequentialWindowSampler(TOKENS, block_size=100, batch_size=4)  # (1000 - 1) // 100 = 9 windows
    batches = list(s)
    assert len(s) == 3 and [b[0].shape[0] for b in batches] == [4, 4, 1]
    x = torch.cat([b[0] for b in batches])
    assert torch.equal(x[:, 0], torch.arange(0, 900, 100))
    assert list(s) == [] and (s.reset() or len(list(s)) == 3)
    assert len(SequentialWindowSampler(TOKENS, 100, 4, max_batches=2)) == 2


def test_sequential_ranks_split_each_batch_and_run_the_same_number_of_batches():
    single = list(SequentialWindowSampler(TOKENS, 100, 4))
    ranks = [list(SequentialWindowSampler(TOKENS, 100, 2, rank=r, world_size=2)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 3
    for (x, _), a, b in zip(single, ranks[0], ranks[1]):
        assert torch.equal(x, torch.cat([a[0], b[0]]))
    assert ranks[1][-1][0].shape == (0, 100)  # last global batch holds 1 window, all on rank 0


def test_too_few_tokens_is_a_clear_error():
    with pytest.raises(LmlabError, match="block_size"):
        RandomWindowSampler(np.arange(8, dtype=np.uint16), block_size=8, batch_size=1)
