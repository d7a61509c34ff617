"""A recipe's training text, composed from the world's corpus: whole sections, sections cut short, extra sums."""

from __future__ import annotations

import os
from pathlib import Path

from lmlab.recipes.table import WorldText
from lmlab.utils import atomic_write_text
from lmlab.world import load_task
from lmlab.world.arithmetic import TASKS as ARITHMETIC_TASKS, extra_sums_text


def cut_paragraphs(text: str, kilobytes: int) -> str:
    """The longest run of whole paragraphs (blank-line separated) from the start of `text` whose UTF-8 size, with
    the separators, fits in `kilobytes` × 1000 bytes."""
    kept, size = [], 0
    for para in text.split("\n\n"):
        size += len(para.encode("utf-8")) + 2
        if size > kilobytes * 1000:
            break
        kept.append(para)
    return "\n\n".join(kept)


def compose_world_text(spec: WorldText, text_dir: str | os.PathLike | None) -> list[Path]:
    """The input files `lmlab.data.prepare` reads for `spec`, in order: whole sections, then cut sections, then the
    extra sums. Cut sections and sums are written into `text_dir` (each file atomically); a spec of whole
    sections only needs no text_dir, and an empty spec is the world's whole corpus directory."""
    corpus = Path(spec.world_dir) / "corpus"
    if not (spec.sections or spec.cut_sections or spec.extra_sums):
        return [corpus]
    inputs = [corpus / f"{name}.txt" for name in spec.sections]
    if spec.cut_sections or spec.extra_sums:
        if text_dir is None:
            raise ValueError("a recipe with cut sections or extra sums needs a text_dir to write them into")
        text_dir = Path(text_dir)
        text_dir.mkdir(parents=True, exist_ok=True)
        for name in spec.cut_sections:
            cut = cut_paragraphs((corpus / f"{name}.txt").read_text(encoding="utf-8"), spec.cut_kb)
            atomic_write_text(text_dir / f"{name}.txt", cut)
            inputs.append(text_dir / f"{name}.txt")
        if spec.extra_sums:
            # Every held-out question, not only 2D+'s: a 3D+ question whose operands are both below 100 reads
            # like a 2-digit sum, and would otherwise be answered from the training text
            held_out = {item["prompt"] for key in ARITHMETIC_TASKS
                        for item in load_task(spec.world_dir, f"arithmetic_{key}")}
            sums = extra_sums_text(held_out, spec.extra_sums, spec.sums_seed)
            atomic_write_text(text_dir / "sums2d.txt", sums)
            inputs.append(text_dir / "sums2d.txt")
    return inputs
