"""Options and output helpers that several verbs share (one definition each, so every verb spells them alike)."""

from __future__ import annotations

import json
from typing import Any

from lmlab.errors import LmlabError


def add_run_dir(p, help: str = "run dir") -> None:
    """The RUN_DIR positional."""
    p.add_argument("run_dir", metavar="RUN_DIR", help=help)


def add_device(p) -> None:
    """`--device` (torch device, default cpu)."""
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")


def add_json(p, help: str = "print the result as JSON") -> None:
    """`--json`: print the result as JSON instead of text."""
    p.add_argument("--json", action="store_true", help=help)


def add_weights(p) -> None:
    """`--weights fp32|bf16|int8` (lmlab.generation.set_weight_storage) on a verb that decodes or scores. The value
    is checked by the library (an unknown one is a one-line error), so building the parser imports no torch."""
    p.add_argument("--weights", default="fp32", metavar="fp32|bf16|int8",
                   help="how the Linear weights are held while decoding and scoring on CPU: fp32 (default, as "
                        "trained), bf16 (half the bytes) or int8 (a quarter, per-channel scales); fewer bytes, "
                        "faster decoding, slightly different numbers (docs/generation.md, 'Weight storage')")


def add_kv_cache(p) -> None:
    """`--kv-cache fp32|bf16|int8` (lmlab.generation.set_kv_cache_storage) on a verb that decodes; checked by the
    library like --weights."""
    p.add_argument("--kv-cache", default="fp32", metavar="fp32|bf16|int8",
                   help="how the KV cache holds past keys/values while decoding: fp32 (default, as computed), bf16 "
                        "(half the bytes) or int8 (a quarter, one scale per vector); for long prompts and large "
                        "batches (docs/generation.md, 'KV cache storage')")


def dumps(value: Any, *, indent: int | None = 2, ascii: bool = False) -> str:
    """`value` as the JSON a verb prints with --json."""
    return json.dumps(value, indent=indent, ensure_ascii=ascii)


def int_list(text: str, error: str) -> list[int]:
    """'1,2, 3' → [1, 2, 3]; LmlabError(`error`) when an item is not a whole number."""
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise LmlabError(error) from None
