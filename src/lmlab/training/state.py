"""`TrainState`: everything that changes while a run trains, and its train_state.pt form.

    TrainState.state_dict()  →  train_state.pt (with the weights file: lmlab.checkpoint.save_checkpoint)
        format, strategy, step, scaler, sampler, rng (one entry per rank), best_val_loss, tokens_seen, world_size,
        optimizer (whole checkpoints only: a sharded one holds the optimizer's shards itself)
    TrainState.load_state_dict(train_state.pt)  restores all of it; the RNG streams are applied last, right before
        the loop (`restore_rng`), so that no set-up work can shift them.

In the spirit of litgpt's `state` dict (model, optimizer, iteration counters) saved and loaded as one object.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from lmlab.checkpoint import TRAIN_STATE_NAME
from lmlab.errors import LmlabError
from lmlab.training.distributed import DistContext

TRAIN_STATE_FORMAT = 1


@dataclass
class TrainState:
    """The model being trained and everything a resume needs to continue it exactly."""

    model: torch.nn.Module  # the plain model (never the DDP/compile wrapper): what checkpoints hold
    optimizer: torch.optim.Optimizer
    scaler: Any  # torch.amp.GradScaler for float16, else None
    sampler: Any  # the train batch sampler; its state_dict() is the data position
    step: int = 0  # optimizer steps done: the schedule's position (lr_at(step))
    best_val_loss: float | None = None
    tokens_seen: int = 0  # training tokens consumed, all ranks together
    saved_rng: list | None = None  # every rank's RNG states from a loaded checkpoint, applied by restore_rng

    def state_dict(self, ctx: DistContext, *, strategy: str) -> dict[str, Any]:
        """train_state.pt's contents (tensors and plain data only). Every rank calls this: it gathers every rank's
        RNG state. The optimizer is included unless the strategy's checkpoints are sharded."""
        state = {"format": TRAIN_STATE_FORMAT, "strategy": strategy, "step": self.step,
                 "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                 "sampler": self.sampler.state_dict(), "rng": _gather_objects(get_rng_state(), ctx),
                 "best_val_loss": self.best_val_loss, "tokens_seen": self.tokens_seen, "world_size": ctx.world_size}
        if strategy != "fsdp":
            state["optimizer"] = self.optimizer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a train_state.pt (see `check_train_state`); the weights are loaded separately, and the
        optimizer too when the checkpoint is sharded (it holds no "optimizer" entry then)."""
        if "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.sampler.load_state_dict(state["sampler"])
        self.step, self.best_val_loss = int(state["step"]), state["best_val_loss"]
        self.tokens_seen = int(state["tokens_seen"])
        self.saved_rng = state["rng"]

    def restore_rng(self, ctx: DistContext, seed: int, say: Callable[[str], None]) -> None:
        """Apply the loaded RNG streams (no-op for a fresh run). With a different number of ranks than saved, the
        dropout streams cannot continue: they are re-seeded (data order is unaffected)."""
        if self.saved_rng is None:
            return
        if len(self.saved_rng) == ctx.world_size:
            set_rng_state(self.saved_rng[ctx.rank])
        else:
            say(f"note: resuming with {ctx.world_size} ranks instead of {len(self.saved_rng)}: RNG streams re-seeded")
            seed_everything(seed + ctx.rank + 1000 * self.step)


def check_train_state(state: dict | None, run_dir: Path, *, sharded: bool) -> dict:
    """`state` (from lmlab.checkpoint.load_train_state) if this lmlab can resume it with checkpoints that are
    `sharded` or not; LmlabError saying what to do otherwise."""
    path = run_dir / TRAIN_STATE_NAME
    if state is None:
        raise LmlabError(f"nothing to resume: {path} does not exist "
                         "(start without --resume, or point --out at an existing run)")
    if state.get("format") != TRAIN_STATE_FORMAT:
        raise LmlabError(f"{path} has format {state.get('format')!r}, expected "
                         f"{TRAIN_STATE_FORMAT}; it was written by another lmlab version")
    saved_strategy = state.get("strategy", "ddp")
    if (saved_strategy == "fsdp") != sharded:
        raise LmlabError(f"{run_dir} was trained with strategy {saved_strategy}, whose checkpoints are "
                         f"{'sharded' if saved_strategy == 'fsdp' else 'whole'}; resume it with --strategy "
                         f"{saved_strategy}")
    return state


# ================================================================================================ RNG state ===
def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global RNGs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def get_rng_state() -> dict[str, Any]:
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


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `get_rng_state` returned."""
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
