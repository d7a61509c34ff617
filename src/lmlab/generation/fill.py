"""Masked-word prediction with a BERT-style encoder (`lmlab fill RUN_DIR "The capital of Veruna is [MASK]."`).

The text is encoded as the model saw its pre-training inputs, `<cls> text <sep>`, with every mask marker ("[MASK]"
or "<mask>") as the `<mask>` token; one forward pass gives, at each mask, a distribution over the vocabulary. Each
mask is predicted independently (all masks are hidden at once, as in pre-training): a multi-token answer needs one
mask per token.

Spacing around a mask: in training the masked token was a real word's token, spaced as the tokenizer spaces words.
Byte-level BPE folds a word's leading space into the word's token (" Paris"), so the space before a mask belongs to
the masked token and is left out of the input; the word tokenizer leaves single spaces implicit, so spaces on both
sides of a mask are left out; the char tokenizer spells every space as its own token, so all are kept. Without
this, `<mask>` would sit next to a lone whitespace token that never precedes such a word in training.
"""

from __future__ import annotations

import os
import re

import torch

from lmlab.checkpoint import Run, load_run
from lmlab.errors import LmlabError
from lmlab.models.bert import BERT
from lmlab.tokenization import Tokenizer

MASK_TOKEN = "<mask>"
MASK_MARKERS = re.compile(r"\[MASK\]|<mask>")  # what a user may write for a mask
# How each tokenizer kind spaces words: "folded" = a word's token carries its leading space (byte-level BPE),
# "implicit" = single spaces get no token (word level); any other kind spells spaces as tokens ("literal").
SPACING = {"bpe": "folded", "word": "implicit"}


def fill_mask(run: Run | str | os.PathLike | BERT, text: str, top_k: int = 5, *, tokenizer: Tokenizer | None = None,
              device: str | torch.device = "cpu") -> list[list[tuple[str, float]]]:
    """The top_k most probable tokens at each mask of `text`, in text order: one list of (token string,
    probability) per mask, most probable first. Token strings are as `tokenizer.decode` writes one token (a BPE
    token may start with a space).

    run: a `lmlab.checkpoint.Run`, a run dir path (loaded on `device`), or a BERT model (then pass its
    `tokenizer`). Masks are written "[MASK]" or "<mask>". Raises LmlabError when the text has no mask, the model is
    not a BERT-style encoder, or the text is longer than the model's context.
    """
    model, tok = _model_and_tokenizer(run, tokenizer, device)
    if top_k < 1:
        raise LmlabError(f"top_k must be at least 1, got {top_k}")
    ids = mask_input_ids(tok, text)
    positions = [i for i, t in enumerate(ids) if t == model.config.mask_id]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            idx = torch.tensor([ids], device=next(model.parameters()).device)
            logits = model.mlm_logits(idx)[0, positions].float()  # (n_masks, V)
    finally:
        model.train(was_training)
    # Only ids the tokenizer knows can be answers (the model's vocab_size may be padded beyond them).
    probs = logits[:, :tok.vocab_size].softmax(-1)
    top = probs.topk(min(top_k, tok.vocab_size), dim=-1)
    return [[(tok.decode([i]), float(p)) for p, i in zip(row_p.tolist(), row_i.tolist())]
            for row_p, row_i in zip(top.values, top.indices)]


def filled_text(text: str, predictions: list[list[tuple[str, float]]]) -> str:
    """`text` with each mask replaced by its most probable token from `fill_mask(..., text)`, without the leading
    space a BPE token may carry."""
    best = iter([rows[0][0].strip() or rows[0][0] for rows in predictions])
    return MASK_MARKERS.sub(lambda _: next(best), text)


def format_fill(text: str, predictions: list[list[tuple[str, float]]]) -> str:
    """What `lmlab fill` prints: the filled text, then each mask's candidates with their probabilities."""
    lines = [filled_text(text, predictions)]
    for n, rows in enumerate(predictions, 1):
        lines.append(f"mask {n}:")
        lines += [f"  {p:.4f}  {t!r}" for t, p in rows]
    return "\n".join(lines)


def mask_input_ids(tokenizer: Tokenizer, text: str) -> list[int]:
    """Token ids of `<cls> text <sep>` with each "[MASK]"/"<mask>" as the `<mask>` id (see the module docstring
    for the whitespace next to a mask). Raises LmlabError when the text has no mask."""
    if not MASK_MARKERS.search(text):
        raise LmlabError(f"no mask in {text!r}: write [MASK] (or <mask>) where the word to predict goes")
    special = {name: tokenizer.token_to_id(name) for name in ("<cls>", "<sep>", MASK_TOKEN)}
    missing = [name for name, i in special.items() if i is None]
    if missing:
        raise LmlabError(f"this tokenizer lacks {' '.join(missing)}; it does not belong to a BERT-style model")
    # Encoded piece by piece around the masks (a special token cuts the text there anyway), trimming the spaces that
    # the masked word's own token would carry (see the module docstring).
    spacing = SPACING.get(tokenizer.kind, "literal")
    pieces = MASK_MARKERS.split(text)
    ids = [special["<cls>"]]
    for n, piece in enumerate(pieces):
        if n < len(pieces) - 1 and spacing in ("folded", "implicit"):
            piece = piece.rstrip()
        if n > 0 and spacing == "implicit":
            piece = piece.lstrip()
        ids += tokenizer.encode(piece)
        if n < len(pieces) - 1:
            ids.append(special[MASK_TOKEN])
    return ids + [special["<sep>"]]


def _model_and_tokenizer(run: Run | str | os.PathLike | BERT, tokenizer: Tokenizer | None,
                         device) -> tuple[BERT, Tokenizer]:
    if isinstance(run, (str, os.PathLike)):
        run = load_run(run, device=device)
    if isinstance(run, Run):
        model, tokenizer = run.model, run.tokenizer
        where = f"{run.run_dir} holds a {run.model_type} model"
    else:
        model = run
        where = f"the model is a {type(model).__name__}"
    if not isinstance(model, BERT):
        raise LmlabError(f"{where}, not a BERT-style encoder; `lmlab fill` needs a run trained with --model bert")
    if tokenizer is None:
        raise LmlabError("fill_mask(model, ...) needs the model's tokenizer= (or pass a run dir)")
    return model, tokenizer
