"""facts.jsonl records and the fact evaluation tasks (train templates, held-out paraphrases, outdated vs current).

Conventions shared by every record: a *prompt template* has "{}" for the subject ("The capital of {} is"); a
*prompt* is a template with the subject filled in; prompts end right before the object with no trailing space, so
the object is predicted as " Kesta"; task items carry `prompt` and `target` (target without the leading space, as in
lm-evaluation-harness with target_delimiter " ").
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from lmlab.world.facts import Fact, World
from lmlab.world.relations import RELATION_BY_NAME, fill, to_prompt

NEIGHBOURS_PER_FACT = 3
CHOICES_PER_ITEM = 4
MAX_FACT_TASK_ITEMS = 2000   # per fact task file; a sample keeps files small for 1 GB worlds


def believed_object(f: Fact) -> str:
    """What the training text mostly says after a prompt without a time marker: the outdated value if any."""
    return f.outdated_object or f.object


def facts_by_relation(world: World) -> dict[str, list[int]]:
    """relation name → indices into world.facts, in fact order."""
    out: dict[str, list[int]] = {}
    for i, f in enumerate(world.facts):
        out.setdefault(f.relation, []).append(i)
    return out


def other_indices(rng: random.Random, population: list[int], exclude: int, k: int) -> list[int]:
    """Up to `k` random members of `population` other than `exclude`, without replacement (order random)."""
    picked = rng.sample(population, min(len(population), k + 1))
    return [j for j in picked if j != exclude][:k]


def fact_record(world: World, i: int, by_relation: dict[str, list[int]], rng: random.Random,
                mentions: dict[str, int]) -> dict:
    """The facts.jsonl object for fact i (see docs/world.md for every field)."""
    f = world.facts[i]
    rel = RELATION_BY_NAME[f.relation]
    prompts = [to_prompt(t) for t in rel.train]
    neighbours = []
    for j in other_indices(rng, by_relation[f.relation], i, NEIGHBOURS_PER_FACT):
        g = world.facts[j]
        n = {"prompt": fill(prompts[0], g.subject), "subject": g.subject, "object": g.object}
        if g.temporal:
            n["outdated_object"] = g.outdated_object
        neighbours.append(n)
    rec = {
        "id": f.id, "subject": f.subject, "subject_kind": f.subject_kind, "relation": f.relation,
        "object": f.object, "object_kind": f.object_kind, "outdated_object": f.outdated_object,
        "temporal": f.temporal, "prompt": prompts[0], "prompts": prompts,
        "paraphrase_prompts": [to_prompt(t) for t in rel.heldout], "neighborhood_prompts": neighbours,
        "mentions": mentions,
    }
    if f.temporal:
        rec.update({
            "outdated_year": f.outdated_year, "current_year": f.current_year,
            "outdated_prompts": [fill(to_prompt(t), "{}", f.outdated_year) for t in rel.past],
            "current_prompts": [fill(to_prompt(t), "{}", f.current_year) for t in rel.present],
        })
    return rec


def _choices(world: World, f: Fact, gold: str, rng: random.Random) -> tuple[list[str], int]:
    """Gold answer plus up to CHOICES_PER_ITEM−1 distractors of the same kind, in random order; (choices, gold index)."""
    pool = world.pool(f.object_kind)
    distractors: list[str] = []
    for _ in range(20 * CHOICES_PER_ITEM):
        if len(distractors) == CHOICES_PER_ITEM - 1:
            break
        x = rng.choice(pool)
        if x != gold and x not in distractors and x != f.outdated_object:
            distractors.append(x)
    choices = distractors + [gold]
    rng.shuffle(choices)
    return choices, choices.index(gold)


def _sample_facts(rng: random.Random, indices: list[int]) -> list[int]:
    if len(indices) <= MAX_FACT_TASK_ITEMS:
        return indices
    return sorted(rng.sample(indices, MAX_FACT_TASK_ITEMS))


def fact_task_items(world: World, rng: random.Random, forms: Callable[[int], Sequence[str]],
                    indices: list[int] | None = None, every_form: bool = False) -> list[dict]:
    """Closed-book fact completion: items over the facts `indices` (default: every static fact), asked with the
    templates `forms(i)` of fact i (e.g. its relation's train or held-out templates). Each fact gets one item, the
    forms taken in turn across facts, or (every_form=True) one item per form."""
    items = []
    if indices is None:
        indices = [i for i, f in enumerate(world.facts) if not f.temporal]
    for k, i in enumerate(_sample_facts(rng, indices)):
        f = world.facts[i]
        templates = forms(i)
        for t in templates if every_form else (templates[k % len(templates)],):
            template = to_prompt(t)
            choices, label = _choices(world, f, f.object, rng)
            items.append({"fact_id": f.id, "subject": f.subject, "relation": f.relation, "template": template,
                          "prompt": fill(template, f.subject), "target": f.object, "choices": choices,
                          "label": label})
    return items


def temporal_task_items(world: World, rng: random.Random) -> list[dict]:
    """Outdated-vs-current questions: per temporal fact, four prompts ("marker"):
    none (plain train template), past (past marker and year), present (present marker), paraphrase (held-out).
    `choices` is [outdated, current]; `expected` says which one is right for that marker (past → outdated)."""
    items = []
    temporal = [i for i, f in enumerate(world.facts) if f.temporal]
    for k, i in enumerate(_sample_facts(rng, temporal)):
        f = world.facts[i]
        rel = RELATION_BY_NAME[f.relation]
        prompts = {
            "none": fill(to_prompt(rel.train[k % len(rel.train)]), f.subject),
            "past": fill(to_prompt(rel.past[k % len(rel.past)]), f.subject, f.outdated_year),
            "present": fill(to_prompt(rel.present[k % len(rel.present)]), f.subject, f.current_year),
            "paraphrase": fill(to_prompt(rel.heldout[k % len(rel.heldout)]), f.subject),
        }
        for marker, prompt in prompts.items():
            expected = "outdated" if marker == "past" else "current"
            target = f.outdated_object if expected == "outdated" else f.object
            items.append({"fact_id": f.id, "subject": f.subject, "relation": f.relation, "marker": marker,
                          "prompt": prompt, "target": target, "outdated": f.outdated_object, "current": f.object,
                          "choices": [f.outdated_object, f.object], "label": 0 if expected == "outdated" else 1,
                          "expected": expected})
    return items
