"""`lmlab inspect memories|lens|attention` and `lmlab locate`: look inside a GPT run dir's model."""

from __future__ import annotations

import sys

from lmlab.cli.options import add_device, add_json, add_run_dir, dumps


def add_prompt(p) -> None:
    p.add_argument("--prompt", required=True, metavar="TEXT", help="prompt text")


def memories_arguments(m) -> None:
    add_run_dir(m, "run dir (from `lmlab train` or `lmlab import hf-gpt2`)")
    add_prompt(m)
    m.add_argument("--top-k", type=int, default=5, metavar="K", help="keys shown per layer (default 5)")
    m.add_argument("--layer", type=int, default=None, metavar="L", help="only this layer (default: all)")
    m.add_argument("--position", type=int, default=-1, metavar="P", help="token position to read (default -1: last)")
    m.add_argument("--data", default=None, metavar="DIR", help="token shards for trigger examples "
                                                               "(default: the data dir recorded by training)")
    m.add_argument("--split", default="train", help="split of the shards (default train)")
    m.add_argument("--windows", type=int, default=256, metavar="N", help="corpus windows sampled (default 256)")
    m.add_argument("--window", type=int, default=64, metavar="T", help="tokens per window (default 64)")
    m.add_argument("--triggers", type=int, default=3, metavar="N", help="trigger prefixes per key (default 3)")
    m.add_argument("--seed", type=int, default=0, help="seed of the window sample (default 0)")
    add_json(m)
    add_device(m)


def cmd_inspect_memories(args) -> int:
    """FFN key-value memories active on a prompt

    The keys with the largest coefficients m_i in each MLP layer at the prompt's last token, the tokens their values
    promote (E·v_i), and — given token shards (--data, or the data dir training recorded) — each key's top trigger
    prefixes and the per-layer agreement rate (Geva et al. 2021/2022; docs/inspection.md).
    """
    from lmlab.inspection.commands import inspect_memories
    from lmlab.inspection.reports import format_memories

    r = inspect_memories(args.run_dir, args.prompt, top_k=args.top_k, layer=args.layer, data=args.data,
                         split=args.split, n_windows=args.windows, window=args.window, triggers=args.triggers,
                         position=args.position, seed=args.seed, progress=sys.stderr.isatty(), device=args.device)
    print(dumps(r) if args.json else format_memories(r))
    return 0


def lens_arguments(ln) -> None:
    add_run_dir(ln)
    add_prompt(ln)
    ln.add_argument("--top-k", type=int, default=5, metavar="K", help="tokens shown per layer (default 5)")
    ln.add_argument("--all-positions", action="store_true", help="every token position, not only the last")
    add_json(ln)
    add_device(ln)


def cmd_inspect_lens(args) -> int:
    """logit lens: top tokens after every layer

    Read the residual stream after the embedding and after every block through the final norm and unembedding: the
    top next tokens at each depth.
    """
    from lmlab.inspection.commands import inspect_lens
    from lmlab.inspection.reports import format_lens

    r = inspect_lens(args.run_dir, args.prompt, top_k=args.top_k, all_positions=args.all_positions,
                     device=args.device)
    print(dumps(r) if args.json else format_lens(r))
    return 0


def attention_arguments(a) -> None:
    add_run_dir(a)
    add_prompt(a)
    a.add_argument("--out", required=True, metavar="FIG.png", help="PNG file to write")
    a.add_argument("--layer", type=int, default=None, metavar="L", help="only this layer (default: all)")
    add_json(a, "print the patterns as JSON")
    add_device(a)


def cmd_inspect_attention(args) -> int:
    """attention patterns per layer and head

    Attention weights of every head for a prompt, drawn as a PNG grid (rows: layers, columns: heads; y: query token,
    x: key token).
    """
    from lmlab.inspection.commands import inspect_attention
    from lmlab.inspection.reports import format_attention

    r = inspect_attention(args.run_dir, args.prompt, args.out, layer=args.layer, device=args.device)
    print(dumps(r) if args.json else format_attention(r))
    return 0


def locate_arguments(loc) -> None:
    add_run_dir(loc)
    loc.add_argument("--prompt", metavar="TEXT", help="prompt containing the subject, or with '{}' where it goes")
    loc.add_argument("--subject", metavar="S", help="the subject words to corrupt")
    loc.add_argument("--target", metavar="O", help="the object (default: the model's own greedy next token)")
    loc.add_argument("--facts", metavar="FILE", help="JSONL of {prompt, subject, object|target} (e.g. the world's "
                                                     "facts.jsonl): average over facts")
    loc.add_argument("--limit", type=int, default=None, metavar="N", help="trace only the first N facts")
    loc.add_argument("--all-facts", action="store_true",
                     help="average over every fact, not only those the model predicts correctly")
    loc.add_argument("--out", required=True, metavar="DIR", help="directory for the JSON numbers and PNG heatmaps")
    loc.add_argument("--samples", type=int, default=10, metavar="N", help="noise samples per fact (default 10)")
    loc.add_argument("--noise", type=float, default=3.0, metavar="F",
                     help="noise std as a multiple of the subject embeddings' std (default 3)")
    loc.add_argument("--window", type=int, default=None, metavar="W",
                     help="layers restored together for MLP/attention (default min(10, n_layer//2))")
    loc.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    add_json(loc)
    loc.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    add_device(loc)


def cmd_locate(args) -> int:
    """causal tracing: where does the model recall a fact

    Causal tracing (Meng et al. 2022): corrupt the subject's embeddings with noise, restore one hidden state at a
    time, and measure how much of P(object) comes back. One fact (--prompt/--subject) or the average over a facts
    file.
    """
    from lmlab.inspection.commands import locate
    from lmlab.inspection.reports import format_locate

    r = locate(args.run_dir, args.out, prompt=args.prompt, subject=args.subject, target=args.target,
               facts=args.facts, limit=args.limit, samples=args.samples, noise=args.noise, window=args.window,
               seed=args.seed, all_facts=args.all_facts, progress=args.progress and sys.stderr.isatty(),
               device=args.device)
    print(dumps(r) if args.json else format_locate(r))
    return 0
