"""Average causal trace (ROME, Meng et al. 2022) of a world model over ≥ 100 world facts, written up as
docs/experiments/causal-tracing.md with its heatmaps.

    .venv/bin/python scripts/experiments/causal_trace_world.py            # runs/tiny + runs/world/facts.jsonl
    .venv/bin/python scripts/experiments/causal_trace_world.py --run runs/tiny --facts runs/world/facts.jsonl \
        --n 200 --samples 10 --seed 0

Facts are a seeded random sample of facts.jsonl (static facts and temporal ones, whose `object` is the current
value). The average uses the facts the model gets right (greedy next token = the object's first token), as ROME
does; the write-up also gives the average over all sampled facts.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch

from lmlab.checkpoint import load_run
from lmlab.inspection import BUCKETS, average_traces, best_layer, plot_average, plot_trace, trace_facts
from lmlab.utils import atomic_write_json, atomic_write_text

REPO = Path(__file__).resolve().parents[2]


def sample_facts(path: Path, n: int, seed: int) -> list[dict]:
    facts = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(facts) < n:
        sys.exit(f"{path} has only {len(facts)} facts; asked for {n}")
    picked = random.Random(seed).sample(facts, n)
    return [{"prompt": f["prompt"], "subject": f["subject"], "object": f["object"], "relation": f["relation"]}
            for f in picked]


def table(avg: dict, kind: str) -> str:
    L = len(avg["indirect_effect"][kind][0])
    head = "| token bucket | " + " | ".join(f"L{l}" for l in range(L)) + " |\n|---|" + "---:|" * L + "\n"
    rows = []
    for name, row in zip(avg["buckets"], avg["indirect_effect"][kind]):
        cells = " | ".join("–" if v is None else f"{v:.3f}" for v in row)
        rows.append(f"| {name} | {cells} |")
    return head + "\n".join(rows) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="runs/tiny")
    ap.add_argument("--facts", default="runs/world/facts.jsonl")
    ap.add_argument("--n", type=int, default=200, help="facts to sample (≥ 100)")
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--doc", default=str(REPO / "docs/experiments/causal-tracing.md"))
    ap.add_argument("--note", default="", help="a line on how the run was made, put under the title")
    args = ap.parse_args()

    doc = Path(args.doc)
    fig_dir = doc.parent / "figures"
    run = load_run(args.run)
    facts = sample_facts(Path(args.facts), args.n, args.seed)
    t0 = time.perf_counter()
    traces = trace_facts(run.model, run.tokenizer, facts, samples=args.samples, seed=args.seed,
                         progress=sys.stderr.isatty())
    seconds = time.perf_counter() - t0
    known = average_traces(traces, known_only=True)
    everything = average_traces(traces, known_only=False)
    plot_average(known, fig_dir / "causal-tracing-average.png")
    plot_average(everything, fig_dir / "causal-tracing-average-all.png")
    # one example: the known fact with the largest total effect
    example = max([t for t in traces if t.known] or traces, key=lambda t: t.total_effect)
    plot_trace(example, fig_dir / "causal-tracing-example.png")
    by_relation: dict[str, list] = {}
    for f, t in zip(facts, traces):
        by_relation.setdefault(f["relation"], []).append(t)
    rel_rows = []
    for rel, ts in sorted(by_relation.items()):
        k = [t for t in ts if t.known]
        if k:
            a = average_traces(k)
            pk = a["peaks"]["mlp"]
            rel_rows.append(f"| {rel} | {len(ts)} | {len(k)} | {a['total_effect']:.3f} | {pk['layer']} | "
                            f"{pk['bucket']} | {pk['ie']:.3f} | {best_layer(a)} |")
        else:
            rel_rows.append(f"| {rel} | {len(ts)} | 0 | – | – | – | – | – |")
    atomic_write_json(doc.parent / "causal-tracing.json",
                      {"known": known, "all": everything, "seconds": seconds, "run": str(args.run),
                       "facts_file": str(args.facts), "n": args.n, "samples": args.samples, "seed": args.seed})

    c = run.model_config
    pk = known["peaks"]
    last_subject = {k: best_layer(known, k) for k in ("resid", "mlp", "attn")}
    text = f"""# Causal tracing of the world model

Where does the `{Path(args.run).name}` model ({c.n_layer} layers, {c.n_embd} wide) recall world facts? Causal
tracing (Meng et al. 2022, ROME §2; our implementation and definitions: [docs/inspection.md](../inspection.md))
over **{args.n} facts** sampled from `{args.facts}` (seed {args.seed}): the subject's token embeddings are
corrupted with Gaussian noise (ν = 3 σ = {traces[0].noise_std:.4f}, σ the std of the subjects' token-embedding
entries), {args.samples} noise samples per fact, and each hidden state is restored in turn (MLP and attention
outputs over a window of {traces[0].window} layers). Numbers are indirect effects IE = P_restored(o) −
P_corrupted(o) on the object's first token, averaged per ROME token bucket.
{chr(10) + args.note + chr(10) if args.note else ""}
Reproduce (took {seconds:.0f} s on this machine's CPU):

    .venv/bin/python scripts/experiments/causal_trace_world.py --run {args.run} --facts {args.facts} \\
        --n {args.n} --samples {args.samples} --seed {args.seed}

## Result

- The model predicts **{known['n_known']} of {args.n}** sampled facts correctly (greedy first token of the
  object); the average below is over those ({known['n_used']} facts).
- P_clean = {known['clean_prob']:.3f}, P_corrupted = {known['corrupted_prob']:.3f}: total effect of the subject
  TE = {known['total_effect']:.3f}.
- **MLP indirect effect peaks at layer {pk['mlp']['layer']}, {pk['mlp']['bucket']}** (IE {pk['mlp']['ie']:.3f}).
  At the last subject token it peaks at layer {last_subject['mlp']} (IE
  {known['indirect_effect']['mlp'][BUCKETS.index('last subject token')][last_subject['mlp']]:.3f}).
- Attention: peak at layer {pk['attn']['layer']}, {pk['attn']['bucket']} (IE {pk['attn']['ie']:.3f}).
- Residual stream: peak at layer {pk['resid']['layer']}, {pk['resid']['bucket']} (IE {pk['resid']['ie']:.3f}).

![average causal trace over the known facts](figures/causal-tracing-average.png)

### MLP outputs (`blocks.L.mlp.out`, window {traces[0].window})

{table(known, 'mlp')}
### Attention outputs (`blocks.L.attn.out`, window {traces[0].window})

{table(known, 'attn')}
### Residual stream (`blocks.L.resid_post`)

{table(known, 'resid')}
### Per relation (known facts only; MLP)

| relation | sampled | known | TE | MLP peak layer | MLP peak bucket | IE | best layer at last subject token |
|---|---:|---:|---:|---:|---|---:|---:|
""" + "\n".join(rel_rows) + f"""

### All {args.n} sampled facts (known or not)

P_clean {everything['clean_prob']:.3f}, P_corrupted {everything['corrupted_prob']:.3f}; MLP peak at layer
{everything['peaks']['mlp']['layer']}, {everything['peaks']['mlp']['bucket']} (IE {everything['peaks']['mlp']['ie']:.3f}).

![average causal trace over all sampled facts](figures/causal-tracing-average-all.png)

### One fact

{example.prompt!r} → {example.target_token!r} (P_clean {example.clean_prob:.3f}, P_corrupted
{example.corrupted_prob:.3f}); subject tokens starred.

![causal trace of one fact](figures/causal-tracing-example.png)

Numbers: `docs/experiments/causal-tracing.json`.
"""
    atomic_write_text(doc, text)
    print(f"traced {args.n} facts in {seconds:.1f} s; {known['n_known']} known")
    print(f"MLP peak: layer {pk['mlp']['layer']}, {pk['mlp']['bucket']}, IE {pk['mlp']['ie']:.3f}; "
          f"best MLP layer at the last subject token: {last_subject['mlp']}")
    print(f"RESULT facts={args.n} known={known['n_known']} mlp_peak_layer={pk['mlp']['layer']} "
          f"mlp_peak_bucket={pk['mlp']['bucket'].replace(' ', '_')} mlp_peak_ie={pk['mlp']['ie']:.4f} "
          f"mlp_last_subject_layer={last_subject['mlp']} seconds={seconds:.1f}")
    return 0


if __name__ == "__main__":
    torch.set_num_threads(1)  # small matmuls: one thread is fastest on a shared CPU (others only contend)
    sys.exit(main())
