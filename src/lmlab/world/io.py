"""Reading a world directory (and the JSONL writer the generator uses).

Other packages (evaluation, editing, the CLI) read a world only through these functions, so the file layout is
known in one place. A directory is a world when it holds `world.json` with `"generator": "lmlab.world"`.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable
from pathlib import Path

from lmlab.errors import LmlabError
from lmlab.utils import iter_jsonl
from lmlab.world.relations import fill

GENERATOR_NAME = "lmlab.world"


def write_jsonl(path: Path, records: Iterable[dict]) -> int:
    """Write one JSON object per line (sorted keys: stable bytes); returns the bytes written."""
    n = 0
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for rec in records:
            line = json.dumps(rec, sort_keys=True, ensure_ascii=False) + "\n"
            f.write(line)
            n += len(line.encode("utf-8"))
    return n


def is_world(world_dir: str | os.PathLike) -> bool:
    """Whether `world_dir` holds a complete world written by `generate_world`."""
    info = Path(world_dir) / "world.json"
    try:
        return json.loads(info.read_text(encoding="utf-8")).get("generator") == GENERATOR_NAME
    except (OSError, ValueError, AttributeError):
        return False


def load_world_info(world_dir: str | os.PathLike) -> dict:
    """The parsed world.json (seed, size, version, counts, files)."""
    _require_world(world_dir)
    return json.loads((Path(world_dir) / "world.json").read_text(encoding="utf-8"))


def _require_world(world_dir: str | os.PathLike) -> Path:
    d = Path(world_dir)
    if not is_world(d):
        raise LmlabError(f"{d} is not a world directory (no valid world.json): "
                         f"create one with `lmlab world --out {d}`")
    return d


def _read_jsonl(path: Path) -> list[dict]:
    return [rec for _, rec in iter_jsonl(path, hint="; regenerate the world",
                                         missing=f"{path} is missing: regenerate the world with "
                                                 f"`lmlab world --out {path.parent}`")]


def load_facts(world_dir: str | os.PathLike) -> list[dict]:
    """All facts of a world (facts.jsonl records, in fact-id order)."""
    return _read_jsonl(_require_world(world_dir) / "facts.jsonl")


def load_edits(world_dir: str | os.PathLike) -> list[dict]:
    """All CounterFact-style edit requests of a world (edits.jsonl records, in case_id order)."""
    return _read_jsonl(_require_world(world_dir) / "edits.jsonl")


def list_tasks(world_dir: str | os.PathLike) -> list[str]:
    """Names of the world's evaluation tasks (file stems under tasks/), sorted."""
    return sorted(p.stem for p in (_require_world(world_dir) / "tasks").glob("*.jsonl"))


def load_task(world_dir: str | os.PathLike, name: str) -> list[dict]:
    """The items of one task, e.g. load_task(d, "facts_train") or load_task(d, "arithmetic_2da")."""
    d = _require_world(world_dir)
    names = list_tasks(d)
    if name not in names:
        raise LmlabError(f"world {d} has no task {name!r}; choose one of: {', '.join(names)}")
    return _read_jsonl(d / "tasks" / f"{name}.jsonl")


def sample_prompts(world_dir: str | os.PathLike, n: int, seed: int = 0) -> list[str]:
    """`n` fact prompts with the subject filled in ("The capital of Vorland is"), drawn with `seed` from the static
    facts' train templates — handy for showing a model's completions after training."""
    if n < 0:
        raise LmlabError(f"number of prompts must be ≥ 0, got {n}")
    facts = [f for f in load_facts(world_dir) if not f.get("temporal")]
    if not facts:
        raise LmlabError(f"world {world_dir} has no facts; regenerate it with `lmlab world --out {world_dir}`")
    rng = random.Random(seed)
    picked = rng.sample(facts, n) if n <= len(facts) else [rng.choice(facts) for _ in range(n)]
    return [fill(rng.choice(f["prompts"]), f["subject"]) for f in picked]
