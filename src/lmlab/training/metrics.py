"""What a run records: `metrics.jsonl` (one JSON object per logged step), the `loss.png` curve, optional TensorBoard.

metrics.jsonl fields: step (optimizer steps done), train_loss (mean over the step's micro-batches and ranks), lr,
tokens_per_sec (all ranks together, over the last log interval, evaluation time excluded), mfu (fraction of the
measured peak, per rank; null when unknown), mfu_nominal (against the GPU's datasheet peak; GPUs only), and
val_loss on evaluation steps. Lines are appended and flushed as they are written, so a killed run loses nothing
it logged; on resume the file is cut back to the resumed step so that no step appears twice.
"""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path
from typing import Any

from lmlab.errors import LmlabError
from lmlab.utils import atomic_write_bytes, atomic_write_text


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All records of a metrics.jsonl file, in order (a torn last line from a killed writer is skipped)."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # only the last line can be torn (append-only file); anything after it is gone with it
    return records


class MetricsLog:
    """Append-only writer of metrics.jsonl. `resume_step`: drop existing records with step > resume_step first."""

    def __init__(self, path: str | os.PathLike, *, resume_step: int | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            kept: list[dict[str, Any]] = []
        else:
            kept = [r for r in read_metrics(self.path) if r.get("step", 0) <= resume_step]
        # Rewrite atomically (fresh run: empty file; resume: the prefix up to the checkpoint), then append.
        atomic_write_text(self.path, "".join(_dumps(r) + "\n" for r in kept))
        self.records = kept
        self._file = open(self.path, "a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        self._file.write(_dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> "MetricsLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _dumps(record: dict[str, Any]) -> str:
    # JSON has no NaN/inf: write them as null so every line stays parseable by strict readers.
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
    return json.dumps(clean, separators=(",", ":"))


def plot_losses(records: list[dict[str, Any]], path: str | os.PathLike, *, title: str | None = None) -> None:
    """Write a PNG of train loss (every logged step) and val loss (evaluation steps) against step, atomically."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed; must precede pyplot's import in this process
    import matplotlib.pyplot as plt

    train = [(r["step"], r["train_loss"]) for r in records if r.get("train_loss") is not None]
    val = [(r["step"], r["val_loss"]) for r in records if r.get("val_loss") is not None]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    try:
        if train:
            ax.plot(*zip(*train), label="train", linewidth=1, alpha=0.8)
        if val:
            ax.plot(*zip(*val), label="val", marker="o", markersize=3, linewidth=1.5)
        ax.set_xlabel("step")
        ax.set_ylabel("loss (nats/token)")
        ax.set_title(title or "loss")
        ax.grid(True, alpha=0.3)
        if train or val:
            ax.legend()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


class TensorBoardLog:
    """Scalars to RUN_DIR/tensorboard via torch.utils.tensorboard (needs the `tensorboard` package)."""

    def __init__(self, log_dir: str | os.PathLike, *, purge_step: int | None = None):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise LmlabError("--tensorboard needs the tensorboard package: pip install tensorboard "
                             "(or pip install 'lmlab[tensorboard]'), or leave --tensorboard off") from None
        # purge_step drops events logged after the resumed step, as MetricsLog does for metrics.jsonl.
        self._writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)

    def write(self, record: dict[str, Any]) -> None:
        step = record["step"]
        for key, value in record.items():
            if key != "step" and isinstance(value, (int, float)) and value is not None:
                self._writer.add_scalar(key, value, step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def format_train_result(result) -> str:
    """One line summing up a `lmlab.training.TrainResult`: steps, run dir, why it stopped, wall seconds, and the
    last and best val loss (nats per token) with the last one's perplexity."""
    line = f"trained {result.step} steps into {result.run_dir} ({result.stop_reason}, {result.wall_seconds:.0f} s)"
    if result.last_val_loss is not None:
        line += (f"; val loss {result.last_val_loss:.4f} (perplexity {math.exp(min(result.last_val_loss, 50)):.2f}), "
                 f"best {result.best_val_loss:.4f}")
    return line
