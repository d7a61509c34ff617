"""Decoding for the encoder-decoder model (`lmlab.models.seq2seq`): greedy and beam search, via `generate`.

The encoder runs once per batch of sources. The decoder, given an encoded source, is a decoder-only language
model whose prompt is `<bos>`: `_DecoderView` presents it with the forward signature and KV cache that
`lmlab.generation.decoding.generate` drives, so greedy decoding, beam search (length penalty, <eos> handling,
early stopping), unknown-id masking and per-token log-probs are that module's code, not a second copy.
Greedy decodes all sources of a batch together; beam search (which `generate` runs one prompt at a time) decodes
one source per call, its encoder output repeated for every beam.

Conventions as in `decoding`: `<eos>` ends a translation (it is in `tokens`, not in `text`); `logprob` is the sum of
the chosen tokens' log-probabilities in nats (the model score, <eos> included); beam search ranks finished
hypotheses by sum / len**length_penalty.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import torch
import torch.nn as nn

from lmlab.errors import LmlabError
from lmlab.generation.decoding import eval_mode, generate
from lmlab.models.seq2seq import EncoderOutput, Seq2Seq
from lmlab.tokenization import Tokenizer


@dataclass
class Translation:
    """One decoded target sequence."""

    source: str            # the source text (decoded, when given as token ids)
    text: str              # the output text, without <eos>
    tokens: list[int]      # output ids (a final <eos> included when finish_reason == "eos")
    logprob: float         # Σ log p(token | source, previous tokens) over `tokens`, nats
    finish_reason: str     # "eos" | "length" (max_new_tokens reached)

    def to_dict(self) -> dict:
        return {"source": self.source, "text": self.text, "tokens": self.tokens, "logprob": self.logprob,
                "finish_reason": self.finish_reason}


class _DecoderView(nn.Module):
    """The decoder of `model` with its encoder output fixed: forward(idx, kv_cache=..., last_only=...) → (logits,
    None) like GPT's, so `decoding.generate` can drive it. `config`/`lm_head` give what `KVCache.for_model` reads.
    A batch with more rows than `enc` (beam search over one source) repeats the first source for every row."""

    def __init__(self, model: Seq2Seq, enc: EncoderOutput):
        super().__init__()
        self.model, self.enc, self.lm_head = model, enc, model.lm_head
        c = model.config
        self.config = SimpleNamespace(n_layer=c.n_dec_layer, n_head=c.n_head, head_dim=c.head_dim,
                                      block_size=c.block_size)
        self.train(model.training)  # decoding's eval_mode restores this mode on exit: it must be the model's

    def forward(self, idx: torch.Tensor, targets=None, *, attention_mask=None, position_ids=None, kv_cache=None,
                last_only: bool = False):
        # Every prompt is the single token <bos>, so `generate` never pads and never passes a mask or positions.
        assert attention_mask is None and position_ids is None and targets is None
        enc = self.enc
        if idx.shape[0] != enc.memory.shape[0]:
            enc = enc.select(torch.zeros(idx.shape[0], dtype=torch.long, device=idx.device))
        return self.model.decode(idx, enc, kv_cache=kv_cache, last_only=last_only), None


def _source_ids(tokenizer: Tokenizer, source: str | list[int], block_size: int) -> list[int]:
    ids = tokenizer.encode(source) if isinstance(source, str) else [int(i) for i in source]
    if not ids:
        raise LmlabError("cannot translate an empty source text")
    if len(ids) > block_size:
        raise LmlabError(f"the source has {len(ids)} tokens, more than the model's block_size {block_size}; "
                         "shorten it")
    return ids


def translate(model: Seq2Seq, tokenizer: Tokenizer, sources: str | list[str] | list[list[int]], *,
              max_new_tokens: int | None = None, beam: int = 1, length_penalty: float = 1.0,
              batch_size: int = 64) -> list[Translation]:
    """Decode a target for each source (a text or a list of token ids) with greedy search (beam=1) or beam search
    (beam > 1 beams). max_new_tokens: most output tokens incl. <eos> (default and maximum: block_size − 1, since
    the decoder's input starts with <bos>). batch_size: sources encoded and greedily decoded together.
    Returns one Translation per source, in order."""
    if not isinstance(model, Seq2Seq):
        raise LmlabError(f"translation needs an encoder-decoder model (train one with --model seq2seq); this is a "
                         f"{type(model).__name__}")
    if beam < 1:
        raise LmlabError(f"beam must be ≥ 1, got {beam}")
    if batch_size < 1:
        raise LmlabError(f"batch_size must be ≥ 1, got {batch_size}")
    block = model.config.block_size
    max_new = block - 1 if max_new_tokens is None else max_new_tokens
    if not 1 <= max_new <= block - 1:
        raise LmlabError(f"max_new_tokens must be between 1 and block_size − 1 = {block - 1}, got {max_new_tokens}")
    items = [sources] if isinstance(sources, str) else list(sources)
    ids = [_source_ids(tokenizer, s, block) for s in items]
    device = next(model.parameters()).device
    bos = [tokenizer.bos_id]
    out: list[Translation] = []
    with eval_mode(model):
        for start in range(0, len(ids), batch_size):
            chunk = ids[start:start + batch_size]
            src = torch.full((len(chunk), max(map(len, chunk))), model.config.pad_id, dtype=torch.long)
            for i, row in enumerate(chunk):
                src[i, :len(row)] = torch.tensor(row)
            enc = model.encode(src.to(device))
            if beam == 1:
                completions = generate(_DecoderView(model, enc), tokenizer, [bos] * len(chunk),
                                       max_new_tokens=max_new, temperature=0.0, return_logprobs=True)
            else:
                completions = [generate(_DecoderView(model, enc.select(torch.tensor([i], device=device))),
                                        tokenizer, [bos], max_new_tokens=max_new, num_beams=beam,
                                        length_penalty=length_penalty, return_logprobs=True)[0]
                               for i in range(len(chunk))]
            for source, c in zip(items[start:start + batch_size], completions):
                out.append(Translation(source if isinstance(source, str) else tokenizer.decode(source), c.text,
                                       c.tokens, float(sum(c.token_logprobs or [])), c.finish_reason))
    return out
