"""Continuous (step-level) batching: many independent sequences decoded together over one shared KV cache, joining
and leaving between any two steps — what a server needs to answer concurrent requests without serving them one at a
time (Orca, Yu et al. 2022; vLLM).

    decoder = BatchedDecoder(model, tokenizer, max_rows=32)
    [seq] = decoder.add(tokenizer.encode("The capital of"), max_new_tokens=8, temperature=0)
    while decoder.active:
        for event in decoder.step():   # one new token for every live sequence
            print(event.seq_id, event.token, event.finish_reason)

How the cache is shared (`SlotCache`): row r of the cache holds sequence r's keys/values *right-aligned*, so that
every row's newest position sits in the same column `length - 1`; a row of n tokens fills columns
[length - n, length) and an attention mask hides the columns before it. A step writes one new column for every row,
each at its own position id (its own token count), so rows of different lengths decode as if each were alone.
A joining sequence's prompt is run once on its own (prefill) and its keys/values are copied into a free row (shifting
the shared columns right when its prompt is longer than `length`); a finished row is replaced by the last row, so
the live rows are always 0..n-1 and a step computes nothing for empty rows. When the columns run out, the shared
window slides left to the longest live row (every row still fits: prompt + max_new_tokens ≤ block_size).

Per sequence: greedy or sampled (temperature, top-k, top-p as `choose_next`, with the sequence's own seeded
generator, so a seeded sequence draws the same tokens as `generate(..., seed=s)` on its prompt alone), stop strings,
`<eos>`, max_new_tokens, and the log-prob of each chosen token with the top alternatives (nats, before temperature).
GPT-style models with a KV cache only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from lmlab.errors import LmlabError
from lmlab.generation.decoding import (_check_options, _cut_at_stop, _mask_unknown_ids, _model_device,
                                       _supports_kv_cache, choose_next, new_text)
from lmlab.generation.kv_storage import new_kv_cache
from lmlab.generation.weight_storage import stored_linears
from lmlab.models.gpt import KVCache
from lmlab.tokenization import Tokenizer


class SlotCache:
    """Keys/values of up to `max_rows` sequences, right-aligned in shared columns (see the module docstring).

    `store`: a `KVCache` of (n_layer, max_rows, H, max_len, d), held as `set_kv_cache_storage` chose. Rows
    0..rows-1 are live; `row_len[r]` is row r's token count, held in columns [length - row_len[r], length).
    Implements the cache protocol of `GPT.forward` (length, update, advance) for the live rows only. Rows and
    columns move as held (no rounding again): every tensor of `store.held` is moved alike.
    """

    def __init__(self, model, max_rows: int, max_len: int | None = None):
        self.store = new_kv_cache(model, max_rows, max_len)
        self.max_len, self.device = self.store.max_len, self.store.k.device
        self.length = 0
        self.row_len: list[int] = []

    @property
    def rows(self) -> int:
        return len(self.row_len)

    # --- GPT.forward's cache protocol --------------------------------------------------------------------------
    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (rows,H,T,d) in the next T columns; return the live rows' keys/values (rows,H,length+T,d)."""
        n, start, end = self.rows, self.length, self.length + k.shape[2]
        self.store.write((layer, slice(None, n), slice(None), slice(start, end)), k, v)
        return self.store.attended(layer, n, end)

    def advance(self, n: int) -> None:
        self.length += n
        self.row_len = [t + n for t in self.row_len]

    # --- rows ---------------------------------------------------------------------------------------------------
    def attention_mask(self, new: int = 1) -> torch.Tensor:
        """(rows, length + new) 1 where a row may attend: its own filled columns and the `new` columns to come."""
        cols = torch.arange(self.length + new, device=self.device)[None, :]
        first = self.length - torch.tensor(self.row_len, device=self.device)[:, None]
        return (cols >= first).long()

    def positions(self) -> torch.Tensor:
        """(rows, 1) the position id of each row's next token (its token count)."""
        return torch.tensor(self.row_len, device=self.device)[:, None]

    def _move(self, dst: tuple, src: tuple) -> None:
        """Copy what every held tensor has at index `src` to index `dst` (tuples over layer, row, head, position);
        through a copy, since the two spans may overlap."""
        for t in self.store.held:
            t[dst] = t[src].clone()

    def add_row(self, prefill: KVCache) -> int:
        """Append a row holding the keys/values of a prefilled one-row cache (same storage); returns its row index."""
        if self.rows == self.store.batch_size:
            raise LmlabError(f"all {self.store.batch_size} cache rows are in use")
        n = prefill.length
        if n > self.max_len:
            raise LmlabError(f"a sequence of {n} tokens does not fit the cache's {self.max_len} columns")
        every = slice(None)
        if n > self.length:  # make room on the left: shift every live row right by n - length columns
            shift, r = n - self.length, self.rows
            self._move((every, slice(None, r), every, slice(shift, n)),
                       (every, slice(None, r), every, slice(None, self.length)))
            self.length = n
        r = self.rows
        for mine, theirs in zip(self.store.held, prefill.held):
            mine[:, r, :, self.length - n:self.length] = theirs[:, 0, :, :n]
        self.row_len.append(n)
        return r

    def remove_row(self, r: int) -> int | None:
        """Free row r by moving the last live row into it; returns the moved row's old index (None when r was last)."""
        last = self.rows - 1
        moved = None
        if r != last:
            n, every = self.row_len[last], slice(None)
            cols = slice(self.length - n, self.length)
            self._move((every, r, every, cols), (every, last, every, cols))
            self.row_len[r] = n
            moved = last
        self.row_len.pop()
        if not self.row_len:
            self.length = 0
        return moved

    def make_room(self, new: int = 1) -> None:
        """Slide the shared columns left so that `new` more fit: keep only the longest live row's span."""
        if self.length + new <= self.max_len:
            return
        keep = max(self.row_len)
        if keep + new > self.max_len:
            raise LmlabError(f"a sequence of {keep + new} tokens does not fit the cache's {self.max_len} columns")
        every = slice(None)
        self._move((every, every, every, slice(None, keep)),
                   (every, every, every, slice(self.length - keep, self.length)))
        self.length = keep


@dataclass
class TokenEvent:
    """One token chosen for one sequence by `BatchedDecoder.step`.

    logprob: log p(token) in nats under the model (log-softmax of the logits, before temperature / top-k / top-p).
    top: the `top_logprobs` most likely (id, logprob) alternatives at that step, most likely first.
    finish_reason: None while the sequence goes on; "eos" | "stop" (a stop string appeared) | "length" when this
    token ended it. text: the sequence's whole new text so far (cut before a stop string, without a final <eos>).
    """

    seq_id: int
    token: int
    logprob: float
    top: list[tuple[int, float]]
    finish_reason: str | None
    text: str


@dataclass
class _Sequence:
    seq_id: int
    prompt_ids: list[int]
    max_new_tokens: int
    temperature: float
    top_k: int | None
    top_p: float | None
    stop: list[str]
    generator: torch.Generator | None
    top_logprobs: int
    logits: torch.Tensor | None = None       # (V,) logits for the next token
    tokens: list[int] = field(default_factory=list)


class BatchedDecoder:
    """Decode many sequences together, one token per live sequence per `step()` (see the module docstring).

    max_rows: how many sequences decode at once (the cache's rows); `add` queues the rest until rows free up.
    """

    def __init__(self, model, tokenizer: Tokenizer, max_rows: int = 32):
        if not _supports_kv_cache(model):
            raise LmlabError(f"continuous batching needs a model with a KV cache (GPT), not {type(model).__name__}")
        if max_rows < 1:
            raise LmlabError(f"max_rows must be at least 1, got {max_rows}")
        self.model, self.tokenizer, self.max_rows = model, tokenizer, max_rows
        self.block = model.config.block_size
        self.cache = SlotCache(model, max_rows)
        self._rows: list[_Sequence] = []        # live sequences, in cache row order
        self._waiting: list[_Sequence] = []     # added, not yet prefilled
        self._next_id = 0

    @property
    def active(self) -> int:
        """Sequences not finished yet (decoding or waiting for a row)."""
        return len(self._rows) + len(self._waiting)

    @property
    def running(self) -> int:
        """Sequences that hold a cache row."""
        return len(self._rows)

    def add(self, prompt_ids: list[int], *, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
            top_p: float | None = None, stop: list[str] | None = None, seed: int | None = None,
            top_logprobs: int = 0, copies: int = 1) -> list[int]:
        """Queue `copies` sequences continuing `prompt_ids` (copies share one prefill); returns their ids.

        A seeded sequence samples with its own generator seeded `seed` (copy j: seed + j). prompt + max_new_tokens
        must fit the model's context.
        """
        _check_options(temperature, top_k, top_p, 1)
        ids = [int(i) for i in prompt_ids] or [self.tokenizer.eos_id]
        if max_new_tokens < 1:
            raise LmlabError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        if len(ids) + max_new_tokens > self.block:
            raise LmlabError(f"prompt of {len(ids)} tokens + {max_new_tokens} new tokens exceeds the model's context "
                             f"of {self.block} tokens")
        bad = [i for i in ids if not 0 <= i < self.tokenizer.vocab_size]
        if bad:
            raise LmlabError(f"prompt token id {bad[0]} is outside the tokenizer's ids 0..{self.tokenizer.vocab_size - 1}")
        device = _model_device(self.model)
        out = []
        for j in range(copies):
            gen = torch.Generator(device=device).manual_seed(seed + j) if seed is not None else None
            seq = _Sequence(self._next_id, ids, max_new_tokens, temperature, top_k, top_p,
                            [s for s in (stop or []) if s], gen, top_logprobs)
            self._next_id += 1
            self._waiting.append(seq)
            out.append(seq.seq_id)
        return out

    def cancel(self, seq_id: int) -> None:
        """Drop a sequence (e.g. its client went away); unknown or finished ids are ignored."""
        self._waiting = [s for s in self._waiting if s.seq_id != seq_id]
        for r, s in enumerate(self._rows):
            if s.seq_id == seq_id:
                self._free_row(r)
                return

    def step(self) -> list[TokenEvent]:
        """Admit waiting sequences while rows are free (prefill), then choose one token for every live sequence and
        run them all through the model in one batched forward pass. Returns the chosen tokens."""
        with torch.inference_mode(), stored_linears(self.model):
            was_training = self.model.training
            self.model.eval()
            try:
                self._admit()
                if not self._rows:
                    return []
                events = self._choose()
                self._forward()
            finally:
                self.model.train(was_training)
        return events

    # --- internals ----------------------------------------------------------------------------------------------
    def _admit(self) -> None:
        """Prefill waiting sequences into free rows; copies of one prompt (same list object) share a prefill."""
        prefilled: dict[int, tuple[KVCache, torch.Tensor]] = {}
        device = _model_device(self.model)
        while self._waiting and len(self._rows) < self.max_rows:
            seq = self._waiting.pop(0)
            key = id(seq.prompt_ids)
            if key not in prefilled:
                one = new_kv_cache(self.model, 1, len(seq.prompt_ids))
                logits, _ = self.model(torch.tensor([seq.prompt_ids], device=device), kv_cache=one, last_only=True)
                prefilled[key] = (one, logits[0, -1])
            one, logits = prefilled[key]
            self.cache.add_row(one)
            seq.logits = logits
            self._rows.append(seq)

    def _choose(self) -> list[TokenEvent]:
        """Pick the next token of every live row from its logits; record it; free the rows that finished."""
        logits = _mask_unknown_ids(torch.stack([s.logits for s in self._rows]).float(), self.tokenizer.vocab_size)
        logprobs = logits.log_softmax(-1)
        chosen = [0] * len(self._rows)
        greedy = [r for r, s in enumerate(self._rows) if s.temperature == 0]
        if greedy:
            picks = logits[greedy].argmax(-1).tolist()
            for r, t in zip(greedy, picks):
                chosen[r] = t
        for r, s in enumerate(self._rows):
            if s.temperature != 0:  # each sampled row draws from its own generator, as it would alone
                chosen[r] = int(choose_next(logits[r:r + 1], temperature=s.temperature, top_k=s.top_k, top_p=s.top_p,
                                            generator=s.generator)[0])
        n_top = max(s.top_logprobs for s in self._rows)
        tops = logprobs.topk(min(n_top, logprobs.shape[-1]), dim=-1) if n_top else None
        chosen_lp = logprobs.gather(-1, torch.tensor(chosen, device=logprobs.device)[:, None]).squeeze(-1).tolist()
        events, finished = [], []
        eos = self.tokenizer.eos_id
        for r, s in enumerate(self._rows):
            tok = chosen[r]
            s.tokens.append(tok)
            reason = None
            text = new_text(self.tokenizer, s.prompt_ids, s.tokens[:-1] if tok == eos else s.tokens)
            if tok == eos:
                reason = "eos"
            elif s.stop and (cut := _cut_at_stop(text, s.stop)) is not None:
                reason, text = "stop", text[:cut]
            elif len(s.tokens) == s.max_new_tokens:
                reason = "length"
            top = []
            if tops is not None and s.top_logprobs:
                top = list(zip(tops.indices[r, :s.top_logprobs].tolist(), tops.values[r, :s.top_logprobs].tolist()))
            events.append(TokenEvent(s.seq_id, tok, chosen_lp[r], top, reason, text))
            if reason is not None:
                finished.append(r)
        for r in sorted(finished, reverse=True):
            self._free_row(r)
        return events

    def _forward(self) -> None:
        """Feed every live row its newest token in one batched step; keep each row's next-token logits."""
        if not self._rows:
            return
        self.cache.make_room(1)
        device = _model_device(self.model)
        idx = torch.tensor([[s.tokens[-1]] for s in self._rows], device=device)
        logits, _ = self.model(idx, attention_mask=self.cache.attention_mask(1), position_ids=self.cache.positions(),
                               kv_cache=self.cache)
        for r, s in enumerate(self._rows):
            s.logits = logits[r, -1]

    def _free_row(self, r: int) -> None:
        moved = self.cache.remove_row(r)
        if moved is not None:
            self._rows[r] = self._rows[moved]
        self._rows.pop()
