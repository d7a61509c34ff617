"""Named GPT shapes, as data. `get_preset("tiny")` returns a fresh `GPTConfig` you may change with
`dataclasses.replace` (e.g. `vocab_size` from your tokenizer)."""

from __future__ import annotations

from lmlab.errors import LmlabError
from lmlab.models.gpt import GPTConfig

PRESETS: dict[str, dict] = {
    # Sized for a short CPU run (nanoGPT's CPU Shakespeare shape, with a longer context; docs/training.md has the
    # timings); vocab_size is a placeholder the trainer replaces with its tokenizer's.
    "tiny": dict(n_layer=4, n_head=4, n_embd=128, block_size=128, vocab_size=512, dropout=0.0),
    # GPT-2 124M. vocab 50304 = 50257 padded to a multiple of 64 (faster matmuls; the extra rows are never targets).
    "small": dict(n_layer=12, n_head=12, n_embd=768, block_size=1024, vocab_size=50304),
    # GPT-2 medium (350M) and large (774M) shapes.
    "medium": dict(n_layer=24, n_head=16, n_embd=1024, block_size=1024, vocab_size=50304),
    "large": dict(n_layer=36, n_head=20, n_embd=1280, block_size=1024, vocab_size=50304),
}


def get_preset(name: str, **overrides) -> GPTConfig:
    """The GPTConfig of a named preset, with optional field overrides (unknown fields are an error)."""
    if name not in PRESETS:
        raise LmlabError(f"unknown model preset {name!r}; choose one of: {', '.join(PRESETS)}")
    base = GPTConfig(**PRESETS[name])
    return GPTConfig.from_dict({**base.to_dict(), **overrides}) if overrides else base


def preset_names() -> list[str]:
    return list(PRESETS)


__all__ = ["PRESETS", "get_preset", "preset_names"]
