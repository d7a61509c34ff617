"""arithmetic.txt and the GPT-3 arithmetic tasks, in the GPT-3 paper's format (Brown et al. 2020, §3.9.1).

    Q: What is 48 plus 76? A: 124
    Q: What is 34 minus 53? A: -19
    Q: What is 24 times 42? A: 1008
    Q: What is 6+(4*8)? A: 38

As in the paper, n-digit operands are drawn uniformly from [0, 10^n) and subtraction may go negative; 1DC is a
composite of three 1-digit numbers with parentheses around the last two. Evaluation items are drawn first, from
their own RNG, and the training text never contains an evaluation question (checked per line).
"""

from __future__ import annotations

import random
from collections.abc import Iterator

# File-name key (lm-evaluation-harness names) → (GPT-3 task name, digits, operation word or "composite").
TASKS: dict[str, tuple[str, int, str]] = {
    "2da": ("2D+", 2, "plus"), "2ds": ("2D-", 2, "minus"),
    "3da": ("3D+", 3, "plus"), "3ds": ("3D-", 3, "minus"),
    "4da": ("4D+", 4, "plus"), "4ds": ("4D-", 4, "minus"),
    "5da": ("5D+", 5, "plus"), "5ds": ("5D-", 5, "minus"),
    "2dm": ("2Dx", 2, "times"), "1dc": ("1DC", 1, "composite"),
}
# The training text also has 1-digit sums and differences (the easiest rung of the ladder).
TRAIN_KINDS: tuple[tuple[int, str], ...] = ((1, "plus"), (1, "minus")) + tuple((d, op) for _, d, op in TASKS.values())
EVAL_ITEMS_PER_TASK = 500

_APPLY = {"plus": lambda a, b: a + b, "minus": lambda a, b: a - b, "times": lambda a, b: a * b,
          "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


def draw(rng: random.Random, digits: int, op: str) -> tuple[str, str]:
    """One problem: (question prompt ending in 'A:', answer string). E.g. ('Q: What is 48 plus 76? A:', '124')."""
    if op == "composite":
        a, b, c = rng.randrange(10), rng.randrange(10), rng.randrange(10)
        op1, op2 = rng.choice("+-*"), rng.choice("+-*")
        value = _APPLY[op1](a, _APPLY[op2](b, c))
        return f"Q: What is {a}{op1}({b}{op2}{c})? A:", str(value)
    hi = 10 ** digits
    a, b = rng.randrange(hi), rng.randrange(hi)
    return f"Q: What is {a} {op} {b}? A:", str(_APPLY[op](a, b))


def eval_items(rng: random.Random, n: int = EVAL_ITEMS_PER_TASK) -> dict[str, list[dict]]:
    """Per task key, `n` distinct evaluation items {task, prompt, target} (fewer if the task has fewer problems)."""
    out = {}
    for key, (name, digits, op) in TASKS.items():
        seen: set[str] = set()
        items = []
        tries = 0
        while len(items) < n and tries < 50 * n:
            tries += 1
            prompt, answer = draw(rng, digits, op)
            if prompt in seen:
                continue
            seen.add(prompt)
            items.append({"task": name, "prompt": prompt, "target": answer})
        out[key] = items
    return out


def arithmetic_documents(rng: random.Random, held_out: set[str]) -> Iterator[str]:
    """Endless stream of documents of 3–8 problem lines of random kinds; questions in `held_out` are skipped."""
    while True:
        lines = []
        for _ in range(rng.randrange(3, 9)):
            digits, op = rng.choice(TRAIN_KINDS)
            prompt, answer = draw(rng, digits, op)
            if prompt not in held_out:
                lines.append(f"{prompt} {answer}")
        if lines:
            yield "\n".join(lines)


def extra_sums_text(held_out: set[str], n_docs: int, seed: int) -> str:
    """Extra 2-digit addition practice: `n_docs` documents (blank-line separated) of 3–8 lines "PROMPT ANSWER" each,
    drawn like the world's own 2D+ problems from Random(`seed`), leaving out every prompt in `held_out` (the
    world's held-out arithmetic questions, of every task). Why: a tiny model learns 2-digit addition from the world's text only with more
    examples than the world's arithmetic section holds (docs/experiments/arithmetic-tokenization.md)."""
    rng = random.Random(seed)
    docs = []
    for _ in range(n_docs):
        lines = []
        for _ in range(rng.randrange(3, 9)):
            prompt, answer = draw(rng, 2, "plus")
            if prompt not in held_out:
                lines.append(f"{prompt} {answer}")
        docs.append("\n".join(lines))
    return "\n\n".join(docs)
