"""Train/validation split by document (never inside a document, so no text leaks between splits)."""

from __future__ import annotations

import warnings

import numpy as np

from lmlab.errors import LmlabError


def validation_count(n_documents: int, val_fraction: float) -> int:
    """How many of `n_documents` go to validation: round(n × fraction), but at least 1 when the fraction is
    positive and there are ≥ 2 documents, and never all of them (train keeps at least one)."""
    if not 0.0 <= val_fraction < 1.0:
        raise LmlabError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if val_fraction == 0.0 or n_documents < 2:
        return 0
    return min(max(1, round(n_documents * val_fraction)), n_documents - 1)


def split_mask(n_documents: int, val_fraction: float, seed: int = 0) -> np.ndarray:
    """Boolean array of length `n_documents`: True where document i (in reading order, after dedup) goes to
    validation. Seeded: the same (n, fraction, seed) always gives the same mask.

    Warns when validation must stay empty although a fraction was asked for (a corpus of a single document);
    split such a corpus with `split_blank_lines=True` or give more files.
    """
    n_val = validation_count(n_documents, val_fraction)
    if val_fraction > 0 and n_val == 0:
        warnings.warn(f"the corpus has only {n_documents} document(s), so the validation split is empty; "
                      "use --split-blank-lines or more files to get validation data", stacklevel=2)
    mask = np.zeros(n_documents, dtype=bool)
    if n_val:
        mask[np.random.default_rng(seed).choice(n_documents, size=n_val, replace=False)] = True
    return mask
