"""Edit a run dir into a NEW run dir: the source is only read, never written (the CLI's `lmlab edit`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lmlab.checkpoint import EDITS_NAME, check_new_run_dir, is_run_dir, load_run, lock_run_dir, read_run_config, \
    run_data_dir, save_run
from lmlab.editing.api import EditResult, edit
from lmlab.editing.requests import as_requests
from lmlab.editing.stats import DEFAULT_N_TOKENS
from lmlab.errors import LmlabError
from lmlab.generation import generate
from lmlab.utils import atomic_write_text


def stats_data_of(run_dir: str | os.PathLike, stats_data: Any = None) -> Any:
    """The text for key statistics: `stats_data` if given, else the training data dir the run dir records."""
    if stats_data is not None:
        return stats_data
    data = run_data_dir(run_dir)
    if data is not None and data.exists():
        return str(data)
    raise LmlabError(f"{run_dir} records no training data to estimate key statistics from (e.g. an imported GPT-2); "
                     "pass --stats-data FILE|DIR (a text file such as wikitext, or a shard dir)")


def check_out_dir(run_dir: str | os.PathLike, out: str | os.PathLike) -> Path:
    """LmlabError when `out` is the source run dir (or inside it) or already holds a run."""
    src, dst = Path(run_dir).resolve(), Path(out).resolve()
    if dst == src or src in dst.parents:
        raise LmlabError(f"--out {out} is the source run dir (or inside it); an edit never overwrites its source: "
                         "choose a new directory, e.g. --out runs/tiny-edited")
    if is_run_dir(dst):
        raise LmlabError(f"--out {out} already holds a run dir; choose a new directory or delete it first")
    check_new_run_dir(dst, overwrite=False)  # a directory of someone else's files is never written into
    return dst


def edit_run(run_dir: str | os.PathLike, requests: Any, out: str | os.PathLike, method: str = "rome", *,
             layers: list[int] | None = None, stats_data: Any = None, n_tokens: int = DEFAULT_N_TOKENS,
             cache_dir: Any = None, device: str = "cpu", completions: int = 5, max_new_tokens: int = 12,
             progress: bool = False,
             **hparams) -> EditResult:
    """Load `run_dir`, apply `requests` with `method`, write the edited model as a full run dir at `out` with an
    `edits.jsonl` log (one line per request, appended to the source's log if it has one). Returns the result.

    The log entries of the first `completions` requests also hold the greedy completion of the edit prompt before
    and after the edit ("completion_before", "completion_after", `max_new_tokens` tokens).
    """
    dst = check_out_dir(run_dir, out)
    with lock_run_dir(dst, "lmlab edit"):
        check_out_dir(run_dir, out)  # again under the lock: another edit may have finished into `out` meanwhile
        return _edit_into(run_dir, requests, dst, method, layers=layers, stats_data=stats_data, n_tokens=n_tokens,
                          cache_dir=cache_dir, device=device, completions=completions,
                          max_new_tokens=max_new_tokens, progress=progress, **hparams)


def _edit_into(run_dir, requests, dst: Path, method: str, *, layers, stats_data, n_tokens, cache_dir, device,
               completions: int, max_new_tokens: int, progress: bool, **hparams) -> EditResult:
    reqs = as_requests(requests)
    run = load_run(run_dir, device=device)
    data = stats_data_of(run_dir, stats_data) if method in ("rome", "memit") else None
    shown = [r.filled_prompt for r in reqs[:completions]]
    before = _greedy(run.model, run.tokenizer, shown, max_new_tokens)
    result = edit(run.model, run.tokenizer, reqs, method, layers=layers, in_place=True, stats_data=data,
                  n_tokens=n_tokens, cache_dir=cache_dir, progress=progress, **hparams)
    after = _greedy(result.model, run.tokenizer, shown, max_new_tokens)
    for entry, b, a in zip(result.log, before, after):
        entry["completion_before"], entry["completion_after"] = b, a
    cfg = read_run_config(run_dir)
    save_run(dst, result.model, run.tokenizer, model_type=run.model_type, model_config=run.model_config,
             training_config=cfg.get("training"))
    write_edit_log(Path(run_dir), dst, [{**entry, "source_run": str(Path(run_dir))} for entry in result.log])
    return result


def write_edit_log(source_run: Path, dst: Path, entries: list[dict]) -> None:
    """dst/edits.jsonl: the source run's log (if it has one), then one JSON line per entry."""
    previous = source_run / EDITS_NAME
    lines = previous.read_text(encoding="utf-8").splitlines() if previous.is_file() else []
    lines += [json.dumps(entry, ensure_ascii=False, sort_keys=True) for entry in entries]
    atomic_write_text(dst / EDITS_NAME, "\n".join(lines) + "\n")


def _greedy(model, tokenizer, prompts: list[str], max_new_tokens: int) -> list[str]:
    room = max(1, min(max_new_tokens, model.config.block_size // 2))
    return [c.text for c in generate(model, tokenizer, prompts, max_new_tokens=room, temperature=0,
                                     truncate="left")] if prompts else []
