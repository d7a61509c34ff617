"""What every word-embedding model shares: a word mask and the (V, d) matrix of word vectors (the configs get
`to_dict`/`from_dict` from lmlab.models.config_dict, like every model config).

An embedding model is saved like any other model (config.json + model.safetensors in a run dir); what the
`lmlab embed` commands and the world-relation evaluation need from it is only `word_vectors()` and `word_mask`.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from lmlab.errors import LmlabError
from lmlab.models.config_dict import check_sizes


def check_common(cfg) -> None:
    """Raise LmlabError for nonsense in the fields every embedding config has."""
    check_sizes(type(cfg).__name__, cfg, "vocab_size", "dim", "window", "block_size")
    if cfg.block_size < 2:
        raise LmlabError(f"block_size must be ≥ 2 (got {cfg.block_size})")


class EmbeddingModel(nn.Module):
    """Base of the word-embedding models. Subclasses fill `word_mask` in `fit_from_tokens` and define
    `word_vectors()`. `word_mask` (V,) bool is saved with the weights so a loaded model knows which ids are words."""

    # `lmlab train --text` trains this tokenizer kind when none is given: word vectors are vectors of words (as in
    # gensim and the C tool, which split on whitespace); BPE pieces would give vectors of fragments such as "bled".
    default_tokenizer = "word"

    def __init__(self, vocab_size: int):
        super().__init__()
        self.register_buffer("word_mask", torch.zeros(vocab_size, dtype=torch.bool))

    def word_vectors(self) -> torch.Tensor:
        """(V, d) float32 word vectors; rows of non-word ids are meaningless (see `word_mask`)."""
        raise NotImplementedError
