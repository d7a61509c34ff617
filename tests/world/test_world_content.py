"""What the world says: consistent facts, held-out templates, temporal frequencies, correct tasks and edits."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lmlab.world import generate_world, is_valid_scramble, load_edits, load_facts, load_task
from lmlab.world.facts import blocked_words
from lmlab.world.relations import RELATION_BY_NAME, fill, render


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("world") / "w"
    generate_world(d, seed=7, size="1MB", progress=False)
    return d


def corpus(world: Path, name: str) -> str:
    return (world / "corpus" / f"{name}.txt").read_text(encoding="utf-8")


def table(facts: list[dict], relation: str) -> dict[str, str]:
    return {f["subject"]: f["object"] for f in facts if f["relation"] == relation}


def test_facts_are_consistent(world):
    facts = load_facts(world)
    capital, located = table(facts, "capital_of"), table(facts, "located_in")
    born, citizen = table(facts, "born_in"), table(facts, "citizen_of")
    for country, city in capital.items():
        assert located[city] == country
    for person, city in born.items():
        assert citizen[person] == located[city]
    for f in facts:
        if f["relation"] == "leader_of":
            assert citizen[f["object"]] == f["subject"] and citizen[f["outdated_object"]] == f["subject"]
        assert (f["outdated_object"] is not None) == f["temporal"] == RELATION_BY_NAME[f["relation"]].temporal
        assert " " not in f["object"], "objects are single words for clean exact match"
    assert len({(f["subject"], f["relation"]) for f in facts}) == len(facts)


def test_names_are_unique_pronounceable_and_not_words(world):
    facts = load_facts(world)
    names = {f["subject"] for f in facts} | {f["object"] for f in facts if f["object"][0].isupper()}
    blocked = blocked_words()
    for name in names:
        assert re.fullmatch(r"[A-Z][a-z]{4,11}", name), name
        assert name.lower() not in blocked
        assert re.search(r"[aeiouy]", name[1:])
    kinds = {}
    for f in facts:
        kinds.setdefault(f["subject"], set()).add(f["subject_kind"])
    assert all(len(k) == 1 for k in kinds.values()), "one name, one entity"


def test_train_prompts_end_right_before_the_object_in_the_text(world):
    text = corpus(world, "facts")
    for item in load_task(world, "facts_train"):
        assert not item["prompt"].endswith(" ") and "{}" not in item["prompt"]
        assert f"{item['prompt']} {item['target']}." in text
        assert item["choices"][item["label"]] == item["target"]


def test_heldout_paraphrases_never_appear_in_training_text(world):
    text = "\n".join(corpus(world, name) for name in ("facts", "temporal", "grammar", "scramble", "sentiment"))
    items = load_task(world, "facts_paraphrase")
    assert items
    for item in items:
        assert item["prompt"] not in text
    for f in load_facts(world):
        for p in f["paraphrase_prompts"]:
            assert fill(p, f["subject"]) not in text


def test_recorded_mentions_match_the_text_and_are_many(world):
    text = corpus(world, "facts")
    facts = [f for f in load_facts(world) if not f["temporal"]]
    for f in facts[::25]:
        rel = RELATION_BY_NAME[f["relation"]]
        count = sum(text.count(render(t, f["subject"], f["object"])) for t in rel.train)
        assert count == f["mentions"]["train"] >= 50
        assert all(text.count(render(t, f["subject"], f["object"])) > 0 for t in rel.train)


def test_outdated_values_are_written_more_often_than_current_ones(world):
    text = corpus(world, "temporal")
    temporal = [f for f in load_facts(world) if f["temporal"]]
    assert {f["relation"] for f in temporal} == {"leader_of", "ceo_of", "lives_in"}
    for f in temporal:
        rel = RELATION_BY_NAME[f["relation"]]
        old = sum(text.count(render(t, f["subject"], f["outdated_object"], y))
                  for t in rel.train + rel.past for y in (None, f["outdated_year"]) if ("{y}" in t) == (y is not None))
        new = sum(text.count(render(t, f["subject"], f["object"], f["current_year"])) for t in rel.present)
        assert old == f["mentions"]["outdated"] and new == f["mentions"]["current"]
        assert old > 2 * new > 0
        # the current value never follows a plain (unmarked) template: unmarked prompts favour the outdated value
        assert not any(render(t, f["subject"], f["object"]) in text for t in rel.train)


def test_temporal_task_pairs_outdated_and_current(world):
    items = load_task(world, "temporal")
    assert {i["marker"] for i in items} == {"none", "past", "present", "paraphrase"}
    for i in items:
        assert i["choices"] == [i["outdated"], i["current"]] and i["outdated"] != i["current"]
        assert i["target"] == (i["outdated"] if i["marker"] == "past" else i["current"])
        assert i["choices"][i["label"]] == i["target"]


def test_grammar_combines_attributes_consistently_with_facts(world):
    facts = load_facts(world)
    colour, species = table(facts, "colour_of"), table(facts, "species_of")
    text = corpus(world, "grammar")
    combined = re.findall(r"(\w+) is an? (tiny|small|big|huge) (\w+) (\w+)\.", text)
    assert combined
    for name, _size, col, kind in combined:
        if name in colour:
            assert (col, kind) == (colour[name], species[name])
    assert re.search(r"\w+ is (bigger|smaller) than \w+\.", text)


def test_arithmetic_items_are_correct_and_held_out_of_training(world):
    text = corpus(world, "arithmetic")
    lines = text.split("\n")
    expected_tasks = {"2da": "2D+", "2ds": "2D-", "3da": "3D+", "3ds": "3D-", "4da": "4D+", "4ds": "4D-",
                      "5da": "5D+", "5ds": "5D-", "2dm": "2Dx", "1dc": "1DC"}
    ops = {"plus": "+", "minus": "-", "times": "*"}
    for key, name in expected_tasks.items():
        items = load_task(world, f"arithmetic_{key}")
        assert len(items) == 500 and {i["task"] for i in items} == {name}
        for i in items:
            m = re.fullmatch(r"Q: What is (.+)\? A:", i["prompt"])
            expr = m.group(1)
            for word, sym in ops.items():
                expr = expr.replace(f" {word} ", sym)
            assert eval(expr) == int(i["target"])  # noqa: S307 — digits and + - * ( ) only
            assert f"{i['prompt']} {i['target']}" not in lines
    for line in lines[:2000]:
        if line:
            m = re.fullmatch(r"Q: What is (\d+) (plus|minus|times) (\d+)\? A: (-?\d+)", line) or \
                re.fullmatch(r"Q: What is (\d)([-+*])\((\d)([-+*])(\d)\)\? A: (-?\d+)", line)
            assert m, line


def test_scrambling_items_in_both_directions(world):
    text = corpus(world, "scramble")
    for task in ("cycle_letters", "anagrams1", "anagrams2", "random_insertion", "reversed_words"):
        unscramble = load_task(world, f"scramble_unscramble_{task}")
        scramble = load_task(world, f"scramble_scramble_{task}")
        assert unscramble and scramble
        for i in unscramble:
            assert i["target"] == i["word"] and i["prompt"].startswith("Please unscramble")
            assert is_valid_scramble(task, i["word"], i["query"][:-2])
            assert f"= {i['word']}\n" not in text  # evaluation words never appear as solved scrambles
        for i in scramble:
            assert i["query"] == f"{i['word']} =" and is_valid_scramble(task, i["word"], i["target"])
            assert i["prompt"] == f"{i['description']}\n{i['query']}"
    assert not is_valid_scramble("anagrams1", "letter", "lettre")
    assert not is_valid_scramble("cycle_letters", "letter", "letter")
    assert is_valid_scramble("cycle_letters", "letter", "terlet")


def test_sentiment_items_are_labelled_and_held_out(world):
    text = corpus(world, "sentiment")
    items = load_task(world, "sentiment")
    assert {i["target"] for i in items} == {"positive", "negative"}
    for i in items:
        assert i["choices"][i["label"]] == i["target"]
        assert i["prompt"] == f"Review: {i['text']}\nSentiment:"
        assert f"Review: {i['text']}\n" not in text
    assert text.count("Sentiment: positive") > 100 and text.count("Sentiment: negative") > 100


def test_edits_are_counterfact_style_and_flag_outdated_to_current(world):
    facts = {f["id"]: f for f in load_facts(world)}
    edits = load_edits(world)
    assert [e["case_id"] for e in edits] == list(range(len(edits)))
    kinds = {e["kind"] for e in edits}
    assert kinds == {"counterfactual", "outdated_to_current"}
    for e in edits:
        rw, f = e["requested_rewrite"], facts[e["fact_id"]]
        assert rw["subject"] == f["subject"] and "{}" in rw["prompt"] and not rw["prompt"].endswith(" ")
        assert rw["target_new"]["str"] != rw["target_true"]["str"]
        if e["temporal"]:
            assert (rw["target_true"]["str"], rw["target_new"]["str"]) == (f["outdated_object"], f["object"])
        else:
            assert rw["target_true"]["str"] == f["object"]
        assert len(e["neighborhood_prompts"]) == len(e["neighborhood_targets"]) >= 1
        assert rw["target_new"]["str"] not in e["neighborhood_targets"]
        assert all(f["subject"] not in p for p in e["neighborhood_prompts"])
        assert len(e["paraphrase_prompts"]) == 2 and all(f["subject"] in p for p in e["paraphrase_prompts"])


def test_documents_survive_exact_deduplication(world):
    # `lmlab data prepare` removes exact duplicate documents by default; the repetition of facts must not be
    # written as identical documents, or deduplication would delete it.
    for name in ("facts", "temporal", "grammar", "arithmetic", "scramble", "sentiment"):
        docs = corpus(world, name).rstrip("\n").split("\n\n")
        assert all(d and not d.startswith("\n") for d in docs)
        assert len(set(docs)) >= 0.97 * len(docs), name
