"""The run dir: everything needed to rebuild a trained model, written atomically and loaded with validation.

    RUN_DIR/
      config.json        {"lmlab_version", "model_type", "model": {...}, "training": {...} | null,
                          "tokenizer_fingerprint"}
      tokenizer.json     the tokenizer (lmlab JSON format)
      model.safetensors  weights (tied weights stored once); metadata holds a SHA-256 of the tensor bytes
      train_state.pt     optimizer / schedule / RNG / data position (written by training; tensors and plain data only)
      best.safetensors   the weights with the lowest val loss so far (training's keep_best)
      checkpoints/step-NNNNNN.safetensors   each evaluation's weights, kept (training's keep_checkpoints): a
                         learning curve is evaluated on them (`kept_checkpoints`, lmlab eval tasks --checkpoints)
      .prev.safetensors  the previous checkpoint's weights, only while a new checkpoint is being committed
      metrics.jsonl, loss.png, tensorboard/   what training logged (lmlab.training.metrics)
      edits.jsonl        the edits that made this run from its source run (lmlab.editing)
      lineage.json       where a continued-pretraining run came from (lmlab.training.continued)
      data/              shards prepared inside the run dir (training from --text, correction at the source)
      sharded/step-N/    instead of the two files above, for runs trained with strategy fsdp: a
                         torch.distributed.checkpoint directory (one `__R_0.distcp` file per rank, `.metadata`)
                         holding the model and optimizer state, plus that step's train_state.pt. Written under a
                         temporary name and renamed whole, so the newest `step-N` is always complete; loading
                         consolidates it into one model whatever the number of ranks that wrote it

Every file is written to a temp file and renamed, so a crash never leaves a half-written file under its real name,
and a checkpoint's two files (weights + train_state.pt) are committed so that a crash between them is recovered
(`save_checkpoint`, `load_checkpoint_weights`). This module owns every file name of a run dir, the test "is there a
run here" (`is_run_dir`) and where the run's training data is recorded (`run_data_dir`).
Loading checks, and says exactly what is wrong: the directory is a run dir, config keys, the tokenizer fingerprint,
every tensor name and shape against the config, and the weights' checksum (a corrupted or truncated file is
refused, never silently used).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.nn as nn
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from lmlab import __version__
from lmlab.devices import resolve_device
from lmlab.errors import LmlabError
from lmlab.models.registry import build_config, get_model_type
from lmlab.tokenization import Tokenizer
from lmlab.utils import atomic_output, atomic_write_json, read_json_object, sha256_file

CONFIG_NAME = "config.json"
TOKENIZER_NAME = "tokenizer.json"
WEIGHTS_NAME = "model.safetensors"
BEST_WEIGHTS_NAME = "best.safetensors"
PREV_WEIGHTS_NAME = ".prev.safetensors"  # the previous checkpoint's weights while a new one is being committed
TRAIN_STATE_NAME = "train_state.pt"
METRICS_NAME = "metrics.jsonl"
PLOT_NAME = "loss.png"
TENSORBOARD_DIR = "tensorboard"
EDITS_NAME = "edits.jsonl"
LINEAGE_NAME = "lineage.json"
DATA_DIR_NAME = "data"  # shards prepared inside the run dir
LOCK_NAME = ".lock"
SHARDED_DIR = "sharded"
SHARDED_STEP_PREFIX = "step-"
KEPT_DIR = "checkpoints"  # each evaluation's weights, when training keeps them for a learning curve
CONFIG_KEYS = {"lmlab_version", "model_type", "model", "training", "tokenizer_fingerprint"}
_CHECKSUM_KEY = "lmlab_sha256"


@dataclass
class Run:
    """A loaded run dir. `model` is in eval mode on the requested device."""

    model: nn.Module
    tokenizer: Tokenizer
    model_config: Any            # the typed config (e.g. GPTConfig)
    training_config: dict | None  # as saved by training (plain dict), None for imported models
    run_dir: Path
    model_type: str


def is_run_dir(path: str | os.PathLike) -> bool:
    """True when there is a run in `path`: a run's config.json, or a checkpoint training left (`has_checkpoint`).

    The one test of "is there a run here" for every reader and writer. A config.json that parses as another
    program's (a JSON object without lmlab's `tokenizer_fingerprint`, e.g. a Hugging Face export's) is not a run's;
    a damaged one is (it is reported when read, and never overwritten by a new run)."""
    return _is_run_config(Path(path) / CONFIG_NAME) or has_checkpoint(path)


def _is_run_config(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    return not isinstance(cfg, dict) or "tokenizer_fingerprint" in cfg or "lmlab_version" in cfg


# Where training records the shard dir it read, in the "training" section of config.json.
_DATA_DIR_KEY = "data_dir"


def run_data_dir(run: Run | str | os.PathLike | dict | None, *, required: str | None = None) -> Path | None:
    """The token-shard dir the run was trained on, as its training config records it; None when it records none
    (an imported model, a hand-made run). `run`: a loaded Run, a run dir, or a training config dict (a Run's
    `training_config`, config.json's "training"). required: the option the user should pass instead (e.g.
    "--data DATA_DIR"); when given, a run that records no data dir is an LmlabError saying so. Whether the dir
    still exists is the caller's question (a copied run dir may record one that is gone)."""
    where = "the run"
    if isinstance(run, Run):
        where, training = str(run.run_dir), run.training_config
    elif isinstance(run, (str, os.PathLike)):
        where, training = str(run), read_run_config(run).get("training")
    else:
        training = run
    recorded = (training or {}).get(_DATA_DIR_KEY)
    if not recorded:
        if required is not None:
            raise LmlabError(f"{where} records no training data dir; pass {required}")
        return None
    return Path(recorded)


def with_data_dir(training_config: dict, data_dir: str | os.PathLike) -> dict:
    """`training_config` recording `data_dir` (absolute) as the data the run is trained on (see `run_data_dir`)."""
    return {**training_config, _DATA_DIR_KEY: str(Path(data_dir).resolve())}


def _as_dict(cfg: Any) -> dict | None:
    if cfg is None or isinstance(cfg, dict):
        return cfg
    if hasattr(cfg, "to_dict"):
        return cfg.to_dict()
    if dataclasses.is_dataclass(cfg):
        return dataclasses.asdict(cfg)
    raise TypeError(f"config must be a dict or dataclass, got {type(cfg).__name__}")


def _unique_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with each shared tensor once (safetensors refuses aliases): for tied embeddings the first
    name in module order (`wte.weight`) is kept and `lm_head.weight` is dropped; loading re-ties them."""
    out: dict[str, torch.Tensor] = {}
    seen: set[tuple[int, int]] = set()
    for name, t in model.state_dict().items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset())
        if t.numel() and key in seen:
            continue
        seen.add(key)
        out[name] = t
    return out


def _tensor_checksum(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and raw bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_run(run_dir: str | os.PathLike, model: nn.Module | None, tokenizer: Tokenizer, *, model_type: str = "gpt",
             model_config: Any, training_config: Any = None, weights_name: str = WEIGHTS_NAME,
             tensors: dict[str, torch.Tensor] | None = None) -> Path:
    """Write (or overwrite) a run dir: config.json, tokenizer.json and the weights, each atomically.

    model_config: the model's typed config or its dict; training_config: a dict/dataclass or None.
    weights_name lets training keep e.g. "best.safetensors" beside the latest weights. tensors: the weights to
    write instead of `model`'s state (e.g. gathered from FSDP shards; tied aliases already left out). With
    model=None and no tensors only config.json and tokenizer.json are written (a sharded checkpoint holds the
    weights). Returns the run dir path.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    get_model_type(model_type)  # unknown type → clear error before anything is written
    if tensors is None and model is not None:
        tensors = _unique_state(model)
    if tensors is not None:
        tensors = {n: t.detach().contiguous().cpu() for n, t in tensors.items()}
        with atomic_output(run_dir / weights_name) as tmp:
            save_file(tensors, str(tmp), metadata={_CHECKSUM_KEY: _tensor_checksum(tensors), "format": "pt"})
    tokenizer.save(run_dir / TOKENIZER_NAME)
    atomic_write_json(run_dir / CONFIG_NAME, {
        "lmlab_version": __version__,
        "model_type": model_type,
        "model": _as_dict(model_config),
        "training": _as_dict(training_config),
        "tokenizer_fingerprint": tokenizer.fingerprint,
    })
    return run_dir


def read_run_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """config.json of a run dir, checked for the required keys (no model is built)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise LmlabError(f"run dir {run_dir} does not exist; train one with `lmlab train` "
                         "or import one with `lmlab import hf-gpt2`")
    path = run_dir / CONFIG_NAME
    if not path.is_file():
        raise LmlabError(f"{run_dir} is not a run dir (no config.json); train one with `lmlab train` "
                         "or import with `lmlab import hf-gpt2`")
    cfg = read_json_object(path, damaged="; the run dir is damaged")
    unknown = sorted(set(cfg) - CONFIG_KEYS)
    missing = sorted({"model_type", "model", "tokenizer_fingerprint"} - set(cfg))
    if unknown or missing:
        raise LmlabError(f"{path}: " + "; ".join(
            ([f"unknown key(s) {unknown}"] if unknown else []) + ([f"missing key(s) {missing}"] if missing else []))
            + f" (expected {sorted(CONFIG_KEYS)})")
    if not isinstance(cfg["model"], dict):
        raise LmlabError(f"{path}: 'model' must be an object of model config fields")
    return cfg


def load_weights(model: nn.Module, path: str | os.PathLike, *, what: str = "the config") -> None:
    """Load a safetensors file into `model` after checking checksum, tensor names and shapes.

    Raises LmlabError naming each missing, unexpected or mis-shaped tensor (expected vs found).
    """
    path = Path(path)
    if not path.is_file():
        raise LmlabError(f"weights file {path} is missing; the run dir is incomplete (re-save or re-train)")
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise LmlabError(f"{path} is corrupted or truncated ({e}); restore it or re-train") from None
    expected_sum = metadata.get(_CHECKSUM_KEY)
    if expected_sum is not None and _tensor_checksum(tensors) != expected_sum:
        raise LmlabError(f"{path} is corrupted: its tensor bytes do not match the checksum stored when it was "
                         "saved; restore it or re-train")
    load_state(model, tensors, source=str(path), what=what)


def load_state(model: nn.Module, tensors: dict[str, torch.Tensor], *, source: str, what: str = "the config") -> None:
    """Copy `tensors` into `model` after checking that names and shapes are exactly the model's (tied aliases such
    as lm_head.weight may be absent). Raises LmlabError naming each missing, unexpected or mis-shaped tensor."""
    expected = {name: tuple(t.shape) for name, t in _unique_state(model).items()}
    _check_shapes(expected, {n: tuple(t.shape) for n, t in tensors.items()}, source=source, what=what)
    # Tied aliases (e.g. lm_head.weight) are absent from the file by design; they share storage with a loaded one.
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    assert not unexpected and all(n not in expected for n in missing), (missing, unexpected)


def _check_shapes(expected: dict[str, tuple], found: dict[str, tuple], *, source: str, what: str) -> None:
    """LmlabError naming each missing, unexpected or mis-shaped tensor of `found` against `expected`."""
    problems = [f"tensor {n}: expected shape {list(expected[n])} from {what}, found {list(s)}"
                for n, s in found.items() if n in expected and s != expected[n]]
    problems += [f"missing tensor {n} (expected shape {list(s)})" for n, s in expected.items() if n not in found]
    problems += [f"unexpected tensor {n} (shape {list(s)})" for n, s in found.items() if n not in expected]
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise LmlabError(f"{source} does not match {what}: " + "; ".join(problems[:5]) + more)


def check_before_loading(model_cls: type[nn.Module], model_config: Any, path: Path, *, what: str) -> None:
    """Refuse, before a byte of weights is allocated, a run whose model could not be loaded: the weights file's
    header (names and shapes, read without the data) must be exactly the model that `model_config` describes, and
    that model must fit in this machine's memory. The model is built on the meta device (shapes only), so a
    damaged or hostile config.json or a header declaring huge tensors gives an error, not an exhausted machine."""
    if not path.is_file():
        raise LmlabError(f"weights file {path} is missing; the run dir is incomplete (re-save or re-train)")
    _check_declared_shapes(model_cls, model_config, read_weights_header(path), source=str(path), what=what)


def _check_declared_shapes(model_cls: type[nn.Module], model_config: Any, declared: dict[str, tuple], *,
                           source: str, what: str) -> None:
    """`check_before_loading` for any source of {tensor name: shape}; tied aliases (a sharded checkpoint lists
    them, a safetensors file does not) are ignored."""
    with torch.device("meta"):
        skeleton = model_cls(model_config)
    # On the meta device tensors have no storage to compare, so tied aliases are found by parameter identity:
    # named_parameters() yields a shared parameter once, under its first name (as `_unique_state` keeps it).
    owned = {n for n, _ in skeleton.named_parameters()} | {n for n, _ in skeleton.named_buffers()}
    everything = skeleton.state_dict()
    expected = {n: tuple(t.shape) for n, t in everything.items() if n in owned}
    declared = {n: s for n, s in declared.items() if n in owned or n not in everything}
    _check_shapes(expected, declared, source=source, what=what)
    need = sum(t.numel() * t.element_size() for n, t in everything.items() if n in owned)
    have = _physical_memory()
    if have is not None and need > have:
        raise LmlabError(f"{source}: the model needs {need / 2**30:.1f} GiB for its weights but this machine has "
                         f"{have / 2**30:.1f} GiB of memory")


# safetensors' own limit on the JSON header; a larger length field is damage, not a model.
_MAX_HEADER_BYTES = 100_000_000


def read_weights_header(path: Path) -> dict[str, tuple[int, ...]]:
    """{tensor name: shape} from a safetensors file's JSON header, reading only the header (not mapping the file:
    a header may declare more bytes than the machine can map). LmlabError when the header is malformed."""
    def damaged(why: str) -> LmlabError:
        return LmlabError(f"{path} is corrupted or truncated ({why}); restore it or re-train")

    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if not 2 <= n <= min(_MAX_HEADER_BYTES, path.stat().st_size - 8):
                raise damaged(f"header length {n} does not fit the file")
            header = json.loads(f.read(n))
        return {name: tuple(int(d) for d in entry["shape"])
                for name, entry in header.items() if name != "__metadata__"}
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise damaged(f"unreadable header: {e}") from None


def _physical_memory() -> int | None:
    """Bytes of RAM, or None where the OS does not say (then no memory check is made)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _padded(vocab_size: int, multiple: int = 64) -> int:
    return -(-vocab_size // multiple) * multiple


def load_run(run_dir: str | os.PathLike, *, device: str | torch.device = "cpu",
             weights_name: str = WEIGHTS_NAME) -> Run:
    """Rebuild the model and tokenizer of a run dir, validating everything (see module docstring). `device`: a
    torch.device or a name (auto, cpu, cuda, cuda:N, mps), checked before anything is loaded."""
    device = resolve_device(device) if isinstance(device, str) else device
    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)
    tokenizer = Tokenizer.load(run_dir / TOKENIZER_NAME)
    if tokenizer.fingerprint != cfg["tokenizer_fingerprint"]:
        raise LmlabError(f"{run_dir / TOKENIZER_NAME} (fingerprint {tokenizer.fingerprint}) is not the tokenizer "
                         f"this model was trained with (config.json records {cfg['tokenizer_fingerprint']}); "
                         "put the original tokenizer.json back")
    model_type = cfg["model_type"]
    model_config = build_config(model_type, cfg["model"])
    vocab = getattr(model_config, "vocab_size", None)
    if vocab is not None and tokenizer.vocab_size > vocab:
        raise LmlabError(f"{run_dir}: tokenizer has {tokenizer.vocab_size} ids but the model's vocab_size is {vocab}")
    if vocab is not None and vocab > _padded(tokenizer.vocab_size):
        # Training sizes the model to its tokenizer (at most padded to a multiple of 64): many more rows than the
        # tokenizer has ids means tokenizer.json is not the one the model learned, whatever config.json records.
        warnings.warn(f"{run_dir}: the model has {vocab} token ids but its tokenizer only {tokenizer.vocab_size}; "
                      "if tokenizer.json was replaced, the model's outputs will be garbage", stacklevel=2)
    _, model_cls = get_model_type(model_type)
    what = f"{CONFIG_NAME} ({model_type})"
    sharded = latest_sharded_checkpoint(run_dir) if weights_name == WEIGHTS_NAME else None
    if sharded is not None and not (run_dir / weights_name).is_file():
        _check_declared_shapes(model_cls, model_config, read_sharded_shapes(sharded), source=str(sharded),
                               what=what)
        model = model_cls(model_config)
        load_sharded_weights(model, sharded)
    else:
        check_before_loading(model_cls, model_config, run_dir / weights_name, what=what)
        model = model_cls(model_config)
        load_weights(model, run_dir / weights_name, what=what)
    model.to(device).eval()
    return Run(model=model, tokenizer=tokenizer, model_config=model_config, training_config=cfg.get("training"),
               run_dir=run_dir, model_type=model_type)


def save_train_state(run_dir: str | os.PathLike, state: dict) -> None:
    """Write train_state.pt atomically. `state` may hold tensors, numbers, strings, lists and dicts only
    (it is read back with torch.load(weights_only=True), which refuses arbitrary objects)."""
    with atomic_output(Path(run_dir) / TRAIN_STATE_NAME) as tmp:
        torch.save(state, tmp)


def load_train_state(run_dir: str | os.PathLike) -> dict | None:
    """train_state.pt of a run dir (for a sharded run: that of its newest complete checkpoint), or None when there
    is none (e.g. an imported model)."""
    path = Path(run_dir) / TRAIN_STATE_NAME
    sharded = latest_sharded_checkpoint(run_dir)
    if not path.is_file() and sharded is not None:
        path = sharded / TRAIN_STATE_NAME
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, foreign pickle: never run it, say so
        raise LmlabError(f"{path} is damaged or not a train state ({type(e).__name__}: {e}); "
                         "delete it to start training afresh") from None


# ============================================================================ checkpoints: weights + state ===
def save_checkpoint(run_dir: str | os.PathLike, train_state: dict, *, model: nn.Module, tokenizer: Tokenizer,
                    model_type: str, model_config: Any, training_config: Any) -> None:
    """Commit a training checkpoint: the run dir (`save_run`: weights, tokenizer, config) and train_state.pt, which
    records the SHA-256 of the weights file it belongs to.

    The two files cannot be replaced in one atomic step, so the previous weights are kept (hard link, no copy) as
    .prev.safetensors until the new train_state.pt is on disk: a crash at any moment leaves a train_state.pt and a
    weights file with its checksum, which `load_checkpoint_weights` finds. `train_state` holds plain data and
    tensors only (see `save_train_state`)."""
    run_dir = Path(run_dir)
    weights, prev = run_dir / WEIGHTS_NAME, run_dir / PREV_WEIGHTS_NAME
    if weights.exists():
        _link_or_copy(weights, prev)  # the state on disk stays consistent until train_state.pt is replaced
    save_run(run_dir, model, tokenizer, model_type=model_type, model_config=model_config,
             training_config=training_config)
    save_train_state(run_dir, {**train_state, "weights_sha256": sha256_file(weights)})
    prev.unlink(missing_ok=True)


def load_checkpoint_weights(run_dir: str | os.PathLike, model: nn.Module, train_state: dict) -> Path:
    """Load into `model` the weights file that `train_state` (from `load_train_state`) was saved with — the
    latest weights, or the previous ones when a crash interrupted `save_checkpoint` — and return its path.
    LmlabError when neither file matches (the run dir was changed by hand)."""
    run_dir = Path(run_dir)
    for name in (WEIGHTS_NAME, PREV_WEIGHTS_NAME):
        path = run_dir / name
        if path.is_file() and sha256_file(path) == train_state["weights_sha256"]:
            load_weights(model, path, what=f"the model config of {run_dir}")
            return path
    raise LmlabError(f"{run_dir / WEIGHTS_NAME} is not the file {TRAIN_STATE_NAME} was saved with (checksums "
                     "differ); the run dir was changed by hand — start a new run instead of --resume")


def clear_checkpoints(run_dir: str | os.PathLike) -> None:
    """Remove what an earlier run's training left in `run_dir` (weights, best weights, train state, sharded
    checkpoints, TensorBoard logs), so that a fresh run there cannot be mixed with it by a later --resume."""
    run_dir = Path(run_dir)
    for name in (WEIGHTS_NAME, BEST_WEIGHTS_NAME, PREV_WEIGHTS_NAME, TRAIN_STATE_NAME):
        (run_dir / name).unlink(missing_ok=True)
    for name in (SHARDED_DIR, TENSORBOARD_DIR, KEPT_DIR):
        shutil.rmtree(run_dir / name, ignore_errors=True)


def kept_checkpoint_name(step: int) -> str:
    """The weights file name, relative to the run dir, of the checkpoint kept at optimizer step `step` (a
    `weights_name` for save_run / load_run)."""
    return f"{KEPT_DIR}/step-{step:06d}.safetensors"


def kept_checkpoints(run_dir: str | os.PathLike) -> list[tuple[int, str]]:
    """The kept checkpoints of a run dir (training's keep_checkpoints) as (step, weights_name) pairs, by step;
    [] when training kept none."""
    kept = Path(run_dir) / KEPT_DIR
    if not kept.is_dir():
        return []
    found = []
    for path in kept.glob("step-*.safetensors"):
        digits = path.name[len("step-"):-len(".safetensors")]
        if digits.isdigit():
            found.append((int(digits), f"{KEPT_DIR}/{path.name}"))
    return sorted(found)


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)  # no copy: the old inode stays alive under the second name
    except OSError:
        shutil.copy2(src, dst)


# ==================================================================================== sharded checkpoints ===
def sharded_checkpoint_dir(run_dir: str | os.PathLike, step: int) -> Path:
    """Where the sharded checkpoint of optimizer step `step` lives: RUN_DIR/sharded/step-00000100."""
    return Path(run_dir) / SHARDED_DIR / f"{SHARDED_STEP_PREFIX}{step:08d}"


def latest_sharded_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete sharded checkpoint of a run dir, or None. Complete by construction: a checkpoint is
    written under a hidden temporary name and renamed to `step-N` only once every rank's file, the metadata and
    train_state.pt are on disk."""
    root = Path(run_dir) / SHARDED_DIR
    if not root.is_dir():
        return None
    steps = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(SHARDED_STEP_PREFIX)
                   and p.name[len(SHARDED_STEP_PREFIX):].isdigit())
    return steps[-1] if steps else None


def read_sharded_shapes(ckpt_dir: Path, section: str = "model") -> dict[str, tuple[int, ...]]:
    """{tensor name: global shape} of one section ("model") of a sharded checkpoint, from its metadata only."""
    from torch.distributed.checkpoint import FileSystemReader
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    try:
        metadata = FileSystemReader(str(ckpt_dir)).read_metadata()
    except Exception as e:  # a missing or damaged .metadata: the reader raises various kinds
        raise LmlabError(f"{ckpt_dir} is not a readable sharded checkpoint ({type(e).__name__}: {e}); "
                         "delete it to fall back to the previous one") from None
    prefix = section + "."
    return {key[len(prefix):]: tuple(meta.size) for key, meta in metadata.state_dict_metadata.items()
            if key.startswith(prefix) and isinstance(meta, TensorStorageMetadata)}


def load_sharded_weights(model: nn.Module, ckpt_dir: Path) -> None:
    """Consolidate the "model" section of a sharded checkpoint into the plain `model`, in this one process
    (whatever the number of ranks that wrote it: each tensor is read from the pieces that hold it)."""
    import torch.distributed.checkpoint as dcp

    state = {"model": model.state_dict()}  # dcp.load fills these tensors in place (tied aliases share storage)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*load in a single process.*")
        dcp.load(state, checkpoint_id=str(ckpt_dir), no_dist=True)
    model.load_state_dict(state["model"])


# ============================================================================================== one writer ===
# What a run dir may hold before its first checkpoint (a killed start): training into it again is no surprise.
_EARLY_RUN_FILES = {LOCK_NAME, DATA_DIR_NAME, METRICS_NAME, PLOT_NAME, SHARDED_DIR, LINEAGE_NAME}


def has_checkpoint(run_dir: str | os.PathLike) -> bool:
    """True when training left a checkpoint in `run_dir` that `--resume` can continue (train_state.pt, or a
    complete sharded checkpoint)."""
    return (Path(run_dir) / TRAIN_STATE_NAME).is_file() or latest_sharded_checkpoint(run_dir) is not None


def check_new_run_dir(out_dir: Path, overwrite: bool) -> None:
    """LmlabError unless `out_dir` can receive a new run: missing, empty, a run dir (only with `overwrite`), or
    what a killed start of a run left. A directory of other files is never trained into."""
    if out_dir.exists() and not out_dir.is_dir():
        raise LmlabError(f"--out {out_dir} is a file, not a directory; choose another --out")
    if is_run_dir(out_dir) or (out_dir / WEIGHTS_NAME).exists():
        if not overwrite:
            raise LmlabError(f"{out_dir} already holds a trained run; continue it with --resume, start over with "
                             "--overwrite, or choose another --out")
        return
    if out_dir.is_dir():
        foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in _EARLY_RUN_FILES
                         and not p.name.endswith(".tmp"))
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise LmlabError(f"--out {out_dir} is not empty and is not a run dir (it holds {shown}); choose a new "
                             "or empty directory")


@contextlib.contextmanager
def lock_run_dir(run_dir: str | os.PathLike, what: str) -> Iterator[Path]:
    """Hold an exclusive lock on `run_dir` (created if missing) while a writer — training, resuming, editing into
    it, fine-tuning — works in it; `what` names the writer in the error another process gets.

    The lock is an OS file lock (flock) on RUN_DIR/.lock, which the kernel releases when the holder exits however
    it dies, so a lock left by a killed process never blocks. A second writer gets an LmlabError naming the
    holder's PID instead of silently mixing two runs' files. Once the lock is held, temp files that a killed
    writer left (`.NAME.*.tmp` from the atomic writes) are removed: no live process can still own them. A
    directory created here is removed again if the block fails while it is still empty.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise LmlabError(f"{run_dir} is a file, not a directory; choose another --out")
    created = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise LmlabError(f"cannot write in {run_dir}: {e.strerror}; choose a directory you can write to") from None
    try:
        if not _try_flock(fd):
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            raise LmlabError(f"{run_dir} is in use by {holder}; wait for it to finish (or stop it), or choose "
                             "another --out")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"PID {os.getpid()} ({what})\n".encode(), 0)
        for tmp in run_dir.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
        try:
            yield run_dir
        except BaseException:
            if created and {p.name for p in run_dir.iterdir()} <= {LOCK_NAME}:
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _try_flock(fd: int) -> bool:
    """Take an exclusive, non-blocking lock on `fd`; False when another process holds it. On platforms without
    flock (Windows) every call succeeds: there the run dir is not protected."""
    if sys.platform == "win32":
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
