"""Duplicate removal and the train/val split."""

import warnings

import numpy as np
import pytest

from lmlab.data import ExactDeduplicator, NearDeduplicator, split_mask, validation_count
from lmlab.errors import LmlabError

LONG = ("the old lighthouse keeper climbed the spiral stairs every evening to light the great lamp while the "
        "ships passed slowly through the narrow channel below and the gulls circled over the harbour walls "
        "until the last fishing boat came home with its nets full of silver herring and the town fell asleep")


def test_exact_dedup_ignores_whitespace_differences_only():
    d = ExactDeduplicator()
    flags = [d.seen(t) for t in ["a b\nc", "a  b c ", "A b c", "a b\nc"]]
    assert flags == [False, True, False, True]
    assert d.removed == 2


def test_near_dedup_removes_light_edits_and_keeps_different_text():
    d = NearDeduplicator(0.7)
    edited = LONG.replace("evening", "night")
    other = " ".join(reversed(LONG.split()))
    assert [d.seen(LONG), d.seen(edited), d.seen(other), d.seen("a completely unrelated short note")] == \
        [False, True, False, False]
    assert d.removed == 1


def test_split_is_seeded_and_by_document():
    a, b = split_mask(1000, 0.1, seed=3), split_mask(1000, 0.1, seed=3)
    assert np.array_equal(a, b) and a.sum() == 100
    assert not np.array_equal(a, split_mask(1000, 0.1, seed=4))


def test_split_keeps_one_val_document_and_one_train_document():
    assert validation_count(2, 0.01) == 1
    assert validation_count(3, 0.99) == 2
    assert validation_count(5, 0.0) == 0
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert split_mask(1, 0.1).sum() == 0
    assert "validation split is empty" in str(w[0].message)
    with pytest.raises(LmlabError, match="val_fraction"):
        split_mask(10, 1.0)
