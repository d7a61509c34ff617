"""`lmlab sample`, `lmlab score`, `lmlab translate` and `lmlab fill`: decode or score text with a run dir's model."""

from __future__ import annotations

from lmlab.cli.options import add_device, add_json, add_kv_cache, add_run_dir, add_weights, dumps
from lmlab.errors import LmlabError


# ====================================================================================================== sample ===
def sample_arguments(p) -> None:
    add_run_dir(p, "run dir (from `lmlab train` or `lmlab import hf-gpt2`)")
    p.add_argument("--prompt", action="append", default=None, metavar="TEXT",
                   help="prompt text; repeat for several prompts (decoded together as one batch)")
    p.add_argument("--instruction", default=None, metavar="TEXT",
                   help="an instruction, put into the run's prompt template (instruction-tuned runs); prints "
                        "the response")
    p.add_argument("--input", dest="instruction_input", default="", metavar="TEXT",
                   help="with --instruction: the input the instruction works on (e.g. a review)")
    p.add_argument("--max-new-tokens", type=int, default=64, metavar="N", help="tokens to generate (default 64)")
    p.add_argument("--temperature", type=float, default=1.0, metavar="T", help="0 = greedy (default 1.0)")
    p.add_argument("--top-k", type=int, default=None, metavar="K", help="sample among the K likeliest tokens")
    p.add_argument("--top-p", type=float, default=None, metavar="P", help="nucleus sampling: smallest set of mass ≥ P")
    p.add_argument("--beam", type=int, default=1, metavar="B", help="beam search with B beams (default 1: off)")
    p.add_argument("--length-penalty", type=float, default=1.0, metavar="A",
                   help="beam score = sum log-prob / len**A (default 1.0)")
    p.add_argument("--stop", nargs="+", default=None, metavar="S", help="stop when one of these strings appears")
    p.add_argument("--seed", type=int, default=None, metavar="S", help="random seed for reproducible sampling")
    p.add_argument("--truncate", choices=["left"], default=None,
                   help="drop the prompt's start when prompt + new tokens exceed the context")
    add_device(p)
    add_weights(p)
    add_kv_cache(p)
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON: completion, tokens and per-token log-probs")
    out.add_argument("--stream", action="store_true", help="print text as it is generated (one prompt)")


def sample_options(args) -> dict:
    """The decoding options of `lmlab sample` as `generate` keyword arguments."""
    return dict(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                top_p=args.top_p, num_beams=args.beam, length_penalty=args.length_penalty, stop=args.stop,
                seed=args.seed, truncate=args.truncate)


def print_stream(pieces) -> None:
    """Print text pieces as they come, then end the line."""
    for piece in pieces:
        print(piece, end="", flush=True)
    print()


def cmd_sample(args) -> int:
    """generate text from a run dir

    Continue a prompt with a trained model (see docs/generation.md). --temperature 0 is greedy; --beam B runs beam
    search.
    """
    from lmlab.checkpoint import load_run
    from lmlab.generation import check_kv_storage, generate, set_kv_cache_storage, set_weight_storage, stream

    check_kv_storage(args.kv_cache)
    run = load_run(args.run_dir, device=args.device)
    set_weight_storage(run.model, args.weights)
    set_kv_cache_storage(run.model, args.kv_cache)
    if args.instruction is not None:
        return sample_instruction(run, args)
    if not args.prompt:
        raise LmlabError("give --prompt TEXT (or, for an instruction-tuned run, --instruction TEXT)")
    options = sample_options(args)
    if args.stream:
        if len(args.prompt) != 1:
            raise LmlabError("--stream takes exactly one --prompt")
        print(args.prompt[0], end="", flush=True)
        print_stream(stream(run.model, run.tokenizer, args.prompt[0], **options))
        return 0
    completions = generate(run.model, run.tokenizer, args.prompt, return_logprobs=args.json, **options)
    if args.json:
        rows = [c.to_dict(run.tokenizer) for c in completions]
        print(dumps(rows[0] if len(rows) == 1 else rows))
        return 0
    print(("\n" + "-" * 40 + "\n").join(c.prompt + c.text for c in completions))
    return 0


def sample_instruction(run, args) -> int:
    """`lmlab sample RUN --instruction TEXT [--input TEXT]`: the response of an instruction-tuned run."""
    from lmlab.data.instructions import load_template
    from lmlab.generation import generate, stream

    if args.prompt:
        raise LmlabError("give either --prompt or --instruction, not both")
    template = load_template(args.run_dir)
    if template is None:
        raise LmlabError(f"{args.run_dir} has no prompt template (it was not instruction-tuned with `lmlab finetune "
                         "--instructions`); use --prompt")
    prompt = template.prompt(args.instruction, args.instruction_input)
    options = sample_options(args)
    if args.stream:
        print_stream(stream(run.model, run.tokenizer, prompt, **options))
        return 0
    [c] = generate(run.model, run.tokenizer, prompt, return_logprobs=args.json, **options)
    print(dumps(c.to_dict()) if args.json else c.text.removeprefix(template.response_prefix))
    return 0


# ======================================================================================================= score ===
def score_arguments(s) -> None:
    add_run_dir(s)
    s.add_argument("--text", required=True, help="text to score")
    s.add_argument("--no-eos", action="store_true", help="do not include P(<eos> | text) (score a prefix)")
    add_json(s, "print JSON with per-token log-probs")
    add_device(s)
    add_weights(s)


def cmd_score(args) -> int:
    """log-probabilities of a text under a run dir's model

    log P(text) in nats: the first token is conditioned on <eos> (start of a document) and P(<eos> | text) ends it
    unless --no-eos.
    """
    from lmlab.checkpoint import load_run
    from lmlab.generation import score_text, set_weight_storage

    run = load_run(args.run_dir, device=args.device)
    set_weight_storage(run.model, args.weights)
    result = score_text(run.model, run.tokenizer, args.text, add_eos=not args.no_eos)
    print(dumps(result.to_dict(run.tokenizer)) if args.json else result.format(run.tokenizer))
    return 0


# =================================================================================================== translate ===
def translate_arguments(p) -> None:
    add_run_dir(p, "run dir trained with --model seq2seq")
    p.add_argument("text", nargs="+", metavar="TEXT", help="source text(s); each is translated separately")
    p.add_argument("--beam", type=int, default=1, metavar="B", help="beam search with B beams (default 1: greedy)")
    p.add_argument("--length-penalty", type=float, default=1.0, metavar="A",
                   help="beam score = sum log-prob / len**A (default 1.0)")
    p.add_argument("--max-new-tokens", type=int, default=None, metavar="N",
                   help="most output tokens (default: block_size - 1)")
    add_json(p, "print JSON: text, tokens, log-prob, finish reason")
    add_device(p)


def cmd_translate(args) -> int:
    """translate text with an encoder-decoder run dir

    Decode a target for TEXT with a run trained with --model seq2seq: greedy by default, beam search with --beam B
    (see docs/models-seq2seq.md).
    """
    from lmlab.checkpoint import load_run
    from lmlab.generation.seq2seq import translate

    run = load_run(args.run_dir, device=args.device)
    out = translate(run.model, run.tokenizer, args.text, max_new_tokens=args.max_new_tokens, beam=args.beam,
                    length_penalty=args.length_penalty)
    rows = [t.to_dict() for t in out]
    print(dumps(rows[0] if len(rows) == 1 else rows) if args.json else "\n".join(t.text for t in out))
    return 0


# ======================================================================================================== fill ===
def fill_arguments(p) -> None:
    add_run_dir(p, "run dir trained with --model bert")
    p.add_argument("text", metavar="TEXT", help='text with one or more masks, e.g. "The capital of Veruna is [MASK]."')
    p.add_argument("--top-k", type=int, default=5, metavar="K", help="candidates per mask (default 5)")
    add_json(p, "print JSON: the filled text and [token, probability] lists")
    add_device(p)


def cmd_fill(args) -> int:
    """predict masked words with a BERT-style run dir

    The likeliest tokens at each [MASK] (or <mask>) of a text, from a run trained with --model bert (see
    docs/models-bert.md). Each mask is one token.
    """
    from lmlab.generation.fill import fill_mask, filled_text, format_fill

    predictions = fill_mask(args.run_dir, args.text, top_k=args.top_k, device=args.device)
    if args.json:
        print(dumps({"text": args.text, "filled": filled_text(args.text, predictions),
                     "masks": [[[t, round(p, 6)] for t, p in rows] for rows in predictions]}))
    else:
        print(format_fill(args.text, predictions))
    return 0
