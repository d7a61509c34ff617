"""Train/validation split by document (never inside a document, so no text leaks between splits)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

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


@dataclass(frozen=True)
class SplitPlan:
    """Which split each kept document (numbered in reading order) goes to.

    `by`: "documents" (a seeded share of whole documents: `is_val`), "val-files" (the documents read from the
    user's validation files: `is_val`), or "tail" (every document is train except that the text from character
    `cut_offset` of document `cut_doc` on, and every later document, is val — the last share of the text).
    """

    by: str
    is_val: np.ndarray
    cut_doc: int = -1
    cut_offset: int = 0

    def parts(self, j: int, doc):
        """[(split, document)] for kept document `j`: one part, or two where the tail split cuts it. The cut
        moves to the nearest line boundary (then space) after `cut_offset`, so no line is split between the two
        splits; when the document has no such boundary, it is cut at `cut_offset` itself."""
        if self.by != "tail" or j != self.cut_doc:
            return [("val" if self.is_val[j] else "train", doc)]
        text = doc.text
        cut = _boundary_after(text, self.cut_offset)
        head, tail = text[:cut], text[cut:]
        if not head.strip() or not tail.strip():
            head, tail = text[:self.cut_offset], text[self.cut_offset:]
        return [("train", doc._replace(text=head)), ("val", doc._replace(text=tail))]

    def to_dict(self) -> dict:
        """What the manifest records of the split."""
        return {"by": self.by, **({"cut_document": self.cut_doc, "cut_offset": self.cut_offset}
                                  if self.by == "tail" else {})}


def plan_split(from_val_files: Sequence[bool] | None, doc_chars: Sequence[int], val_fraction: float,
               seed: int = 0) -> SplitPlan:
    """Plan the train/val split of the kept documents, whose lengths in characters are `doc_chars`.

    `from_val_files` (one flag per document, or None): the user gave validation files, and these flags say which
    documents came from them. Otherwise whole documents are held out (`split_mask`) when there are at least
    1 / val_fraction of them; with fewer (typically one text file) the last `val_fraction` of the characters is
    (nanoGPT's convention: the last 10% of the tokens), so one file still has validation data.
    """
    n = len(doc_chars)
    if from_val_files is not None:
        return SplitPlan("val-files", np.asarray(from_val_files, dtype=bool).reshape(n))
    if val_fraction == 0.0 or n * val_fraction >= 1:
        return SplitPlan("documents", split_mask(n, val_fraction, seed))
    total = int(sum(doc_chars))
    cut = int(total * (1.0 - val_fraction))
    starts = np.concatenate([[0], np.cumsum(doc_chars, dtype=np.int64)])
    cut_doc = int(np.searchsorted(starts, cut, side="right")) - 1
    cut_doc = min(max(cut_doc, 0), n - 1)
    if cut == starts[cut_doc]:  # the cut falls between two documents: hold out whole documents, cut none
        return SplitPlan("tail", np.arange(n) >= cut_doc)
    is_val = np.arange(n) > cut_doc
    return SplitPlan("tail", is_val, cut_doc=cut_doc, cut_offset=int(cut - starts[cut_doc]))


def _boundary_after(text: str, offset: int) -> int:
    """The index just past the first newline at or after `offset` (else the first space), or `offset`."""
    for sep in ("\n", " "):
        i = text.find(sep, offset)
        if i != -1:
            return i + 1
    return offset
