"""`finetune`: train a text classifier (what `lmlab finetune` does), through the ordinary trainer.

    labelled file ──read_labelled──► texts, labels
        ──► tokenizer: the source run's, grown by <label0..> (and <extract> for gpt), or a new one (bow, lstm)
        ──► OUT/data: shards of documents `<labelK> text tokens` (train, val), one example per document
        ──► model: GPT / BERT classifier initialised from RUN_DIR's weights, or a fresh BOW / LSTM classifier
        ──► lmlab.training.loop.train(...) with the model's batch_format = "documents"  ──► OUT (a run dir)

The source run dir is only read. OUT also gets `finetune.json`: where the classifier came from (source run, data
files, label names, example counts).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from lmlab.checkpoint import DATA_DIR_NAME, check_new_run_dir, load_run, lock_run_dir
from lmlab.data import split_mask
from lmlab.data.labelled import SENTIMENT_LABELS, read_labelled
from lmlab.data.shards import DTYPES, ShardWriter, dtype_for_vocab
from lmlab.errors import LmlabError
from lmlab.models.bert import BERTConfig
from lmlab.models.classifiers import EXTRACT_TOKEN, BERTClassifierConfig, BOWConfig, GPTClassifierConfig, \
    LSTMClassifierConfig, label_tokens
from lmlab.models.gpt import GPTConfig
from lmlab.models.registry import build_model
from lmlab.tokenization import Tokenizer, train_tokenizer
from lmlab.training.config import TrainConfig, parse_override_args, resolve_configs
from lmlab.training.loop import TrainResult, train
from lmlab.utils import atomic_write_json

FINETUNE_INFO = "finetune.json"
# --model NAME → registered model type.
MODEL_TYPES = {"gpt": "gpt_classifier", "bert": "bert_classifier", "bow": "bow", "lstm": "lstm_classifier"}
PRETRAINED = {"gpt": "gpt", "bert": "bert"}  # --model NAME → the model type its RUN_DIR must hold
# Settings of a pre-trained model that fine-tuning may change; every other one fixes the weights' shapes.
FREE_SETTINGS = {"dropout", "vocab_size", "eval_mask_seed", "mask_prob", "mask_token_frac", "random_token_frac"}
# --task NAME → class names (None: the training file's own labels decide).
TASKS: dict[str, tuple[str, ...] | None] = {"sentiment": SENTIMENT_LABELS, "labels": None}
VAL_FRACTION = 0.1  # held out of the training file when no --val-data is given
DEFAULT_WORD_VOCAB = 20000  # tokenizer of a fresh bow/lstm model: word-level, at most this many ids


def finetune(out_dir: str | os.PathLike, *, run_dir: str | os.PathLike | None = None, model: str = "gpt",
             task: str = "sentiment", data: str | os.PathLike | None = None,
             val_data: str | os.PathLike | None = None, tokenizer: str = "word",
             overrides: dict[str, Any] | list[str] | None = None, overwrite: bool = False, progress: bool = True,
             instructions: str | os.PathLike | None = None, replay: float = 0.0,
             replay_data: str | os.PathLike | None = None, resume: bool = False,
             base_settings: Mapping[str, Any] | None = None) -> TrainResult:
    """Train a classifier of kind `model` ("gpt" | "bert" | "bow" | "lstm") on the labelled file `data` into the
    run dir `out_dir`; returns the trainer's TrainResult (losses: the classifier's cross-entropy in nats per example).

    With `instructions` (an instruction JSONL file) instead of `data`, the GPT of `run_dir` is instruction-tuned
    (lmlab.training.instruct.finetune_instructions: val_data is then an instruction file for the val loss, replay
    the share of pre-training documents mixed in, from replay_data or the run's own shards); resume=True continues
    an instruction tuning in out_dir.

    run_dir: the trained GPT or BERT run to start from (gpt, bert; must be None for bow/lstm). task: "sentiment"
    (classes negative, positive; integer labels 0/1 index them) or "labels" (the classes the training file names).
    val_data: a labelled file for validation (default: a seeded 10% of `data`). tokenizer: for bow/lstm, the kind
    of tokenizer trained on the training texts ("word", "bpe", "char") or a tokenizer JSON path; its size is the
    `vocab_size` override (word default 20000). overrides: model and training settings ({key: value} or
    ['--lr', '1e-4', ...]), e.g. max_iters, lr, lm_coef (gpt's auxiliary LM loss weight), pooling, n_hidden.
    base_settings: training settings under the overrides (default TrainConfig's); the settings each kind is
    documented with are the recipes' (`lmlab.recipes.finetune` fills them in, as `lmlab finetune` does).
    Raises LmlabError for user mistakes (unknown model/task, missing files, unknown labels, an existing run in
    out_dir without overwrite=True).
    """
    out_dir = Path(out_dir)
    overrides = parse_override_args(overrides) if isinstance(overrides, list) else dict(overrides or {})
    if instructions is not None or resume:
        if data is not None or model != "gpt":
            raise LmlabError("--instructions tunes a GPT run on instructions; leave out --data and --model")
        from lmlab.training.instruct import finetune_instructions

        return finetune_instructions(out_dir, run_dir=run_dir, instructions=instructions, val_instructions=val_data,
                                     replay=replay, replay_data=replay_data, overrides=overrides, resume=resume,
                                     overwrite=overwrite, progress=progress, base_settings=base_settings)
    if data is None:
        raise LmlabError("no training data: give --data FILE (labelled texts) or --instructions FILE.jsonl")
    if replay or replay_data is not None:
        raise LmlabError("--replay mixes pre-training text into instruction tuning; it goes with --instructions")
    if model not in MODEL_TYPES:
        raise LmlabError(f"unknown classifier model {model!r}; choose one of {', '.join(MODEL_TYPES)}")
    if task not in TASKS:
        raise LmlabError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if model in PRETRAINED and run_dir is None:
        raise LmlabError(f"--model {model} fine-tunes a trained {model.upper()}: give its RUN_DIR")
    if model not in PRETRAINED and run_dir is not None:
        raise LmlabError(f"--model {model} trains a fresh classifier; leave out RUN_DIR (or use --model gpt|bert)")
    if run_dir is not None and out_dir.resolve() == Path(run_dir).resolve():
        raise LmlabError("--out must be a new directory: the source run dir is never modified")
    check_new_run_dir(out_dir, overwrite)
    with lock_run_dir(out_dir, "lmlab finetune"):
        check_new_run_dir(out_dir, overwrite)  # again under the lock: another run may have finished there
        return _finetune(out_dir, run_dir=run_dir, model=model, task=task, data=data, val_data=val_data,
                         tokenizer=tokenizer, overrides=overrides, progress=progress,
                         base_settings=dict(base_settings or {}))


def _finetune(out_dir: Path, *, run_dir, model: str, task: str, data, val_data, tokenizer: str,
              overrides: dict[str, Any], progress: bool, base_settings: dict[str, Any]) -> TrainResult:

    # --- labelled examples ---------------------------------------------------------------------------------------
    train_set = read_labelled(data, label_names=TASKS[task])
    names = train_set.label_names
    if val_data is not None:
        val_set = read_labelled(val_data, label_names=names)
        train_texts, train_labels = train_set.texts, train_set.labels
        val_texts, val_labels = val_set.texts, val_set.labels
    else:
        if len(train_set.texts) < 2:
            raise LmlabError(f"{data} has one example; a classifier needs more (and a validation part)")
        is_val = split_mask(len(train_set.texts), VAL_FRACTION, seed=0)
        train_texts, val_texts = _split(train_set.texts, is_val)
        train_labels, val_labels = _split(train_set.labels, is_val)

    # --- tokenizer and model config -------------------------------------------------------------------------------
    specials = label_tokens(len(names))
    lm_state = None
    if model in PRETRAINED:
        source = load_run(run_dir)
        if source.model_type != PRETRAINED[model]:
            raise LmlabError(f"{run_dir} holds a {source.model_type} model; --model {model} needs a "
                             f"{PRETRAINED[model]} run dir")
        tok = source.tokenizer.with_special_tokens(([EXTRACT_TOKEN] if model == "gpt" else []) + specials)
        base = source.model_config.to_dict()
        fields = dict(base, vocab_size=max(base["vocab_size"], tok.vocab_size), label_names=names,
                      first_label_id=_first_label_id(tok, specials), pad_id=tok.pad_id)
        if model == "gpt":
            model_config: Any = GPTClassifierConfig(**fields, extract_id=tok.token_to_id(EXTRACT_TOKEN))
        else:
            model_config = BERTClassifierConfig(**fields)
        lm_state, n_old_tokens = source.model.state_dict(), source.tokenizer.vocab_size
        del source
    else:
        vocab = overrides.pop("vocab_size", None)
        tok = _fresh_tokenizer(tokenizer, train_texts, specials, vocab, progress)
        cfg_cls = BOWConfig if model == "bow" else LSTMClassifierConfig
        model_config = cfg_cls(vocab_size=tok.vocab_size, label_names=names,
                               first_label_id=_first_label_id(tok, specials), pad_id=tok.pad_id)
    model_config, train_config = resolve_configs(model_config, TrainConfig(), overrides=base_settings)
    model_config, train_config = resolve_configs(model_config, train_config, overrides=overrides)
    if model in PRETRAINED:
        _check_same_shape(model_config, base, GPTConfig if model == "gpt" else BERTConfig)

    # --- shards, model, training ----------------------------------------------------------------------------------
    data_dir = out_dir / DATA_DIR_NAME
    _write_labelled_shards(data_dir, tok, model_config.first_label_id,
                           {"train": (train_texts, train_labels), "val": (val_texts, val_labels)},
                           sources={"data": str(data), "val_data": None if val_data is None else str(val_data)})
    torch.manual_seed(train_config.seed)
    net = build_model(MODEL_TYPES[model], model_config.to_dict())
    if lm_state is not None:
        net.init_from_lm(lm_state, n_old_tokens)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / FINETUNE_INFO, {
        "model": model, "task": task, "source_run": None if run_dir is None else str(Path(run_dir).resolve()),
        "data": str(Path(data).resolve()), "val_data": None if val_data is None else str(Path(val_data).resolve()),
        "label_names": list(names), "train_examples": len(train_texts), "val_examples": len(val_texts),
    })
    return train(net, model_config, tok, data_dir, out_dir, train_config, model_type=MODEL_TYPES[model],
                 progress=progress)


def _split(values: list, is_val: np.ndarray) -> tuple[list, list]:
    """(values where is_val is False, values where it is True), in order."""
    return [v for v, m in zip(values, is_val) if not m], [v for v, m in zip(values, is_val) if m]


def _first_label_id(tok: Tokenizer, specials: Sequence[str]) -> int:
    """Id of <label0>, checking the label tokens have consecutive ids (the models compute label = id − first)."""
    ids = [tok.token_to_id(t) for t in specials]
    if None in ids or ids != list(range(ids[0], ids[0] + len(ids))):
        raise LmlabError(f"the tokenizer's label tokens {list(specials)} must have consecutive ids, got {ids}; "
                         "use a tokenizer without <label…> tokens of its own")
    return ids[0]


def _fresh_tokenizer(spec: str, texts: list[str], specials: list[str], vocab: Any, progress: bool) -> Tokenizer:
    """A tokenizer for a fresh model: trained on the training texts with the label tokens, or loaded and grown."""
    if spec in ("word", "bpe", "char"):
        # Default sizes: word 20000 (all of SST-2 train: 13.8k ids), bpe its library default, char every character.
        size = int(vocab) if vocab is not None else (DEFAULT_WORD_VOCAB if spec == "word" else None)
        return train_tokenizer(spec, texts, vocab_size=size, special_tokens=specials, progress=progress)
    if vocab is not None:
        raise LmlabError("--vocab_size sets the size of a tokenizer trained here; a given tokenizer file fixes its own")
    return Tokenizer.load(spec).with_special_tokens(specials)


def _check_same_shape(config: Any, base: dict[str, Any], base_cls: type) -> None:
    """Fine-tuning keeps the source model's shape (its weights must fit): only FREE_SETTINGS may change."""
    changed = [f for f in base_cls.__dataclass_fields__ if f not in FREE_SETTINGS and getattr(config, f) != base[f]]
    if changed:
        raise LmlabError(f"the shape of a fine-tuned model is the source run's; these settings cannot change: "
                         f"{', '.join(changed)}")


def encode_labelled(tok: Tokenizer, texts: Sequence[str], labels: Sequence[int],
                    first_label_id: int) -> np.ndarray:
    """One flat array of documents `<label_k> text-ids <eos>` (the shard layout of lmlab.data.shards), in the
    shards' dtype. The label token comes first so that cutting a long document to block_size never loses it."""
    dtype = DTYPES[dtype_for_vocab(tok.vocab_size)]
    encoded = tok.encode_batch(list(texts))
    out = np.empty(sum(map(len, encoded)) + 2 * len(encoded), dtype=dtype)
    pos = 0
    for ids, label in zip(encoded, labels):
        out[pos] = first_label_id + label
        out[pos + 1:pos + 1 + len(ids)] = ids
        pos += 1 + len(ids)
        out[pos] = tok.eos_id
        pos += 1
    return out


def _write_labelled_shards(data_dir: Path, tok: Tokenizer, first_label_id: int,
                           splits: dict[str, tuple[list[str], list[int]]], sources: dict[str, Any]) -> None:
    """Write OUT/data (train.bin, val.bin, tokenizer.json, manifest.json) atomically with lmlab.data's writer."""
    with ShardWriter(data_dir, tok) as writer:
        for split, (texts, labels) in splits.items():
            writer.write(split, encode_labelled(tok, texts, labels, first_label_id), documents=len(texts),
                         text_bytes=sum(len(t.encode("utf-8")) for t in texts))
        writer.commit({"created_by": "lmlab finetune", "labelled": True, **sources})
