"""Attention patterns: the softmax weights of every head, as a tensor, as JSON-ready lists, and as a PNG grid."""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn

from lmlab.errors import LmlabError
from lmlab.inspection.hooks import run_with_cache
from lmlab.inspection.plots import new_figure, save_figure
from lmlab.inspection.prompts import encode_prompt, token_labels
from lmlab.tokenization import Tokenizer


def check_layers(model: nn.Module, layers: int | Sequence[int] | None) -> list[int]:
    """Layer indices to inspect (None: all); LmlabError for one out of range. Negative indices count from the end."""
    n = model.config.n_layer
    if layers is None:
        return list(range(n))
    out = []
    for l in ([layers] if isinstance(layers, int) else layers):
        if not -n <= l < n:
            raise LmlabError(f"layer {l} is out of range: this model has {n} layers (0..{n - 1})")
        out.append(l % n)
    return out


@torch.no_grad()
def attention_patterns(model: nn.Module, tokens, layers: int | Sequence[int] | None = None) -> torch.Tensor:
    """Attention weights (len(layers), H, T, T) of one sequence: [l, h, query, key], rows sum to 1, causal."""
    layers = check_layers(model, layers)
    names = [f"blocks.{l}.attn.pattern" for l in layers]
    _, cache = run_with_cache(model, tokens, names)
    return torch.stack([cache[n][0] for n in names]).float().cpu()


def attention_report(model: nn.Module, tokenizer: Tokenizer, prompt: str,
                     layers: int | Sequence[int] | None = None) -> dict[str, Any]:
    """JSON-ready patterns: {"prompt", "tokens", "layers": [l...], "patterns": [layer][head][query][key]}, plus for
    each (layer, head) the key each query attends to most ("argmax": [layer][head][query])."""
    ids = encode_prompt(tokenizer, prompt, model.config.block_size)
    layers = check_layers(model, layers)
    att = attention_patterns(model, ids, layers)
    return {"prompt": prompt, "tokens": token_labels(tokenizer, ids), "layers": layers,
            "patterns": att.tolist(), "argmax": att.argmax(-1).tolist()}


def plot_attention(patterns: torch.Tensor, labels: Sequence[str], path: str | os.PathLike, *,
                   layers: Sequence[int] | None = None, title: str | None = None) -> None:
    """Write a PNG grid of heatmaps (rows: layers, columns: heads; y = query token, x = key token), atomically.

    patterns: (L, H, T, T) as from `attention_patterns`; labels: T token strings; layers: the layer number of each
    row (default 0..L-1).
    """
    import matplotlib

    L, H, T, _ = patterns.shape
    layers = list(layers) if layers is not None else list(range(L))
    cell = max(1.6, 0.22 * T)
    fig = new_figure(cell * H + 1, cell * L + 1)
    axes = fig.subplots(L, H, squeeze=False)
    shown = [repr(s)[1:-1] for s in labels]  # visible whitespace/newlines in tick labels
    small = T <= 24  # label every token only while the labels stay readable
    future = np.triu(np.ones((T, T), dtype=bool), 1)  # keys a query cannot see: drawn blank, not as weight 0
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="white")
    for r in range(L):
        for h in range(H):
            ax = axes[r][h]
            ax.imshow(np.ma.masked_array(patterns[r, h].numpy(), mask=future), vmin=0.0, vmax=1.0, cmap=cmap,
                      interpolation="nearest")
            ax.set_title(f"L{layers[r]} H{h}", fontsize=8)
            if h == 0:
                ax.set_ylabel("query", fontsize=7)
            if r == L - 1:
                ax.set_xlabel("key", fontsize=7)
            if small:
                ax.set_xticks(range(T), shown, rotation=90, fontsize=6)
                ax.set_yticks(range(T), shown, fontsize=6)
            else:
                ax.set_xticks([])
                ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
