"""`Job`: what stays fixed while one run trains (settings, processes and device, precision, data, where it writes),
made by `setup_job`; and `TrainResult`, what training returns."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from lmlab.checkpoint import with_data_dir
from lmlab.data import load_split
from lmlab.errors import LmlabError
from lmlab.tokenization import Tokenizer
from lmlab.training.config import TrainConfig
from lmlab.training.distributed import DistContext, setup_distributed
from lmlab.training.precision import Precision, resolve_compile, resolve_precision
from lmlab.training.trainable import Traits, traits
from lmlab.training.val_loss import evaluate


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


@dataclass(frozen=True)
class Job:
    """One training run's fixed context."""

    cfg: TrainConfig  # dtype and compile resolved: the run dir records what ran, not "auto"
    ctx: DistContext
    precision: Precision
    out_dir: Path
    data_dir: Path
    tokenizer: Tokenizer
    model_config: Any
    model_type: str
    train_tokens: np.ndarray
    val_tokens: np.ndarray | None  # None when evaluation is off (eval_iters 0)
    traits: Traits  # the model's optional capabilities (lmlab.training.trainable)
    progress: bool  # progress bars and messages on this rank
    say: Callable[[str], None]  # a message to stderr (no-op without progress)
    on_eval: Callable[[dict[str, Any], torch.nn.Module], None] | None
    t_start: float  # time.perf_counter() when train() was called

    @property
    def block_size(self) -> int:
        return self.model_config.block_size

    @property
    def tokens_per_step(self) -> int:
        """The global batch, in tokens."""
        return self.cfg.batch_size * self.cfg.grad_accum * self.ctx.world_size * self.block_size

    def run_info(self, model: torch.nn.Module) -> dict[str, Any]:
        """lmlab.checkpoint.save_run's arguments for `model` (the plain model) in this run."""
        training = {**with_data_dir(self.cfg.to_dict(), self.data_dir), "world_size": self.ctx.world_size}
        return dict(model=model, model_config=self.model_config, model_type=self.model_type,
                    tokenizer=self.tokenizer, training_config=training)

    def val_loss(self, model: torch.nn.Module, tokens: np.ndarray | None = None) -> float | None:
        """`evaluate` on the val split (or `tokens`) with this run's settings."""
        return evaluate(model, self.val_tokens if tokens is None else tokens, block_size=self.block_size,
                        batch_size=self.cfg.batch_size, eval_iters=self.cfg.eval_iters, precision=self.precision,
                        ctx=self.ctx, eos_id=self.tokenizer.eos_id, pad_id=self.tokenizer.pad_id)

    def result(self, **fields: Any) -> TrainResult:
        """A TrainResult for this run, timed up to now."""
        return TrainResult(run_dir=self.out_dir, wall_seconds=time.perf_counter() - self.t_start, **fields)


def setup_job(model: torch.nn.Module, model_config: Any, tokenizer: Tokenizer, data_dir: str | os.PathLike,
              out_dir: str | os.PathLike, cfg: TrainConfig, *, model_type: str, progress: bool,
              on_eval: Callable | None) -> Job:
    """Join the processes (torchrun), resolve the precision, and read the train and val splits, checked against
    the tokenizer and the model's window size. LmlabError for data the model cannot train on."""
    t_start = time.perf_counter()
    data_dir = Path(data_dir)
    ctx = setup_distributed(cfg.device)
    precision = resolve_precision(cfg.dtype, ctx.device, model_type=model_type)
    # The run dir records the dtype that ran, not "auto": a resume (or the same command on another machine)
    # then computes in the same precision, which exact resume needs.
    cfg = replace(cfg, dtype=precision.name, compile=resolve_compile(cfg.compile, ctx.device))
    block_size = model_config.block_size
    if tokenizer.vocab_size > model_config.vocab_size:
        raise LmlabError(f"the tokenizer has {tokenizer.vocab_size} ids but the model's vocab_size is "
                         f"{model_config.vocab_size}; set --vocab_size {tokenizer.vocab_size} or larger")
    train_tokens = load_split(data_dir, "train", tokenizer)
    val_tokens = load_split(data_dir, "val", tokenizer) if cfg.eval_iters > 0 else None
    model_traits = traits(model)
    if not model_traits.documents and len(train_tokens) < block_size + 1:  # one document per row needs no window
        raise LmlabError(f"the train split of {data_dir} has {len(train_tokens)} tokens, fewer than one window of "
                         f"block_size + 1 = {block_size + 1}; use more text or a smaller --block_size")
    if not model_traits.documents and val_tokens is not None and len(val_tokens) < block_size + 1:
        raise LmlabError(f"the val split of {data_dir} has {len(val_tokens)} tokens, fewer than one window of "
                         f"block_size + 1 = {block_size + 1}; prepare with a larger val fraction, use a smaller "
                         "--block_size, or turn evaluation off with --eval_iters 0")
    return Job(cfg=cfg, ctx=ctx, precision=precision, out_dir=Path(out_dir), data_dir=data_dir, tokenizer=tokenizer,
               model_config=model_config, model_type=model_type, train_tokens=train_tokens, val_tokens=val_tokens,
               traits=model_traits, progress=progress and ctx.is_main, say=_printer(progress and ctx.is_main),
               on_eval=on_eval, t_start=t_start)


def _printer(enabled: bool) -> Callable[[str], None]:
    """A print-to-stderr that plays well with a live tqdm bar; a no-op when progress output is off."""
    if not enabled:
        return lambda msg: None

    def say(msg: str) -> None:
        from tqdm.auto import tqdm

        tqdm.write(msg, file=sys.stderr)

    return say
