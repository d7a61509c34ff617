"""Text generation: greedy, temperature, top-k, top-p (nucleus) sampling and beam search, with a KV cache.

Conventions
- The prompt is used as given (nothing is prepended); an empty prompt starts from `<eos>`, the token that ends
  the previous document in training shards (GPT-2: `<|endoftext|>`), i.e. "start of a new document".
- Prompts of different lengths are decoded together: left-padded, with an attention mask and position ids that
  start at 0 on each prompt's first real token, so each row gets the same tokens it would get alone.
- prompt + max_new_tokens must fit the model's context (block_size) for every position kind; `truncate="left"`
  keeps the prompt's last (block_size - max_new_tokens) tokens instead of raising LmlabError. Models without a KV
  cache (n-gram, LSTM) are re-run on each row's last block_size tokens every step, so they have no such limit.
- Ids the tokenizer does not have (vocab padded up to a multiple of 64) are never generated.
- `token_logprobs` are log-probabilities (nats) of the chosen tokens under the model's own distribution
  (log-softmax of the logits, before temperature / top-k / top-p).
- A stop string ends a row as soon as it appears in the new text; `text` is cut just before it, `tokens` keep
  everything generated up to that step. `<eos>` ends a row too: it is the last entry of `tokens` but not in `text`.
- Beam search ranks finished hypotheses by  sum of log-probs / len**length_penalty  (len = new tokens, as Hugging
  Face's `length_penalty`): 1.0 = mean log-prob, 0 = raw sum (favours short outputs), > 1 favours longer ones.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from dataclasses import dataclass, field
from typing import Iterator

import torch

from lmlab.errors import LmlabError
from lmlab.generation.cpu_kernels import MIN_NEW_TOKENS, decode_rows, onednn_linears
from lmlab.generation.kv_storage import new_kv_cache
from lmlab.generation.weight_storage import stored_linears
from lmlab.models.gpt import KVCache
from lmlab.tokenization import Tokenizer


@dataclass
class Completion:
    """One generated continuation."""

    prompt: str                     # the prompt as given (decoded, when given as token ids)
    text: str                       # new text only, cut before a stop string, without a final <eos>
    tokens: list[int]               # new token ids (a final <eos> included when finish_reason == "eos")
    token_logprobs: list[float] | None = None  # log p(token) in nats per entry of `tokens` (return_logprobs=True)
    finish_reason: str = "length"   # "stop" (stop string) | "eos" | "length" (max_new_tokens reached)
    prompt_tokens: list[int] = field(default_factory=list)  # the prompt ids the model saw (after truncation)

    def to_dict(self, tokenizer: Tokenizer | None = None) -> dict:
        """The fields as JSON-ready values; with `tokenizer`, also "token_strings": each new token's text."""
        d = {"prompt": self.prompt, "text": self.text, "tokens": self.tokens,
             "token_logprobs": self.token_logprobs, "finish_reason": self.finish_reason}
        if tokenizer is not None:
            d["token_strings"] = [tokenizer.decode([t]) for t in self.tokens]
        return d


# ================================================================================================ shared helpers ===
def new_text(tokenizer: Tokenizer, prompt_ids: list[int], new_ids: list[int]) -> str:
    """Text added by `new_ids` after `prompt_ids`. Decoding the whole sequence and removing the prompt's text keeps
    tokenizer rules that look across the boundary (word tokenizers' implicit spaces, UTF-8 split across tokens)."""
    if not new_ids:
        return ""
    head = tokenizer.decode(prompt_ids)
    whole = tokenizer.decode(prompt_ids + new_ids)
    return whole[len(head):] if whole.startswith(head) else tokenizer.decode(new_ids)


def _cut_at_stop(text: str, stop: list[str]) -> int | None:
    """Index where the earliest stop string starts in `text`, or None."""
    hits = [i for i in (text.find(s) for s in stop) if i >= 0]
    return min(hits) if hits else None


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module):
    """Dropout off, no autograd bookkeeping, and the Linear weights held as `set_weight_storage` chose, for the
    block; the model's train/eval mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), stored_linears(model):
            yield
    finally:
        model.train(was_training)


def _model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _prepare_prompts(model, tokenizer: Tokenizer, prompts: list[str | list[int]], max_new_tokens: int,
                     truncate: str | None) -> list[list[int]]:
    """Token ids of each prompt (text, or already token ids), checked (or left-truncated) against the context."""
    if truncate not in (None, "left"):
        raise LmlabError(f"truncate must be 'left' or None, got {truncate!r}")
    if max_new_tokens < 1:
        raise LmlabError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    # Models decoded by re-running (no KV cache: n-gram, LSTM) slide over their last block_size tokens, so neither
    # the prompt nor the new tokens are limited by the context; a KV cache is.
    block = model.config.block_size if _supports_kv_cache(model) else float("inf")
    if max_new_tokens >= block:
        raise LmlabError(f"max_new_tokens={max_new_tokens} leaves no room for a prompt in the model's context of "
                         f"{block} tokens; ask for fewer new tokens")
    out = []
    for p in prompts:
        if isinstance(p, str):
            ids = tokenizer.encode(p) or [tokenizer.eos_id]
        else:
            ids = [int(i) for i in p] or [tokenizer.eos_id]
            bad = [i for i in ids if not 0 <= i < tokenizer.vocab_size]
            if bad:
                raise LmlabError(f"prompt token id {bad[0]} is outside the tokenizer's ids "
                                 f"0..{tokenizer.vocab_size - 1}")
        room = block - max_new_tokens
        if len(ids) > room:
            if truncate != "left":
                raise LmlabError(f"prompt of {len(ids)} tokens + {max_new_tokens} new tokens exceeds the model's "
                                 f"context of {block} tokens; shorten the prompt, lower max_new_tokens, or truncate "
                                 "the prompt's start (truncate='left', CLI: --truncate left)")
            ids = ids[-room:]
        out.append(ids)
    return out


def _check_options(temperature: float, top_k: int | None, top_p: float | None, num_beams: int) -> None:
    if not 0 <= temperature < math.inf:  # also refuses nan, for which every comparison is False
        raise LmlabError(f"temperature must be a finite number ≥ 0 (0 = greedy), got {temperature}")
    if top_k is not None and top_k < 1:
        raise LmlabError(f"top_k must be ≥ 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise LmlabError(f"top_p must be in (0, 1], got {top_p}")
    if num_beams < 1:
        raise LmlabError(f"num_beams must be ≥ 1, got {num_beams}")


def _mask_unknown_ids(logits: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """-inf on ids ≥ the tokenizer's vocab size (rows the model has only because its vocab was padded)."""
    if logits.shape[-1] > vocab_size:
        logits[..., vocab_size:] = float("-inf")
    return logits


def choose_next(logits: torch.Tensor, *, temperature: float, top_k: int | None, top_p: float | None,
                generator: torch.Generator | None) -> torch.Tensor:
    """Next token per row from logits (B,V): argmax when temperature == 0, else a sample from
    softmax(logits / temperature) restricted to the top_k ids and/or the smallest set of mass ≥ top_p. (B,) int64."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        # drop a token when the mass before it already reaches top_p (the most likely token always stays)
        drop_sorted = (cum - sorted_logits.softmax(dim=-1)) >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


# ============================================================================================ sampling / greedy ===
@dataclass
class _Row:
    prompt_ids: list[int]
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    done: bool = False
    reason: str = "length"
    text: str = ""


def _supports_kv_cache(model) -> bool:
    """Whether the model's forward takes a `kv_cache` (GPT). Models without one (n-gram, LSTM) are decoded by
    re-running them on each row's whole context (its last block_size tokens) at every step."""
    return "kv_cache" in inspect.signature(model.forward).parameters


def _worth_onednn(model, max_new_tokens: int) -> bool:
    """Whether a decode should run the Linears through oneDNN (lmlab.generation.cpu_kernels): only KV-cache models
    decoding token by token, and only when enough tokens follow to repay the weight conversion."""
    return _supports_kv_cache(model) and max_new_tokens >= MIN_NEW_TOKENS


def _last_logits(model, seqs: list[list[int]], device: torch.device) -> torch.Tensor:
    """Logits (B,1,V) after each token sequence, each run from its start (at most block_size tokens back).
    Rows of equal length share one batch; otherwise each row runs alone, since padding would change a
    recurrent model's state."""
    block = model.config.block_size
    if len({len(s) for s in seqs}) == 1:
        return model(torch.tensor([s[-block:] for s in seqs], device=device))[0][:, -1:, :]
    return torch.cat([model(torch.tensor([s[-block:]], device=device))[0][:, -1:, :] for s in seqs])


def _sample_rows(model, tokenizer: Tokenizer, prompt_ids: list[list[int]], *, max_new_tokens: int,
                 temperature: float, top_k: int | None, top_p: float | None, stop: list[str],
                 generator: torch.Generator | None, want_logprobs: bool) -> Iterator[list[_Row]]:
    """Decode all prompts together, one token per row per step; yields the rows after every step."""
    device = _model_device(model)
    if not _supports_kv_cache(model):
        seqs = [list(p) for p in prompt_ids]

        def advance(nxt: torch.Tensor, step: int) -> torch.Tensor:
            for s, tok in zip(seqs, nxt.tolist()):
                s.append(tok)
            return _last_logits(model, seqs, device)

        yield from _decode_steps(tokenizer, prompt_ids, _last_logits(model, seqs, device), advance,
                                 max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                                 stop=stop, generator=generator, want_logprobs=want_logprobs)
        return
    B = len(prompt_ids)
    lengths = [len(p) for p in prompt_ids]
    T0 = max(lengths)
    padded = any(n != T0 for n in lengths)
    idx = torch.full((B, T0), tokenizer.eos_id, dtype=torch.long)
    mask = torch.zeros(B, T0 + max_new_tokens, dtype=torch.long)
    for i, ids in enumerate(prompt_ids):
        idx[i, T0 - len(ids):] = torch.tensor(ids)
        mask[i, T0 - len(ids):] = 1  # the new tokens' columns are set below, step by step
    idx, mask = idx.to(device), mask.to(device)
    mask[:, T0:] = 1
    cache = new_kv_cache(model, B, T0 + max_new_tokens)
    with onednn_linears(model, enabled=_worth_onednn(model, max_new_tokens), rows=decode_rows(B, max_new_tokens)):
        yield from _cached_steps(model, tokenizer, prompt_ids, idx, mask, cache, padded, max_new_tokens=max_new_tokens,
                                 temperature=temperature, top_k=top_k, top_p=top_p, stop=stop, generator=generator,
                                 want_logprobs=want_logprobs)


def _cached_steps(model, tokenizer: Tokenizer, prompt_ids: list[list[int]], idx: torch.Tensor, mask: torch.Tensor,
                  cache: KVCache, padded: bool, **options) -> Iterator[list[_Row]]:
    """The KV-cache decode of `_sample_rows`: the prompts idx (B,T0), left-padded when `padded`, then one token
    per step; mask (B, T0+max_new_tokens) marks real tokens."""
    T0 = idx.shape[1]

    next_pos = None
    if padded:
        positions = (mask[:, :T0].cumsum(-1) - 1).clamp(min=0)
        logits, _ = model(idx, attention_mask=mask[:, :T0], position_ids=positions, kv_cache=cache, last_only=True)
        next_pos = positions[:, -1:] + 1
    else:  # fast path: no mask, default positions
        logits, _ = model(idx, kv_cache=cache, last_only=True)

    def advance(nxt: torch.Tensor, step: int) -> torch.Tensor:
        """Logits after feeding the chosen tokens nxt (B,) through the cache."""
        nonlocal next_pos
        if padded:
            out, _ = model(nxt[:, None], attention_mask=mask[:, :T0 + step + 1], position_ids=next_pos,
                           kv_cache=cache)
            next_pos = next_pos + 1
        else:
            out, _ = model(nxt[:, None], kv_cache=cache)
        return out

    yield from _decode_steps(tokenizer, prompt_ids, logits, advance, **options)


def _decode_steps(tokenizer: Tokenizer, prompt_ids: list[list[int]], logits: torch.Tensor, advance, *,
                  max_new_tokens: int, temperature: float, top_k: int | None, top_p: float | None,
                  stop: list[str], generator: torch.Generator | None, want_logprobs: bool) -> Iterator[list[_Row]]:
    """The decoding loop shared by the cached and the re-running paths: pick a token per row from the last
    logits (B,·,V), record it, stop rows at <eos> or a stop string, then `advance(tokens, step)` → next logits."""
    rows = [_Row(p) for p in prompt_ids]
    eos, vocab = tokenizer.eos_id, tokenizer.vocab_size
    for step in range(max_new_tokens):
        last = _mask_unknown_ids(logits[:, -1, :].float(), vocab)
        nxt = choose_next(last, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)
        chosen_lp = last.log_softmax(-1).gather(-1, nxt[:, None]).squeeze(-1).tolist() if want_logprobs else None
        nxt_list = nxt.tolist()
        for i, row in enumerate(rows):
            if row.done:
                continue
            tok = nxt_list[i]
            row.tokens.append(tok)
            if want_logprobs:
                row.logprobs.append(chosen_lp[i])
            if tok == eos:
                row.done, row.reason = True, "eos"
            elif stop:
                text = new_text(tokenizer, row.prompt_ids, row.tokens)
                cut = _cut_at_stop(text, stop)
                if cut is not None:
                    row.done, row.reason, row.text = True, "stop", text[:cut]
        yield rows
        if all(r.done for r in rows) or step == max_new_tokens - 1:
            return
        logits = advance(nxt, step)


def releasable_length(text: str, emitted: int, stop: list[str]) -> int:
    """How much of the new text decoded so far can be shown to a reader who already has text[:emitted]: all of it,
    less a tail that ends in an incomplete UTF-8 character (decoded as U+FFFD; byte-level BPE splits characters
    across tokens) or that could still grow into one of the `stop` strings. Never less than `emitted`."""
    safe = len(text)
    while safe > emitted and text[safe - 1] == "\ufffd":  # incomplete UTF-8 at the end: wait
        safe -= 1
    for s in stop:  # keep back a tail that may still grow into a stop string
        for k in range(min(len(s) - 1, safe - emitted), 0, -1):
            if text[safe - k:safe] == s[:k]:
                safe -= k
                break
    return max(safe, emitted)


def _prompt_text(tokenizer: Tokenizer, prompt: str | list[int]) -> str:
    return prompt if isinstance(prompt, str) else tokenizer.decode(prompt)


def _finish_text(tokenizer: Tokenizer, row: _Row, stop: list[str]) -> str:
    if row.reason == "stop" and row.text:
        return row.text
    body = row.tokens[:-1] if row.reason == "eos" else row.tokens
    text = new_text(tokenizer, row.prompt_ids, body)
    cut = _cut_at_stop(text, stop) if stop else None
    return text if cut is None else text[:cut]


# ================================================================================================= beam search ===
def _beam_search(model, tokenizer: Tokenizer, prompt_ids: list[int], *, max_new_tokens: int, num_beams: int,
                 length_penalty: float) -> tuple[list[int], list[float], str]:
    """Best hypothesis (tokens, per-token log-probs, finish reason) of one prompt."""
    device = _model_device(model)
    eos, vocab = tokenizer.eos_id, tokenizer.vocab_size
    cached = _supports_kv_cache(model)
    if cached:
        cache = new_kv_cache(model, 1, len(prompt_ids) + max_new_tokens)
        logits, _ = model(torch.tensor([prompt_ids], device=device), kv_cache=cache, last_only=True)
    else:  # no cache: every beam is re-run on its whole sequence (all beams have the same length)
        seqs = [list(prompt_ids)]
        logits = _last_logits(model, seqs, device)
    beams: list[tuple[list[int], list[float]]] = [([], [])]
    scores = torch.zeros(1, device=device)  # summed log-probs of the live beams
    logprobs = _mask_unknown_ids(logits[:, -1, :].float(), vocab).log_softmax(-1)
    finished: list[tuple[float, list[int], list[float], str]] = []

    def normalised(total: float, n: int) -> float:
        return total / (max(n, 1) ** length_penalty)

    for step in range(max_new_tokens):
        cand = (scores[:, None] + logprobs).view(-1)
        top = torch.topk(cand, min(2 * num_beams, cand.numel()))
        V = logprobs.shape[-1]
        new_beams, new_scores, parents, next_tokens = [], [], [], []
        for total, flat in zip(top.values.tolist(), top.indices.tolist()):
            parent, tok = divmod(flat, V)
            toks, lps = beams[parent]
            toks, lps = toks + [tok], lps + [logprobs[parent, tok].item()]
            if tok == eos:
                finished.append((normalised(total, len(toks)), toks, lps, "eos"))
                continue
            new_beams.append((toks, lps))
            new_scores.append(total)
            parents.append(parent)
            next_tokens.append(tok)
            if len(new_beams) == num_beams:
                break
        if not new_beams:  # every candidate ended (only possible with a vocabulary smaller than 2 beams)
            break
        if step == max_new_tokens - 1:
            finished += [(normalised(s, len(t)), t, l, "length") for (t, l), s in zip(new_beams, new_scores)]
            break
        # Stop when no live beam can still beat the worst of num_beams finished hypotheses (HF's heuristic).
        if len(finished) >= num_beams:
            worst = sorted(f[0] for f in finished)[-num_beams]
            if normalised(max(new_scores), step + 1) <= worst:
                break
        beams, scores = new_beams, torch.tensor(new_scores, device=device)
        if cached:
            cache.reorder(torch.tensor(parents, device=device))  # cache row i ← its parent's row (1 → k at first)
            logits, _ = model(torch.tensor(next_tokens, device=device)[:, None], kv_cache=cache)
        else:
            seqs = [seqs[p] + [t] for p, t in zip(parents, next_tokens)]
            logits = _last_logits(model, seqs, device)
        logprobs = _mask_unknown_ids(logits[:, -1, :].float(), vocab).log_softmax(-1)
    best = max(finished, key=lambda f: f[0])
    return best[1], best[2], best[3]


# ========================================================================================================= API ===
def generate(model, tokenizer: Tokenizer, prompts: str | list[str] | list[list[int]], *, max_new_tokens: int = 64,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None, num_beams: int = 1,
             length_penalty: float = 1.0, stop: list[str] | str | None = None, seed: int | None = None,
             truncate: str | None = None, return_logprobs: bool = False) -> list[Completion]:
    """Continue each prompt (see the module docstring for conventions). Returns one Completion per prompt.

    A prompt is a text or a list of token ids (e.g. from a data shard); Completion.prompt is then its decoded text.
    temperature=0 → greedy. num_beams > 1 → beam search (deterministic; temperature/top_k/top_p unused).
    seed makes sampling reproducible for the same prompts and options.
    """
    prompts_list = [prompts] if isinstance(prompts, str) else list(prompts)
    if prompts_list and isinstance(prompts_list[0], int):
        raise LmlabError("token-id prompts must be a list of lists (one list of ids per prompt)")
    stop_list = [stop] if isinstance(stop, str) else [s for s in (stop or []) if s]
    _check_options(temperature, top_k, top_p, num_beams)
    if not prompts_list:
        return []
    ids = _prepare_prompts(model, tokenizer, prompts_list, max_new_tokens, truncate)
    out: list[Completion] = []
    with eval_mode(model):
        if num_beams > 1:
            for prompt, p_ids in zip(prompts_list, ids):
                with onednn_linears(model, enabled=_worth_onednn(model, max_new_tokens),
                                    rows=decode_rows(num_beams, max_new_tokens)):
                    toks, lps, reason = _beam_search(model, tokenizer, p_ids, max_new_tokens=max_new_tokens,
                                                     num_beams=num_beams, length_penalty=length_penalty)
                row = _Row(p_ids, toks, lps, True, reason)
                text = _finish_text(tokenizer, row, stop_list)
                if stop_list and _cut_at_stop(new_text(tokenizer, p_ids, toks), stop_list) is not None:
                    reason = "stop"
                out.append(Completion(_prompt_text(tokenizer, prompt), text, toks, lps if return_logprobs else None,
                                      reason, p_ids))
            return out
        generator = None
        if seed is not None:
            generator = torch.Generator(device=_model_device(model)).manual_seed(seed)
        rows: list[_Row] = []
        for rows in _sample_rows(model, tokenizer, ids, max_new_tokens=max_new_tokens, temperature=temperature,
                                 top_k=top_k, top_p=top_p, stop=stop_list, generator=generator,
                                 want_logprobs=return_logprobs):
            pass
    for prompt, row in zip(prompts_list, rows):
        out.append(Completion(_prompt_text(tokenizer, prompt), _finish_text(tokenizer, row, stop_list), row.tokens,
                              row.logprobs if return_logprobs else None, row.reason, row.prompt_ids))
    return out


def stream(model, tokenizer: Tokenizer, prompt: str, **options) -> Iterator[str]:
    """Yield the new text of one prompt piece by piece as tokens are decoded (same options as `generate`).

    ''.join(stream(...)) equals generate(...)[0].text. A piece is held back while it ends in an incomplete UTF-8
    character (byte-level BPE splits characters across tokens) or could be the start of a stop string.
    Beam search cannot know its answer before the end, so with num_beams > 1 the whole text comes as one piece.
    """
    if options.get("num_beams", 1) > 1:
        yield generate(model, tokenizer, prompt, **options)[0].text
        return
    max_new_tokens = options.get("max_new_tokens", 64)
    temperature = options.get("temperature", 1.0)
    top_k, top_p, seed = options.get("top_k"), options.get("top_p"), options.get("seed")
    stop = options.get("stop")
    stop_list = [stop] if isinstance(stop, str) else [s for s in (stop or []) if s]
    unknown = set(options) - {"max_new_tokens", "temperature", "top_k", "top_p", "num_beams", "length_penalty",
                              "stop", "seed", "truncate", "return_logprobs"}
    if unknown:
        raise TypeError(f"stream() got unexpected options {sorted(unknown)}")
    _check_options(temperature, top_k, top_p, 1)
    ids = _prepare_prompts(model, tokenizer, [prompt], max_new_tokens, options.get("truncate"))
    generator = torch.Generator(device=_model_device(model)).manual_seed(seed) if seed is not None else None
    emitted = 0
    steps = _sample_rows(model, tokenizer, ids, max_new_tokens=max_new_tokens, temperature=temperature,
                         top_k=top_k, top_p=top_p, stop=stop_list, generator=generator, want_logprobs=False)
    was_training = model.training
    model.eval()
    try:
        while True:
            # Inference mode (and the stored weights) only while a step runs: a generator must not leave them
            # switched on in the caller's code between two pieces.
            with torch.inference_mode(), stored_linears(model):
                rows = next(steps)
                if rows[0].done or len(rows[0].tokens) == max_new_tokens:
                    break
            text = new_text(tokenizer, ids[0], rows[0].tokens)
            safe = releasable_length(text, emitted, stop_list)
            if safe > emitted:
                yield text[emitted:safe]
                emitted = safe
    finally:
        model.train(was_training)
    final = _finish_text(tokenizer, rows[0], stop_list)
    if len(final) > emitted:
        yield final[emitted:]
