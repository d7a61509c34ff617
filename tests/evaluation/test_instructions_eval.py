"""`lmlab eval instructions`: exact match per instruction type, with the run's template or the plain prompt."""

from __future__ import annotations

import json

import pytest

from lmlab.errors import LmlabError
from lmlab.evaluation.instructions import eval_instructions
from tests.instruction_helpers import EXAMPLES, instruction_world, tuned_run, write_jsonl  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_tuned_run_is_asked_with_its_template(tuned_run, tmp_path):  # noqa: F811
    data = write_jsonl(tmp_path / "ex.jsonl", [dict(e, type="known") for e in EXAMPLES])
    report = eval_instructions(tuned_run, data, out=tmp_path / "r.json", progress=False)
    assert report["settings"]["prompt"] == "template"
    rows = {(r["task"], r["shots"]): r for r in report["results"]}
    assert rows[("ex:known", 0)]["metrics"]["exact_match"] == 1.0  # it answers what it was tuned on
    assert rows[("ex", 0)]["n"] == len(EXAMPLES)  # the file's mean over its types
    items = [json.loads(line) for line in (tmp_path / "r.items.jsonl").read_text().splitlines()]
    assert items[0]["prompt"].endswith("Answer:<bos>") and items[0]["prediction"].strip() == items[0]["target"]


def test_base_run_gets_plain_and_few_shot_prompts(instruction_world, tmp_path):  # noqa: F811
    data = instruction_world["instructions"] / "heldout_phrasings.jsonl"
    report = eval_instructions(instruction_world["base"], data, shots="0,2", limit=3, out=tmp_path / "r.json",
                               progress=False)
    assert report["settings"]["prompt"] == "plain"
    tasks = {r["task"] for r in report["results"]}
    assert {"heldout_phrasings:fact_question", "heldout_phrasings:sentiment", "heldout_phrasings"} <= tasks
    items = [json.loads(line) for line in (tmp_path / "r.items.jsonl").read_text().splitlines()]
    two_shot = next(it for it in items if it["shots"] == 2 and it["task"].endswith("arithmetic"))
    assert two_shot["prompt"].count("\nAnswer:") == 3 and "<bos>" not in two_shot["prompt"]
    with pytest.raises(LmlabError, match="has no prompt template"):
        eval_instructions(instruction_world["base"], data, prompt="template", progress=False)
