"""Character-level tokenizer: one id per Unicode character seen in training, with optional UTF-8 byte fallback.

Id layout (fixed, so ids are predictable): special tokens (`<pad>` `<unk>` `<bos>` `<eos>` at 0..3, then the
user's), then — when `byte_fallback` — 256 byte tokens `<0x00>`..`<0xFF>`, then the characters in code-point order.
A character outside the vocabulary becomes `<unk>`, or with byte fallback its UTF-8 bytes, so that
`decode(encode(s)) == s` for every string.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

from lmlab.errors import LmlabError
from lmlab.tokenization.base import TableTokenizer, check_special_tokens, special_splitter, user_special_tokens

N_BYTES = 256


def byte_token(b: int) -> str:
    """Name of the byte token for byte value `b` (0..255), e.g. 171 → '<0xAB>'."""
    return f"<0x{b:02X}>"


class CharTokenizer(TableTokenizer):
    """Characters ↔ ids. Build with `CharTokenizer.train(texts, ...)` or `CharTokenizer(chars, ...)`."""

    kind = "char"

    def __init__(self, chars: Iterable[str], special_tokens: Iterable[str] = (), byte_fallback: bool = True):
        """`chars`: the vocabulary's characters (each one code point, no duplicates); `special_tokens`: extra
        special tokens after the four defaults."""
        self._specials = check_special_tokens(special_tokens)
        self.byte_fallback = bool(byte_fallback)
        chars = sorted(set(chars))
        if any(len(c) != 1 for c in chars):
            raise LmlabError("a char tokenizer's vocabulary must hold single characters")
        self._chars = chars
        self._byte0 = len(self._specials)  # id of <0x00> when byte_fallback
        first_char = self._byte0 + (N_BYTES if self.byte_fallback else 0)
        self._id_to_tok: list[str] = list(self._specials)
        if self.byte_fallback:
            self._id_to_tok += [byte_token(b) for b in range(N_BYTES)]
        self._id_to_tok += chars
        self._tok_to_id = {t: i for i, t in enumerate(self._id_to_tok)}
        self._char_to_id = {c: first_char + i for i, c in enumerate(chars)}
        self._special_ids = {t: i for i, t in enumerate(self._specials)}
        self._splitter = special_splitter(self._specials)

    # --- training ------------------------------------------------------------------------------------------------
    @staticmethod
    def min_vocab_size(special_tokens: Iterable[str] = (), byte_fallback: bool = True) -> int:
        """Smallest `vocab_size` that leaves room for at least one character."""
        return len(check_special_tokens(special_tokens)) + (N_BYTES if byte_fallback else 0) + 1

    @classmethod
    def train(cls, texts: Iterable[str], *, vocab_size: int | None = None, min_frequency: int = 1,
              special_tokens: Iterable[str] = (), byte_fallback: bool = True) -> "CharTokenizer":
        """Count characters in `texts`; keep those seen ≥ `min_frequency` times, the most frequent first until the
        vocabulary (specials and byte tokens included) holds `vocab_size` ids (None: no cap)."""
        counts: Counter[str] = Counter()
        for t in texts:
            counts.update(t)
        kept = [c for c, n in sorted(counts.items(), key=lambda cn: (-cn[1], cn[0])) if n >= min_frequency]
        if vocab_size is not None:
            room = vocab_size - cls.min_vocab_size(special_tokens, byte_fallback) + 1
            kept = kept[:room]
        return cls(kept, special_tokens=list(special_tokens), byte_fallback=byte_fallback)

    # --- the interface -------------------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """One id per character (UTF-8 byte ids for unknown characters under byte fallback, else `<unk>`);
        special-token strings in `text` become their ids."""
        out: list[int] = []
        c2i = self._char_to_id
        for k, piece in enumerate(self._splitter.split(text)):
            if k % 2:
                out.append(self._special_ids[piece])
                continue
            ids = [c2i.get(c, -1) for c in piece]
            if -1 not in ids:
                out += ids
                continue
            for c, i in zip(piece, ids):
                if i >= 0:
                    out.append(i)
                elif self.byte_fallback:
                    out += [self._byte0 + b for b in c.encode("utf-8")]
                else:
                    out.append(self._special_ids["<unk>"])
        return out

    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids`; runs of byte tokens are joined and read as UTF-8 (invalid sequences → U+FFFD)."""
        ids = self._as_ids(ids)
        parts: list[str] = []
        pending = bytearray()
        lo, hi = self._byte0, (self._byte0 + N_BYTES if self.byte_fallback else self._byte0)
        for i in ids:
            if lo <= i < hi:
                pending.append(i - lo)
                continue
            if pending:
                parts.append(pending.decode("utf-8", errors="replace"))
                pending.clear()
            parts.append(self._id_to_tok[i])
        if pending:
            parts.append(pending.decode("utf-8", errors="replace"))
        return "".join(parts)

    @property
    def chars(self) -> list[str]:
        """The vocabulary's characters in id order."""
        return list(self._chars)

    def to_hf_tokenizer(self):
        """The same mapping in Hugging Face `tokenizers`: a BPE model with this vocabulary and no merges splits text
        into characters; an unknown character becomes its `<0xXX>` byte tokens (BPE's byte_fallback, whose token
        names are ours) or `<unk>`; special tokens are added tokens; the decoder joins byte runs as UTF-8."""
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models

        vocab = {t: i for i, t in enumerate(self._id_to_tok)}
        hf = HFTokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>", byte_fallback=self.byte_fallback))
        hf.add_special_tokens(self._specials)  # already in the vocabulary: they keep their ids, never split
        hf.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse()])
        return hf

    def to_dict(self) -> dict[str, Any]:
        return {"special_tokens": self._specials, "byte_fallback": self.byte_fallback, "chars": self._chars}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CharTokenizer":
        return cls(d["chars"], special_tokens=user_special_tokens(d["special_tokens"]),
                   byte_fallback=bool(d["byte_fallback"]))
