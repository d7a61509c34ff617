"""Data parallelism applied from outside the model (the model classes know nothing about it).

Launch with torchrun, which starts one process per device and sets RANK / WORLD_SIZE / LOCAL_RANK:

    torchrun --nproc_per_node 2 -m lmlab train --data DATA --out RUN ...

Each process (rank) holds a full model replica and reads a different slice of the data windows; DDP averages
gradients across ranks during backward, so every replica takes the same optimizer step. Gradient accumulation
skips the all-reduce on all but the last micro-step (`sync_gradients`). Only rank 0 writes checkpoints, logs and
the progress bar. The global batch per optimizer step is batch_size × grad_accum × world_size sequences.

`wrap_model(model, ctx, strategy)` is the one place that chooses the parallelism, so sharded training (FSDP) can
be added as another strategy without touching the model or the loop.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from lmlab.devices import resolve_device
from lmlab.errors import LmlabError


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: its rank among world_size processes and the device it computes on."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None  # 'gloo' | 'nccl' when distributed, None for a single process

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and prints."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def launch_rank() -> int:
    """This process's rank as torchrun set it (0 without torchrun), known before the process group exists: for
    work done once per job before training starts (preparing data, locking the run dir, printing)."""
    return int(os.environ.get("RANK", "0"))


def setup_distributed(device: str = "auto") -> DistContext:
    """Read torchrun's environment; with WORLD_SIZE > 1 join the process group (NCCL on CUDA, gloo on CPU).

    Without torchrun (no WORLD_SIZE) this returns a single-process context and starts nothing. Calling it again
    in a process that already joined a group returns the same context.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if world_size <= 1:
        return DistContext(rank=0, world_size=1, local_rank=0, device=dev, backend=None)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        # device_id lets NCCL bind eagerly to this rank's GPU; gloo ignores devices.
        kwargs = {"device_id": dev} if dev.type == "cuda" else {}
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30), **kwargs)
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank, device=dev,
                       backend=backend)


def teardown_distributed() -> None:
    """Leave the process group (no-op for single-process runs)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: torch.nn.Module, ctx: DistContext, strategy: str = "ddp") -> torch.nn.Module:
    """Return the module the training loop calls: `model` itself for one process, DDP-wrapped for several.

    The model must already be on ctx.device (and compiled, if wanted). 'ddp' is the only strategy today; FSDP
    will be another branch here. Checkpoints are always written from `unwrap_model(...)`.
    """
    if not ctx.is_distributed:
        return model
    if strategy != "ddp":
        raise LmlabError(f"unknown parallelism strategy {strategy!r}; available: ddp")
    from torch.nn.parallel import DistributedDataParallel as DDP

    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    # DDP broadcasts rank 0's parameters at construction, so every replica starts from identical weights.
    return DDP(model, device_ids=device_ids)


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The plain model inside DDP and/or torch.compile wrappers (what checkpoints store)."""
    while True:
        if hasattr(model, "module") and isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):  # torch.compile's OptimizedModule
            model = model._orig_mod
        else:
            return model


def sync_gradients(model: torch.nn.Module, sync: bool):
    """Context for one micro-step's backward: when `sync` is False and `model` is DDP, skip the gradient all-reduce
    (gradients just accumulate locally); the last micro-step of each optimizer step syncs once for all of them."""
    if not sync and isinstance(model, torch.nn.parallel.DistributedDataParallel):
        return model.no_sync()
    return contextlib.nullcontext()


def all_reduce_mean(value: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Mean of a tensor over all ranks (identity for one process). Used for logged losses, not gradients."""
    if not ctx.is_distributed:
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / ctx.world_size


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (e.g. until rank 0 has finished writing a checkpoint)."""
    if ctx.is_distributed:
        dist.barrier()
