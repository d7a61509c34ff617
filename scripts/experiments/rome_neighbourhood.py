"""Why ROME's neighbourhood score is low on the world model, and one remedy tried (docs/experiments/editing.md).

    .venv/bin/python scripts/experiments/rome_neighbourhood.py [--run runs/tiny] [--world runs/world]
        [--data runs/world-data] [--cases 0:40] [--protect 0,16,64]

1. Diagnosis. For each counterfactual case: the edited subject's tokens, and for every neighbourhood prompt that
   fails after a plain ROME edit (P(true') ≤ P(new)) whether its subject ends in the same token as the edited one.
2. Leak-protected ROME (an experiment, not a library option). The update direction u = C⁻¹k* also moves every key
   j with uᵀj ≠ 0; "leak" = uᵀj / uᵀk for the bare prompt's key k. Over keys from 60k training tokens (positions of
   the edited subject's own token excluded), the M keys with the largest |leak| are added to the statistics,
   C ← C + K_Mᵀ K_M / M, before ROME runs, so the update must leave them (nearly) unchanged. M = 0 is plain ROME.

It wraps `lmlab.editing.api.apply_rome` for step 2 so that the evaluation code is the library's own.
"""

from __future__ import annotations

import argparse
import collections

import numpy as np
import torch

import lmlab.editing.api as edit_api
from lmlab.checkpoint import load_run
from lmlab.data import load_split
from lmlab.editing import SecondMoments, case_probs, edit, load_requests
from lmlab.editing import rome
from lmlab.editing.evaluate import evaluate_edits
from lmlab.inspection import hooked
from lmlab.inspection.prompts import locate_subject

WINDOW = 64
N_TOKENS = 60_000


def training_keys(model, tokens: np.ndarray, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys (N, 4D) float64 at every position of N_TOKENS training tokens, and the token id at each (N,)."""
    starts = np.linspace(0, len(tokens) - WINDOW, N_TOKENS // WINDOW).astype(np.int64)
    x = torch.from_numpy(np.stack([tokens[s:s + WINDOW] for s in starts]).astype(np.int64))
    out = []
    with hooked(model, {f"blocks.{layer}.mlp.post": lambda a, n: out.append(a.reshape(-1, a.shape[-1]).double())}):
        with torch.no_grad():
            for b in range(0, len(x), 64):
                model(x[b:b + 64])
    return torch.cat(out), x.reshape(-1)


def protected_apply_rome(keys: torch.Tensor, key_tokens: torch.Tensor, m: int):
    """apply_rome with the m most-leaked-on training keys added to C (see the module docstring)."""
    plain = rome.apply_rome

    def apply(model, tokenizer, request, layer, C, prefixes, hp):
        if m == 0:
            return plain(model, tokenizer, request, layer, C, prefixes, hp)
        span = locate_subject(tokenizer, request.prompt, request.subject, model.config.block_size)
        subject_token = span.ids[span.end - 1]
        ks = rome.subject_keys(model, tokenizer, request, layer, prefixes).double()
        C64 = C.double()
        ridge = hp.ridge * float(C64.diagonal().mean()) * torch.eye(C64.shape[0], dtype=C64.dtype)
        u = torch.linalg.solve(C64 + ridge, ks.mean(0))
        leak = (keys @ u) / (ks[0] @ u)
        leak[key_tokens == subject_token] = 0.0
        top = keys[leak.abs().topk(m).indices]
        return plain(model, tokenizer, request, layer, (C64 + top.T @ top / m).to(C.dtype), prefixes, hp)

    return apply


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="runs/tiny")
    ap.add_argument("--world", default="runs/world")
    ap.add_argument("--data", default="runs/world-data")
    ap.add_argument("--cases", default="0:40", help="slice of the counterfactual cases, START:COUNT")
    ap.add_argument("--protect", default="0,16,64", help="values of M to compare (0 = plain ROME)")
    ap.add_argument("--layer", type=int, default=0)
    args = ap.parse_args()
    run = load_run(args.run)
    model, tok = run.model, run.tokenizer
    start, count = map(int, args.cases.split(":"))
    reqs = [r for r in load_requests(f"{args.world}/edits.jsonl")
            if getattr(r, "kind", None) in (None, "counterfactual")][start:start + count]
    stats = SecondMoments(model, tok, args.data, cache_dir=args.run)

    print("1. neighbour failures after plain ROME, by whether the neighbour's subject ends in the same token")
    tally: collections.Counter = collections.Counter()
    multi = 0
    for r in reqs:
        space = "" if r.prompt.startswith("{}") else " "
        subject_ids = tok.encode(space + r.subject)
        multi += len(subject_ids) > 1
        edited = edit(model, tok, r, "rome", layers=[args.layer], stats=stats, measure=False).model
        head, tail = r.prompt.split("{}")
        for p, (p_true, p_new) in zip(r.neighborhood_prompts, case_probs(edited, tok, r)["neighborhood"]):
            if p.startswith(head) and p.endswith(tail) and len(p) > len(head) + len(tail):
                other = p[len(head):len(p) - len(tail)]
                kind = "same last token" if tok.encode(space + other)[-1] == subject_ids[-1] else "different"
            else:
                kind = "other template"
            tally[(kind, "fails" if p_true <= p_new else "holds")] += 1
    print(f"   {multi} of {len(reqs)} subjects are several tokens; neighbour prompts: {dict(sorted(tally.items()))}")

    print("2. leak-protected ROME")
    keys, key_tokens = training_keys(model, load_split(args.data, "train", tokenizer=tok), args.layer)
    for m in (int(v) for v in args.protect.split(",")):
        edit_api.apply_rome = protected_apply_rome(keys, key_tokens, m)
        res = evaluate_edits(model, tok, reqs, ["rome"], layers={"rome": [args.layer]}, stats=stats, fluency=False)
        s = res["methods"]["rome"]
        print(f"   M={m:>3}: S {s['S']:.1f}  ES {s['efficacy_score']:.1f}  PS {s['paraphrase_score']:.1f}  "
              f"NS {s['neighborhood_score']:.1f}", flush=True)
    edit_api.apply_rome = rome.apply_rome


if __name__ == "__main__":
    main()
