"""Continued pretraining (`lmlab train --init RUN --text DOCS`): the new run starts from the base run's weights,
keeps its tokenizer and shape, can replay a share of the original data, and records its lineage."""

import json

import numpy as np
import pytest

from lmlab.checkpoint import load_run
from lmlab.cli import main
from lmlab.data import document_spans, load_manifest, load_split
from lmlab.training import read_metrics
from lmlab.utils import sha256_file

TINY = ["--n_layer", "1", "--n_head", "2", "--n_embd", "32", "--block_size", "16", "--batch_size", "8",
        "--dtype", "float32", "--device", "cpu", "--lr", "3e-3", "--warmup_iters", "2", "--eval_iters", "2",
        "--log_interval", "1", "--no-progress"]


@pytest.fixture(scope="module")
def base_run(char_data, tmp_path_factory):
    run = tmp_path_factory.mktemp("continued") / "base"
    assert main(["train", "--data", str(char_data), "--out", str(run), "--max_iters", "40", "--eval_interval",
                 "40", *TINY]) == 0
    return run


def _new_documents(root):
    """'Company documents' about things the base corpus never says, written with its characters only."""
    docs = root / "docs"
    docs.mkdir()
    things = ["the river", "a red apple", "the moon", "an open door", "the tall tree", "a quiet town"]
    for i in range(12):
        (docs / f"memo{i}.txt").write_text(f"the tall king paints {things[i % 6]}. a small dog helps "
                                           f"{things[(i + 1 + i // 6) % 6]}.\n")
    return docs


def test_continued_run_starts_from_the_base_and_records_lineage(base_run, char_data, tmp_path):
    docs = _new_documents(tmp_path)
    out = tmp_path / "continued"
    assert main(["train", "--init", str(base_run), "--text", str(docs), "--out", str(out), "--replay", "0.25",
                 "--max_iters", "3", "--eval_interval", "3", "--warmup_iters", "0"]) == 0
    base, new = load_run(base_run), load_run(out)
    assert new.model_config == base.model_config
    assert new.tokenizer.fingerprint == base.tokenizer.fingerprint
    # it started from the trained weights: its first loss is far below the base run's first (random-init) loss
    first_new = read_metrics(out / "metrics.jsonl")[0]["train_loss"]
    first_base = read_metrics(base_run / "metrics.jsonl")[0]["train_loss"]
    assert first_new < first_base - 1.0, (first_new, first_base)

    lineage = json.loads((out / "lineage.json").read_text())
    assert lineage["init"] == str(base_run.resolve())
    assert lineage["base"] == {"weights": "model.safetensors", "sha256": sha256_file(base_run / "model.safetensors"),
                               "step": 40}
    assert lineage["data"]["text"] == [str(docs.resolve())] and lineage["data"]["replay"] == 0.25
    assert lineage["data"]["replay_data"] == str(char_data.resolve())  # the data dir the base run recorded

    # replay: whole original documents make up ~25% of the train tokens; val is the new documents only
    mix = load_manifest(out / "data")["replay"]
    train = load_split(out / "data", "train", new.tokenizer)
    assert len(train) == mix["new_tokens"] + mix["tokens"]
    assert 0.25 <= mix["tokens"] / len(train) < 0.25 + 200 / len(train)  # overshoot < one document
    corpus = (char_data.parent / "corpus.txt").read_text()
    replayed = [new.tokenizer.decode(np.asarray(train[s:e]).tolist()) for s, e in
                document_spans(np.asarray(train[mix["new_tokens"]:]), new.tokenizer.eos_id) + mix["new_tokens"]]
    assert len(replayed) == mix["documents"] and all(doc.strip() in corpus for doc in replayed)
    new_val_text = new.tokenizer.decode(np.asarray(load_split(out / "data", "val", new.tokenizer)).tolist())
    assert "tall king paints" in new_val_text and "tall king" not in corpus

    # a continued run can itself be continued; the chain of lineage is kept
    again = tmp_path / "again"
    assert main(["train", "--init", str(out), "--data", str(out / "data"), "--out", str(again), "--max_iters", "1",
                 "--eval_iters", "0"]) == 0
    chain = json.loads((again / "lineage.json").read_text())
    assert chain["base_lineage"]["init"] == str(base_run.resolve())


def test_continued_pretraining_errors_are_one_line(base_run, tmp_path, capsys):
    docs = _new_documents(tmp_path)
    cases = [
        (["--init", str(base_run), "--text", str(docs), "--tokenizer", "char"], "keeps the base run's tokenizer"),
        (["--init", str(base_run), "--text", str(docs), "--n_embd", "64"], "n_embd"),
        (["--init", str(base_run), "--text", str(docs), "--replay", "1.5"], "must be in [0, 1)"),
        (["--init", str(base_run), "--text", str(docs), "--out", str(base_run)], "is the --init run itself"),
        (["--text", str(docs), "--replay", "0.2"], "add --init RUN_DIR"),
        (["--init", str(base_run), "--text", str(docs), "--replay", "0.2", "--replay-data", str(tmp_path / "no")],
         "--replay-data"),
        (["--init", str(tmp_path / "missing"), "--text", str(docs)], "does not exist"),
    ]
    for args, says in cases:
        out = ["--out", str(tmp_path / "bad")] if "--out" not in args else []
        assert main(["train", *args, *out, "--max_iters", "1", "--no-progress"]) == 2, args
        err = capsys.readouterr().err
        assert says in err and err.count("\n") == 1, (args, err)
