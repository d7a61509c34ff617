"""Pronounceable, unique, made-up names built from syllables.

A name is 2–3 syllables of the shape consonant-cluster + vowel + optional coda ("Ka" + "ve" + "lor" → "Kavelor"),
followed by a suffix that hints at the kind of entity (countries end like "-ovia", cities like "-burg", companies
like "-tek", languages like "-ish"), as real names often do. Names are unique across all kinds and never equal a
word of the world's own text or a common English word (checked case-insensitively), so every name is an
unambiguous new word for the model (the English list is english.WORDS).
"""

from __future__ import annotations

import random

ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "gr", "kr", "tr",
          "st", "sh", "th", "pl", "fr", "vr", "zh")
NUCLEI = ("a", "e", "i", "o", "u", "a", "e", "o", "ai", "ei", "ou", "y")
CODAS = ("", "", "", "", "n", "r", "l", "s", "m", "k", "th", "sk", "nd")

# Suffixes per kind; "" means the bare syllable stem. People and animals use bare stems (first names).
SUFFIXES = {
    "country": ("ia", "land", "ora", "istan", "ovia", "aria", "eth"),
    "city": ("burg", "ton", "ville", "holm", "grad", "port", "by", "stad", "mere"),
    "language": ("ish", "ese", "ic", "an", "i"),
    "company": ("tek", "corp", "ix", "ware", "ona", "dyne", "co"),
    "person": ("",),
    "animal": ("",),
}


class NameGenerator:
    """Draws names from a seeded RNG; remembers every name given out so none repeats.

    `blocked` holds lowercase words names must avoid (the world's vocabulary and common English words).
    """

    def __init__(self, rng: random.Random, blocked: frozenset[str] | set[str]):
        self._rng = rng
        self._blocked = blocked
        self._taken: set[str] = set()  # membership tests only: never iterated, so its order cannot leak out

    def _stem(self, n_syllables: int) -> str:
        rng = self._rng
        parts = []
        for i in range(n_syllables):
            onset = rng.choice(ONSETS)
            # A coda only on the last syllable keeps clusters pronounceable ("Kavelor", not "Kavnlor").
            coda = rng.choice(CODAS) if i == n_syllables - 1 else ""
            parts.append(onset + rng.choice(NUCLEI) + coda)
        return "".join(parts)

    def make(self, kind: str) -> str:
        """One new name for an entity of `kind` (a key of SUFFIXES), capitalised, ASCII letters only."""
        rng = self._rng
        suffixes = SUFFIXES[kind]
        while True:
            suffix = rng.choice(suffixes)
            # Bare stems get 2–3 syllables; suffixed names 1–2 so names stay short (fewer tokens to predict).
            n = rng.choice((2, 2, 3)) if not suffix else rng.choice((1, 2, 2))
            stem = self._stem(n)
            if suffix and stem[-1] in "aeiouy" and suffix[0] in "aeiouy":
                stem = stem[:-1]  # "Kora" + "ia" → "Koria", not "Koraia"
            word = stem + suffix
            key = word.lower()
            # At least 5 letters, and no final "e" on bare first names: short shapes such as "Fran" and
            # consonant+vowel+consonant+"e" ("Trope", "Bile", "Pore") are where made-up names most often turn out
            # to be real words.
            if len(word) < 5 or len(word) > 12 or key in self._taken or key in self._blocked:
                continue
            if not suffix and word.endswith("e"):
                continue
            self._taken.add(key)
            return word.capitalize()
