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
import sys
from collections.abc import Iterator
from pathlib import Path

from lmlab.errors import LmlabError
from lmlab.utils import human_bytes, parse_size, staged_directory
from lmlab.world import arithmetic, lexicon, records, scramble, sentiment
from lmlab.world.edits import edit_requests
from lmlab.world.factcorpus import static_documents, temporal_documents
from lmlab.world.extraction import FactPlan, check_unseen, fact_plan
from lmlab.world.facts import STATIC_FACTS_PER_COUNTRY, World, build_world
from lmlab.world.grammar import grammar_documents
from lmlab.world.io import GENERATOR_NAME, is_world, write_jsonl
from lmlab.world.options import WorldOptions
from lmlab.world.relations import RELATION_BY_NAME, template_words

VERSION = 2  # 2: held-out paraphrase templates use only words of the training text
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
                   options: WorldOptions | None = None, progress: bool = True) -> dict:
    """Generate the synthetic world into `out_dir`; returns the summary that is also saved as world.json.

    `size` is the approximate size of the training text (corpus/*.txt together), e.g. "200KB", "5MB", "1GB"
    (50 KB – 2 GB). The world is written to a temporary directory next to `out_dir` and renamed into place, so an
    interrupted run never leaves a half world; an existing world in `out_dir` is replaced, any other non-empty
    directory is refused. `options` (WorldOptions; default: today's world) choose how facts.txt states the facts
    and whether the world has an extraction split. Summary keys: seed, size_bytes, version, countries, counts,
    mentions, sections (bytes per corpus file), corpus_bytes, files (bytes per written file), out_dir, and
    options (only the fields that differ from the defaults, only when any does).
    """
    size_bytes = parse_size(size)
    if not MIN_SIZE <= size_bytes <= MAX_SIZE:
        raise LmlabError(f"world size {size!r} is out of range: choose between 50KB and 2GB, e.g. --size 5MB")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise LmlabError(f"seed {seed!r} must be a non-negative integer, e.g. --seed 0")
    options = WorldOptions() if options is None else options
    if not isinstance(options, WorldOptions):
        raise LmlabError(f"options must be a lmlab.world.WorldOptions, got {type(options).__name__}")
    out = Path(out_dir)
    _check_target(out)
    with staged_directory(out) as tmp:
        summary = _write_world(tmp, seed, size_bytes, options, progress)
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
    ] + (["  options: " + ", ".join(f"{k}={v}" for k, v in s["options"].items())] if s.get("options") else []))


def _check_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise LmlabError(f"{out} exists and is not a directory: choose another --out")
    if out.is_dir() and any(out.iterdir()) and not is_world(out):
        raise LmlabError(f"{out} is not empty and holds no world: choose a new or empty --out directory "
                         f"(an existing world directory is regenerated in place)")


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


def _write_world(d: Path, seed: int, size_bytes: int, options: WorldOptions, progress: bool) -> dict:
    (d / "corpus").mkdir(parents=True)
    (d / "tasks").mkdir()
    n_countries = countries_for_size(size_bytes)
    world = build_world(_rng(seed, "world"), n_countries)
    plan = fact_plan(world, options, _rng(seed, "facts-forms"), _rng(seed, "extraction-split"),
                     _rng(seed, "name-variants"))
    held_out = _HeldOut(world, seed)  # evaluation items first, so the training text can leave them out
    mentions = _Mentions(len(world.facts), questions=options.extraction)
    sections = _write_corpus(d / "corpus", world, seed, size_bytes, held_out, mentions, plan, progress)
    files = {"facts.jsonl": write_jsonl(d / "facts.jsonl", _fact_records(world, seed, mentions, plan))}
    edits = edit_requests(world, _rng(seed, "edits"))
    files["edits.jsonl"] = write_jsonl(d / "edits.jsonl", edits)
    tasks = held_out.tasks(world, seed, plan)
    if options.extraction:
        check_unseen("facts_extract", tasks["facts_extract"], d / "corpus")
    if options.name_variants:  # a variant inside a train template could spell out a held-out paraphrase
        check_unseen("facts_paraphrase", tasks["facts_paraphrase"], d / "corpus")
    for name, items in tasks.items():
        files[f"tasks/{name}.jsonl"] = write_jsonl(d / "tasks" / f"{name}.jsonl", items)
    files.update({f"corpus/{name}": n for name, n in sections.items()})
    summary = {
        "generator": GENERATOR_NAME, "version": VERSION, "seed": seed, "size_bytes": size_bytes,
        "countries": n_countries,
        "counts": {
            "entities": {kind: len(names) for kind, names in world.entities.items()},
            "facts": len(world.facts), "static_facts": len(mentions.static_facts(world)),
            "temporal_facts": len(mentions.temporal_facts(world)), "edits": len(edits),
            "task_items": {name: len(items) for name, items in tasks.items()},
        },
        "mentions": mentions.summary(world),
        "sections": sections, "corpus_bytes": sum(sections.values()),
        "files": dict(sorted(files.items())),
    }
    if options.non_default():  # recorded only when set, so today's world.json keeps its bytes
        summary["options"] = options.non_default()
    # world.json last: its presence marks the directory as a complete world.
    # (A plain write is enough: the whole directory is still a temporary one that gets renamed into place.)
    (d / "world.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return dict(summary)


class _HeldOut:
    """The evaluation items drawn before any training text: the text generators leave out exactly these."""

    def __init__(self, world: World, seed: int):
        self.arithmetic = arithmetic.eval_items(_rng(seed, "arithmetic-eval"))
        self.arithmetic_prompts = {item["prompt"] for items in self.arithmetic.values() for item in items}
        self.train_words, eval_words = scramble.split_words(_rng(seed, "scramble-split"),
                                                            _scramble_vocabulary(world))
        self.scramble = scramble.eval_items(_rng(seed, "scramble-eval"), eval_words)
        self.sentiment = sentiment.eval_items(_rng(seed, "sentiment-eval"), world.entities["company"])
        self.sentiment_texts = {item["text"] for item in self.sentiment}

    def tasks(self, world: World, seed: int, plan: FactPlan) -> dict[str, list[dict]]:
        """{task name: items} of every task file (tasks/NAME.jsonl). facts_train asks each fact in the forms the
        text states it in; facts_extract (extraction split only) asks every question form of each held-out fact."""
        def relation(i: int):
            return RELATION_BY_NAME[world.facts[i].relation]
        tasks = {
            "facts_train": records.fact_task_items(world, _rng(seed, "task-facts-train"), plan.forms.__getitem__),
            "facts_paraphrase": records.fact_task_items(world, _rng(seed, "task-facts-paraphrase"),
                                                        lambda i: relation(i).heldout),
            "temporal": records.temporal_task_items(world, _rng(seed, "task-temporal")),
            "sentiment": self.sentiment,
        }
        tasks.update({f"arithmetic_{key}": items for key, items in self.arithmetic.items()})
        tasks.update({f"scramble_{key}": items for key, items in self.scramble.items()})
        if plan.held_out:
            tasks["facts_extract"] = records.fact_task_items(
                world, _rng(seed, "task-facts-extract"), lambda i: relation(i).question,
                indices=plan.held_out_facts(world), every_form=True)
        return tasks


class _Mentions:
    """How often the corpus states each fact (by fact index): static facts, and temporal facts' outdated and
    current values. The text generators count into these lists as they write."""

    def __init__(self, n_facts: int, questions: bool = False):
        self.static, self.outdated, self.current = [0] * n_facts, [0] * n_facts, [0] * n_facts
        self.question = [0] * n_facts   # question-form mentions (extraction split: exposed subjects only)
        self.questions = questions      # whether facts.jsonl records them

    @staticmethod
    def static_facts(world: World) -> list[int]:
        return [i for i, f in enumerate(world.facts) if not f.temporal]

    @staticmethod
    def temporal_facts(world: World) -> list[int]:
        return [i for i, f in enumerate(world.facts) if f.temporal]

    def of(self, i: int, temporal: bool) -> dict[str, int]:
        """The mention counts of fact i, as facts.jsonl records them."""
        if temporal:
            return {"outdated": self.outdated[i], "current": self.current[i]}
        return {"train": self.static[i], "question": self.question[i]} if self.questions else {"train": self.static[i]}

    def summary(self, world: World) -> dict[str, float]:
        train_counts = [self.static[i] for i in self.static_facts(world)]
        temporal = self.temporal_facts(world)
        return {
            "static_min": min(train_counts), "static_mean": round(sum(train_counts) / len(train_counts), 1),
            "outdated_mean": round(sum(self.outdated[i] for i in temporal) / max(1, len(temporal)), 1),
            "current_mean": round(sum(self.current[i] for i in temporal) / max(1, len(temporal)), 1),
        }


def _write_corpus(corpus_dir: Path, world: World, seed: int, size_bytes: int, held_out: _HeldOut,
                  mentions: _Mentions, plan: FactPlan, progress: bool) -> dict[str, int]:
    """corpus/NAME.txt for every section, each its share of `size_bytes`; returns {file name: bytes written}."""
    from tqdm import tqdm  # imported here so `import lmlab.world` stays light

    companies = world.entities["company"]
    streams = {
        "facts": static_documents(world, _rng(seed, "facts-text"), mentions.static, plan, mentions.question),
        "temporal": temporal_documents(world, _rng(seed, "temporal-text"), mentions.outdated, mentions.current),
        "grammar": grammar_documents(world, _rng(seed, "grammar-text")),
        "arithmetic": arithmetic.arithmetic_documents(_rng(seed, "arithmetic-text"), held_out.arithmetic_prompts),
        "scramble": scramble.scramble_documents(_rng(seed, "scramble-text"), held_out.train_words),
        "sentiment": sentiment.sentiment_documents(_rng(seed, "sentiment-text"), companies,
                                                   held_out.sentiment_texts),
    }
    sections = {}
    with tqdm(total=size_bytes, unit="B", unit_scale=True, desc="lmlab world", file=sys.stderr,
              disable=not progress or not sys.stderr.isatty()) as bar:
        for name, share in SECTION_SHARES.items():
            sections[f"{name}.txt"] = _write_section(corpus_dir / f"{name}.txt", streams[name],
                                                     round(size_bytes * share), bar)
    return sections


def _fact_records(world: World, seed: int, mentions: _Mentions, plan: FactPlan) -> Iterator[dict]:
    """facts.jsonl's records, one per fact, with how often the corpus mentions it (and, for static facts, the
    plan's fields when the options are not the defaults)."""
    by_relation = records.facts_by_relation(world)
    rec_rng = _rng(seed, "fact-records")
    for i, f in enumerate(world.facts):
        rec = records.fact_record(world, i, by_relation, rec_rng, mentions.of(i, f.temporal))
        if not f.temporal:
            rec.update(plan.record_fields(i, world))
        yield rec

