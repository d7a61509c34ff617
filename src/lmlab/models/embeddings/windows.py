"""Which ids are words, and the (centre, context) pairs of a symmetric window — shared by every embedding model.

Word vectors are learnt for *word* tokens only: ids whose string holds a letter or digit and is not a special token
(`<eos>`, `<unk>`, `<pad>`, …). Punctuation, whitespace tokens and `<glue>` are dropped from the stream before
windows are taken (so "Paris , France" has Paris and France at distance 1), and `<eos>` (the end of a document in
the shards) ends every window: no pair spans two documents.

Both the counting models (over the whole train split, in numpy) and word2vec (over a training batch or a chunk of
the train split, in torch: `window_pairs`) take pairs the same way, so "window 5" means the same thing for all of
them: the two words are at most 5 *words* apart after non-words were removed.
"""

from __future__ import annotations

import numpy as np
import torch


def word_mask_of(tokenizer) -> np.ndarray:
    """(vocab_size,) bool: True for ids that are words (a letter or digit in the token, not a special token)."""
    specials = set(tokenizer.special_tokens)
    mask = np.zeros(tokenizer.vocab_size, dtype=bool)
    for i in range(tokenizer.vocab_size):
        tok = tokenizer.id_to_token(i)
        mask[i] = tok not in specials and any(ch.isalnum() for ch in tok)
    return mask


def compact_words(tokens: np.ndarray, word_mask: np.ndarray, eos_id: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The word tokens of a flat id stream, in order, and the document number of each.

    tokens: (N,) ids; word_mask: (V,) bool. Returns (words (M,) int64, doc (M,) int64) where doc counts the `<eos>`
    tokens before each word, so two words may pair only when their doc numbers are equal.
    """
    tokens = np.asarray(tokens)
    doc = np.cumsum(tokens == eos_id) if eos_id is not None else np.zeros(len(tokens), dtype=np.int64)
    keep = word_mask[tokens]
    return tokens[keep].astype(np.int64), doc[keep].astype(np.int64)


def batch_compact(idx: torch.Tensor, keep: torch.Tensor, eos_id: int | None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per row of a batch, the kept tokens moved to the front in order (the torch form of `compact_words`).

    idx: (B, T) ids; keep: (B, T) bool (word and not subsampled away). Returns (words (B, T), valid (B, T) bool,
    doc (B, T)): row b's kept tokens first, `valid` False on the padding after them, `doc` the document number.
    """
    doc = torch.cumsum(idx == eos_id, dim=1) if eos_id is not None else torch.zeros_like(idx)
    # A stable sort on "not kept" moves kept positions to the front without changing their order.
    order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices
    return idx.gather(1, order), keep.gather(1, order), doc.gather(1, order)


def window_pairs(words: torch.Tensor, valid: torch.Tensor, doc: torch.Tensor, window: int,
                 reach: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every (centre, context) pair of compacted rows (the output of `batch_compact`), both directions.

    words, valid, doc: (B, T). A pair is two valid positions of one row and one document at most `window` apart.
    reach: (B, T) ints in 1..window, or None (= window everywhere): the centre at i only takes the contexts at most
    reach[i] away — the C tool's and gensim's reduced window, which they draw uniformly per centre so that near
    words weigh more. Returns (centre_pos (P,) flat index into B·T, centre ids (P,), context ids (P,)), grouped by
    distance (not in text order).
    """
    B, T = words.shape
    pos = torch.arange(B * T, device=words.device).view(B, T)
    centre_pos, centres, contexts = [], [], []
    for d in range(1, min(window, T - 1) + 1):
        ok = valid[:, :-d] & valid[:, d:] & (doc[:, :-d] == doc[:, d:])
        left = ok if reach is None else ok & (reach[:, :-d] >= d)  # centre at i, context at i + d
        right = ok if reach is None else ok & (reach[:, d:] >= d)  # centre at i + d, context at i
        centre_pos += [pos[:, :-d][left], pos[:, d:][right]]
        centres += [words[:, :-d][left], words[:, d:][right]]
        contexts += [words[:, d:][left], words[:, :-d][right]]
    if not centres:
        empty = words.new_zeros(0)
        return empty, empty, empty
    return torch.cat(centre_pos), torch.cat(centres), torch.cat(contexts)
