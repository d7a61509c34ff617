"""Feed-forward layers as key-value memories (Geva et al. 2021, "Transformer Feed-Forward Layers Are Key-Value
Memories"; Geva et al. 2022, "... Build Predictions by Promoting Concepts in the Vocabulary Space").

The MLP of block l computes out = Σ_i m_i v_i (+ bias): m_i = act(k_i · x) is the *coefficient* of memory i
(hook `blocks.{l}.mlp.post`, its key k_i is row i of `c_fc.weight`) and v_i is the *value* vector, column i of
`c_proj.weight`. What a value promotes is read as in Geva 2022: the scores E·v_i over the vocabulary, with E the
output embedding (`lm_head.weight`), no final norm and no bias (a direction in the residual stream, not a state).

Trigger examples (Geva 2021 §3): windows of `window` tokens are sampled from a token corpus; for key i, each
window's score is max over positions of m_i, and the top windows are shown as the prefix that ends at the
arg-max position. Agreement (Geva 2021 §4): per layer, the share of keys whose value's top token (argmax E·v_i)
equals the token that follows the key's top trigger prefix in the corpus. Baselines: `shuffled` pairs every value
with another key's next token (the exact expectation over random pairings, Σ_t a_t·b_t / n² for the counts a, b of
each token among the value tops and the next tokens), and `uniform` = 1/V for a random token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn

from lmlab.errors import LmlabError
from lmlab.inspection.attention import check_layers
from lmlab.inspection.hooks import read_activations
from lmlab.inspection.prompts import encode_prompt, token_labels
from lmlab.tokenization import Tokenizer


def value_vectors(model: nn.Module, layer: int) -> torch.Tensor:
    """The value vectors v_i of block `layer` as rows: (hidden, D) = c_proj.weight transposed."""
    return model.blocks[layer].mlp.c_proj.weight.detach().T


@torch.no_grad()
def value_scores(model: nn.Module, layer: int, keys: torch.Tensor | Sequence[int] | None = None) -> torch.Tensor:
    """E·v_i: vocabulary scores (len(keys), V) of the values of `keys` (default all) of block `layer`."""
    v = value_vectors(model, layer)
    if keys is not None:
        v = v[torch.as_tensor(keys, dtype=torch.long, device=v.device)]
    return v @ model.lm_head.weight.detach().T


@torch.no_grad()
def value_top_tokens(model: nn.Module, layer: int, chunk: int = 512) -> torch.Tensor:
    """argmax_t (E·v_i)_t for every key i of block `layer`: (hidden,) int64 (computed in chunks of keys, so a
    GPT-2-sized vocabulary never needs the whole hidden × V matrix)."""
    hidden = value_vectors(model, layer).shape[0]
    return torch.cat([value_scores(model, layer, range(s, min(s + chunk, hidden))).argmax(-1)
                      for s in range(0, hidden, chunk)]).cpu()


def _promoted(model, tokenizer, layer, keys, n_tokens) -> list[list[dict[str, Any]]]:
    scores = value_scores(model, layer, keys)[:, :tokenizer.vocab_size]  # not the rows a padded vocab adds
    top = scores.topk(min(n_tokens, scores.shape[-1]), dim=-1)
    return [[{"token": tokenizer.decode([int(t)]), "id": int(t), "score": float(s)} for s, t in zip(vs, ts)]
            for vs, ts in zip(top.values, top.indices)]


@torch.no_grad()
def top_memories(model: nn.Module, tokenizer: Tokenizer, prompt: str, *, top_k: int = 10,
                 layers: int | Sequence[int] | None = None, position: int = -1, n_tokens: int = 5,
                 rank: str = "coefficient") -> dict[str, Any]:
    """The top_k keys of each layer at token `position` of `prompt` (default the last), with the n_tokens tokens
    each value promotes most (E·v_i). rank: "coefficient" (largest m_i) or "contribution" (largest |m_i|·‖v_i‖,
    the size of the sub-update m_i·v_i the memory adds to the residual stream, as LM-Debugger ranks them).
    JSON-ready:

        {"prompt", "tokens", "position", "layers": [{"layer", "keys": [{"key", "coefficient", "value_norm",
         "contribution", "promotes": [{"token", "id", "score"}]}]}]}
    """
    if top_k < 1 or n_tokens < 1:
        raise LmlabError("--top-k must be at least 1")
    if rank not in ("coefficient", "contribution"):
        raise LmlabError(f"rank must be 'coefficient' or 'contribution', got {rank!r}")
    ids = encode_prompt(tokenizer, prompt, model.config.block_size)
    if not -len(ids) <= position < len(ids):
        raise LmlabError(f"position {position} is outside the prompt's {len(ids)} tokens")
    layers = check_layers(model, layers)
    cache = read_activations(model, ids, [f"blocks.{l}.mlp.post" for l in layers])
    out = []
    for l in layers:
        m = cache[f"blocks.{l}.mlp.post"][0, position].float()
        all_norms = value_vectors(model, l).float().norm(dim=-1)
        score = m if rank == "coefficient" else m.abs() * all_norms
        keys = score.topk(min(top_k, m.shape[0])).indices
        coef, norms = m[keys], all_norms[keys]
        promoted = _promoted(model, tokenizer, l, keys, n_tokens)
        out.append({"layer": l, "keys": [{"key": int(k), "coefficient": float(c), "value_norm": float(n),
                                          "contribution": abs(float(c)) * float(n), "promotes": p}
                                         for k, c, n, p in zip(keys, coef, norms, promoted)]})
    return {"prompt": prompt, "tokens": token_labels(tokenizer, ids), "position": position % len(ids), "layers": out}


def memory_hooks(model: nn.Module, changes: Sequence[tuple[int, int, float]]) -> dict[str, Any]:
    """Hooks (for `hooked` / `run_with_hooks`) that set the coefficient m_i of memory (layer, key) to `value` at
    every position: value 0 switches the memory off, a large value promotes what its value vector writes.
    changes: [(layer, key, value)]. Returns {"blocks.{l}.mlp.post": fn}; LmlabError for a layer or key out of
    range."""
    by_layer: dict[int, list[tuple[int, float]]] = {}
    for layer, key, value in changes:
        l, = check_layers(model, [int(layer)])
        hidden = value_vectors(model, l).shape[0]
        if not 0 <= int(key) < hidden:
            raise LmlabError(f"memory {key} is out of range: layer {l} has {hidden} memories (0..{hidden - 1})")
        by_layer.setdefault(l, []).append((int(key), float(value)))

    def setter(pairs: list[tuple[int, float]]):
        keys = torch.tensor([k for k, _ in pairs])
        values = torch.tensor([v for _, v in pairs])

        def fn(activation: torch.Tensor, name: str) -> torch.Tensor:
            out = activation.clone()
            out[..., keys.to(out.device)] = values.to(out.device, out.dtype)
            return out
        return fn
    return {f"blocks.{l}.mlp.post": setter(pairs) for l, pairs in by_layer.items()}


@dataclass
class KeyStats:
    """Maximum activation of every key of some layers over sampled corpus windows.

    windows: (N, window+1) token ids (the last column is only there to know the token after the last position);
    max: (len(layers), N, hidden) float32, max over the first `window` positions of m_i; argmax: same shape, the
    position of that max.
    """

    layers: list[int]
    windows: np.ndarray
    max: torch.Tensor
    argmax: torch.Tensor

    def row(self, layer: int) -> int:
        if layer not in self.layers:
            raise LmlabError(f"layer {layer} was not collected (have {self.layers})")
        return self.layers.index(layer)

    def top_windows(self, layer: int, key: int, n: int) -> list[tuple[int, int, float]]:
        """(window index, position, activation) of the n windows where key `key` of `layer` fires most."""
        r = self.row(layer)
        acts = self.max[r, :, key]
        vals, idx = acts.topk(min(n, acts.shape[0]))
        return [(int(i), int(self.argmax[r, i, key]), float(v)) for v, i in zip(vals, idx)]


def sample_windows(tokens: np.ndarray, n_windows: int, window: int, seed: int = 0) -> np.ndarray:
    """(n_windows, window+1) int64 windows at seeded random starts of a 1-D token array (e.g. a shard split)."""
    n = len(tokens)
    if n < window + 1:
        raise LmlabError(f"the corpus has {n} tokens, fewer than one window of {window + 1}; use a smaller window "
                         "or more data")
    if n_windows < 1:
        raise LmlabError("the number of corpus windows must be at least 1")
    starts = np.random.default_rng(seed).integers(0, n - window, size=n_windows)
    return np.stack([np.asarray(tokens[s: s + window + 1], dtype=np.int64) for s in starts])


@torch.no_grad()
def collect_key_stats(model: nn.Module, tokens: np.ndarray, *, layers: int | Sequence[int] | None = None,
                      n_windows: int = 256, window: int = 64, seed: int = 0, batch_size: int = 16,
                      progress: bool = False) -> KeyStats:
    """Run `n_windows` random corpus windows of `window` tokens through the model and keep, for every key of
    `layers`, its max coefficient per window and where it occurs (see `KeyStats`)."""
    from tqdm import tqdm

    layers = check_layers(model, layers)
    window = min(window, model.config.block_size)
    windows = sample_windows(tokens, n_windows, window, seed)
    names = [f"blocks.{l}.mlp.post" for l in layers]
    maxes, argmaxes = [], []
    for s in tqdm(range(0, len(windows), batch_size), desc="corpus windows", unit="batch", disable=not progress):
        cache = read_activations(model, torch.from_numpy(windows[s: s + batch_size, :window]), names)
        acts = torch.stack([cache[n].float() for n in names])  # (layers, b, window, hidden)
        m, a = acts.max(dim=2)
        maxes.append(m.cpu())
        argmaxes.append(a.to(torch.int32).cpu())
    return KeyStats(layers=layers, windows=windows, max=torch.cat(maxes, 1), argmax=torch.cat(argmaxes, 1))


def _prefix_ids(tokenizer: Tokenizer, window: np.ndarray, position: int) -> list[int]:
    """Window tokens up to `position`, starting after the last end-of-document token (a prefix never spans two
    documents)."""
    ids = [int(t) for t in window[: position + 1]]
    try:
        eos = tokenizer.eos_id
    except LmlabError:
        return ids
    last = max((i for i, t in enumerate(ids[:-1]) if t == eos), default=-1)
    return ids[last + 1:]


def key_triggers(stats: KeyStats, tokenizer: Tokenizer, layer: int, key: int, top_n: int = 5) -> list[dict[str, Any]]:
    """The top_n trigger examples of key `key` of `layer`: [{"prefix": text ending at the max position,
    "next_token": the corpus token after it, "activation": m_i there, "window", "position"}]."""
    out = []
    for w, p, act in stats.top_windows(layer, key, top_n):
        win = stats.windows[w]
        out.append({"prefix": tokenizer.decode(_prefix_ids(tokenizer, win, p)),
                    "next_token": tokenizer.decode([int(win[p + 1])]), "next_id": int(win[p + 1]),
                    "activation": act, "window": w, "position": p})
    return out


def shuffled_match_rate(a: torch.Tensor, b: torch.Tensor, vocab_size: int) -> float:
    """Expected share of matches a[i] == b[π(i)] over uniformly random permutations π of two equal-length id
    sequences: Σ_t count_a(t)·count_b(t) / n² (each pair (i, j) is matched with probability 1/n)."""
    n = len(a)
    ca = torch.bincount(a, minlength=vocab_size).double()
    cb = torch.bincount(b, minlength=vocab_size).double()
    return float((ca * cb).sum() / n ** 2)


def memory_agreement(model: nn.Module, stats: KeyStats, *, min_activation: float = 0.0) -> list[dict[str, Any]]:
    """Per layer of `stats`: agreement rate between each key's value top token (argmax E·v_i) and the next token
    after its top-1 trigger prefix, with the shuffled-pairs and uniform baselines (module docstring).

    Keys whose largest activation over the sample is ≤ min_activation never fired and are left out.
    Returns [{"layer", "n_keys", "agreement", "baseline_shuffled", "baseline_uniform", "matches"}].
    """
    V = model.lm_head.weight.shape[0]
    out = []
    for r, layer in enumerate(stats.layers):
        best = stats.max[r].max(dim=0)            # over windows: (hidden,)
        fired = best.values > min_activation
        keys = torch.nonzero(fired).flatten()
        w = best.indices[keys]
        pos = stats.argmax[r][w, keys].long()
        nxt = torch.from_numpy(stats.windows)[w, pos + 1]
        tops = value_top_tokens(model, layer)[keys]
        n = len(keys)
        matches = int((tops == nxt).sum())
        out.append({"layer": layer, "n_keys": n, "matches": matches,
                    "agreement": matches / n if n else None,
                    "baseline_shuffled": shuffled_match_rate(tops, nxt, V) if n else None,
                    "baseline_uniform": 1.0 / V})
    return out
