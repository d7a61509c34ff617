"""lmlab.evaluation.classification and the CLI verbs `lmlab finetune`, `lmlab classify`, `lmlab eval classify`."""

import json
import subprocess
import sys

import pytest

from lmlab.cli import main
from lmlab.errors import LmlabError
from lmlab.evaluation.classification import accuracy, predict, predict_proba

from ..classifier_helpers import BOW_FAST, write_toy_tsv


@pytest.fixture(scope="module")
def bow_run(tmp_path_factory):
    """A BOW classifier trained on the toy set through the CLI (`lmlab finetune`)."""
    d = tmp_path_factory.mktemp("clf")
    train, dev = write_toy_tsv(d / "train.tsv", 160, 0), write_toy_tsv(d / "dev.tsv", 60, 1)
    settings = [a for k, v in BOW_FAST.items() for a in (f"--{k}", str(v))]
    code = main(["finetune", "--model", "bow", "--data", str(train), "--val-data", str(dev), "--out", str(d / "run"),
                 "--no-progress", *settings])
    assert code == 0
    return d / "run", dev


def test_predict_gives_label_names_and_probabilities(bow_run):
    run, _ = bow_run
    rows = predict(run, ["a good film", "the plot was bad", ""])
    assert [r[0] for r in rows[:2]] == ["positive", "negative"]
    assert all(0.5 <= p <= 1.0 for _, p in rows)
    probs = predict_proba(run, ["a good film"])
    assert probs.shape == (1, 2) and abs(float(probs.sum()) - 1) < 1e-5


def test_accuracy_on_a_labelled_file(bow_run):
    run, dev = bow_run
    res = accuracy(run, dev)
    assert res["n"] == 60 and res["accuracy"] >= 0.95 and set(res["per_class"]) == {"negative", "positive"}


def test_a_language_model_run_is_not_a_classifier(random_run):
    with pytest.raises(LmlabError, match="not a classifier; make one with `lmlab finetune`"):
        predict(random_run, ["hello"])


def test_cli_classify_and_eval_classify_end_to_end(bow_run, tmp_path, capsys):
    run, dev = bow_run
    out = subprocess.run([sys.executable, "-m", "lmlab", "classify", str(run), "very good movie", "bad plot",
                          "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert [label for label, _ in json.loads(out.stdout)] == ["positive", "negative"]
    assert main(["eval", "classify", str(run), "--data", str(dev), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] >= 0.95
    assert main(["eval", "classify", str(run), "--data", str(tmp_path / "nope.tsv")]) == 2
    assert "lmlab: error: labelled data file not found" in capsys.readouterr().err


def test_cli_finetune_reads_run_dir_and_settings_in_any_order(bow_run, tmp_path, capsys):
    _, dev = bow_run
    # RUN_DIR after a --key value setting is still RUN_DIR (not the setting's value); bow takes none: an error.
    code = main(["finetune", "--model", "bow", "--data", str(dev), "--out", str(tmp_path / "x"), "--max_iters", "5",
                 str(tmp_path)])
    assert code == 2 and "leave out RUN_DIR" in capsys.readouterr().err
