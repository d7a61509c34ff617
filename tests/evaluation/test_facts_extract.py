"""Task facts_extract: runs with `lmlab eval tasks --world W` on a world made with --extraction, and on a world
without the split says in one line which option makes it."""

import json

import pytest
import torch

from lmlab.checkpoint import save_run
from lmlab.cli import main
from lmlab.models import GPT, GPTConfig
from lmlab.tokenization import CharTokenizer
from lmlab.world import WorldOptions, generate_world


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """An untrained char GPT whose alphabet has the question forms' characters (the apostrophe of "X's job:")."""
    tok = CharTokenizer.train(["abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.,:?'\n0123456789"],
                              byte_fallback=False)
    torch.manual_seed(1)
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=64, vocab_size=tok.vocab_size))
    path = tmp_path_factory.mktemp("runs") / "random"
    save_run(path, model.eval(), tok, model_config=model.config)
    return path


def test_eval_tasks_facts_extract(run_dir, tmp_path, capsys):
    world = tmp_path / "w"
    generate_world(world, seed=1, size="100KB", options=WorldOptions(extraction=True), progress=False)
    out = tmp_path / "res.json"
    assert main(["eval", "tasks", str(run_dir), "--tasks", "facts_extract", "--shots", "0,1", "--limit", "4",
                 "--world", str(world), "--out", str(out), "--no-progress"]) == 0
    report = json.loads(out.read_text())
    assert [(r["task"], r["shots"]) for r in report["results"]] == [("facts_extract", 0), ("facts_extract", 1)]
    assert report["tasks"]["facts_extract"]["output_type"] == "generate_until"


def test_facts_extract_on_a_world_without_the_split_names_the_option(run_dir, tmp_path, capsys):
    world = tmp_path / "plain"
    generate_world(world, seed=1, size="100KB", progress=False)
    assert main(["eval", "tasks", str(run_dir), "--tasks", "facts_extract", "--world", str(world),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--extraction" in err and "facts_extract" in err
