"""The training loop, written out in the open (in the spirit of nanoGPT's train.py).

    train   set-up (lmlab.training.job), count fitting for models that learn from counts (lmlab.training.counted),
            the TrainState (lmlab.training.state), then `fit`
    fit     the loop: `train_step` every step; every log_interval steps a metrics.jsonl line; every eval_interval
            steps (and at the end) the val loss on fixed windows, a checkpoint and the loss plot
    train_step  one optimizer step: the schedule's learning rate; for each of grad_accum micro-steps a batch,
            forward under autocast, backward of loss / grad_accum (DDP all-reduces gradients only on the last
            micro-step); check the loss is finite; clip the gradient norm; AdamW step

Run dir files written here (rank 0 only; names and the crash-consistent save: lmlab.checkpoint):
    model.safetensors  the latest weights (what `--resume` continues from and what other commands load by default)
    best.safetensors   the weights with the lowest val loss so far (keep_best)
    checkpoints/step-NNNNNN.safetensors   every evaluation's weights (keep_checkpoints), for learning curves
    train_state.pt     TrainState.state_dict(): optimizer, grad scaler, step, sampler position, RNG states (every
                       rank), best val loss, and the SHA-256 of the model.safetensors it belongs to
    config.json, tokenizer.json, metrics.jsonl, loss.png (and tensorboard/ when asked)
With strategy "fsdp" the weights, optimizer and train state are a sharded checkpoint instead (every rank writes
its shards: lmlab.training.sharded), and best.safetensors is gathered from the shards.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import replace
from typing import Any, Callable

import torch

from lmlab.checkpoint import BEST_WEIGHTS_NAME, METRICS_NAME, PLOT_NAME, TENSORBOARD_DIR, clear_checkpoints, \
    kept_checkpoint_name, latest_sharded_checkpoint, load_checkpoint_weights, load_train_state, save_checkpoint, \
    save_run
from lmlab.data import RandomDocumentSampler, RandomWindowSampler
from lmlab.errors import LmlabError
from lmlab.tokenization import Tokenizer
from lmlab.training.config import TrainConfig
from lmlab.training.counted import fit_counts, save_fitted
from lmlab.training.distributed import all_reduce_mean, barrier, is_sharded, sync_gradients, wrap_model
from lmlab.training.job import Job, TrainResult, setup_job
from lmlab.training.metrics import MetricsLog, TensorBoardLog, plot_losses
from lmlab.training.mfu import measure_peak_flops, mfu, nominal_peak_flops
from lmlab.training.optim import lr_at, make_optimizer, set_lr
from lmlab.training.sharded import gather_full_weights, load_sharded_checkpoint, save_sharded_checkpoint
from lmlab.training.state import TrainState, check_train_state, seed_everything
from lmlab.training.streams import ContiguousStreamSampler
from lmlab.training.val_loss import to_device

class TrainingDiverged(LmlabError):
    """The loss became NaN or infinite; the run stopped and the last good checkpoint was kept."""


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
    job = setup_job(model, model_config, tokenizer, data_dir, out_dir, cfg, model_type=model_type,
                    progress=progress, on_eval=on_eval)
    if job.traits.fits_from_counts and not resume:
        job, fit_summary = fit_counts(model, job)
        if not any(p.requires_grad for p in model.parameters()):  # nothing left for gradient steps: finished
            return save_fitted(model, job, fit_summary)
    if not any(p.requires_grad for p in model.parameters()):
        raise LmlabError(f"a {model_type} model has no trainable parameters and is fitted in one pass; there is "
                         "no training to resume — train it again without --resume")
    state, wrapped = init_state(model, job, resume=resume)
    return fit(wrapped, state, job, resumed=resume)


def init_state(model: torch.nn.Module, job: Job, *, resume: bool) -> tuple[TrainState, torch.nn.Module]:
    """The TrainState of a fresh run (seeded; an old run's checkpoints in out_dir removed) or of the run being
    resumed (weights, optimizer, data position; its RNG streams are applied later, by `fit`), and the module the
    loop calls (`model` wrapped for the run's parallelism; the state holds the plain model)."""
    cfg, ctx = job.cfg, job.ctx
    sampler = _train_sampler(job)
    # Dropout masks differ per rank (seed + rank), as independent replicas' noise should.
    seed_everything(cfg.seed + ctx.rank)
    model = model.to(ctx.device)
    model.train()
    sharded = cfg.strategy == "fsdp"  # checkpoints sharded (even for one process, so more ranks can resume it)
    if resume:  # replicated weights are loaded before wrapping (DDP broadcasts rank 0's), shards after sharding
        saved = check_train_state(load_train_state(job.out_dir), job.out_dir, sharded=sharded)
        if not sharded:
            load_checkpoint_weights(job.out_dir, model, saved)
    # FSDP computes with bf16 copies of the parameters where the run's dtype is bf16; float32 master weights stay.
    low_precision = job.precision.dtype if sharded and job.precision.dtype == torch.bfloat16 else None
    wrapped = wrap_model(model, ctx, cfg.strategy, compile=cfg.compile,
                         activation_checkpointing=cfg.activation_checkpointing, param_dtype=low_precision,
                         cpu_offload=cfg.cpu_offload)
    if job.on_eval is not None and is_sharded(model):
        raise LmlabError("an on_eval callback runs the model on rank 0 alone, which FSDP's sharded parameters "
                         "cannot do; use strategy ddp, or evaluate the saved run dir afterwards")
    optimizer = make_optimizer(model, cfg, ctx.device.type)  # after sharding: FSDP replaced the parameters
    state = TrainState(model=model, optimizer=optimizer, scaler=job.precision.make_scaler(), sampler=sampler)
    if resume:
        if sharded:
            saved = load_sharded_checkpoint(latest_sharded_checkpoint(job.out_dir), model, optimizer, ctx)
        state.load_state_dict(saved)
        job.say(f"resuming {job.out_dir} from step {state.step}")
    elif ctx.is_main:
        clear_checkpoints(job.out_dir)
    barrier(ctx)  # nobody reads or writes the run dir before rank 0 has cleared it
    return state, wrapped


def _train_sampler(job: Job):
    """Random windows; whole documents for a model that reads documents; contiguous streams for a recurrent model
    that carries its state from one batch to the next (truncated BPTT: row i continues where it ended)."""
    cfg, ctx, tokens = job.cfg, job.ctx, job.train_tokens
    if job.traits.contiguous_streams:
        return ContiguousStreamSampler(tokens, job.block_size, cfg.batch_size, rank=ctx.rank,
                                       world_size=ctx.world_size)
    if job.traits.documents:
        return RandomDocumentSampler(tokens, job.tokenizer.eos_id, job.tokenizer.pad_id, job.block_size,
                                     cfg.batch_size, seed=cfg.seed, rank=ctx.rank, world_size=ctx.world_size)
    return RandomWindowSampler(tokens, job.block_size, cfg.batch_size, seed=cfg.seed, rank=ctx.rank,
                               world_size=ctx.world_size)


# ================================================================================================ the loop ===
def fit(model: torch.nn.Module, state: TrainState, job: Job, *, resumed: bool = False) -> TrainResult:
    """Train until max_iters (or target_loss), logging, evaluating and checkpointing on the way. `model` is the
    module to call (maybe wrapped); `state.model` the plain one. resumed: `state` continues a saved run."""
    cfg, ctx = job.cfg, job.ctx
    report = _Report(job, state, resumed=resumed)
    state.restore_rng(ctx, cfg.seed, job.say)  # last before the loop: no set-up work above can shift the streams
    stop_reason, train_loss, val_loss = "max_iters", None, None
    last_saved_step = state.step if resumed else -1
    try:
        while state.step < cfg.max_iters:
            train_loss, lr = train_step(model, state, job, last_saved_step=last_saved_step)
            report.stepped(job.tokens_per_step)
            step = state.step
            evaluate_now = job.val_tokens is not None and (step % cfg.eval_interval == 0 or step == cfg.max_iters)
            save_now = (step % cfg.eval_interval == 0 or step == cfg.max_iters
                        or (cfg.save_interval and step % cfg.save_interval == 0))
            if not (step % cfg.log_interval == 0 or evaluate_now or save_now):
                continue
            record = report.record(step, train_loss, lr)
            if evaluate_now:
                val_loss = record["val_loss"] = job.val_loss(state.model)
                if state.best_val_loss is None or val_loss < state.best_val_loss:
                    state.best_val_loss = val_loss
                    if cfg.keep_best:
                        _save_weights(state.model, job, BEST_WEIGHTS_NAME)
            if cfg.keep_checkpoints and (step % cfg.eval_interval == 0 or step == cfg.max_iters):
                _save_weights(state.model, job, kept_checkpoint_name(step))
            report.write(record)
            if save_now:
                _save_checkpoint(state, job)
                last_saved_step = step
            if evaluate_now:
                report.evaluated(record, state.model)
                if cfg.target_loss is not None and val_loss <= cfg.target_loss:
                    stop_reason = "target_loss"
                    job.say(f"val loss {val_loss:.4f} ≤ target {cfg.target_loss}: stopping early at step {step}")
                    break
            report.restart_clock()  # eval and checkpoint time is not training speed
        if last_saved_step != state.step:  # max_iters 0, or resumed at the end: still a complete run dir
            val_loss = _final_checkpoint(state, job, val_loss)
    finally:
        report.close()
    return job.result(step=state.step, stop_reason=stop_reason, last_train_loss=train_loss, last_val_loss=val_loss,
                      best_val_loss=state.best_val_loss, tokens_seen=state.tokens_seen, metrics=report.records)


def train_step(model: torch.nn.Module, state: TrainState, job: Job, *, last_saved_step: int = -1
               ) -> tuple[float, float]:
    """One optimizer step on `model` (the module to call; its parameters are `state.model`'s). Returns the loss
    (mean over micro-steps and ranks, nats/token) and the step's learning rate. Raises TrainingDiverged, before
    any weight changes, when the loss is not finite (last_saved_step: for the message)."""
    cfg, device, optimizer, scaler = job.cfg, job.ctx.device, state.optimizer, state.scaler
    lr = lr_at(state.step, cfg)
    set_lr(optimizer, lr)
    loss_sum = torch.zeros((), device=device)
    for micro in range(cfg.grad_accum):
        x, y = state.sampler.next_batch()
        x, y = to_device(x, device), to_device(y, device)
        # Only the last micro-step's backward all-reduces: the earlier ones just accumulate locally.
        with sync_gradients(model, sync=micro == cfg.grad_accum - 1):
            with job.precision.autocast():
                _, loss = model(x, y)
            loss_sum += loss.detach()
            # Dividing by grad_accum makes the summed gradients those of the mean loss over all micro-steps.
            loss = loss / cfg.grad_accum
            (scaler.scale(loss) if scaler is not None else loss).backward()
    # Mean over micro-steps and ranks; one small all-reduce per step, which also keeps ranks in lockstep.
    train_loss = all_reduce_mean(loss_sum / cfg.grad_accum, job.ctx).item()
    if not math.isfinite(train_loss):  # stop before the bad gradients reach the weights
        raise _diverged(train_loss, state.step, last_saved_step, job)
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
    state.step += 1
    state.tokens_seen += job.tokens_per_step
    return train_loss, lr


def _diverged(loss: float, step: int, last_saved_step: int, job: Job) -> TrainingDiverged:
    return TrainingDiverged(
        f"loss became {loss} at step {step + 1}; stopped without saving these weights. "
        + (f"The last good checkpoint (step {last_saved_step}) is in {job.out_dir}. " if last_saved_step >= 0
           else "No checkpoint was written yet. ")
        + f"Try a lower --lr (now {job.cfg.lr:g}), --grad_clip 1.0, or --dtype float32")


def _final_checkpoint(state: TrainState, job: Job, val_loss: float | None) -> float | None:
    """Checkpoint a run that ended at a step without one, with its val loss (measured if not yet); returns it."""
    if job.val_tokens is not None and val_loss is None:
        val_loss = job.val_loss(state.model)
        state.best_val_loss = val_loss if state.best_val_loss is None else min(state.best_val_loss, val_loss)
    _save_checkpoint(state, job)
    if job.cfg.keep_best and val_loss is not None and val_loss <= state.best_val_loss:
        _save_weights(state.model, job, BEST_WEIGHTS_NAME)
    if job.cfg.keep_checkpoints:
        _save_weights(state.model, job, kept_checkpoint_name(state.step))
    return val_loss


# ============================================================================================ checkpoints ===
def _save_checkpoint(state: TrainState, job: Job) -> None:
    """model.safetensors + train_state.pt (rank 0, lmlab.checkpoint.save_checkpoint) after gathering every rank's
    RNG state; for strategy fsdp a sharded checkpoint (every rank) and config.json + tokenizer.json (rank 0)."""
    ctx, run_info = job.ctx, job.run_info(state.model)
    train_state = state.state_dict(ctx, strategy=job.cfg.strategy)
    if job.cfg.strategy == "fsdp":
        if ctx.is_main:
            save_run(job.out_dir, **{**run_info, "model": None})  # config.json, tokenizer.json: what load_run reads
        save_sharded_checkpoint(job.out_dir, state.model, state.optimizer, train_state, state.step, ctx)
        return
    if ctx.is_main:
        save_checkpoint(job.out_dir, train_state, **run_info)
    barrier(ctx)


def _save_weights(model: torch.nn.Module, job: Job, weights_name: str) -> None:
    """A weights file besides the checkpoint (best.safetensors, a kept checkpoint) from the current weights (every
    rank calls this: FSDP shards are gathered to rank 0)."""
    run_info = job.run_info(model)
    if is_sharded(model):
        tensors = gather_full_weights(model)
        if job.ctx.is_main:
            save_run(job.out_dir, weights_name=weights_name, tensors=tensors, **run_info)
    elif job.ctx.is_main:
        save_run(job.out_dir, weights_name=weights_name, **run_info)


# ============================================================================================== reporting ===
class _Report:
    """Rank 0's account of the run: metrics.jsonl, TensorBoard, the progress bar, messages and the loss plot;
    tokens/s and MFU over each log interval (every rank measures, rank 0 writes)."""

    def __init__(self, job: Job, state: TrainState, *, resumed: bool):
        cfg, ctx, out_dir = job.cfg, job.ctx, job.out_dir
        self.job = job
        # MFU references: a matmul probe in the training dtype, and the datasheet peak on known GPUs.
        self.flops_per_token = job.traits.flops_per_token
        self.peak = measure_peak_flops(ctx.device, job.precision.dtype) if self.flops_per_token else None
        self.peak_nominal = nominal_peak_flops(ctx.device, job.precision.dtype) if self.flops_per_token else None
        n_params = sum(p.numel() for p in state.model.parameters())
        job.say(f"training {n_params / 1e6:.2f}M parameters on {ctx.device} ({job.precision.name}"
                f"{', compiled' if cfg.compile else ''}), {ctx.world_size} process(es), {cfg.strategy}"
                f"{' + activation checkpointing' if cfg.activation_checkpointing else ''}; global batch "
                f"{job.tokens_per_step} tokens = {cfg.batch_size} × {cfg.grad_accum} accum × {ctx.world_size} "
                f"ranks × {job.block_size} block" + (f"; measured peak {self.peak / 1e9:.1f} GFLOP/s"
                                                      if self.peak else ""))
        main = ctx.is_main
        self.log = MetricsLog(out_dir / METRICS_NAME, resume_step=state.step if resumed else None) if main else None
        self.tb = None
        if cfg.tensorboard and main:
            self.tb = TensorBoardLog(out_dir / TENSORBOARD_DIR, purge_step=state.step + 1 if resumed else None)
        self.bar = None
        if job.progress:
            from tqdm.auto import tqdm

            # disable=None: draw only on a terminal; eval lines are printed either way.
            self.bar = tqdm(total=cfg.max_iters, initial=state.step, desc="train", unit="step", dynamic_ncols=True,
                            disable=None, file=sys.stderr)
        self.restart_clock()

    @property
    def records(self) -> list[dict[str, Any]]:
        return list(self.log.records) if self.log else []

    def restart_clock(self) -> None:
        self.t_log, self.tokens_since_log = time.perf_counter(), 0

    def stepped(self, tokens: int) -> None:
        self.tokens_since_log += tokens
        if self.bar is not None:
            self.bar.update(1)

    def record(self, step: int, train_loss: float, lr: float) -> dict[str, Any]:
        """The metrics record of `step`: loss, lr, tokens/s and MFU since the clock was last restarted."""
        device = self.job.ctx.device
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        tokens_per_sec = self.tokens_since_log / max(time.perf_counter() - self.t_log, 1e-9)
        per_rank = tokens_per_sec / self.job.ctx.world_size  # MFU is per device: its share of tokens vs its peak
        fpt = self.flops_per_token
        record: dict[str, Any] = {"step": step, "train_loss": train_loss, "lr": lr,
                                  "tokens_per_sec": round(tokens_per_sec, 1),
                                  "mfu": _round(mfu(fpt, per_rank, self.peak)) if fpt else None}
        if self.peak_nominal:
            record["mfu_nominal"] = _round(mfu(fpt, per_rank, self.peak_nominal))
        return record

    def write(self, record: dict[str, Any]) -> None:
        if self.log is not None:
            self.log.write(record)
            if self.tb is not None:
                self.tb.write(record)
        if self.bar is not None:
            self.bar.set_postfix_str(_postfix(record), refresh=False)

    def evaluated(self, record: dict[str, Any], model: torch.nn.Module) -> None:
        """After an evaluation (rank 0): the message, the loss plot, the on_eval callback."""
        job = self.job
        if not job.ctx.is_main:
            return
        val_loss = record["val_loss"]
        job.say(f"step {record['step']}: train loss {record['train_loss']:.4f}, val loss {val_loss:.4f}"
                f" (ppl {math.exp(min(val_loss, 50)):.2f}), {record['tokens_per_sec']:.0f} tok/s")
        plot_losses(self.log.records, job.out_dir / PLOT_NAME, title=f"{job.out_dir.name}: loss")
        if job.on_eval is not None:
            job.on_eval(record, model)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.log is not None:
            self.log.close()
            if self.tb is not None:
                self.tb.close()
            if self.log.records:
                plot_losses(self.log.records, self.job.out_dir / PLOT_NAME, title=f"{self.job.out_dir.name}: loss")


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
