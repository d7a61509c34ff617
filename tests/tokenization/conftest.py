"""Shared test material for the tokenizer tests: a small mixed corpus (words, numbers, punctuation, Unicode)."""

import random

import pytest

WORDS = ("the cat sat on a mat while Alice and Bob argued about 42 apples , it's true ; don't "
         "they've paid £12.50 for 1,000 bananas ( or maybe 7 ) ! Zürich café naïve 東京 😀 — ok ?").split()


def make_corpus(n_lines: int = 400, seed: int = 0) -> list[str]:
    """Seeded lines of text mixing words, integers of 1-6 digits, punctuation and non-ASCII characters."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        parts = [rng.choice(WORDS) if rng.random() < 0.8 else str(rng.randrange(10 ** rng.randint(1, 6)))
                 for _ in range(rng.randint(3, 15))]
        lines.append(" ".join(parts) + rng.choice([".", "!", "?", ""]) + "\n")
    return lines


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    return make_corpus()
