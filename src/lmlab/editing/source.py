"""Correcting a fact at the source: fix the training text, re-prepare the shards, train again (`lmlab edit
--method source`).

    requests ──StatementPattern──► which sentences state each old fact (prompt, paraphrases, world templates)
    RUN's shards ──replay (manifest: sources, dedup, split)──► corrected corpus NEW_RUN/corpus/{train,val}.jsonl
        ──prepare with RUN's tokenizer──► NEW_RUN/data
        ──checks (exact-match index of old and new shards, document-by-document diff)──►
        ──retrain from scratch with RUN's model + training config, or continue RUN's weights for N steps──► NEW_RUN

NEW_RUN also gets source_edit.json (what was changed and checked, and what it cost), source_edit_documents.jsonl
(every changed document before and after) and edits.jsonl (one line per request, like the other methods). The
source run dir and its shards are only read.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from lmlab.checkpoint import DATA_DIR_NAME, TOKENIZER_NAME, is_run_dir, load_run, lock_run_dir, read_run_config, \
    run_data_dir
from lmlab.data import load_manifest, prepare
from lmlab.editing.corpus import locate_sources, write_corrected_corpus
from lmlab.editing.requests import as_requests
from lmlab.editing.runs import SHOWN, check_out_dir, write_edit_log
from lmlab.editing.statements import StatementPattern
from lmlab.editing.verify import compare_shards, open_index, statement_documents
from lmlab.errors import LmlabError
from lmlab.models.registry import build_config, build_model
from lmlab.tokenization import Tokenizer
from lmlab.training import TrainConfig, train
from lmlab.utils import atomic_write_json, atomic_write_text

RECORD_NAME = "source_edit.json"
DOCUMENTS_NAME = "source_edit_documents.jsonl"
INDEX_DIRNAME = "attribution-index"  # the corrected shards' index, beside them (as `lmlab attribute index`)


def correct_at_source(run_dir: str | os.PathLike, requests: Any, out: str | os.PathLike, *, retrain: bool = False,
                      continue_steps: int | None = None, remove: bool = False, lr: float | None = None,
                      corpus: str | os.PathLike | None = None, progress: bool = False) -> dict[str, Any]:
    """Correct the requests' old facts in the text `run_dir` was trained on and train `out` on the result.

    requests: as `lmlab.editing.edit` (each needs target_true, the old object to look for). Exactly one of
    retrain=True (a new model from scratch with the run's own model and training config, seed included) and
    continue_steps=N (the run's weights trained N more steps on the corrected shards, fresh AdamW at the constant
    learning rate `lr`, default the run's min_lr: where its schedule ended). remove: drop each statement
    instead of rewriting it to target_new. corpus: the directory holding the shards' source files when their
    recorded paths do not resolve. Returns the record also written to OUT/source_edit.json.
    Raises LmlabError when the old statements are still in the corrected shards or documents no statement was
    found in changed (nothing is trained then).
    """
    if retrain == (continue_steps is not None):
        raise LmlabError("--method source needs exactly one of --retrain (train from scratch on the corrected "
                         "corpus) or --continue-steps N (train the run's weights N more steps on it)")
    if continue_steps is not None and continue_steps < 1:
        raise LmlabError(f"--continue-steps must be at least 1, got {continue_steps}")
    if lr is not None and not lr > 0:
        raise LmlabError(f"the learning rate must be positive, got {lr}")
    reqs = as_requests(requests)
    patterns = [StatementPattern.of(r) for r in reqs]
    dst = check_out_dir(run_dir, out)
    with lock_run_dir(dst, "lmlab edit --method source"):
        check_out_dir(run_dir, out)  # again under the lock: another edit may have finished into `out` meanwhile
        try:
            return _correct_into(Path(run_dir), patterns, dst, retrain=retrain, continue_steps=continue_steps,
                                 remove=remove, lr=lr, corpus=corpus, progress=progress)
        except BaseException:
            if not is_run_dir(dst):  # no run was written: leave no half corpus behind
                _remove_partial(dst)
            raise


def format_source_report(record: dict[str, Any], out: str | os.PathLike) -> str:
    """What `lmlab edit --method source` prints of `correct_at_source`'s record: per request (the first 20) the
    statements changed and the index counts before → after, then the totals and the training."""
    lines = []
    for r in record["requests"][:SHOWN]:
        q = r["request"]
        lines.append(f"{q['prompt'].replace('{}', q['subject'], 1)!r} {q['target_true']!r} → "
                     f"{'(removed)' if record['remove'] else repr(q['target_new'])}: {r['statements_changed']} "
                     f"statement(s) in {r['documents']} document(s); index count {r['index_count_before']} → "
                     f"{r['index_count_after']}")
    if len(record["requests"]) > SHOWN:
        lines.append(f"... {len(record['requests']) - SHOWN} more in {out}/{RECORD_NAME}")
    tr = record["training"]
    lines.append(f"changed {record['statements_changed']} statement(s) in {record['documents_changed']} document(s) "
                 f"({record['documents_removed']} removed whole); documents differing in the shards: "
                 f"{record['documents_differing_in_shards']} (only the corrected ones); old statements left: "
                 f"{record['index_count_after']}")
    loss = "-" if tr["last_val_loss"] is None else f"{tr['last_val_loss']:.4f}"
    lines.append(f"{'retrained' if record['mode'] == 'retrain' else 'continued'} {tr['steps']} steps "
                 f"({tr['wall_seconds']:.0f} s, {tr['flops'] or 0:.3g} FLOPs), val loss {loss} → {out}")
    return "\n".join(lines)


def _correct_into(run_dir: Path, patterns: list[StatementPattern], dst: Path, *, retrain: bool,
                  continue_steps: int | None, remove: bool, lr: float | None, corpus, progress: bool) -> dict:
    say = (lambda msg: print(msg, flush=True)) if progress else (lambda msg: None)
    cfg = read_run_config(run_dir)
    data_dir = run_data_dir(cfg.get("training"))
    if data_dir is None or not (data_dir / "manifest.json").is_file():
        raise LmlabError(f"{run_dir} records no training shards that exist ({data_dir and str(data_dir)!r}); "
                         "correcting at the source needs the shards the run was trained on")
    seconds: dict[str, float] = {}

    t = time.perf_counter()
    files = locate_sources(data_dir, corpus)
    say(f"correcting {len(patterns)} fact(s) in {len(files)} source file(s) of {data_dir}")
    fixed = write_corrected_corpus(data_dir, files, patterns, dst / "corpus", remove=remove)
    seconds["correct"] = time.perf_counter() - t

    t = time.perf_counter()
    manifest = load_manifest(data_dir)
    val = fixed.files.get("val")
    has_val = val is not None and val.stat().st_size > 0
    prepare(fixed.files["train"], str(run_dir / TOKENIZER_NAME), dst / DATA_DIR_NAME, dedup="none", text_field="text",
            seed=int(manifest.get("seed", 0)), val_inputs=[val] if has_val else None,
            val_fraction=0.0 if not has_val else float(manifest.get("val_fraction", 0.1)), progress=progress)
    seconds["prepare"] = time.perf_counter() - t

    t = time.perf_counter()
    checks = _check(data_dir, dst / DATA_DIR_NAME, patterns, fixed, Tokenizer.load(run_dir / TOKENIZER_NAME), dst)
    seconds["check"] = time.perf_counter() - t
    say(f"changed {checks['statements_changed']} statement(s) in {len(fixed.documents)} document(s); old statements "
        f"left in the corrected shards: {checks['index_count_after']}")

    t = time.perf_counter()
    training = _train(run_dir, cfg, dst, retrain=retrain, continue_steps=continue_steps, lr=lr, progress=progress)
    seconds["train"] = time.perf_counter() - t

    record = {
        "method": "source", "mode": "retrain" if retrain else "continue", "remove": remove,
        "source_run": str(run_dir), "data_dir_before": str(data_dir), "data_dir_after": str(dst / DATA_DIR_NAME),
        "corpus_sources": [str(f) for f in files],
        "requests": [{"request": p.request.to_dict(), "statements": p.texts,
                      "statements_changed": fixed.counts.get(i, 0),
                      "index_count_before": checks["per_request"][i]["before"],
                      "index_count_after": checks["per_request"][i]["after"],
                      "documents": checks["per_request"][i]["documents"]} for i, p in enumerate(patterns)],
        **{k: v for k, v in checks.items() if k != "per_request"},
        "documents_per_split": fixed.documents_per_split,
        "training": training, "seconds": seconds,
    }
    atomic_write_json(dst / RECORD_NAME, record)
    atomic_write_text(dst / DOCUMENTS_NAME, "".join(json.dumps(d, ensure_ascii=False, sort_keys=True) + "\n"
                                                    for d in fixed.documents))
    _append_log(run_dir, dst, record)
    return record


def _check(old_dir: Path, new_dir: Path, patterns: list[StatementPattern], fixed, tokenizer: Tokenizer,
           dst: Path) -> dict:
    """Find the old statements through an index of the old shards and of the new ones, and diff the documents."""
    per_request = []
    with tempfile.TemporaryDirectory(prefix=".old-index-", dir=dst) as tmp:
        old_ix = open_index(old_dir, Path(tmp) / INDEX_DIRNAME)
        found_by_index: set[tuple[str, int]] = set()
        for p in patterns:
            hits = [h for text in p.texts for h in statement_documents(old_ix, tokenizer, text)]
            found_by_index.update(hits)
            per_request.append({"before": len(hits), "documents": len(set(hits))})
        del old_ix  # the memory maps must close before the directory goes
    new_ix = open_index(new_dir, new_dir / INDEX_DIRNAME)
    for p, entry in zip(patterns, per_request):
        entry["after"] = sum(len(statement_documents(new_ix, tokenizer, text)) for text in p.texts)
    del new_ix
    touched = {(d["split"], d["document"]) for d in fixed.documents}
    dropped = {(d["split"], d["document"]) for d in fixed.documents if d["removed"]}
    diff = compare_shards(old_dir, new_dir, dropped)
    changed = set(map(tuple, diff["changed"])) | dropped
    after = sum(e["after"] for e in per_request)
    if after:
        raise LmlabError(f"{after} statement(s) of the old facts are still in the corrected shards {new_dir} "
                         "(see `lmlab attribute find`); nothing was trained")
    if not diff["aligned"] or changed != touched:
        extra = sorted(changed - touched)[:5]
        raise LmlabError(f"the corrected shards {new_dir} differ from {old_dir} beyond the corrected documents "
                         f"(aligned: {diff['aligned']}; e.g. {extra}); the corpus files may not be the ones the "
                         "shards were made from; nothing was trained")
    return {"per_request": per_request, "statements_changed": sum(fixed.counts.values()),
            "documents_changed": len(touched), "documents_removed": len(dropped),
            "documents_differing_in_shards": len(changed), "only_requested_documents_changed": True,
            "index_count_before": sum(e["before"] for e in per_request), "index_count_after": after,
            "index_documents": len(found_by_index), "index_agrees_with_text": found_by_index == touched}


def _train(run_dir: Path, cfg: dict, dst: Path, *, retrain: bool, continue_steps: int | None, lr: float | None,
           progress: bool) -> dict:
    """Train `dst` on dst/data: from scratch with the run's configs, or from its weights for continue_steps."""
    saved = TrainConfig.from_dict(cfg.get("training") or {})
    tok = Tokenizer.load(run_dir / TOKENIZER_NAME)
    model_type = cfg["model_type"]
    model_config = build_config(model_type, cfg["model"])
    if retrain:
        train_config = saved
        torch.manual_seed(train_config.seed)  # model initialisation is part of the run's seeded randomness
        model = build_model(model_type, model_config.to_dict())
    else:
        rate = saved.min_lr if lr is None else lr
        train_config = dataclasses.replace(saved, max_iters=continue_steps, lr=rate, min_lr=rate, warmup_iters=0,
                                           lr_decay_iters=None, eval_interval=min(saved.eval_interval,
                                                                                  continue_steps))
        model = load_run(run_dir).model
    result = train(model, model_config, tok, dst / DATA_DIR_NAME, dst, train_config, model_type=model_type,
                   progress=progress)
    per_token = float(model.flops_per_token()) if hasattr(model, "flops_per_token") else None
    return {"steps": result.step, "tokens_seen": result.tokens_seen, "wall_seconds": result.wall_seconds,
            "flops": per_token * result.tokens_seen if per_token else None, "last_val_loss": result.last_val_loss,
            "lr": train_config.lr, "max_iters": train_config.max_iters}


def _append_log(run_dir: Path, dst: Path, record: dict) -> None:
    """dst/edits.jsonl: the source run's log, then one line per request (as the weight-editing methods write)."""
    write_edit_log(run_dir, dst, [{"method": "source", "mode": record["mode"], "remove": record["remove"],
                                   "source_run": str(run_dir), **r} for r in record["requests"]])


def _remove_partial(dst: Path) -> None:
    """Delete what a failed correction wrote into `dst` before any training (the corpus and the shards)."""
    for name in ("corpus", DATA_DIR_NAME):
        shutil.rmtree(dst / name, ignore_errors=True)
