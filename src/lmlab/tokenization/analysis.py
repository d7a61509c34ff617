"""How a tokenizer writes things: the token table and the integer-coverage report used by the arithmetic
experiments, and their text forms."""

from __future__ import annotations

from typing import Any

from lmlab.errors import LmlabError
from lmlab.tokenization.base import Tokenizer


def integer_coverage(tokenizer: Tokenizer, n: int, prefix: str = "") -> dict[str, Any]:
    """How `tokenizer` writes the integers 0..n (each as `prefix + str(i)`, e.g. prefix " " for mid-sentence).

    Returns {"n", "integers" (= n + 1), "distinct_tokens" (size of the set of ids used over all of them),
    "single_token_integers" (how many are one token), "max_tokens", "mean_tokens" (tokens per integer),
    "max_tokens_example" (the first integer needing max_tokens)}. GPT-2's BPE writes many integers as one
    token, each a separate symbol to learn; the `digits` policy needs only the 10 digit tokens.
    """
    if not isinstance(n, int) or n < 0:
        raise LmlabError(f"n must be a whole number ≥ 0, got {n!r}")
    texts = [f"{prefix}{i}" for i in range(n + 1)]
    encoded = tokenizer.encode_batch(texts)
    lengths = [len(ids) for ids in encoded]
    distinct = set().union(*map(set, encoded))
    longest = max(lengths)
    return {
        "n": n,
        "prefix": prefix,
        "integers": n + 1,
        "distinct_tokens": len(distinct),
        "single_token_integers": sum(1 for k in lengths if k == 1),
        "max_tokens": longest,
        "mean_tokens": sum(lengths) / len(lengths),
        "max_tokens_example": lengths.index(longest),
    }


def token_table(tokenizer: Tokenizer, text: str) -> list[dict[str, Any]]:
    """How `text` splits: one row per token, {"id", "token" (vocabulary entry, e.g. 'Ġthe'), "text" (what it
    spells, e.g. ' the'; U+FFFD for part of a character; '' for the word tokenizer's <glue>)}."""
    return [{"id": i, "token": tokenizer.id_to_token(i), "text": tokenizer.decode([i])}
            for i in tokenizer.encode(text)]


def format_token_table(tokenizer: Tokenizer, rows: list[dict[str, Any]]) -> str:
    """What `lmlab tokenizer show TEXT` prints of `token_table`'s rows: id, vocabulary entry and spelled text per
    token, then the count."""
    width = max([len(repr(r["token"])) for r in rows] + [5])
    lines = [f"{'id':>7}  {'token':<{width}}  text"]
    lines += [f"{r['id']:>7}  {r['token']!r:<{width}}  {r['text']!r}" for r in rows]
    lines.append(f"{len(rows)} tokens ({tokenizer.kind} tokenizer, vocab_size={tokenizer.vocab_size})")
    return "\n".join(lines)


def format_integer_coverage(coverage: dict[str, Any]) -> str:
    """One line of `integer_coverage`'s figures (`lmlab tokenizer show --integers N`)."""
    c = coverage
    return (f"integers 0..{c['n']} (written as {c['prefix']!r} + digits): {c['distinct_tokens']} distinct tokens; "
            f"{c['single_token_integers']} of {c['integers']} are one token; tokens per integer: "
            f"mean {c['mean_tokens']:.2f}, max {c['max_tokens']} (first at {c['max_tokens_example']})")
