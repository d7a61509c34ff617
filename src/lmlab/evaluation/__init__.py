"""Evaluation harness: task format (lm-evaluation-harness style), zero/one/few-shot prompts as in GPT-3, metrics
with bootstrap standard errors, built-in tasks (GPT-3 arithmetic and scrambling, world tasks, real-data files).

    from lmlab.evaluation import eval_tasks, format_table
    report = eval_tasks("runs/tiny", "arithmetic_2da,facts_train", shots=[0, 5], world="runs/world")
    print(format_table(report))

See docs/evaluation.md.
"""

from lmlab.evaluation.builtin import builtin_tasks, resolve_tasks
from lmlab.evaluation.harness import aggregate, evaluate_task, generate_requests, rolling_loglikelihood, \
    score_requests
from lmlab.evaluation.metrics import (bootstrap_stderr, count_words, exact_match, loglikelihood_perplexity,
                                      mean_with_stderr, multiple_choice_scores, rolling_metrics)
from lmlab.evaluation.perplexity import data_perplexity, eval_ppl, format_perplexity
from lmlab.evaluation.suite import eval_tasks, evaluate, format_curve, format_table, group_results, items_path, parse_shots, \
    task_groups, write_report
from lmlab.evaluation.tasks import OUTPUT_TYPES, Task, TaskConfig, load_task_yaml, read_jsonl, render

__all__ = ["eval_ppl", "data_perplexity", "format_perplexity", "eval_tasks", "evaluate", "format_curve", "evaluate_task", "format_table", "group_results", "task_groups", "write_report", "items_path", "parse_shots",
           "resolve_tasks", "builtin_tasks", "Task", "TaskConfig", "OUTPUT_TYPES", "load_task_yaml", "read_jsonl",
           "render", "aggregate", "score_requests", "generate_requests", "rolling_loglikelihood",
           "multiple_choice_scores", "exact_match", "count_words", "rolling_metrics", "loglikelihood_perplexity",
           "bootstrap_stderr", "mean_with_stderr"]
