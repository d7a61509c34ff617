"""Supervised fine-tuning on instructions (what `lmlab finetune RUN --instructions FILE --out NEW_RUN` does).

    instruction JSONL ──read_instructions──► examples ──PromptTemplate.document──► `prompt<bos> response` + <eos>
        ──► OUT/data: shards of one example per document (train: + a `replay` share of the source run's own
            training documents; val: held-out examples only)
        ──► ResponseLossGPT (the source run's GPT, weights copied; loss on response tokens and <eos> only)
        ──► lmlab.training.loop.train(...)  ──► OUT: a plain GPT run dir + template.json + finetune.json

The tokenizer and model shape are the source run's: `<bos>` (unused in GPT training shards) marks where a response
starts, so the tuned run reads the same shards and serves the same ids as its base. Checkpoints, progress, metrics
and `resume` are the trainer's; val loss is the response loss (nats per response token) of the held-out examples.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from lmlab.checkpoint import DATA_DIR_NAME, TOKENIZER_NAME, check_new_run_dir, load_run, lock_run_dir, \
    read_run_config, run_data_dir
from lmlab.data import split_mask
from lmlab.data.instructions import InstructionExample, PromptTemplate, load_template, read_instructions, \
    save_template
from lmlab.data.shards import DTYPES, ShardWriter, dtype_for_vocab
from lmlab.errors import LmlabError
from lmlab.models.gpt import GPT, GPTConfig
from lmlab.tokenization import Tokenizer
from lmlab.training.config import TrainConfig, resolve_configs
from lmlab.training.finetune import FINETUNE_INFO, VAL_FRACTION
from lmlab.training.loop import TrainResult, train
from lmlab.training.replay import check_replay, draw_replay
from lmlab.utils import atomic_write_json

class ResponseLossGPT(GPT):
    """A GPT that learns from whole instruction documents: the trainer hands it `batch_format = "documents"` rows
    (one right-padded document each, x = y) and the loss covers only what follows the response marker — the
    response tokens and the `<eos>` that ends them. A row without the marker (replayed pre-training text) is
    plain language modelling over its tokens. Its weights and config are a GPT's: the run dir it trains is a GPT's."""

    batch_format = "documents"

    def __init__(self, config: GPTConfig, *, response_id: int, eos_id: int, pad_id: int):
        super().__init__(config)
        self.response_id, self.eos_id, self.pad_id = response_id, eos_id, pad_id

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, **kwargs):
        """As GPT.forward; given targets (the documents again), they are replaced by `response_targets(idx)`."""
        if targets is None:
            return super().forward(idx, **kwargs)
        return super().forward(idx, response_targets(idx, self.response_id, self.eos_id, self.pad_id), **kwargs)


def response_targets(docs: torch.Tensor, response_id: int, eos_id: int, pad_id: int) -> torch.Tensor:
    """Next-token targets (B, T) int64 for right-padded documents `docs` (B, T), -100 where no loss is taken.

    A row holding `response_id`: targets from the marker's position on (the first response token) to the row's
    last real token, whose target is `eos_id` (the document's end, which the sampler leaves out). Other rows:
    every real next token. Padding (pad_id) never counts."""
    B, T = docs.shape
    real = docs != pad_id
    lengths = real.sum(dim=1)
    targets = torch.full_like(docs, -100)
    targets[:, :-1] = docs[:, 1:]
    targets = targets.masked_fill(~real, -100)
    rows = torch.arange(B, device=docs.device)
    is_marker = docs == response_id
    has_marker = is_marker.any(dim=1)
    last = (lengths - 1).clamp(min=0)
    targets[rows, last] = torch.where(has_marker, torch.full_like(last, eos_id), torch.full_like(last, -100))
    start = is_marker.int().argmax(dim=1)  # first marker (0 for rows without one, which the mask below ignores)
    prompt = has_marker[:, None] & (torch.arange(T, device=docs.device)[None, :] < start[:, None])
    return targets.masked_fill(prompt, -100)


def finetune_instructions(out_dir: str | os.PathLike, *, run_dir: str | os.PathLike | None = None,
                          instructions: str | os.PathLike | None = None,
                          val_instructions: str | os.PathLike | None = None, replay: float = 0.0,
                          replay_data: str | os.PathLike | None = None,
                          overrides: dict[str, Any] | None = None, resume: bool = False, overwrite: bool = False,
                          progress: bool = True, base_settings: Mapping[str, Any] | None = None) -> TrainResult:
    """Instruction-tune the GPT of `run_dir` on the JSONL file `instructions` into the new run dir `out_dir`
    (see the module docstring); returns the trainer's TrainResult (losses: nats per response token).

    val_instructions: examples for the val loss (default: a seeded 10% of `instructions`). replay: share of training
    documents, in [0, 1), taken from pre-training text — `replay_data` (token shards made with the run's tokenizer)
    or the shards the source run was trained on. overrides: training settings ({key: value}), e.g. max_iters, lr;
    base_settings: those under them (default TrainConfig's; the documented ones are the recipes', filled in by
    `lmlab.recipes.finetune`).
    resume=True continues the tuning in `out_dir` (its own data and settings; overrides such as a larger max_iters
    apply) and needs no other argument. LmlabError for user mistakes (missing files, an example longer than the
    context, a replay share outside [0, 1), a tokenizer without a separate `<bos>`, an existing run in out_dir
    without overwrite=True).
    """
    out_dir = Path(out_dir)
    overrides = dict(overrides or {})
    if resume:
        with lock_run_dir(out_dir, "lmlab finetune --resume"):
            return _resume(out_dir, overrides, progress)
    if run_dir is None or instructions is None:
        raise LmlabError("instruction tuning needs the RUN_DIR to start from and --instructions FILE.jsonl")
    if out_dir.resolve() == Path(run_dir).resolve():
        raise LmlabError("--out must be a new directory: the source run dir is never modified")
    check_replay(replay)
    check_new_run_dir(out_dir, overwrite)
    with lock_run_dir(out_dir, "lmlab finetune"):
        check_new_run_dir(out_dir, overwrite)  # again under the lock: another run may have finished there
        return _finetune(out_dir, Path(run_dir), Path(instructions), val_instructions, replay, replay_data,
                         overrides, progress, dict(base_settings or {}))


def _finetune(out_dir: Path, run_dir: Path, instructions: Path, val_instructions, replay: float, replay_data,
              overrides: dict[str, Any], progress: bool, base_settings: dict[str, Any]) -> TrainResult:
    source = load_run(run_dir)
    if source.model_type != "gpt":
        raise LmlabError(f"{run_dir} holds a {source.model_type} model; instruction tuning starts from a GPT run dir")
    tok, template = source.tokenizer, PromptTemplate()
    response_id = _response_id(tok, template)

    examples = read_instructions(instructions)
    if val_instructions is not None:
        train_examples, val_examples = examples, read_instructions(val_instructions)
    else:
        if len(examples) < 2:
            raise LmlabError(f"{instructions} has one example; tuning needs more (and some to validate on)")
        is_val = split_mask(len(examples), VAL_FRACTION, seed=0)
        train_examples = [e for e, v in zip(examples, is_val) if not v]
        val_examples = [e for e, v in zip(examples, is_val) if v]

    block_size = source.model_config.block_size
    train_docs = encode_examples(tok, template, train_examples, block_size, what=str(instructions))
    val_docs = encode_examples(tok, template, val_examples, block_size, what=str(val_instructions or instructions))
    n_replay = round(len(train_docs) * replay / (1.0 - replay))
    replay_dir = None
    if n_replay:
        replay_dir = Path(replay_data) if replay_data else run_data_dir(source, required="--replay-data DATA_DIR")
        train_docs += _replayed_documents(replay_dir, tok, n_replay, block_size, seed=0)

    # the source run's dtype: tuning continues in the precision the model was trained in
    defaults = {**base_settings, "dtype": (source.training_config or {}).get("dtype", "auto")}
    model_config, train_config = resolve_configs(source.model_config, TrainConfig(), overrides=defaults)
    model_config, train_config = resolve_configs(model_config, train_config, overrides=overrides)
    if model_config != source.model_config:
        changed = sorted(k for k, v in model_config.to_dict().items() if source.model_config.to_dict()[k] != v)
        raise LmlabError(f"instruction tuning keeps the source model's shape; these settings cannot change: "
                         f"{', '.join(changed)}")

    data_dir = out_dir / DATA_DIR_NAME
    _write_shards(data_dir, tok, {"train": train_docs, "val": val_docs},
                  {"instructions": str(instructions), "replay_documents": n_replay})
    torch.manual_seed(train_config.seed)
    net = ResponseLossGPT(model_config, response_id=response_id, eos_id=tok.eos_id, pad_id=tok.pad_id)
    net.load_state_dict(source.model.state_dict())
    del source
    out_dir.mkdir(parents=True, exist_ok=True)
    save_template(out_dir, template)
    atomic_write_json(out_dir / FINETUNE_INFO, {
        "kind": "instructions", "source_run": str(run_dir.resolve()), "instructions": str(instructions.resolve()),
        "val_instructions": None if val_instructions is None else str(Path(val_instructions).resolve()),
        "replay": replay, "replay_data": None if replay_dir is None else str(replay_dir.resolve()),
        "train_examples": len(train_examples), "val_examples": len(val_examples), "replay_documents": n_replay,
    })
    return train(net, model_config, tok, data_dir, out_dir, train_config, model_type="gpt", progress=progress)


def _resume(out_dir: Path, overrides: dict[str, Any], progress: bool) -> TrainResult:
    """Continue an instruction tuning in `out_dir` with its own data, template and settings (plus overrides)."""
    template = load_template(out_dir)
    if template is None or not (out_dir / DATA_DIR_NAME).is_dir():
        raise LmlabError(f"{out_dir} holds no instruction tuning to resume (no template.json and data/); start one "
                         "with `lmlab finetune RUN --instructions FILE --out DIR`")
    saved = read_run_config(out_dir)
    tok = Tokenizer.load(out_dir / TOKENIZER_NAME)
    model_config = GPTConfig.from_dict(saved["model"])
    new_config, train_config = resolve_configs(model_config, TrainConfig.from_dict(saved.get("training") or {}),
                                               overrides=overrides)
    if new_config != model_config:
        raise LmlabError("model settings cannot change on --resume (the weights have a fixed shape)")
    net = ResponseLossGPT(model_config, response_id=_response_id(tok, template), eos_id=tok.eos_id,
                          pad_id=tok.pad_id)
    return train(net, model_config, tok, out_dir / DATA_DIR_NAME, out_dir, train_config, model_type="gpt", resume=True,
                 progress=progress)


def _response_id(tok: Tokenizer, template: PromptTemplate) -> int:
    """Id of the template's response marker, which must be a special token of its own (not the <eos> role)."""
    rid = tok.token_to_id(template.response_start)
    if rid is None or template.response_start not in tok.special_tokens or rid in (tok.eos_id, tok.pad_id):
        raise LmlabError(f"the run's tokenizer has no separate special token {template.response_start} to mark "
                         "where a response starts (a tokenizer imported from GPT-2 files has one token for every "
                         "role); instruction-tune a run trained with lmlab's tokenizers")
    return rid


def encode_examples(tok: Tokenizer, template: PromptTemplate, examples: Sequence[InstructionExample],
                    block_size: int, *, what: str) -> list[np.ndarray]:
    """Token ids of each example's document (`template.document`, without <eos>), checked to fit the context: the
    model sees at most block_size tokens of a document and must see all of its response."""
    docs = [np.asarray(ids, dtype=np.int64) for ids in tok.encode_batch([template.document(e) for e in examples])]
    too_long = [i for i, d in enumerate(docs) if len(d) > block_size]
    if too_long:
        raise LmlabError(f"{what}: {len(too_long)} example(s) are longer than the model's context of {block_size} "
                         f"tokens (the first: example {too_long[0] + 1}, {len(docs[too_long[0]])} tokens); shorten "
                         "or drop them")
    return docs


def _replayed_documents(data_dir: Path, tok: Tokenizer, n: int, max_len: int, *, seed: int) -> list[np.ndarray]:
    """`n` pre-training documents (`draw_replay`, with replacement), each cut to its first `max_len` tokens (all a
    batch row shows), without its <eos> (`_write_shards` puts one after every document)."""
    tokens, spans = draw_replay(data_dir, tok, seed=seed, n_documents=n)
    return [np.asarray(tokens[s:min(e, s + max_len)], dtype=np.int64) for s, e in spans]


def _write_shards(data_dir: Path, tok: Tokenizer, splits: dict[str, list[np.ndarray]], sources: dict) -> None:
    """OUT/data: every document followed by <eos>, written atomically with lmlab.data's writer."""
    dtype = DTYPES[dtype_for_vocab(tok.vocab_size)]
    with ShardWriter(data_dir, tok) as writer:
        for split, docs in splits.items():
            ids = np.concatenate([np.append(d, tok.eos_id) for d in docs]).astype(dtype)
            text_bytes = sum(len(tok.decode(d.tolist()).encode("utf-8")) for d in docs)
            writer.write(split, ids, documents=len(docs), text_bytes=text_bytes)
        writer.commit({"created_by": "lmlab finetune --instructions", **sources})
