"""sentiment.txt and the sentiment task: templated product reviews with a label.

    Review: I bought the kettle from Zorvatek last week. It broke after two days. Avoid it.
    Sentiment: negative

A review is an opener, one to three clauses of its polarity, and sometimes a closer. A quarter of the reviews
carry a twist meant to mislead word counting: a contrast ("At first I liked it, but it broke after two days.")
whose second half decides the label, or a negated phrase ("It is not bad at all." is positive). The twists are
fixed phrases that always carry the same label, though, so a *trained* bag-of-words classifier learns them (100%
on the held-out reviews, docs/experiments/model-zoo.md); they test models that are not trained on the labels (e.g.
few-shot prompting). Evaluation reviews are drawn first from their own RNG and never appear in the training text.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from lmlab.world import lexicon

LABELS = ("negative", "positive")
EVAL_ITEMS = 500

OPENERS = ("I bought {x} last week.", "We ordered {x} for our home.", "My sister gave me {x}.",
           "I have used {x} for a month.", "I tried {x} yesterday.", "Our office got {x} in spring.")
CLAUSES = {
    "positive": ("it works perfectly", "the quality is excellent", "I really love it", "it was worth every penny",
                 "the delivery was fast", "it looks beautiful", "it is easy to use", "the support team was helpful",
                 "it is sturdy and well made", "I would buy it again", "it exceeded my expectations",
                 "everyone in my family enjoys it"),
    "negative": ("it broke after two days", "the quality is terrible", "I really hate it", "it was a waste of money",
                 "the delivery was slow", "it looks cheap", "it is hard to use", "the support team was rude",
                 "it is flimsy and badly made", "I would never buy it again", "it disappointed me",
                 "it stopped working quickly"),
}
CLOSERS = {"positive": ("Highly recommended.", "Five stars.", "Great purchase.", "Very happy with it."),
           "negative": ("Not recommended.", "One star.", "Avoid it.", "Very unhappy with it.")}
CONTRAST_OPENERS = {"positive": "At first I was unsure, but", "negative": "At first I liked it, but"}
NEGATED = {"positive": "It is not bad at all.", "negative": "It is not good at all."}


def phrase_words() -> list[str]:
    """Every lowercase word the reviews use (the scrambling word pool draws on the whole corpus vocabulary)."""
    texts = list(OPENERS) + [c for v in CLAUSES.values() for c in v] + [c for v in CLOSERS.values() for c in v] \
        + list(CONTRAST_OPENERS.values()) + list(NEGATED.values())
    return sorted({w.strip(".,").lower() for t in texts for w in t.split()})


def review(rng: random.Random, companies: list[str]) -> tuple[str, str]:
    """One (review text, label) pair."""
    label = rng.choice(LABELS)
    product = rng.choice(lexicon.PRODUCTS)
    thing = f"the {product} from {rng.choice(companies)}" if companies and rng.random() < 0.6 else f"this {product}"
    parts = [rng.choice(OPENERS).format(x=thing)]
    twist = rng.random()
    if twist < 0.15:
        parts.append(f"{CONTRAST_OPENERS[label]} {rng.choice(CLAUSES[label])}.")
    elif twist < 0.25:
        parts.append(NEGATED[label])
    else:
        for clause in rng.sample(CLAUSES[label], rng.randrange(1, 4)):
            parts.append(clause[0].upper() + clause[1:] + ".")
    if rng.random() < 0.5:
        parts.append(rng.choice(CLOSERS[label]))
    return " ".join(parts), label


def eval_items(rng: random.Random, companies: list[str], n: int = EVAL_ITEMS) -> list[dict]:
    """`n` distinct reviews as items {prompt, target, choices, label, text}; label is the index into choices."""
    seen: set[str] = set()
    items = []
    tries = 0
    while len(items) < n and tries < 50 * n:
        tries += 1
        text, label = review(rng, companies)
        if text in seen:
            continue
        seen.add(text)
        items.append({"prompt": f"Review: {text}\nSentiment:", "target": label, "choices": list(LABELS),
                      "label": LABELS.index(label), "text": text})
    return items


def sentiment_documents(rng: random.Random, companies: list[str], held_out: set[str]) -> Iterator[str]:
    """Endless stream of 'Review: ...\\nSentiment: label' documents, skipping texts in `held_out`."""
    while True:
        text, label = review(rng, companies)
        if text not in held_out:
            yield f"Review: {text}\nSentiment: {label}"
