"""The fact plan: which statement forms each static fact is written in, how many statements of it each round
holds, by which names its subject is called, whether a subject's facts keep a fixed order, and the extraction
split (exposed subjects, whose facts facts.txt also asks in question forms, and held-out subjects, which the task
facts_extract asks). Built from `WorldOptions`; the defaults give today's world.

The held-out subjects' question prompts must never occur in the training text, or facts_extract would measure
recall of a seen sentence, not extraction: `prompts_in_text` checks that after the text is written.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lmlab.world.facts import World
from lmlab.world.options import MAX_FORMS, WorldOptions
from lmlab.world.relations import RELATION_BY_NAME, to_prompt
from lmlab.world.variants import name_variants


@dataclass(frozen=True)
class FactPlan:
    """How facts.txt states the static facts (indices into world.facts)."""

    forms: dict[int, tuple[str, ...]]   # fact index → the statement templates its mentions choose from
    shuffled: bool                      # facts of a paragraph in a new random order each time (else fact order)
    exposed: frozenset[str]             # subjects whose facts the text also states in question forms
    held_out: frozenset[str]            # subjects asked by facts_extract; empty without the extraction split
    statements: int = 1                 # statements of each fact per round, each in a different form
    names: dict[str, tuple[str, ...]] | None = None  # subject → names statements call it by (None: its own only)

    def names_of(self, subject: str) -> tuple[str, ...]:
        """The names facts.txt's statements call `subject` by (its own first)."""
        return self.names[subject] if self.names else (subject,)

    def record_fields(self, i: int, world: World) -> dict:
        """facts.jsonl fields this plan adds to static fact i ({} with the default options: records unchanged)."""
        f = world.facts[i]
        out: dict = {}
        if len(self.forms[i]) < MAX_FORMS:
            out["statement_prompts"] = [to_prompt(t) for t in self.forms[i]]
        if self.names:
            out["subject_names"] = list(self.names[f.subject])
        if f.subject in self.exposed or f.subject in self.held_out:
            out["extraction"] = "exposed" if f.subject in self.exposed else "held_out"
            out["question_prompts"] = [to_prompt(t) for t in RELATION_BY_NAME[f.relation].question]
        return out

    def held_out_facts(self, world: World) -> list[int]:
        """Indices of the static facts about held-out subjects, in fact order."""
        return [i for i in self.forms if world.facts[i].subject in self.held_out]


def fact_plan(world: World, options: WorldOptions, forms_rng: random.Random,
              split_rng: random.Random, names_rng: random.Random) -> FactPlan:
    """The plan for `world` under `options`; `forms_rng` draws each fact's statement forms (only when
    options.forms < MAX_FORMS), `split_rng` the exposed subjects (only with options.extraction), `names_rng` the
    subjects' family-name variants (only with options.name_variants)."""
    static = [i for i, f in enumerate(world.facts) if not f.temporal]
    forms = {}
    for i in static:
        train = RELATION_BY_NAME[world.facts[i].relation].train
        # Sorted indices: the kept forms stay in the relation's order, so facts_train cycles through them stably.
        keep = range(len(train)) if options.forms == len(train) else sorted(forms_rng.sample(range(len(train)),
                                                                                              options.forms))
        forms[i] = tuple(train[j] for j in keep)
    exposed: list[str] = []
    held_out: list[str] = []
    if options.extraction:
        by_kind: dict[str, list[str]] = {}  # subject kind → subjects in fact order (dicts keep insertion order)
        for i in static:
            f = world.facts[i]
            if f.subject not in by_kind.setdefault(f.subject_kind, []):
                by_kind[f.subject_kind].append(f.subject)
        for subjects in by_kind.values():
            # At least one of each side whenever a kind has two subjects: both halves are needed.
            k = min(len(subjects) - 1, max(1, round(options.exposed_fraction * len(subjects))))
            picked = set(split_rng.sample(subjects, k))
            exposed += [s for s in subjects if s in picked]
            held_out += [s for s in subjects if s not in picked]
    names = None
    if options.name_variants:
        subjects = list(dict.fromkeys(world.facts[i].subject for i in static))  # fact order, each once
        names = {s: (s, v) for s, v in name_variants(world, subjects, names_rng).items()}
    return FactPlan(forms, options.order == "shuffled", frozenset(exposed), frozenset(held_out),
                    options.statements, names)


def prompts_in_text(items: list[dict], texts: Iterable[str]) -> list[str]:
    """The items' prompts ("Q: What is the capital of Vorland? A:") that occur verbatim in any of `texts`.

    Items carry `template` (a prompt template with one "{}") and `subject`. Instead of searching every prompt, each
    template's longer literal part (prefix or suffix) is found with str.find and the subjects checked around it:
    one pass per template over the text, however many subjects it is asked about."""
    by_template: dict[str, set[str]] = {}
    for item in items:
        by_template.setdefault(item["template"], set()).add(item["subject"])
    found: list[str] = []
    for text in texts:
        for template, subjects in by_template.items():
            prefix, suffix = template.split("{}")
            lengths = sorted({len(s) for s in subjects})
            on_suffix = len(suffix) >= len(prefix)
            anchor = suffix if on_suffix else prefix
            pos = text.find(anchor)
            while pos >= 0:
                for n in lengths:
                    # where the subject would start if this anchor occurrence belonged to a prompt
                    start = pos - n if on_suffix else pos + len(prefix)
                    subject = text[start:start + n]
                    if (start >= len(prefix) and subject in subjects and text.startswith(prefix, start - len(prefix))
                            and text.startswith(suffix, start + n)):
                        found.append(prefix + subject + suffix)
                pos = text.find(anchor, pos + 1)
    return found


def check_unseen(task: str, items: list[dict], corpus_dir: Path) -> None:
    """Fail loudly if a prompt of `task` (facts_extract, or facts_paraphrase with name variants) occurs verbatim in
    the training text (a generator bug: the task would then measure recall of a seen sentence, not extraction)."""
    for path in sorted(corpus_dir.glob("*.txt")):
        seen = prompts_in_text(items, [path.read_text(encoding="ascii")])
        if seen:
            raise RuntimeError(f"{task} prompt {seen[0]!r} occurs in {path.name} "
                               f"({len(seen)} occurrences): its held-out items leak into the training text")
