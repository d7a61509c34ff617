"""Running tasks on a model: requests built from prompts, scored in length-sorted batches, metrics aggregated.

    from lmlab.checkpoint import load_run
    from lmlab.evaluation import evaluate_task, resolve_tasks
    run = load_run("runs/tiny")
    [task] = resolve_tasks("arithmetic_2da", seed=0)
    result, items = evaluate_task(run.model, run.tokenizer, task, shots=5, limit=100)

Scoring is `lmlab.generation`'s: `score_continuations` (log P(continuation | context), is_greedy) for
loglikelihood and multiple choice, greedy `generate` with stop strings for generate_until, and `token_logprobs`
(non-overlapping windows of the model's context, every token predicted once from up to block_size tokens of
history, the first conditioned on <eos>) for loglikelihood_rolling. Requests are sorted longest first so a batch
holds sequences of similar length (little padding), and a tqdm bar counts requests per second.
"""

from __future__ import annotations

import sys
import time
from typing import Sequence

import numpy as np
from tqdm import tqdm

from lmlab.errors import LmlabError
from lmlab.evaluation import metrics as M
from lmlab.evaluation.tasks import Task
from lmlab.generation import generate, score_continuations, token_logprobs

DEFAULT_BATCH_SIZE = 16
BOOTSTRAP_ITERS = 1000


def _bar(total: int, desc: str, progress: bool) -> tqdm:
    return tqdm(total=total, desc=desc, unit="req", file=sys.stderr, leave=False,
                disable=not progress or not sys.stderr.isatty())


def _longest_first(lengths: Sequence[int]) -> list[int]:
    return sorted(range(len(lengths)), key=lambda i: -lengths[i])


def score_requests(model, tokenizer, pairs: Sequence[tuple[str, str]], *, batch_size: int = DEFAULT_BATCH_SIZE,
                   progress: bool = False, desc: str = "scoring") -> list[tuple[float, bool]]:
    """(log P(continuation | context) in nats, is_greedy) per (context, continuation) pair, in input order.

    Pairs are grouped by context, longest context first; each group of `batch_size` contexts goes to
    `score_continuations` (batches of `batch_size` rows; one-token answers to one context share a row), and the
    progress bar advances by the pairs done."""
    by_context: dict[str, list[int]] = {}
    for i, (context, _) in enumerate(pairs):
        by_context.setdefault(context, []).append(i)
    contexts = sorted(by_context, key=lambda c: -max(len(c) + len(pairs[i][1]) for i in by_context[c]))
    out: list[tuple[float, bool]] = [(0.0, True)] * len(pairs)
    with _bar(len(pairs), desc, progress) as bar:
        for b in range(0, len(contexts), batch_size):
            chunk = [i for c in contexts[b:b + batch_size] for i in by_context[c]]
            for i, r in zip(chunk, score_continuations(model, tokenizer, [pairs[i] for i in chunk],
                                                       batch_size=batch_size)):
                out[i] = r
            bar.update(len(chunk))
    return out


def generate_requests(model, tokenizer, prompts: Sequence[str], *, stop: list[str], max_new_tokens: int,
                      batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = False,
                      desc: str = "generating") -> list[str]:
    """Greedy continuation text of each prompt (cut before the first stop string), in input order. Prompts longer
    than the context keep their end (truncate='left'); max_new_tokens is capped at half the model's context."""
    max_new = max(1, min(max_new_tokens, model.config.block_size // 2))
    order = _longest_first([len(p) for p in prompts])
    out = [""] * len(prompts)
    with _bar(len(prompts), desc, progress) as bar:
        for b in range(0, len(order), batch_size):
            chunk = order[b:b + batch_size]
            done = generate(model, tokenizer, [prompts[i] for i in chunk], max_new_tokens=max_new, temperature=0,
                            stop=stop, truncate="left")
            for i, completion in zip(chunk, done):
                out[i] = completion.text
            bar.update(len(chunk))
    return out


def rolling_loglikelihood(model, tokenizer, text: str, *, batch_size: int = DEFAULT_BATCH_SIZE) -> tuple[float, int]:
    """(log P(text) in nats, tokens scored) with the first token conditioned on <eos> and no final <eos>
    (lm-evaluation-harness's loglikelihood_rolling), in non-overlapping windows of the model's context."""
    ids = [tokenizer.eos_id] + tokenizer.encode(text)
    if len(ids) < 2:
        return 0.0, 0
    return float(token_logprobs(model, ids, batch_size=batch_size).sum()), len(ids) - 1


def evaluate_task(model, tokenizer, task: Task, *, shots: int = 0, limit: int | None = None,
                  batch_size: int = DEFAULT_BATCH_SIZE, seed: int | None = None,
                  bootstrap_iters: int = BOOTSTRAP_ITERS, progress: bool = False) -> tuple[dict, list[dict]]:
    """Score the first `limit` documents of `task` with `shots` solved examples each.

    Returns (result, items). result = {"task", "output_type", "shots", "n", "metrics": {name: value},
    "stderr": {name: bootstrap standard error or None}, "groups": {value: {"n", "metrics"}} (with group_by),
    "seconds", "requests", "requests_per_second"}; items = one dict per document with "index", "prompt",
    "target", "prediction", "score" (the per-item metric values) and the raw log-likelihoods where there are any.
    seed overrides the task's few-shot seed; it also seeds the bootstrap.
    """
    c = task.config
    n = _documents_to_score(task, shots=shots, limit=limit, batch_size=batch_size)
    seed = c.seed if seed is None else seed
    start = time.perf_counter()
    score = {"loglikelihood": _score_choices, "multiple_choice": _score_choices,
             "generate_until": _score_generations}.get(c.output_type, _score_rolling)
    items, n_requests = score(model, tokenizer, task, n, shots=shots, seed=seed, batch_size=batch_size,
                              progress=progress, desc=f"{task.name} {shots}-shot")
    seconds = time.perf_counter() - start
    metrics, stderr = aggregate(c.output_type, items, iters=bootstrap_iters, seed=seed)
    result = {"task": task.name, "output_type": c.output_type, "shots": shots, "n": n, "metrics": metrics,
              "stderr": stderr, "seconds": seconds, "requests": n_requests,
              "requests_per_second": n_requests / seconds if seconds > 0 else None}
    if c.group_by:
        result["groups"] = _group_metrics(task, items, seed=seed)
        result["group_by"] = c.group_by
    for item in items:
        item.update(task=task.name, shots=shots)
    return result, items


def _documents_to_score(task: Task, *, shots: int, limit: int | None, batch_size: int) -> int:
    """How many of the task's documents `evaluate_task` scores; LmlabError for settings that cannot work."""
    c = task.config
    if shots < 0:
        raise LmlabError(f"shots must be ≥ 0, got {shots}")
    if c.output_type == "loglikelihood_rolling" and shots:
        raise LmlabError(f"task {task.name} scores whole documents (loglikelihood_rolling): use 0 shots")
    if batch_size < 1:
        raise LmlabError(f"batch size must be at least 1, got {batch_size}")
    n = len(task.docs) if limit is None else min(limit, len(task.docs))
    if n < 1:
        raise LmlabError(f"task {task.name} has no documents to evaluate" + (" (limit 0)" if limit == 0 else ""))
    return n


def _score_choices(model, tokenizer, task: Task, n: int, *, shots: int, seed: int, batch_size: int,
                   progress: bool, desc: str) -> tuple[list[dict], int]:
    """loglikelihood (the target's log-likelihood and whether greedy decoding gives it) and multiple_choice (every
    choice's log-likelihood): (items, number of scored requests)."""
    c, docs = task.config, task.docs[:n]
    contexts = [task.context(i, shots, seed) for i in range(n)]
    if c.output_type == "multiple_choice":
        choice_lists = [task.choices(d) for d in docs]
        golds = [task.gold(d) for d in docs]
    else:
        choice_lists = [[task.target(d)] for d in docs]
        golds = [0] * n
    pairs, owner = [], []
    for i, (ctx, choices) in enumerate(zip(contexts, choice_lists)):
        for ch in choices:
            pairs.append((ctx, c.target_delimiter + ch))
            owner.append(i)
    scored = score_requests(model, tokenizer, pairs, batch_size=batch_size, progress=progress, desc=desc)
    per_item: list[list[tuple[float, bool]]] = [[] for _ in range(n)]
    for i, r in zip(owner, scored):
        per_item[i].append(r)
    items = []
    for i in range(n):
        lls = [ll for ll, _ in per_item[i]]
        choices = choice_lists[i]
        if c.output_type == "multiple_choice":
            score = M.multiple_choice_scores(lls, choices, golds[i])
            pred = choices[int(np.argmax(lls))]
            items.append({"index": i, "prompt": contexts[i], "target": choices[golds[i]], "prediction": pred,
                          "score": score, "choices": choices, "loglikelihoods": lls})
        else:
            ll, greedy = per_item[i][0]
            items.append({"index": i, "prompt": contexts[i], "target": choices[0], "prediction": greedy,
                          "score": {"acc": int(greedy)}, "loglikelihood": ll})
    return items, len(pairs)


def _score_generations(model, tokenizer, task: Task, n: int, *, shots: int, seed: int, batch_size: int,
                       progress: bool, desc: str) -> tuple[list[dict], int]:
    """generate_until: greedy completions scored by exact match (and the task's validity check, if any)."""
    c = task.config
    contexts = [task.context(i, shots, seed) for i in range(n)]
    preds = generate_requests(model, tokenizer, contexts, stop=c.stop, max_new_tokens=c.max_gen_toks,
                              batch_size=batch_size, progress=progress, desc=desc)
    items = []
    for i, (doc, ctx, pred) in enumerate(zip(task.docs[:n], contexts, preds)):
        target = task.target(doc)
        score = {"exact_match": M.exact_match(pred, target)}
        if task.check is not None:
            score["valid"] = int(task.check(doc, pred.strip()))
        items.append({"index": i, "prompt": ctx, "target": target, "prediction": pred, "score": score})
    return items, n


def _score_rolling(model, tokenizer, task: Task, n: int, *, shots: int, seed: int, batch_size: int,
                   progress: bool, desc: str) -> tuple[list[dict], int]:
    """loglikelihood_rolling: each whole document's log-likelihood, with its token, word and byte counts."""
    items = []
    with _bar(n, desc, progress) as bar:
        for i, doc in enumerate(task.docs[:n]):
            text = task.target(doc)
            ll, n_tok = rolling_loglikelihood(model, tokenizer, text, batch_size=batch_size)
            items.append({"index": i, "prompt": "", "target": text, "prediction": None,
                          "score": {"loglikelihood": ll}, "loglikelihood": ll, "n_tokens": n_tok,
                          "n_words": M.count_words(text), "n_bytes": len(text.encode("utf-8"))})
            bar.update(1)
    return items, n


def _group_metrics(task: Task, items: list[dict], *, seed: int) -> dict[str, dict]:
    """{value of the task's group_by field: {"n", "metrics"}} over the scored items."""
    groups: dict[str, list[dict]] = {}
    for doc, item in zip(task.docs, items):
        groups.setdefault(str(doc.get(task.config.group_by)), []).append(item)
    return {value: {"n": len(group), "metrics": aggregate(task.config.output_type, group, iters=0, seed=seed)[0]}
            for value, group in groups.items()}


def aggregate(output_type: str, items: list[dict], *, iters: int = BOOTSTRAP_ITERS,
              seed: int = 1234) -> tuple[dict[str, float], dict[str, float | None]]:
    """(metrics, bootstrap standard errors) of a task's per-item results (see `lmlab.evaluation.metrics`);
    iters=0 skips the standard errors."""
    metrics: dict[str, float] = {}
    stderr: dict[str, float | None] = {}
    if output_type == "loglikelihood_rolling":
        cols = [[it[k] for it in items] for k in ("loglikelihood", "n_tokens", "n_words", "n_bytes")]
        metrics = M.rolling_metrics(*cols)
        for name in metrics:
            stderr[name] = (M.bootstrap_stderr(cols, lambda *c, name=name: M.rolling_metrics(*c)[name],
                                               iters=iters, seed=seed) if iters else None)
        return metrics, stderr
    for name in items[0]["score"]:
        values = [it["score"][name] for it in items]
        if iters:
            metrics[name], stderr[name] = M.mean_with_stderr(values, iters=iters, seed=seed)
        else:
            metrics[name], stderr[name] = M.mean(values), None
    if output_type == "loglikelihood":
        lls = [it["loglikelihood"] for it in items]
        metrics["perplexity"] = M.loglikelihood_perplexity(lls)
        stderr["perplexity"] = (M.bootstrap_stderr([lls], M.loglikelihood_perplexity, iters=iters, seed=seed)
                                if iters else None)
    return metrics, stderr
