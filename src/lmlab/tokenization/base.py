"""The one `Tokenizer` interface every kind implements, and the JSON file format they share.

A tokenizer file is one JSON object: {"lmlab_tokenizer": 1, "kind": "char"|"word"|"bpe", ...kind-specific fields}.
`Tokenizer.load(path)` reads the kind and returns the right subclass.

Special tokens: `<pad>`, `<unk>`, `<bos>`, `<eos>` at ids 0..3, then user-defined ones (e.g. `<extract>`). Every kind
recognises a special token's exact string in the text given to `encode` and emits its id (never split), and
`decode` renders special ids as their strings. A tokenizer imported from GPT-2 files has no such tokens; instead its
`<|endoftext|>` plays every role (see `special_roles`).

Pickling a tokenizer pickles `to_dict()` and rebuilds from it, so worker processes get an exact copy cheaply.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
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

    def to_hf_tokenizer(self) -> Any:
        """This tokenizer as a standalone Hugging Face `tokenizers.Tokenizer`: the same ids as `encode` for every
        text (special-token strings included) and the same text from `decode` — what `lmlab export hf` writes as
        tokenizer.json. Kinds whose rules those components cannot express raise LmlabError saying why."""
        raise LmlabError(f"a {self.kind} tokenizer has no Hugging Face `tokenizers` equivalent")

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

    @property
    def special_roles(self) -> dict[str, str]:
        """Role name → the token that plays it, where they differ (GPT-2: {'<eos>': '<|endoftext|>', ...})."""
        return {}

    def with_special_tokens(self, tokens: Iterable[str]) -> "Tokenizer":
        """A copy of this tokenizer that also has `tokens` as special tokens. Tokens it lacks get new ids after its
        last id, in order (vocab_size, vocab_size+1, ...), so every existing id keeps its meaning and a model's
        embedding only needs new rows at the end; tokens it already has keep their ids. Returns `self` when
        nothing is new. Kinds whose id layout cannot grow at the end raise LmlabError (BPE can)."""
        new = [t for t in check_special_tokens(tokens)[len(DEFAULT_SPECIAL_TOKENS):] if self.token_to_id(t) is None]
        if not new:
            return self
        grown = self._append_special_tokens(new)
        ids = [grown.token_to_id(t) for t in new]
        if ids != list(range(self.vocab_size, self.vocab_size + len(new))):  # never silently renumber
            raise LmlabError(f"adding special tokens {new} gave ids {ids}, not the next free ids")
        return grown

    def _append_special_tokens(self, new: list[str]) -> "Tokenizer":
        """`with_special_tokens` for tokens absent here (subclasses that can grow at the end override this)."""
        raise LmlabError(f"a {self.kind} tokenizer cannot gain special tokens after training (its layout puts them "
                         f"first); retrain it with {' '.join('--special ' + t for t in new)}")

    def _special_id(self, name: str) -> int:
        # Cached: data pipelines ask for eos_id once per document.
        cache = self.__dict__.setdefault("_role_ids", {})
        if name not in cache:
            idx = self.token_to_id(self.special_roles.get(name, name))
            if idx is None:
                raise LmlabError(f"this {self.kind} tokenizer has no {name} token")
            cache[name] = idx
        return cache[name]

    def _as_ids(self, ids: Iterable[int]) -> list[int]:
        """`ids` as a list of Python ints (numpy/torch integers accepted), each checked to lie in 0..vocab_size-1;
        LmlabError otherwise (usually ids from a model trained with another tokenizer)."""
        ids = [int(i) for i in ids]
        n = self.vocab_size
        bad = next((i for i in ids if not 0 <= i < n), None)
        if bad is not None:
            raise LmlabError(f"token id {bad} is outside this tokenizer's vocabulary (0..{n - 1}); "
                             "was the ids' model trained with a different tokenizer?")
        return ids

    @property
    def fingerprint(self) -> str:
        """Stable hash (hex, 16 chars) of vocabulary and rules: equal fingerprints ⇔ identical id mapping.

        Computed once per object (tokenizers are not changed after construction; a GPT-2-sized one takes ~50 ms).
        """
        fp = self.__dict__.get("_fingerprint")
        if fp is None:
            body = json.dumps(self._fingerprint_data(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
            fp = self.__dict__["_fingerprint"] = hashlib.sha256(f"{self.kind}\n{body}".encode("utf-8")).hexdigest()[:16]
        return fp

    def _fingerprint_data(self) -> Any:
        """What the fingerprint hashes: the id mapping and rules, in a form that does not depend on library
        versions. Default: the saved body (kinds whose file embeds another library's format override this)."""
        return self.to_dict()

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
        version = d.pop("lmlab_tokenizer")
        if version != FORMAT_VERSION:
            raise LmlabError(f"{path}: tokenizer format version {version!r}, this lmlab reads {FORMAT_VERSION}; "
                             "retrain it with this lmlab's `lmlab tokenizer train`")
        if kind not in Tokenizer._registry:
            raise LmlabError(f"{path}: unknown tokenizer kind {kind!r} (known: {sorted(Tokenizer._registry)})")
        try:
            return Tokenizer._registry[kind].from_dict(d)
        except LmlabError as e:
            raise LmlabError(f"{path}: {e}") from None
        except Exception as e:  # missing/mistyped fields or an unreadable embedded HF tokenizer: a damaged file
            raise LmlabError(f"{path} is a damaged {kind} tokenizer file ({type(e).__name__}: {e}); "
                             "retrain it with `lmlab tokenizer train`") from None

    def __reduce__(self):
        # Pickle as the JSON body: small, version-independent, and exactly what `load` would rebuild.
        return (_rebuild, (self.kind, self.to_dict()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size}, fingerprint={self.fingerprint})"


def _rebuild(kind: str, d: dict[str, Any]) -> Tokenizer:
    """Unpickling helper: the tokenizer of `kind` described by `d` (see `Tokenizer.__reduce__`)."""
    return Tokenizer._registry[kind].from_dict(d)


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """Read a tokenizer JSON file of any kind (same as `Tokenizer.load`)."""
    return Tokenizer.load(path)


def check_special_tokens(special_tokens: Iterable[str]) -> list[str]:
    """Defaults first, then the user's extra special tokens in order, without duplicates.

    Raises LmlabError for an empty or whitespace-containing name (it could never be matched as one piece).
    """
    out = list(DEFAULT_SPECIAL_TOKENS)
    for tok in special_tokens:
        if not isinstance(tok, str) or not tok or tok != tok.strip() or any(c.isspace() for c in tok):
            raise LmlabError(f"special token {tok!r} must be a non-empty string without whitespace, e.g. '<extract>'")
        if tok not in out:
            out.append(tok)
    return out


def user_special_tokens(saved: list[str]) -> list[str]:
    """The user-defined part of a saved special-token list, checking that the four defaults lead it."""
    saved = list(saved)
    if tuple(saved[: len(DEFAULT_SPECIAL_TOKENS)]) != DEFAULT_SPECIAL_TOKENS:
        raise LmlabError(f"special tokens must start with {', '.join(DEFAULT_SPECIAL_TOKENS)}")
    return saved[len(DEFAULT_SPECIAL_TOKENS):]


def special_splitter(special_tokens: Iterable[str]) -> re.Pattern[str]:
    """A regex whose `split` yields text pieces and, at odd positions, the special tokens found in the text.

    Longest names first so that '<extract_all>' wins over '<extract>' when both are special.
    """
    names = sorted(set(special_tokens), key=lambda t: (-len(t), t))
    return re.compile("(" + "|".join(re.escape(t) for t in names) + ")")


class TableTokenizer(Tokenizer):
    """A tokenizer whose vocabulary is a plain list (char, word): id ↔ token lookups shared by those kinds.

    Subclasses set `_id_to_tok` (list: id → token), `_tok_to_id` (dict: token → id) and `_specials` (list).
    """

    @property
    def vocab_size(self) -> int:
        return len(self._id_to_tok)

    def token_to_id(self, token: str) -> int | None:
        return self._tok_to_id.get(token)

    def id_to_token(self, idx: int) -> str:
        if not 0 <= idx < len(self._id_to_tok):
            raise LmlabError(f"token id {idx} is outside this tokenizer's vocabulary (0..{self.vocab_size - 1})")
        return self._id_to_tok[idx]

    @property
    def special_tokens(self) -> list[str]:
        return list(self._specials)
