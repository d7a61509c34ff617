"""lm-evaluation-harness's HFLM, pointed at `lmlab export hf`'s directory of a main-job-shaped model, scores the
world's facts tasks as `lmlab eval tasks` does: the same log-likelihood per (context, continuation) request and the
same multiple-choice accuracy (facts_train_mc), the same greedy answers and exact-match score (facts_train).

The model is the main job's recipe, shrunk to run in seconds: the default world at 200 KB, BPE shards with the
main job's settings (1024 ids, digit-by-digit numbers, paragraphs as documents), the `tiny` GPT (64-token context)
trained 120 steps — enough to get some facts right (about 45% multiple choice, 20% exact match), so the
comparison covers right and wrong answers alike."""

import pytest

transformers = pytest.importorskip("transformers")
try:
    from lm_eval.models.huggingface import HFLM
except ImportError as e:  # lm-eval, or the accelerate its HFLM imports
    pytest.skip(f"lm-eval's HFLM is not importable ({e}); pip install -e '.[dev]'", allow_module_level=True)

from lmlab.checkpoint import load_run  # noqa: E402
from lmlab.evaluation import evaluate_task, resolve_tasks  # noqa: E402
from lmlab.evaluation import metrics as M  # noqa: E402
from lmlab.hub import export_hf  # noqa: E402
from tests.lm_eval_requests import (choice_accuracy, generate_instances, lmlab_loglikelihoods,  # noqa: E402
                                    loglikelihood_instances)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]
N_ITEMS = 40


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(world dir, run dir, exported HF dir) of a briefly trained main-job-shaped GPT."""
    from lmlab.data import prepare
    from lmlab.recipes import RECIPES
    from lmlab.training import train_run
    from lmlab.world import generate_world

    recipe = RECIPES["world"]  # the main job's world, shards and settings, made smaller
    root = tmp_path_factory.mktemp("mainjob")
    generate_world(root / "world", seed=recipe.data.text.seed, size="200KB")
    prepare(root / "world" / "corpus", "bpe", root / "data", progress=False, workers=1,
            vocab_size=recipe.data.vocab_size, numbers=recipe.data.numbers,
            split_blank_lines=recipe.data.split_blank_lines, dedup=recipe.data.dedup)
    train_run(root / "run", data_dir=root / "data", preset="tiny", progress=False, base_settings=recipe.settings(),
              overrides={"max_iters": 120, "batch_size": 8, "block_size": 64, "lr": 3e-3,
                         "eval_interval": 120, "eval_iters": 2, "device": "cpu"})
    return root / "world", root / "run", export_hf(root / "run", root / "hf")


@pytest.fixture(scope="module")
def hflm(trained):
    _, _, hf_dir = trained
    return HFLM(pretrained=str(hf_dir), batch_size=8, device="cpu", dtype="float32")


def test_hflm_loglikelihoods_and_accuracy_equal_lmlab(trained, hflm):
    world, run_dir, _ = trained
    run = load_run(run_dir)
    [task] = resolve_tasks("facts_train_mc", world=world)
    result, items = evaluate_task(run.model, run.tokenizer, task, limit=N_ITEMS, bootstrap_iters=0)
    theirs = [ll for ll, _ in hflm.loglikelihood(loglikelihood_instances(task, items), disable_tqdm=True)]
    ours = lmlab_loglikelihoods(items)
    assert max(abs(a - b) for a, b in zip(ours, theirs)) <= 1e-4
    assert choice_accuracy(items, theirs) == result["metrics"]["acc"]


def test_hflm_greedy_answers_equal_lmlab(trained, hflm):
    world, run_dir, _ = trained
    run = load_run(run_dir)
    [task] = resolve_tasks("facts_train", world=world)
    result, items = evaluate_task(run.model, run.tokenizer, task, limit=N_ITEMS, bootstrap_iters=0)
    theirs = hflm.generate_until(generate_instances(task, items), disable_tqdm=True)
    assert result["metrics"]["exact_match"] > 0  # a model that knows some facts, not only noise
    assert theirs == [it["prediction"] for it in items]
    em = sum(M.exact_match(p, it["target"]) for p, it in zip(theirs, items)) / len(items)
    assert em == result["metrics"]["exact_match"]
