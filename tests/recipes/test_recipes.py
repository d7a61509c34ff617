"""Named recipes (lmlab.recipes): the table is complete and valid, `lmlab recipes` lists it, `lmlab train --recipe
NAME` runs one end to end on the built-in world (shortened with --key value overrides; the full runs are measured
in docs/recipes.md), and the presets' training settings come from the recipes whatever the data."""

import json
import os
import re
from pathlib import Path

import pytest

from lmlab.cli import main
from lmlab.errors import LmlabError
from lmlab.models.registry import build_config, type_preset
from lmlab.models.presets import get_preset
from lmlab.recipes import RECIPES, get_recipe, preset_settings, recipe_for, run
from lmlab.training import TrainConfig, apply_overrides
from lmlab.world import load_task
from lmlab.world.arithmetic import TASKS as ARITHMETIC_TASKS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHORT = {"max_iters": 2, "eval_interval": 2, "eval_iters": 1, "device": "cpu"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """One directory for the module's recipes, so the 2 MB world and its shards are built once."""
    d = tmp_path_factory.mktemp("recipes")
    old = os.getcwd()
    os.chdir(d)
    yield d
    os.chdir(old)


def test_the_issue_s_recipes_are_in_the_table():
    assert {"world", "arithmetic", "shakespeare-char", "ngram", "lstm", "bilstm", "word2vec", "cooc", "ppmi",
            "bert", "seq2seq"} <= set(RECIPES)


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_s_settings_build_its_model_and_training_configs(name):
    recipe = RECIPES[name]
    if recipe.model_type == "gpt":
        model_config = get_preset(recipe.model_preset)
    else:
        model_config = build_config(recipe.model_type, type_preset(recipe.model_type, recipe.model_preset))
    # a misspelt key or a bad value is an error here, not in the middle of someone's run
    _, train_config = apply_overrides(model_config, TrainConfig(), recipe.settings())
    assert train_config.dtype == "float32" and recipe.minutes > 0 and recipe.shows and recipe.outputs


def test_lmlab_recipes_lists_each_recipe_with_its_minutes(capsys):
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    for name, recipe in RECIPES.items():
        line = next(li for li in out.splitlines() if li.startswith(name + " "))
        assert f"{recipe.minutes:.1f}" in line and recipe.shows in line
    assert main(["recipes", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["arithmetic"]["model"] == {"pos_embedding": "rotary", "rotary_pct": 0.25}


def test_a_preset_s_training_settings_come_from_the_recipe_that_owns_it():
    assert recipe_for("lstm", None).name == "lstm" and recipe_for(None, "bilstm-tiny").name == "bilstm"
    assert recipe_for(None, "tiny").name == "world" and recipe_for("ngram", None).name == "ngram"
    assert recipe_for(None, "small") is None and preset_settings(None, "small") == {}
    # another's data keeps dtype auto (the recipe's float32 pin is for its own documented numbers)
    assert preset_settings("lstm")["lr"] == 3e-3 and "dtype" not in preset_settings("lstm")


def test_unknown_recipe_and_misuse_are_one_line_errors(tmp_path, capsys):
    with pytest.raises(LmlabError, match="did you mean 'arithmetic'"):
        get_recipe("arithmetics")
    with pytest.raises(LmlabError, match="--text"):
        run("shakespeare-char", out=tmp_path / "r", progress=False)
    with pytest.raises(LmlabError, match="not --model lstm"):
        run("arithmetic", model_type="lstm", out=tmp_path / "r", progress=False)
    assert main(["train", "--recipe", "world", "--resume", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lmlab: error: --recipe starts a new run") and err.count("\n") == 1


def test_arithmetic_recipe_composes_its_text_and_trains_its_model(workdir):
    result = run("arithmetic", overrides=SHORT, progress=False)
    run_dir = Path(result.train.run_dir)
    assert run_dir == Path("runs/arithmetic")
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"]["pos_embedding"] == "rotary" and config["model"]["rotary_pct"] == 0.25
    assert config["training"]["dtype"] == "float32" and config["training"]["max_iters"] == 2
    assert config["training"]["lr"] == 1e-3  # the tiny GPT's settings under the overrides
    # the cut sections are whole paragraphs of the world's own text, at most 100 KB
    for name in ("grammar", "scramble", "sentiment"):
        cut = Path(f"runs/arithmetic-text/{name}.txt").read_bytes()
        full = Path(f"runs/world/corpus/{name}.txt").read_bytes()
        assert 90_000 < len(cut) <= 100_000 and full.startswith(cut) and full[len(cut):].startswith(b"\n\n")
    # 6,600 documents of extra sums, none of them a held-out question of any arithmetic task (a 3D+ question with
    # two operands below 100 reads like a 2-digit sum)
    sums = Path("runs/arithmetic-text/sums2d.txt").read_text()
    assert sums.count("\n\n") == 6600 - 1
    held_out = {item["prompt"] for key in ARITHMETIC_TASKS for item in load_task("runs/world", f"arithmetic_{key}")}
    two_digit_like = [item["prompt"] for item in load_task("runs/world", "arithmetic_3da")
                      if re.fullmatch(r"Q: What is \d{1,2} plus \d{1,2}\? A:", item["prompt"])]
    assert two_digit_like  # the case the check is for exists in the world's 3D+ questions
    assert not held_out & {line.rsplit(" ", 1)[0] for line in sums.splitlines() if line}
    # the tokenizer is the main job's, so the two models read the same tokens
    assert Path("runs/arithmetic-data/tokenizer.json").read_bytes() == \
        Path("runs/world-data/tokenizer.json").read_bytes()
    tasks = {r["task"] for r in result.report["eval"]["results"]}
    assert tasks == {"arithmetic_2da", "facts_train"}
    assert all(r["shots"] == 5 for r in result.report["eval"]["results"])


def test_family_recipes_run_on_the_world_and_show_their_report(workdir, capsys):
    assert main(["train", "--recipe", "ngram", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("trained 0 steps into runs/ngram (fitted") and out.count(" → ") == 5
    result = run("cooc", progress=False)
    assert Path("runs/world-words-data/manifest.json").is_file()
    assert json.loads(Path("runs/world-words-data/manifest.json").read_text())["tokenizer"]["kind"] == "word"
    assert len(result.report["neighbours"]) == 2


def test_a_recipe_on_your_own_text_shakespeare_char(tmp_path, capsys):
    text = tmp_path / "input.txt"
    text.write_text("".join(f"First Citizen:\nSpeak, speak. We are resolved {i}.\n\n" for i in range(300)))
    out = tmp_path / "run"
    assert main(["train", "--recipe", "shakespeare-char", "--text", str(text), "--out", str(out), "--no-progress",
                 *[f"--{k}={v}" for k, v in SHORT.items()]]) == 0
    printed = capsys.readouterr().out
    assert "sample (temperature 0.8):" in printed
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["block_size"] == 64 and config["training"]["batch_size"] == 12
    assert json.loads((out / "data" / "manifest.json").read_text())["tokenizer"]["kind"] == "char"


def test_finetune_trains_each_kind_with_the_recipes_settings(tmp_path):
    from lmlab.recipes import FINETUNE_TRAIN, finetune

    from ..classifier_helpers import write_toy_tsv

    data = write_toy_tsv(tmp_path / "train.tsv", n=40, seed=0)
    finetune(tmp_path / "bow", model="bow", data=data, overrides={"max_iters": 2, "device": "cpu"}, progress=False)
    training = json.loads((tmp_path / "bow" / "config.json").read_text())["training"]
    expected = {k: v for k, v in FINETUNE_TRAIN["bow"].items() if k != "max_iters"}
    assert {k: training[k] for k in expected} == expected and training["max_iters"] == 2
