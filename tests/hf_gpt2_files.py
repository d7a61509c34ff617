"""A small random Hugging Face GPT-2 written to disk the way `save_pretrained` does, for interop tests (no download).

Shared by the hub, evaluation, inspection and editing tests so each builds the same kind of directory one way.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch


def save_random_hf_gpt2(d: Path, texts: list[str], *, n_layer: int, n_embd: int, n_head: int = 2,
                        n_positions: int = 64, seed: int = 0, **config):
    """Train a byte-level BPE (vocab ≤ 300) on `texts`, write vocab.json + merges.txt + a random GPT-2 into `d`
    (`config`: further GPT2Config fields, e.g. activation_function).

    Returns the transformers GPT2LMHeadModel in eval mode (the same weights that were saved).
    """
    import transformers
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=300, special_tokens=["<|endoftext|>"], show_progress=False)
    bpe.save_model(str(d))  # vocab.json + merges.txt in GPT-2's format
    vocab = json.loads((Path(d) / "vocab.json").read_text())
    eot = vocab["<|endoftext|>"]
    torch.manual_seed(seed)
    cfg = transformers.GPT2Config(n_layer=n_layer, n_head=n_head, n_embd=n_embd, vocab_size=len(vocab),
                                  n_positions=n_positions, bos_token_id=eot, eos_token_id=eot, **config)
    model = transformers.GPT2LMHeadModel(cfg).eval()
    model.save_pretrained(d)
    return model
