"""What `lmlab attribute find|trace|memorisation|neighbours` and `lmlab eval ppl --knn|--infgram` print: text
reports of the results of `lmlab.attribution.api`."""

from __future__ import annotations

from typing import Any

from lmlab.attribution.api import MemorisationReport, NeighboursReport, Occurrence, TraceReport


def format_occurrences(count: int, hits: list[Occurrence]) -> str:
    """`find`'s (count, occurrences): the count, then each occurrence with its document and context."""
    lines = [f"{count} occurrence(s)" + (f", first {len(hits)}:" if hits else "")]
    lines += [f"  doc {h.document} ({h.split} #{h.split_document}) @ {h.offset}: {h.before!r} [[{h.match}]] "
              f"{h.after!r}" for h in hits]
    return "\n".join(lines)


def format_trace(r: TraceReport) -> str:
    """The prompt and marked completion, each kept span with its occurrences, the best five documents."""
    lines = [f"{r.prompt}{r.marked}", f"\n{len(r.trace.spans)} verbatim span(s) kept (of {len(r.trace.ids)} tokens):"]
    for n, (span, text) in enumerate(zip(r.trace.spans, r.span_texts)):
        docs = ", ".join(str(d) for d in span.documents)
        lines.append(f"  [{n}] {text!r}: {span.end - span.start} tokens, {span.count} occurrence(s), "
                     f"documents {docs}")
    if r.trace.documents:
        lines.append("documents, best first:")
    lines += [f"  doc {d.document} ({d.split} #{d.split_document}): spans {d.spans}: "
              f"{r.document_texts[d.document]!r}" for d in r.trace.documents[:5]]
    return "\n".join(lines)


def format_memorisation(r: MemorisationReport) -> str:
    """Per span length k, the share of sampled and of held-out tokens inside training spans of ≥ k tokens."""
    g, h = r.generated, r.held_out
    lines = [f"share of tokens inside training spans of ≥ k tokens ({g.n_tokens} sampled tokens in "
             f"{g.n_sequences} texts; {h.n_tokens} held-out tokens of {r.held_out_split} in {h.n_sequences} "
             "documents)",
             f"{'k':>4}  {'sampled':>8}  {'held-out':>8}"]
    lines += [f"{k:>4}  {a:>8.3f}  {b:>8.3f}" for k, a, b in zip(g.ks, g.shares, h.shares)]
    return "\n".join(lines)


def format_neighbours(r: NeighboursReport) -> str:
    """The queried position and the model's top next tokens, then each neighbour with its document."""
    follows = f", next in the text: {r.next_token!r}" if r.next_token is not None else ""
    lines = [f"position {r.position}: {r.context!r}{follows}",
             "model: " + ", ".join(f"{t!r} {p:.2f}" for t, p in r.model_top)]
    lines += [f"  d={n.distance:8.3f}  doc {n.document} ({n.split} #{n.split_document}) @ {n.offset}: "
              f"{n.context!r} -> {n.next_token!r}" for n in r.neighbours]
    return "\n".join(lines)


def format_memory_perplexity(r: dict[str, Any]) -> str:
    """`memory_perplexity`'s result: the LM's perplexity alone, then each interpolation's with its λ sweep."""
    lines = [f"{r['data']}: {r['n_tokens']} tokens | LM alone: ppl {r['lm']['ppl']:.3f}"]
    for name, label in (("knn", "kNN-LM"), ("infgram", "∞-gram + LM")):
        if name in r:
            part = r[name]
            gain = 100 * (1 - part["ppl"] / r["lm"]["ppl"])
            lines.append(f"{label} (λ={part['lambda']}): ppl {part['ppl']:.3f} ({gain:+.1f}% vs LM alone)")
            lines.append("  λ sweep: " + ", ".join(f"{lam:g}: {ppl:.3f}" for lam, ppl in part["sweep"].items()))
    return "\n".join(lines)
