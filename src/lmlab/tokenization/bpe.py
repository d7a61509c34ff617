"""Byte-level BPE, trained and applied by Hugging Face `tokenizers` (Rust); this module only configures it.

Text is cut into pieces by a pre-tokenizer regex, each piece is written as UTF-8 bytes (shown as GPT-2's printable
byte alphabet, e.g. 'Ġ' for a space), and learned merges join bytes into tokens. Every string round-trips exactly.

Number policies (how digit runs are pre-split before merges are learned):
  gpt2     GPT-2's own regex: a digit run (with one leading space) is one piece; merges follow frequency,
           so "12345" splits however the training text made it.
  groups3  digit runs cut left to right into chunks of at most 3 digits (cl100k/GPT-4 style `\\p{N}{1,3}`),
           never attached to a space: "12345" → "123" "45".
  digits   every digit its own piece, so its own token: "12345" → "1" "2" "3" "4" "5".

The whole HF tokenizer (`tokenizer.to_str()` JSON) is stored in our file under "hf", so loading rebuilds it exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from tokenizers import Regex, decoders, models, pre_tokenizers, trainers
from tokenizers import Tokenizer as HFTokenizer

from lmlab.errors import LmlabError
from lmlab.tokenization.base import Tokenizer, check_special_tokens, user_special_tokens

N_BYTES = 256
GPT2_EOT = "<|endoftext|>"
NUMBER_POLICIES = ("gpt2", "groups3", "digits")
# GPT-2's pre-tokenizer regex with the number alternative left open; `gpt2` fills in GPT-2's own ` ?\p{N}+`.
_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+|NUMBER| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_NUMBER_ALTERNATIVE = {"groups3": r"\p{N}{1,3}", "digits": r"\p{N}"}


def check_number_policy(numbers: str) -> str:
    if numbers not in NUMBER_POLICIES:
        raise LmlabError(f"unknown number policy {numbers!r}: choose one of {', '.join(NUMBER_POLICIES)}")
    return numbers


def _pre_tokenizer(numbers: str):
    """The HF pre-tokenizer of a number policy (regex split, then bytes → GPT-2's printable byte alphabet)."""
    if numbers == "gpt2":
        return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)  # exactly GPT-2's regex
    pattern = _PATTERN.replace("NUMBER", _NUMBER_ALTERNATIVE[numbers])
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])


def _new_hf(numbers: str, model) -> HFTokenizer:
    hf = HFTokenizer(model)
    hf.pre_tokenizer = _pre_tokenizer(numbers)
    hf.decoder = decoders.ByteLevel()
    return hf


class BPETokenizer(Tokenizer):
    """Byte-level BPE. Build with `BPETokenizer.train(...)`, `BPETokenizer.from_gpt2_files(...)` or `from_dict`."""

    kind = "bpe"

    def __init__(self, hf: HFTokenizer, numbers: str, special_tokens: Iterable[str],
                 roles: dict[str, str] | None = None):
        """`hf`: a configured HF tokenizer whose added special tokens are `special_tokens` (all of them, in id
        order); `roles`: role name → token where the role's own token is absent (GPT-2 files)."""
        self._hf = hf
        self.numbers = check_number_policy(numbers)
        self._specials = list(special_tokens)
        self._roles = dict(roles or {})
        self._special_ids = {}
        for t in self._specials:
            idx = hf.token_to_id(t)
            if idx is None:
                raise LmlabError(f"special token {t!r} is missing from the BPE vocabulary")
            self._special_ids[t] = idx
        self._special_id_set = frozenset(self._special_ids.values())
        ids = hf.get_vocab(with_added_tokens=True).values()
        self._vocab_size = len(ids)
        if max(ids, default=-1) != self._vocab_size - 1:  # n distinct ids with max n-1: exactly 0..n-1
            raise LmlabError("the BPE vocabulary's ids are not contiguous from 0, so it cannot index an embedding")

    # --- construction --------------------------------------------------------------------------------------------
    @staticmethod
    def min_vocab_size(special_tokens: Iterable[str] = ()) -> int:
        """Specials plus the 256 byte tokens (a smaller vocabulary could not spell every string)."""
        return len(check_special_tokens(special_tokens)) + N_BYTES

    @classmethod
    def train(cls, texts: Iterable[str], *, vocab_size: int, numbers: str = "gpt2", min_frequency: int = 1,
              special_tokens: Iterable[str] = (), show_progress: bool = False) -> "BPETokenizer":
        """Learn merges on `texts` (streamed) until the vocabulary holds `vocab_size` ids (fewer if the text runs
        out of pairs seen ≥ `min_frequency` times). Ids: specials, then the 256 bytes, then merges."""
        specials = check_special_tokens(special_tokens)
        hf = _new_hf(check_number_policy(numbers), models.BPE())
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      show_progress=show_progress)
        hf.train_from_iterator(texts, trainer=trainer)
        return cls(hf, numbers, specials)

    @classmethod
    def from_gpt2_files(cls, vocab_json: str | Path, merges_txt: str | Path) -> "BPETokenizer":
        """GPT-2's tokenizer from its `vocab.json` + `merges.txt` (local files): ids equal vocab.json's ids, and
        `<|endoftext|>` (50256 in GPT-2) plays `<eos>`, `<bos>`, `<pad>` and `<unk>`."""
        for p in (vocab_json, merges_txt):
            if not Path(p).is_file():
                raise LmlabError(f"GPT-2 tokenizer file not found: {p}")
        try:
            vocab, merges = models.BPE.read_file(str(vocab_json), str(merges_txt))
        except Exception as e:
            raise LmlabError(f"cannot read GPT-2 files {vocab_json} / {merges_txt}: {e}") from None
        if GPT2_EOT not in vocab:
            raise LmlabError(f"{vocab_json} has no {GPT2_EOT} entry; is it a GPT-2 vocab.json?")
        hf = _new_hf("gpt2", models.BPE(vocab=vocab, merges=merges))
        hf.add_special_tokens([GPT2_EOT])  # already in the vocab: keeps its id, and is never split
        roles = {r: GPT2_EOT for r in ("<pad>", "<unk>", "<bos>", "<eos>")}
        return cls(hf, "gpt2", [GPT2_EOT], roles=roles)

    # --- the interface -------------------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Token ids of `text`; special-token strings in `text` become their ids (HF added-token matching)."""
        return self._hf.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """`encode` for many texts at once, in parallel Rust threads (HF `encode_batch`)."""
        return [e.ids for e in self._hf.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids`. Special tokens are rendered by name; the byte runs between them are read as UTF-8
        (invalid sequences → U+FFFD). HF's byte-level decoder would garble non-ASCII special names, hence the split."""
        ids = self._as_ids(ids)
        special = self._special_id_set
        if special.isdisjoint(ids):
            return self._hf.decode(ids, skip_special_tokens=False)
        parts: list[str] = []
        run: list[int] = []
        for i in ids:
            if i in special:
                if run:
                    parts.append(self._hf.decode(run, skip_special_tokens=False))
                    run = []
                parts.append(self._hf.id_to_token(i))
            else:
                run.append(i)
        if run:
            parts.append(self._hf.decode(run, skip_special_tokens=False))
        return "".join(parts)

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    def token_to_id(self, token: str) -> int | None:
        return self._hf.token_to_id(token)

    def id_to_token(self, idx: int) -> str:
        tok = self._hf.id_to_token(int(idx)) if 0 <= idx < self._vocab_size else None
        if tok is None:
            raise LmlabError(f"token id {idx} is outside this tokenizer's vocabulary (0..{self.vocab_size - 1})")
        return tok

    @property
    def special_tokens(self) -> list[str]:
        return list(self._specials)

    @property
    def special_roles(self) -> dict[str, str]:
        return dict(self._roles)

    def _append_special_tokens(self, new: list[str]) -> "BPETokenizer":
        # HF gives added tokens the next free ids; a copy, so this tokenizer (maybe shared) is left unchanged.
        hf = HFTokenizer.from_str(self._hf.to_str())
        hf.add_special_tokens(new)
        return BPETokenizer(hf, self.numbers, self._specials + new, roles=self._roles)

    def to_hf_tokenizer(self) -> HFTokenizer:
        """A copy of the underlying Hugging Face tokenizer: it already is the whole pipeline (pre-tokenizer regex of
        the number policy, byte-level alphabet, merges, special tokens as added tokens, byte-level decoder)."""
        return HFTokenizer.from_str(self._hf.to_str())

    @property
    def hf_tokenizer(self) -> HFTokenizer:
        """The underlying Hugging Face tokenizer (for tools that want it; do not modify it)."""
        return self._hf

    def _fingerprint_data(self) -> dict[str, Any]:
        # Tokens in id order, merges and the number policy fix the mapping; the rest of HF's JSON may gain fields
        # with a `tokenizers` upgrade, which must not invalidate token shards made with the same vocabulary.
        model = json.loads(self._hf.to_str())["model"]
        merges = [m.split(" ", 1) if isinstance(m, str) else list(m) for m in model["merges"]]
        vocab = self._hf.get_vocab(with_added_tokens=True)
        return {"numbers": self.numbers, "special_tokens": self._specials, "roles": self._roles,
                "tokens": sorted(vocab, key=vocab.__getitem__), "merges": merges}

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"numbers": self.numbers, "special_tokens": self._specials,
                             "hf": json.loads(self._hf.to_str())}
        if self._roles:
            d["roles"] = self._roles
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BPETokenizer":
        hf = HFTokenizer.from_str(json.dumps(d["hf"]))
        roles = d.get("roles") or {}
        specials = list(d["special_tokens"]) if roles else check_special_tokens(user_special_tokens(d["special_tokens"]))
        return cls(hf, d["numbers"], specials, roles=roles)
