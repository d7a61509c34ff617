"""Three ways to correct what a model knows, side by side (issue 21; docs/experiments/correct-a-fact.md).

    PYTHONPATH=src .venv/bin/python scripts/experiments/correct_a_fact.py --run RUN --world WORLD --work DIR
        [--sets 1,10,100,outdated] [--methods source-retrain,source-continue,ft-full,ft,rome,memit]
        [--continue-steps 300] [--out docs/experiments/correct-a-fact.json]

For each edit set (the first N counterfactual cases of WORLD/edits.jsonl, or every outdated→current case) and each
method, one edited model is made from RUN with all of the set's facts (weight edits in conflict-free batches, as
`lmlab edit eval --batch N`; the source methods through `lmlab.editing.source.correct_at_source`, written to
DIR/SET-METHOD), then measured with the code `lmlab edit eval` uses (method "none" on the edited model, batch = the
set, so neighbours edited in the same set are left out) plus:
  facts_train   share of the world's other facts (facts.jsonl, train prompts, not in the set) whose true object is
                the most likely of 4 objects of its kind (its own and 3 others)
  consistency   implied facts of the edit, P(implied new) > P(implied old): capital_of X := c ⇒ "c is located in"
                X; located_in c := Y ⇒ "p is a citizen of" Y for people born in c; born_in p := c ⇒ "p is a citizen
                of" the country of c (only where the implied object changes)
  recoverability rank of the old object's first token: in the model's output after the edit prompt, after each
                paraphrase, in the logit lens after every layer, and under a 3-shot prompt of the same relation's
                other facts; `old_top3` is the share of cases where it is top-3 anywhere
  cost          wall seconds and FLOPs to make the edited model (weight edits: counted by torch's
                FlopCounterMode with key statistics computed beforehand; training: 6N + attention per token × tokens)
Results are appended to --out (JSON, one entry per set × method) as they come, so a long run can stop anywhere.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from lmlab.checkpoint import load_run
from lmlab.editing import SecondMoments, default_layers, edit, load_requests, target_probs
from lmlab.editing.evaluate import conflict_free_groups, evaluate_edits
from lmlab.editing.source import correct_at_source
from lmlab.inspection.lens import lens_logits
from lmlab.utils import atomic_write_json

WEIGHT_METHODS = {"ft-full": ("ft", {"full": 1, "norm_constraint": 0.0, "lr": 1e-3, "steps": 25}),
                  "ft": ("ft", {}), "rome": ("rome", {}), "memit": ("memit", {})}


VOCAB = [0]  # the tokenizer's vocab size, set in main()


def log(msg: str) -> None:
    print(msg, flush=True)


def edit_sets(world: Path, names: list[str]) -> dict[str, list]:
    reqs = load_requests(world / "edits.jsonl")
    counter = [r for r in reqs if r.kind == "counterfactual"]
    out = {}
    for name in names:
        out[name] = [r for r in reqs if r.kind == "outdated_to_current"] if name == "outdated" \
            else counter[:int(name)]
    return out


def make_weight_edit(run, reqs, method: str, stats, layers) -> tuple:
    base, hp = WEIGHT_METHODS[method]
    model = _copy(run.model)
    t = time.perf_counter()
    with FlopCounterMode(display=False) as fc:
        for group in conflict_free_groups(reqs, len(reqs)):
            edit(model, run.tokenizer, group, base, layers=layers[base], in_place=True, stats=stats,
                 measure=False, **hp)
    return model, time.perf_counter() - t, float(fc.get_total_flops())


def _copy(model):
    import copy

    return copy.deepcopy(model)


def make_source_edit(run_dir: Path, reqs, method: str, out: Path, continue_steps: int) -> tuple:
    t = time.perf_counter()
    if method == "source-retrain":
        rec = correct_at_source(run_dir, reqs, out, retrain=True)
    else:
        rec = correct_at_source(run_dir, reqs, out, continue_steps=continue_steps)
    seconds = time.perf_counter() - t
    extra = {k: rec[k] for k in ("statements_changed", "documents_changed", "index_count_before",
                                 "index_count_after", "only_requested_documents_changed", "index_agrees_with_text")}
    return load_run(out).model, seconds, rec["training"]["flops"], extra


def rank_of(logits: torch.Tensor, token: int) -> int:
    """1-based rank of `token` in a (V,) logits row (the rows a padded vocabulary adds are left out)."""
    return int((logits[:VOCAB[0]] > logits[token]).sum()) + 1


@torch.no_grad()
def recoverability(model, tok, reqs) -> dict:
    """Ranks of the old object (first token) after the edit: final output, paraphrases, lens, few-shot."""
    rows = []
    model.eval()
    for r in reqs:
        old = tok.encode(" " + r.target_true)[0]
        lens, logits = lens_logits(model, tok.encode(r.filled_prompt))
        final = rank_of(logits[0, -1], old)
        layer_ranks = [rank_of(lens[s, 0, -1], old) for s in range(lens.shape[0])]
        para = []
        for p in r.paraphrase_prompts:
            out, _ = model(torch.tensor([tok.encode(p.replace("{}", r.subject, 1))]))
            para.append(rank_of(out[0, -1], old))
        shots = " ".join(f"{p} {t}." for p, t in list(zip(r.neighborhood_prompts, r.neighborhood_targets))[:3])
        out, _ = model(torch.tensor([tok.encode((shots + " " if shots else "") + r.filled_prompt)]))
        few = rank_of(out[0, -1], old)
        rows.append({"final": final, "lens_best": min(layer_ranks), "lens": layer_ranks,
                     "paraphrase_best": min(para) if para else None, "few_shot": few,
                     "top3_anywhere": min([final, min(layer_ranks), few] + para) <= 3})
    n = len(rows)
    return {"old_final_rank_median": _median([x["final"] for x in rows]),
            "old_lens_best_rank_median": _median([x["lens_best"] for x in rows]),
            "old_few_shot_rank_median": _median([x["few_shot"] for x in rows]),
            "old_final_top1": 100.0 * sum(x["final"] == 1 for x in rows) / n,
            "old_top3_anywhere": 100.0 * sum(x["top3_anywhere"] for x in rows) / n, "cases": rows}


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    return float(s[len(s) // 2]) if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2


def load_facts(world: Path) -> list[dict]:
    return [json.loads(line) for line in (world / "facts.jsonl").read_text().splitlines()]


def facts_accuracy(model, tok, facts: list[dict], reqs) -> float:
    """Share of the facts not in `reqs` whose believed object beats 3 other objects of its relation."""
    edited = {(r.subject, r.prompt) for r in reqs}
    by_rel: dict[str, list[str]] = {}
    for f in facts:
        by_rel.setdefault(f["relation"], []).append(f["outdated_object"] or f["object"])
    pairs, spans = [], []
    for i, f in enumerate(facts):
        if (f["subject"], f["prompt"]) in edited:
            continue
        gold = f["outdated_object"] or f["object"]
        pool = sorted(set(by_rel[f["relation"]]) - {gold})
        others = [pool[(i * 7 + k * 13) % len(pool)] for k in range(3)] if pool else []
        choices = [gold] + list(dict.fromkeys(others))
        prompt = f["prompt"].replace("{}", f["subject"])
        spans.append((len(pairs), len(choices)))
        pairs += [(prompt, c) for c in choices]
    probs = target_probs(model, tok, pairs)
    right = [max(range(n), key=lambda k: probs[a + k]) == 0 for a, n in spans]
    return 100.0 * sum(right) / max(1, len(right))


def implied_facts(facts: list[dict], reqs) -> list[tuple[str, str, str]]:
    """(prompt, implied object after the edit, implied object before) for the world's consistency rules."""
    located = {f["subject"]: f["object"] for f in facts if f["relation"] == "located_in"}
    born = {f["subject"]: f["object"] for f in facts if f["relation"] == "born_in"}
    citizen = {f["subject"]: f["object"] for f in facts if f["relation"] == "citizen_of"}
    out = []
    for r in reqs:
        if r.prompt == "The capital of {} is" and r.target_new in located and located[r.target_new] != r.subject:
            out.append((f"{r.target_new} is located in", r.subject, located[r.target_new]))
        elif r.prompt == "{} is located in":
            for person, city in born.items():
                if city == r.subject and r.target_new != citizen[person]:
                    out.append((f"{person} is a citizen of", r.target_new, citizen[person]))
        elif r.prompt == "{} was born in" and r.target_new in located and located[r.target_new] != citizen[r.subject]:
            out.append((f"{r.subject} is a citizen of", located[r.target_new], citizen[r.subject]))
    return out


def consistency(model, tok, implied) -> float | None:
    if not implied:
        return None
    probs = target_probs(model, tok, [(p, a) for p, a, _ in implied] + [(p, b) for p, _, b in implied])
    n = len(implied)
    return 100.0 * sum(probs[i] > probs[n + i] for i in range(n)) / n


def measure(model, tok, reqs, facts) -> dict:
    ev = evaluate_edits(model, tok, reqs, ["none"], batch=len(reqs))["methods"]["none"]
    keep = ("efficacy_score", "paraphrase_score", "neighborhood_score", "S", "generation_entropy",
            "efficacy_magnitude", "neighborhood_magnitude", "neighbours_left_out")
    out = {k: ev[k] for k in keep}
    out["facts_train"] = facts_accuracy(model, tok, facts, reqs)
    implied = implied_facts(facts, reqs)
    out["consistency"], out["consistency_n"] = consistency(model, tok, implied), len(implied)
    out.update(recoverability(model, tok, reqs))
    return out


TABLE = [("efficacy_score", "ES"), ("paraphrase_score", "PS"), ("neighborhood_score", "NS"), ("S", "S"),
         ("generation_entropy", "GE"), ("facts_train", "facts"), ("consistency", "consist."),
         ("old_final_rank_median", "old rank"), ("old_lens_best_rank_median", "lens rank"),
         ("old_few_shot_rank_median", "3-shot rank"), ("old_top3_anywhere", "old top-3 %"), ("seconds", "s"),
         ("flops", "FLOPs")]


def table(results: dict) -> str:
    """Markdown table of every entry: one row per set × method."""
    head = "| set | method | " + " | ".join(short for _, short in TABLE) + " |"
    lines = [head, "|" + "---|" * (len(TABLE) + 2)]
    for e in results["entries"].values():
        cells = []
        for k, _ in TABLE:
            v = e.get(k)
            cells.append("-" if v is None else f"{v:.2g}" if k == "flops" else f"{v:.1f}")
        lines.append(f"| {e['set']} | {e['method']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: dict, path: Path, set_name: str = "10") -> None:
    """Methods × metrics heatmap of one edit set (scores in %, ranks and costs as printed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [e for e in results["entries"].values() if e["set"] == set_name]
    cols = [("efficacy_score", "efficacy"), ("paraphrase_score", "paraphrase"), ("neighborhood_score", "neighbours"),
            ("facts_train", "other facts"), ("consistency", "consistency"), ("old_top3_anywhere", "old top-3 anywhere")]
    vals = np.array([[np.nan if e.get(k) is None else e[k] for k, _ in cols] for e in rows], dtype=float)
    fig, ax = plt.subplots(figsize=(1.3 * len(cols) + 2, 0.5 * len(rows) + 1.5))
    ax.imshow(vals, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(cols)), [c for _, c in cols], rotation=20)
    ax.set_yticks(range(len(rows)), [f"{e['method']} ({e['seconds']:.0f} s)" for e in rows])
    for i in range(len(rows)):
        for j in range(len(cols)):
            if not np.isnan(vals[i, j]):
                ax.text(j, i, f"{vals[i, j]:.0f}", ha="center", va="center",
                        color="white" if vals[i, j] < 60 else "black")
    ax.set_title(f"Correcting {rows[0]['n']} facts of the world model: scores in % (wall seconds to edit)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--world", required=True)
    ap.add_argument("--work", required=True, help="directory for the source methods' new run dirs")
    ap.add_argument("--sets", default="1,10,100,outdated")
    ap.add_argument("--methods", default="none,ft-full,ft,rome,memit,source-continue,source-retrain")
    ap.add_argument("--continue-steps", type=int, default=300)
    ap.add_argument("--out", default="docs/experiments/correct-a-fact.json")
    ap.add_argument("--report", metavar="PNG", help="only print the table of --out and plot SET (--plot-set) to PNG")
    ap.add_argument("--plot-set", default="10")
    args = ap.parse_args()
    if args.report:
        results = json.loads(Path(args.out).read_text())
        print(table(results))
        plot(results, Path(args.report), args.plot_set)
        return 0
    torch.set_num_threads(1)
    run_dir, world, work, out_path = Path(args.run), Path(args.world), Path(args.work), Path(args.out)
    run = load_run(run_dir)
    VOCAB[0] = run.tokenizer.vocab_size
    facts = load_facts(world)
    sets = edit_sets(world, args.sets.split(","))
    results = json.loads(out_path.read_text()) if out_path.is_file() else {"run": str(run_dir), "entries": {}}
    methods = args.methods.split(",")
    stats, layers = None, {}
    if any(m in ("ft", "rome", "memit", "ft-full") for m in methods):
        t = time.perf_counter()
        stats = SecondMoments(run.model, run.tokenizer, run.training_config["data_dir"], cache_dir=work / "stats")
        probe = next(iter(sets.values()))
        layers = {m: default_layers(run.model, run.tokenizer, probe, m) for m in ("rome", "memit", "ft")}
        with FlopCounterMode(display=False) as fc:
            stats.get_many(sorted({lay for v in layers.values() for lay in v}))
        results["stats"] = {"seconds": time.perf_counter() - t, "flops": float(fc.get_total_flops()),
                            "layers": layers}
        log(f"layers {layers}; key statistics {results['stats']['seconds']:.1f} s")
    for set_name, reqs in sets.items():
        for method in methods:
            key = f"{set_name}/{method}"
            if key in results["entries"]:
                continue
            log(f"== {key} ({len(reqs)} facts)")
            extra: dict = {}
            if method == "none":
                model, seconds, flops = run.model, 0.0, 0.0
            elif method in WEIGHT_METHODS:
                model, seconds, flops = make_weight_edit(run, reqs, method, stats, layers)
            else:
                model, seconds, flops, extra = make_source_edit(run_dir, reqs, method, work / f"{set_name}-{method}",
                                                                args.continue_steps)
            entry = {"set": set_name, "method": method, "n": len(reqs), "seconds": seconds, "flops": flops,
                     **extra, **measure(model, run.tokenizer, reqs, facts)}
            results["entries"][key] = entry
            atomic_write_json(out_path, results)
            log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in entry.items()
                         if k not in ("cases",)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
