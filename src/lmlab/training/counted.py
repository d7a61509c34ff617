"""Models that learn from corpus counts (n-gram tables, co-occurrence + SVD, word2vec's unigram table), fitted
outside the gradient loop: `fit_counts` sees the whole train split once; a model left with no trainable parameter
is finished by `save_fitted` (no gradient steps, no train_state.pt); the others go on to the gradient loop."""

from __future__ import annotations

import inspect
import math
import time
from dataclasses import replace
from typing import Any

import torch

from lmlab.checkpoint import BEST_WEIGHTS_NAME, METRICS_NAME, clear_checkpoints, save_run
from lmlab.training.distributed import barrier
from lmlab.training.job import Job, TrainResult
from lmlab.training.metrics import MetricsLog
from lmlab.training.trainable import FitsFromCounts


def fit_counts(model: FitsFromCounts, job: Job) -> tuple[Job, dict[str, Any]]:
    """Call `model.fit_from_tokens` on the train split; the tokenizer is passed when the method takes one (models
    that must tell words from punctuation or find `<eos>`). Returns the job with the model's config after fitting
    (it may record data-dependent table sizes) and the method's summary dict with "fit_seconds"."""
    kwargs: dict[str, Any] = {"progress": job.progress}
    if "tokenizer" in inspect.signature(model.fit_from_tokens).parameters:
        kwargs["tokenizer"] = job.tokenizer
    t0 = time.perf_counter()
    summary = model.fit_from_tokens(job.train_tokens, **kwargs)
    summary = {**(summary if isinstance(summary, dict) else {}), "fit_seconds": round(time.perf_counter() - t0, 3)}
    return replace(job, model_config=model.config), summary


def save_fitted(model: torch.nn.Module, job: Job, fit_summary: dict[str, Any]) -> TrainResult:
    """Save and report a model fully fitted by `fit_counts`. When the model computes a loss (an n-gram LM) it is
    measured on the same fixed train and val windows the gradient loop evaluates; the metrics record has step 0."""
    cfg, ctx = job.cfg, job.ctx
    model.to(ctx.device)

    def loss_on(tokens):
        return None if tokens is None or cfg.eval_iters == 0 else job.val_loss(model, tokens)

    train_loss, val_loss = loss_on(job.train_tokens), loss_on(job.val_tokens)
    record: dict[str, Any] = {"step": 0, "train_tokens": len(job.train_tokens), **fit_summary}
    if train_loss is not None:
        record["train_loss"] = train_loss
    if val_loss is not None:
        record["val_loss"] = val_loss
    if ctx.is_main:
        clear_checkpoints(job.out_dir)
        run_info = job.run_info(model)
        run_info["training_config"]["world_size"] = 1
        save_run(job.out_dir, **run_info)
        if cfg.keep_best and val_loss is not None:
            save_run(job.out_dir, weights_name=BEST_WEIGHTS_NAME, **run_info)
        with MetricsLog(job.out_dir / METRICS_NAME) as log:
            log.write(record)
        job.say(f"fitted {job.model_type} on {len(job.train_tokens)} train tokens in {fit_summary['fit_seconds']:.1f}"
                " s" + (f"; val loss {val_loss:.4f} (ppl {math.exp(min(val_loss, 50)):.2f})"
                        if val_loss is not None else "") + f"; saved {job.out_dir}")
        if job.on_eval is not None and val_loss is not None:
            job.on_eval(record, model)
    barrier(ctx)
    return job.result(step=0, stop_reason="fitted", last_train_loss=train_loss, last_val_loss=val_loss,
                      best_val_loss=val_loss, tokens_seen=len(job.train_tokens), metrics=[record])
