"""The training loop and everything around it: config, optimizer + schedule, precision, MFU, metrics, DDP.

See docs/training.md. Everything a user calls is importable from here.
"""

from lmlab.checkpoint import BEST_WEIGHTS_NAME
from lmlab.training.config import (TrainConfig, apply_overrides, load_config_file, parse_override_args,
                                   resolve_configs)
from lmlab.training.distributed import (DistContext, setup_distributed, teardown_distributed, unwrap_model,
                                        wrap_model)
from lmlab.training.loop import TrainingDiverged, TrainResult, train
from lmlab.training.metrics import MetricsLog, format_train_result, plot_losses, read_metrics
from lmlab.training.val_loss import evaluate
from lmlab.training.mfu import measure_peak_flops, mfu, nominal_peak_flops
from lmlab.training.optim import lr_at, make_optimizer
from lmlab.training.precision import Precision, resolve_precision
from lmlab.training.run import train_run

__all__ = [
    "TrainConfig", "apply_overrides", "load_config_file", "parse_override_args", "resolve_configs",
    "DistContext", "setup_distributed", "teardown_distributed", "wrap_model", "unwrap_model",
    "train_run", "train", "evaluate", "TrainResult", "TrainingDiverged", "BEST_WEIGHTS_NAME",
    "MetricsLog", "format_train_result", "plot_losses", "read_metrics",
    "measure_peak_flops", "mfu", "nominal_peak_flops",
    "lr_at", "make_optimizer",
    "Precision", "resolve_precision",
]
