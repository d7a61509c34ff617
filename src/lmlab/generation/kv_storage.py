"""How a decode's KV cache holds keys and values: fp32 (default, as computed), bf16 or int8.

    from lmlab.generation import generate, set_kv_cache_storage
    set_kv_cache_storage(run.model, "int8")   # from now on generate, stream, beam search and BatchedDecoder
    generate(run.model, run.tokenizer, "The capital of", temperature=0)  # keep their keys/values as int8

Why. Each decode step reads every cached key and value of every row once, so with long prompts and large batches
the cache, not the weights, is most of what a step reads and most of the memory a server needs per sequence
(docs/generation.md, "KV cache storage"). bf16 halves it; int8 quarters it (plus one float32 scale per key or
value vector of one head at one position). The rounding itself is `gpt.KVCache`'s: new keys/values are rounded
once when written and read back in the model's dtype for attention, so attention sees the rounded past.
The setting goes with the model (like `set_weight_storage`); scoring (no cache) is not affected.
"""

from __future__ import annotations

import weakref

import torch.nn as nn

from lmlab.models.gpt import KV_STORAGES, KVCache, check_kv_storage

# The storage chosen for each model, weakly keyed so it goes with the model.
_STORAGE: "weakref.WeakKeyDictionary[nn.Module, str]" = weakref.WeakKeyDictionary()

__all__ = ["KV_STORAGES", "check_kv_storage", "kv_cache_storage", "set_kv_cache_storage", "new_kv_cache"]


def set_kv_cache_storage(model: nn.Module, storage: str) -> None:
    """Decode `model` with its KV caches held as `storage` ("fp32" | "bf16" | "int8"; see `gpt.KVCache`).
    The model itself is not changed."""
    check_kv_storage(storage)
    if storage == "fp32":
        _STORAGE.pop(model, None)
    else:
        _STORAGE[model] = storage


def kv_cache_storage(model: nn.Module) -> str:
    """The storage set for `model` with `set_kv_cache_storage` ("fp32" when none was)."""
    return _STORAGE.get(model, "fp32")


def new_kv_cache(model: nn.Module, batch_size: int, max_len: int | None = None) -> KVCache:
    """An empty `KVCache` for `model` of batch_size rows and max_len positions (default: the model's context), held
    as `kv_cache_storage(model)`: the one place lmlab.generation allocates a cache."""
    return KVCache.for_model(model, batch_size, max_len, storage=kv_cache_storage(model))
