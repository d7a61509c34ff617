"""`generate_world`: the whole world directory from (seed, size), byte-identical for the same arguments.

Determinism: every part draws from its own `random.Random("lmlab.world:{seed}:{part}")` (string seeds are hashed
with SHA-512 by Python, independent of PYTHONHASHSEED), iterates lists and insertion-ordered dicts only (never a
set), writes JSON with sorted keys and stores no time stamps or paths.

Sizing: the training text (corpus/*.txt) is split into sections by SECTION_SHARES; the number of countries C, and
with it every entity count (see facts.py), is chosen so that each static fact is mentioned about
MENTIONS_PER_FACT times in facts.txt: C = max(2, round(0.45·size / (44 facts · 60 mentions · 38 bytes))), i.e.
about one country per 100 KB of text (5 MB → 22 countries, ~1,000 static facts). Below ~200 KB the floor of 2
countries means fewer mentions per fact.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from lmlab.errors import LmlabError
from lmlab.utils import human_bytes, parse_size
from lmlab.world import arithmetic, lexicon, records, scramble, sentiment
from lmlab.world.edits import edit_requests
from lmlab.world.factcorpus import static_documents, temporal_documents
from lmlab.world.facts import STATIC_FACTS_PER_COUNTRY, World, build_world
from lmlab.world.grammar import grammar_documents
from lmlab.world.io import GENERATOR_NAME, is_world, write_jsonl
from lmlab.world.relations import template_words

VERSION = 1
SECTION_SHARES = {"facts": 0.45, "temporal": 0.10, "grammar": 0.10, "arithmetic": 0.15, "scramble": 0.10,
                  "sentiment": 0.10}
MENTIONS_PER_FACT = 60
FACT_SENTENCE_BYTES = 38   # measured mean length of a rendered train sentence plus its separator
MIN_SIZE, MAX_SIZE = 50_000, 2_000_000_000
_CHUNK_BYTES = 1 << 20     # text is written in ~1 MB joins: few syscalls, no per-character work


def countries_for_size(size_bytes: int) -> int:
    """Number of countries C for a training text of `size_bytes` bytes (all entity counts are multiples of C)."""
    facts_bytes = size_bytes * SECTION_SHARES["facts"]
    return max(2, round(facts_bytes / (STATIC_FACTS_PER_COUNTRY * MENTIONS_PER_FACT * FACT_SENTENCE_BYTES)))


def _rng(seed: int, part: str) -> random.Random:
    return random.Random(f"lmlab.world:{seed}:{part}")


def generate_world(out_dir: str | os.PathLike, *, seed: int = 0, size: str | int = "5MB",
                   progress: bool = True) -> dict:
    """Generate the synthetic world into `out_dir`; returns the summary that is also saved as world.json.

    `size` is the approximate size of the training text (corpus/*.txt together), e.g. "200KB", "5MB", "1GB"
    (50 KB – 2 GB). The world is written to a temporary directory next to `out_dir` and renamed into place, so an
    interrupted run never leaves a half world; an existing world in `out_dir` is replaced, any other non-empty
    directory is refused. Summary keys: seed, size_bytes, version, countries, counts, mentions, sections (bytes
    per corpus file), corpus_bytes, files (bytes per written file), out_dir.
    """
    size_bytes = parse_size(size)
    if not MIN_SIZE <= size_bytes <= MAX_SIZE:
        raise LmlabError(f"world size {size!r} is out of range: choose between 50KB and 2GB, e.g. --size 5MB")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise LmlabError(f"seed {seed!r} must be a non-negative integer, e.g. --seed 0")
    out = Path(out_dir)
    _check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        summary = _write_world(tmp, seed, size_bytes, progress)
        _move_into_place(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary["out_dir"] = str(out)
    return summary


def format_world_summary(summary: dict) -> str:
    """What `lmlab world` prints of `generate_world`'s summary: entities, facts and how often each is mentioned,
    edit requests and tasks, the corpus sections' sizes and the files written."""
    s = summary
    c, m = s["counts"], s["mentions"]
    return "\n".join([
        f"world: {s['out_dir']} (seed {s['seed']}, {human_bytes(s['corpus_bytes'])} of training text)",
        "  entities: " + ", ".join(f"{n} {kind}" for kind, n in c["entities"].items()),
        f"  facts: {c['static_facts']} static (each mentioned ≥{m['static_min']} times, mean {m['static_mean']}), "
        f"{c['temporal_facts']} temporal (outdated ×{m['outdated_mean']}, current ×{m['current_mean']} on average)",
        f"  edits: {c['edits']} requests; tasks: {len(c['task_items'])} files, "
        f"{sum(c['task_items'].values())} items",
        "  corpus: " + ", ".join(f"{name} {human_bytes(n)}" for name, n in s["sections"].items()),
        f"  files: {len(s['files']) + 1} written (see {s['out_dir']}/world.json)",
    ])


def _check_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise LmlabError(f"{out} exists and is not a directory: choose another --out")
    if out.is_dir() and any(out.iterdir()) and not is_world(out):
        raise LmlabError(f"{out} is not empty and holds no world: choose a new or empty --out directory "
                         f"(an existing world directory is regenerated in place)")


def _move_into_place(tmp: Path, out: Path) -> None:
    """Swap the finished world in with renames: at every moment `out` is either the old world or the new one
    (or, between the two renames, absent), never a half-written one."""
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, out)


def _scramble_vocabulary(world: World) -> list[str]:
    """Words of the training text the scrambling section may use (template and lexicon words that occur)."""
    used = {f.object for f in world.facts if f.object_kind in ("profession", "instrument", "species", "colour")}
    words = set(template_words(include_heldout=False)) | set(sentiment.phrase_words()) | used
    words.update(lexicon.SIZES + lexicon.THINGS + lexicon.PRODUCTS + lexicon.COLOURS)
    return scramble.word_pool(words)


def _write_section(path: Path, docs: Iterator[str], budget: int, bar) -> int:
    """Write documents separated by blank lines until `budget` bytes are reached; returns bytes written."""
    written, pending, pending_bytes = 0, [], 0
    with open(path, "w", encoding="ascii", newline="\n") as f:
        for doc in docs:
            pending.append(doc)
            n = len(doc) + 2  # ASCII text: characters = bytes; +2 for the blank-line separator
            written += n
            pending_bytes += n
            if written >= budget:
                break
            if pending_bytes >= _CHUNK_BYTES:
                f.write("\n\n".join(pending) + "\n\n")
                bar.update(pending_bytes)
                pending, pending_bytes = [], 0
        f.write("\n\n".join(pending) + "\n")
    bar.update(pending_bytes)
    return written - 1  # the last document ends with one newline, not a blank line


def _write_world(d: Path, seed: int, size_bytes: int, progress: bool) -> dict:
    from tqdm import tqdm  # imported here so `import lmlab.world` stays light

    (d / "corpus").mkdir(parents=True)
    (d / "tasks").mkdir()
    n_countries = countries_for_size(size_bytes)
    world = build_world(_rng(seed, "world"), n_countries)
    companies = world.entities["company"]

    # Evaluation items first, so the training text can leave them out.
    arith_items = arithmetic.eval_items(_rng(seed, "arithmetic-eval"))
    arith_held = {item["prompt"] for items in arith_items.values() for item in items}
    train_words, eval_words = scramble.split_words(_rng(seed, "scramble-split"), _scramble_vocabulary(world))
    scramble_items = scramble.eval_items(_rng(seed, "scramble-eval"), eval_words)
    sentiment_items = sentiment.eval_items(_rng(seed, "sentiment-eval"), companies)
    sentiment_held = {item["text"] for item in sentiment_items}

    n_facts = len(world.facts)
    static_mentions, outdated_mentions, current_mentions = [0] * n_facts, [0] * n_facts, [0] * n_facts
    streams = {
        "facts": static_documents(world, _rng(seed, "facts-text"), static_mentions),
        "temporal": temporal_documents(world, _rng(seed, "temporal-text"), outdated_mentions, current_mentions),
        "grammar": grammar_documents(world, _rng(seed, "grammar-text")),
        "arithmetic": arithmetic.arithmetic_documents(_rng(seed, "arithmetic-text"), arith_held),
        "scramble": scramble.scramble_documents(_rng(seed, "scramble-text"), train_words),
        "sentiment": sentiment.sentiment_documents(_rng(seed, "sentiment-text"), companies, sentiment_held),
    }
    sections = {}
    with tqdm(total=size_bytes, unit="B", unit_scale=True, desc="lmlab world", file=sys.stderr,
              disable=not progress or not sys.stderr.isatty()) as bar:
        for name, share in SECTION_SHARES.items():
            sections[f"{name}.txt"] = _write_section(d / "corpus" / f"{name}.txt", streams[name],
                                                     round(size_bytes * share), bar)

    by_relation = records.facts_by_relation(world)
    rec_rng = _rng(seed, "fact-records")

    def fact_records():
        for i, f in enumerate(world.facts):
            mentions = ({"outdated": outdated_mentions[i], "current": current_mentions[i]} if f.temporal
                        else {"train": static_mentions[i]})
            yield records.fact_record(world, i, by_relation, rec_rng, mentions)

    files = {"facts.jsonl": write_jsonl(d / "facts.jsonl", fact_records())}
    edits = edit_requests(world, _rng(seed, "edits"))
    files["edits.jsonl"] = write_jsonl(d / "edits.jsonl", edits)

    tasks = {
        "facts_train": records.fact_task_items(world, _rng(seed, "task-facts-train"), heldout=False),
        "facts_paraphrase": records.fact_task_items(world, _rng(seed, "task-facts-paraphrase"), heldout=True),
        "temporal": records.temporal_task_items(world, _rng(seed, "task-temporal")),
        "sentiment": sentiment_items,
    }
    tasks.update({f"arithmetic_{key}": items for key, items in arith_items.items()})
    tasks.update({f"scramble_{key}": items for key, items in scramble_items.items()})
    for name, items in tasks.items():
        files[f"tasks/{name}.jsonl"] = write_jsonl(d / "tasks" / f"{name}.jsonl", items)
    files.update({f"corpus/{name}": n for name, n in sections.items()})

    static = [i for i, f in enumerate(world.facts) if not f.temporal]
    temporal = [i for i, f in enumerate(world.facts) if f.temporal]
    train_counts = [static_mentions[i] for i in static]
    summary = {
        "generator": GENERATOR_NAME, "version": VERSION, "seed": seed, "size_bytes": size_bytes,
        "countries": n_countries,
        "counts": {
            "entities": {kind: len(names) for kind, names in world.entities.items()},
            "facts": n_facts, "static_facts": len(static), "temporal_facts": len(temporal), "edits": len(edits),
            "task_items": {name: len(items) for name, items in tasks.items()},
        },
        "mentions": {
            "static_min": min(train_counts), "static_mean": round(sum(train_counts) / len(train_counts), 1),
            "outdated_mean": round(sum(outdated_mentions[i] for i in temporal) / max(1, len(temporal)), 1),
            "current_mean": round(sum(current_mentions[i] for i in temporal) / max(1, len(temporal)), 1),
        },
        "sections": sections, "corpus_bytes": sum(sections.values()),
        "files": dict(sorted(files.items())),
    }
    # world.json last: its presence marks the directory as a complete world.
    # (A plain write is enough: the whole directory is still a temporary one that gets renamed into place.)
    (d / "world.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return dict(summary)
