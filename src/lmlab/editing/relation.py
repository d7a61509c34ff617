"""Keys of *other* subjects of an edit's relation, read from the statistics text (ROME's and MEMIT's
`protect_relation`).

Why: a batch of edits of one relation ("{} is a citizen of", 72 edits, 9 distinct new objects) leaks onto the
subjects it does not edit: on the world model their P(true) fell from 0.91 to 0.41, and the more edits share a new
object the more neighbours flip to it (docs/experiments/editing.md). C = E[k kᵀ] holds those subjects' keys, but
each is one token among ~100k. Reading the relation's own subjects where the text states the relation, and
adding their keys to C, makes the update leave them alone — using only the text the statistics already come from
(MEMIT, 100 edits: NS 78.4 → 83.1; ROME, 200 single edits: NS 90.9 → 93.2, and 90.7 → 97.4 on held-out cases).

How a template locates subjects in a token array: its longer fixed part (the text before or after '{}') is
searched as a token sequence; with the part *after* the subject ("{} was born in") the last subject token is the
token before each match; with the part *before* it ("The capital of {} is") the subject starts after the match and
ends before the first match of the part after it within `MAX_SUBJECT_TOKENS` tokens (or is one token when nothing
follows '{}'). Occurrences of the edited subjects themselves are skipped; a fixed text shorter than
`MIN_PATTERN_TOKENS` tokens finds nothing.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from lmlab.editing.prompts import Batch, key_activations
from lmlab.tokenization import Tokenizer

MAX_SUBJECT_TOKENS = 6
# A shorter fixed text ("{} is" → " is") matches all over any text, mostly not at the relation's subjects: then
# nothing is protected rather than random tokens.
MIN_PATTERN_TOKENS = 2
CONTEXT_TOKENS = 16   # tokens of text read up to and including the subject's last token


def _matches(tokens: np.ndarray, pattern: list[int]) -> np.ndarray:
    """Start positions (ascending) where `pattern` occurs in `tokens` (1-D int array)."""
    if not pattern or len(tokens) < len(pattern):
        return np.zeros(0, dtype=np.int64)
    view = np.lib.stride_tricks.sliding_window_view(tokens, len(pattern))
    return np.nonzero((view == np.asarray(pattern, dtype=tokens.dtype)).all(1))[0]


def subject_positions(tokenizer: Tokenizer, template: str, tokens: np.ndarray,
                      exclude: list[str] = ()) -> np.ndarray:
    """Positions in `tokens` of the last token of each subject the text states `template`'s relation about
    ('{}' marks the subject), other than the subjects in `exclude`; ascending, int64 (possibly empty)."""
    before, _, after = template.partition("{}")
    after_ids = tokenizer.encode(after) if after.strip() else []
    # A template that opens the prompt ("The capital of") opens a sentence in running text, usually after a
    # space (" The capital of"): both spellings are searched.
    befores = [tokenizer.encode(v) for v in dict.fromkeys([before.rstrip(), " " + before.strip()])] \
        if before.strip() else []
    if len(after.strip()) >= len(before.strip()) and after_ids:
        if len(after_ids) < MIN_PATTERN_TOKENS:
            return np.zeros(0, dtype=np.int64)
        pos = _matches(tokens, after_ids) - 1
    elif befores:
        if min(map(len, befores)) < MIN_PATTERN_TOKENS:
            return np.zeros(0, dtype=np.int64)
        pos = []
        follow = set(_matches(tokens, after_ids).tolist()) if after_ids else None
        starts = sorted(int(m) + len(ids) for ids in befores for m in _matches(tokens, ids))
        for start in starts:
            if follow is None:
                pos.append(start)
                continue
            ends = [j for j in range(start, start + MAX_SUBJECT_TOKENS) if j + 1 in follow]
            if ends:
                pos.append(ends[0])
        pos = np.asarray(pos, dtype=np.int64)
    else:
        return np.zeros(0, dtype=np.int64)
    pos = pos[(pos >= 0) & (pos < len(tokens))]
    # Skip the edited subjects: their spellings with and without a leading space, ending at the position.
    spellings = {tuple(tokenizer.encode(v)) for s in exclude for v in (" " + s, s)} - {()}
    keep = [p for p in pos.tolist()
            if not any(p + 1 >= len(s) and tuple(tokens[p + 1 - len(s): p + 1].tolist()) == s for s in spellings)]
    return np.asarray(keep, dtype=np.int64)


def relation_subject_keys(model: nn.Module, tokenizer: Tokenizer, templates: list[str], tokens: np.ndarray,
                          layer: int, exclude: list[str] = (), per_template: int = 128, seed: int = 0
                          ) -> torch.Tensor:
    """Keys (m, 4D) (`blocks.{layer}.mlp.post`) at up to `per_template` randomly chosen (seeded) other subjects of
    each template's relation, each read with the `CONTEXT_TOKENS` tokens of text that end at it; (0, 4D) when the
    text states none of the relations."""
    rng = np.random.default_rng(seed)
    tokens = np.asarray(tokens, dtype=np.int64)
    ctx = min(CONTEXT_TOKENS, model.config.block_size)
    rows = []
    for template in dict.fromkeys(templates):
        pos = subject_positions(tokenizer, template, tokens, exclude)
        pos = pos[pos >= ctx - 1]
        if len(pos):
            for p in rng.choice(pos, min(len(pos), per_template), replace=False):
                rows.append(tokens[p - ctx + 1: p + 1])
    width = model.blocks[layer].mlp.c_fc.out_features
    if not rows:
        return torch.zeros(0, width)
    device = next(model.parameters()).device
    ids = torch.from_numpy(np.stack(rows)).to(device)
    n = len(rows)
    last = torch.full((n,), ctx - 1, device=device)
    batch = Batch(ids, last, torch.full_like(ids, -100), torch.full((n,), ctx, device=device))
    return key_activations(model, batch, layer)[:, ctx - 1]
