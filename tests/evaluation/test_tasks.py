"""Task format: GPT-3 prompt construction, seeded few-shot draws that never show the scored item, YAML files."""

import json

import pytest

from lmlab.errors import LmlabError
from lmlab.evaluation import Task, TaskConfig, load_task_yaml

DOCS = [{"q": f"{a} plus {a}", "a": str(2 * a)} for a in range(10)]


def arithmetic_task(**kw) -> Task:
    cfg = dict(task="double", doc_to_text="Q: What is {q}? A:", doc_to_target="{a}", description="Add.\n\n")
    cfg.update(kw)
    return Task(TaskConfig(**cfg), DOCS)


def test_prompt_is_description_then_solved_examples_then_the_item():
    task = arithmetic_task()
    examples = task.fewshot_examples(3, 2)
    expected = ("Add.\n\n"
                + "".join(f"Q: What is {ex['q']}? A: {ex['a']}\n\n" for ex in examples)
                + "Q: What is 3 plus 3? A:")
    assert task.context(3, 2) == expected
    assert task.context(3, 0) == "Add.\n\nQ: What is 3 plus 3? A:"
    assert task.target(DOCS[3]) == "6"


def test_delimiters_are_configurable():
    task = arithmetic_task(description="", target_delimiter="=", fewshot_delimiter="\n")
    [ex] = task.fewshot_examples(0, 1)
    assert task.context(0, 1) == f"Q: What is {ex['q']}? A:={ex['a']}\nQ: What is 0 plus 0? A:"


def test_fewshot_examples_never_include_the_scored_item_and_are_seeded():
    task = arithmetic_task()
    for i in range(len(DOCS)):
        shown = task.fewshot_examples(i, 9)  # every other document
        assert DOCS[i] not in shown and len(shown) == 9 and len({d["q"] for d in shown}) == 9
    assert task.fewshot_examples(4, 3) == task.fewshot_examples(4, 3)  # same item, same seed → same examples
    draws = {tuple(d["q"] for d in task.fewshot_examples(4, 3, seed=s)) for s in range(10)}
    assert len(draws) > 1  # the seed changes the draw
    with pytest.raises(LmlabError, match="10 shots asked for but only 9"):
        task.fewshot_examples(0, 10)


def test_fewshot_split_supplies_the_examples():
    pool = [{"q": "100 plus 100", "a": "200"}]
    task = Task(TaskConfig(task="t", doc_to_text="{q}", doc_to_target="{a}"), DOCS, fewshot_docs=pool)
    assert task.context(0, 1) == "100 plus 100 200\n\n0 plus 0"


def test_multiple_choice_gold_is_an_index_or_the_choice_text():
    by_index = Task(TaskConfig(task="mc", output_type="multiple_choice", doc_to_text="{x}", doc_to_choice="opts",
                               doc_to_target="{label}"), [{"x": "?", "opts": ["no", "yes"], "label": 1}])
    assert by_index.gold(by_index.docs[0]) == 1 and by_index.target(by_index.docs[0]) == "yes"
    by_text = Task(TaskConfig(task="mc", output_type="multiple_choice", doc_to_text="{x}",
                              doc_to_choice=["{good}", "{bad}"], doc_to_target="{good}"),
                   [{"x": "", "good": "A cat.", "bad": "A cats."}])
    assert by_text.choices(by_text.docs[0]) == ["A cat.", "A cats."] and by_text.gold(by_text.docs[0]) == 0


def test_template_with_a_missing_field_names_it():
    task = arithmetic_task(doc_to_text="{question}")
    with pytest.raises(LmlabError, match="'question'"):
        task.context(0, 0)


def test_bad_output_type_is_refused():
    with pytest.raises(LmlabError, match="output_type"):
        TaskConfig(task="t", output_type="classify")


def test_yaml_task_with_train_and_test_files(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "test.jsonl").write_text("".join(json.dumps(d) + "\n" for d in DOCS[:3]))
    (tmp_path / "data" / "train.jsonl").write_text(json.dumps({"q": "7 plus 7", "a": "14"}) + "\n")
    (tmp_path / "t.yaml").write_text(
        "task: yaml_double\n"
        "data_files: {test: data/test.jsonl, train: data/train.jsonl}\n"
        "fewshot_split: train\n"
        "output_type: generate_until\n"
        "doc_to_text: 'Q: {q} A:'\n"
        "doc_to_target: '{a}'\n"
        "fewshot_delimiter: \"\\n\"\n"
        "until: [\"\\n\"]\n")
    task = load_task_yaml(tmp_path / "t.yaml")
    assert task.name == "yaml_double" and len(task.docs) == 3
    assert task.context(2, 1) == "Q: 7 plus 7 A: 14\nQ: 2 plus 2 A:"
    assert task.config.stop == ["\n"]


def test_yaml_errors_name_the_problem(tmp_path):
    (tmp_path / "a.yaml").write_text("task: a\ndataset_path: missing.jsonl\n")
    with pytest.raises(LmlabError, match="missing.jsonl"):
        load_task_yaml(tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text("task: b\ndataset_path: x.jsonl\nnum_shots: 3\n")
    with pytest.raises(LmlabError, match="unknown keys num_shots"):
        load_task_yaml(tmp_path / "b.yaml")
    (tmp_path / "c.jsonl").write_text('{"q": 1}\nnot json\n')
    (tmp_path / "c.yaml").write_text("task: c\ndataset_path: c.jsonl\n")
    with pytest.raises(LmlabError, match=r"c.jsonl:2"):
        load_task_yaml(tmp_path / "c.yaml")
    with pytest.raises(LmlabError, match="nope.yaml"):
        load_task_yaml(tmp_path / "nope.yaml")
