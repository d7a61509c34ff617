"""WorldOptions: the defaults keep today's world byte for byte; forms, order, statements per round, name
variants and the extraction split change facts.txt as documented; facts_extract never asks a sentence the text
holds; bad options fail in one line."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from lmlab.cli import main
from lmlab.errors import LmlabError
from lmlab.world import WorldOptions, generate_world, load_facts, load_task, paraphrase_audit
from lmlab.world.extraction import prompts_in_text
from lmlab.world.facts import blocked_words
from lmlab.world.relations import RELATION_BY_NAME, RELATIONS, fill, render, words_of
from lmlab.world.vocabulary import corpus_words, unseen_words


def tree_hashes(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*"))
            if p.is_file()}


def facts_text(world: Path) -> str:
    return (world / "corpus" / "facts.txt").read_text(encoding="utf-8")


def corpus_text(world: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted((world / "corpus").glob("*.txt")))


@pytest.fixture(scope="module")
def extraction_world(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("ext") / "w"
    generate_world(d, seed=3, size="300KB", options=WorldOptions(extraction=True), progress=False)
    return d


def test_default_options_give_the_same_bytes_as_no_options(tmp_path):
    generate_world(tmp_path / "a", seed=5, size="100KB", progress=False)
    generate_world(tmp_path / "b", seed=5, size="100KB", options=WorldOptions(forms=4, order="shuffled",
                                                                                extraction=False), progress=False)
    assert tree_hashes(tmp_path / "a") == tree_hashes(tmp_path / "b")
    assert "options" not in json.loads((tmp_path / "a" / "world.json").read_text())
    # Pinned: the facts text every earlier world of this seed and size had; a new option must not move it.
    assert tree_hashes(tmp_path / "a")["corpus/facts.txt"] == \
        "c5d36125e4b8a77b0d8aa09622b923eeca1b755ec6e2af63fb6487ddc3b03f26"


def test_extraction_split_questions_only_for_exposed_subjects(extraction_world):
    text = facts_text(extraction_world)
    static = [f for f in load_facts(extraction_world) if not f["temporal"]]
    sides = {f["extraction"] for f in static}
    assert sides == {"exposed", "held_out"}
    for f in static:
        asked = [fill(p, f["subject"]) for p in f["question_prompts"]]
        seen = [render(t, f["subject"], f["object"]) in text for t in RELATION_BY_NAME[f["relation"]].question]
        if f["extraction"] == "held_out":
            assert not any(p in text for p in asked), f["subject"]
            assert f["mentions"]["question"] == 0 and f["mentions"]["train"] > 0
        else:
            assert any(seen) and f["mentions"]["question"] > 0
    for kind in {f["subject_kind"] for f in static}:  # half of each kind's subjects on each side
        split = {f["subject"]: f["extraction"] for f in static if f["subject_kind"] == kind}
        exposed = sum(side == "exposed" for side in split.values())
        assert abs(exposed - len(split) / 2) <= 0.5
    info = json.loads((extraction_world / "world.json").read_text())
    assert info["options"] == {"extraction": True}


def test_facts_extract_asks_held_out_subjects_and_never_occurs_in_the_text(extraction_world):
    items = load_task(extraction_world, "facts_extract")
    held_out = {f["subject"] for f in load_facts(extraction_world) if f.get("extraction") == "held_out"}
    assert items and {it["subject"] for it in items} == held_out
    text = corpus_text(extraction_world)
    assert prompts_in_text(items, [text]) == []
    for it in items:
        assert it["prompt"] not in text and it["prompt"] == fill(it["template"], it["subject"])
        assert it["choices"][it["label"]] == it["target"]


def test_prompts_in_text_finds_planted_prompts():
    items = [{"template": "Q: What is the capital of {}? A:", "subject": "Vorland"},
             {"template": "{}'s capital city:", "subject": "Kestra"}]
    text = "Q: What is the capital of Vorland? A: Kesta. Kestra's capital city: Dremby. Kestra's capital is X."
    assert prompts_in_text(items, [text]) == ["Q: What is the capital of Vorland? A:", "Kestra's capital city:"]
    assert prompts_in_text(items, ["The capital of Vorland is Kesta. Vorland's capital city is far."]) == []


def test_one_form_per_fact_and_fixed_order(tmp_path):
    w = tmp_path / "w"
    generate_world(w, seed=2, size="200KB", options=WorldOptions(forms=1, order="fixed"), progress=False)
    text = facts_text(w)
    facts = [f for f in load_facts(w) if not f["temporal"]]
    paragraphs: dict[str, list[str]] = {}  # subject → its facts' sentences in fact order
    for f in facts:
        used = [t for t in RELATION_BY_NAME[f["relation"]].train if render(t, f["subject"], f["object"]) in text]
        assert len(used) == 1, f  # one statement form per fact
        assert f["statement_prompts"] == [used[0][:used[0].index(" {o}")].replace("{s}", "{}")]
        paragraphs.setdefault(f["subject"], []).append(render(used[0], f["subject"], f["object"]))
    mentions = {f["subject"]: f["mentions"]["train"] for f in facts}
    for subject, sentences in paragraphs.items():  # fixed order: every paragraph about a subject is the same
        assert text.count(" ".join(sentences)) == mentions[subject], subject
    for item in load_task(w, "facts_train"):  # facts_train asks each fact in the form the text uses
        assert f"{item['prompt']} {item['target']}." in text


def test_statements_per_round_state_each_fact_in_different_forms_side_by_side(tmp_path):
    w = tmp_path / "w"
    generate_world(w, seed=2, size="200KB", options=WorldOptions(forms=2, statements=2, order="fixed"),
                   progress=False)
    text = facts_text(w)
    facts = [f for f in load_facts(w) if not f["temporal"]]
    for f in facts:
        forms = [p.replace("{}", f["subject"]) + " " + f["object"] + "." for p in f["statement_prompts"]]
        assert len(forms) == 2
        # every paragraph about the subject states the fact once in each form, the two side by side (fixed order;
        # two paragraphs about one subject can meet in a document, so a pair may also be read across them)
        half = f["mentions"]["train"] // 2
        assert f["mentions"]["train"] % 2 == 0 and text.count(forms[0]) == text.count(forms[1]) == half, f
        assert text.count(forms[0] + " " + forms[1]) + text.count(forms[1] + " " + forms[0]) >= half, f
    info = json.loads((w / "world.json").read_text())
    assert info["options"] == {"forms": 2, "order": "fixed", "statements": 2}


def test_name_variants_name_subjects_two_ways_and_leak_no_held_out_prompt(tmp_path):
    w = tmp_path / "w"
    generate_world(w, seed=4, size="300KB", options=WorldOptions(extraction=True, name_variants=True),
                   progress=False)
    text, everything = facts_text(w), corpus_text(w)
    facts = [f for f in load_facts(w) if not f["temporal"]]
    entity_names = {f["subject"] for f in load_facts(w)} | {f["object"] for f in load_facts(w)}
    for f in facts:
        plain, variant = f["subject_names"]
        assert plain == f["subject"] and variant != plain and plain in variant
        assert not set(variant.split()) - {plain} & entity_names  # a family name never names another entity
        # both names occur in statements of this fact
        statements = [p for p in RELATION_BY_NAME[f["relation"]].train]
        for name in (plain, variant):
            said = [render(t, name[0].upper() + name[1:] if t.startswith("{s}") else name, f["object"])
                    for t in statements]
            assert any(s in text for s in said), (name, f["relation"])
    for kind, title in (("country", "the Republic of "), ("city", "the town of "), ("company", " Group")):
        assert all(title in f["subject_names"][1] for f in facts if f["subject_kind"] == kind)
    # question forms keep the plain name; held-out prompts of both fact tasks never occur in the text
    assert "Q: What is the capital of the Republic of" not in text
    for task in ("facts_extract", "facts_paraphrase"):
        assert prompts_in_text(load_task(w, task), [everything]) == [], task
    assert json.loads((w / "world.json").read_text())["options"] == {"extraction": True, "name_variants": True}


def test_question_forms_use_only_training_words_and_blocked_names(extraction_world):
    audit = paraphrase_audit(extraction_world, kind="question")
    assert set(audit) == {r.name for r in RELATIONS if not r.temporal}
    assert all(unseen == [] for forms in audit.values() for unseen in forms.values()), audit
    blocked = blocked_words()
    for r in RELATIONS:
        for t in r.question:
            assert t.endswith(" {o}.") and t.count("{s}") == 1
            assert set(words_of(t)) <= blocked, t  # names can never be these words


def test_heldout_paraphrases_are_readable_and_the_audit_names_unseen_words(extraction_world):
    # facts_paraphrase asks in words the model has read, so it measures transfer, not missing vocabulary
    audit = paraphrase_audit(extraction_world)
    assert set(audit) == {r.name for r in RELATIONS}
    assert all(unseen == [] for forms in audit.values() for unseen in forms.values()), audit
    # the first held-out templates were not: the audit names what a model never read
    assert unseen_words("The seat of government of {s} is {o}.", corpus_words(extraction_world)) == [
        "seat", "government"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(forms=0), "forms must be an integer from 1 to 4"),
    (dict(forms=5), "forms must be an integer from 1 to 4"),
    (dict(order="random"), "order must be one of shuffled, fixed"),
    (dict(extraction="yes"), "extraction must be true or false"),
    (dict(exposed_fraction=1.0), "exposed_fraction must be a number strictly between 0 and 1"),
    (dict(forms=2, statements=3), r"statements must be an integer from 1 to forms \(2\)"),
    (dict(statements=0), r"statements must be an integer from 1 to forms \(4\)"),
    (dict(name_variants="yes"), "name_variants must be true or false"),
])
def test_bad_options_are_rejected_in_one_line(kwargs, message):
    with pytest.raises(LmlabError, match=message) as e:
        WorldOptions(**kwargs)
    assert "\n" not in str(e.value)


def test_cli_flags(tmp_path, capsys):
    out = tmp_path / "w"
    assert main(["world", "--out", str(out), "--size", "100KB", "--forms", "2", "--order", "fixed",
                 "--extraction", "--exposed-fraction", "0.25", "--statements", "2", "--name-variants"]) == 0
    info = json.loads((out / "world.json").read_text())
    assert info["options"] == {"forms": 2, "order": "fixed", "extraction": True, "exposed_fraction": 0.25,
                               "statements": 2, "name_variants": True}
    assert "facts_extract" in info["counts"]["task_items"]
    capsys.readouterr()
    assert main(["world", "--out", str(tmp_path / "w2"), "--size", "100KB", "--order", "sorted"]) == 2
    err = capsys.readouterr().err.strip()
    assert re.fullmatch(r"lmlab: error: world options: order must be one of shuffled, fixed, got 'sorted'", err)
