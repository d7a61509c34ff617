"""Joining short pieces of text into documents.

Why: a one-subject document such as "Thoton is a city in Braidunia." has only as many distinct forms as its
relation has templates, so writing it 60 times produces exact duplicates, and the usual corpus clean-up (exact
deduplication, as `lmlab data prepare` does by default) would delete almost all of them and with them the
repetition the model needs. Several pieces drawn in random order make each document practically unique.
"""

from __future__ import annotations

import random
from collections.abc import Iterator


def grouped(pieces: Iterator[str], rng: random.Random, lo: int = 2, hi: int = 4, sep: str = " ") -> Iterator[str]:
    """Endless stream of documents, each the next `lo`..`hi` pieces of `pieces` joined by `sep`.

    Pieces are pulled only for the document being built, so whatever counts the piece generator keeps while
    handing pieces out covers exactly the documents yielded.
    """
    while True:
        yield sep.join(next(pieces) for _ in range(rng.randint(lo, hi)))
