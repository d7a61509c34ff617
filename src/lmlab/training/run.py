"""`train_run`: everything `lmlab train` does, as one Python function (the CLI verb is a thin wrapper over it).

It turns user-level choices (a preset, a config file, `--key value` settings, shards or raw text, resume) into a
model, a tokenizer and the two configs, then calls `lmlab.training.loop.train`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from lmlab.checkpoint import DATA_DIR_NAME, TOKENIZER_NAME, TRAIN_STATE_NAME, check_new_run_dir, has_checkpoint, \
    lock_run_dir, read_run_config, run_data_dir
from lmlab.data import load_tokenizer_of, prepare
from lmlab.errors import LmlabError
from lmlab.models.presets import get_preset
from lmlab.models.registry import build_config, build_model, default_preset, get_model_type, preset_model_type, \
    type_preset
from lmlab.tokenization import Tokenizer
from lmlab.training.config import TrainConfig, load_config_file, parse_override_args, resolve_configs
from lmlab.training.distributed import launch_rank
from lmlab.training.loop import TrainResult, train

DEFAULT_PRESET = "tiny"  # the GPT's; other model types have their own (lmlab.models.registry.default_preset)
DEFAULT_TOKENIZER = "bpe"  # what --text trains unless the model type asks for another (`default_tokenizer`)


def train_run(out_dir: str | os.PathLike, *, data_dir: str | os.PathLike | None = None,
              text: Sequence[str | os.PathLike] | None = None,
              val_text: Sequence[str | os.PathLike] | None = None, tokenizer: Tokenizer | str | None = None,
              preset: str | None = None, model_type: str | None = None, config_file: str | os.PathLike | None = None,
              overrides: dict[str, Any] | list[str] | None = None, resume: bool = False, overwrite: bool = False,
              progress: bool = True, on_eval: Callable | None = None, init: str | os.PathLike | None = None,
              replay: float = 0.0, replay_data: str | os.PathLike | None = None,
              base_settings: Mapping[str, Any] | None = None) -> TrainResult:
    """Train a model into the run dir `out_dir` (see docs/training.md).

    Data: `data_dir` (token shards from `lmlab.data.prepare`) or `text` (files/dirs, prepared into OUT/data with
    `tokenizer`: a Tokenizer, a tokenizer JSON path, or a kind "char" | "word" | "bpe"; default: the model type's
    `default_tokenizer`, "word" for the word-vector models cooc/ppmi/word2vec, else "bpe"; `val_text`: the user's own
    validation files, else 10% of the documents — or of the text, for one file — is held out).
    Settings: the model preset (default: "tiny" for the GPT, the type's default preset otherwise) and TrainConfig's
    defaults < base_settings (model and training settings of a named recipe: `lmlab.recipes` holds the table that
    says how each preset is trained) < config_file (JSON/YAML) < overrides ({key: value} or ['--key', 'value']).
    The model's vocab_size defaults to the tokenizer's. resume=True continues the run in `out_dir` (its saved
    settings, with training settings from config_file/overrides on top, e.g. a larger max_iters); without it an
    existing run in `out_dir` is an error unless overwrite=True. The run dir is locked while this runs: a second
    writer on the same `out_dir` gets an error naming this process.

    Continued pretraining: `init` (a run dir, also an imported Hugging Face GPT-2) gives the starting weights, the
    tokenizer and the shape; its saved training settings are the base for config_file/overrides; the new
    documents come as `text` (or `data_dir`); `replay` (0 ≤ r < 1) mixes that share of the base run's original
    train documents (`replay_data`, default the data dir the base recorded) into the train split; OUT/lineage.json
    records where the run came from (lmlab.training.continued).
    """
    out_dir = Path(out_dir)
    if init is not None and resume:
        raise LmlabError("--init starts a new run from another one; --resume continues a run in place — not both")
    if init is not None and Path(init).resolve() == out_dir.resolve():
        raise LmlabError(f"--out {out_dir} is the --init run itself; continued pretraining writes a new run dir "
                         "(choose another --out)")
    if not resume:  # before locking too: the lock file is never written into a directory of someone else's files
        check_new_run_dir(out_dir, overwrite)
    # Under torchrun only rank 0 writes the run dir, so only it takes the lock (the other ranks would be refused).
    lock = lock_run_dir(out_dir, "lmlab train") if launch_rank() == 0 else contextlib.nullcontext()
    with lock:
        if not resume:  # checked under the lock: a run that finished meanwhile is seen
            check_new_run_dir(out_dir, overwrite)
        return _train_run(out_dir, data_dir=data_dir, text=text, val_text=val_text, tokenizer=tokenizer,
                          preset=preset, model_type=model_type, config_file=config_file, overrides=overrides,
                          resume=resume, overwrite=overwrite, progress=progress, on_eval=on_eval, init=init,
                          replay=replay, replay_data=replay_data, base_settings=base_settings)


def _train_run(out_dir: Path, *, data_dir, text, val_text, tokenizer, preset, model_type, config_file, overrides,
               resume: bool, overwrite: bool, progress: bool, on_eval, init, replay: float,
               replay_data, base_settings) -> TrainResult:
    if isinstance(overrides, list):
        overrides = parse_override_args(overrides)
    overrides = dict(overrides or {})
    if (init is not None or resume) and base_settings:
        raise LmlabError("base_settings start a new run; a resumed or continued run keeps its own settings")
    if init is not None:
        return _continue(out_dir, Path(init), data_dir=data_dir, text=text, val_text=val_text, tokenizer=tokenizer,
                         preset=preset, model_type=model_type, config_file=config_file, overrides=overrides,
                         replay=replay, replay_data=replay_data, progress=progress, on_eval=on_eval)
    if replay or replay_data is not None:
        raise LmlabError("--replay mixes in the original data of the run given with --init; add --init RUN_DIR")
    if resume:
        if text is not None:
            raise LmlabError("--resume continues on the run's own data; leave out --text (or pass --data DIR)")
        return _resume(out_dir, data_dir=data_dir, config_file=config_file, overrides=overrides,
                       progress=progress, on_eval=on_eval)

    return _new_run(out_dir, data_dir=data_dir, text=text, val_text=val_text, tokenizer=tokenizer, preset=preset,
                    model_type=model_type, config_file=config_file, overrides=overrides, progress=progress,
                    on_eval=on_eval, base_settings=base_settings)


def _new_run(out_dir: Path, *, data_dir, text, val_text, tokenizer, preset, model_type, config_file,
             overrides: dict[str, Any], progress: bool, on_eval, base_settings) -> TrainResult:
    """A model trained from scratch: its type and preset, data and tokenizer, then the layered settings."""
    file_values = load_config_file(config_file) if config_file is not None else {}
    preset = preset or file_values.get("preset")
    # A preset registered by another model type (e.g. lstm-tiny, ngram3) implies that type.
    model_type = model_type or file_values.get("model_type") or preset_model_type(preset) or "gpt"
    get_model_type(model_type)  # unknown type → error now, before any data work
    type_settings = type_preset(model_type, preset) if model_type != "gpt" else {}  # bad preset name → error now
    if preset is None:
        preset = DEFAULT_PRESET if model_type == "gpt" else default_preset(model_type)
    # Special tokens the model type relies on (e.g. BERT's <cls> <sep> <mask>): a tokenizer trained here gets them,
    # a given one must have them.
    needed_specials = tuple(getattr(get_model_type(model_type)[1], "special_tokens", ()))
    vocab = overrides.get("vocab_size", file_values.get("vocab_size"))
    data_dir, tok = _data_and_tokenizer(out_dir, data_dir=data_dir, text=text, val_text=val_text,
                                        tokenizer=tokenizer, model_type=model_type, vocab=vocab,
                                        needed_specials=needed_specials, progress=progress)

    # --- settings: preset < base settings (a recipe's) < config file < overrides --------------------------------
    if model_type == "gpt":
        model_config = get_preset(preset, vocab_size=tok.vocab_size)
    else:
        model_config = build_config(model_type, {**type_settings, "vocab_size": tok.vocab_size,
                                                 **_special_token_ids(model_type, tok, needed_specials)})
    model_config, train_config = resolve_configs(model_config, TrainConfig(), overrides=dict(base_settings or {}))
    model_config, train_config = resolve_configs(model_config, train_config, config_file=config_file,
                                                 overrides=overrides)
    torch.manual_seed(train_config.seed)  # model initialisation is part of the run's seeded randomness
    model = build_model(model_type, model_config.to_dict())
    return train(model, model_config, tok, data_dir, out_dir, train_config, model_type=model_type,
                 progress=progress, on_eval=on_eval)


def _data_and_tokenizer(out_dir: Path, *, data_dir, text, val_text, tokenizer, model_type: str, vocab,
                        needed_specials: tuple[str, ...], progress: bool) -> tuple[Path, Tokenizer]:
    """The shard dir to train on and its tokenizer: `data_dir` as given, or `text` prepared into OUT/data with a
    tokenizer trained here (the model type's default kind, `vocab` ids) or given; the model's special tokens
    checked."""
    if data_dir is not None and text is not None:
        raise LmlabError("give either --data DATA_DIR (prepared shards) or --text FILE... (raw text), not both")
    if data_dir is None and text is None:
        raise LmlabError("no training data: give --data DATA_DIR (from `lmlab data prepare`) or --text FILE...")
    if val_text is not None and text is None:
        raise LmlabError("--val goes with --text (validation text prepared beside it); shards in --data already "
                         "hold their val split")
    if text is not None:
        kind_or_tok = tokenizer if tokenizer is not None else \
            getattr(get_model_type(model_type)[1], "default_tokenizer", DEFAULT_TOKENIZER)
        trains_vocab = isinstance(kind_or_tok, str) and kind_or_tok in ("bpe", "word")
        data_dir = out_dir / DATA_DIR_NAME
        prepare(list(text), kind_or_tok, data_dir, vocab_size=int(vocab) if (vocab and trains_vocab) else None,
                special_tokens=needed_specials if isinstance(kind_or_tok, str) else (), progress=progress,
                val_inputs=list(val_text) if val_text is not None else None)
        tok = load_tokenizer_of(data_dir)
    else:
        data_dir = Path(data_dir)
        if tokenizer is None:
            tok = load_tokenizer_of(data_dir)
        elif isinstance(tokenizer, Tokenizer):
            tok = tokenizer
        elif isinstance(tokenizer, str) and tokenizer in ("char", "word", "bpe"):
            raise LmlabError(f"--tokenizer {tokenizer} trains a new tokenizer, which only makes sense with --text; "
                             "shards in --data already fix their tokenizer")
        else:
            tok = Tokenizer.load(tokenizer)
    missing = [t for t in needed_specials if tok.token_to_id(t) is None]
    if missing:
        raise LmlabError(f"a {model_type} model needs the special token(s) {' '.join(missing)}, which this tokenizer "
                         "lacks; train from --text (they are added), or make the tokenizer with "
                         + " ".join(f"--special '{t}'" for t in missing))
    return data_dir, tok


def _special_token_ids(model_type: str, tok: Tokenizer, specials: tuple[str, ...]) -> dict[str, Any]:
    """{"<name>_id": id} for the model's special tokens ("<cls>" → cls_id) and "pad_id", "bos_id", "eos_id", for
    those names that are fields of the model type's config: the model learns the ids of the tokenizer it is trained
    with (e.g. BERT builds `<cls> … <sep>` and masks with `<mask>`), and they are saved in its config. A list field
    "<name>_ids" gets the ids of the numbered tokens <name>0, <name>1, … in number order (seq2seq's sentinels)."""
    config_cls, _ = get_model_type(model_type)
    names = {f.name for f in dataclasses.fields(config_cls)} if dataclasses.is_dataclass(config_cls) else set()
    ids: dict[str, Any] = {f"{t.strip('<>')}_id": tok.token_to_id(t) for t in specials}
    for role in ("pad_id", "bos_id", "eos_id"):  # roles every tokenizer plays (GPT-2's <|endoftext|> plays all)
        if role in names:
            ids[role] = getattr(tok, role)
    for name in names:
        stem = name[:-len("_ids")]
        numbered = sorted((int(t[len(stem) + 1:-1]), t) for t in specials
                          if name.endswith("_ids") and re.fullmatch(rf"<{re.escape(stem)}\d+>", t))
        if numbered:
            ids[name] = [tok.token_to_id(t) for _, t in numbered]
    return {k: v for k, v in ids.items() if k in names and v is not None}


def _resume(out_dir: Path, *, data_dir, config_file, overrides: dict[str, Any], progress: bool,
            on_eval) -> TrainResult:
    """Continue the run in `out_dir` with its saved model/training settings (training settings may be changed)."""
    if not has_checkpoint(out_dir):
        raise LmlabError(f"nothing to resume in {out_dir}: no {TRAIN_STATE_NAME} (start a new run without --resume)")
    saved = read_run_config(out_dir)
    model_type = saved["model_type"]
    model_config = build_config(model_type, saved["model"])
    saved_training = saved.get("training") or {}
    train_config = TrainConfig.from_dict(saved_training)
    tok = Tokenizer.load(out_dir / TOKENIZER_NAME)
    new_model_config, train_config = resolve_configs(model_config, train_config, config_file=config_file,
                                                     overrides=overrides)
    _refuse_shape_change(model_config, new_model_config, "on --resume")
    if data_dir is None:
        data_dir = run_data_dir(out_dir, required="--data DATA_DIR")
    model = build_model(model_type, model_config.to_dict())  # weights are replaced by the checkpoint's in train()
    return train(model, model_config, tok, data_dir, out_dir, train_config, model_type=model_type, resume=True,
                 progress=progress, on_eval=on_eval)


def _refuse_shape_change(old: Any, new: Any, when: str) -> None:
    """LmlabError naming the model settings that differ: weights of a fixed shape are being continued."""
    if new != old:
        changed = sorted(k for k, v in new.to_dict().items() if old.to_dict()[k] != v)
        raise LmlabError(f"model settings cannot change {when} (the weights have a fixed shape): "
                         f"{', '.join(changed)}; start a new run instead")


def _continue(out_dir: Path, init: Path, *, data_dir, text, val_text, tokenizer, preset, model_type, config_file,
              overrides: dict[str, Any], replay: float, replay_data, progress: bool, on_eval) -> TrainResult:
    """Continued pretraining of the run `init` on new documents into the new run dir `out_dir`."""
    from lmlab.checkpoint import load_run
    from lmlab.training.continued import prepare_continued_data, write_lineage

    given = [name for name, v in (("--tokenizer", tokenizer), ("--preset", preset), ("--model", model_type)) if v]
    if given:
        raise LmlabError(f"--init keeps the base run's tokenizer and shape; leave out {', '.join(given)}")
    base = load_run(init, device="cpu")
    train_config = TrainConfig.from_dict(base.training_config or {})
    model_config, train_config = resolve_configs(base.model_config, train_config, config_file=config_file,
                                                 overrides=overrides)
    _refuse_shape_change(base.model_config, model_config, "with --init")
    data, data_info = prepare_continued_data(out_dir, base, text=text, data_dir=data_dir, val_text=val_text,
                                             replay=replay, replay_data=replay_data, seed=train_config.seed,
                                             progress=progress)
    if launch_rank() == 0:
        write_lineage(out_dir, base, data_info)
    model = base.model.train()
    return train(model, model_config, base.tokenizer, data, out_dir, train_config, model_type=base.model_type,
                 progress=progress, on_eval=on_eval)
