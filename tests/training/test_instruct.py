"""Instruction tuning (`lmlab finetune RUN --instructions FILE --out NEW_RUN`): response-only loss, the template in
the run dir, the same tokenizer as the base, replay, resume, and the errors a user gets."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from lmlab.checkpoint import load_run
from lmlab.data import document_spans, load_split
from lmlab.data.instructions import PromptTemplate, load_template
from lmlab.errors import LmlabError
from lmlab.generation import generate
from lmlab.recipes import finetune
from lmlab.training.instruct import response_targets
from tests.instruction_helpers import EXAMPLES, instruction_world, tuned_run, write_jsonl  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SHORT = dict(max_iters=6, eval_interval=3, eval_iters=1, batch_size=4)


def test_response_targets_cover_the_response_and_its_eos_only():
    # pad 0, eos 3, marker (<bos>) 2; row 0: prompt 10 11, marker, response 20 21; row 1: plain text (replay).
    docs = torch.tensor([[10, 11, 2, 20, 21, 0], [30, 31, 32, 0, 0, 0]])
    t = response_targets(docs, response_id=2, eos_id=3, pad_id=0)
    assert t.tolist() == [[-100, -100, 20, 21, 3, -100], [31, 32, -100, -100, -100, -100]]


def test_tuned_run_answers_its_instructions_and_stops(tuned_run):  # noqa: F811
    run = load_run(tuned_run)
    template = load_template(tuned_run)
    assert template == PromptTemplate()  # recorded in the run dir
    for ex in EXAMPLES:
        [c] = generate(run.model, run.tokenizer, template.prompt(ex["instruction"], ex.get("input", "")),
                       max_new_tokens=10, temperature=0)
        assert c.text == " " + ex["response"]
        assert c.finish_reason == "eos"  # it learned to end its answer
    info = json.loads((tuned_run / "finetune.json").read_text())
    assert info["kind"] == "instructions" and info["train_examples"] == len(EXAMPLES)


def test_tuned_run_keeps_the_base_tokenizer_and_reads_its_shards(tuned_run, instruction_world):  # noqa: F811
    tuned, base = load_run(tuned_run), load_run(instruction_world["base"])
    assert tuned.tokenizer.fingerprint == base.tokenizer.fingerprint
    assert tuned.model_type == "gpt" and tuned.model_config == base.model_config
    load_split(instruction_world["data"], "val", tuned.tokenizer)  # no tokenizer mismatch: perplexity still works


def test_replay_mixes_pretraining_documents_into_the_training_split(instruction_world, tmp_path):  # noqa: F811
    data = write_jsonl(tmp_path / "ex.jsonl", EXAMPLES * 10)  # 40 examples: 36 train, 4 val
    finetune(tmp_path / "run", run_dir=instruction_world["base"], instructions=data, replay=0.25,
             overrides=dict(SHORT), progress=False)
    manifest = json.loads((tmp_path / "run" / "data" / "manifest.json").read_text())
    assert manifest["splits"]["train"]["documents"] == 36 + 12  # 12 / 48 = the asked share
    assert manifest["splits"]["val"]["documents"] == 4  # val is instructions only
    info = json.loads((tmp_path / "run" / "finetune.json").read_text())
    assert info["replay_documents"] == 12 and info["replay_data"] == str(instruction_world["data"].resolve())
    # The replayed documents are documents of the base run's own training shards (the first block_size tokens).
    base = load_run(instruction_world["base"])
    pre = load_split(instruction_world["data"], "train", base.tokenizer)
    pre_docs = {tuple(pre[s:min(e, s + 128)]) for s, e in document_spans(pre, base.tokenizer.eos_id)}
    mixed = load_split(tmp_path / "run" / "data", "train", base.tokenizer)
    bos = base.tokenizer.bos_id
    replayed = [tuple(mixed[s:e]) for s, e in document_spans(mixed, base.tokenizer.eos_id) if bos not in mixed[s:e]]
    assert len(replayed) == 12 and all(d in pre_docs for d in replayed)


def test_resume_continues_to_the_same_weights(instruction_world, tmp_path):  # noqa: F811
    data = write_jsonl(tmp_path / "ex.jsonl", EXAMPLES * 3)
    whole = finetune(tmp_path / "whole", run_dir=instruction_world["base"], instructions=data,
                     overrides=dict(SHORT), progress=False)
    finetune(tmp_path / "parts", run_dir=instruction_world["base"], instructions=data,
             overrides=dict(SHORT, max_iters=3), progress=False)
    resumed = finetune(tmp_path / "parts", resume=True, overrides=dict(max_iters=6), progress=False)
    assert resumed.step == whole.step == 6
    a, b = load_run(tmp_path / "whole").model.state_dict(), load_run(tmp_path / "parts").model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("kwargs, message", [
    (dict(replay=1.0), "--replay"),
    (dict(replay=0.2, replay_data="nowhere"), "nowhere"),
    (dict(model="bow"), "leave out --data and --model"),
])
def test_bad_arguments_are_one_line_errors(instruction_world, tmp_path, kwargs, message):  # noqa: F811
    data = write_jsonl(tmp_path / "ex.jsonl", EXAMPLES)
    with pytest.raises(LmlabError, match=message):
        finetune(tmp_path / "run", run_dir=instruction_world["base"], instructions=data, progress=False, **kwargs)


def test_bad_files_are_named_in_errors(instruction_world, tmp_path):  # noqa: F811
    bad = write_jsonl(tmp_path / "bad.jsonl", [EXAMPLES[0], {"instruction": "no response"}])
    with pytest.raises(LmlabError, match=r"bad.jsonl:2: needs a string field \"response\""):
        finetune(tmp_path / "run", run_dir=instruction_world["base"], instructions=bad, progress=False)
    long = write_jsonl(tmp_path / "long.jsonl", EXAMPLES + [{"instruction": "word " * 200, "response": "x"}])
    with pytest.raises(LmlabError, match="longer than the model's context of 128 tokens"):
        finetune(tmp_path / "run", run_dir=instruction_world["base"], instructions=long, progress=False)
    with pytest.raises(LmlabError, match="nothing to resume|no instruction tuning to resume"):
        finetune(tmp_path / "empty", resume=True, progress=False)


@pytest.mark.slow
def test_cli_finetune_then_sample_an_instruction(tuned_run, instruction_world, tmp_path, capsys):  # noqa: F811
    from lmlab.cli import main

    data = write_jsonl(tmp_path / "ex.jsonl", EXAMPLES * 3)
    out = tmp_path / "cli-run"
    done = subprocess.run([sys.executable, "-m", "lmlab", "finetune", str(instruction_world["base"]),
                           "--instructions", str(data), "--out", str(out), "--no-progress", "--max_iters", "2",
                           "--eval_iters", "1"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "trained 2 steps" in done.stdout and (out / "template.json").is_file()
    assert not (instruction_world["base"] / "template.json").exists()  # the source run is only read
    assert main(["sample", str(tuned_run), "--instruction", "Write the word backwards.", "--input", "cat",
                 "--temperature", "0"]) == 0
    assert capsys.readouterr().out == "tac\n"
    assert main(["sample", str(instruction_world["base"]), "--instruction", "Hi"]) == 2
    assert "has no prompt template" in capsys.readouterr().err
