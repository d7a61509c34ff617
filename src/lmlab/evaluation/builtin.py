"""Built-in tasks: GPT-3 arithmetic and word scrambling, the world's tasks, and readers for real data files.

Names (see `lmlab eval list` and docs/evaluation.md):
- `arithmetic_{2da,2ds,3da,3ds,4da,4ds,5da,5ds,2dm,1dc}` (aliases GPT-3's 2D+, 2D-, …, 2Dx, 1DC): 500 questions
  per task in the paper's format, `Q: What is 48 plus 76? A:` → ` 124`, generated from the seed by the world's
  generator (`lmlab.world.arithmetic`); with an explicit world dir, the world's held-out questions instead (never
  in its training text).
- `scramble_{unscramble,scramble}_{cycle_letters,anagrams1,anagrams2,random_insertion,reversed_words}`: GPT-3's
  word scrambling, and the reverse direction (scramble a given word by the rule); generated from the seed over an
  embedded list of English words, or the world's held-out items with an explicit world dir.
- world tasks (read from WORLD/tasks/*.jsonl): `facts_train`, `facts_paraphrase`, `facts_extract` (closed-book
  completion, exact match; facts_extract only in worlds made with `lmlab world --extraction`), `facts_train_mc`,
  `facts_paraphrase_mc` (4-way multiple choice), `temporal` (outdated vs current value, per prompt marker),
  `sentiment`.
- file-backed, as `NAME:PATH`: `sst2:` (GLUE TSV), `sentiment_labelled:` (UCI labelled sentences),
  `blimp:` (a paradigm JSONL, or a directory of them: one task per paradigm plus their mean, the group
  `blimp:DIRNAME`, as lm-evaluation-harness's `blimp`), `counterfact:` and `zsre:` (JSON lists), `text:` (perplexity
  of a text file's blank-line-separated documents).
Groups: `arithmetic`, `scramble`, `scramble_unscramble`, `scramble_scramble`, `world`.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lmlab.data.labelled import SENTIMENT_LABELS, read_labelled
from lmlab.errors import LmlabError
from lmlab.evaluation.tasks import Task, TaskConfig, load_task_yaml, read_jsonl
from lmlab.world import arithmetic as world_arithmetic
from lmlab.world import is_valid_scramble, is_world, list_tasks, load_task
from lmlab.world import scramble as world_scramble
from lmlab.world.english import WORDS as ENGLISH_WORDS

DEFAULT_WORLD_DIR = Path("runs/world")  # where `lmlab train` (no arguments) writes its world
DEFAULT_SEED = 1234


@dataclass
class TaskSource:
    """Where a built-in task's documents come from: `world` (a world dir, None when not given), `explicit_world`
    (the caller named it, so generated tasks read the world's held-out items), `seed`, and `path` (file tasks)."""

    world: Path | None = None
    explicit_world: bool = False
    seed: int = DEFAULT_SEED
    path: Path | None = None


@dataclass(frozen=True)
class BuiltinTask:
    name: str
    summary: str
    kind: str                              # "generated" | "world" | "file"
    build: Callable[[TaskSource], Task | list[Task]]  # a list: several tasks under one name (a directory)


REGISTRY: dict[str, BuiltinTask] = {}
ALIASES: dict[str, str] = {}
GROUPS: dict[str, list[str]] = {}


def _register(name: str, summary: str, kind: str, build: Callable[[TaskSource], Task | list[Task]]) -> None:
    REGISTRY[name] = BuiltinTask(name, summary, kind, build)


def _world_dir(src: TaskSource, task: str) -> Path:
    world = src.world if src.world is not None else DEFAULT_WORLD_DIR
    if not is_world(world):
        raise LmlabError(f"task {task} reads a world dir, and {world} is not one: pass --world DIR "
                         "(made by `lmlab world --out DIR` or `lmlab train`)")
    return Path(world)


# ================================================================================================ arithmetic ===
def _arithmetic_builder(key: str, name: str) -> Callable[[TaskSource], Task]:
    def build(src: TaskSource) -> Task:
        if src.explicit_world:
            docs = load_task(_world_dir(src, name), f"arithmetic_{key}")
        else:
            rng = random.Random(f"lmlab.evaluation:arithmetic:{src.seed}")
            docs = world_arithmetic.eval_items(rng)[key]
        # "\n" between solved examples: the layout of the world's arithmetic.txt (one question per line).
        cfg = TaskConfig(task=name, output_type="generate_until", fewshot_delimiter="\n", until=["\n"],
                         max_gen_toks=12, summary=REGISTRY[name].summary)
        return Task(cfg, docs)
    return build


for _key, (_gpt3, _digits, _op) in world_arithmetic.TASKS.items():
    _name = f"arithmetic_{_key}"
    _what = ("1-digit composite, 'Q: What is 6+(4*8)? A:'" if _op == "composite"
             else f"{_digits}-digit {_op}, 'Q: What is A {_op} B? A:'")
    _register(_name, f"GPT-3 arithmetic {_gpt3}: {_what} (generation, exact match)", "generated",
              _arithmetic_builder(_key, _name))
    ALIASES[_gpt3.lower()] = _name
GROUPS["arithmetic"] = [f"arithmetic_{k}" for k in world_arithmetic.TASKS]


# ================================================================================================ scrambling ===
def _scramble_builder(direction: str, rule: str, name: str) -> Callable[[TaskSource], Task]:
    def build(src: TaskSource) -> Task:
        if src.explicit_world:
            docs = load_task(_world_dir(src, name), f"scramble_{direction}_{rule}")
        else:
            rng = random.Random(f"lmlab.evaluation:scramble:{src.seed}")
            docs = world_scramble.eval_items(rng, world_scramble.word_pool(ENGLISH_WORDS))[f"{direction}_{rule}"]
        # The layout of the world's scramble.txt: the instruction line, then one "given = answer" per line.
        cfg = TaskConfig(task=name, output_type="generate_until", description="{description}\n",
                         doc_to_text="{query}", fewshot_delimiter="\n", until=["\n"], max_gen_toks=32,
                         summary=REGISTRY[name].summary)
        # Random rules have many right answers: the scramble direction is judged by the rule.
        return Task(cfg, docs, check=_follows_rule if direction == "scramble" else None)
    return build


def _follows_rule(doc: dict, prediction: str) -> bool:
    """Whether `prediction` scrambles the item's word by its task's rule (any of the rule's answers counts)."""
    return is_valid_scramble(doc["task"], doc["word"], prediction)


_RULES = {"cycle_letters": "cycled letters (CL)", "anagrams1": "anagram keeping first and last letter (A1)",
          "anagrams2": "anagram keeping first two and last two letters (A2)",
          "random_insertion": "random symbols inserted (RI)", "reversed_words": "reversed word (RW)"}
for _direction in world_scramble.DIRECTIONS:
    for _rule in world_scramble.TASKS:
        _name = f"scramble_{_direction}_{_rule}"
        _what = (f"recover the word from its {_RULES[_rule]}" if _direction == "unscramble"
                 else f"write the word as its {_RULES[_rule]}; any answer the rule allows counts as `valid`")
        _register(_name, f"GPT-3 word scrambling, {_direction}: {_what} (generation)", "generated",
                  _scramble_builder(_direction, _rule, _name))
    GROUPS[f"scramble_{_direction}"] = [f"scramble_{_direction}_{r}" for r in world_scramble.TASKS]
GROUPS["scramble"] = GROUPS["scramble_unscramble"] + GROUPS["scramble_scramble"]


# ============================================================================================== world tasks ===
def _world_builder(file: str, cfg_kwargs: dict, made_by: str | None = None) -> Callable[[TaskSource], Task]:
    """`made_by`: the `lmlab world` flag that writes this task file, for tasks only some worlds have."""
    def build(src: TaskSource) -> Task:
        name = cfg_kwargs["task"]
        world = _world_dir(src, name)
        if made_by is not None and file not in list_tasks(world):
            raise LmlabError(f"task {name}: world {world} has no {file} items; generate a world with "
                             f"`lmlab world --out DIR {made_by}` and pass --world DIR")
        docs = load_task(world, file)
        return Task(TaskConfig(**cfg_kwargs, summary=REGISTRY[name].summary), docs)
    return build


# Fact sentences in facts.txt follow each other as "... is Dremby. The capital of ...": ". " joins solved examples
# and "." ends an answer.
_FACT_GENERATION = dict(output_type="generate_until", fewshot_delimiter=". ", until=[".", "\n"], max_gen_toks=16)
for _file in ("facts_train", "facts_paraphrase"):
    _which = "training templates" if _file == "facts_train" else "held-out paraphrase templates"
    _register(_file, f"world: closed-book fact completion on {_which} (generation, exact match)",
              "world", _world_builder(_file, dict(task=_file, **_FACT_GENERATION)))
    _register(f"{_file}_mc", f"world: the facts of {_file} as 4-way multiple choice over same-relation objects",
              "world", _world_builder(_file, dict(task=f"{_file}_mc", output_type="multiple_choice",
                                                   doc_to_choice="choices", doc_to_target="{label}",
                                                   fewshot_delimiter=". ")))
_register("temporal", "world: outdated vs current value (multiple choice), reported per prompt marker "
          "(none/past/present/paraphrase)", "world",
          _world_builder("temporal", dict(task="temporal", output_type="multiple_choice", doc_to_choice="choices",
                                          doc_to_target="{label}", fewshot_delimiter=". ", group_by="marker")))
_register("sentiment", "world: sentiment of held-out reviews, 'Review: ...\\nSentiment:' → positive|negative",
          "world", _world_builder("sentiment", dict(task="sentiment", output_type="multiple_choice",
                                                    doc_to_choice="choices", doc_to_target="{label}")))
# Not in the `world` group: only worlds generated with --extraction have it.
_register("facts_extract", "world (--extraction only): question forms ('Q: What is the capital of X? A:') about "
          "held-out subjects, whose facts the text states only in other forms (generation, exact match)", "world",
          _world_builder("facts_extract", dict(task="facts_extract", **_FACT_GENERATION), made_by="--extraction"))
GROUPS["world"] = ["facts_train", "facts_paraphrase", "temporal", "sentiment"]


# =============================================================================================== file tasks ===
def _need_file(path: Path | None, name: str) -> Path:
    if path is None:
        raise LmlabError(f"task {name} reads a data file: write it as {name}:PATH")
    if not path.exists():
        raise LmlabError(f"task {name}: data file {path} does not exist")
    return path


def _read_tsv(path: Path) -> list[dict]:
    """`sentence<TAB>label` rows (label 0|1, header line optional) as {"sentence", "label"} docs, read by
    lmlab.data.labelled (the one reader of labelled files: SST-2, the UCI sentences, JSONL, world reviews)."""
    texts, labels, _ = read_labelled(path, label_names=SENTIMENT_LABELS, format="tsv")
    return [{"sentence": text, "label": label} for text, label in zip(texts, labels)]


# lm-evaluation-harness's SST-2 prompt (GLUE), reused for the labelled sentences.
_SENTIMENT_CFG = dict(output_type="multiple_choice",
                      doc_to_text="{sentence}\nQuestion: Is this sentence positive or negative?\nAnswer:",
                      doc_to_choice=list(SENTIMENT_LABELS), doc_to_target="{label}")


def _build_sst2(src: TaskSource) -> Task:
    path = _need_file(src.path, "sst2")
    return Task(TaskConfig(task=f"sst2:{path.stem}", **_SENTIMENT_CFG), _read_tsv(path))


def _build_labelled(src: TaskSource) -> Task:
    path = _need_file(src.path, "sentiment_labelled")
    return Task(TaskConfig(task=f"sentiment_labelled:{path.stem}", **_SENTIMENT_CFG), _read_tsv(path))


def _build_blimp(src: TaskSource) -> Task | list[Task]:
    """One task per paradigm file; a directory's paradigms form the group `blimp:DIRNAME`, reported as the
    unweighted mean of the paradigms' accuracies (lm-evaluation-harness's `blimp` group, weight_by_size: false).
    Files in the directory without BLiMP pairs (e.g. the published results' models_summary.jsonl) are skipped."""
    path = _need_file(src.path, "blimp")
    if not path.is_dir():
        task = _blimp_paradigm(path)
        if task is None:
            raise LmlabError(f"task blimp: {path} holds no BLiMP pairs (records with sentence_good/sentence_bad)")
        return task
    group = f"blimp:{path.name}"
    tasks = [t for f in sorted(path.glob("*.jsonl")) if (t := _blimp_paradigm(f, group)) is not None]
    if not tasks:
        raise LmlabError(f"task blimp: {path} holds no BLiMP paradigm file (*.jsonl records with "
                         "sentence_good/sentence_bad)")
    return tasks


def _blimp_paradigm(path: Path, group: str | None = None) -> Task | None:
    """The BLiMP task of one paradigm file (None when it has no pairs)."""
    docs = [d for d in read_jsonl(path) if "sentence_good" in d]
    if not docs:
        return None
    # lm-evaluation-harness's blimp: empty context, both sentences scored whole; right when P(good) > P(bad).
    cfg = TaskConfig(task=f"blimp:{path.stem}", output_type="multiple_choice", doc_to_text="",
                     doc_to_choice=["{sentence_good}", "{sentence_bad}"], doc_to_target="0", target_delimiter="",
                     group=group)
    return Task(cfg, docs)


def _read_json_list(path: Path, name: str) -> list[dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise LmlabError(f"task {name}: {path} is not valid JSON ({e})") from None
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise LmlabError(f"task {name}: {path} should hold a JSON list of objects")
    return data


def _fact_doc(rec: dict, path: Path, name: str) -> dict:
    """One (prompt, target) from CounterFact (EasyEdit or ROME layout) or zsRE (MEND layout)."""
    if "requested_rewrite" in rec:  # ROME's counterfact.json, and lmlab world's edits.jsonl
        rr = rec["requested_rewrite"]
        return {"prompt": rr["prompt"].replace("{}", rr["subject"]), "target": rr["target_true"]["str"]}
    if "ground_truth" in rec and "prompt" in rec:  # EasyEdit CounterFact
        truth = rec["ground_truth"]
        return {"prompt": rec["prompt"], "target": truth[0] if isinstance(truth, list) else truth}
    if "src" in rec and rec.get("answers"):  # MEND zsRE
        return {"prompt": rec["src"], "target": rec["answers"][0]}
    raise LmlabError(f"task {name}: {path} has a record that is neither CounterFact nor zsRE: keys {sorted(rec)}")


def _fact_builder(name: str) -> Callable[[TaskSource], Task]:
    def build(src: TaskSource) -> Task:
        path = _need_file(src.path, name)
        docs = [_fact_doc(r, path, name) for r in _read_json_list(path, name)]
        # is_greedy accuracy: the true object is what greedy decoding continues the prompt with.
        return Task(TaskConfig(task=f"{name}:{path.stem}", output_type="loglikelihood", fewshot_delimiter="\n"),
                    docs)
    return build


def _build_text(src: TaskSource) -> Task:
    path = _need_file(src.path, "text")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise LmlabError(f"task text: {path} is not UTF-8 text") from None
    docs = [{"text": block.strip()} for block in text.replace("\r\n", "\n").split("\n\n") if block.strip()]
    if not docs:
        raise LmlabError(f"task text: {path} is empty")
    return Task(TaskConfig(task=f"text:{path.stem}", output_type="loglikelihood_rolling", doc_to_target="{text}"),
                docs)


_register("sst2", "SST-2 GLUE TSV (sentence<TAB>label): positive/negative multiple choice; sst2:PATH", "file",
          _build_sst2)
_register("sentiment_labelled", "UCI labelled sentences (imdb/amazon/yelp_labelled.txt): positive/negative; "
          "sentiment_labelled:PATH", "file", _build_labelled)
_register("blimp", "BLiMP minimal pairs (paradigm JSONL, or a directory: each paradigm and their mean): acc = "
          "P(good) > P(bad); blimp:PATH", "file", _build_blimp)
_register("counterfact", "CounterFact JSON (EasyEdit or ROME layout): true object is greedy (acc) and its "
          "perplexity; counterfact:PATH", "file", _fact_builder("counterfact"))
_register("zsre", "zsRE JSON (MEND layout): first answer is greedy (acc) and its perplexity; zsre:PATH", "file",
          _fact_builder("zsre"))
_register("text", "perplexity, word/byte perplexity and bits per byte of a UTF-8 text file (documents separated by "
          "blank lines); text:PATH", "file", _build_text)


# ================================================================================================ resolving ===
def builtin_tasks() -> list[dict]:
    """[{"name", "summary", "kind"}] for every built-in task, in registry order (what `lmlab eval list` prints)."""
    return [{"name": t.name, "summary": t.summary, "kind": t.kind} for t in REGISTRY.values()]


def format_task_list() -> str:
    """What `lmlab eval list` prints: one line per built-in task (name, summary), then the groups."""
    tasks = builtin_tasks()
    width = max(len(t["name"]) for t in tasks)
    lines = [f"{t['name']:<{width}}  {t['summary']}" for t in tasks]
    lines.append("groups: " + "; ".join(f"{g} ({len(names)} tasks)" for g, names in GROUPS.items()))
    return "\n".join(lines)


def resolve_tasks(spec: str | list[str], *, world: str | os.PathLike | None = None,
                  seed: int = DEFAULT_SEED) -> list[Task]:
    """Tasks named by `spec`: comma-separated (or a list of) built-in names, GPT-3 aliases (2D+), groups
    (arithmetic, scramble, world, ...), `NAME:PATH` for file-backed tasks, or paths of task YAML files.

    world: the world dir of world tasks (default runs/world); given explicitly, the arithmetic and scrambling
    tasks use its held-out items instead of generating them from `seed`.
    """
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if not names:
        raise LmlabError("no task given: name one or more, e.g. --tasks arithmetic_2da,facts_train (see lmlab eval "
                         "list)")
    src = TaskSource(world=Path(world) if world is not None else None, explicit_world=world is not None, seed=seed)
    tasks: list[Task] = []
    for name in names:
        for n in GROUPS.get(name, [name]):
            tasks.extend(_resolve_one(n, src))
    seen: set[str] = set()
    for t in tasks:
        if t.name in seen:
            raise LmlabError(f"task {t.name} is named twice in --tasks")
        seen.add(t.name)
    return tasks


def _resolve_one(name: str, src: TaskSource) -> list[Task]:
    if name.endswith((".yaml", ".yml")):
        return [load_task_yaml(name)]
    base, sep, path = name.partition(":")
    if sep and base in REGISTRY and REGISTRY[base].kind == "file":
        built = REGISTRY[base].build(TaskSource(src.world, src.explicit_world, src.seed, Path(path)))
        return built if isinstance(built, list) else [built]
    key = name if name in REGISTRY else ALIASES.get(name.lower())
    if key is None:
        raise LmlabError(f"unknown task {name!r}: see `lmlab eval list` for names (file tasks are NAME:PATH, "
                         "task definitions end in .yaml)")
    if REGISTRY[key].kind == "file":
        raise LmlabError(f"task {key} reads a data file: write it as {key}:PATH")
    built = REGISTRY[key].build(src)
    return built if isinstance(built, list) else [built]
