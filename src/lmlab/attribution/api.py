"""The functions behind `lmlab attribute ...`: paths and texts in, plain results out (one per CLI verb)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from lmlab.attribution.corpus import data_dir_of, encode_query, shards_fingerprint
from lmlab.attribution.datastore import Datastore, build_datastore, keys_and_logprobs, knn_logprobs
from lmlab.attribution.memorisation import Coverage, span_coverage
from lmlab.attribution.mixing import check_lambda, interpolate, lambda_sweep, perplexity_of
from lmlab.attribution.spans import Trace, mark_spans, trace_ids
from lmlab.attribution.suffix_array import SuffixIndex, build_index
from lmlab.checkpoint import Run, load_run
from lmlab.data import check_tokenizer, document_spans, load_manifest, load_split, load_tokenizer_of
from lmlab.errors import LmlabError
from lmlab.generation import generate
from lmlab.tokenization import Tokenizer


def index(data_dir: str | os.PathLike, *, splits: str | Sequence[str] = "train",
          index_dir: str | os.PathLike | None = None) -> dict:
    """Build the suffix-array index of a shard dir (see `build_index`); returns its index.json content."""
    return build_index(data_dir, splits=splits, index_dir=index_dir)


def count(data_dir: str | os.PathLike, text: str, *, index_dir: str | os.PathLike | None = None) -> int:
    """How often `text` (tokenized with the shards' tokenizer) occurs in the indexed splits."""
    ix = SuffixIndex.open(data_dir, index_dir)
    return ix.count(encode_query(load_tokenizer_of(data_dir), text))


@dataclass
class Occurrence:
    """One place where a query occurs: the document (global id, split, id within split), the token offset in the
    document, and the text around it (never beyond the document)."""

    document: int
    split: str
    split_document: int
    offset: int
    before: str
    match: str
    after: str

    def to_dict(self) -> dict:
        return asdict(self)


def find(data_dir: str | os.PathLike, text: str, *, limit: int = 10, context: int = 16,
         index_dir: str | os.PathLike | None = None) -> tuple[int, list[Occurrence]]:
    """(count, the first `limit` occurrences in corpus order) of `text`, each with `context` tokens either side."""
    if limit < 1 or context < 0:
        raise LmlabError(f"limit must be ≥ 1 and context ≥ 0 (got {limit}, {context})")
    tok = load_tokenizer_of(data_dir)
    ix = SuffixIndex.open(data_dir, index_dir)
    ids = encode_query(tok, text)
    return ix.count(ids), occurrences(ix, tok, ids, limit=limit, context=context)


def occurrences(ix: SuffixIndex, tokenizer: Tokenizer, ids: Sequence[int] | np.ndarray, *, limit: int = 10,
                context: int = 16) -> list[Occurrence]:
    """The first `limit` occurrences (corpus order) of the token ids `ids` in an opened index, each with `context`
    tokens of its document either side, decoded with `tokenizer`."""
    out = []
    for pos in ix.positions(ids, limit=limit).tolist():
        loc = ix.corpus.locate(pos)
        before, match, after = ix.corpus.window(pos, len(ids), context, context)
        out.append(Occurrence(loc.document, loc.split, loc.split_document, loc.offset,
                              tokenizer.decode(before), tokenizer.decode(match), tokenizer.decode(after)))
    return out


def trace_text(data_dir: str | os.PathLike, text: str, *, min_len: int = 4, keep_fraction: float = 0.05,
               docs_per_span: int = 10, index_dir: str | os.PathLike | None = None) -> Trace:
    """OLMoTrace spans of a given text in the indexed shards (see `lmlab.attribution.spans`)."""
    ix = SuffixIndex.open(data_dir, index_dir)
    ids = encode_query(load_tokenizer_of(data_dir), text, what="text")
    return trace_ids(ix, ids, min_len=min_len, keep_fraction=keep_fraction, docs_per_span=docs_per_span)


@dataclass
class TraceReport:
    """A generated completion and where its verbatim spans come from."""

    prompt: str
    completion: str
    marked: str          # the completion with kept spans (merged) wrapped in [[ ]]
    trace: Trace         # over the completion's tokens
    span_texts: list[str]
    document_texts: dict[int, str]  # per ranked document: its text around its first kept span, marked [[ ]]

    def to_dict(self) -> dict:
        return {**asdict(self), "trace": self.trace.to_dict()}


def open_run_index(run: Run, data_dir: str | os.PathLike | None = None,
                   index_dir: str | os.PathLike | None = None) -> tuple[Path, SuffixIndex]:
    """The shard dir the run was trained on (or `data_dir`) and its index (default DATA_DIR/attribution-index, or
    `index_dir`), after checking the run speaks the shards' tokenizer; LmlabError when either is missing."""
    data = data_dir_of(run, data_dir)
    check_tokenizer(data, load_manifest(data), run.tokenizer)
    return data, SuffixIndex.open(data, index_dir)


def trace(run_dir: str | os.PathLike, prompt: str, *, data_dir: str | os.PathLike | None = None,
          index_dir: str | os.PathLike | None = None, text: str | None = None, max_new_tokens: int = 48,
          temperature: float = 0.0, seed: int = 0, min_len: int = 4, keep_fraction: float = 0.05,
          docs_per_span: int = 10, device: str = "cpu") -> TraceReport:
    """Generate a completion of `prompt` with the run's model (or take `text` as the completion), then trace the
    completion's tokens in the shards the run was trained on (or `data_dir`)."""
    run = load_run(run_dir, device=device)
    _, ix = open_run_index(run, data_dir, index_dir)
    if text is None:
        encode_query(run.tokenizer, prompt, what="prompt")
        comp = generate(run.model, run.tokenizer, prompt, max_new_tokens=max_new_tokens, temperature=temperature,
                        seed=seed)[0]
        ids = [t for t in comp.tokens if t != run.tokenizer.eos_id]
        if not ids:
            raise LmlabError(f"the model ended the text at once (<eos>) after {prompt!r}; nothing to trace")
    else:
        ids = encode_query(run.tokenizer, text, what="text").tolist()
    tr = trace_ids(ix, ids, min_len=min_len, keep_fraction=keep_fraction, docs_per_span=docs_per_span)
    tok = run.tokenizer
    docs = {}
    for d in tr.documents:
        span = tr.spans[d.span_at]
        before, match, after = ix.corpus.window(d.position, span.end - span.start, 24, 24)
        docs[d.document] = f"{tok.decode(before)}[[{tok.decode(match)}]]{tok.decode(after)}"
    return TraceReport(prompt, tok.decode(ids), mark_spans(tok, ids, tr.merged),
                       tr, [tok.decode(ids[s.start:s.end]) for s in tr.spans], docs)


@dataclass
class MemorisationReport:
    """Span coverage of sampled text against held-out text of the training distribution."""

    generated: Coverage
    held_out: Coverage
    held_out_split: str
    samples: list[str]   # the generated texts

    def to_dict(self) -> dict:
        return asdict(self)


def held_out_sequences(data_dir: str | os.PathLike, split: str, n: int, max_tokens: int, eos_id: int) -> list:
    """The first `max_tokens` ids of up to `n` documents of `split`, spread evenly over the split."""
    tokens = load_split(data_dir, split)
    spans = document_spans(tokens, eos_id)
    if len(spans) == 0:
        raise LmlabError(f"split {split!r} of {data_dir} has no documents to compare with")
    picks = np.unique(np.linspace(0, len(spans) - 1, num=min(n, len(spans))).astype(int))
    return [np.asarray(tokens[s:min(e, s + max_tokens)], dtype=np.int64) for s, e in spans[picks]]


def memorisation(run_dir: str | os.PathLike, *, data_dir: str | os.PathLike | None = None,
                 index_dir: str | os.PathLike | None = None, samples: int = 32, max_new_tokens: int = 64,
                 ks: Sequence[int] = (2, 4, 8, 16, 32), temperature: float = 1.0, seed: int = 0,
                 held_out_split: str = "val", device: str = "cpu") -> MemorisationReport:
    """Sample `samples` texts from the start of a document (after `<eos>`), and report for each k the share of
    their tokens inside training spans of ≥ k tokens, beside the same share for held-out documents of
    `held_out_split` cut to the same length."""
    if samples < 1 or max_new_tokens < 1:
        raise LmlabError(f"samples and max_new_tokens must be ≥ 1 (got {samples}, {max_new_tokens})")
    run = load_run(run_dir, device=device)
    data, ix = open_run_index(run, data_dir, index_dir)
    if held_out_split in ix.meta["splits"]:
        raise LmlabError(f"split {held_out_split!r} is part of the index, so it is not held out; index only "
                         f"train (`lmlab attribute index {data}`) or choose another split")
    eos = run.tokenizer.eos_id
    comps = generate(run.model, run.tokenizer, [[eos]] * samples, max_new_tokens=max_new_tokens,
                     temperature=temperature, seed=seed)
    seqs = [[t for t in c.tokens if t != eos] for c in comps]
    if not any(seqs):
        raise LmlabError("every sample ended at once with <eos>; sample more tokens or use another run")
    held = held_out_sequences(data, held_out_split, samples, max_new_tokens, eos)
    return MemorisationReport(span_coverage(ix, seqs, ks), span_coverage(ix, held, ks), held_out_split,
                              [run.tokenizer.decode(s) for s in seqs])


# ========================================================================================== kNN memory ===
def knn(run_dir: str | os.PathLike, out_dir: str | os.PathLike, *, data_dir: str | os.PathLike | None = None,
        layer: int = -1, splits: str | Sequence[str] = "train", kind: str = "flat", nlist: int | None = None,
        max_tokens: int | None = None, batch_size: int = 8, device: str = "cpu") -> dict:
    """Build a kNN-LM datastore of the run's keys over the shards it was trained on (or `data_dir`) into
    `out_dir`; returns its datastore.json content (see `lmlab.attribution.datastore`)."""
    run = load_run(run_dir, device=device)
    data = data_dir_of(run, data_dir)
    return build_datastore(run, data, out_dir, layer=layer, splits=splits, kind=kind, nlist=nlist,
                           max_tokens=max_tokens, batch_size=batch_size)


@dataclass
class Neighbour:
    """A stored training context near the queried one: its squared L2 distance, where it is, the text that led
    up to it (within its document) and the token that came next."""

    distance: float
    document: int
    split: str
    split_document: int
    offset: int
    context: str
    next_token: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class NeighboursReport:
    """The k nearest training contexts of one position of a text."""

    text: str
    position: int        # index into the text's tokens (after the prompt's leading <eos>)
    context: str         # the text up to and including that position
    next_token: str | None   # the token that follows in the text (None at its end)
    model_top: list[tuple[str, float]]   # the model's 5 most likely next tokens and probabilities
    neighbours: list[Neighbour]

    def to_dict(self) -> dict:
        return asdict(self)


def neighbours(run_dir: str | os.PathLike, datastore: str | os.PathLike, prompt: str, *, position: int = -1,
               k: int = 8, max_new_tokens: int = 0, context_tokens: int = 16, device: str = "cpu") -> NeighboursReport:
    """Explain a prediction by example: the k training contexts whose keys lie nearest to the key at `position`
    of `prompt` (plus `max_new_tokens` greedy tokens, when asked), with their documents and next tokens."""
    run = load_run(run_dir, device=device)
    store = Datastore.open(datastore)
    store.check_run(run)
    tok = run.tokenizer
    ids = encode_query(tok, prompt, what="prompt").tolist()
    if max_new_tokens > 0:
        ids += [t for t in generate(run.model, tok, prompt, max_new_tokens=max_new_tokens, temperature=0.0)[0].tokens
                if t != tok.eos_id]
    ids = ids[-(run.model.config.block_size - 1):]  # the key sees at most the model's context
    if not -len(ids) <= position < len(ids):
        raise LmlabError(f"position {position} is outside the text's {len(ids)} tokens")
    position %= len(ids)
    seq = np.asarray([tok.eos_id] + ids[:position + 1], dtype=np.int64)
    stream = np.append(seq, tok.eos_id)  # a dummy next token: keys_and_logprobs needs a target for every key
    keys, _, _, _ = next(keys_and_logprobs(run.model, stream, store.meta["layer"], batch_size=1))
    with torch.no_grad():
        logits, _ = run.model(torch.from_numpy(seq)[None].to(device), last_only=True)
    probs = torch.softmax(logits[0, -1].float(), dim=-1)
    top = torch.topk(probs, min(5, probs.numel()))
    dist, vals, positions = store.search(keys[-1:], k)
    corpus = store.corpus()
    found = []
    for d, v, p in zip(dist[0].tolist(), vals[0].tolist(), positions[0].tolist()):
        if p < 0:
            continue
        loc = corpus.locate(p)
        before, at, _ = corpus.window(p, 1, context_tokens - 1, 0)
        found.append(Neighbour(d, loc.document, loc.split, loc.split_document, loc.offset, tok.decode(before + at),
                               tok.decode([v])))
    return NeighboursReport(tok.decode(ids), position, tok.decode(ids[:position + 1]),
                            tok.decode([ids[position + 1]]) if position + 1 < len(ids) else None,
                            [(tok.decode([i]), float(q)) for q, i in zip(top.values.tolist(), top.indices.tolist())],
                            found)


# ================================================================================ interpolated perplexity ===
LAMBDA_SWEEP = (0.0, 0.05, 0.1, 0.25, 0.5, 0.75)


def _eval_tokens(run: Run, data: str | os.PathLike | None, split: str, max_tokens: int | None
                 ) -> tuple[np.ndarray, str, str | None]:
    """(token stream, a description, the shards' fingerprint or None for a text file) to measure perplexity on."""
    path = data_dir_of(run, data)
    if path.is_dir():
        tokens = np.asarray(load_split(path, split, tokenizer=run.tokenizer)[:max_tokens], dtype=np.int64)
        return tokens, f"{split} split of {path}", shards_fingerprint(load_manifest(path))
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise LmlabError(f"{path} is not UTF-8 text") from None
        ids = [run.tokenizer.eos_id] + run.tokenizer.encode(text) + [run.tokenizer.eos_id]
        return np.asarray(ids[:max_tokens], dtype=np.int64), str(path), None
    raise LmlabError(f"--data {path} is neither a shard directory nor a text file")


def _refuse_leak(what: str, built_on: dict, fingerprint: str | None, split: str) -> None:
    if fingerprint == built_on["shards_fingerprint"] and split in built_on["splits"]:
        raise LmlabError(f"the {what} holds the {split} split itself, so its perplexity there means nothing; "
                         "evaluate on a held-out split (--split val) or rebuild it on train only")


def memory_perplexity(run_dir: str | os.PathLike, *, data: str | os.PathLike | None = None, split: str = "val",
                      knn: str | os.PathLike | None = None, infgram: str | os.PathLike | None = None,
                      lam: float = 0.25, k: int = 64, temperature: float = 1.0, nprobe: int = 8,
                      lambdas: Sequence[float] = LAMBDA_SWEEP, max_tokens: int | None = None,
                      batch_size: int = 8, device: str = "cpu") -> dict:
    """Perplexity of a run on a shard split or text file, alone and interpolated with a kNN datastore
    (kNN-LM: λ·p_kNN + (1−λ)·p_LM, p_kNN a softmax over −distance/temperature of the k neighbours) and/or an
    ∞-gram index (the indexed shard dir `infgram`). Returns {"data", "n_tokens", "lm": {"ppl"}, "knn":
    {"ppl", "lambda", "k", "sweep"}, "infgram": {"ppl", "lambda", "sweep", "mean_suffix_len", "zero_share"}}
    with the parts asked for; "sweep" maps λ to perplexity."""
    from lmlab.generation import token_logprobs

    check_lambda(lam)
    if knn is None and infgram is None:
        raise LmlabError("give a kNN datastore (--knn DIR) or an indexed shard dir (--infgram DIR) to interpolate")
    run = load_run(run_dir, device=device)
    tokens, where, fingerprint = _eval_tokens(run, data, split, max_tokens)
    if len(tokens) < 2:
        raise LmlabError(f"need at least 2 tokens to measure perplexity, got {len(tokens)}")
    result: dict = {"data": where, "n_tokens": len(tokens) - 1}
    sweep = sorted({*map(float, lambdas), lam})
    lm = None
    if knn is not None:
        store = Datastore.open(knn, nprobe=nprobe)
        store.check_run(run)
        _refuse_leak("kNN datastore", store.meta, fingerprint, split)
        parts, knn_lp = [], []
        for keys, nxt, logp, _ in keys_and_logprobs(run.model, tokens, store.meta["layer"], batch_size=batch_size):
            dist, vals, _ = store.search(keys, k)
            parts.append(logp)
            knn_lp.append(knn_logprobs(dist, vals, nxt, temperature))
        lm, knn_lp = np.concatenate(parts), np.concatenate(knn_lp)
        result["knn"] = {"ppl": perplexity_of(interpolate(knn_lp, lm, lam)), "lambda": lam, "k": k,
                         "temperature": temperature, "sweep": lambda_sweep(knn_lp, lm, sweep)}
    if infgram is not None:
        check_tokenizer(infgram, load_manifest(infgram), run.tokenizer)
        ix = SuffixIndex.open(infgram)
        _refuse_leak("∞-gram index", ix.meta, fingerprint, split)
        if lm is None:
            lm = token_logprobs(run.model, tokens, batch_size=batch_size).numpy()
        inf_lp, lengths = ix.infgram_logprobs(tokens)
        result["infgram"] = {"ppl": perplexity_of(interpolate(inf_lp, lm, lam)), "lambda": lam,
                             "sweep": lambda_sweep(inf_lp, lm, sweep), "mean_suffix_len": float(lengths.mean()),
                             "zero_share": float(np.mean(np.isinf(inf_lp)))}
    result["lm"] = {"ppl": perplexity_of(lm)}
    return result
