"""Prediction and accuracy for classifier run dirs (`lmlab finetune`): `lmlab classify` and `lmlab eval classify`.

A classifier run's model has `classify(text ids (B, T) right-padded with the pad id) → class logits (B, C)` and
its config names the classes (`label_names`); see lmlab.models.classifiers.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import torch

from lmlab.checkpoint import Run, load_run
from lmlab.data.labelled import read_labelled
from lmlab.errors import LmlabError


def _classifier_run(run: Run | str | os.PathLike, device: str) -> Run:
    run = run if isinstance(run, Run) else load_run(run, device=device)
    if not hasattr(run.model, "classify") or not hasattr(run.model_config, "label_names"):
        raise LmlabError(f"{run.run_dir} holds a {run.model_type} model, not a classifier; make one with "
                         "`lmlab finetune`")
    return run


@torch.no_grad()
def predict_proba(run: Run | str | os.PathLike, texts: Sequence[str], *, batch_size: int = 64,
                  device: str = "cpu") -> torch.Tensor:
    """Class probabilities (len(texts), C) float32 of a classifier run (a `Run` or its run dir, loaded on `device`)
    for raw `texts` (cut to the model's max_text_tokens, from the start)."""
    run = _classifier_run(run, device)
    model, tok = run.model, run.tokenizer
    if batch_size < 1:
        raise LmlabError(f"batch size must be ≥ 1 (got {batch_size})")
    model.eval()
    limit = model.max_text_tokens
    dev = next(model.parameters()).device
    out = []
    for start in range(0, len(texts), batch_size):
        encoded = [ids[:limit] for ids in tok.encode_batch(list(texts[start:start + batch_size]))]
        width = max(1, max(map(len, encoded)))
        x = torch.full((len(encoded), width), tok.pad_id, dtype=torch.long)
        for row, ids in enumerate(encoded):
            x[row, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        out.append(torch.softmax(model.classify(x.to(dev)).float(), dim=-1).cpu())
    n_classes = run.model_config.n_classes
    return torch.cat(out) if out else torch.zeros(0, n_classes)


def predict(run: Run | str | os.PathLike, texts: Sequence[str], *, batch_size: int = 64,
            device: str = "cpu") -> list[tuple[str, float]]:
    """(label name, its probability) of the most probable class for each text."""
    run = _classifier_run(run, device)
    probs = predict_proba(run, texts, batch_size=batch_size, device=device)
    names = run.model_config.label_names
    best = probs.argmax(dim=-1)
    return [(names[int(k)], float(probs[i, k])) for i, k in enumerate(best)]


def accuracy(run: Run | str | os.PathLike, data: str | os.PathLike, *, batch_size: int = 64,
             device: str = "cpu") -> dict[str, Any]:
    """Accuracy of a classifier run on a labelled file (any format of lmlab.data.labelled, read with the model's
    class names): {"accuracy", "correct", "n", "per_class": {name: accuracy}, "data"}."""
    run = _classifier_run(run, device)
    names = run.model_config.label_names
    texts, labels, _ = read_labelled(data, label_names=names)
    probs = predict_proba(run, texts, batch_size=batch_size, device=device)
    gold = torch.tensor(labels)
    right = probs.argmax(dim=-1) == gold
    per_class = {name: (float(right[gold == k].float().mean()) if bool((gold == k).any()) else None)
                 for k, name in enumerate(names)}
    return {"accuracy": float(right.float().mean()), "correct": int(right.sum()), "n": len(labels),
            "per_class": per_class, "data": str(data)}


def format_accuracy(result: dict[str, Any]) -> str:
    """One line of `accuracy`'s result: overall and per class."""
    per = ", ".join(f"{k} {v:.4f}" for k, v in result["per_class"].items() if v is not None)
    return (f"accuracy {result['accuracy']:.4f} ({result['correct']}/{result['n']}) on {result['data']}; "
            f"per class: {per}")
