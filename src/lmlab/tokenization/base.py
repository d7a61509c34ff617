"""The one `Tokenizer` interface every kind implements, and the JSON file format they share.

A tokenizer file is one JSON object: {"lmlab_tokenizer": 1, "kind": "char"|"word"|"bpe", ...kind-specific fields}.
`Tokenizer.load(path)` reads the kind and returns the right subclass.
"""

from __future__ import annotations

import hashlib
import json
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Iterable

from lmlab.errors import LmlabError
from lmlab.utils import atomic_write_json

FORMAT_VERSION = 1
# Special tokens every tokenizer has, always at ids 0..3 in this order so that padding/eos ids are predictable.
DEFAULT_SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>")


class Tokenizer(ABC):
    """Text ↔ token ids. Subclasses: CharTokenizer, WordTokenizer, BPETokenizer."""

    kind: ClassVar[str]
    _registry: ClassVar[dict[str, type["Tokenizer"]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if getattr(cls, "kind", None):
            Tokenizer._registry[cls.kind] = cls

    # --- the interface -------------------------------------------------------------------------------------------
    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Token ids of `text` (no special tokens added)."""

    @abstractmethod
    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids`; special tokens are rendered as their names (e.g. '<eos>')."""

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """`encode` for many texts (subclasses may parallelise)."""
        return [self.encode(t) for t in texts]

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Number of ids, special tokens included; valid ids are 0..vocab_size-1."""

    @abstractmethod
    def token_to_id(self, token: str) -> int | None:
        """Id of a vocabulary entry (or special token), None if absent."""

    @abstractmethod
    def id_to_token(self, idx: int) -> str:
        """Vocabulary entry of an id (raises LmlabError when out of range)."""

    @property
    @abstractmethod
    def special_tokens(self) -> list[str]:
        """All special tokens, defaults first, then user-defined ones such as '<extract>'."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """Everything needed to rebuild this tokenizer (the JSON file body, minus the header)."""

    @classmethod
    @abstractmethod
    def from_dict(cls, d: dict[str, Any]) -> "Tokenizer":
        """Inverse of `to_dict`."""

    # --- shared behaviour -----------------------------------------------------------------------------------------
    @property
    def eos_id(self) -> int:
        return self._special_id("<eos>")

    @property
    def bos_id(self) -> int:
        return self._special_id("<bos>")

    @property
    def pad_id(self) -> int:
        return self._special_id("<pad>")

    @property
    def unk_id(self) -> int:
        return self._special_id("<unk>")

    def _special_id(self, name: str) -> int:
        idx = self.token_to_id(name)
        if idx is None:
            raise LmlabError(f"this {self.kind} tokenizer has no {name} token")
        return idx

    @property
    def fingerprint(self) -> str:
        """Stable hash (hex, 16 chars) of vocabulary and rules: equal fingerprints ⇔ identical id mapping."""
        body = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(f"{self.kind}\n{body}".encode("utf-8")).hexdigest()[:16]

    def save(self, path: str | os.PathLike) -> None:
        """Write the tokenizer as one JSON file, atomically."""
        atomic_write_json(path, {"lmlab_tokenizer": FORMAT_VERSION, "kind": self.kind, **self.to_dict()})

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Tokenizer":
        """Read a file written by `save`, whatever its kind."""
        path = Path(path)
        if not path.is_file():
            raise LmlabError(f"tokenizer file not found: {path}")
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise LmlabError(f"{path} is not a tokenizer JSON file ({e})") from None
        if not isinstance(d, dict) or "lmlab_tokenizer" not in d:
            raise LmlabError(f"{path} is not an lmlab tokenizer file (no 'lmlab_tokenizer' header); "
                             "make one with `lmlab tokenizer train`")
        kind = d.pop("kind", None)
        d.pop("lmlab_tokenizer")
        if kind not in Tokenizer._registry:
            raise LmlabError(f"{path}: unknown tokenizer kind {kind!r} (known: {sorted(Tokenizer._registry)})")
        return Tokenizer._registry[kind].from_dict(d)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size}, fingerprint={self.fingerprint})"
