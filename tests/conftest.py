"""Fixtures shared by every test package."""

import pytest
import torch


@pytest.fixture
def one_torch_thread():
    """Run a test with one torch intra-op thread. Tests of tiny models do many small forward/backward passes; on a
    2-core machine shared with other processes, two OpenMP threads spin against each other and make them ~10× slower.
    Speed only: results do not depend on it. Use with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
