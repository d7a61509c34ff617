"""`eval_ppl`: what `lmlab eval ppl` does — perplexity, bits per token and bits per byte of a run dir's model on a
split of a shard directory or on a UTF-8 text file (one path names either).

    from lmlab.evaluation.perplexity import eval_ppl, format_perplexity
    print(format_perplexity(eval_ppl("runs/tiny")))           # the val split of the data dir training recorded
    print(format_perplexity(eval_ppl("runs/tiny", data="wiki.txt")))
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lmlab.checkpoint import load_run, run_data_dir
from lmlab.data import load_manifest, load_split
from lmlab.errors import LmlabError
from lmlab.generation import perplexity, set_weight_storage, text_perplexity
from lmlab.tokenization import Tokenizer


def data_perplexity(model, tokenizer: Tokenizer, data: str | os.PathLike, *, split: str = "val",
                    batch_size: int = 8, stride: int | None = None, progress: bool = False) -> dict[str, Any]:
    """`perplexity` of `model` on `data`: a shard directory (its `split`, checked against `tokenizer`'s
    fingerprint, bits per byte from the manifest's text size) or a UTF-8 text file (scored as one document).

    Returns the figures of `lmlab.generation.perplexity` plus "data": which text was scored, in words.
    """
    data = Path(data)
    if data.is_dir():
        tokens = load_split(data, split, tokenizer=tokenizer)  # checks the tokenizer fingerprint
        text_bytes = load_manifest(data)["splits"][split].get("text_bytes")
        result = perplexity(model, tokens, batch_size=batch_size, stride=stride, text_bytes=text_bytes,
                            progress=progress)
        return {**result, "data": f"{split} split of {data}"}
    if data.is_file():
        try:
            text = data.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise LmlabError(f"{data} is not UTF-8 text") from None
        result = text_perplexity(model, tokenizer, text, batch_size=batch_size, stride=stride, progress=progress)
        return {**result, "data": str(data)}
    raise LmlabError(f"--data {data} is neither a shard directory nor a text file")


def eval_ppl(run_dir: str | os.PathLike, data: str | os.PathLike | None = None, *, split: str = "val",
             batch_size: int = 8, stride: int | None = None, device: str = "cpu", weights: str = "fp32",
             progress: bool = False) -> dict[str, Any]:
    """`data_perplexity` of a run dir's model (Linear weights held as `weights`: fp32, bf16 or int8) on `data`,
    default the data dir its training recorded. stride: window step in tokens (default block_size)."""
    run = load_run(run_dir, device=device)
    set_weight_storage(run.model, weights)
    data = data or run_data_dir(run, required="--data DIR|FILE")
    if batch_size < 1:
        raise LmlabError("--batch-size must be at least 1")
    return data_perplexity(run.model, run.tokenizer, data, split=split, batch_size=batch_size, stride=stride,
                           progress=progress)


def format_perplexity(result: dict[str, Any]) -> str:
    """One line: loss (nats/token), perplexity, bits per token, bits per byte where known, tokens scored."""
    bpb = f" | {result['bits_per_byte']:.4f} bits/byte" if "bits_per_byte" in result else ""
    return (f"{result['data']}: loss {result['loss_nats']:.4f} nats/token | ppl {result['ppl']:.3f} | "
            f"{result['bits_per_token']:.4f} bits/token{bpb} | {result['n_tokens']} tokens")
