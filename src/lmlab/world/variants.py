"""Name variants: a second way to name each subject of a static fact, for the `name_variants` world option.

Allen-Zhu & Li's augmentation writes a person's facts under several forms of the name. The world's names are single
made-up words, so each subject gets one variant built the way real names vary: people and pets get a made-up
family name ("Kavelor" → "Kavelor Dransk"), places and companies a descriptive title ("Vorland" → "the Republic of
Vorland", "Kestaburg" → "the town of Kestaburg", "Zantek" → "Zantek Group"). The title words occur in no template,
so a statement with a variant can never spell out a held-out paraphrase prompt ("the country X" would: "The capital
of the country {} is" is one); generate.py checks that after writing the text anyway.
"""

from __future__ import annotations

import random

from lmlab.world.facts import World, blocked_words
from lmlab.world.names import NameGenerator

# Kinds whose variant is a title around the name; the others (person, animal) get a family name.
TITLES = {"country": "the Republic of {}", "city": "the town of {}", "company": "{} Group"}


def name_variants(world: World, subjects: list[str], rng: random.Random) -> dict[str, str]:
    """{subject: its variant} for each of `subjects` (names in `world`), drawn from `rng` in the order given.

    Family names avoid every word names avoid and every name of the world, so a variant adds exactly one new
    word and never names another entity."""
    kind_of = {name: kind for kind, names in world.entities.items() for name in names}
    taken = {name.lower() for names in world.entities.values() for name in names}
    family_names = NameGenerator(rng, blocked_words() | taken)
    variants = {}
    for subject in subjects:
        kind = kind_of[subject]
        variants[subject] = TITLES[kind].format(subject) if kind in TITLES else \
            f"{subject} {family_names.make('person')}"
    return variants


def subject_in(template: str, name: str) -> str:
    """`name` as it reads in `template`'s subject slot: a variant starting a sentence gets its capital letter
    ("{s}'s capital is {o}." with "the Republic of Vorland" → "The Republic of Vorland")."""
    return name[0].upper() + name[1:] if template.startswith("{s}") else name
