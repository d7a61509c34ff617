"""Second-moment statistics of MLP keys, C = E[k kᵀ] over text the model knows (ROME §3.1, MEMIT §4.3).

ROME and MEMIT need C to make an edit touch the edited key and as little as possible of every other key: the
update is C⁻¹-orthogonal to ordinary keys. C is estimated locally from the model's own training shards (the
`data_dir` its run dir records) or from any UTF-8 text file: `n_tokens` tokens in windows spread evenly over the
text, every position counted. No downloads.

Cache. Computing C costs a forward pass over `n_tokens` tokens, so each (model weights up to that layer, data,
n_tokens, layer) is stored once as a safetensors file under the cache directory:

    cache_dir  (argument)  >  $LMLAB_CACHE_DIR/edit-stats  >  ~/.cache/lmlab/edit-stats

never inside the source run dir (which may be read-only and must stay byte-identical after an edit). The file
name holds a fingerprint of the weights that produce the keys (embeddings and blocks 0..layer) and of the data,
so an edited or retrained model never reads stale statistics.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from lmlab.errors import LmlabError
from lmlab.inspection import read_activations
from lmlab.tokenization import Tokenizer
from lmlab.utils import atomic_output, sha256_file

DEFAULT_N_TOKENS = 100_000
WINDOW = 256  # tokens per forward pass (capped by the model's context)


def default_cache_dir() -> Path:
    """$LMLAB_CACHE_DIR/edit-stats, else ~/.cache/lmlab/edit-stats."""
    root = os.environ.get("LMLAB_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "lmlab") / "edit-stats"


def _weights_fingerprint(model: nn.Module, layer: int) -> str:
    """SHA-256 (16 hex) of the parameters that determine keys at `layer`: everything but later blocks."""
    h = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        if name.startswith("blocks."):
            if int(name.split(".")[1]) > layer:
                continue
        elif not name.startswith(("wte", "wpe")):
            continue
        t = p.detach().contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


class SecondMoments:
    """Provider of C = E[k kᵀ] (4D × 4D, float64, uncentred) per layer for one model and one text source.

    data: a shard directory (its `train` split is read; the tokenizer fingerprint is checked), a UTF-8 text file,
    or a 1-D array of token ids. Results are kept in memory and on disk (see module docstring).
    """

    def __init__(self, model: nn.Module, tokenizer: Tokenizer | None, data: Any, *,
                 n_tokens: int = DEFAULT_N_TOKENS, cache_dir: str | os.PathLike | None = None,
                 progress: bool = False):
        if data is None:
            raise LmlabError("ROME/MEMIT need second-moment statistics of the model's keys: give the text to "
                             "estimate them from (a shard dir or a text file; CLI: --stats-data), or a run dir "
                             "that records its training data")
        if n_tokens < 1:
            raise LmlabError(f"n_tokens for the statistics must be ≥ 1, got {n_tokens}")
        self.model, self.tokenizer, self.data = model, tokenizer, data
        self.n_tokens = int(n_tokens)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.progress = progress
        self._memory: dict[tuple[int, str], torch.Tensor] = {}
        self._data_key: str | None = None
        self._token_array: np.ndarray | None = None
        self.cache_hits = 0   # how many layers came from disk (benchmarks and tests read this)
        self.computed = 0     # how many layers were computed

    # --- the text ----------------------------------------------------------------------------------------------
    def tokens(self) -> np.ndarray:
        """The statistics text as token ids (1-D int64), read once and kept."""
        if self._token_array is None:
            self._token_array = self._tokens()
        return self._token_array

    def _tokens(self) -> np.ndarray:
        data = self.data
        if isinstance(data, (np.ndarray, torch.Tensor, list)):
            return np.asarray(data, dtype=np.int64)
        path = Path(data)
        if path.is_dir():
            from lmlab.data import load_split
            return load_split(path, "train", tokenizer=self.tokenizer)
        if path.is_file():
            if self.tokenizer is None:
                raise LmlabError("a tokenizer is needed to read statistics text from a file")
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                raise LmlabError(f"{path} is not UTF-8 text; give a text file or a shard dir") from None
            # Only as much text as needed (about 8 characters per token is generous for BPE).
            return np.asarray(self.tokenizer.encode(text[: 8 * self.n_tokens + 10_000]), dtype=np.int64)
        raise LmlabError(f"statistics data {path} is neither a shard directory nor a text file")

    def _data_fingerprint(self) -> str:
        if self._data_key is None:
            data = self.data
            if isinstance(data, (np.ndarray, torch.Tensor, list)):
                arr = np.ascontiguousarray(np.asarray(data, dtype=np.int64))
                self._data_key = hashlib.sha256(arr.tobytes()).hexdigest()[:16]
            else:
                path = Path(data)
                target = path / "manifest.json" if path.is_dir() else path
                if not target.is_file():
                    raise LmlabError(f"statistics data {path} is neither a shard directory nor a text file")
                self._data_key = sha256_file(target)[:16]
        return self._data_key

    # --- C -----------------------------------------------------------------------------------------------------
    def get(self, layer: int) -> torch.Tensor:
        """C of `layer`: (4D, 4D) float64 on the CPU."""
        return self.get_many([layer])[layer]

    def get_many(self, layers: list[int]) -> dict[int, torch.Tensor]:
        """C for several layers, computing the missing ones in one pass over the text."""
        out, missing, keys = {}, [], {}
        for layer in sorted(set(layers)):
            wkey = _weights_fingerprint(self.model, layer)
            keys[layer] = wkey
            if (layer, wkey) in self._memory:
                out[layer] = self._memory[(layer, wkey)]
                continue
            path = self._cache_path(layer, wkey)
            if path.is_file():
                from safetensors.torch import load_file
                try:
                    out[layer] = load_file(str(path))["mom2"]
                    self.cache_hits += 1
                    self._memory[(layer, wkey)] = out[layer]
                    continue
                except Exception:  # a damaged cache file is recomputed, never trusted
                    pass
            missing.append(layer)
        if missing:
            computed = self._compute(missing)
            from safetensors.torch import save_file
            for layer, c in computed.items():
                self._memory[(layer, keys[layer])] = c
                out[layer] = c
                self.computed += 1
                try:
                    with atomic_output(self._cache_path(layer, keys[layer])) as tmp:
                        save_file({"mom2": c.contiguous()}, str(tmp))
                except OSError:
                    pass  # an unwritable cache only costs time
        return out

    def _cache_path(self, layer: int, weights_key: str) -> Path:
        return self.cache_dir / f"mom2-{weights_key}-{self._data_fingerprint()}-L{layer}-n{self.n_tokens}.safetensors"

    @torch.no_grad()
    def _compute(self, layers: list[int]) -> dict[int, torch.Tensor]:
        from tqdm import tqdm

        tokens = self.tokens()
        window = min(WINDOW, self.model.config.block_size)
        if len(tokens) < 2:
            raise LmlabError("the statistics text holds fewer than 2 tokens; give more text")
        n_windows = max(1, min(self.n_tokens, len(tokens)) // window)
        window = min(window, len(tokens))
        starts = np.linspace(0, len(tokens) - window, n_windows).astype(np.int64)
        device = next(self.model.parameters()).device
        names = {layer: f"blocks.{layer}.mlp.post" for layer in layers}
        sums = {layer: torch.zeros(0) for layer in layers}
        count = 0
        was_training = self.model.training
        self.model.eval()
        try:
            batch = 8
            for b in tqdm(range(0, len(starts), batch), desc="key statistics", unit="batch",
                          disable=None if self.progress else True):  # None: draw only on a terminal
                rows = [np.asarray(tokens[s: s + window], dtype=np.int64) for s in starts[b: b + batch]]
                x = torch.from_numpy(np.stack(rows)).to(device)
                acts = read_activations(self.model, x, list(names.values()))  # stops after the last layer read
                for layer, name in names.items():
                    k = acts[name].reshape(-1, acts[name].shape[-1]).double()
                    s = (k.T @ k).cpu()
                    sums[layer] = s if sums[layer].numel() == 0 else sums[layer] + s
                count += x.numel()
        finally:
            self.model.train(was_training)
        return {layer: sums[layer] / count for layer in layers}
