"""Built-in tasks: GPT-3 arithmetic and scrambling from a seed, world tasks, real-data files, name resolution."""

import re

import pytest

from lmlab.errors import LmlabError
from lmlab.evaluation import builtin_tasks, resolve_tasks
from lmlab.world import load_task

GPT3_ARITHMETIC = ["2D+", "2D-", "3D+", "3D-", "4D+", "4D-", "5D+", "5D-", "2Dx", "1DC"]


def test_arithmetic_tasks_are_in_the_papers_format_with_correct_answers():
    tasks = resolve_tasks("arithmetic", seed=0)
    assert [t.name for t in tasks] == ["arithmetic_2da", "arithmetic_2ds", "arithmetic_3da", "arithmetic_3ds",
                                       "arithmetic_4da", "arithmetic_4ds", "arithmetic_5da", "arithmetic_5ds",
                                       "arithmetic_2dm", "arithmetic_1dc"]
    ops = {"plus": "+", "minus": "-", "times": "*"}
    for task, gpt3 in zip(tasks, GPT3_ARITHMETIC):
        assert len(task.docs) == 500 and len({d["prompt"] for d in task.docs}) == 500
        digits = int(gpt3[0])
        for doc in task.docs[:50]:
            m = re.fullmatch(r"Q: What is (\d+) (plus|minus|times) (\d+)\? A:", doc["prompt"])
            if gpt3 == "1DC":
                m2 = re.fullmatch(r"Q: What is (\d)([-+*])\((\d)([-+*])(\d)\)\? A:", doc["prompt"])
                assert m2, doc["prompt"]
                expr = doc["prompt"][len("Q: What is "):-len("? A:")]
            else:
                assert m and len(m[1]) <= digits and len(m[3]) <= digits, doc["prompt"]
                expr = f"{m[1]} {ops[m[2]]} {m[3]}"
            assert task.target(doc) == str(eval(expr))  # noqa: S307 (digits and operators only)
        assert task.config.output_type == "generate_until" and task.config.stop == ["\n"]
    first = tasks[0]
    assert first.context(0, 0) == first.docs[0]["prompt"]  # 'Q: What is 48 plus 76? A:' → ' 124'
    assert resolve_tasks("2D+", seed=0)[0].docs == first.docs  # GPT-3 name as alias, same seed → same items
    assert resolve_tasks("2D+", seed=1)[0].docs != first.docs


def test_scrambling_tasks_both_directions():
    tasks = {t.name: t for t in resolve_tasks("scramble", seed=0)}
    assert len(tasks) == 10
    unscr = tasks["scramble_unscramble_reversed_words"]
    doc = unscr.docs[0]
    instruction = "Please unscramble the letters into a word, and write that word:"
    assert unscr.context(0, 0) == f"{instruction}\n{doc['word'][::-1]} ="
    assert unscr.target(doc) == doc["word"] and unscr.check is None
    scr = tasks["scramble_scramble_anagrams1"]
    doc = scr.docs[0]
    assert scr.context(0, 1).endswith(f"\n{doc['word']} =") and scr.context(0, 1).count("\n") == 2
    word = doc["word"]
    other = word[0] + word[1:-1][::-1] + word[-1]
    assert scr.check(doc, other) == (other != word or len(set(word[1:-1])) < 2)
    assert not scr.check(doc, "x" + word)


def test_world_tasks_read_the_worlds_files(world_dir):
    tasks = {t.name: t for t in resolve_tasks("world,facts_train_mc,arithmetic_2da", world=world_dir)}
    assert tasks["facts_train"].docs == load_task(world_dir, "facts_train")
    facts = tasks["facts_train"]
    doc = facts.docs[0]
    assert facts.context(0, 0) == doc["prompt"] and facts.target(doc) == doc["target"]
    assert facts.config.stop == [".", "\n"]
    mc = tasks["facts_train_mc"]
    assert mc.target(mc.docs[0]) == doc["target"] and len(mc.choices(mc.docs[0])) == len(doc["choices"])
    temporal = tasks["temporal"]
    assert temporal.config.group_by == "marker" and temporal.config.output_type == "multiple_choice"
    assert {d["marker"] for d in temporal.docs} == {"none", "past", "present", "paraphrase"}
    sentiment = tasks["sentiment"]
    assert sentiment.choices(sentiment.docs[0]) == ["negative", "positive"]
    # An explicit world makes arithmetic use the world's held-out questions.
    assert tasks["arithmetic_2da"].docs == load_task(world_dir, "arithmetic_2da")


def test_world_task_without_a_world_says_how_to_get_one(tmp_path):
    with pytest.raises(LmlabError, match="--world"):
        resolve_tasks("facts_train", world=tmp_path)


def test_file_tasks_on_the_shared_data(shared_data):
    sst2 = resolve_tasks(f"sst2:{shared_data / 'sst2_alps_dev.tsv'}")[0]
    assert len(sst2.docs) == 6735 and sst2.choices(sst2.docs[0]) == ["negative", "positive"]
    assert sst2.context(0, 0).endswith("\nQuestion: Is this sentence positive or negative?\nAnswer:")
    imdb = resolve_tasks(f"sentiment_labelled:{shared_data / 'imdb_labelled.txt'}")[0]
    assert len(imdb.docs) == 1000 and sum(d["label"] for d in imdb.docs) == 500
    assert '"' in "".join(d["sentence"] for d in imdb.docs)  # quotes kept: the file is read without CSV quoting
    blimp = resolve_tasks(f"blimp:{shared_data / 'blimp'}")[0]  # a directory: every paradigm file in it
    assert len(blimp.docs) == 1000
    doc = blimp.docs[0]
    assert blimp.context(0, 0) == "" and blimp.choices(doc) == [doc["sentence_good"], doc["sentence_bad"]]
    assert blimp.gold(doc) == 0 and blimp.config.target_delimiter == ""
    cf = resolve_tasks(f"counterfact:{shared_data / 'counterfact_easyedit_edit_10k.json'}")[0]
    assert cf.docs[0] == {"prompt": "The mother tongue of Danielle Darrieux is", "target": "French"}
    assert cf.config.output_type == "loglikelihood"
    zsre = resolve_tasks(f"zsre:{shared_data / 'zsre_mend_train_1k.json'}")[0]
    assert zsre.docs[0] == {"prompt": "What is the product made by UniFirst?", "target": "uniform"}


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.tsv"
    for name in ("sst2", "sentiment_labelled", "blimp", "counterfact", "zsre", "text"):
        with pytest.raises(LmlabError, match=re.escape(str(missing))):
            resolve_tasks(f"{name}:{missing}")
    with pytest.raises(LmlabError, match="sst2:PATH"):
        resolve_tasks("sst2")


def test_unknown_and_repeated_names_are_refused():
    with pytest.raises(LmlabError, match="unknown task 'arithmetic_9da'"):
        resolve_tasks("arithmetic_9da")
    with pytest.raises(LmlabError, match="named twice"):
        resolve_tasks("arithmetic_2da,2D+")


def test_every_builtin_has_a_one_line_summary():
    listed = builtin_tasks()
    assert len(listed) >= 30
    assert all(t["summary"] and "\n" not in t["summary"] for t in listed)
