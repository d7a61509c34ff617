"""`eval_instructions`: exact-match accuracy of a run on instruction files, per instruction type, zero- or few-shot
(what `lmlab eval instructions` does).

Each instruction type of a file (the `type` field; "instructions" when absent) becomes one generate_until task
named FILE_STEM:TYPE, grouped under FILE_STEM (its row is the unweighted mean over the types). The prompt of an
item is the prompt template's (lmlab.data.instructions):

    a run with a template (instruction-tuned):  "{instruction}\\n{input}\\nAnswer:<bos>"   → " response<eos>"
    a run without one (a base model):           "{instruction}\\n{input}\\nAnswer:"        → " response"

and K shots are lmlab eval's few-shot prompts (GPT-3 style: K solved items of the same type, each
`prompt + " " + response + "\\n\\n"`, before the item). Answers are greedy, end at <eos> or a newline, and count when
equal to the response after stripping white space.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from lmlab import __version__
from lmlab.data.instructions import PromptTemplate, load_template, read_instructions
from lmlab.errors import LmlabError
from lmlab.evaluation.harness import BOOTSTRAP_ITERS, DEFAULT_BATCH_SIZE
from lmlab.evaluation.suite import evaluate, parse_shots, task_groups, write_report
from lmlab.evaluation.tasks import Task, TaskConfig, task_summary

PROMPTS = ("auto", "template", "plain")
MAX_ANSWER_TOKENS = 24  # the longest world response (a reversed 12-letter word) is ~10 BPE tokens


def instruction_tasks(path: str | os.PathLike, template: PromptTemplate, *, marked: bool) -> list[Task]:
    """One generate_until task per instruction type of the JSONL file `path`, in order of first appearance; prompts
    from `template` with its response marker (marked=True, tuned runs) or without it (base models)."""
    path = Path(path)
    by_type: dict[str, list[dict]] = {}
    for ex in read_instructions(path):
        kind = str((ex.fields or {}).get("type", "instructions"))
        by_type.setdefault(kind, []).append({"prompt": template.prompt(ex.instruction, ex.input, marked=marked),
                                             "target": ex.response})
    return [Task(TaskConfig(task=f"{path.stem}:{kind}", output_type="generate_until",
                            target_delimiter=template.response_prefix, until=["\n"],
                            max_gen_toks=MAX_ANSWER_TOKENS, group=path.stem,
                            summary=f"{kind} instructions of {path.name} (exact match)"), docs)
            for kind, docs in by_type.items()]


def eval_instructions(run_dir: str | os.PathLike, data: str | os.PathLike | Sequence[str | os.PathLike], *,
                      shots: str | int | Sequence[int] | None = 0, prompt: str = "auto", limit: int | None = None,
                      batch_size: int = DEFAULT_BATCH_SIZE, seed: int = 1234, out: str | os.PathLike | None = None,
                      device: str = "cpu", bootstrap_iters: int = BOOTSTRAP_ITERS, progress: bool = True) -> dict:
    """Accuracy of the model of `run_dir` on instruction JSONL file(s) `data`, per type, at each shot count.

    prompt: "auto" (the run's template.json with its response marker when the run has one, else the plain prompt
    of the default template), "template" (the run's, required) or "plain". limit: first N items of each type.
    seed: few-shot draws and bootstrap. out: write the report JSON there and the per-item log beside it. Returns
    the report in `lmlab eval tasks`' layout ({"run_dir", "settings", "tasks", "groups", "results", ...}), which
    `format_table` prints."""
    from lmlab.checkpoint import load_run

    if prompt not in PROMPTS:
        raise LmlabError(f"--prompt must be one of {', '.join(PROMPTS)}, got {prompt!r}")
    if limit is not None and limit < 1:
        raise LmlabError(f"--limit must be at least 1, got {limit}")
    shot_list = parse_shots(shots)
    run_template = load_template(run_dir)
    if prompt == "template" and run_template is None:
        raise LmlabError(f"{run_dir} has no prompt template (it was not instruction-tuned); use --prompt plain")
    marked = prompt == "template" or (prompt == "auto" and run_template is not None)
    template = run_template if marked else PromptTemplate()
    files = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    tasks = [t for f in files for t in instruction_tasks(f, template, marked=marked)]
    run = load_run(run_dir, device=device)
    results, items = evaluate(run.model, run.tokenizer, tasks, shots=shot_list, limit=limit, batch_size=batch_size,
                              seed=seed, bootstrap_iters=bootstrap_iters, progress=progress)
    report = {"run_dir": str(run_dir), "lmlab_version": __version__,
              "settings": {"shots": shot_list, "prompt": "template" if marked else "plain", "limit": limit,
                           "batch_size": batch_size, "seed": seed, "data": [str(f) for f in files],
                           "bootstrap_iters": bootstrap_iters},
              "tasks": {t.name: task_summary(t) for t in tasks}, "groups": task_groups(tasks), "results": results}
    if out is not None:
        write_report(report, items, out)
    return report
