"""edits.jsonl: CounterFact-style edit requests (Meng et al. 2022, ROME) derived from the world's facts.

Two kinds of case:
- "counterfactual": a static fact rewritten to another object of the same relation (target_true = the fact,
  target_new = a value the relation gives some other subject, so the model knows the word);
- "outdated_to_current": a temporal fact, where target_true is the outdated value the text mostly states and
  target_new the current value; editing it should make the model prefer the current value (the outdated-fact
  case of docs/experiments/editing.md).

Record layout follows ROME's counterfact.json (requested_rewrite with target_new/target_true as {"str": ...},
paraphrase_prompts, neighborhood_prompts, attribute_prompts, generation_prompts as filled strings). Because world
relations can be one-to-one (each country has its own capital), a neighbour's true answer is not always
target_true, so `neighborhood_targets[k]` gives the true answer for `neighborhood_prompts[k]`; neighbours that
share target_true come first. For temporal neighbours the target is the outdated value (what an unedited model says).
"""

from __future__ import annotations

import random

from lmlab.world.facts import World
from lmlab.world.records import believed_object, facts_by_relation
from lmlab.world.relations import RELATION_BY_NAME, fill, to_prompt

MAX_COUNTERFACTUAL_EDITS = 2000  # enough for MEMIT's 1000-edit batch; keeps edits.jsonl small for big worlds
MAX_TEMPORAL_EDITS = 500
NEIGHBOURS_PER_EDIT = 5


def _pick(rng: random.Random, indices: list[int], k: int) -> list[int]:
    return indices if len(indices) <= k else sorted(rng.sample(indices, k))


def _sample_where(rng: random.Random, candidates: list[int], k: int, ok) -> list[int]:
    """Up to k distinct members j of `candidates` with ok(j), drawn at random (rejection sampling: lists can be
    long, and a few draws are far cheaper than filtering the whole list for every edit case)."""
    out: list[int] = []
    for _ in range(20 * k):
        if len(out) == k or not candidates:
            break
        j = rng.choice(candidates)
        if j not in out and ok(j):
            out.append(j)
    return out


def edit_requests(world: World, rng: random.Random) -> list[dict]:
    """All edit cases, counterfactual ones first, each with a sequential case_id."""
    by_relation = facts_by_relation(world)
    by_object: dict[tuple[str, str], list[int]] = {}  # (relation, believed object) → fact indices
    for i, f in enumerate(world.facts):
        by_object.setdefault((f.relation, believed_object(f)), []).append(i)
    objects = {rel: sorted({believed_object(world.facts[j]) for j in idx}) for rel, idx in by_relation.items()}
    static = [i for i, f in enumerate(world.facts) if not f.temporal]
    temporal = [i for i, f in enumerate(world.facts) if f.temporal]
    cases = []
    for i in _pick(rng, static, MAX_COUNTERFACTUAL_EDITS) + _pick(rng, temporal, MAX_TEMPORAL_EDITS):
        f = world.facts[i]
        rel = RELATION_BY_NAME[f.relation]
        if f.temporal:
            true, new, kind = f.outdated_object, f.object, "outdated_to_current"
        else:
            options = objects[f.relation] if len(objects[f.relation]) > 1 else world.pool(f.object_kind)
            new = f.object
            while new == f.object:  # every pool has ≥ 2 distinct values, so this ends quickly
                new = rng.choice(options)
            true, kind = f.object, "counterfactual"
        # Neighbours: same relation, other subjects; first those that share target_true, then any whose believed
        # object is not target_new (else "P(true) > P(new)" would be meaningless for them).
        neighbours = _sample_where(rng, by_object[(f.relation, true)], NEIGHBOURS_PER_EDIT, lambda j: j != i)
        neighbours += _sample_where(rng, by_relation[f.relation], NEIGHBOURS_PER_EDIT - len(neighbours),
                                    lambda j: j != i and j not in neighbours
                                    and believed_object(world.facts[j]) != new)
        attribute = _sample_where(rng, by_object.get((f.relation, new), []), NEIGHBOURS_PER_EDIT, lambda j: j != i)
        train_prompts = [to_prompt(t) for t in rel.train]

        def filled(j: int) -> str:
            return fill(rng.choice(train_prompts), world.facts[j].subject)

        cases.append({
            "case_id": len(cases), "fact_id": f.id, "kind": kind, "temporal": f.temporal,
            "requested_rewrite": {"prompt": train_prompts[0], "relation_id": f.relation, "subject": f.subject,
                                  "target_new": {"str": new}, "target_true": {"str": true}},
            "paraphrase_prompts": [fill(to_prompt(t), f.subject) for t in rel.heldout],
            "neighborhood_prompts": [filled(j) for j in neighbours],
            "neighborhood_targets": [believed_object(world.facts[j]) for j in neighbours],
            "attribute_prompts": [filled(j) for j in attribute],
            "generation_prompts": [fill(p, f.subject) for p in train_prompts[1:]],
        })
    return cases
