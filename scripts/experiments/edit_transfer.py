"""Do paraphrases receive a ROME edit but fail to read it? (docs/experiments/arithmetic-tokenization.md, follow-up 3)

    .venv/bin/python scripts/experiments/edit_transfer.py RUN_DIR [--data SHARDS] [--requests EDITS] [--n 50]

For each of the first N counterfactual world edits: ROME at layer 0 (library defaults), then, for every paraphrase
prompt, the change of `blocks.0.mlp.out` at its subject's last token projected on the change at the edit prompt's
(ratio 1 = the paraphrase receives the whole edit), and whether the paraphrase succeeds (P(new) > P(true)).
Prints the paraphrase score and, for successes and failures, the median ratio and the share above 0.8.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from lmlab.checkpoint import load_run
from lmlab.editing import SecondMoments, edit, load_requests
from lmlab.editing.metrics import target_probs
from lmlab.editing.prompts import activation_at, build_batch

HOOK = "blocks.0.mlp.out"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="run dir of the model to edit")
    ap.add_argument("--data", default="runs/world-data", help="shards for ROME's key statistics")
    ap.add_argument("--requests", default="runs/world/edits.jsonl", help="the world's edit cases")
    ap.add_argument("--n", type=int, default=50, help="how many counterfactual cases (default 50)")
    args = ap.parse_args()
    run = load_run(args.run)
    model, tok = run.model, run.tokenizer
    reqs = [r for r in load_requests(args.requests) if getattr(r, "kind", None) in (None, "counterfactual")][:args.n]
    stats = SecondMoments(model, tok, args.data)
    rows = []
    for r in reqs:
        edited = edit(model, tok, r, "rome", layers=[0], in_place=False, stats=stats, measure=False).model

        def change(prompt: str) -> torch.Tensor:
            batch = build_batch(model, tok, [prompt], r.subject)
            return (activation_at(edited, batch, HOOK) - activation_at(model, batch, HOOK))[0]

        at_edit = change(r.prompt)
        for p in r.paraphrase_prompts:
            ratio = float(change(p.replace(r.subject, "{}", 1)) @ at_edit / (at_edit @ at_edit))
            p_true, p_new = target_probs(edited, tok, [(p, r.target_true), (p, r.target_new)])
            rows.append((ratio, p_new > p_true))
    good = [x for x, ok in rows if ok]
    bad = [x for x, ok in rows if not ok]
    print(f"{args.run}: paraphrase score {100 * len(good) / len(rows):.1f} over {len(rows)} prompts")
    for label, ratios in (("succeed", good), ("fail", bad)):
        if ratios:
            print(f"  {label}: n={len(ratios)}, median ratio {statistics.median(ratios):.2f}, "
                  f"ratio > 0.8: {100 * sum(x > 0.8 for x in ratios) / len(ratios):.0f}%")


if __name__ == "__main__":
    main()
