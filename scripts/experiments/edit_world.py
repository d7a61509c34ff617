"""Editing experiments on the default world model (issue 5's quality bars), results for docs/experiments/editing.md.

    .venv/bin/python scripts/experiments/edit_world.py [--run runs/tiny] [--world runs/world]
                                                       [--out docs/experiments] [--rome 200] [--memit 100,1000]

Writes OUT/editing_results.json and OUT/editing-*.png and prints every table. Steps:
  1. default layer by causal tracing (lmlab.editing.default_layers) and a per-layer ROME sweep on 50 edits;
  2. ROME and FT-L, N single edits each (counterfactual cases), next to the unedited model;
  3. MEMIT with 100 and 1000 edits in one batch;
  4. the outdated → current case (temporal facts): which value the model prefers before and after a ROME edit,
     on the train template and on held-out paraphrases.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from lmlab.checkpoint import load_run
from lmlab.editing import SecondMoments, case_probs, default_layers, edit, load_requests
from lmlab.editing.evaluate import evaluate_edits, format_table


def log(msg: str) -> None:
    print(msg, flush=True)


def temporal_case(run, reqs, layer, stats) -> dict:
    """Fraction of temporal facts where P(current) > P(outdated), before and after a ROME edit to the current value,
    on the edit (train) template and on the held-out paraphrases."""
    rows = {"before_train": [], "after_train": [], "before_para": [], "after_para": []}
    for r in reqs:
        before = case_probs(run.model, run.tokenizer, r)
        res = edit(run.model, run.tokenizer, r, "rome", layers=layer, stats=stats, in_place=True, measure=False)
        after = case_probs(run.model, run.tokenizer, r)
        res.restore()
        for tag, p in (("before", before), ("after", after)):
            rows[f"{tag}_train"].append(float(p["edit"][0] > p["edit"][1]))
            rows[f"{tag}_para"] += [float(a > b) for a, b in p["paraphrase"]]
    return {k: 100.0 * sum(v) / max(1, len(v)) for k, v in rows.items()} | {"n_cases": len(reqs)}


def plot_methods(results: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [("efficacy_score", "efficacy"), ("paraphrase_score", "paraphrase"), ("neighborhood_score", "neighbourhood"),
            ("S", "S")]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    names = list(results)
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        vals = [results[name].get(k) or 0.0 for k, _ in keys]
        ax.bar([j + i * width for j in range(len(keys))], vals, width, label=name)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(keys))], [lab for _, lab in keys])
    ax.set_ylim(0, 105)
    ax.set_ylabel("score (×100)")
    ax.axhline(90, color="grey", lw=0.5, ls="--")
    ax.legend(fontsize=8, ncol=len(names))
    ax.set_title("CounterFact-style scores on the world model")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_layers(sweep: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = sorted(int(k) for k in sweep)
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for key, lab in (("efficacy_score", "efficacy"), ("paraphrase_score", "paraphrase"),
                     ("neighborhood_score", "neighbourhood"), ("S", "S")):
        ax.plot(layers, [sweep[str(layer)][key] for layer in layers], marker="o", label=lab)
    ax.set_xlabel("edited layer")
    ax.set_ylabel("score (×100)")
    ax.set_xticks(layers)
    ax.legend(fontsize=8)
    ax.set_title("ROME by edited layer")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="runs/tiny")
    ap.add_argument("--world", default="runs/world")
    ap.add_argument("--out", default="docs/experiments")
    ap.add_argument("--rome", type=int, default=200, help="single edits for ROME and FT-L")
    ap.add_argument("--sweep", type=int, default=50, help="edits per layer in the layer sweep (0: skip)")
    ap.add_argument("--memit", default="100,1000", help="MEMIT batch sizes")
    ap.add_argument("--temporal", type=int, default=100, help="outdated→current cases")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 avoids contention on a shared CPU)")
    ap.add_argument("--rome-hparams", default="{}", help="JSON of ROME settings, e.g. '{\"n_prefixes\": 0}'")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run = load_run(args.run)
    data = run.training_config["data_dir"]
    all_reqs = load_requests(Path(args.world) / "edits.jsonl")
    cf = [r for r in all_reqs if r.kind == "counterfactual"]
    temporal = [r for r in all_reqs if r.kind == "outdated_to_current"][: args.temporal]
    stats = SecondMoments(run.model, run.tokenizer, data, progress=True)
    rome_hp = json.loads(args.rome_hparams)
    results: dict = {"run": args.run, "world": args.world, "rome_hparams": rome_hp}
    t0 = time.time()

    layer = default_layers(run.model, run.tokenizer, cf, "rome")
    memit_layers = default_layers(run.model, run.tokenizer, cf, "memit")
    results["default_layers"] = {"rome": layer, "memit": memit_layers}
    log(f"default layers: ROME/FT-L {layer}, MEMIT {memit_layers} ({time.time() - t0:.0f} s)")

    if args.sweep:
        sweep = {}
        for li in range(run.model.config.n_layer - 1):
            r = evaluate_edits(run.model, run.tokenizer, cf[: args.sweep], ["rome"], stats=stats,
                               layers={"rome": [li]}, hparams={"rome": rome_hp}, fluency=False)
            sweep[str(li)] = r["methods"]["rome"]
            log(f"sweep layer {li}: " + format_table(r).splitlines()[2])
        results["rome_layer_sweep"] = sweep
        plot_layers(sweep, out / "editing-rome-layers.png")

    single = evaluate_edits(run.model, run.tokenizer, cf[: args.rome], ["none", "rome", "ft"], stats=stats,
                            layers={"rome": layer, "ft": layer}, hparams={"rome": rome_hp}, progress=True)
    log(format_table(single))
    results["single"] = single["methods"]  # per-case numbers stay out of the JSON (it lives in docs/)
    log(f"({time.time() - t0:.0f} s)")

    results["memit"] = {}
    for n in [int(x) for x in args.memit.split(",") if x]:
        t = time.time()
        r = evaluate_edits(run.model, run.tokenizer, cf[:n], ["memit"], batch=n, stats=stats,
                           layers={"memit": memit_layers}, progress=True)
        r["methods"]["memit"]["edit_seconds_total"] = time.time() - t
        results["memit"][str(n)] = r["methods"]["memit"]
        log(f"MEMIT {n} edits at once:\n" + format_table(r))
    plot_methods({"none": single["methods"]["none"], "ROME": single["methods"]["rome"],
                  "FT-L": single["methods"]["ft"],
                  **{f"MEMIT×{n}": m for n, m in results["memit"].items()}}, out / "editing-methods.png")

    if temporal:
        results["temporal"] = temporal_case(run, temporal, layer, stats)
        log(f"outdated→current (% preferring the current value): {results['temporal']}")
    results["seconds"] = time.time() - t0
    (out / "editing_results.json").write_text(json.dumps(results, indent=1) + "\n")
    log(f"wrote {out / 'editing_results.json'} ({results['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
