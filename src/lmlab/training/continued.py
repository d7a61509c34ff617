"""Continued pretraining: train an existing run (or an imported Hugging Face GPT-2) further on new documents.

The new run keeps the base run's tokenizer and shape (only its weights move), starts a fresh optimizer and
schedule, and writes RUN_DIR/lineage.json saying where it came from: the base run dir, the checksum of the base's
weights, the base's own lineage (so chains of continued runs stay traceable), the new documents and the replay mix.

Replay (`replay=0.2`): a share of the base run's original training documents is mixed into the train split, so
the model rehearses what it knew while it learns the new documents (`lmlab.training.replay`). Whole documents are
drawn at random (seeded) from the original train split until they make up `replay` of the mixed train tokens; the
val split is the new documents' alone.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from lmlab.checkpoint import DATA_DIR_NAME, LINEAGE_NAME, WEIGHTS_NAME, Run, latest_sharded_checkpoint, \
    load_train_state, run_data_dir
from lmlab.data import load_manifest, load_split
from lmlab.data.shards import ShardWriter
from lmlab.errors import LmlabError
from lmlab.tokenization import Tokenizer
from lmlab.training.replay import check_replay, draw_replay
from lmlab.utils import atomic_write_json, sha256_file


def mix_replay(new_dir: Path, replay_dir: Path, out_dir: Path, replay: float, tokenizer: Tokenizer, *,
               seed: int = 0) -> dict[str, Any]:
    """Write shards to `out_dir`: train = `new_dir`'s train split + random whole documents of `replay_dir`'s train
    split making up `replay` of the tokens; val = `new_dir`'s val split. Both must be shards of `tokenizer`.
    Returns the manifest (its "replay" entry counts what was mixed)."""
    check_replay(replay)
    new_train, new_val = load_split(new_dir, "train", tokenizer), load_split(new_dir, "val", tokenizer)
    want = int(round(len(new_train) * replay / (1.0 - replay)))
    old, chosen = draw_replay(replay_dir, tokenizer, seed=seed, n_tokens=want)
    n_docs = len(chosen)
    replayed = (np.concatenate([old[s:min(e + 1, len(old))] for s, e in chosen]) if n_docs
                else np.zeros(0, dtype=old.dtype))  # each document with its <eos>, as in the shards
    new_m, old_m = load_manifest(new_dir), load_manifest(replay_dir)
    old_bytes_per_token = old_m["splits"]["train"]["text_bytes"] / max(1, old_m["splits"]["train"]["tokens"])
    with ShardWriter(out_dir, tokenizer) as writer:
        for split, ids in (("train", new_train), ("val", new_val)):
            st = new_m["splits"][split]
            writer.write(split, np.asarray(ids), documents=st["documents"], text_bytes=st["text_bytes"])
        writer.write("train", replayed, documents=n_docs,
                     text_bytes=int(round(len(replayed) * old_bytes_per_token)))
        return writer.commit({"replay": {"share": replay, "source": str(Path(replay_dir).resolve()),
                                         "documents": n_docs, "tokens": int(len(replayed)),
                                         "new_tokens": int(len(new_train)), "seed": seed},
                              "split": new_m.get("split")})


def prepare_continued_data(out_dir: Path, base: Run, *, text=None, data_dir=None, val_text=None,
                           replay: float = 0.0, replay_data=None, seed: int = 0,
                           progress: bool = True) -> tuple[Path, dict[str, Any]]:
    """The shard dir a continued run trains on, and what its lineage should say about the data.

    New documents come as `text` (files/dirs, tokenized with the base's tokenizer into OUT/data) or as
    `data_dir` (shards already made with that tokenizer). With replay > 0 they are mixed with the base's original
    shards (`replay_data`, default: the data dir the base run recorded) into OUT/data."""
    from lmlab.data import prepare

    check_replay(replay)
    if (text is None) == (data_dir is None):
        raise LmlabError("continued pretraining needs the new documents: give --text DOCS... or --data DIR")
    tok = base.tokenizer
    info: dict[str, Any] = {"text": [str(Path(t).resolve()) for t in text] if text is not None else None,
                            "data_dir": str(Path(data_dir).resolve()) if data_dir is not None else None,
                            "replay": replay}
    if replay > 0:
        replay_data = replay_data or run_data_dir(base)
        if replay_data is None or not Path(replay_data).is_dir():
            raise LmlabError(f"--replay mixes in the base run's original data, but {base.run_dir} records none "
                             f"that exists ({replay_data}); give it with --replay-data DIR (shards made with the "
                             "base run's tokenizer)")
        info["replay_data"] = str(Path(replay_data).resolve())
    mixed = out_dir / DATA_DIR_NAME
    if text is not None and replay == 0:
        prepare(list(text), tok, mixed, progress=progress, val_inputs=list(val_text) if val_text else None)
        return mixed, info
    if replay == 0:
        return Path(data_dir), info
    with tempfile.TemporaryDirectory(prefix="lmlab-new-docs-") as tmp:
        new_dir = Path(data_dir) if data_dir is not None else Path(tmp) / "data"
        if text is not None:
            prepare(list(text), tok, new_dir, progress=progress, val_inputs=list(val_text) if val_text else None)
        manifest = mix_replay(new_dir, Path(replay_data), mixed, replay, tok, seed=seed)
    info["replay_mix"] = manifest["replay"]
    return mixed, info


def base_fingerprint(run_dir: Path) -> dict[str, Any]:
    """What identifies the base run's weights: the file's SHA-256 (or, for a sharded run, its newest checkpoint's
    metadata's), and the step it had reached when known."""
    weights = run_dir / WEIGHTS_NAME
    sharded = latest_sharded_checkpoint(run_dir)
    if weights.is_file():
        digest, source = sha256_file(weights), weights.name
    elif sharded is not None:
        digest = hashlib.sha256((sharded / ".metadata").read_bytes()).hexdigest()
        source = str(sharded.relative_to(run_dir))
    else:
        digest, source = None, None
    state = load_train_state(run_dir)
    return {"weights": source, "sha256": digest, "step": int(state["step"]) if state else None}


def write_lineage(out_dir: Path, base: Run, data_info: dict[str, Any]) -> dict[str, Any]:
    """Write OUT/lineage.json (atomically) and return it."""
    base_lineage_path = base.run_dir / LINEAGE_NAME
    base_lineage = None
    if base_lineage_path.is_file():
        base_lineage = json.loads(base_lineage_path.read_text(encoding="utf-8"))
    lineage = {"init": str(base.run_dir.resolve()), "base": base_fingerprint(base.run_dir),
               "base_model_type": base.model_type, "base_lineage": base_lineage, "data": data_info}
    atomic_write_json(out_dir / LINEAGE_NAME, lineage)
    return lineage
