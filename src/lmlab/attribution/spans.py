"""Verbatim spans of a text in the training data, by OLMoTrace's procedure (Liu et al. 2025), on a `SuffixIndex`.

1. For every position, the longest prefix of the rest of the text that occurs in the index; keep the maximal ones
   (not inside another match) of at least `min_len` tokens.
2. Keep the rarest: the ceil(keep_fraction · text tokens) spans with the lowest span unigram probability
   (Σ log p_unigram of their tokens) — long spans of rare tokens say the most about where a text came from.
3. Merge overlapping kept spans into the stretches a reader sees marked.
4. Documents: up to `docs_per_span` occurrences of each kept span; documents ranked by how many kept spans they
   contain, then by the tokens those spans cover.
OLMoTrace also drops spans that cross sentence or word boundaries and re-ranks documents by BM25; neither is done
here (our tokenizers do not mark word starts uniformly).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from lmlab.attribution.suffix_array import SuffixIndex
from lmlab.errors import LmlabError
from lmlab.tokenization import Tokenizer


@dataclass
class Span:
    """A kept verbatim span: tokens [start, end) of the traced text."""

    start: int
    end: int
    count: int                  # occurrences in the index
    unigram_logprob: float      # Σ log p_unigram over its tokens (nats); lower = rarer
    documents: list[int] = field(default_factory=list)  # documents of its first `docs_per_span` occurrences


@dataclass
class RankedDocument:
    """A training document that holds some kept spans (indices into `Trace.spans`); `position` is the stream
    position of the first kept span found in it, which is `span_at` (an index into `Trace.spans`)."""

    document: int
    split: str
    split_document: int
    spans: list[int]
    matched_tokens: int
    position: int
    span_at: int


@dataclass
class Trace:
    """Where a token sequence occurs verbatim in training (see the module docstring)."""

    ids: list[int]
    spans: list[Span]                 # kept spans, by start
    merged: list[tuple[int, int]]     # token ranges after merging overlapping kept spans
    documents: list[RankedDocument]   # best first

    def to_dict(self) -> dict:
        return asdict(self)


def maximal_spans(lengths: Sequence[int] | np.ndarray, min_len: int) -> list[tuple[int, int]]:
    """[start, end) of each match (start i, length lengths[i]) that no earlier-starting match contains and that
    is at least `min_len` long, by start."""
    spans, reach = [], 0
    for i, length in enumerate(int(x) for x in lengths):
        if length >= min_len and i + length > reach:
            spans.append((i, i + length))
        reach = max(reach, i + length)
    return spans


def merge_overlaps(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Union of [start, end) ranges, as disjoint ranges by start (touching ranges stay apart)."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def trace_ids(index: SuffixIndex, ids: Sequence[int] | np.ndarray, *, min_len: int = 4,
              keep_fraction: float = 0.05, docs_per_span: int = 10, max_spans: int | None = None) -> Trace:
    """OLMoTrace's spans and documents for a token sequence (1-D ids; `<eos>` splits it into documents).
    max_spans: keep this many of the rarest spans instead of ceil(keep_fraction · tokens)."""
    if min_len < 1:
        raise LmlabError(f"min_len must be ≥ 1 token, got {min_len}")
    if not 0 < keep_fraction <= 1:
        raise LmlabError(f"keep_fraction must be in (0, 1], got {keep_fraction}")
    if docs_per_span < 1:
        raise LmlabError(f"docs_per_span must be ≥ 1, got {docs_per_span}")
    if max_spans is not None and max_spans < 1:
        raise LmlabError(f"max_spans must be ≥ 1, got {max_spans}")
    arr = np.asarray(ids, dtype=np.int64)
    lengths, counts = index.longest_matches(arr)
    candidates = [Span(s, e, int(counts[s]), index.unigram_logprob(arr[s:e]))
                  for s, e in maximal_spans(lengths, min_len)]
    keep = max_spans if max_spans is not None else max(1, math.ceil(keep_fraction * len(arr)))
    kept = sorted(sorted(candidates, key=lambda sp: sp.unigram_logprob)[:keep], key=lambda sp: sp.start)
    hits: dict[int, list[int]] = {}
    first: dict[int, tuple[int, int]] = {}  # document → (stream position, span) of its first hit
    for n, span in enumerate(kept):
        positions = index.positions(arr[span.start:span.end], limit=docs_per_span)
        docs = index.corpus.document_of(positions)
        span.documents = sorted({int(d) for d in docs})
        for d, pos in zip(docs.tolist(), positions.tolist()):
            if d not in first:
                first[d] = (pos, n)
            if n not in hits.setdefault(d, []):
                hits[d].append(n)
    ranked = []
    for doc, span_ids in hits.items():
        loc = index.corpus.locate(first[doc][0])
        ranked.append(RankedDocument(doc, loc.split, loc.split_document, span_ids,
                                     sum(kept[i].end - kept[i].start for i in span_ids), *first[doc]))
    ranked.sort(key=lambda d: (-len(d.spans), -d.matched_tokens, d.document))
    return Trace(arr.tolist(), kept, merge_overlaps([(s.start, s.end) for s in kept]), ranked)


def char_offsets(tokenizer: Tokenizer, ids: Sequence[int]) -> list[int]:
    """len(ids)+1 character offsets: where each token's text starts in tokenizer.decode(ids), then the end."""
    return [len(tokenizer.decode(list(ids[:k]))) for k in range(len(ids) + 1)]


def mark_spans(tokenizer: Tokenizer, ids: Sequence[int], ranges: Sequence[tuple[int, int]], *,
               open_mark: str = "[[", close_mark: str = "]]") -> str:
    """The decoded text of `ids` with each token range [start, end) wrapped in open_mark … close_mark."""
    offsets = char_offsets(tokenizer, ids)
    text = tokenizer.decode(list(ids))
    out, last = [], 0
    for start, end in ranges:
        a, b = offsets[start], offsets[end]
        out += [text[last:a], open_mark, text[a:b], close_mark]
        last = b
    out.append(text[last:])
    return "".join(out)
