"""Training text about the facts: facts.txt (static facts) and temporal.txt (facts that changed).

Both are endless streams of documents; the writer stops when a section's byte budget is reached. Text is built in
rounds so that coverage is even: each round of `static_documents` mentions every static fact exactly once (one
paragraph per subject, its facts in random order, each with a random *train* template; `WorldOptions` can narrow
the templates, fix the order, state each fact several times per round, call subjects by name variants and add
question paragraphs for the extraction split), and each round of
`temporal_documents` mentions every temporal fact's outdated value 3–4 times and its current value once (see
below). Paragraphs and statements are then joined 2–4 at a time into documents (see grouping.py: this keeps
documents distinct, so deduplication cannot strip the repetition). Mention counts are recorded in the lists
passed in, counted only when a piece is handed out, so they match the written text exactly.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from lmlab.world.extraction import FactPlan
from lmlab.world.facts import World
from lmlab.world.grouping import grouped
from lmlab.world.relations import RELATION_BY_NAME, render
from lmlab.world.variants import subject_in


def static_documents(world: World, rng: random.Random, mentions: list[int], plan: FactPlan,
                     question_mentions: list[int]) -> Iterator[str]:
    """Endless stream of documents about static facts; `mentions[i]` counts statements of `world.facts[i]`,
    `question_mentions[i]` its question forms (exposed subjects only, see extraction.py).

    A document is 2–4 paragraphs. A statement paragraph states every fact about one subject `plan.statements`
    times (default once), each time in another of its statement forms (`plan.forms`) and under one of the subject's
    names (`plan.names_of`), in random order (or fact order: `plan.shuffled` False). With the extraction
    split, each exposed subject also gets a question paragraph per round ("Q: What is the capital of X? A: Y. ..."),
    a piece of its own, so most questions do not sit next to the statements that answer them."""
    return grouped(_subject_paragraphs(world, rng, mentions, plan, question_mentions), rng)


def _subject_paragraphs(world: World, rng: random.Random, mentions: list[int], plan: FactPlan,
                        question_mentions: list[int]) -> Iterator[str]:
    by_subject: dict[str, list[int]] = {}  # dicts keep insertion order: deterministic
    # fact index → its forms, each rendered once per name of the subject: a round then costs a few random choices.
    # (Questions keep the plain name: they are the forms facts_extract asks, always with the plain name.)
    sentences: dict[int, list[list[str]]] = {}
    questions: dict[int, list[list[str]]] = {}
    for i, templates in plan.forms.items():
        f = world.facts[i]
        by_subject.setdefault(f.subject, []).append(i)
        sentences[i] = [[render(t, subject_in(t, name), f.object) for name in plan.names_of(f.subject)]
                        for t in templates]
        if f.subject in plan.exposed:
            questions[i] = [[render(t, f.subject, f.object)] for t in RELATION_BY_NAME[f.relation].question]
    # (subject, is a question paragraph): without exposed subjects, shuffling this list draws exactly as shuffling
    # the subjects did, so the default world's text is unchanged.
    pieces = [(subject, False) for subject in by_subject] + [(s, True) for s in by_subject if s in plan.exposed]
    while True:
        rng.shuffle(pieces)
        for subject, asked in pieces:
            idx = by_subject[subject]
            pool, counts = (questions, question_mentions) if asked else (sentences, mentions)
            parts = []
            for i in idx:
                said = _statements(rng, pool[i], plan.statements)
                parts += said
                counts[i] += len(said)
            if plan.shuffled and len(parts) > 1:
                rng.shuffle(parts)
            yield " ".join(parts)


def _statements(rng: random.Random, forms: list[list[str]], n: int) -> list[str]:
    """`n` statements of one fact (fewer if it has fewer forms), each in a different form and under a random one of
    its names. One statement draws exactly what a plain rng.choice over the forms did, so the default world's
    text is unchanged."""
    chosen = [rng.choice(forms)] if n == 1 else rng.sample(forms, min(n, len(forms)))
    return [names[0] if len(names) == 1 else rng.choice(names) for names in chosen]


def temporal_documents(world: World, rng: random.Random, outdated_mentions: list[int],
                       current_mentions: list[int]) -> Iterator[str]:
    """Endless stream of documents about facts that changed over time: each 2–4 of the statements below."""
    return grouped(_temporal_statements(world, rng, outdated_mentions, current_mentions), rng)


def _temporal_statements(world: World, rng: random.Random, outdated_mentions: list[int],
                         current_mentions: list[int]) -> Iterator[str]:
    """Endless stream of statements about facts that changed over time.

    Per round and temporal fact: one "stale" statement of the outdated value in the present tense with a plain
    train template (like an old web page nobody updated), two statements of the outdated value with a past marker
    ("In 2019, ...", "Back then, ..."), and one statement of the current value and a present marker ("Today, ...",
    "Since 2023, ..."), half of the time preceded by a past-marked sentence for contrast. So the outdated value is
    written about 3.5× as often as the current one, and a prompt without a time marker favours the outdated value.
    """
    temporal = [i for i, f in enumerate(world.facts) if f.temporal]
    while True:
        round_docs: list[tuple[str, int, int, int]] = []  # (text, fact index, outdated mentions, current mentions)
        for i in temporal:
            f = world.facts[i]
            rel = RELATION_BY_NAME[f.relation]
            old, new, s = f.outdated_object, f.object, f.subject
            round_docs.append((render(rng.choice(rel.train), s, old), i, 1, 0))
            for _ in range(2):
                round_docs.append((render(rng.choice(rel.past), s, old, f.outdated_year), i, 1, 0))
            now = render(rng.choice(rel.present), s, new, f.current_year)
            if rng.random() < 0.5:
                round_docs.append((render(rng.choice(rel.past), s, old, f.outdated_year) + " " + now, i, 1, 1))
            else:
                round_docs.append((now, i, 0, 1))
        rng.shuffle(round_docs)
        for text, i, n_old, n_new in round_docs:
            outdated_mentions[i] += n_old
            current_mentions[i] += n_new
            yield text
