"""Data parallelism applied from outside the model (the model classes know nothing about it).

Launch with torchrun, which starts one process per device and sets RANK / WORLD_SIZE / LOCAL_RANK:

    torchrun --nproc_per_node 2 -m lmlab train --data DATA --out RUN ...

Each process (rank) holds a full model replica and reads a different slice of the data windows; DDP averages
gradients across ranks during backward, so every replica takes the same optimizer step. Gradient accumulation
skips the all-reduce on all but the last micro-step (`sync_gradients`). Only rank 0 writes checkpoints, logs and
the progress bar. The global batch per optimizer step is batch_size × grad_accum × world_size sequences.

`wrap_model(model, ctx, strategy)` is the one place that chooses the parallelism:

- "ddp": every rank holds the whole model, gradients and optimizer state; DDP all-reduces gradients.
- "fsdp": PyTorch's FSDP2 (`fully_shard`), applied to each transformer block and then to the root. Every rank holds
  1/world_size of the parameters, gradients and optimizer state (ZeRO-3); a block's full parameters are
  all-gathered just before it runs and freed after, and gradients are reduce-scattered. Checkpoints are sharded
  (torch.distributed.checkpoint, see lmlab.training.sharded).

Both can add activation checkpointing per block (recompute a block's activations in backward instead of keeping
them), and the model classes stay plain: everything is applied from outside, in place or by wrapping.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import sys
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


STRATEGIES = ("ddp", "fsdp")


def check_strategy(strategy: str, device: torch.device | str, *, cpu_offload: bool = False) -> None:
    """LmlabError when `strategy` is unknown or `cpu_offload` cannot work here (it needs FSDP and a GPU: FSDP2
    moves each shard to the accelerator for compute, and with no accelerator there is nothing to offload from)."""
    if strategy not in STRATEGIES:
        raise LmlabError(f"unknown parallelism strategy {strategy!r}; choose one of: {', '.join(STRATEGIES)}")
    device_type = device.type if isinstance(device, torch.device) else str(device).split(":")[0]
    if cpu_offload and strategy != "fsdp":
        raise LmlabError("cpu_offload keeps FSDP's parameter shards in CPU memory; use it with --strategy fsdp")
    if cpu_offload and device_type != "cuda":
        raise LmlabError(f"cpu_offload needs a CUDA GPU (it moves FSDP shards between the GPU and CPU memory); "
                         f"this run computes on {device_type}, where the weights already are in CPU memory — "
                         "leave out --cpu_offload")


def transformer_blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The model's repeated layers, each a unit of sharding and of activation checkpointing: the modules of a
    `blocks` (or `layers`) ModuleList; [] for models without one (they are sharded as a whole)."""
    for name in ("blocks", "layers"):
        stack = getattr(model, name, None)
        if isinstance(stack, torch.nn.ModuleList):
            return list(stack)
    return []


def apply_activation_checkpointing(model: torch.nn.Module) -> int:
    """Recompute each transformer block's activations during backward instead of storing them (in place; parameter
    names are unchanged, so checkpoints do not notice). Saves ~all activation memory but one block's, for ~1/3
    more compute. Returns the number of blocks wrapped; LmlabError for a model without blocks."""
    from torch.distributed._composable import checkpoint

    blocks = transformer_blocks(model)
    if not blocks:
        raise LmlabError(f"activation_checkpointing works per transformer block, and a {type(model).__name__} "
                         "has no `blocks`; leave it off for this model")
    for block in blocks:
        checkpoint(block)
    return len(blocks)


def wrap_model(model: torch.nn.Module, ctx: DistContext, strategy: str = "ddp", *, compile: bool = False,
               activation_checkpointing: bool = False, param_dtype: torch.dtype | None = None,
               cpu_offload: bool = False) -> torch.nn.Module:
    """Return the module the training loop calls, with the parallelism of `strategy` applied to `model`.

    model: the plain model, already on ctx.device. One process: `model` itself (compiled if asked). "ddp" with
    several processes: torch.compile (if asked), then DDP. "fsdp" with several: `fully_shard` on each block, then on
    the root, *in place* — `model`'s parameters become DTensor shards, so build the optimizer from `model` after
    this call — then torch.compile (if asked). param_dtype: FSDP computes with parameters cast to this dtype
    (MixedPrecisionPolicy; gradients are still reduced in float32); None keeps the parameters' dtype.
    cpu_offload: keep FSDP shards and optimizer state in CPU memory (GPUs only). activation_checkpointing:
    see `apply_activation_checkpointing`. Checkpoints are written from `model` (never from the returned wrapper).
    """
    check_strategy(strategy, ctx.device, cpu_offload=cpu_offload)
    if activation_checkpointing:
        apply_activation_checkpointing(model)
    if ctx.is_distributed and strategy == "fsdp":
        _fully_shard(model, param_dtype=param_dtype, cpu_offload=cpu_offload)
    wrapped = torch.compile(model) if compile else model
    if not ctx.is_distributed or strategy == "fsdp":
        return wrapped
    from torch.nn.parallel import DistributedDataParallel as DDP

    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    # DDP broadcasts rank 0's parameters at construction, so every replica starts from identical weights.
    return DDP(wrapped, device_ids=device_ids)


def _fully_shard(model: torch.nn.Module, *, param_dtype: torch.dtype | None, cpu_offload: bool) -> None:
    """FSDP2 per block, then the root (which then holds the embeddings, final norm and head). Sharding per block
    lets a block's all-gather overlap the previous block's compute and bounds the memory of full parameters to
    about one block at a time."""
    from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard

    kwargs: dict = {}
    if param_dtype is not None:
        kwargs["mp_policy"] = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32)
    if cpu_offload:
        kwargs["offload_policy"] = CPUOffloadPolicy()
    blocks = transformer_blocks(model)
    for i, block in enumerate(blocks):
        # The last block's parameters are needed again first in backward: keeping them gathered saves one
        # all-gather per step.
        fully_shard(block, reshard_after_forward=i < len(blocks) - 1, **kwargs)
    fully_shard(model, **kwargs)


def is_sharded(model: torch.nn.Module) -> bool:
    """True when `model` (or the module inside a compile wrapper) was sharded by FSDP2: every rank must then run
    each forward together (parameters are all-gathered on the way)."""
    from torch.distributed.fsdp import FSDPModule

    return isinstance(unwrap_model(model), FSDPModule)


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The plain model inside DDP and/or torch.compile wrappers (what checkpoints store)."""
    while True:
        if isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        elif _is_compiled(model):
            model = model._orig_mod
        else:
            return model


def _is_compiled(model: torch.nn.Module) -> bool:
    """True for torch.compile's wrapper (OptimizedModule). Its module is looked up, not imported: importing
    torch._dynamo costs seconds, and until something was compiled it is not loaded and nothing is a wrapper."""
    eval_frame = sys.modules.get("torch._dynamo.eval_frame")
    return eval_frame is not None and isinstance(model, eval_frame.OptimizedModule)


def sync_gradients(model: torch.nn.Module, sync: bool):
    """Context for one micro-step's backward: when `sync` is False, skip the gradient all-reduce (DDP) or
    reduce-scatter (FSDP) — gradients just accumulate locally; the last micro-step of each optimizer step syncs
    once for all of them."""
    if isinstance(model, torch.nn.parallel.DistributedDataParallel):
        return contextlib.nullcontext() if sync else model.no_sync()
    if is_sharded(model):
        unwrap_model(model).set_requires_gradient_sync(sync)
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
