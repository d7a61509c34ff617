"""Training configuration: one dataclass, every field commented, nanoGPT's names; and how settings are layered.

Settings come from three places, later ones winning:

    preset (lmlab.models.presets)  <  --config FILE (JSON or YAML)  <  --key value on the command line

`apply_overrides` is the single place where a name is looked up in the model config or the training config,
converted to that field's type and validated; the config file and the command line both go through it, so they
accept exactly the same keys and reject the same mistakes (unknown key → a list of close matches).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from lmlab.errors import LmlabError
from lmlab.training.distributed import STRATEGIES

DTYPES = ("auto", "float32", "bfloat16", "float16")
_DTYPE_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}  # common short names, accepted too


@dataclass
class TrainConfig:
    """Everything about *how* a model is trained (the model's shape lives in the model config).

    Global batch per optimizer step, in tokens: batch_size × grad_accum × world_size × block_size.
    """

    # --- batch ----------------------------------------------------------------------------------------------------
    batch_size: int = 12  # sequences per micro-step *per process* (rank)
    grad_accum: int = 1  # micro-steps per optimizer step, per rank; gradients are summed over them (mean loss)
    # --- optimizer: AdamW, decay only on matrices/embeddings --------------------------------------------------------
    lr: float = 1e-3  # peak learning rate, reached at the end of warmup
    min_lr: float = 1e-4  # floor of the cosine decay (nanoGPT/Chinchilla: ~lr/10)
    warmup_iters: int = 100  # linear warmup from 0 to lr over this many optimizer steps
    max_iters: int = 2000  # total optimizer steps; the run stops here
    lr_decay_iters: int | None = None  # step at which the cosine reaches min_lr (None → max_iters)
    weight_decay: float = 0.1  # AdamW decoupled weight decay, applied to ≥2-D parameters only
    beta1: float = 0.9  # AdamW first-moment decay
    beta2: float = 0.99  # AdamW second-moment decay (0.95 for large models; 0.99 suits small batches)
    grad_clip: float = 1.0  # clip the global gradient norm to this value (0 disables clipping)
    # --- evaluation, logging, checkpoints -----------------------------------------------------------------------------
    eval_interval: int = 250  # evaluate on the val split and checkpoint every this many steps (and at the end)
    eval_iters: int = 20  # batches of val windows per evaluation (the same fixed windows every time; 0: no eval)
    log_interval: int = 10  # write a metrics.jsonl line every this many steps
    save_interval: int = 0  # extra checkpoints every this many steps besides eval steps (0: only at evals)
    keep_best: bool = True  # also keep best.safetensors, the weights with the lowest val loss so far
    # also keep every evaluation's weights as checkpoints/step-NNNNNN.safetensors, for a learning curve
    # (`lmlab eval tasks RUN --checkpoints`); each costs one weights file of disk
    keep_checkpoints: bool = False
    target_loss: float | None = None  # stop early once the val loss is at or below this (None: never)
    tensorboard: bool = False  # also log scalars to RUN_DIR/tensorboard (needs the `tensorboard` package)
    # --- reproducibility and hardware ---------------------------------------------------------------------------------
    seed: int = 1337  # seeds model init, data order and dropout; same seed + same config → same run
    dtype: str = "auto"  # float32 | bfloat16 | float16 (+ GradScaler) | auto (precision.py: bf16 on GPUs and bf16 CPUs)
    compile: bool | None = None  # wrap the model in torch.compile (faster steps after a slow first one); None
                                 # (default): yes on CUDA GPUs, no elsewhere (precision.resolve_compile)
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps (auto: cuda if available, else mps, else cpu)
    threads: int = 0  # torch intra-op CPU threads during training (0: torch's default, one per core). 1 is often
                      # several times faster for tiny models on a machine whose cores are busy with other work
    # --- parallelism (lmlab.training.distributed; used under torchrun) ---------------------------------------------
    strategy: str = "ddp"  # ddp: full replica per rank | fsdp: parameters, gradients and optimizer state sharded
                           # over ranks (FSDP2, ZeRO-3); fsdp runs write sharded checkpoints (RUN_DIR/sharded/)
    activation_checkpointing: bool = False  # recompute each block's activations in backward (less memory, ~1/3
                                            # more compute); either strategy, or one process
    cpu_offload: bool = False  # fsdp on GPUs: keep parameter shards and optimizer state in CPU memory

    def __post_init__(self) -> None:
        self.dtype = _DTYPE_ALIASES.get(self.dtype, self.dtype)
        validate_train_config(self)

    @property
    def decay_iters(self) -> int:
        """The step where the cosine schedule reaches min_lr (lr_decay_iters, defaulting to max_iters)."""
        return self.max_iters if self.lr_decay_iters is None else self.lr_decay_iters

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        """Rebuild from `to_dict` output (e.g. a run dir's config.json); keys that are not fields are ignored so
        that run dirs may carry extra facts (such as `data_dir`) beside the hyper-parameters."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def validate_train_config(cfg: TrainConfig) -> None:
    """Raise LmlabError naming the first field whose value makes no sense."""
    def need(ok: bool, msg: str) -> None:
        if not ok:
            raise LmlabError(f"bad training setting: {msg}")

    need(cfg.batch_size >= 1, f"batch_size must be ≥ 1 (got {cfg.batch_size})")
    need(cfg.grad_accum >= 1, f"grad_accum must be ≥ 1 (got {cfg.grad_accum})")
    need(cfg.max_iters >= 0, f"max_iters must be ≥ 0 (got {cfg.max_iters})")
    need(cfg.warmup_iters >= 0, f"warmup_iters must be ≥ 0 (got {cfg.warmup_iters})")
    need(cfg.lr_decay_iters is None or cfg.lr_decay_iters >= 0, "lr_decay_iters must be ≥ 0")
    need(cfg.lr > 0 and math.isfinite(cfg.lr), f"lr must be a positive number (got {cfg.lr})")
    need(0 <= cfg.min_lr <= cfg.lr, f"min_lr must be between 0 and lr={cfg.lr} (got {cfg.min_lr})")
    need(cfg.weight_decay >= 0, "weight_decay must be ≥ 0")
    need(0 <= cfg.beta1 < 1 and 0 <= cfg.beta2 < 1, "beta1 and beta2 must be in [0, 1)")
    need(cfg.grad_clip >= 0, "grad_clip must be ≥ 0 (0 disables clipping)")
    need(cfg.eval_interval >= 1, f"eval_interval must be ≥ 1 (got {cfg.eval_interval})")
    need(cfg.eval_iters >= 0, "eval_iters must be ≥ 0 (0 disables evaluation)")
    need(cfg.log_interval >= 1, f"log_interval must be ≥ 1 (got {cfg.log_interval})")
    need(cfg.save_interval >= 0, "save_interval must be ≥ 0 (0: checkpoint only at evaluations)")
    need(cfg.threads >= 0, f"threads must be ≥ 0 (0: torch's default; got {cfg.threads})")
    need(cfg.dtype in DTYPES, f"dtype must be one of {', '.join(DTYPES)} (got {cfg.dtype!r})")
    need(cfg.strategy in STRATEGIES, f"strategy must be one of {', '.join(STRATEGIES)} (got {cfg.strategy!r})")
    need(not cfg.cpu_offload or cfg.strategy == "fsdp", "cpu_offload works with strategy fsdp only")
    dev = cfg.device
    need(dev in ("auto", "cpu", "cuda", "mps") or (dev.startswith("cuda:") and dev[5:].isdigit()),
         f"device must be auto, cpu, cuda, cuda:N or mps (got {dev!r})")


# ============================================================================ overrides: --key value, config file ===
def parse_override_args(args: list[str], *, words: list[str] | None = None) -> dict[str, str | bool]:
    """['--lr', '3e-4', '--compile', '--n_layer=2'] → {'lr': '3e-4', 'compile': True, 'n_layer': '2'}.

    A `--key` followed by another `--key` (or nothing) is a bare boolean switch meaning true. Dashes inside keys
    are read as underscores (`--max-iters` = `--max_iters`). Values stay strings; `apply_overrides` converts them.
    A word that is neither a `--key` nor its value is an error, unless a `words` list is given: then it is
    appended there (how `lmlab finetune` finds its optional RUN_DIR among the settings).
    """
    out: dict[str, str | bool] = {}
    i = 0
    while i < len(args):
        tok = args[i]
        if not tok.startswith("--") or len(tok) == 2:
            if words is not None:
                words.append(tok)
                i += 1
                continue
            raise LmlabError(f"unexpected argument {tok!r}: settings are written as --key value (e.g. --lr 3e-4)")
        key, eq, value = tok[2:].partition("=")
        key = key.replace("-", "_")
        if eq:
            out[key] = value
            i += 1
        elif i + 1 < len(args) and not _looks_like_key(args[i + 1]):
            out[key] = args[i + 1]
            i += 2
        else:
            out[key] = True
            i += 1
    return out


def _looks_like_key(tok: str) -> bool:
    # "--lr" is a key; "-1" or "-1e-3" are (negative) values.
    return tok.startswith("--") and len(tok) > 2


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON or YAML config file into a flat {key: value} dict.

    Accepted shapes: flat ({"lr": 3e-4, "n_layer": 2}) or sectioned ({"model": {...}, "training": {...}});
    a top-level "preset" (and "model_type") key is passed through for the caller to resolve.
    """
    path = Path(path)
    if not path.is_file():
        raise LmlabError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except (json.JSONDecodeError, ValueError, ImportError) as e:
        raise LmlabError(f"cannot read config file {path}: {e}") from None
    except Exception as e:  # yaml.YAMLError and friends: a malformed file is the user's to fix
        raise LmlabError(f"cannot read config file {path}: {str(e).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise LmlabError(f"config file {path} must hold a mapping of settings (key: value), not {type(data).__name__}")
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("model", "training", "train") and isinstance(value, dict):
            for k, v in value.items():
                if k in flat:
                    raise LmlabError(f"config file {path}: {k!r} is set twice")
                flat[k] = v
        else:
            if key in flat:
                raise LmlabError(f"config file {path}: {key!r} is set twice")
            flat[key] = value
    return flat


def apply_overrides(model_config: Any, train_config: TrainConfig, overrides: Mapping[str, Any], *,
                    source: str = "command line") -> tuple[Any, TrainConfig]:
    """Return copies of (model_config, train_config) with `overrides` applied by field name.

    Values may be strings (from the command line: converted to the field's type; 'none' → None for optional
    fields; true/false/1/0/yes/no for booleans) or already-typed values (from a JSON/YAML file: checked). A key
    that names a field of both configs sets both. Unknown keys and bad values raise LmlabError naming `source`
    and suggesting the closest known keys.
    """
    model_fields = {f.name: f for f in fields(model_config)}
    train_fields = {f.name: f for f in fields(train_config)}
    model_hints = typing.get_type_hints(type(model_config))
    train_hints = typing.get_type_hints(type(train_config))
    model_changes: dict[str, Any] = {}
    train_changes: dict[str, Any] = {}
    for key, raw in overrides.items():
        if key not in model_fields and key not in train_fields:
            known = sorted(set(model_fields) | set(train_fields))
            close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
            hint = f"did you mean {', '.join('--' + c for c in close)}?" if close else \
                f"known keys: {', '.join(known)}"
            raise LmlabError(f"unknown setting {key!r} ({source}); {hint}")
        if key in model_fields:
            model_changes[key] = _convert(key, raw, model_hints[key], source)
        if key in train_fields:
            train_changes[key] = _convert(key, raw, train_hints[key], source)
    try:
        new_model = dataclasses.replace(model_config, **model_changes) if model_changes else model_config
    except (ValueError, TypeError, AssertionError) as e:
        raise LmlabError(f"bad model setting ({source}): {e}") from None
    new_train = dataclasses.replace(train_config, **train_changes) if train_changes else train_config
    return new_model, new_train


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _convert(key: str, raw: Any, hint: Any, source: str) -> Any:
    """Convert `raw` to the type annotated by `hint` (bool, int, float, str, or an Optional of one)."""
    optional, base = _unwrap_optional(hint)
    bad = f"bad value for {key!r} ({source}): {raw!r} is not "
    if raw is None or (optional and isinstance(raw, str) and raw.lower() in ("none", "null")):
        if optional:
            return None
        raise LmlabError(bad + f"allowed here (need a {base.__name__})")
    if base is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in _TRUE | _FALSE:
            return raw.lower() in _TRUE
        raise LmlabError(bad + "a boolean (true/false)")
    if base is int:
        if isinstance(raw, bool):
            raise LmlabError(bad + "an integer")
        if isinstance(raw, int):
            return raw
        if isinstance(raw, float) and raw.is_integer():
            return int(raw)
        if isinstance(raw, str):
            try:
                return int(raw.replace("_", ""))
            except ValueError:
                try:  # allow '1e3' for integer counts such as max_iters
                    f = float(raw)
                    if f.is_integer():
                        return int(f)
                except ValueError:
                    pass
        raise LmlabError(bad + "an integer")
    if base is float:
        if isinstance(raw, bool):
            raise LmlabError(bad + "a number")
        if isinstance(raw, (int, float)):
            return float(raw)
        if isinstance(raw, str):
            try:
                return float(raw)
            except ValueError:
                pass
        raise LmlabError(bad + "a number")
    if base is str:
        if isinstance(raw, (str, int, float)) and not isinstance(raw, bool):
            return str(raw)
        raise LmlabError(bad + "a string")
    # Any other annotated type (tuples, literals): accept the value as given; the config's own checks judge it.
    return raw


def _unwrap_optional(hint: Any) -> tuple[bool, Any]:
    """`int | None` → (True, int); `float` → (False, float)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        return optional, (args[0] if len(args) == 1 else object)
    return False, hint


def resolve_configs(model_config: Any, train_config: TrainConfig | None = None, *,
                    config_file: str | Path | None = None,
                    overrides: Mapping[str, Any] | list[str] | None = None) -> tuple[Any, TrainConfig]:
    """Layer settings: (model_config, train_config) < config file < overrides; returns validated copies.

    `model_config`/`train_config` are the preset's (the caller resolves preset names; see
    `lmlab.models.presets.get_preset`). `overrides` is a {key: value} dict or a raw ['--key', 'value', ...] list.
    Keys "preset" and "model_type" in a config file are not settings of either config; callers that support them
    read them with `load_config_file` first, and they are ignored here.
    """
    train_config = train_config if train_config is not None else TrainConfig()
    if config_file is not None:
        file_values = {k: v for k, v in load_config_file(config_file).items() if k not in ("preset", "model_type")}
        model_config, train_config = apply_overrides(model_config, train_config, file_values,
                                                     source=f"config file {config_file}")
    if overrides:
        if isinstance(overrides, list):
            overrides = parse_override_args(overrides)
        model_config, train_config = apply_overrides(model_config, train_config, overrides)
    return model_config, train_config
