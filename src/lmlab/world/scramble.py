"""scramble.txt and the word-scrambling tasks of GPT-3 (Brown et al. 2020, §3.9.2), in both directions.

Rules (task keys as in lm-evaluation-harness):
- cycle_letters (CL): rotate the letters:            lyinevitab = inevitably
- anagrams1 (A1): shuffle all but the first and last letter:        criroptuon = corruption
- anagrams2 (A2): shuffle all but the first two and last two letters: opoepnnt = opponent
- random_insertion (RI): a random symbol or space after some letters: s.u!c/c!e.s s i/o/n = succession
- reversed_words (RW): the letters backwards:        stcejbo = objects

"unscramble" items show the scrambled form and ask for the word (GPT-3's direction, with GPT-3's instruction line);
"scramble" items show the word and ask for a scrambled form by the named rule. Scrambling is random for every rule
but RW, so a scramble answer is right when `is_valid_scramble` accepts it; the item's target is one valid answer.
Training documents are an instruction line followed by 3–6 solved examples ("input = output"). Evaluation words are
held out of scramble.txt (they still occur in the other sections, so the model knows them as words).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator

TASKS = ("cycle_letters", "anagrams1", "anagrams2", "random_insertion", "reversed_words")
DIRECTIONS = ("unscramble", "scramble")
UNSCRAMBLE_INSTRUCTION = "Please unscramble the letters into a word, and write that word:"
SCRAMBLE_INSTRUCTIONS = {
    "cycle_letters": "Please cycle the letters of the word, and write the result:",
    "anagrams1": "Please scramble the letters of the word, keeping the first and last letters, and write the result:",
    "anagrams2": "Please scramble the letters of the word, keeping the first two and last two letters, "
                 "and write the result:",
    "random_insertion": "Please insert random symbols or spaces between the letters of the word, "
                        "and write the result:",
    "reversed_words": "Please write the letters of the word in reverse order:",
}
MIN_LENGTH = {"cycle_letters": 4, "anagrams1": 4, "anagrams2": 6, "random_insertion": 4, "reversed_words": 4}
INSERT_CHARS = " .,!?/;:-"
EVAL_ITEMS_PER_TASK = 200
EVAL_WORD_FRACTION = 0.25


def instruction(task: str, direction: str) -> str:
    """The instruction line placed before the examples of a task and direction."""
    return UNSCRAMBLE_INSTRUCTION if direction == "unscramble" else SCRAMBLE_INSTRUCTIONS[task]


def _shuffle_middle(rng: random.Random, word: str, keep: int) -> str:
    middle = list(word[keep:-keep])
    for _ in range(10):  # retry so the anagram differs from the word whenever the middle allows it
        rng.shuffle(middle)
        if middle != list(word[keep:-keep]):
            break
    else:
        middle = middle[1:] + middle[:1]  # a rotation differs unless all middle letters are equal
    return word[:keep] + "".join(middle) + word[-keep:]


def scramble(task: str, word: str, rng: random.Random) -> str:
    """Scramble `word` by the rule of `task` (random except for reversed_words)."""
    if task == "cycle_letters":
        k = rng.randrange(1, len(word))
        return word[k:] + word[:k]
    if task == "anagrams1":
        return _shuffle_middle(rng, word, 1)
    if task == "anagrams2":
        return _shuffle_middle(rng, word, 2)
    if task == "random_insertion":
        # After each letter but the last, insert a symbol with probability 1/2 (at least one insertion).
        flags = [rng.random() < 0.5 for _ in range(len(word) - 1)]
        if not any(flags):
            flags[rng.randrange(len(flags))] = True
        parts = [ch + (rng.choice(INSERT_CHARS) if f else "") for ch, f in zip(word, flags)]
        return "".join(parts) + word[-1]
    if task == "reversed_words":
        return word[::-1]
    raise ValueError(f"unknown scrambling task {task!r}")


def is_valid_scramble(task: str, word: str, output: str) -> bool:
    """Whether `output` is a correct answer to the *scramble* direction of `task` for `word`."""
    if task == "cycle_letters":
        return len(output) == len(word) and output != word and output in word + word
    if task in ("anagrams1", "anagrams2"):
        keep = 1 if task == "anagrams1" else 2
        return (sorted(output) == sorted(word) and output[:keep] == word[:keep]
                and output[-keep:] == word[-keep:] and (output != word or len(set(word[keep:-keep])) < 2))
    if task == "random_insertion":
        letters = "".join(ch for ch in output if ch not in INSERT_CHARS)
        return letters == word and output != word and all(ch in INSERT_CHARS or ch.isalpha() for ch in output)
    if task == "reversed_words":
        return output == word[::-1]
    raise ValueError(f"unknown scrambling task {task!r}")


def word_pool(words: Iterable[str]) -> list[str]:
    """Sorted distinct lowercase alphabetic words of 4–12 letters: the words scrambling draws from."""
    return sorted({w for w in words if w.isalpha() and w.islower() and 4 <= len(w) <= 12})


def split_words(rng: random.Random, pool: list[str]) -> tuple[list[str], list[str]]:
    """(train words, eval words): a seeded EVAL_WORD_FRACTION of the pool is kept out of scramble.txt."""
    shuffled = list(pool)
    rng.shuffle(shuffled)
    n_eval = max(1, int(len(shuffled) * EVAL_WORD_FRACTION))
    return sorted(shuffled[n_eval:]), sorted(shuffled[:n_eval])


def _pair(task: str, direction: str, word: str, rng: random.Random) -> tuple[str, str]:
    scrambled = scramble(task, word, rng)
    return (scrambled, word) if direction == "unscramble" else (word, scrambled)


def eval_items(rng: random.Random, words: list[str], n: int = EVAL_ITEMS_PER_TASK) -> dict[str, list[dict]]:
    """Per '{direction}_{task}' key, up to `n` items {task, direction, word, description, query, prompt, target}."""
    out = {}
    for task in TASKS:
        usable = [w for w in words if len(w) >= MIN_LENGTH[task]]
        for direction in DIRECTIONS:
            items = []
            # RW has one answer per word, so one item per word; the random rules cycle through the words again.
            count = min(n, len(usable)) if task == "reversed_words" else n
            for k in range(count if usable else 0):
                word = usable[k % len(usable)]
                given, answer = _pair(task, direction, word, rng)
                desc = instruction(task, direction)
                items.append({"task": task, "direction": direction, "word": word, "description": desc,
                              "query": f"{given} =", "prompt": f"{desc}\n{given} =", "target": answer})
            out[f"{direction}_{task}"] = items
    return out


def scramble_documents(rng: random.Random, words: list[str]) -> Iterator[str]:
    """Endless stream of documents: an instruction line, then 3–6 solved 'input = output' lines of one task."""
    usable = {task: [w for w in words if len(w) >= MIN_LENGTH[task]] for task in TASKS}
    while True:
        task, direction = rng.choice(TASKS), rng.choice(DIRECTIONS)
        pool = usable[task]
        if not pool:
            continue
        lines = [instruction(task, direction)]
        for _ in range(rng.randrange(3, 7)):
            given, answer = _pair(task, direction, rng.choice(pool), rng)
            lines.append(f"{given} = {answer}")
        yield "\n".join(lines)
