"""What `lmlab data prepare`, `lmlab data stats` and `lmlab data prepare-parallel` print: text reports of the
manifest `prepare` / `prepare_parallel` return and of the summary `data_stats` returns."""

from __future__ import annotations

import os
from typing import Any

from lmlab.utils import human_bytes


def format_prepare_report(manifest: dict[str, Any], out: str | os.PathLike, seconds: float) -> str:
    """Documents read, duplicates removed, tokenizer, per-split counts and throughput of a `prepare` run that
    wrote `out` in `seconds`."""
    d, tok = manifest["dedup"], manifest["tokenizer"]
    src_bytes = sum(s["bytes"] for s in manifest["sources"])
    lines = [f"read {manifest['documents_read']} documents from {len(manifest['sources'])} file(s) "
             f"({human_bytes(src_bytes)})",
             f"duplicates removed: {d['exact_duplicates_removed']} exact, {d['near_duplicates_removed']} near "
             f"(--dedup {d['mode']})",
             f"tokenizer: {tok['kind']}, vocab {tok['vocab_size']}, fingerprint {tok['fingerprint']}; "
             f"dtype {manifest['dtype']}"]
    for name, s in manifest["splits"].items():
        lines.append(f"{name:5s}: {s['documents']} documents, {s['tokens']} tokens, "
                     f"{human_bytes(s['text_bytes'])} of text")
    lines.append(f"wrote {out} in {seconds:.1f} s ({human_bytes(src_bytes / max(seconds, 1e-9))}/s)")
    return "\n".join(lines)


def format_data_stats(stats: dict[str, Any]) -> str:
    """Tokenizer, per-split tokens / documents / text size / tokens per byte, dedup and top tokens of a
    `data_stats` summary."""
    tok = stats["tokenizer"]
    lines = [f"{stats['data_dir']}: tokenizer {tok['kind']} (vocab {tok['vocab_size']}, fingerprint "
             f"{tok['fingerprint']}), dtype {stats['dtype']}"]
    for name, s in stats["splits"].items():
        tpb = f"{s['tokens_per_byte']:.3f}" if s["tokens_per_byte"] is not None else "-"
        lines.append(f"{name:5s}: {s['tokens']} tokens, {s['documents']} documents, "
                     f"{human_bytes(s['text_bytes'])} of text, {tpb} tokens/byte")
    if stats.get("dedup"):
        d = stats["dedup"]
        lines.append(f"dedup {d['mode']}: {d['exact_duplicates_removed']} exact, {d['near_duplicates_removed']} "
                     f"near removed of {stats['documents_read']} documents read")
    if stats.get("top_tokens"):
        lines.append("top train tokens: " + ", ".join(f"{t!r} {n}" for t, n in stats["top_tokens"]))
    return "\n".join(lines)


def format_parallel_report(manifest: dict[str, Any], out: str | os.PathLike) -> str:
    """Pairs read, direction, tokenizer and per-split counts of a `prepare_parallel` run that wrote `out`, with
    the command that trains on it."""
    par, tok = manifest["parallel"], manifest["tokenizer"]
    direction = (f"{par['tgt_lang']} → {par['src_lang']}" if par["reverse"]
                 else f"{par['src_lang']} → {par['tgt_lang']}")
    lines = [f"read {manifest['documents_read']} pairs ({manifest['dedup']['exact_duplicates_removed']} repeated "
             f"pairs removed); val split: {par['val_split']}; direction as read: {direction}",
             f"tokenizer: {tok['kind']}, vocab {tok['vocab_size']}, fingerprint {tok['fingerprint']}"]
    for name, s in manifest["splits"].items():
        longest = par["longest_document_tokens"].get(name, 0)
        lines.append(f"{name:5s}: {s['documents']} pairs, {s['tokens']} tokens, longest source<sep>target "
                     f"{longest} tokens (keep --block_size above it)")
    lines.append(f"wrote {out}; train with: lmlab train --model seq2seq --data {out} --out RUN_DIR")
    return "\n".join(lines)
