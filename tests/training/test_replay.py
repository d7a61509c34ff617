"""The replay draw that continued pretraining and instruction tuning share (`lmlab.training.replay.draw_replay`):
whole documents of the train split, the same ones for the same seed, counted either by tokens or by documents."""

import numpy as np
import pytest

from lmlab.data import document_spans, load_split, load_tokenizer_of
from lmlab.errors import LmlabError
from lmlab.training.replay import check_replay, draw_replay


def _whole_documents(ids, spans, eos):
    """Every span starts a document and ends at its <eos> (or at the end of the split)."""
    starts = {int(s) for s, _ in document_spans(ids, eos)}
    return all(int(s) in starts and (e == len(ids) or ids[e] == eos) for s, e in spans)


def test_a_token_budget_takes_distinct_whole_documents_until_it_is_reached(char_data):
    tok = load_tokenizer_of(char_data)
    ids, spans = draw_replay(char_data, tok, seed=3, n_tokens=2000)
    assert np.array_equal(ids, load_split(char_data, "train", tok))
    assert _whole_documents(ids, spans, tok.eos_id)
    assert len({tuple(s) for s in spans.tolist()}) == len(spans)  # without replacement
    with_eos = np.minimum(spans[:, 1] + 1, len(ids)) - spans[:, 0]
    assert with_eos.sum() >= 2000 and with_eos[:-1].sum() < 2000  # the last document is the one that reaches it
    assert len(draw_replay(char_data, tok, seed=3, n_tokens=0)[1]) == 0


def test_a_document_count_draws_that_many_with_replacement(char_data):
    tok = load_tokenizer_of(char_data)
    n_docs = len(document_spans(load_split(char_data, "train", tok), tok.eos_id))
    ids, spans = draw_replay(char_data, tok, seed=0, n_documents=3 * n_docs)
    assert len(spans) == 3 * n_docs and _whole_documents(ids, spans, tok.eos_id)
    assert len({tuple(s) for s in spans.tolist()}) < len(spans)  # more draws than documents: repeats


@pytest.mark.parametrize("count", [dict(n_tokens=1500), dict(n_documents=25)])
def test_the_same_seed_draws_the_same_documents(char_data, count):
    # Continued runs and instruction tunings record only the seed: rerunning one must mix in the same documents.
    tok = load_tokenizer_of(char_data)
    ids = load_split(char_data, "train", tok)
    spans = document_spans(ids, tok.eos_id)
    first = draw_replay(char_data, tok, seed=5, **count)[1]
    assert np.array_equal(first, draw_replay(char_data, tok, seed=5, **count)[1])
    assert not np.array_equal(first, draw_replay(char_data, tok, seed=6, **count)[1])
    # The draw is numpy's seeded generator, as the runs made before this module recorded it.
    rng = np.random.default_rng(5)
    if "n_documents" in count:
        expected = spans[rng.integers(0, len(spans), size=25)]
    else:
        order = rng.permutation(len(spans))
        expected = spans[order[:len(first)]]
    assert np.array_equal(first, expected)


def test_replay_share_must_be_below_one():
    check_replay(0.0)
    with pytest.raises(LmlabError, match=r"must be in \[0, 1\)"):
        check_replay(1.0)
    with pytest.raises(ValueError):
        draw_replay("unused", None, seed=0)
