"""`lmlab edit` (ROME, MEMIT, FT-L, or correcting the training text: `--method source`) and `lmlab edit eval`."""

from __future__ import annotations

from lmlab.cli.options import add_device, int_list
from lmlab.errors import LmlabError

EDIT_USAGE = ("lmlab edit RUN_DIR (--prompt P --subject S --target O | --requests FILE) --out NEW_RUN_DIR "
              "[--method rome|memit|ft] [--layers L[,L..]]\n"
              "       lmlab edit eval RUN_DIR --requests FILE [--method M[,M..]] [--limit N] [--batch N] "
              "[--out results.json]")
EDIT_EPILOG = ("Key statistics for ROME/MEMIT come from the training shards the run dir records, or --stats-data; they "
               "are cached under --cache-dir (default $LMLAB_CACHE_DIR/edit-stats or ~/.cache/lmlab/edit-stats). See "
               "docs/editing.md.")


def edit_arguments(p) -> None:
    # `lmlab edit RUN_DIR ...` and `lmlab edit eval RUN_DIR ...` share one parser: argparse cannot mix a
    # positional RUN_DIR with subcommands, so the positionals are "[eval] RUN_DIR" and cmd_edit dispatches.
    p.add_argument("positionals", nargs="+", metavar="[eval] RUN_DIR", help="the run dir (after `eval` to evaluate)")
    p.add_argument("--prompt", help="edit: prompt with '{}' where the subject goes, e.g. 'The capital of {} is'")
    p.add_argument("--subject", help="edit: the subject, e.g. Vorland")
    p.add_argument("--target", help="edit: the new object, e.g. Gutaiholm")
    p.add_argument("--target-true", default=None, help="edit: the current object (for the before/after report)")
    p.add_argument("--requests", metavar="FILE",
                   help="JSONL of requests {prompt, subject, target_new, target_true?}, a world's edits.jsonl "
                        "(or the world dir), or a CounterFact .json file")
    p.add_argument("--method", default=None,
                   help="edit: rome (default), memit, ft, or source (correct the training text and train again: "
                        "see --retrain); eval: comma list (default none,rome,ft,memit)")
    p.add_argument("--layers", default=None, metavar="L[,L..]",
                   help="layers to edit (default: chosen by causal tracing; MEMIT: a range)")
    p.add_argument("--out", default=None,
                   help="edit: the NEW run dir to write (required); eval: JSON file for the results")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="use the first N requests")
    p.add_argument("--batch", type=int, default=1, metavar="N", help="eval: requests applied at once (default 1)")
    p.add_argument("--stats-data", default=None, metavar="DIR|FILE",
                   help="text (shard dir or UTF-8 file) for the key statistics (default: the run's training data)")
    p.add_argument("--hparam", action="append", default=[], metavar="KEY=VALUE",
                   help="a method setting, e.g. --hparam v_steps=40 --hparam n_prefixes=0 (see docs/editing.md); "
                        "eval: applies to every method that has KEY")
    p.add_argument("--stats-tokens", type=int, default=100_000, metavar="N",
                   help="tokens of text for the key statistics (default 100000)")
    p.add_argument("--cache-dir", default=None, help="where key statistics are cached")
    p.add_argument("--no-fluency", action="store_true", help="eval: skip the generation-entropy measurement")
    add_device(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    source_edit_arguments(p)


def source_edit_arguments(p) -> None:
    """The options of `lmlab edit RUN --method source` (on the `edit` parser)."""
    g = p.add_argument_group("--method source", "correct the old facts in the training text, re-prepare the shards "
                             "with the run's tokenizer and train again (docs/editing.md)")
    how = g.add_mutually_exclusive_group()
    how.add_argument("--retrain", action="store_true",
                     help="train a new model from scratch with the run's own model and training config")
    how.add_argument("--continue-steps", type=int, default=None, metavar="N",
                     help="train the run's weights N more steps on the corrected shards")
    g.add_argument("--remove", action="store_true",
                   help="drop each statement of an old fact instead of rewriting it to the new object")
    g.add_argument("--lr", type=float, default=None,
                   help="with --continue-steps: constant learning rate (default: the run's min_lr)")
    g.add_argument("--corpus", default=None, metavar="DIR",
                   help="the directory holding the shards' source files, when their recorded paths do not resolve")


def edit_layers(text: str | None) -> list[int] | None:
    """--layers '1,2' → [1, 2]; None (not given) stays None."""
    if text is None:
        return None
    return int_list(text, f"--layers {text!r}: give layer numbers separated by commas, e.g. --layers 1 or 1,2")


def edit_requests(args) -> list:
    """The requests of `lmlab edit`: from --requests FILE (--limit), or one from --prompt/--subject/--target."""
    from lmlab.editing import requests_from_options

    return requests_from_options(args.requests, prompt=args.prompt, subject=args.subject, target=args.target,
                                 target_true=args.target_true, limit=args.limit)


def source_options_given(args) -> bool:
    return bool(args.retrain or args.continue_steps is not None or args.remove or args.lr is not None
                or args.corpus is not None)


def cmd_edit(args) -> int:
    """rewrite facts in a model's weights (ROME, MEMIT, FT-L); `edit eval` scores methods

    Edit: load RUN_DIR, rewrite the fact(s) and write the edited model as a NEW run dir (--out) with an edits.jsonl
    log; the source run dir is never written. Prints P(target_new) and P(target_true) and a greedy completion before
    and after. Eval (`lmlab edit eval`): apply each request with each method (one at a time, undone after; --batch N
    applies N at once) and print CounterFact's scores (efficacy, paraphrase, neighbourhood, their harmonic mean S,
    generation entropy) next to the unedited model.
    """
    if args.positionals[0] == "eval":
        return cmd_edit_eval(args)
    from lmlab.editing import parse_hparams
    from lmlab.editing.runs import edit_run, format_edit_report

    if len(args.positionals) != 1:
        raise LmlabError(f"expected one RUN_DIR, got {' '.join(args.positionals)} "
                         f"(usage: {EDIT_USAGE.splitlines()[0]})")
    method = args.method or "rome"
    if method == "source" or source_options_given(args):
        return cmd_edit_source(args)
    if args.out is None:
        raise LmlabError("--out NEW_RUN_DIR is required: the edited model is written to a new run dir")
    result = edit_run(args.positionals[0], edit_requests(args), args.out, method, layers=edit_layers(args.layers),
                      stats_data=args.stats_data, n_tokens=args.stats_tokens, cache_dir=args.cache_dir,
                      device=args.device, progress=not args.quiet, **parse_hparams(args.hparam))
    print(format_edit_report(result, method, args.out))
    return 0


def cmd_edit_eval(args) -> int:
    from lmlab.editing import parse_hparams
    from lmlab.editing.evaluate import format_table
    from lmlab.editing.runs import evaluate_run_edits

    if len(args.positionals) != 2:
        raise LmlabError(f"usage: {EDIT_USAGE.splitlines()[1].strip()}")
    if args.requests is None:
        raise LmlabError("--requests FILE is required (a world's edits.jsonl or a CounterFact .json file)")
    if args.prompt or args.subject or args.target:
        raise LmlabError("`lmlab edit eval` reads its requests from --requests; leave out --prompt/--subject/--target")
    results = evaluate_run_edits(args.positionals[1], args.requests, args.method, limit=args.limit, batch=args.batch,
                                 layers=edit_layers(args.layers), stats_data=args.stats_data,
                                 n_tokens=args.stats_tokens, cache_dir=args.cache_dir, fluency=not args.no_fluency,
                                 hparams=parse_hparams(args.hparam), device=args.device, out=args.out,
                                 progress=not args.quiet)
    print(format_table(results))
    if args.out:
        print(f"wrote {args.out}")
    return 0


def cmd_edit_source(args) -> int:
    from lmlab.editing.source import correct_at_source, format_source_report

    if (args.method or "rome") != "source":
        raise LmlabError("--retrain, --continue-steps, --remove, --lr and --corpus go with --method source")
    if args.out is None:
        raise LmlabError("--out NEW_RUN_DIR is required: the corrected corpus, shards and model go to a new run dir")
    if args.layers or args.hparam or args.stats_data:
        raise LmlabError("--layers, --hparam and --stats-data are settings of rome/memit/ft, not of --method source")
    if args.requests is None and args.target_true is None:
        raise LmlabError("--method source looks for the old object in the text: give it with --target-true OLD "
                         "(or use --requests FILE)")
    rec = correct_at_source(args.positionals[0], edit_requests(args), args.out, retrain=args.retrain,
                            continue_steps=args.continue_steps, remove=args.remove, lr=args.lr, corpus=args.corpus,
                            progress=not args.quiet)
    print(format_source_report(rec, args.out))
    return 0
