"""lmlab.training.finetune: each classifier learns a trivially separable toy set through the ordinary trainer; the
GPT is fine-tuned from a run dir that stays byte-identical; user mistakes are one-line errors."""

import hashlib
import json

import pytest

from lmlab.checkpoint import load_run
from lmlab.data import load_split
from lmlab.errors import LmlabError
from lmlab.evaluation.classification import accuracy
from lmlab.recipes import finetune

from ..classifier_helpers import BOW_FAST, GPT_FAST, LSTM_FAST, save_tiny_bert_run, save_tiny_gpt_run, \
    toy_examples, write_toy_tsv


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    d = tmp_path_factory.mktemp("toy")
    return write_toy_tsv(d / "train.tsv", n=160, seed=0), write_toy_tsv(d / "dev.tsv", n=60, seed=1)


def _tree_hash(path):
    return {p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("model, settings", [("bow", BOW_FAST), ("lstm", LSTM_FAST)])
def test_fresh_classifiers_learn_the_toy_set(toy, tmp_path, model, settings):
    train, dev = toy
    result = finetune(tmp_path / model, model=model, data=train, val_data=dev, overrides=settings, progress=False)
    assert result.step == settings["max_iters"]
    acc = accuracy(tmp_path / model, dev)
    assert acc["accuracy"] >= 0.95, acc
    info = json.loads((tmp_path / model / "finetune.json").read_text())
    assert info["label_names"] == ["negative", "positive"] and info["train_examples"] == 160


def test_gpt_fine_tunes_from_a_run_dir_that_stays_unchanged(toy, tmp_path):
    train, dev = toy
    source = save_tiny_gpt_run(tmp_path / "lm")
    before = _tree_hash(source)
    finetune(tmp_path / "clf", run_dir=source, model="gpt", data=train, val_data=dev,
             overrides={**GPT_FAST, "lm_coef": 0.5}, progress=False)
    assert _tree_hash(source) == before
    assert accuracy(tmp_path / "clf", dev)["accuracy"] >= 0.95
    run, lm = load_run(tmp_path / "clf"), load_run(source)
    assert run.model_type == "gpt_classifier" and run.model_config.lm_coef == 0.5
    n = lm.tokenizer.vocab_size
    assert all(run.tokenizer.id_to_token(i) == lm.tokenizer.id_to_token(i) for i in range(n))  # old ids kept
    assert run.tokenizer.id_to_token(run.model_config.extract_id) == "<extract>"
    # Every training document starts with its label token.
    tokens = load_split(tmp_path / "clf" / "data", "train", run.tokenizer)
    assert run.tokenizer.id_to_token(int(tokens[0])) in ("<label0>", "<label1>")


def test_bert_fine_tunes_on_cls_from_a_run_dir_that_stays_unchanged(toy, tmp_path):
    train, dev = toy
    source = save_tiny_bert_run(tmp_path / "bert")
    before = _tree_hash(source)
    finetune(tmp_path / "clf", run_dir=source, model="bert", data=train, val_data=dev, overrides=GPT_FAST,
             progress=False)
    assert _tree_hash(source) == before
    assert accuracy(tmp_path / "clf", dev)["accuracy"] >= 0.95
    run = load_run(tmp_path / "clf")
    assert run.model_type == "bert_classifier" and run.tokenizer.token_to_id("<extract>") is None
    with pytest.raises(LmlabError, match="holds a bert model; --model gpt needs a gpt run dir"):
        finetune(tmp_path / "x", run_dir=source, model="gpt", data=train, progress=False)


def test_gpt_fine_tunes_an_imported_hf_gpt2_whose_pad_is_endoftext(toy, tmp_path):
    from lmlab.hub import import_hf_gpt2

    from ..hf_gpt2_files import save_random_hf_gpt2

    train, dev = toy
    hf_dir = tmp_path / "hf"
    hf_dir.mkdir()
    save_random_hf_gpt2(hf_dir, [t for t, _ in toy_examples(200, seed=1)] * 3, n_layer=1, n_embd=32)
    import_hf_gpt2(hf_dir, tmp_path / "gpt2")
    finetune(tmp_path / "clf", run_dir=tmp_path / "gpt2", model="gpt", data=train, val_data=dev, overrides=GPT_FAST,
             progress=False)
    run = load_run(tmp_path / "clf")
    assert run.model_config.pad_id == run.tokenizer.token_to_id("<|endoftext|>")
    assert accuracy(run, dev)["accuracy"] >= 0.9  # random GPT-2 weights, dropout 0.1: learns, a little noisier


def test_validation_split_is_held_out_when_no_val_data(toy, tmp_path):
    finetune(tmp_path / "run", model="bow", data=toy[0], overrides={**BOW_FAST, "max_iters": 2}, progress=False)
    info = json.loads((tmp_path / "run" / "finetune.json").read_text())
    assert (info["train_examples"], info["val_examples"]) == (144, 16)


def test_user_mistakes_are_clear_errors(toy, tmp_path):
    train, _ = toy
    with pytest.raises(LmlabError, match="not found: .*missing.tsv"):
        finetune(tmp_path / "a", model="bow", data=tmp_path / "missing.tsv", progress=False)
    bad = tmp_path / "bad.tsv"
    bad.write_text("fine\t1\nso-so\t2\n")
    with pytest.raises(LmlabError, match=r"bad.tsv:2: unknown label 2"):
        finetune(tmp_path / "a", model="bow", data=bad, progress=False)
    empty = tmp_path / "empty.tsv"
    empty.write_text("sentence\tlabel\n")
    with pytest.raises(LmlabError, match="holds no labelled examples"):
        finetune(tmp_path / "a", model="bow", data=empty, progress=False)
    with pytest.raises(LmlabError, match="give its RUN_DIR"):
        finetune(tmp_path / "a", model="gpt", data=train, progress=False)
    with pytest.raises(LmlabError, match="unknown classifier model 'svm'"):
        finetune(tmp_path / "a", model="svm", data=train, progress=False)
    source = save_tiny_gpt_run(tmp_path / "lm")
    with pytest.raises(LmlabError, match="never modified"):
        finetune(source, run_dir=source, model="gpt", data=train, progress=False)
    with pytest.raises(LmlabError, match="cannot change: n_layer"):
        finetune(tmp_path / "a", run_dir=source, model="gpt", data=train, overrides={"n_layer": 3},
                 progress=False)
    with pytest.raises(LmlabError, match="unknown setting 'lrr'"):
        finetune(tmp_path / "a", model="bow", data=train, overrides={"lrr": 1}, progress=False)


def test_a_classifier_run_resumes_like_any_run(toy, tmp_path):
    from lmlab.training import train_run

    train, dev = toy
    finetune(tmp_path / "run", model="bow", data=train, val_data=dev,
             overrides={**BOW_FAST, "max_iters": 10, "eval_interval": 5}, progress=False)
    result = train_run(tmp_path / "run", resume=True, overrides={"max_iters": 20}, progress=False)
    assert result.step == 20 and load_run(tmp_path / "run").model_type == "bow"
