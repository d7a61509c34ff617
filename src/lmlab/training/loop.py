"""The training loop, written out in the open (in the spirit of nanoGPT's train.py).

One optimizer step:
    for each of grad_accum micro-steps: take a batch of random windows, forward under autocast, backward of
    loss / grad_accum (DDP all-reduces gradients only on the last micro-step);
    check the loss is finite; clip the gradient norm; AdamW step with this step's learning rate.
Every log_interval steps a metrics.jsonl line; every eval_interval steps (and at the end) the val loss on fixed
windows, a checkpoint, and the loss plot.

Run dir files written here (rank 0 only):
    model.safetensors  the latest weights (what `--resume` continues from and what other commands load by default)
    best.safetensors   the weights with the lowest val loss so far (keep_best)
    train_state.pt     optimizer, grad scaler, step, sampler position, RNG states (every rank), best val loss,
                       and the SHA-256 of the model.safetensors it belongs to
    config.json, tokenizer.json, metrics.jsonl, loss.png (and tensorboard/ when asked)
With strategy "fsdp" the weights, optimizer and train state are a sharded checkpoint instead (every rank writes
its shards: lmlab.training.sharded), and best.safetensors is gathered from the shards.

Checkpoints are consistent even if the process is killed while writing one: before model.safetensors is
replaced, the previous one is kept (hard link) as .prev.safetensors until the new train_state.pt has been written;
resume picks whichever weights file matches the SHA-256 recorded in train_state.pt.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from lmlab.checkpoint import TRAIN_STATE_NAME, WEIGHTS_NAME, latest_sharded_checkpoint, load_train_state, \
    load_weights, save_run, save_train_state
from lmlab.data import RandomDocumentSampler, RandomWindowSampler, SequentialDocumentSampler, \
    SequentialWindowSampler, load_split
from lmlab.errors import LmlabError
from lmlab.tokenization import Tokenizer
from lmlab.training.config import TrainConfig
from lmlab.training.distributed import (DistContext, all_reduce_mean, barrier, is_sharded, setup_distributed,
                                        sync_gradients, wrap_model)
from lmlab.training.metrics import METRICS_FILE, PLOT_FILE, MetricsLog, TensorBoardLog, plot_losses
from lmlab.training.mfu import measure_peak_flops, mfu, nominal_peak_flops
from lmlab.training.optim import lr_at, make_optimizer, set_lr
from lmlab.training.precision import Precision, resolve_compile, resolve_precision
from lmlab.training.sharded import gather_full_weights, load_sharded_checkpoint, remove_sharded_checkpoints, \
    save_sharded_checkpoint
from lmlab.training.streams import ContiguousStreamSampler
from lmlab.utils import sha256_file

BEST_WEIGHTS_NAME = "best.safetensors"
PREV_WEIGHTS_NAME = ".prev.safetensors"  # the previous checkpoint's weights while a new one is being committed
TRAIN_STATE_FORMAT = 1


class TrainingDiverged(LmlabError):
    """The loss became NaN or infinite; the run stopped and the last good checkpoint was kept."""


@dataclass
class TrainResult:
    """What `train` returns. Losses are mean cross-entropy in nats per token."""

    run_dir: Path
    step: int  # optimizer steps done (including those before a resume)
    stop_reason: str  # "max_iters" | "target_loss" | "fitted" (fitted from counts, no gradient steps)
    last_train_loss: float | None
    last_val_loss: float | None
    best_val_loss: float | None
    tokens_seen: int  # training tokens consumed, all ranks together
    wall_seconds: float  # this call's wall time, start-up included
    metrics: list[dict[str, Any]] = field(default_factory=list)  # the run's metrics.jsonl records (rank 0)


def train(model: torch.nn.Module, model_config: Any, tokenizer: Tokenizer, data_dir: str | os.PathLike,
          out_dir: str | os.PathLike, train_config: TrainConfig, *, model_type: str = "gpt", resume: bool = False,
          progress: bool = True, on_eval: Callable[[dict[str, Any], torch.nn.Module], None] | None = None
          ) -> TrainResult:
    """Train `model` on the token shards in `data_dir`, writing the run dir `out_dir`.

    model: a freshly built model (e.g. `GPT(model_config)`, built after seeding) whose vocab_size covers the
    tokenizer's. With `resume=True`, the weights, optimizer, data position and RNG states are loaded from `out_dir`
    (the passed model's weights are replaced) and training continues to `train_config.max_iters` with exactly the
    batches and losses the uninterrupted run would have had. Without it, an existing run in `out_dir` is replaced.
    on_eval(record, model): called on rank 0 after each evaluation with the metrics record and the plain model.
    Under torchrun this runs data-parallel with train_config.strategy (see lmlab.training.distributed); every
    rank calls `train`.
    Raises TrainingDiverged (an LmlabError) when the loss becomes NaN/inf, LmlabError for bad input.
    """
    cfg = _capped(train_config)
    threads_before = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _train(model, model_config, tokenizer, data_dir, out_dir, cfg, model_type=model_type, resume=resume,
                      progress=progress, on_eval=on_eval)
    finally:
        torch.set_num_threads(threads_before)  # a notebook keeps its own setting after training


# Smoke tests of documented commands (tests/test_docs.py) run every training command as written, for a few steps:
# this environment variable caps max_iters (and eval_iters, the other cost that grows with the run) without
# touching the commands.
MAX_ITERS_ENV = "LMLAB_MAX_ITERS"


def _capped(cfg: TrainConfig) -> TrainConfig:
    """`cfg` with max_iters and eval_iters at most $LMLAB_MAX_ITERS when that is set (the schedule keeps its
    own length)."""
    cap = os.environ.get(MAX_ITERS_ENV)
    if not cap:
        return cfg
    if not cap.isdigit():
        raise LmlabError(f"{MAX_ITERS_ENV} must be a whole number of steps, got {cap!r}")
    return replace(cfg, max_iters=min(cfg.max_iters, int(cap)), eval_iters=min(cfg.eval_iters, int(cap)),
                   lr_decay_iters=cfg.decay_iters)


def _train(model, model_config, tokenizer, data_dir, out_dir, cfg: TrainConfig, *, model_type: str, resume: bool,
           progress: bool, on_eval) -> TrainResult:
    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    data_dir = Path(data_dir)
    ctx = setup_distributed(cfg.device)
    device = ctx.device
    precision = resolve_precision(cfg.dtype, device, model_type=model_type)
    # The run dir records the dtype that ran, not "auto": a resume (or the same command on another machine)
    # then computes in the same precision, which exact resume needs.
    cfg = replace(cfg, dtype=precision.name, compile=resolve_compile(cfg.compile, device))
    say = _printer(progress and ctx.is_main)

    # --- data: shards checked against the tokenizer; each rank reads its own slice of every global batch ---------
    block_size = model_config.block_size
    if tokenizer.vocab_size > model_config.vocab_size:
        raise LmlabError(f"the tokenizer has {tokenizer.vocab_size} ids but the model's vocab_size is "
                         f"{model_config.vocab_size}; set --vocab_size {tokenizer.vocab_size} or larger")
    train_tokens = load_split(data_dir, "train", tokenizer)
    val_tokens = load_split(data_dir, "val", tokenizer) if cfg.eval_iters > 0 else None
    documents = _batch_format(model) == "documents"  # one document per row: no window needs to fit
    if not documents and len(train_tokens) < block_size + 1:
        raise LmlabError(f"the train split of {data_dir} has {len(train_tokens)} tokens, fewer than one window of "
                         f"block_size + 1 = {block_size + 1}; use more text or a smaller --block_size")
    if not documents and val_tokens is not None and len(val_tokens) < block_size + 1:
        raise LmlabError(f"the val split of {data_dir} has {len(val_tokens)} tokens, fewer than one window of "
                         f"block_size + 1 = {block_size + 1}; prepare with a larger val fraction, use a smaller "
                         "--block_size, or turn evaluation off with --eval_iters 0")
    # --- models that learn from corpus counts (n-gram, co-occurrence + SVD, word2vec's unigram table) ------------
    # `fit_from_tokens(train_tokens, [tokenizer=...,] progress=...)` sees the whole train split once. A model left
    # with no trainable parameter is finished: it is saved and the gradient loop below is skipped.
    if hasattr(model, "fit_from_tokens") and not resume:
        fit_summary = _fit_from_tokens(model, train_tokens, tokenizer, progress=progress and ctx.is_main)
        model_config = getattr(model, "config", model_config)  # fitting may record data-dependent table sizes
        if not any(p.requires_grad for p in model.parameters()):
            return _finish_fitted(model, model_config, model_type, tokenizer, cfg, data_dir, out_dir, fit_summary,
                                  train_tokens, val_tokens, precision, t_start, ctx, say, on_eval)
    if not any(p.requires_grad for p in model.parameters()):
        raise LmlabError(f"a {model_type} model has no trainable parameters and is fitted in one pass; there is "
                         "no training to resume — train it again without --resume")
    # A recurrent model that carries its state from one batch to the next (truncated BPTT) needs each batch row to
    # continue where the same row of the previous batch ended: contiguous streams instead of random windows.
    # A model that learns from whole documents (seq2seq pairs, labelled texts) says `batch_format = "documents"`:
    # each batch row is one document, padded (lmlab.data.documents).
    if getattr(model, "wants_contiguous_streams", False):
        sampler = ContiguousStreamSampler(train_tokens, block_size, cfg.batch_size, rank=ctx.rank,
                                          world_size=ctx.world_size)
    elif documents:
        sampler = RandomDocumentSampler(train_tokens, tokenizer.eos_id, tokenizer.pad_id, block_size, cfg.batch_size,
                                        seed=cfg.seed, rank=ctx.rank, world_size=ctx.world_size)
    else:
        sampler = RandomWindowSampler(train_tokens, block_size, cfg.batch_size, seed=cfg.seed, rank=ctx.rank,
                                      world_size=ctx.world_size)
    tokens_per_step = cfg.batch_size * cfg.grad_accum * ctx.world_size * block_size  # global batch, in tokens

    # --- model, optimizer, grad scaler; then either a fresh start or the saved state ---------------------------
    # Dropout masks differ per rank (seed + rank), as independent replicas' noise should.
    _seed_everything(cfg.seed + ctx.rank)
    raw_model = model.to(device)
    raw_model.train()
    sharded = cfg.strategy == "fsdp"  # checkpoints sharded (even for one process, so more ranks can resume it)
    if resume:  # replicated weights are loaded before wrapping (DDP broadcasts rank 0's), shards after sharding
        state = _load_resume_state(out_dir, raw_model, sharded=sharded)
    # FSDP computes with bf16 copies of the parameters where the run's dtype is bf16; float32 master weights stay.
    low_precision = precision.dtype if sharded and precision.dtype == torch.bfloat16 else None
    model = wrap_model(raw_model, ctx, cfg.strategy, compile=cfg.compile,
                       activation_checkpointing=cfg.activation_checkpointing, param_dtype=low_precision,
                       cpu_offload=cfg.cpu_offload)
    if on_eval is not None and is_sharded(raw_model):
        raise LmlabError("an on_eval callback runs the model on rank 0 alone, which FSDP's sharded parameters "
                         "cannot do; use strategy ddp, or evaluate the saved run dir afterwards")
    optimizer = make_optimizer(raw_model, cfg, device.type)  # after sharding: FSDP replaced the parameters
    scaler = precision.make_scaler()
    step, best_val, tokens_seen = 0, None, 0
    saved_rng = None
    if resume:
        if sharded:
            state = load_sharded_checkpoint(latest_sharded_checkpoint(out_dir), raw_model, optimizer, ctx)
        else:
            optimizer.load_state_dict(state["optimizer"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        sampler.load_state_dict(state["sampler"])
        step, best_val, tokens_seen = int(state["step"]), state["best_val_loss"], int(state["tokens_seen"])
        saved_rng = state["rng"]
        say(f"resuming {out_dir} from step {step}")
    elif ctx.is_main:
        _clear_checkpoints(out_dir)
    barrier(ctx)  # nobody reads or writes the run dir before rank 0 has cleared it

    # --- MFU references: a matmul probe in the training dtype, and the datasheet peak on known GPUs -------------
    flops_per_token = float(raw_model.flops_per_token()) if hasattr(raw_model, "flops_per_token") else None
    peak = measure_peak_flops(device, precision.dtype) if flops_per_token else None
    peak_nominal = nominal_peak_flops(device, precision.dtype) if flops_per_token else None
    n_params = sum(p.numel() for p in raw_model.parameters())
    say(f"training {n_params / 1e6:.2f}M parameters on {device} ({precision.name}"
        f"{', compiled' if cfg.compile else ''}), {ctx.world_size} process(es), {cfg.strategy}"
        f"{' + activation checkpointing' if cfg.activation_checkpointing else ''}; global batch "
        f"{tokens_per_step} tokens = {cfg.batch_size} × {cfg.grad_accum} accum × {ctx.world_size} ranks × "
        f"{block_size} block" + (f"; measured peak {peak / 1e9:.1f} GFLOP/s" if peak else ""))

    # --- logs (rank 0) --------------------------------------------------------------------------------------------
    log = MetricsLog(out_dir / METRICS_FILE, resume_step=step if resume else None) if ctx.is_main else None
    tb = None
    if cfg.tensorboard and ctx.is_main:
        tb = TensorBoardLog(out_dir / "tensorboard", purge_step=step + 1 if resume else None)
    run_info = dict(model=raw_model, model_config=model_config, model_type=model_type, tokenizer=tokenizer,
                    training_config={**cfg.to_dict(), "data_dir": str(data_dir.resolve()),
                                     "world_size": ctx.world_size})

    bar = None
    if progress and ctx.is_main:
        from tqdm.auto import tqdm

        # disable=None: draw only on a terminal; eval lines are printed either way.
        bar = tqdm(total=cfg.max_iters, initial=step, desc="train", unit="step", dynamic_ncols=True, disable=None,
                   file=sys.stderr)

    # Restore the RNG streams last, right before the loop, so no set-up work above can shift them.
    if saved_rng is not None:
        if len(saved_rng) == ctx.world_size:
            _set_rng_state(saved_rng[ctx.rank])
        else:  # a different number of ranks cannot continue the same dropout streams; data order is unaffected
            say(f"note: resuming with {ctx.world_size} ranks instead of {len(saved_rng)}: RNG streams re-seeded")
            _seed_everything(cfg.seed + ctx.rank + 1000 * step)

    # --- the loop -------------------------------------------------------------------------------------------------
    stop_reason = "max_iters"
    train_loss = val_loss = None
    last_saved_step = step if resume else -1
    t_log, tokens_since_log = time.perf_counter(), 0
    try:
        while step < cfg.max_iters:
            lr = lr_at(step, cfg)
            set_lr(optimizer, lr)
            loss_sum = torch.zeros((), device=device)
            for micro in range(cfg.grad_accum):
                x, y = sampler.next_batch()
                x, y = _to_device(x, device), _to_device(y, device)
                # Only the last micro-step's backward all-reduces: the earlier ones just accumulate locally.
                with sync_gradients(model, sync=micro == cfg.grad_accum - 1):
                    with precision.autocast():
                        _, loss = model(x, y)
                    loss_sum += loss.detach()
                    # Dividing by grad_accum makes the summed gradients those of the mean loss over all micro-steps.
                    loss = loss / cfg.grad_accum
                    (scaler.scale(loss) if scaler is not None else loss).backward()
            # Mean over micro-steps and ranks; one small all-reduce per step, which also keeps ranks in lockstep.
            train_loss = all_reduce_mean(loss_sum / cfg.grad_accum, ctx).item()
            if not math.isfinite(train_loss):
                # Stop before the bad gradients reach the weights; the last checkpoint on disk stays as it was.
                raise TrainingDiverged(
                    f"loss became {train_loss} at step {step + 1}; stopped without saving these weights. "
                    + (f"The last good checkpoint (step {last_saved_step}) is in {out_dir}. " if last_saved_step >= 0
                       else "No checkpoint was written yet. ")
                    + f"Try a lower --lr (now {cfg.lr:g}), --grad_clip 1.0, or --dtype float32")
            if scaler is not None:
                scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            if scaler is not None:
                scaler.step(optimizer)  # skips the step if any gradient overflowed, then lowers the scale
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            tokens_seen += tokens_per_step
            tokens_since_log += tokens_per_step

            evaluate_now = val_tokens is not None and (step % cfg.eval_interval == 0 or step == cfg.max_iters)
            save_now = (step % cfg.eval_interval == 0 or step == cfg.max_iters
                        or (cfg.save_interval and step % cfg.save_interval == 0))
            if bar is not None:
                bar.update(1)
            if step % cfg.log_interval == 0 or evaluate_now or save_now:
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                elapsed = time.perf_counter() - t_log
                tokens_per_sec = tokens_since_log / max(elapsed, 1e-9)
                per_rank = tokens_per_sec / ctx.world_size  # MFU is per device: its share of tokens vs its peak
                record: dict[str, Any] = {
                    "step": step, "train_loss": train_loss, "lr": lr, "tokens_per_sec": round(tokens_per_sec, 1),
                    "mfu": _round(mfu(flops_per_token, per_rank, peak)) if flops_per_token else None}
                if peak_nominal:
                    record["mfu_nominal"] = _round(mfu(flops_per_token, per_rank, peak_nominal))
                if evaluate_now:
                    val_loss = evaluate(raw_model, val_tokens, block_size=block_size, batch_size=cfg.batch_size,
                                        eval_iters=cfg.eval_iters, precision=precision, ctx=ctx,
                                        eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id)
                    record["val_loss"] = val_loss
                    if best_val is None or val_loss < best_val:
                        best_val = val_loss
                        if cfg.keep_best:
                            _save_best(out_dir, run_info, ctx)
                if ctx.is_main:
                    log.write(record)
                    if tb is not None:
                        tb.write(record)
                if bar is not None:
                    bar.set_postfix_str(_postfix(record), refresh=False)
                if save_now:
                    _save_checkpoint(out_dir, run_info, optimizer, scaler, sampler, step, best_val, tokens_seen,
                                     ctx)
                    last_saved_step = step
                if evaluate_now and ctx.is_main:
                    say(f"step {step}: train loss {train_loss:.4f}, val loss {val_loss:.4f}"
                        f" (ppl {math.exp(min(val_loss, 50)):.2f}), {record['tokens_per_sec']:.0f} tok/s")
                    plot_losses(log.records, out_dir / PLOT_FILE, title=f"{out_dir.name}: loss")
                    if on_eval is not None:
                        on_eval(record, raw_model)
                if evaluate_now and cfg.target_loss is not None and val_loss <= cfg.target_loss:
                    stop_reason = "target_loss"
                    say(f"val loss {val_loss:.4f} ≤ target {cfg.target_loss}: stopping early at step {step}")
                    break
                t_log, tokens_since_log = time.perf_counter(), 0  # eval and checkpoint time is not training speed

        # A run that ends without a checkpoint at its last step (max_iters = 0, or resumed at the end) still
        # leaves a complete run dir.
        if last_saved_step != step:
            if val_tokens is not None and val_loss is None:
                val_loss = evaluate(raw_model, val_tokens, block_size=block_size, batch_size=cfg.batch_size,
                                    eval_iters=cfg.eval_iters, precision=precision, ctx=ctx,
                                    eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id)
                best_val = val_loss if best_val is None else min(best_val, val_loss)
            _save_checkpoint(out_dir, run_info, optimizer, scaler, sampler, step, best_val, tokens_seen, ctx)
            if cfg.keep_best and val_loss is not None and val_loss <= best_val:
                _save_best(out_dir, run_info, ctx)
    finally:
        if bar is not None:
            bar.close()
        if ctx.is_main:
            log.close()
            if tb is not None:
                tb.close()
            if log.records:
                plot_losses(log.records, out_dir / PLOT_FILE, title=f"{out_dir.name}: loss")

    return TrainResult(run_dir=out_dir, step=step, stop_reason=stop_reason, last_train_loss=train_loss,
                       last_val_loss=val_loss, best_val_loss=best_val, tokens_seen=tokens_seen,
                       wall_seconds=time.perf_counter() - t_start, metrics=list(log.records) if log else [])


@torch.no_grad()
def evaluate(model: torch.nn.Module, tokens: np.ndarray, *, block_size: int, batch_size: int, eval_iters: int,
             precision: Precision, ctx: DistContext, eos_id: int = 3, pad_id: int = 0) -> float | None:
    """Mean cross-entropy (nats/token) over the first eval_iters × batch_size × world_size non-overlapping windows
    of `tokens` — the same windows at every evaluation, split across ranks, averaged per token over all ranks.
    For a model with `batch_format = "documents"`: over the first eval_iters × batch_size × world_size documents
    (eos_id ends a document, pad_id fills rows), weighted by the padded batch size.

    `model` is the plain model (not DDP-wrapped: evaluation needs no gradient sync, and ranks may get partial or
    empty last batches; an FSDP-sharded model runs its forward on an empty batch too, in lockstep). Leaves the model in training mode. None when the model computes no loss (e.g. word
    vectors fitted by counting).
    """
    device = next(model.parameters()).device
    if _batch_format(model) == "documents":
        sampler = SequentialDocumentSampler(tokens, eos_id, pad_id, block_size, batch_size, rank=ctx.rank,
                                            world_size=ctx.world_size, max_batches=eval_iters)
    else:
        sampler = SequentialWindowSampler(tokens, block_size, batch_size, rank=ctx.rank, world_size=ctx.world_size,
                                          max_batches=eval_iters)
    model.eval()
    totals = torch.zeros(2, dtype=torch.float64, device=device)  # (sum of token losses, number of tokens)
    try:
        for x, y in sampler:
            if y.numel() == 0:
                if is_sharded(model):  # every rank takes part in each forward's parameter all-gathers
                    model(_to_device(x, device))
                continue
            with precision.autocast():
                _, loss = model(_to_device(x, device), _to_device(y, device))
            if loss is None:
                return None
            totals += torch.stack([loss.double() * y.numel(), torch.tensor(float(y.numel()), device=device,
                                                                            dtype=torch.float64)])
    finally:
        model.train()
    totals = all_reduce_mean(totals, ctx)  # mean of sums ∝ sum of sums; the ratio is the per-token mean
    return (totals[0] / totals[1]).item()


def _batch_format(model: torch.nn.Module) -> str:
    """"windows" (default: random token windows) or "documents" (one document per row), as the model declares."""
    fmt = getattr(model, "batch_format", "windows")
    if fmt not in ("windows", "documents"):
        raise LmlabError(f"model batch_format {fmt!r} is not one of 'windows', 'documents'")
    return fmt


# ============================================================================== models fitted from counts ===
def _fit_from_tokens(model: torch.nn.Module, train_tokens: np.ndarray, tokenizer: Tokenizer, *,
                     progress: bool) -> dict[str, Any]:
    """Call `model.fit_from_tokens` on the train split; the tokenizer is passed when the method takes one (models
    that must tell words from punctuation or find `<eos>`). Returns the method's summary dict (or {})."""
    import inspect

    kwargs: dict[str, Any] = {"progress": progress}
    if "tokenizer" in inspect.signature(model.fit_from_tokens).parameters:
        kwargs["tokenizer"] = tokenizer
    t0 = time.perf_counter()
    summary = model.fit_from_tokens(train_tokens, **kwargs)
    return {**(summary if isinstance(summary, dict) else {}), "fit_seconds": round(time.perf_counter() - t0, 3)}


def _finish_fitted(model, model_config, model_type: str, tokenizer: Tokenizer, cfg: TrainConfig, data_dir: Path,
                   out_dir: Path, fit_summary: dict[str, Any], train_tokens: np.ndarray,
                   val_tokens: np.ndarray | None, precision: Precision, t_start: float, ctx: DistContext, say,
                   on_eval: Callable | None) -> TrainResult:
    """Save and report a model fully fitted by `fit_from_tokens` (no gradient steps, no train_state.pt). When the
    model computes a loss (an n-gram LM) it is measured on the same fixed train and val windows the gradient loop
    evaluates; the metrics record has step 0."""
    model.to(ctx.device)

    def loss_on(tokens):
        if tokens is None or cfg.eval_iters == 0:
            return None
        return evaluate(model, tokens, block_size=model_config.block_size, batch_size=cfg.batch_size,
                        eval_iters=cfg.eval_iters, precision=precision, ctx=ctx,
                        eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id)

    train_loss, val_loss = loss_on(train_tokens), loss_on(val_tokens)
    record: dict[str, Any] = {"step": 0, "train_tokens": len(train_tokens), **fit_summary}
    if train_loss is not None:
        record["train_loss"] = train_loss
    if val_loss is not None:
        record["val_loss"] = val_loss
    if ctx.is_main:
        _clear_checkpoints(out_dir)
        run_info = dict(model=model, model_config=model_config, model_type=model_type, tokenizer=tokenizer,
                        training_config={**cfg.to_dict(), "data_dir": str(data_dir.resolve()), "world_size": 1})
        save_run(out_dir, **run_info)
        if cfg.keep_best and val_loss is not None:
            save_run(out_dir, weights_name=BEST_WEIGHTS_NAME, **run_info)
        with MetricsLog(out_dir / METRICS_FILE) as log:
            log.write(record)
        say(f"fitted {model_type} on {len(train_tokens)} train tokens in {fit_summary['fit_seconds']:.1f} s"
            + (f"; val loss {val_loss:.4f} (ppl {math.exp(min(val_loss, 50)):.2f})" if val_loss is not None else "")
            + f"; saved {out_dir}")
        if on_eval is not None and val_loss is not None:
            on_eval(record, model)
    barrier(ctx)
    return TrainResult(run_dir=out_dir, step=0, stop_reason="fitted", last_train_loss=train_loss,
                       last_val_loss=val_loss, best_val_loss=val_loss, tokens_seen=len(train_tokens),
                       wall_seconds=time.perf_counter() - t_start, metrics=[record])


# ============================================================================================ checkpoints ===
def _save_checkpoint(out_dir: Path, run_info: dict, optimizer, scaler, sampler, step: int, best_val, tokens_seen,
                     ctx: DistContext) -> None:
    """Write model.safetensors + train_state.pt (rank 0), gathering every rank's RNG state first; for strategy
    fsdp a sharded checkpoint (every rank) and config.json + tokenizer.json (rank 0)."""
    # Everything but the weights and the optimizer: plain data, the same for both checkpoint kinds.
    state = {"format": TRAIN_STATE_FORMAT, "strategy": run_info["training_config"]["strategy"], "step": step,
             "scaler": scaler.state_dict() if scaler is not None else None, "sampler": sampler.state_dict(),
             "rng": _gather_objects(_get_rng_state(), ctx), "best_val_loss": best_val, "tokens_seen": tokens_seen,
             "world_size": ctx.world_size}
    if state["strategy"] == "fsdp":
        if ctx.is_main:
            save_run(out_dir, **{**run_info, "model": None})  # config.json, tokenizer.json: what load_run reads
        save_sharded_checkpoint(out_dir, run_info["model"], optimizer, state, step, ctx)
        return
    if ctx.is_main:
        weights = out_dir / WEIGHTS_NAME
        prev = out_dir / PREV_WEIGHTS_NAME
        if weights.exists():
            _link_or_copy(weights, prev)  # the state on disk stays consistent until train_state.pt is replaced
        save_run(out_dir, **run_info)
        save_train_state(out_dir, {**state, "optimizer": optimizer.state_dict(),
                                   "weights_sha256": sha256_file(weights)})
        prev.unlink(missing_ok=True)
    barrier(ctx)


def _load_resume_state(out_dir: Path, model: torch.nn.Module, *, sharded: bool) -> dict:
    """Load train_state.pt and the weights file it belongs to into `model`; explain what is wrong otherwise.
    For a sharded run only the train state is checked here: its shards are loaded once the model is sharded."""
    state = load_train_state(out_dir)
    if state is None:
        raise LmlabError(f"nothing to resume: {out_dir / TRAIN_STATE_NAME} does not exist "
                         "(start without --resume, or point --out at an existing run)")
    if state.get("format") != TRAIN_STATE_FORMAT:
        raise LmlabError(f"{out_dir / TRAIN_STATE_NAME} has format {state.get('format')!r}, expected "
                         f"{TRAIN_STATE_FORMAT}; it was written by another lmlab version")
    saved_strategy = state.get("strategy", "ddp")
    if (saved_strategy == "fsdp") != sharded:
        raise LmlabError(f"{out_dir} was trained with strategy {saved_strategy}, whose checkpoints are "
                         f"{'sharded' if saved_strategy == 'fsdp' else 'whole'}; resume it with --strategy "
                         f"{saved_strategy}")
    if sharded:
        return state
    for name in (WEIGHTS_NAME, PREV_WEIGHTS_NAME):
        path = out_dir / name
        if path.is_file() and sha256_file(path) == state["weights_sha256"]:
            load_weights(model, path, what=f"the model config of {out_dir}")
            return state
    raise LmlabError(f"{out_dir / WEIGHTS_NAME} is not the file {TRAIN_STATE_NAME} was saved with (checksums "
                     "differ); the run dir was changed by hand — start a new run instead of --resume")


def _save_best(out_dir: Path, run_info: dict, ctx: DistContext) -> None:
    """best.safetensors from the current weights (every rank calls this: FSDP shards are gathered to rank 0)."""
    if is_sharded(run_info["model"]):
        tensors = gather_full_weights(run_info["model"])
        if ctx.is_main:
            save_run(out_dir, weights_name=BEST_WEIGHTS_NAME, tensors=tensors, **run_info)
    elif ctx.is_main:
        save_run(out_dir, weights_name=BEST_WEIGHTS_NAME, **run_info)


def _clear_checkpoints(out_dir: Path) -> None:
    """A fresh run in an existing dir: remove the old run's weights and state so a later --resume cannot mix them."""
    for name in (WEIGHTS_NAME, BEST_WEIGHTS_NAME, PREV_WEIGHTS_NAME, TRAIN_STATE_NAME):
        (out_dir / name).unlink(missing_ok=True)
    remove_sharded_checkpoints(out_dir)
    tb_dir = out_dir / "tensorboard"
    if tb_dir.is_dir():
        shutil.rmtree(tb_dir)


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)  # no copy: the old inode stays alive under the second name
    except OSError:
        shutil.copy2(src, dst)


# ================================================================================================ RNG state ===
def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _get_rng_state() -> dict[str, Any]:
    """Python, NumPy, torch (and CUDA) RNG states as tensors/ints/lists only (train_state.pt is loaded with
    weights_only=True, which refuses other objects)."""
    np_kind, np_keys, np_pos, np_has_gauss, np_cached = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": np_kind, "keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(np_pos),
                  "has_gauss": int(np_has_gauss), "cached_gaussian": float(np_cached)},
        "python": {"version": py_version, "state": list(py_state), "gauss": py_gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _gather_objects(obj: Any, ctx: DistContext) -> list[Any]:
    """[obj of rank 0, obj of rank 1, ...] on every rank (a one-element list for a single process)."""
    if not ctx.is_distributed:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


# ================================================================================================= helpers ===
def _to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)  # overlaps the copy with queued GPU work
    return t.to(device)


def _round(x: float | None, digits: int = 5) -> float | None:
    return None if x is None else round(x, digits)


def _postfix(record: dict[str, Any]) -> str:
    parts = [f"loss {record['train_loss']:.4f}"]
    if "val_loss" in record:
        parts.append(f"val {record['val_loss']:.4f}")
    parts.append(f"{record['tokens_per_sec']:.0f} tok/s")
    if record.get("mfu") is not None:
        parts.append(f"mfu {100 * record['mfu']:.1f}%")
    return ", ".join(parts)


def _printer(enabled: bool) -> Callable[[str], None]:
    """A print-to-stderr that plays well with a live tqdm bar; a no-op when progress output is off."""
    if not enabled:
        return lambda msg: None

    def say(msg: str) -> None:
        from tqdm.auto import tqdm

        tqdm.write(msg, file=sys.stderr)

    return say
