"""lm-evaluation-harness's `local-completions` model, pointed at a live `lmlab serve` on 127.0.0.1, scores the world's
facts as `lmlab eval tasks` scores the same run: the same log-likelihood per (context, continuation) request and the
same multiple-choice accuracy (facts_train_mc), the same greedy answers (facts_train).

lm-eval runs as its users run it: it finds the server's tokenizer by itself (`/tokenizer_info` and `/tokenize`, its
remote-tokenizer mode), sends token-id prompts (8 per request) with `echo` and `logprobs=1`, and reads the
log-probs of the continuation tokens out of the echoed prompt."""

import httpx
import pytest

try:
    from lm_eval.models.openai_completions import LocalCompletionsAPI
except ImportError as e:  # lm-eval, or the requests/aiohttp/tenacity of its `api` extra
    pytest.skip(f"lm-eval's local-completions model is not importable ({e}); pip install -e '.[dev]'",
                allow_module_level=True)

from lmlab.checkpoint import load_run  # noqa: E402
from lmlab.evaluation import evaluate_task, resolve_tasks, score_requests  # noqa: E402
from tests.lm_eval_requests import (choice_accuracy, generate_instances, lmlab_loglikelihoods,  # noqa: E402
                                    loglikelihood_instances)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]
N_ITEMS = 60


@pytest.fixture(scope="module")
def run(world_run):
    return load_run(world_run["run_dir"])


@pytest.fixture(scope="module")
def local_completions(world_server, run):
    """lm-eval's client of the served world model, as `lm_eval --model local-completions --model_args ...` makes it
    (tokenizer_backend left at `auto`; max_length = the model's context, so lm-eval never sends a longer prompt)."""
    lm = LocalCompletionsAPI(model=run.run_dir.name, base_url=world_server.url + "/v1/completions",
                             max_length=run.model.config.block_size, batch_size=8, max_retries=1, timeout=60)
    assert lm.tokenizer_backend == "remote"  # detected from the server's /tokenizer_info and /tokenize
    # the served weights must be the run's: an edit left by another test would change every log-likelihood
    assert httpx.get(world_server.url + "/v1/edits").json()["data"] == []
    return lm


def test_local_completions_loglikelihoods_and_accuracy_equal_lmlab(world_run, run, local_completions):
    [task] = resolve_tasks("facts_train_mc", world=world_run["world_dir"])
    result, items = evaluate_task(run.model, run.tokenizer, task, limit=N_ITEMS, bootstrap_iters=0)
    instances = loglikelihood_instances(task, items)
    theirs = local_completions.loglikelihood(instances, disable_tqdm=True)
    ours = lmlab_loglikelihoods(items)
    assert len(theirs) == len(ours) == len(instances)
    assert max(abs(a - b) for a, (b, _) in zip(ours, theirs)) <= 1e-4
    assert 0 < result["metrics"]["acc"] < 1  # right and wrong answers alike
    assert choice_accuracy(items, [ll for ll, _ in theirs]) == result["metrics"]["acc"]
    # is_greedy, which lm-eval reads from the echoed top-1 alternatives, is lmlab's too
    greedy = [g for _, g in score_requests(run.model, run.tokenizer, [i.args for i in instances])]
    assert [g for _, g in theirs] == greedy and any(greedy) and not all(greedy)


def test_local_completions_greedy_answers_equal_lmlab(world_run, run, local_completions):
    [task] = resolve_tasks("facts_train", world=world_run["world_dir"])
    result, items = evaluate_task(run.model, run.tokenizer, task, limit=N_ITEMS, bootstrap_iters=0)
    theirs = local_completions.generate_until(generate_instances(task, items), disable_tqdm=True)
    assert result["metrics"]["exact_match"] > 0  # a model that knows some facts, not only noise
    assert theirs == [it["prediction"] for it in items]
