"""Facts files for `lmlab locate --facts` from a world's edit cases: where does a model read the facts that ROME
edits, on the edit prompt and on the held-out paraphrases that its paraphrase score uses?
(docs/experiments/arithmetic-tokenization.md, follow-up 6)

    .venv/bin/python scripts/experiments/edit_case_facts.py [--requests runs/world/edits.jsonl] [--n 60] --out DIR
    lmlab locate RUN_DIR --facts DIR/edit_prompts.jsonl --all-facts --out TRACE_DIR --json
    lmlab locate RUN_DIR --facts DIR/paraphrase_prompts.jsonl --all-facts --out TRACE_DIR --json

Writes DIR/edit_prompts.jsonl (one {prompt, subject, target} per case: the rewrite's prompt and its true object) and
DIR/paraphrase_prompts.jsonl (each paraphrase prompt of the same cases, the same target), for the first N
counterfactual cases.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lmlab.editing import load_requests
from lmlab.utils import atomic_write_text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", default="runs/world/edits.jsonl", help="the world's edit cases")
    ap.add_argument("--n", type=int, default=60, help="how many counterfactual cases (default 60)")
    ap.add_argument("--out", required=True, help="directory for the two facts files")
    args = ap.parse_args()
    edit_rows, paraphrase_rows = [], []
    cases = [r for r in load_requests(args.requests) if r.kind in (None, "counterfactual")][:args.n]
    for r in cases:
        edit_rows.append({"prompt": r.prompt, "subject": r.subject, "target": r.target_true})
        paraphrase_rows += [{"prompt": p, "subject": r.subject, "target": r.target_true} for p in r.paraphrase_prompts]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("edit_prompts", edit_rows), ("paraphrase_prompts", paraphrase_rows)):
        atomic_write_text(out / f"{name}.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    print(f"{len(edit_rows)} edit prompts, {len(paraphrase_rows)} paraphrase prompts in {out}")


if __name__ == "__main__":
    main()
