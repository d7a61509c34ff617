"""Log-likelihoods of text under a model: per-token log-probs, continuation scores, perplexity and bits-per-byte.

Conventions (all log-probs are natural logs, nats)
- A text x is scored as a whole document: P(x) = P(<eos> | x) · Π_l P(u_l | u_<l), with the first token u_1
  conditioned on `<eos>`, the token that ends the previous document in training shards (GPT-2: `<|endoftext|>`),
  i.e. "start of document". `add_eos=False` drops the final P(<eos> | x) factor (x is then a prefix).
- Texts longer than the context are scored in sliding windows: each window ends `stride` tokens after the previous
  one and holds a full `block_size` of context where the text allows, and scores only its new tokens.
- Perplexity on a token stream: exp(mean negative log-likelihood over every token except the first).
  bits-per-byte = total NLL / ln 2 / UTF-8 bytes of the text, which compares models whose tokenizers differ
  (char vs BPE); the `<eos>` separators' cost is counted, their bytes are not.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from lmlab.errors import LmlabError
from lmlab.generation.decoding import eval_mode
from lmlab.tokenization import Tokenizer


@dataclass
class TextScore:
    """Log-likelihood of a text (see the module docstring for the convention)."""

    text: str
    tokens: list[int]            # the scored ids: the text's tokens, then <eos> when add_eos
    token_logprobs: list[float]  # log p(token | everything before it), nats, one per entry of `tokens`
    total_logprob: float         # sum of token_logprobs = log P(x)

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    def to_dict(self, tokenizer: Tokenizer | None = None) -> dict:
        d = {"text": self.text, "total_logprob": self.total_logprob, "n_tokens": self.n_tokens,
             "tokens": self.tokens, "token_logprobs": self.token_logprobs}
        if tokenizer is not None:
            d["token_strings"] = [tokenizer.decode([t]) for t in self.tokens]
        return d

    def format(self, tokenizer: Tokenizer) -> str:
        """What `lmlab score` prints: each token's log-prob and text, then the total, mean and perplexity."""
        lines = [f"{lp:10.4f}  {tokenizer.decode([tok])!r}" for tok, lp in zip(self.tokens, self.token_logprobs)]
        n = max(self.n_tokens, 1)
        lines.append(f"total log-prob {self.total_logprob:.4f} nats over {self.n_tokens} tokens "
                     f"(mean {self.total_logprob / n:.4f}, perplexity {math.exp(-self.total_logprob / n):.3f})")
        return "\n".join(lines)


# ============================================================================================ sliding windows ===
def _windows(n: int, block_size: int, stride: int) -> Iterator[tuple[int, int, int]]:
    """(start, end, n_new) windows over a stream of n tokens: inputs [start, end), targets [start+1, end+1),
    of which the last n_new are scored (each target position 1..n-1 exactly once)."""
    end, scored = 0, 0
    while scored < n - 1:
        end = min(scored + stride if scored else block_size, n - 1)
        start = max(0, end - block_size)
        yield start, end, end - scored
        scored = end


def token_logprobs(model, tokens: np.ndarray | torch.Tensor | Sequence[int], *, block_size: int | None = None,
                   stride: int | None = None, batch_size: int = 8, progress: bool = False) -> torch.Tensor:
    """log p(tokens[i] | tokens[<i]) for i = 1..n-1 as a float64 tensor of n-1 values (nats), windowed when the
    stream is longer than block_size (default: the model's). stride defaults to block_size (non-overlapping)."""
    block = block_size or model.config.block_size
    if block > model.config.block_size:
        raise LmlabError(f"block_size {block} exceeds the model's context of {model.config.block_size}")
    stride = block if stride is None else stride
    if not 1 <= stride <= block:
        raise LmlabError(f"stride must be between 1 and block_size ({block}), got {stride}")
    arr = tokens.cpu().numpy() if isinstance(tokens, torch.Tensor) else np.asarray(tokens)
    n = len(arr)
    out = torch.empty(max(n - 1, 0), dtype=torch.float64)
    windows = list(_windows(n, block, stride))
    device = next(model.parameters()).device
    bar = tqdm(total=len(windows), desc="scoring", unit="win", file=sys.stderr,
               disable=not progress or not sys.stderr.isatty())
    pos = 0
    with eval_mode(model):
        # Every window has block_size inputs, except a lone first one when the stream is shorter: stackable.
        for b in range(0, len(windows), batch_size):
            group = windows[b:b + batch_size]
            x = torch.from_numpy(np.stack([arr[s:e] for s, e, _ in group]).astype(np.int64)).to(device)
            y = torch.from_numpy(np.stack([arr[s + 1:e + 1] for s, e, _ in group]).astype(np.int64)).to(device)
            logits, _ = model(x)
            nll = F.cross_entropy(logits.float().transpose(1, 2), y, reduction="none")  # (B,T)
            for row, (_, _, n_new) in zip(nll, group):
                out[pos:pos + n_new] = -row[-n_new:].double().cpu()
                pos += n_new
            bar.update(len(group))
    bar.close()
    return out


def perplexity(model, tokens: np.ndarray | torch.Tensor | Sequence[int], *, block_size: int | None = None,
               batch_size: int = 8, stride: int | None = None, text_bytes: int | None = None,
               progress: bool = False) -> dict:
    """Perplexity of a token stream (1-D ids, e.g. a shard memmap): every token but the first is predicted from
    up to block_size tokens before it (windows `stride` apart, default block_size).

    Returns {"loss_nats": mean NLL per token, "ppl": exp(loss), "bits_per_token", "n_tokens": tokens scored,
    "bits_per_byte": total NLL in bits / text_bytes (only when text_bytes, the UTF-8 size of the text, is given)}.
    """
    n = len(tokens)
    if n < 2:
        raise LmlabError(f"need at least 2 tokens to measure perplexity, got {n}")
    lp = token_logprobs(model, tokens, block_size=block_size, stride=stride, batch_size=batch_size,
                        progress=progress)
    total_nll = -float(lp.sum())
    loss = total_nll / len(lp)
    result = {"loss_nats": loss, "ppl": math.exp(loss), "bits_per_token": loss / math.log(2), "n_tokens": len(lp)}
    if text_bytes:
        result["bits_per_byte"] = total_nll / math.log(2) / text_bytes
    return result


def text_perplexity(model, tokenizer: Tokenizer, text: str, *, batch_size: int = 8, stride: int | None = None,
                    progress: bool = False) -> dict:
    """`perplexity` of one text scored as a document (<eos> + text + <eos>, see module docstring), with
    bits-per-byte over its UTF-8 bytes."""
    ids = [tokenizer.eos_id] + tokenizer.encode(text) + [tokenizer.eos_id]
    return perplexity(model, np.asarray(ids, dtype=np.int64), batch_size=batch_size, stride=stride,
                      text_bytes=len(text.encode("utf-8")), progress=progress)


# ==================================================================================================== scoring ===
def score_text(model, tokenizer: Tokenizer, text: str, *, add_eos: bool = True) -> TextScore:
    """log P(text) = log P(<eos>|text) + Σ log P(u_l|u_<l), first token conditioned on <eos> (see module docstring).
    Long texts use windows with at least half a context of history (stride = block_size // 2)."""
    ids = [tokenizer.eos_id] + tokenizer.encode(text) + ([tokenizer.eos_id] if add_eos else [])
    if len(ids) < 2:
        return TextScore(text, [], [], 0.0)
    lp = token_logprobs(model, ids, stride=max(1, model.config.block_size // 2))
    values = lp.tolist()
    return TextScore(text, ids[1:], values, float(sum(values)))


def score_continuations(model, tokenizer: Tokenizer, pairs: Sequence[tuple[str, str]], *,
                        batch_size: int = 16) -> list[tuple[float, bool]]:
    """(log P(continuation | context) in nats, is_greedy) for each (context, continuation) pair, in input order.

    Tokens are encode(context) + encode(continuation) (an empty context becomes <eos>); is_greedy says whether
    every continuation token is the model's argmax. When context + continuation exceed the context length the
    context's start is dropped. Pairs are sorted by length and batched (right padding, which a causal model
    never attends to from earlier positions). Pairs whose model inputs are identical (multiple-choice answers of
    one token after the same context) share one row of the batch, as lm-evaluation-harness does.
    """
    block = model.config.block_size
    items = []
    for i, (context, continuation) in enumerate(pairs):
        ctx = tokenizer.encode(context) or [tokenizer.eos_id]
        cont = tokenizer.encode(continuation)
        if len(cont) > block:
            raise LmlabError(f"continuation of {len(cont)} tokens is longer than the model's context ({block})")
        inputs = (ctx + cont)[:-1][-block:]
        items.append((i, inputs, cont))
    results: list[tuple[float, bool]] = [(0.0, True)] * len(items)
    # One row per distinct input sequence; every pair that needs it reads its own targets from that row.
    rows: dict[tuple[int, ...], list[tuple[int, list[int]]]] = {}
    for i, inputs, cont in items:
        if cont:
            rows.setdefault(tuple(inputs), []).append((i, cont))
    scorable = sorted(rows.items(), key=lambda kv: -len(kv[0]))
    device = next(model.parameters()).device
    with eval_mode(model):
        for b in range(0, len(scorable), batch_size):
            batch = scorable[b:b + batch_size]
            T = len(batch[0][0])
            x = torch.full((len(batch), T), tokenizer.eos_id, dtype=torch.long)
            for r, (inputs, _) in enumerate(batch):
                x[r, :len(inputs)] = torch.tensor(inputs)
            logits, _ = model(x.to(device))
            # One log-softmax over just the positions that predict continuation tokens, for the whole batch
            # (on CPU, hundreds of tiny per-pair calls cost more than the arithmetic).
            spans, rows_idx, pos_idx, targets = [], [], [], []
            for r, (inputs, users) in enumerate(batch):
                end = len(inputs)
                for i, cont in users:
                    spans.append((i, len(targets), len(cont)))
                    rows_idx += [r] * len(cont)
                    pos_idx += range(end - len(cont), end)
                    targets += cont
            lp = logits[rows_idx, pos_idx].float().log_softmax(-1)  # (continuation tokens, vocab)
            target = torch.tensor(targets, device=lp.device)
            token_lp = lp.gather(-1, target[:, None]).squeeze(-1)
            hit = lp.argmax(-1) == target
            for i, start, n in spans:
                results[i] = (float(token_lp[start:start + n].sum()), bool(hit[start:start + n].all()))
    return results


def prompt_logprobs(model, ids: Sequence[int], top: int = 0) -> tuple[list[float], list[list[tuple[int, float]]]]:
    """For a sequence of n token ids that fits the model's context: log p(ids[i] | ids[<i]) for i = 1..n-1 (nats,
    n-1 values, as `token_logprobs`), and at each of those positions the `top` most likely (id, log-prob)
    alternatives, most likely first (empty lists when top=0). What an OpenAI-style `echo` with `logprobs` returns
    for the prompt."""
    if len(ids) > model.config.block_size:
        raise LmlabError(f"{len(ids)} tokens do not fit the model's context of {model.config.block_size}")
    if len(ids) < 2:
        return [], []
    device = next(model.parameters()).device
    with eval_mode(model):
        logits, _ = model(torch.tensor([list(ids)], device=device))
        lp = logits[0, :-1].float().log_softmax(-1)  # (n-1, V)
        target = torch.tensor(list(ids[1:]), device=lp.device)
        chosen = lp.gather(-1, target[:, None]).squeeze(-1).tolist()
        alternatives: list[list[tuple[int, float]]] = [[] for _ in chosen]
        if top:
            values, indices = lp.topk(min(top, lp.shape[-1]), dim=-1)
            alternatives = [list(zip(i, v)) for i, v in zip(indices.tolist(), values.tolist())]
    return chosen, alternatives


def score_continuation(model, tokenizer: Tokenizer, context: str, continuation: str) -> tuple[float, bool]:
    """(log P(continuation | context), is_greedy) for one pair; see `score_continuations`."""
    return score_continuations(model, tokenizer, [(context, continuation)])[0]
