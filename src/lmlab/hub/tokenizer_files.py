"""An lmlab tokenizer as the files transformers' `AutoTokenizer.from_pretrained(DIR)` reads.

    tokenizer.json           the Hugging Face `tokenizers` pipeline (`Tokenizer.to_hf_tokenizer()`): same ids
    tokenizer_config.json    class PreTrainedTokenizerFast, special tokens by role, context length
    special_tokens_map.json  the special tokens by role (older transformers read them from here)
    vocab.json, merges.txt   only for a GPT-2 tokenizer read from those files, so GPT2Tokenizer loads it too

Roles. lmlab separates documents with `<eos>` and scores a text's first token after `<eos>` (see
lmlab.generation.scoring); `<bos>` never occurs in training data. So `<eos>`'s token is also written as
`bos_token` — what Hugging Face tools (generate(), lm-eval's loglikelihood prefix) put before a document — exactly
as GPT-2's `<|endoftext|>` plays both. `<bos>` and user tokens such as `<extract>` stay special tokens (never split,
skipped by `decode(skip_special_tokens=True)`) under `additional_special_tokens`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lmlab.tokenization import BPETokenizer, Tokenizer
from lmlab.utils import atomic_write_json, atomic_write_text

_GPT2_EOT = "<|endoftext|>"


def hf_special_tokens(tokenizer: Tokenizer) -> dict[str, Any]:
    """{"bos_token", "eos_token", "unk_token", "pad_token": token string, "additional_special_tokens": [...]} for
    `tokenizer` (see the module docstring for why bos_token is the `<eos>` token)."""
    roles = tokenizer.special_roles

    def token(role: str) -> str:
        return roles.get(role, role)

    named = {"bos_token": token("<eos>"), "eos_token": token("<eos>"), "unk_token": token("<unk>"),
             "pad_token": token("<pad>")}
    taken = set(named.values())
    return {**named, "additional_special_tokens": [t for t in tokenizer.special_tokens if t not in taken]}


def is_gpt2_files_tokenizer(tokenizer: Tokenizer) -> bool:
    """True for GPT-2's own tokenizer (`BPETokenizer.from_gpt2_files`): byte-level BPE with GPT-2's regex whose
    `<|endoftext|>` plays `<eos>`."""
    return (isinstance(tokenizer, BPETokenizer) and tokenizer.numbers == "gpt2"
            and tokenizer.special_roles.get("<eos>") == _GPT2_EOT)


def _gpt2_files(tokenizer: BPETokenizer) -> tuple[str, str]:
    """vocab.json and merges.txt text of a GPT-2-style BPE tokenizer."""
    model = tokenizer.to_dict()["hf"]["model"]
    vocab = json.dumps(model["vocab"], ensure_ascii=False)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return vocab, "#version: 0.2\n" + "\n".join(merges) + "\n"


def write_hf_tokenizer(tokenizer: Tokenizer, out_dir: Path, *, model_max_length: int) -> list[str]:
    """Write `tokenizer` into `out_dir` (which exists) as the files listed in the module docstring, each
    atomically; `model_max_length` is the model's context in tokens. Returns the names written. Raises LmlabError
    for a tokenizer kind with no Hugging Face equivalent (word)."""
    hf = tokenizer.to_hf_tokenizer()
    specials = hf_special_tokens(tokenizer)
    atomic_write_text(out_dir / "tokenizer.json", hf.to_str())
    atomic_write_json(out_dir / "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": model_max_length,
        "clean_up_tokenization_spaces": False, **specials})
    atomic_write_json(out_dir / "special_tokens_map.json", specials)
    written = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]
    if is_gpt2_files_tokenizer(tokenizer):
        vocab, merges = _gpt2_files(tokenizer)
        atomic_write_text(out_dir / "vocab.json", vocab)
        atomic_write_text(out_dir / "merges.txt", merges)
        written += ["vocab.json", "merges.txt"]
    return written
