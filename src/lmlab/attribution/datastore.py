"""A kNN-LM datastore (Khandelwal et al. 2020): one (key, next token) pair per training position, searched with
faiss.

The key of position p is the input of block `layer`'s MLP at p — after its LayerNorm in a pre-LN GPT, as in
kNN-LM, which uses the last block's; the value is token p+1. Keys come from the same windows `token_logprobs` scores
(non-overlapping windows of block_size; each position once), so a datastore built on a split holds exactly the
contexts that perplexity on that split would see.

Layout of a datastore directory (written to a temp dir and renamed into place):
    datastore.json   format, run (weights checksum, tokenizer), layer, key width, faiss index kind, the shards'
                     fingerprint and splits, sizes, build time (written last)
    keys.faiss       the faiss index holding the keys (float32)
    values.npy       (n,) int32 next token of each key
    positions.npy    (n,) int64 stream position of each key (in the concatenation of the recorded splits)
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open

from lmlab.attribution.corpus import Corpus, resolve_splits, shards_fingerprint
from lmlab.attribution.staging import absolute_output
from lmlab.checkpoint import WEIGHTS_NAME, Run
from lmlab.data import check_tokenizer, load_manifest
from lmlab.errors import LmlabError
from lmlab.generation import eval_mode
from lmlab.generation.scoring import _windows as scoring_windows
from lmlab.utils import atomic_write_json, human_bytes, staged_directory

META_NAME = "datastore.json"
FORMAT_VERSION = 1
INDEX_KINDS = ("flat", "ivf")


def faiss_module():
    """The faiss module, or a one-line error saying how to install it."""
    try:
        import faiss
    except ImportError:
        raise LmlabError("the kNN datastore needs faiss: pip install 'lmlab[attribution]' (faiss-cpu)") from None
    return faiss


def weights_checksum(run_dir: str | os.PathLike) -> str:
    """The content hash of a run's weights, as stored in its safetensors metadata (the file's bytes may differ)."""
    path = Path(run_dir) / WEIGHTS_NAME
    with safe_open(str(path), framework="pt") as f:
        return (f.metadata() or {}).get("lmlab_sha256", "")


def resolve_layer(model: torch.nn.Module, layer: int) -> int:
    """Block index (negative counts from the end) of a model with `blocks`, or a one-line error."""
    blocks = getattr(model, "blocks", None)
    if blocks is None or not all(hasattr(b, "mlp") for b in blocks):
        raise LmlabError("a kNN datastore needs a GPT-style model (blocks with an MLP)")
    n = len(blocks)
    if not -n <= layer < n:
        raise LmlabError(f"layer {layer} does not exist: the model has {n} blocks (use 0..{n - 1} or -1 for the last)")
    return layer % n


@contextlib.contextmanager
def mlp_inputs(model: torch.nn.Module, layer: int) -> Iterator[list[torch.Tensor]]:
    """Collect the input of block `layer`'s MLP, (B,T,D) per forward pass, into the yielded list."""
    seen: list[torch.Tensor] = []
    handle = model.blocks[layer].mlp.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    try:
        yield seen
    finally:
        handle.remove()


def keys_and_logprobs(model: torch.nn.Module, tokens: np.ndarray, layer: int, *, batch_size: int = 8
                      ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Stream (keys (m,D) float32, next tokens (m,) int64, log p_LM(next token) (m,) float64, positions (m,) int64)
    over a token stream, batch by batch: position p's key predicts token p+1, for p = 0..n-2 in order, in the
    windows of `token_logprobs` (so log p_LM equals its values)."""
    arr = np.asarray(tokens)
    block = model.config.block_size
    windows = list(scoring_windows(len(arr), block, block))
    device = next(model.parameters()).device
    with eval_mode(model), torch.no_grad(), mlp_inputs(model, layer) as seen:
        for b in range(0, len(windows), batch_size):
            group = windows[b:b + batch_size]
            x = torch.from_numpy(np.stack([arr[s:e] for s, e, _ in group]).astype(np.int64)).to(device)
            y = torch.from_numpy(np.stack([arr[s + 1:e + 1] for s, e, _ in group]).astype(np.int64)).to(device)
            seen.clear()
            logits, _ = model(x)
            logp = -F.cross_entropy(logits.float().transpose(1, 2), y, reduction="none")  # (B,T)
            keys = seen[0]
            rows = [(keys[i, -n:], y[i, -n:], logp[i, -n:], np.arange(e - n, e)) for i, (_, e, n) in enumerate(group)]
            yield (torch.cat([r[0] for r in rows]).float().cpu().numpy(),
                   torch.cat([r[1] for r in rows]).cpu().numpy(),
                   torch.cat([r[2] for r in rows]).double().cpu().numpy(),
                   np.concatenate([r[3] for r in rows]).astype(np.int64))


MAX_DEFAULT_NLIST = 4096


def _new_index(faiss, kind: str, dim: int, n_keys: int, nlist: int | None):
    if kind == "flat":
        return faiss.IndexFlatL2(dim), None
    # IVF: ~4·√n lists is faiss's rule of thumb; at least 39 training points per list keep k-means stable. The
    # k-means that places the lists costs ~ nlist² × dim per iteration (64 training points per list), so past
    # MAX_DEFAULT_NLIST lists (~10M keys with the rule) training would dominate a CPU build; more lists only pay off
    # on faster hardware, where --nlist sets them.
    nlist = nlist or max(1, min(int(4 * math.sqrt(n_keys)), n_keys // 39, MAX_DEFAULT_NLIST))
    return faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, nlist), nlist


def build_datastore(run: Run, data_dir: str | os.PathLike, out_dir: str | os.PathLike, *, layer: int = -1,
                    splits: str | Sequence[str] = "train", kind: str = "flat", nlist: int | None = None,
                    max_tokens: int | None = None, batch_size: int = 8) -> dict:
    """Build a datastore of the run's keys over `splits` of `data_dir` (the first `max_tokens` tokens when given)
    into `out_dir`; returns datastore.json's content. `kind`: "flat" (exact L2) or "ivf" (IVFFlat with `nlist`
    lists, trained on the first keys)."""
    faiss = faiss_module()
    if kind not in INDEX_KINDS:
        raise LmlabError(f"unknown datastore index {kind!r}: choose one of {', '.join(INDEX_KINDS)}")
    if max_tokens is not None and max_tokens < 2:
        raise LmlabError(f"max_tokens must be ≥ 2, got {max_tokens}")
    manifest = load_manifest(data_dir)
    check_tokenizer(data_dir, manifest, run.tokenizer)
    names = resolve_splits(data_dir, splits)
    layer = resolve_layer(run.model, layer)
    out = absolute_output(out_dir, META_NAME, "a kNN datastore")
    start = time.perf_counter()
    tokens = Corpus.from_shards(data_dir, names).tokens[:max_tokens]
    n_keys = len(tokens) - 1
    index, nlist = _new_index(faiss, kind, run.model.config.n_embd, n_keys, nlist)
    train_n = 0 if kind == "flat" else min(n_keys, 64 * nlist)
    pending: list[np.ndarray] = []
    values, positions = [], []
    for keys, nxt, _, pos in keys_and_logprobs(run.model, tokens, layer, batch_size=batch_size):
        values.append(nxt.astype(np.int32))
        positions.append(pos)
        if index.is_trained:
            index.add(keys)
            continue
        pending.append(keys)
        if sum(len(p) for p in pending) >= train_n:
            sample = np.concatenate(pending)
            index.train(sample[:train_n])
            index.add(sample)
            pending = []
    with staged_directory(out) as tmp:
        faiss.write_index(index, str(tmp / "keys.faiss"))
        np.save(tmp / "values.npy", np.concatenate(values))
        np.save(tmp / "positions.npy", np.concatenate(positions))
        disk = sum(p.stat().st_size for p in tmp.iterdir())
        meta = {"lmlab_knn_datastore": FORMAT_VERSION, "run_dir": str(Path(run.run_dir).absolute()),
                "weights_checksum": weights_checksum(run.run_dir), "tokenizer_fingerprint": run.tokenizer.fingerprint,
                "layer": layer, "dim": int(run.model.config.n_embd), "kind": kind, "nlist": nlist,
                "n_keys": int(index.ntotal), "data_dir": str(Path(data_dir).absolute()), "splits": names,
                "shards_fingerprint": shards_fingerprint(manifest),
                "build_seconds": round(time.perf_counter() - start, 3), "bytes_on_disk": disk}
        atomic_write_json(tmp / META_NAME, meta)
    return meta


def describe_datastore(meta: dict) -> str:
    """One line for a user: size, kind and build time."""
    return (f"datastore of {meta['n_keys']:,} keys ({meta['dim']}-dim, layer {meta['layer']}, {meta['kind']}) over "
            f"{'+'.join(meta['splits'])} built in {meta['build_seconds']:.2f} s; {human_bytes(meta['bytes_on_disk'])}"
            " on disk")


class Datastore:
    """An opened datastore: `search` keys, `values` and `positions` of the neighbours found."""

    def __init__(self, path: Path, meta: dict, index, values: np.ndarray, positions: np.ndarray):
        self.path, self.meta, self.index, self.values, self.positions = path, meta, index, values, positions

    @classmethod
    def open(cls, path: str | os.PathLike, *, nprobe: int = 8) -> "Datastore":
        """Load a datastore (values and positions memory-mapped); `nprobe` lists are visited per IVF query."""
        faiss = faiss_module()
        path = Path(path)
        meta_path = path / META_NAME
        if not meta_path.is_file():
            raise LmlabError(f"{path} is not a kNN datastore (no {META_NAME}); build one with "
                             "`lmlab attribute knn RUN_DIR --out DIR`")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            index = faiss.read_index(str(path / "keys.faiss"))
            values = np.load(path / "values.npy", mmap_mode="r")
            positions = np.load(path / "positions.npy", mmap_mode="r")
        except (ValueError, OSError, RuntimeError) as e:
            raise LmlabError(f"kNN datastore {path} is damaged ({e}); rebuild it") from None
        if meta.get("lmlab_knn_datastore") != FORMAT_VERSION or len(values) != index.ntotal:
            raise LmlabError(f"{path} is not a complete kNN datastore of format {FORMAT_VERSION}; rebuild it")
        if meta["kind"] == "ivf":
            index.nprobe = nprobe
        return cls(path, meta, index, values, positions)

    def check_run(self, run: Run) -> None:
        """Refuse a run whose weights or tokenizer differ from the ones whose keys are stored."""
        if (weights_checksum(run.run_dir) != self.meta["weights_checksum"]
                or run.tokenizer.fingerprint != self.meta["tokenizer_fingerprint"]):
            raise LmlabError(f"datastore {self.path} holds keys of the model in {self.meta['run_dir']}, not of "
                             f"{run.run_dir} (weights or tokenizer differ); rebuild it with "
                             f"`lmlab attribute knn {run.run_dir} --out DIR`")

    def search(self, keys: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(squared L2 distances (m,k) float32, next tokens (m,k) int64, stream positions (m,k) int64) of the k
        nearest keys of each query row (m,D); IVF may return fewer (distance inf, token −1, position −1)."""
        if not 1 <= k <= self.index.ntotal:
            raise LmlabError(f"k={k} neighbours asked, but the datastore holds {self.index.ntotal} keys; "
                             f"choose k between 1 and {self.index.ntotal}")
        dist, ids = self.index.search(np.ascontiguousarray(keys, dtype=np.float32), k)
        found = ids >= 0
        safe = np.where(found, ids, 0)
        return (np.where(found, dist, np.inf).astype(np.float32),
                np.where(found, np.asarray(self.values)[safe], -1).astype(np.int64),
                np.where(found, np.asarray(self.positions)[safe], -1).astype(np.int64))

    def corpus(self) -> Corpus:
        """The recorded splits of the recorded shard dir, checked to be the shards the datastore was built on."""
        data_dir = self.meta["data_dir"]
        now = shards_fingerprint(load_manifest(data_dir))
        if now != self.meta["shards_fingerprint"]:
            raise LmlabError(f"datastore {self.path} was built on shards with fingerprint "
                             f"{self.meta['shards_fingerprint']}, but {data_dir} now holds {now}; rebuild it")
        return Corpus.from_shards(data_dir, self.meta["splits"])


def knn_logprobs(dist: np.ndarray, values: np.ndarray, targets: np.ndarray, temperature: float) -> np.ndarray:
    """log p_kNN(target) per row: a softmax over −distance/temperature of the k neighbours, summed over those whose
    next token is the target (−inf when none is). dist, values: (m,k); targets: (m,). float64 (m,)."""
    if temperature <= 0:
        raise LmlabError(f"temperature must be > 0, got {temperature}")
    scores = -dist.astype(np.float64) / temperature  # −inf for the slots an IVF search left empty
    top = scores.max(axis=1, keepdims=True)
    weights = np.exp(scores - np.where(np.isfinite(top), top, 0.0))
    total = weights.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(np.sum(weights * (values == targets[:, None]), axis=1) / total[:, 0])
