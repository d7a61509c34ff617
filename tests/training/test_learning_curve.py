"""Learning curves: training keeps each evaluation's weights (`--keep_checkpoints true`) and `lmlab eval tasks
--checkpoints` scores every kept checkpoint in step order."""

import json

import pytest
import torch
from safetensors.torch import load_file

from lmlab.checkpoint import kept_checkpoints
from lmlab.cli import main
from lmlab.data import load_tokenizer_of
from lmlab.evaluation import eval_tasks, format_curve
from lmlab.models.gpt import GPT, GPTConfig
from lmlab.training import TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def curve_run(char_data, tmp_path_factory):
    tok = load_tokenizer_of(char_data)
    torch.manual_seed(0)
    mcfg = GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=16, vocab_size=tok.vocab_size)
    cfg = TrainConfig(max_iters=9, eval_interval=4, eval_iters=1, log_interval=1, batch_size=4, device="cpu",
                      dtype="float32", keep_checkpoints=True)
    run = tmp_path_factory.mktemp("curve") / "run"
    train(GPT(mcfg), mcfg, tok, char_data, run, cfg, progress=False)
    return run


def test_training_keeps_each_evaluation_s_weights_and_the_last_are_the_final_ones(curve_run):
    # evaluations at 4, 8 and the last step, 9
    assert [step for step, _ in kept_checkpoints(curve_run)] == [4, 8, 9]
    final = load_file(curve_run / "model.safetensors")
    last = load_file(curve_run / kept_checkpoints(curve_run)[-1][1])
    assert final.keys() == last.keys() and all(torch.equal(final[k], last[k]) for k in final)
    first = load_file(curve_run / kept_checkpoints(curve_run)[0][1])
    assert any(not torch.equal(first[k], final[k]) for k in final)  # training moved the weights on


def test_eval_tasks_checkpoints_gives_one_row_per_step_and_ends_at_the_final_model(curve_run, tmp_path, capsys):
    out = tmp_path / "curve.json"
    assert main(["eval", "tasks", str(curve_run), "--tasks", str(_task_file(tmp_path)),
                 "--shots", "0,1", "--checkpoints", "--out", str(out), "--no-progress"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["step", "cat@0", "cat@1"]
    assert [line.split()[0] for line in table[2:5]] == ["4", "8", "9"]
    report = json.loads(out.read_text())
    assert [p["step"] for p in report["curve"]] == [4, 8, 9]
    plain = eval_tasks(curve_run, str(_task_file(tmp_path)), shots="0,1", progress=False)
    def scores(results):
        return [(r["task"], r["shots"], r["metrics"]) for r in results]

    assert scores(report["curve"][-1]["results"]) == scores(plain["results"]) == scores(report["results"])
    assert scores(report["curve"][0]["results"]) != scores(plain["results"])  # an earlier model scores otherwise
    items = [json.loads(line) for line in out.with_name("curve.items.jsonl").read_text().splitlines()]
    assert {it["step"] for it in items} == {4, 8, 9}
    assert format_curve(report).splitlines()[0] == table[0]


def test_a_run_without_kept_checkpoints_is_a_one_line_error(char_data, tmp_path, capsys):
    tok = load_tokenizer_of(char_data)
    mcfg = GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=16, vocab_size=tok.vocab_size)
    cfg = TrainConfig(max_iters=2, eval_interval=2, eval_iters=1, batch_size=2, device="cpu", dtype="float32")
    train(GPT(mcfg), mcfg, tok, char_data, tmp_path / "run", cfg, progress=False)
    assert main(["eval", "tasks", str(tmp_path / "run"), "--tasks", str(_task_file(tmp_path)),
                 "--checkpoints"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--keep_checkpoints true" in err


def _task_file(tmp_path):
    """A three-item task scored by log-likelihood (a task YAML and its JSONL documents)."""
    (tmp_path / "cat.jsonl").write_text("".join(json.dumps({"prompt": f"the cat sat on the {w}", "target": w}) + "\n"
                                                for w in ("mat", "hat", "rug")))
    path = tmp_path / "cat.yaml"
    path.write_text("task: cat\ndataset_path: cat.jsonl\noutput_type: loglikelihood\n")
    return path
