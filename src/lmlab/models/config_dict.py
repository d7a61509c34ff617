"""One `to_dict` / `from_dict` for every model config dataclass, so a run dir's config.json round-trips the same
way for each model type and a typo'd key is always an error (never a silent fall back to a default)."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from lmlab.errors import LmlabError


class ConfigDictMixin:
    """Mixed into a config dataclass. `config_label`, set on the class itself (a subclass does not inherit it),
    names the config in error messages — default the class name; "GPT config" gives "unknown GPT config key(s)
    ['n_layers']; valid keys: [...]"."""

    config_label: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of every field (tuples as lists, as JSON gives them back)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]):
        """Inverse of `to_dict`; unknown keys are an error naming the valid ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise LmlabError(f"unknown {cls.__dict__.get('config_label') or cls.__name__} key(s) {unknown}; "
                             f"valid keys: {sorted(known)}")
        return cls(**d)


# Sizes no config of a model lmlab can load needs, checked before anything is allocated: a hand-edited or hostile
# config.json (n_layer 10⁹, n_embd 10⁶) must be refused, not take the machine's memory or minutes of building.
MAX_LAYERS = 1024
MAX_SIZE = 1 << 24


def check_sizes(label: str, cfg: Any, *names: str) -> None:
    """LmlabError unless each named field of `cfg` is an integer in [1, MAX_SIZE] (layer counts — fields whose
    name holds "layer" — in [1, MAX_LAYERS]). `label` names the config in the message ("GPT config")."""
    for name in names:
        value = getattr(cfg, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise LmlabError(f"{label}: {name} must be a positive integer, got {value!r}")
        limit = MAX_LAYERS if "layer" in name else MAX_SIZE
        if value > limit:
            raise LmlabError(f"{label}: {name}={value} is larger than any model lmlab can build ({limit}); "
                             "the config is damaged or not meant for this tool")


def check_unit_interval(label: str, cfg: Any, name: str, *, low_open: bool = False, high_open: bool = True) -> None:
    """LmlabError unless field `name` of `cfg` lies between 0 and 1, each end included unless `low_open` /
    `high_open`; the default, [0, 1), is a dropout's range. `label` names the config in the message."""
    value = getattr(cfg, name)
    x = float(value)
    if not ((x > 0.0 if low_open else x >= 0.0) and (x < 1.0 if high_open else x <= 1.0)):
        interval = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"
        raise LmlabError(f"{label}: {name} must be in {interval}, got {value!r}")


def check_heads_divide(label: str, cfg: Any) -> None:
    """LmlabError unless `cfg.n_embd` splits evenly into `cfg.n_head` attention heads."""
    if cfg.n_embd % cfg.n_head:
        raise LmlabError(f"{label}: n_embd={cfg.n_embd} is not divisible by n_head={cfg.n_head}")
