"""Whole-document batches: the rows are the documents, padded, reproducible and resumable."""

import numpy as np
import pytest

from lmlab.data import RandomDocumentSampler, SequentialDocumentSampler, document_spans
from lmlab.errors import LmlabError

EOS, PAD = 3, 0
# Documents [5 6 7], [8], [] (skipped), [9 10 11 12 13], then a trailing one without <eos>: [14 15].
TOKENS = np.array([5, 6, 7, EOS, 8, EOS, EOS, 9, 10, 11, 12, 13, EOS, 14, 15], dtype=np.uint16)


def test_spans_skip_empty_documents_and_keep_a_trailing_one():
    assert document_spans(TOKENS, EOS).tolist() == [[0, 3], [4, 5], [7, 12], [13, 15]]


def test_sequential_batches_are_the_documents_in_order_padded_and_capped():
    batches = list(SequentialDocumentSampler(TOKENS, EOS, PAD, max_len=4, batch_size=2))
    assert [x.tolist() for x, _ in batches] == [[[5, 6, 7], [8, PAD, PAD]], [[9, 10, 11, 12], [14, 15, PAD, PAD]]]
    assert all(x is y for x, y in batches)


def test_two_ranks_see_the_rows_one_process_sees():
    one = [x.tolist() for x, _ in SequentialDocumentSampler(TOKENS, EOS, PAD, 8, 4)]
    r0 = [x.tolist() for x, _ in SequentialDocumentSampler(TOKENS, EOS, PAD, 8, 2, rank=0, world_size=2)]
    r1 = [x.tolist() for x, _ in SequentialDocumentSampler(TOKENS, EOS, PAD, 8, 2, rank=1, world_size=2)]
    width = len(one[0][0])
    pad = lambda rows: [r + [PAD] * (width - len(r)) for r in rows]  # noqa: E731 - widths differ per rank
    assert pad(r0[0]) + pad(r1[0]) == one[0]


def test_random_sampler_resumes_exactly():
    a = RandomDocumentSampler(TOKENS, EOS, PAD, 8, 3, seed=7)
    for _ in range(3):
        a.next_batch()
    state = a.state_dict()
    expected = [a.next_batch()[0].tolist() for _ in range(3)]
    b = RandomDocumentSampler(TOKENS, EOS, PAD, 8, 3, seed=0)
    b.load_state_dict(state)
    assert [b.next_batch()[0].tolist() for _ in range(3)] == expected


def test_no_documents_is_a_clear_error():
    with pytest.raises(LmlabError, match="no non-empty document"):
        RandomDocumentSampler(np.array([EOS, EOS]), EOS, PAD, 8, 2)
