"""The task format: a definition close to lm-evaluation-harness's YAML, and prompt construction as in GPT-3.

A task is a list of documents (dicts, e.g. JSONL lines) plus a `TaskConfig` saying how to turn a document into a
prompt and an answer. Templates are Python format strings over the document's fields: `"Q: {question} A:"`.

Prompt of an item with K shots (Brown et al. 2020, §2; lm-evaluation-harness's `fewshot_context`):

    description + Σ_k [ text(ex_k) + target_delimiter + target(ex_k) + fewshot_delimiter ] + text(doc)

and the scored continuation is `target_delimiter + target(doc)` (for multiple choice: `target_delimiter + choice`).
The K solved examples come from the `fewshot_split` documents (default: the task's own documents, never the item
being scored), drawn by a generator seeded with (seed, task name, item index): the same item gets the same
examples whatever `--limit`, batch size or order of evaluation.

YAML definition (every key but `task` and the data is optional; defaults shown):

    task: my_task
    dataset_path: items.jsonl        # or data_files: {test: a.jsonl, train: b.jsonl}; paths relative to the YAML
    test_split: test
    fewshot_split: null              # a key of data_files, e.g. train (default: test_split, minus the item)
    output_type: generate_until      # loglikelihood | multiple_choice | generate_until | loglikelihood_rolling
    description: ""                  # template placed once before the examples
    doc_to_text: "{prompt}"
    doc_to_target: "{target}"        # multiple choice: an index ("{label}") or the text of the right choice
    doc_to_choice: null              # list of templates, or the name of a field holding the list of choices
    target_delimiter: " "
    fewshot_delimiter: "\\n\\n"
    num_fewshot: 0
    seed: 1234
    until: ["\\n\\n"]                # generate_until: stop strings (default: [fewshot_delimiter])
    max_gen_toks: 32
    group_by: null                   # a field: also report every metric per value of it
    group: null                      # a group name: tasks sharing it also get one row with the unweighted mean of
                                     # their metrics (lm-evaluation-harness's group, e.g. blimp over its paradigms)
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from lmlab.errors import LmlabError
from lmlab.utils import iter_jsonl

OUTPUT_TYPES = ("loglikelihood", "multiple_choice", "generate_until", "loglikelihood_rolling")


@dataclass
class TaskConfig:
    """How documents become prompts and answers (the keys of a task YAML; see the module docstring)."""

    task: str                                   # the task's name
    output_type: str = "generate_until"         # one of OUTPUT_TYPES
    doc_to_text: str = "{prompt}"               # template: the prompt part of a document
    doc_to_target: str = "{target}"             # template: the answer (multiple choice: index or choice text)
    doc_to_choice: list[str] | str | None = None  # templates of the choices, or a field holding a list of choices
    description: str = ""                       # template placed once, before the few-shot examples
    target_delimiter: str = " "                 # between a prompt and its answer
    fewshot_delimiter: str = "\n\n"             # after each solved example
    num_fewshot: int = 0                        # default K when the caller gives no shot counts
    seed: int = 1234                            # seed of the few-shot draws
    until: list[str] | None = None              # generate_until stop strings (None: [fewshot_delimiter])
    max_gen_toks: int = 32                      # generate_until: at most this many new tokens
    group_by: str | None = None                 # also report metrics per value of this document field
    group: str | None = None                    # also report the mean of the metrics of the tasks of this group
    summary: str = ""                           # one line for `lmlab eval list`

    def __post_init__(self) -> None:
        if self.output_type not in OUTPUT_TYPES:
            raise LmlabError(f"task {self.task}: output_type {self.output_type!r} is not one of "
                             f"{', '.join(OUTPUT_TYPES)}")
        if self.output_type == "multiple_choice" and not self.doc_to_choice:
            raise LmlabError(f"task {self.task}: multiple_choice needs doc_to_choice (a list of templates or a field)")
        if isinstance(self.until, str):
            self.until = [self.until]
        if self.max_gen_toks < 1:
            raise LmlabError(f"task {self.task}: max_gen_toks must be at least 1")

    @property
    def stop(self) -> list[str]:
        return list(self.until) if self.until is not None else [self.fewshot_delimiter]


def render(template: str, doc: dict, *, task: str = "?") -> str:
    """Fill a `{field}` format template from a document; a missing field is an LmlabError naming it."""
    try:
        return template.format_map(doc)
    except KeyError as e:
        raise LmlabError(f"task {task}: template {template!r} uses field {e.args[0]!r}, which the document lacks "
                         f"(it has: {', '.join(sorted(doc))})") from None
    except (ValueError, IndexError) as e:
        raise LmlabError(f"task {task}: bad template {template!r} ({e})") from None


@dataclass
class Task:
    """A task: its config, the documents to score and the pool of few-shot examples (None: `docs` themselves).
    `check(doc, prediction) -> bool`, when set, judges generated answers that have several right forms (reported
    as the `valid` metric beside `exact_match`)."""

    config: TaskConfig
    docs: list[dict]
    fewshot_docs: list[dict] | None = None
    check: Callable[[dict, str], bool] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.config.task

    # --- document → strings ------------------------------------------------------------------------------------
    def text(self, doc: dict) -> str:
        return render(self.config.doc_to_text, doc, task=self.name)

    def choices(self, doc: dict) -> list[str]:
        spec = self.config.doc_to_choice
        if isinstance(spec, str):
            if spec not in doc or not isinstance(doc[spec], list):
                raise LmlabError(f"task {self.name}: doc_to_choice names field {spec!r}, which is not a list in "
                                 f"the document")
            return [str(c) for c in doc[spec]]
        return [render(t, doc, task=self.name) for t in (spec or [])]

    def gold(self, doc: dict) -> int:
        """Index of the right choice (multiple choice): doc_to_target renders to an index or a choice's text."""
        value = render(self.config.doc_to_target, doc, task=self.name)
        choices = self.choices(doc)
        if value.strip().lstrip("-").isdigit():
            idx = int(value)
            if not 0 <= idx < len(choices):
                raise LmlabError(f"task {self.name}: answer index {idx} is out of range for {len(choices)} choices")
            return idx
        if value not in choices:
            raise LmlabError(f"task {self.name}: answer {value!r} is not one of the choices {choices}")
        return choices.index(value)

    def target(self, doc: dict) -> str:
        """The answer text (multiple choice: the right choice's text)."""
        if self.config.output_type == "multiple_choice":
            return self.choices(doc)[self.gold(doc)]
        return render(self.config.doc_to_target, doc, task=self.name)

    # --- prompts -----------------------------------------------------------------------------------------------
    def fewshot_examples(self, index: int, k: int, seed: int | None = None) -> list[dict]:
        """The k solved examples shown before item `index`: a seeded draw from the few-shot pool that never holds
        the item itself (when the pool is the task's own documents)."""
        if k <= 0:
            return []
        pool = self.docs if self.fewshot_docs is None else self.fewshot_docs
        same = self.fewshot_docs is None
        available = len(pool) - (1 if same else 0)
        if k > available:
            raise LmlabError(f"task {self.name}: {k} shots asked for but only {available} examples are available")
        seed = self.config.seed if seed is None else seed
        rng = random.Random(f"lmlab.evaluation:{seed}:{self.name}:{index}")
        picked = rng.sample(range(len(pool)), k + 1 if same else k)
        if same:
            picked = [i for i in picked if i != index][:k]
        return [pool[i] for i in picked]

    def context(self, index: int, k: int, seed: int | None = None) -> str:
        """The full prompt of item `index` with k solved examples (see the module docstring)."""
        c = self.config
        doc = self.docs[index]
        parts = [render(c.description, doc, task=self.name) if c.description else ""]
        for ex in self.fewshot_examples(index, k, seed):
            parts.append(self.text(ex) + c.target_delimiter + self.target(ex) + c.fewshot_delimiter)
        parts.append(self.text(doc))
        return "".join(parts)


# ============================================================================================ reading files ===
def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Documents of a JSONL file (one object per line; blank lines skipped). Errors name the file and line."""
    return [rec for _, rec in iter_jsonl(path, missing=f"task data file {path} does not exist")]


def load_task_yaml(path: str | os.PathLike) -> Task:
    """A task from a YAML (or JSON) definition whose documents are JSONL files (see the module docstring)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise LmlabError(f"task definition {path} does not exist")
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise LmlabError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(spec, dict) or "task" not in spec:
        raise LmlabError(f"{path}: a task definition is a mapping with at least `task:` and `dataset_path:`")
    data_files = spec.pop("data_files", None) or {}
    if "dataset_path" in spec:
        data_files = {**data_files, spec.get("test_split", "test"): spec.pop("dataset_path")}
    test_split = spec.pop("test_split", "test")
    fewshot_split = spec.pop("fewshot_split", None)
    if test_split not in data_files:
        raise LmlabError(f"{path}: no data file for the test split {test_split!r}: give dataset_path or data_files")
    known = {f.name for f in fields(TaskConfig)}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise LmlabError(f"{path}: unknown keys {', '.join(unknown)} (known: {', '.join(sorted(known))}, "
                         "dataset_path, data_files, test_split, fewshot_split)")
    config = TaskConfig(**spec)

    def read(split: str) -> list[dict]:
        if split not in data_files:
            raise LmlabError(f"{path}: fewshot_split {split!r} has no entry in data_files")
        return read_jsonl(path.parent / data_files[split])

    docs = read(test_split)
    fewshot = read(fewshot_split) if fewshot_split and fewshot_split != test_split else None
    return Task(config, docs, fewshot)


def task_summary(task: Task) -> dict[str, Any]:
    """The settings of a task as recorded in results JSON."""
    c = task.config
    return {"output_type": c.output_type, "description": c.description, "doc_to_text": c.doc_to_text,
            "doc_to_target": c.doc_to_target, "doc_to_choice": c.doc_to_choice,
            "target_delimiter": c.target_delimiter, "fewshot_delimiter": c.fewshot_delimiter,
            "until": c.stop if c.output_type == "generate_until" else None, "seed": c.seed,
            "n_docs": len(task.docs), "group": c.group,
            "n_fewshot_docs": len(task.fewshot_docs) if task.fewshot_docs is not None else None}
