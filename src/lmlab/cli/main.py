"""The `lmlab` command: the table of verbs, the parser built from it, and `main` (argument checks, one-line errors
and warnings, exit statuses)."""

from __future__ import annotations

import argparse
import sys
import warnings

from lmlab import __version__
from lmlab.cli import attribution, data, editing, evaluation, generation, hub, inspection, models, plan, serving, train
from lmlab.cli.verbs import Entry, Group, Verb, add_entries, no_arguments
from lmlab.errors import LmlabError

# Every command, in the order `lmlab --help` lists them. A verb's help is its handler's docstring.
VERBS: tuple[Entry, ...] = (
    Verb("world", "lmlab.world.generate_world", data.world_arguments, data.cmd_world),
    Group("tokenizer", "train and inspect tokenizers", "tokenizer_cmd", (
        Verb("train", "lmlab.tokenization.train_tokenizer_from_files",
             data.tokenizer_train_arguments, data.cmd_tokenizer_train),
        Verb("show", "lmlab.tokenization.token_table, lmlab.tokenization.integer_coverage",
             data.tokenizer_show_arguments, data.cmd_tokenizer_show),
    )),
    Group("data", "turn text into token shards", "data_cmd", (
        Verb("prepare", "lmlab.data.prepare", data.data_prepare_arguments, data.cmd_data_prepare),
        Verb("stats", "lmlab.data.data_stats", data.data_stats_arguments, data.cmd_data_stats),
        Verb("prepare-parallel", "lmlab.data.parallel.prepare_parallel",
             data.prepare_parallel_arguments, data.cmd_data_prepare_parallel),
    ), metavar="{prepare,prepare-parallel,stats}"),
    Verb("train", "lmlab.recipes.run", train.train_arguments, train.cmd_train, epilog=train.TRAIN_EPILOG,
         accepts_overrides=True),
    Verb("recipes", "lmlab.recipes.format_recipes", train.recipes_arguments, train.cmd_recipes),
    Verb("sample", "lmlab.generation.generate (--stream: lmlab.generation.stream)",
         generation.sample_arguments, generation.cmd_sample),
    Verb("score", "lmlab.generation.score_text", generation.score_arguments, generation.cmd_score),
    Group("eval", "evaluate a model", "eval_cmd", (
        Verb("tasks", "lmlab.evaluation.eval_tasks", evaluation.tasks_arguments, evaluation.cmd_tasks),
        Verb("list", "lmlab.evaluation.builtin_tasks", no_arguments, evaluation.cmd_list),
        Verb("classify", "lmlab.evaluation.classification.accuracy",
             evaluation.classify_arguments, evaluation.cmd_classify),
        Verb("translation", "lmlab.evaluation.translation.eval_translation",
             evaluation.translation_arguments, evaluation.cmd_translation),
        Verb("instructions", "lmlab.evaluation.instructions.eval_instructions",
             evaluation.instructions_arguments, evaluation.cmd_instructions),
        Verb("ppl", "lmlab.evaluation.eval_ppl (--knn/--infgram: lmlab.attribution.memory_perplexity)",
             evaluation.ppl_arguments, evaluation.cmd_ppl),
    ), metavar="{ppl,tasks,list,classify,translation,instructions}"),
    Group("import", "import a model from another library's files (local only)", "import_cmd", (
        Verb("hf-gpt2", "lmlab.hub.import_hf_gpt2", hub.import_hf_gpt2_arguments, hub.cmd_import_hf_gpt2),
    )),
    Group("export", "export a run dir to another library's format", "export_cmd", (
        Verb("hf", "lmlab.hub.export_hf", hub.export_hf_arguments, hub.cmd_export_hf),
        Verb("hf-gpt2", "lmlab.hub.export_hf_gpt2", hub.export_hf_gpt2_arguments, hub.cmd_export_hf_gpt2),
    )),
    Group("inspect", "look inside a model: FFN memories, logit lens, attention", "inspect_cmd", (
        Verb("memories", "lmlab.inspection.commands.inspect_memories",
             inspection.memories_arguments, inspection.cmd_inspect_memories),
        Verb("lens", "lmlab.inspection.commands.inspect_lens", inspection.lens_arguments, inspection.cmd_inspect_lens),
        Verb("attention", "lmlab.inspection.commands.inspect_attention",
             inspection.attention_arguments, inspection.cmd_inspect_attention),
    )),
    Verb("locate", "lmlab.inspection.commands.locate", inspection.locate_arguments, inspection.cmd_locate),
    Verb("edit", "lmlab.editing.runs.edit_run (--method source: lmlab.editing.source.correct_at_source; "
                 "eval: lmlab.editing.runs.evaluate_run_edits)",
         editing.edit_arguments, editing.cmd_edit, usage=editing.EDIT_USAGE, epilog=editing.EDIT_EPILOG),
    Group("embed", "query word vectors (cooc, ppmi, word2vec run dirs)", "embed_command", (
        Verb("neighbors", "lmlab.evaluation.embeddings.neighbors",
             models.neighbors_arguments, models.cmd_embed_neighbors),
        Verb("analogy", "lmlab.evaluation.embeddings.analogy", models.analogy_arguments, models.cmd_embed_analogy),
    ), metavar="VERB", description="Nearest words and analogies in a word-embedding run dir (see "
                                   "docs/embeddings.md)."),
    Verb("finetune", "lmlab.recipes.finetune",
         models.finetune_arguments, models.cmd_finetune, usage=models.FINETUNE_USAGE, accepts_overrides=True),
    Verb("classify", "lmlab.evaluation.classification.predict", models.classify_arguments, models.cmd_classify),
    Verb("translate", "lmlab.generation.seq2seq.translate", generation.translate_arguments, generation.cmd_translate),
    Verb("fill", "lmlab.generation.fill.fill_mask", generation.fill_arguments, generation.cmd_fill),
    Verb("serve", "lmlab.serving.serve", serving.serve_arguments, serving.cmd_serve),
    Group("attribute", "trace outputs back to training data: suffix index, spans, kNN memory", "attribute_cmd", (
        Verb("index", "lmlab.attribution.index", attribution.index_arguments, attribution.cmd_index),
        Verb("count", "lmlab.attribution.count", attribution.query_arguments, attribution.cmd_count),
        Verb("find", "lmlab.attribution.find", attribution.find_arguments, attribution.cmd_find),
        Verb("trace", "lmlab.attribution.trace", attribution.trace_arguments, attribution.cmd_trace),
        Verb("memorisation", "lmlab.attribution.memorisation",
             attribution.memorisation_arguments, attribution.cmd_memorisation),
        Verb("knn", "lmlab.attribution.knn", attribution.knn_arguments, attribution.cmd_knn),
        Verb("neighbours", "lmlab.attribution.neighbours",
             attribution.neighbours_arguments, attribution.cmd_neighbours),
    ), metavar="VERB", description="Which training text made this output: an exact-match index over token shards "
                                   "(counts, occurrences, verbatim spans, memorisation) and a kNN datastore."),
    Verb("plan", "lmlab.training.plan.plan", plan.plan_arguments, plan.cmd_plan, accepts_overrides=True),
    Verb("instruction-set", "lmlab.world.instruction_set",
         models.instruction_set_arguments, models.cmd_instruction_set),
)


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of every verb of `VERBS`; each sets `func` (its handler) on the parsed arguments."""
    parser = argparse.ArgumentParser(prog="lmlab", description="lmlab: train, sample, evaluate, inspect and edit "
                                                               "small language models.")
    parser.add_argument("--version", action="version", version=f"lmlab {__version__}")
    add_entries(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"), VERBS)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line a user can read (`lmlab: warning: ...`), not Python's file:line form with source."""
    kind = "" if category is UserWarning else f"{category.__name__}: "
    print(f"lmlab: warning: {kind}{message}", file=file or sys.stderr)


def _not_utf8(argv: list[str]) -> str | None:
    """The first argument that is not UTF-8 text (bytes Python kept as lone surrogates), shown escaped; else None."""
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            return arg.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `lmlab` console script; returns the process exit status."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    shown = _not_utf8(argv)
    if shown is not None:
        print(f"lmlab: error: the argument {shown!r} is not valid UTF-8 text; lmlab reads arguments as UTF-8 "
              "(check the terminal's encoding, e.g. LANG=C.UTF-8)", file=sys.stderr)
        return 2
    # `lmlab train` accepts free-form `--key value` config overrides, which argparse cannot know in advance.
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.overrides = extra
    warnings.showwarning = _show_warning
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    """Call the verb's handler; a user's mistake is one `lmlab: error:` line and exit status 2."""
    try:
        return int(args.func(args) or 0)
    except LmlabError as e:
        print(f"lmlab: error: {e}", file=sys.stderr)
        return 2
    except (PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError) as e:
        # Where a path the user gave cannot be written or read as asked (a read-only --out, a file where a
        # directory is needed): the OS says which path and why, in one line.
        print(f"lmlab: error: {e.strerror}: {e.filename}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lmlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `lmlab ... | head` closed our stdout early: not an error. Point stdout at devnull so the interpreter's
        # final flush does not raise again.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
