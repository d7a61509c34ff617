"""lmlab task items as lm-evaluation-harness requests, and lm-eval's answers read back per item: what the tests that
point an lm-eval model at lmlab (tests/hub: HFLM on `lmlab export hf`'s checkpoint; tests/serving: local-completions
on `lmlab serve`) compare with `lmlab eval tasks` (`evaluate_task`) on the same run.

Import it only after checking that lm-eval is installed (the tests skip with a reason when it is not)."""

from __future__ import annotations

from lm_eval.api.instance import Instance


def loglikelihood_instances(task, items: list[dict]) -> list[Instance]:
    """lm-eval `loglikelihood` requests (context, target_delimiter + choice): one per choice of each multiple-choice
    item of `evaluate_task(..., task)`, items in order, choices in order — the requests lmlab scored for them."""
    delimiter = task.config.target_delimiter
    pairs = [(it["prompt"], delimiter + ch) for it in items for ch in it["choices"]]
    return [Instance("loglikelihood", {}, pair, j) for j, pair in enumerate(pairs)]


def lmlab_loglikelihoods(items: list[dict]) -> list[float]:
    """lmlab's log P(choice | prompt) in nats of every choice of every item, in `loglikelihood_instances`' order."""
    return [ll for it in items for ll in it["loglikelihoods"]]


def choice_accuracy(items: list[dict], loglikelihoods: list[float]) -> float:
    """Multiple-choice accuracy as lm-eval's `acc`: an item is right when its most likely choice (the first of
    equals) is its target. `loglikelihoods`: one per request of `loglikelihood_instances(task, items)`."""
    right, k = 0, 0
    for it in items:
        lls = loglikelihoods[k:k + len(it["choices"])]
        k += len(it["choices"])
        right += it["choices"][max(range(len(lls)), key=lls.__getitem__)] == it["target"]
    assert k == len(loglikelihoods), f"{len(loglikelihoods)} log-likelihoods for {k} choices"
    return right / len(items)


def generate_instances(task, items: list[dict]) -> list[Instance]:
    """lm-eval `generate_until` requests (prompt, greedy with the task's stop strings and token budget), one per
    item of `evaluate_task(..., task)` for a generate_until task, in order."""
    c = task.config
    args = {"until": c.stop, "max_gen_toks": c.max_gen_toks, "do_sample": False}
    return [Instance("generate_until", {}, (it["prompt"], args), j) for j, it in enumerate(items)]
