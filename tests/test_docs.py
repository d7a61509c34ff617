"""The commands the docs show still run: every ```bash block of README.md and docs/*.md that calls `lmlab`, run as
written by bash in one shared workspace, each guide's blocks in their documented order (guides that use another's
outputs — runs/tiny from the main job, runs/bert, runs/gpt2 — run after it, see GUIDE_ORDER).

What a reader has and the docs assume is made once: the user's own files the guides name (my_corpus/, corpus/,
my_texts/, records.jsonl, path/to/gpt2), files a guide shows in a ```yaml block whose first line is `# NAME`, and
../shared beside the workspace. Training runs as written but for at most LMLAB_MAX_ITERS steps (the trainer honours
that variable), so the suite checks that each command works, not how well. `torchrun` lines are echoed, not run
(tests/training launches real torchrun jobs), nor are `lmlab serve` lines (servers do not end by themselves;
tests/serving runs real ones). Output examples belong in ```text blocks, Python
in ```python blocks; neither is run here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
# Guides whose outputs others use come first; a guide missing here runs after these, in name order.
GUIDE_ORDER = ["README.md", "docs/world.md", "docs/tokenizers.md", "docs/data.md", "docs/training.md",
               "docs/generation.md", "docs/models-classic.md", "docs/models-bert.md", "docs/embeddings.md",
               "docs/evaluation.md", "docs/inspection.md", "docs/editing.md", "docs/classification.md"]
MAX_ITERS = "4"
FILE_HEADER = re.compile(r"# (\S+\.(?:ya?ml|json))\b")

pytestmark = pytest.mark.slow


def guides() -> list[str]:
    found = ["README.md"] + sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))
    return [g for g in GUIDE_ORDER if g in found] + [g for g in found if g not in GUIDE_ORDER]


def fenced_blocks(guide: str) -> list[tuple[str, str]]:
    """(language, body) of each fenced block of a guide, in order ("" for a fence without a language)."""
    blocks, lang, body = [], None, []
    for line in (ROOT / guide).read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            if lang is None:
                lang, body = line[3:].strip(), []
            else:
                blocks.append((lang, "\n".join(body) + "\n"))
                lang = None
        elif lang is not None:
            body.append(line)
    return blocks


def command_blocks(guide: str) -> list[tuple[str, bool]]:
    """(script, fails) for each command of the guide, in document order: each ```bash block that calls lmlab is
    one script; in a ```console transcript each `$ ` line is one, expected to fail (exit 2, `lmlab: error:`) when
    the transcript shows that error under it."""
    steps = []
    for lang, body in fenced_blocks(guide):
        if lang == "bash" and re.search(r"\blmlab\b", body):
            steps.append((body, False))
        elif lang == "console":
            lines = body.splitlines()
            for i, line in enumerate(lines):
                if line.startswith("$ "):
                    shown = lines[i + 1] if i + 1 < len(lines) else ""
                    steps.append((line[2:], shown.startswith("lmlab: error:")))
    return steps


def test_every_guide_with_commands_is_run():
    """A new guide is picked up without editing this file; a guide that shows commands in an unlabelled block
    (so they are never run) is caught."""
    for guide in guides():
        for lang, block in fenced_blocks(guide):
            first = block.lstrip().splitlines()[0] if block.strip() else ""
            if lang:
                continue
            assert not re.match(r"(\S+=\S+ )*(lmlab|torchrun|python -m lmlab) ", first), \
                f"{guide}: a command block without a language ({first!r}); mark it ```bash (or ```text for output)"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A user's working directory: ../shared beside it, and the files of their own that the guides name."""
    top = tmp_path_factory.mktemp("docs")
    work = top / "work"
    work.mkdir()
    if SHARED.is_dir():
        (top / "shared").symlink_to(SHARED)
    story = "".join(f"Line {i}: the miller walked to town and sold {i} sacks of flour.\n" for i in range(300))
    for d in ("my_corpus", "corpus", "my_texts"):
        (work / d).mkdir()
        (work / d / "a.txt").write_text(story)
        (work / d / "b.md").write_text("# Notes\n\nThe river runs past the mill.\n\n" + story[: len(story) // 2])
    (work / "long.txt").write_text(story)  # longer than a small model's context
    (work / "records.jsonl").write_text("".join(f'{{"id": {i}, "body": "record {i} says hello"}}\n'
                                                for i in range(50)))
    (work / "items.jsonl").write_text("".join(f'{{"prompt": "{a} + {b} =", "target": "{a + b}"}}\n'
                                              for a in range(5) for b in range(4)))
    sys.path.insert(0, str(ROOT))
    from tests.hf_gpt2_files import save_random_hf_gpt2

    gpt2 = work / "path" / "to" / "gpt2"
    gpt2.mkdir(parents=True)
    save_random_hf_gpt2(gpt2, [story], n_layer=6, n_embd=32, n_head=2, n_positions=1024)
    for guide in guides():  # files a guide shows whole (```yaml with `# NAME` first) exist as the reader saved them
        for lang, body in fenced_blocks(guide):
            header = FILE_HEADER.match(body)
            if lang in ("yaml", "json") and header:
                (work / header.group(1)).write_text(body)
    return work


def shell_prelude() -> str:
    """What runs before each documented script: lmlab is this checkout's CLI; commands that do not end by
    themselves (`lmlab serve`) or need several processes (`torchrun`) are echoed instead — tests/serving and
    tests/training/test_fsdp.py run real servers and launchers."""
    return (f'set -eo pipefail\n'
            f'lmlab() {{ if [ "$1" = serve ]; then echo "(not run by the docs test: lmlab $*)"; return 0; fi\n'
            f'  "{sys.executable}" -m lmlab "$@"; }}\n'
            'torchrun() { echo "(not run by the docs test: torchrun $*)"; }\n')


@pytest.mark.parametrize("guide", [g for g in guides() if command_blocks(g)])
def test_documented_commands_run(guide, workspace):
    steps = command_blocks(guide)
    if not SHARED.joinpath("data").is_dir() and any("shared/data" in b or "$D" in b for b, _ in steps):
        pytest.skip("../shared/data is absent (the guide's commands read it)")
    prelude = shell_prelude()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LMLAB_MAX_ITERS": MAX_ITERS, "PYTHONHASHSEED": "0"}
    for i, (script, fails) in enumerate(steps, 1):
        t0 = time.perf_counter()
        r = subprocess.run(["bash", "-c", prelude + script], cwd=workspace, env=env, capture_output=True, text=True,
                           timeout=900)
        print(f"{guide} step {i}: {time.perf_counter() - t0:.1f} s  {script.strip().splitlines()[0][:80]}")
        if fails:  # a documented error: one line, exit 2, no traceback
            assert r.returncode == 2 and r.stderr.startswith("lmlab: error:"), \
                f"{guide}, step {i} should fail with a one-line error:\n{script}\n{r.stderr[-3000:]}"
            continue
        assert r.returncode == 0, (f"{guide}, step {i} failed (exit {r.returncode}):\n{script}\n"
                                   f"--- stderr (end) ---\n{r.stderr[-3000:]}")
