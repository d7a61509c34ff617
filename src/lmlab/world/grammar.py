"""grammar.txt: short documents that state attributes one by one and then combine them.

"Miko is big. Miko is blue. Miko is a big blue dog." — a size word always comes before a colour word, as in
English. Animal documents use the world's own pets (their species and colour agree with facts.jsonl; their size is
fixed per animal); comparison documents order two pets by size (tiny < small < big < huge); thing documents use
ordinary objects with attributes drawn per document, so they are consistent within themselves.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from lmlab.world import lexicon
from lmlab.world.facts import World
from lmlab.world.grouping import grouped


def article(word: str) -> str:
    """'a' or 'an' for the word that follows."""
    return "an" if word[0] in "aeiou" else "a"


def _animal_doc(rng: random.Random, name: str, size: str, colour: str, species: str) -> str:
    pattern = rng.randrange(4)
    if pattern == 0:
        return f"{name} is {size}. {name} is {colour}. {name} is a {size} {colour} {species}."
    if pattern == 1:
        return f"{name} is {colour}. {name} is {size}. {name} is a {size} {colour} {species}."
    if pattern == 2:
        return f"{name} is {size} and {colour}. {name} is a {size} {colour} {species}."
    return f"{name} is a {species}. {name} is {colour}. So {name} is {article(colour)} {colour} {species}."


def _comparison_doc(rng: random.Random, a: str, size_a: str, b: str, size_b: str) -> str:
    rank_a, rank_b = lexicon.SIZES.index(size_a), lexicon.SIZES.index(size_b)
    if rank_a > rank_b:
        verdict = f"{a} is bigger than {b}."
    elif rank_a < rank_b:
        verdict = f"{a} is smaller than {b}."
    else:
        verdict = f"{a} is as big as {b}."
    return f"{a} is {size_a}. {b} is {size_b}. {verdict}"


def _thing_doc(rng: random.Random) -> str:
    thing, size, colour = rng.choice(lexicon.THINGS), rng.choice(lexicon.SIZES), rng.choice(lexicon.COLOURS)
    if rng.random() < 0.5:
        return f"The {thing} is {colour}. The {thing} is {size}. It is a {size} {colour} {thing}."
    return f"There is {article(colour)} {colour} {thing}. The {thing} is {size}. It is a {size} {colour} {thing}."


def grammar_documents(world: World, rng: random.Random) -> Iterator[str]:
    """Endless stream of grammar documents, each 2–4 of the paragraphs of `_paragraphs`."""
    return grouped(_paragraphs(world, rng), rng)


def _paragraphs(world: World, rng: random.Random) -> Iterator[str]:
    """Endless stream of paragraphs: 50% about one pet, 20% comparing two pets, 30% about a thing."""
    animals = world.entities["animal"]
    while True:
        r = rng.random()
        if r < 0.5:
            a = rng.choice(animals)
            yield _animal_doc(rng, a, world.animal_size[a], world.animal_colour[a], world.animal_species[a])
        elif r < 0.7 and len(animals) > 1:
            a, b = rng.sample(animals, 2)
            yield _comparison_doc(rng, a, world.animal_size[a], b, world.animal_size[b])
        else:
            yield _thing_doc(rng)
