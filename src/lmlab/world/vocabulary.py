"""Which words of a template a model trained on a world has ever read: the fair-phrasing audit.

A paraphrase such as "The seat of government of {s} is {o}." (a held-out template of version-1 worlds) tests
transfer only if the model can read it; words that never occur in the training text (corpus/*.txt) are noise to
it, so a low facts_paraphrase score may measure missing vocabulary rather than missing knowledge.
`paraphrase_audit` lists those words per template.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from lmlab.world.io import load_world_info
from lmlab.world.relations import RELATIONS, words_of

_WORD = re.compile(r"[A-Za-z]+")


def corpus_words(world_dir: str | os.PathLike) -> set[str]:
    """Every lowercase word (a run of ASCII letters) of the world's training text, corpus/*.txt."""
    load_world_info(world_dir)  # a clear error when world_dir is not a world
    words: set[str] = set()
    for path in sorted((Path(world_dir) / "corpus").glob("*.txt")):
        words.update(w.lower() for w in _WORD.findall(path.read_text(encoding="utf-8")))
    return words


def unseen_words(template: str, vocabulary: set[str]) -> list[str]:
    """The distinct words of `template` (slots left out, see relations.words_of) missing from `vocabulary`, in
    order of first use."""
    return list(dict.fromkeys(w for w in words_of(template) if w not in vocabulary))


def paraphrase_audit(world_dir: str | os.PathLike, kind: str = "heldout") -> dict[str, dict[str, list[str]]]:
    """{relation: {template: its words that never occur in the world's training text}} for each relation's
    held-out paraphrase templates (kind="heldout", what facts_paraphrase asks) or question forms (kind="question",
    what facts_extract asks; these are built to have none). An empty list means a model can read every word."""
    if kind not in ("heldout", "question"):
        raise ValueError(f"kind must be 'heldout' or 'question', got {kind!r}")
    vocabulary = corpus_words(world_dir)
    return {r.name: {t: unseen_words(t, vocabulary) for t in getattr(r, kind)}
            for r in RELATIONS if getattr(r, kind)}
