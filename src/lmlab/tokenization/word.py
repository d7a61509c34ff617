"""Word-level tokenizer: words, numbers and punctuation marks as tokens, with implicit single spaces.

Text is cut into words (`\\w+`, keeping inner apostrophes: "don't"), numbers ("3.5", "1,000"), single punctuation
marks, and whitespace runs. A word-level model should not spend half its positions on spaces, so the ordinary
single space is *implicit*: `decode` puts one space between two tokens unless the second is closing punctuation
(`. , ; : ! ? ) ] } %`…) or the first is opening punctuation (`( [ { $ #`…), and never next to hyphens, slashes or
special tokens. Wherever the text differs from that default, `encode` writes it down explicitly: a whitespace token
(`"\\n"`, `"\\n\\n"`, `"  "`, `" "`…) for other spacing, and `<glue>` for "no space here". Hence
`decode(encode(s)) == s` for every `s` whose words are all in the vocabulary; a word outside it comes back as
`<unk>` (and an unknown whitespace run is spelled with the always-present `" "`, `"\\n"`, `"\\t"` tokens).

Id layout: special tokens (defaults at 0..3, then the user's), `<glue>`, `" "`, `"\\n"`, `"\\t"`, then the kept
tokens, most frequent first (ties in string order).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Iterable

from lmlab.errors import LmlabError
from lmlab.tokenization.base import TableTokenizer, check_special_tokens, special_splitter, user_special_tokens

GLUE = "<glue>"
RESERVED = (GLUE, " ", "\n", "\t")
# Numbers keep their inner separators; words keep inner apostrophes; any other non-space character stands alone.
PIECE_RE = re.compile(r"\d+(?:[.,]\d+)*|\w+(?:['’]\w+)*|\s+|[^\w\s]")
NO_SPACE_BEFORE = frozenset(".,;:!?)]}%…’”-/")
NO_SPACE_AFTER = frozenset("([{$#£€“‘-/")


def split_pieces(text: str) -> list[str]:
    """Words, numbers, single punctuation marks and whitespace runs of `text`, in order (they concatenate to it)."""
    return PIECE_RE.findall(text)


class WordTokenizer(TableTokenizer):
    """Words ↔ ids. Build with `WordTokenizer.train(texts, ...)` or `WordTokenizer(words, ...)`."""

    kind = "word"

    def __init__(self, words: Iterable[str], special_tokens: Iterable[str] = ()):
        """`words`: vocabulary entries after the reserved ones, in id order (reserved/special entries are skipped)."""
        self._specials = check_special_tokens(special_tokens)
        self._id_to_tok: list[str] = list(self._specials) + list(RESERVED)
        seen = set(self._id_to_tok)
        self._words = [w for w in words if not (w in seen or seen.add(w))]
        self._id_to_tok += self._words
        self._tok_to_id = {t: i for i, t in enumerate(self._id_to_tok)}
        self._special_ids = {t: i for i, t in enumerate(self._specials)}
        self._splitter = special_splitter(self._specials)
        self._glue = self._tok_to_id[GLUE]
        self._unk = self._special_ids["<unk>"]
        # Per id: may an implicit space come before / after it? (whitespace tokens never take implicit spaces)
        self._space_before = [self._takes_space(t, NO_SPACE_BEFORE) for t in self._id_to_tok]
        self._space_after = [self._takes_space(t, NO_SPACE_AFTER) for t in self._id_to_tok]
        self._space_before[self._glue] = self._space_after[self._glue] = False

    def _takes_space(self, token: str, refusers: frozenset[str]) -> bool:
        if token == "<unk>":  # stands for a word, so it is spaced like one
            return True
        return not (token in self._special_ids or token.isspace() or token in refusers)

    # --- training ------------------------------------------------------------------------------------------------
    @staticmethod
    def min_vocab_size(special_tokens: Iterable[str] = ()) -> int:
        """Smallest `vocab_size` that leaves room for at least one word."""
        return len(check_special_tokens(special_tokens)) + len(RESERVED) + 1

    @classmethod
    def train(cls, texts: Iterable[str], *, vocab_size: int | None = None, min_frequency: int = 1,
              special_tokens: Iterable[str] = ()) -> "WordTokenizer":
        """Count pieces in `texts`; keep those seen ≥ `min_frequency` times, most frequent first, until the
        vocabulary (specials and reserved entries included) holds `vocab_size` ids (None: no cap)."""
        specials = check_special_tokens(special_tokens)
        splitter = special_splitter(specials)
        counts: Counter[str] = Counter()
        for t in texts:
            for k, piece in enumerate(splitter.split(t)):
                if k % 2 == 0:
                    counts.update(PIECE_RE.findall(piece))
        for r in RESERVED:
            counts.pop(r, None)
        kept = [w for w, n in sorted(counts.items(), key=lambda wn: (-wn[1], wn[0])) if n >= min_frequency]
        if vocab_size is not None:
            kept = kept[: vocab_size - cls.min_vocab_size(special_tokens) + 1]
        return cls(kept, special_tokens=list(special_tokens))

    # --- the interface -------------------------------------------------------------------------------------------
    def _piece_ids(self, text: str) -> list[int | str]:
        """Ids of words/specials, and raw strings for whitespace runs (resolved by `encode`)."""
        out: list[int | str] = []
        for k, part in enumerate(self._splitter.split(text)):
            if k % 2:
                out.append(self._special_ids[part])
                continue
            for piece in PIECE_RE.findall(part):
                out.append(piece if piece.isspace() else self._tok_to_id.get(piece, self._unk))
        return out

    def encode(self, text: str) -> list[int]:
        """Ids of the words, numbers and punctuation of `text`, plus explicit whitespace / `<glue>` tokens
        wherever the spacing differs from the implicit single space (see the module docstring)."""
        out: list[int] = []
        prev: int | None = None  # last word id, None at the start or after explicit whitespace
        gap = ""  # whitespace seen since `prev`
        for item in self._piece_ids(text):
            if isinstance(item, str):
                gap += item
                continue
            implicit = " " if prev is not None and self._space_after[prev] and self._space_before[item] else ""
            if gap != implicit:
                out += self._whitespace_ids(gap) if gap else [self._glue]
            out.append(item)
            prev, gap = item, ""
        if gap:
            out += self._whitespace_ids(gap)
        return out

    def _whitespace_ids(self, run: str) -> list[int]:
        idx = self._tok_to_id.get(run)
        if idx is not None:
            return [idx]
        return [self._tok_to_id.get(c, self._unk) for c in run]  # ' ', '\n', '\t' are always there

    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids`: tokens joined by the implicit-space rule; `<glue>` → nothing; `<unk>` → '<unk>'."""
        ids = self._as_ids(ids)
        parts: list[str] = []
        prev: int | None = None
        for i in ids:
            if i == self._glue:
                prev = None
                continue
            tok = self._id_to_tok[i]
            if tok.isspace():
                parts.append(tok)
                prev = None
                continue
            if prev is not None and self._space_after[prev] and self._space_before[i]:
                parts.append(" ")
            parts.append(tok)
            prev = i
        return "".join(parts)

    def to_hf_tokenizer(self):
        """Refused: whether `encode` writes a whitespace or `<glue>` token depends on the neighbouring tokens (the
        implicit-space rule), which no Hugging Face `tokenizers` component (normalizer, pre-tokenizer, model,
        post-processor) can decide."""
        raise LmlabError("a word tokenizer cannot be written as a Hugging Face tokenizer: its implicit single "
                         "spaces and <glue> tokens depend on the neighbouring words, which no `tokenizers` component "
                         "can express; train the model with a bpe (or char) tokenizer to export it")

    def to_dict(self) -> dict[str, Any]:
        return {"special_tokens": self._specials, "words": self._words}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "WordTokenizer":
        return cls(d["words"], special_tokens=user_special_tokens(d["special_tokens"]))
