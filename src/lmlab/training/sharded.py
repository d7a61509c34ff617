"""Sharded checkpoints of FSDP runs, written and read with torch.distributed.checkpoint (DCP).

A checkpoint is one directory, RUN_DIR/sharded/step-N/ (names: lmlab.checkpoint):

    __0_0.distcp, __1_0.distcp, ...   each rank's shards of the model and the AdamW state (one file per rank)
    .metadata                         which piece of which tensor is where (global shapes, offsets)
    train_state.pt                    step, data position, every rank's RNG state, best val loss (rank 0)

It is written as sharded/.tmp-step-N/ and renamed to step-N only when complete; then older checkpoints are
deleted. A process killed at any moment therefore leaves the previous checkpoint whole (and maybe a temporary
directory, which the next save removes). Loading goes through DCP's global view, so a checkpoint written by W ranks
loads into any number of ranks (re-sharding), and into one process without a process group (`lmlab sample`,
`eval`, `export`: lmlab.checkpoint.load_run consolidates it).
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import torch

from lmlab.checkpoint import TRAIN_STATE_NAME, save_train_state, sharded_checkpoint_dir
from lmlab.training.distributed import DistContext, barrier
from lmlab.utils import fsync_dir

_TMP_PREFIX = ".tmp-"


def save_sharded_checkpoint(run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                            train_state: dict, step: int, ctx: DistContext) -> Path:
    """Write the model's and optimizer's shards plus `train_state` (rank 0's, plain data) as the checkpoint of
    `step`, atomically; every rank calls this. `model` is the plain model (FSDP-sharded in place, or not sharded
    at all for one process). Returns the checkpoint directory."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    final = sharded_checkpoint_dir(run_dir, step)
    tmp = final.parent / f"{_TMP_PREFIX}{final.name}"
    if ctx.is_main:
        final.parent.mkdir(parents=True, exist_ok=True)
        _remove_temporaries(final.parent)  # what a killed save left; no rank writes until the barrier below
    barrier(ctx)
    model_state, optim_state = get_state_dict(model, optimizer)
    with _single_process_quiet():
        dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=str(tmp),
                 no_dist=not ctx.is_distributed)  # collective: returns when every rank's file is written
    if ctx.is_main:
        save_train_state(tmp, train_state)
        if final.exists():  # the same step saved again (a run with nothing left to do): replace it
            shutil.rmtree(final)
        os.replace(tmp, final)  # the commit: from here on step-N is the newest complete checkpoint
        fsync_dir(final.parent)
        for old in final.parent.iterdir():
            if old.is_dir() and old.name < final.name and not old.name.startswith(_TMP_PREFIX):
                shutil.rmtree(old, ignore_errors=True)
    barrier(ctx)
    return final


def load_sharded_checkpoint(ckpt_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                            ctx: DistContext) -> dict:
    """Load a checkpoint written by any number of ranks into this run's (sharded or plain) `model` and
    `optimizer` — each rank reads the pieces of its own shards — and return its train_state (plain data).
    Every rank calls this."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    # get_state_dict gives the optimizer state its full set of keys (it initialises AdamW's moments if no step
    # was taken yet), which DCP needs to know what to read.
    model_state, optim_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optim": optim_state}
    with _single_process_quiet():
        dcp.load(state, checkpoint_id=str(ckpt_dir), no_dist=not ctx.is_distributed)
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
    return torch.load(ckpt_dir / TRAIN_STATE_NAME, map_location="cpu", weights_only=True)


def gather_full_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The whole model's weights as CPU tensors on rank 0 ({} on other ranks), gathered from the FSDP shards
    (every rank calls this); tied aliases left out, as a safetensors run dir stores them. For best.safetensors."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    # named_parameters() yields a tied parameter once, under its first name (wte.weight, not lm_head.weight).
    owned = {n for n, _ in model.named_parameters()} | {n for n, _ in model.named_buffers()}
    return {n: t for n, t in full.items() if n in owned}


def _remove_temporaries(root: Path) -> None:
    for p in root.iterdir():
        if p.name.startswith(_TMP_PREFIX):
            shutil.rmtree(p, ignore_errors=True)


class _single_process_quiet(warnings.catch_warnings):
    """DCP warns that it assumes a single process when no process group exists; that is exactly what we mean."""

    def __enter__(self):
        out = super().__enter__()
        warnings.filterwarnings("ignore", message=".*(single process|no_dist).*")
        return out
