"""`instruction_set`: instruction → response examples about a world, for instruction tuning and its evaluation.

It reads a world directory (facts.jsonl and the task files, which it never changes) and writes a new directory:

    train.jsonl              tuning examples: the tuning half of each type's items, in every training phrasing
    heldout_phrasings.jsonl  the other half of the items, each in a phrasing never used for tuning
    seen_phrasings.jsonl     the same held-out items in the first training phrasing (new items, known wording)
    heldout_type.jsonl       every item of the held-out type (never in train.jsonl), in all its phrasings
    info.json                the arguments, the types, counts per file and type

Each line is {"instruction", "input" (when the type has one), "response", "type", "phrasing": "seen"|"heldout"}.
Types (`TYPES`): fact questions ("Which city is the capital of Braria?"), 2-digit arithmetic questions, unscramble
and reverse a word, sentiment of a review, and "which value is current?" for facts that changed. Items come from
the world: its static facts, its temporal facts (current vs outdated value), its held-out arithmetic, scrambling
and sentiment evaluation items (never in the training text), with extra arithmetic problems drawn for tuning.
Items are split in halves by a seeded draw; the same arguments always give the same bytes.
"""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path
from typing import Iterator, NamedTuple

from lmlab.errors import LmlabError
from lmlab.utils import atomic_write_text
from lmlab.world.io import load_facts, load_task, load_world_info

FORMAT = "lmlab.instruction_set"
VERSION = 1
EVAL_ITEMS = 100          # held-out items per type (at most): enough for accuracy ± 5 points, quick to score
ARITHMETIC_TUNING = 100   # tuning problems per operation, drawn apart from the world's held-out problems
DEFAULT_HELDOUT_TYPE = "current_value"

# Static relation → (training phrasings, held-out phrasing); `{s}` is the subject, the response is the object.
FACT_QUESTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "capital_of": (("Which city is the capital of {s}?", "What is the capital of {s}?"),
                   ("From which city is {s} governed?",)),
    "language_of": (("Which language is spoken in {s}?", "What language do people in {s} speak?"),
                    ("What is the main language of {s}?",)),
    "located_in": (("Which country is {s} in?", "In which country is the city of {s}?"),
                   ("Where can the city {s} be found?",)),
    "born_in": (("Where was {s} born?", "In which city was {s} born?"), ("What is the hometown of {s}?",)),
    "citizen_of": (("Which country is {s} a citizen of?", "What is the nationality of {s}?"),
                   ("Which country issued the passport of {s}?",)),
    "works_as": (("What does {s} work as?", "What is the profession of {s}?"), ("What job does {s} have?",)),
    "plays": (("Which instrument does {s} play?", "What instrument does {s} practise?"),
              ("What instrument is {s} good at?",)),
    "founded_by": (("Who founded {s}?", "Who is the founder of {s}?"), ("Who started the company {s}?",)),
    "headquartered_in": (("Where is {s} headquartered?", "In which city is {s} based?"),
                         ("Where is the head office of {s}?",)),
    "species_of": (("What kind of animal is {s}?", "Which species is {s}?"), ("What sort of creature is {s}?",)),
    "colour_of": (("What colour is {s}?", "What is the colour of the fur of {s}?"), ("Which colour does {s} have?",)),
}
# Temporal relation → the noun phrase of its value, for "which value is current?" questions.
CURRENT_NOUNS = {"leader_of": "the leader of {s}", "ceo_of": "the CEO of {s}",
                 "lives_in": "the city where {s} lives"}
CURRENT_QUESTIONS = (("Which is {np} today?", "Choose the current value: who or what is {np}?"),
                     ("Which of the two is {np} at present?",))
ARITHMETIC_QUESTIONS = {
    "plus": (("What is {a} plus {b}?", "Add {a} and {b}."), ("Calculate the sum of {a} and {b}.",)),
    "minus": (("What is {a} minus {b}?", "Subtract {b} from {a}."), ("How much is {a} take away {b}?",)),
}
UNSCRAMBLE = (("Unscramble the letters into a word.", "Put the letters back in order to make a word."),
              ("Rearrange these letters to spell a word.",))
REVERSE = (("Write the word backwards.", "Reverse the letters of the word."),
           ("Spell this word from its last letter to its first.",))
SENTIMENT = (("Is this review positive or negative?", "Label the sentiment of the review as positive or negative."),
             ("Does the writer of this review like the product? Answer positive or negative.",))
TYPES = ("fact_question", "arithmetic", "unscramble", "reverse", "sentiment", "current_value")
_ARITHMETIC_ITEM = re.compile(r"What is (-?\d+) (plus|minus) (-?\d+)\?")


class Item(NamedTuple):
    """One question of a type before phrasing: phrasings are format strings over `values`."""

    tuning: bool                  # in the tuning half (else the evaluation half)
    seen: tuple[str, ...]         # training phrasings
    heldout: tuple[str, ...]      # held-out phrasings
    values: dict[str, str]
    input: str
    response: str


def _rng(seed: int, part: str) -> random.Random:
    return random.Random(f"lmlab.world.instructions:{seed}:{part}")


def _halves(rng: random.Random, n: int) -> list[bool]:
    """A seeded split of n items: True for the tuning half (the first ⌈n/2⌉ of a shuffled order)."""
    order = list(range(n))
    rng.shuffle(order)
    tuning = [False] * n
    for i in order[:(n + 1) // 2]:
        tuning[i] = True
    return tuning


def _fact_items(facts: list[dict], rng: random.Random) -> list[Item]:
    static = [f for f in facts if not f.get("temporal") and f["relation"] in FACT_QUESTIONS]
    return [Item(t, *FACT_QUESTIONS[f["relation"]], {"s": f["subject"]}, "", f["object"])
            for f, t in zip(static, _halves(rng, len(static)))]


def _current_items(facts: list[dict], rng: random.Random) -> list[Item]:
    temporal = [f for f in facts if f.get("temporal") and f["relation"] in CURRENT_NOUNS and f.get("outdated_object")]
    items = []
    for f, t in zip(temporal, _halves(rng, len(temporal))):
        pair = [f["object"], f["outdated_object"]]
        rng.shuffle(pair)
        np_ = CURRENT_NOUNS[f["relation"]].format(s=f["subject"])
        items.append(Item(t, *CURRENT_QUESTIONS, {"np": np_}, f"{pair[0]} or {pair[1]}", f["object"]))
    return items


def _arithmetic_items(world_dir: Path, rng: random.Random) -> list[Item]:
    """Tuning problems drawn here; evaluation problems from the world's held-out 2D+ / 2D- items."""
    items: list[Item] = []
    held: set[tuple[int, int, str]] = set()
    for task in ("arithmetic_2da", "arithmetic_2ds"):
        for rec in load_task(world_dir, task)[:EVAL_ITEMS // 2]:
            m = _ARITHMETIC_ITEM.search(rec["prompt"])
            if m is None:
                raise LmlabError(f"{world_dir}/tasks/{task}.jsonl: unexpected prompt {rec['prompt']!r}")
            a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
            held.add((a, b, op))
            items.append(Item(False, *ARITHMETIC_QUESTIONS[op], {"a": str(a), "b": str(b)}, "", rec["target"]))
    for op in ARITHMETIC_QUESTIONS:
        drawn = 0
        while drawn < ARITHMETIC_TUNING:
            a, b = rng.randrange(100), rng.randrange(100)
            if (a, b, op) in held:
                continue
            held.add((a, b, op))
            value = a + b if op == "plus" else a - b
            items.append(Item(True, *ARITHMETIC_QUESTIONS[op], {"a": str(a), "b": str(b)}, "", str(value)))
            drawn += 1
    return items


def _word_items(world_dir: Path, rng: random.Random) -> tuple[list[Item], list[Item]]:
    """(unscramble, reverse) items over the world's held-out scrambling words (never in its training text). The
    words are split in halves (a word has several anagram items): every anagram of a word and its one reversal
    go to the same half."""
    recs = load_task(world_dir, "scramble_unscramble_anagrams1")
    words = list(dict.fromkeys(rec["word"] for rec in recs))
    tuning = dict(zip(words, _halves(rng, len(words))))
    unscramble = [Item(tuning[rec["word"]], *UNSCRAMBLE, {}, rec["query"].removesuffix("=").strip(), rec["word"])
                  for rec in recs]
    reverse = [Item(tuning[w], *REVERSE, {}, w, w[::-1]) for w in words]
    return unscramble, reverse


def _sentiment_items(world_dir: Path, rng: random.Random) -> list[Item]:
    recs = load_task(world_dir, "sentiment")
    return [Item(t, *SENTIMENT, {}, rec["text"], rec["target"]) for rec, t in zip(recs, _halves(rng, len(recs)))]


def _record(kind: str, phrasing: str, template: str, item: Item) -> dict:
    rec = {"instruction": template.format(**item.values), "response": item.response, "type": kind,
           "phrasing": phrasing}
    if item.input:
        rec["input"] = item.input
    return rec


def _records(kind: str, items: list[Item], heldout_type: str, rng: random.Random) -> Iterator[tuple[str, dict]]:
    """(file stem, record) for every example of one type."""
    if kind == heldout_type:
        for item in items:
            for template in item.seen:
                yield "heldout_type", _record(kind, "seen", template, item)
            for template in item.heldout:
                yield "heldout_type", _record(kind, "heldout", template, item)
        return
    for item in items:
        if item.tuning:
            for template in item.seen:
                yield "train", _record(kind, "seen", template, item)
    evaluated = [item for item in items if not item.tuning]
    for item in rng.sample(evaluated, min(EVAL_ITEMS, len(evaluated))):
        yield "heldout_phrasings", _record(kind, "heldout", rng.choice(item.heldout), item)
        yield "seen_phrasings", _record(kind, "seen", item.seen[0], item)


def instruction_set(world_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
                    heldout_type: str = DEFAULT_HELDOUT_TYPE, seed: int = 0) -> dict:
    """Write the instruction set of the world in `world_dir` into `out_dir` (see the module docstring); returns the
    summary also saved as info.json (counts per file and per type). heldout_type: one of TYPES, kept out of
    train.jsonl. The world directory is only read. LmlabError for a directory that is no world, an unknown type,
    or an `out_dir` that holds other files."""
    if heldout_type not in TYPES:
        raise LmlabError(f"unknown instruction type {heldout_type!r}; choose one of {', '.join(TYPES)}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise LmlabError(f"seed {seed!r} must be a non-negative integer")
    world_dir, out = Path(world_dir), Path(out_dir)
    world = load_world_info(world_dir)
    _check_out(out)
    facts = load_facts(world_dir)
    unscramble, reverse = _word_items(world_dir, _rng(seed, "words"))
    items = {
        "fact_question": _fact_items(facts, _rng(seed, "facts")),
        "arithmetic": _arithmetic_items(world_dir, _rng(seed, "arithmetic")),
        "unscramble": unscramble, "reverse": reverse,
        "sentiment": _sentiment_items(world_dir, _rng(seed, "sentiment")),
        "current_value": _current_items(facts, _rng(seed, "current")),
    }
    files: dict[str, list[dict]] = {"train": [], "heldout_phrasings": [], "seen_phrasings": [], "heldout_type": []}
    for kind in TYPES:
        for stem, rec in _records(kind, items[kind], heldout_type, _rng(seed, f"eval-{kind}")):
            files[stem].append(rec)
    _rng(seed, "order").shuffle(files["train"])  # types mixed: any slice (e.g. a validation tenth) holds them all
    counts = {stem: {kind: sum(r["type"] == kind for r in recs) for kind in TYPES} for stem, recs in files.items()}
    summary = {"format": FORMAT, "version": VERSION, "seed": seed, "heldout_type": heldout_type, "types": list(TYPES),
               "world": {"seed": world["seed"], "size_bytes": world["size_bytes"]},
               "counts": {stem: {k: v for k, v in c.items() if v} for stem, c in counts.items()}}
    out.mkdir(parents=True, exist_ok=True)
    for stem, recs in files.items():
        atomic_write_text(out / f"{stem}.jsonl",
                          "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in recs))
    atomic_write_text(out / "info.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")  # last: marks done
    return summary


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise LmlabError(f"{out} exists and is not a directory: choose another --out")
    if out.is_dir() and any(out.iterdir()):
        try:
            ours = json.loads((out / "info.json").read_text(encoding="utf-8")).get("format") == FORMAT
        except (OSError, ValueError, AttributeError):
            ours = False
        if not ours:
            raise LmlabError(f"{out} is not empty and holds no instruction set: choose a new or empty --out")
