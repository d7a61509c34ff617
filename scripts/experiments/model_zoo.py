"""The model zoo: every model family of lmlab on the same data, trainer and CLI, in one comparison report.

Write-up: docs/experiments/model-zoo.md (this script writes it, with its plots, from the figures it measures).

    .venv/bin/python scripts/experiments/model_zoo.py --work /tmp/zoo            # everything (~30-40 min, 2 cores)
    .venv/bin/python scripts/experiments/model_zoo.py --work /tmp/zoo --sections lm,embeddings
    .venv/bin/python scripts/experiments/model_zoo.py --work /tmp/zoo --write-up-only   # tables from WORK/*.json

Sections (each one writes WORK/<section>.json, so they can be run separately and the report regenerated):
- lm:          n-gram orders 2-5, LSTM, bi-LSTM (each direction), GPT on tiny Shakespeare (char) and on the world
               corpus (BPE 1024, digits) — val bits per byte, parameters, training wall time on this CPU.
- sentiment:   bag-of-words, LSTM classifier, GPT + <extract> and BERT [CLS] fine-tuned, and the GPT few-shot with
               answers restricted to the label words — accuracy on SST-2 dev and on world reviews.
- translation: the encoder-decoder on Tatoeba en→fr — BLEU and chrF (sacrebleu) on its val split.
- embeddings:  co-occurrence SVD, PPMI SVD and word2vec on the world's words — the world-relation scores.

Every figure comes from a command printed (and recorded in the JSON) as `lmlab ...`, so a reader can rerun any row.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
LMLAB = [sys.executable, "-m", "lmlab"]
SECTIONS = ("lm", "sentiment", "translation", "embeddings")
DOC = REPO / "docs" / "experiments" / "model-zoo.md"
FIG_DIR = REPO / "docs" / "figures"


# ================================================================================================== helpers ===
class Recorder:
    """Runs lmlab commands, remembering each as the user would type it, with its wall time."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    def run(self, args: list[str], *, capture: bool = False) -> tuple[str, float]:
        shown = "lmlab " + " ".join(shlex.quote(str(a)) for a in args)
        self.commands.append(shown)
        print(f"$ {shown}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        done = subprocess.run(LMLAB + [str(a) for a in args], check=True, cwd=REPO, text=True,
                              stdout=subprocess.PIPE if capture else None)
        return (done.stdout or ""), time.perf_counter() - t0

    def json(self, args: list[str]) -> dict:
        out, _ = self.run(args, capture=True)
        return json.loads(out)


def n_params(run_dir: Path) -> int:
    """Parameters of a run dir's model (counted from its weights file: no model code needed)."""
    from safetensors import safe_open

    with safe_open(str(run_dir / "model.safetensors"), framework="pt") as f:
        return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())


def save(work: Path, section: str, result: dict) -> None:
    (work / f"{section}.json").write_text(json.dumps(result, indent=2))


def load(work: Path, section: str) -> dict | None:
    p = work / f"{section}.json"
    return json.loads(p.read_text()) if p.is_file() else None


def world_dir(work: Path, rec: Recorder) -> Path:
    """The default world (seed 0, 2 MB), as the main job builds it."""
    world = work / "world"
    if not (world / "world.json").is_file():
        rec.run(["world", "--out", world, "--seed", "0", "--size", "2MB"])
    return world


# ======================================================================================================== lm ===
def section_lm(work: Path, rec: Recorder, iters: int) -> dict:
    """Val bits per byte of every language-model family on two corpora, same data and split per corpus."""
    world = world_dir(work, rec)
    corpora = {
        "shakespeare": dict(inputs=[DATA / "tinyshakespeare_input.txt"], tokenizer=["--tokenizer", "char"]),
        "world": dict(inputs=[world / "corpus"], tokenizer=["--tokenizer", "bpe", "--vocab-size", "1024",
                                                            "--numbers", "digits", "--dedup", "none"]),
    }
    neural = {  # name → lmlab train arguments; the same step budget for every neural model
        "lstm": ["--preset", "lstm-tiny"],
        "bilstm": ["--preset", "bilstm-tiny"],
        # float32 like every other model here (auto would pick bf16 for the GPT alone on AVX512-BF16 CPUs), so the
        # rows compare models, not precisions, and reproduce docs/experiments/model-zoo.md
        "gpt": ["--preset", "tiny", "--eval_interval", str(iters), "--dtype", "float32"],
    }
    rows = []
    for corpus, spec in corpora.items():
        data = work / f"data-{corpus}"
        if not (data / "manifest.json").is_file():
            rec.run(["data", "prepare", *spec["inputs"], *spec["tokenizer"], "--split-blank-lines",
                     "--out", data, "--no-progress"])
        models = [(f"ngram{n}", ["--model", "ngram", "--order", str(n)]) for n in (2, 3, 4, 5)]
        models += [(name, args + ["--max_iters", str(iters)]) for name, args in neural.items()]
        for name, args in models:
            run = work / f"lm-{corpus}-{name}"
            _, seconds = rec.run(["train", "--data", data, "--out", run, "--overwrite", "--no-progress", *args])
            ppl = rec.json(["eval", "ppl", run, "--json"])
            row = dict(corpus=corpus, model=name, params=n_params(run), train_seconds=round(seconds, 1),
                       val_bits_per_byte=round(ppl["bits_per_byte"], 4), val_ppl=round(ppl["ppl"], 3))
            if name == "bilstm":
                row.update(bilstm_directions(run))
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    return {"rows": rows, "iters": iters}


def bilstm_directions(run_dir: Path) -> dict:
    """Bits per byte of the bi-LSTM's forward and backward LMs separately, on the val split it was trained with.
    Each direction's loss is converted with the split's bytes per token (both predict ~the same tokens)."""
    import numpy as np
    import torch

    from lmlab.checkpoint import load_run
    from lmlab.data import SequentialWindowSampler, load_manifest, load_split

    run = load_run(run_dir)
    run.model.eval()
    data = Path(run.training_config["data_dir"])
    tokens = load_split(data, "val", tokenizer=run.tokenizer)
    bytes_per_token = load_manifest(data)["splits"]["val"]["text_bytes"] / len(tokens)
    sums = {"forward": [], "backward": []}
    weights = []
    with torch.no_grad():  # the whole val split, as `lmlab eval ppl` scores it
        for x, y in SequentialWindowSampler(tokens, run.model.config.block_size, 16):
            weights.append(x.numel())
            for k, v in run.model.direction_losses(x, y).items():
                sums[k].append(float(v))
    return {f"bilstm_{k}_bits_per_byte": round(float(np.average(v, weights=weights)) / math.log(2) / bytes_per_token, 4)
            for k, v in sums.items()}


# ================================================================================================= sentiment ===
def section_sentiment(work: Path, rec: Recorder, iters: int, gpt_run: Path | None = None) -> dict:
    """Accuracy of four fine-tuned classifiers and of GPT few-shot prompting, on SST-2 dev and on the world's
    held-out reviews (docs/classification.md). Each classifier is trained once per dataset on its train part."""
    world = world_dir(work, rec)
    datasets = {  # name → (train data, evaluation data, the evaluation-harness task for few-shot prompting)
        "sst2_dev": (DATA / "sst2_alps_train.tsv", DATA / "sst2_alps_dev.tsv", f"sst2:{DATA / 'sst2_alps_dev.tsv'}"),
        "world_reviews": (world, world / "tasks" / "sentiment.jsonl", "sentiment"),
    }
    # The GPT to fine-tune and prompt: the main job's model when given (--gpt-run), else the world GPT of the lm
    # section, else a fresh one with the same budget.
    if gpt_run is None:
        gpt_run = work / "lm-world-gpt"
        if not (gpt_run / "model.safetensors").is_file():
            rec.run(["train", "--text", world / "corpus", "--out", gpt_run, "--overwrite", "--no-progress",
                     "--max_iters", str(iters), "--dtype", "float32"])
    bert_run = work / "bert-world"
    if not (bert_run / "model.safetensors").is_file():
        rec.run(["train", "--model", "bert", "--text", world / "corpus", "--out", bert_run, "--overwrite",
                 "--no-progress", "--max_iters", str(iters)])
    rows = {m: {"model": m, "method": how} for m, how in (
        ("bow", "fine-tuned (from scratch)"), ("lstm", "fine-tuned (from scratch)"),
        ("gpt", f"fine-tuned from {gpt_run.name} + `<extract>`"), ("bert", f"fine-tuned from {bert_run.name} on `<cls>`"),
        ("gpt-5-shot", f"{gpt_run.name}, 5-shot prompt, answer = likelier label word"))}
    seconds: dict[str, float] = {}
    for name, (train, evaluate, task) in datasets.items():
        for model in ("bow", "lstm", "gpt", "bert"):
            out = work / f"cls-{model}-{name}"
            source = {"gpt": [gpt_run], "bert": [bert_run]}.get(model, [])
            _, sec = rec.run(["finetune", *source, "--model", model, "--data", train, "--out", out, "--overwrite",
                              "--no-progress", "--max_iters", str(iters)])
            seconds[model] = seconds.get(model, 0.0) + sec
            rows[model][name] = round(rec.json(["eval", "classify", out, "--data", evaluate, "--json"])["accuracy"], 4)
        res_file = work / f"fewshot-{name}.json"
        rec.run(["eval", "tasks", gpt_run, "--tasks", task, "--shots", "5", "--world", world, "--out", res_file])
        rows["gpt-5-shot"][name] = round(json.loads(res_file.read_text())["results"][0]["metrics"]["acc"], 4)
    for model, sec in seconds.items():
        rows[model]["train_seconds"] = round(sec, 1)
    notes = ("Train seconds add up both datasets' fine-tuning runs. The GPT and BERT here were pre-trained only on the "
             "synthetic world, so on SST-2 (real English) they start with no knowledge of its words. The world's "
             "held-out reviews do not separate the models: their contrast and negation twists are fixed phrases that "
             "always carry the same label, so even a bag of words learns them.")
    return {"rows": list(rows.values()), "gpt_run": str(gpt_run), "notes": notes}


# =============================================================================================== translation ===
def section_translation(work: Path, rec: Recorder, iters: int) -> dict:
    """The encoder-decoder on Tatoeba en→fr (docs/models-seq2seq.md): BLEU and chrF on its held-out pairs."""
    data, run = work / "data-tatoeba-enfr", work / "mt-tatoeba-enfr"
    if not (data / "manifest.json").is_file():
        rec.run(["data", "prepare-parallel", DATA / "eng_fra_tatoeba_5k.txt", "--out", data, "--vocab-size", "1000"])
    steps = max(iters, 1200)  # translation needs more steps than the LMs' budget to produce sentences at all
    _, seconds = rec.run(["train", "--model", "seq2seq", "--data", data, "--out", run, "--overwrite",
                          "--no-progress", "--max_iters", str(steps), "--eval_interval", str(steps)])
    rows = []
    for beam in (1, 4):
        scores = rec.json(["eval", "translation", run, "--beam", str(beam), "--json"])
        rows.append({"model": "seq2seq-tiny", "decoding": "greedy" if beam == 1 else f"beam {beam}",
                     "bleu": round(scores["bleu"], 2), "chrf": round(scores["chrf"], 2), "n": scores["n"],
                     "params": n_params(run), "train_seconds": round(seconds, 1)})
    return {"rows": rows, "steps": steps}


# ================================================================================================ embeddings ===
def section_embeddings(work: Path, rec: Recorder, iters: int) -> dict:
    """World-relation scores of the three embedding methods on the same word-level world text."""
    from lmlab.evaluation.embeddings import evaluate_world_embeddings

    world = world_dir(work, rec)
    data = work / "data-world-words"
    if not (data / "manifest.json").is_file():
        rec.run(["data", "prepare", *(world / "corpus" / f for f in ("facts.txt", "temporal.txt", "grammar.txt")),
                 "--tokenizer", "word", "--split-blank-lines", "--dedup", "none", "--out", data, "--no-progress"])
    rows = []
    for name, args in {"cooc": ["--model", "cooc"], "ppmi": ["--model", "ppmi"],
                       "word2vec": ["--model", "word2vec", "--max_iters", str(iters)]}.items():
        run = work / f"emb-{name}"
        _, seconds = rec.run(["train", "--data", data, "--out", run, "--overwrite", "--no-progress", *args])
        scores = evaluate_world_embeddings(run, world)
        rows.append({"model": name, "train_seconds": round(seconds, 1),
                     **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in scores.items()}})
        print(json.dumps(rows[-1]), file=sys.stderr)
    return {"rows": rows}


# ============================================================================================== write-up ===
def fmt(v, key: str = "") -> str:
    """A table cell: seconds whole, BLEU/chrF to 0.1, parameters with thousands separators, other floats to 3."""
    if v is None:
        return "—"
    if isinstance(v, float):
        digits = 0 if key.endswith("seconds") else 1 if key in ("bleu", "chrf") else 3
        return f"{v:.{digits}f}"
    if isinstance(v, int) and key == "params":
        return f"{v:,}"
    return str(v)


def table(rows: list[dict], cols: list[tuple[str, str]]) -> str:
    head = "| " + " | ".join(title for _, title in cols) + " |"
    rule = "|" + "|".join("---" for _ in cols) + "|"
    body = ["| " + " | ".join(fmt(r.get(key), key) for key, _ in cols) + " |" for r in rows]
    return "\n".join([head, rule, *body])


def plot_lm(lm: dict) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    corpora = sorted({r["corpus"] for r in lm["rows"]})
    fig, axes = plt.subplots(1, len(corpora), figsize=(5 * len(corpora), 3.6), squeeze=False)
    for ax, corpus in zip(axes[0], corpora):
        rows = [r for r in lm["rows"] if r["corpus"] == corpus]
        ax.bar([r["model"] for r in rows], [r["val_bits_per_byte"] for r in rows], color="tab:blue")
        ax.set_title(f"{corpus}: val bits per byte (lower is better)")
        ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    FIG_DIR.mkdir(parents=True, exist_ok=True)
    path = FIG_DIR / "model-zoo-lm.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def write_up(work: Path) -> None:
    parts = ["# The model zoo: every family on the same data\n",
             "Regenerated by `scripts/experiments/model_zoo.py` (exact commands at the end). Machine: the project's "
             "2-core CPU box; times are wall seconds including start-up and are indicative only (see "
             "benchmarks/ for controlled speed measurements).\n"]
    commands: list[str] = []
    lm = load(work, "lm")
    if lm:
        parts.append(f"## Language models (val bits per byte, same split per corpus; neural models {lm['iters']} "
                     "steps each)\n")
        parts.append("Bits per byte divide the val loss by the text's bytes, so char- and BPE-level models, and the "
                     "two corpora's tokenizers, are on one scale. n-grams are fitted by counting (one pass).\n")
        parts.append(table(lm["rows"], [("corpus", "corpus"), ("model", "model"), ("params", "parameters"),
                                        ("train_seconds", "train s"), ("val_bits_per_byte", "val bits/byte"),
                                        ("bilstm_forward_bits_per_byte", "bi-LSTM fwd"),
                                        ("bilstm_backward_bits_per_byte", "bi-LSTM bwd")]))
        for corpus in sorted({r["corpus"] for r in lm["rows"]}):
            rows = sorted((r for r in lm["rows"] if r["corpus"] == corpus), key=lambda r: r["val_bits_per_byte"])
            best_neural = next((r for r in rows if not r["model"].startswith("ngram")), None)
            parts.append(f"\n- {corpus}: best {rows[0]['model']} ({rows[0]['val_bits_per_byte']:.3f} bits/byte)"
                         + (f"; best neural model {best_neural['model']} ({best_neural['val_bits_per_byte']:.3f})"
                            if best_neural else ""))
        parts.append(f"\nThe neural models had {lm['iters']} optimizer steps each — a small budget (nanoGPT's CPU "
                     "setting for tiny Shakespeare is 2000), so they are still improving where a 5-gram is finished; "
                     "rerun with `--iters N` for a larger budget. The bi-LSTM's two directions share the training "
                     "steps, so each direction alone is behind a one-way LSTM of the same budget. An n-gram's \"parameters\" are "
                     "the entries of its probability tables.\n")
        fig = plot_lm(lm)
        if fig:
            parts.append(f"\n![language models](../figures/{fig})\n")
        commands += lm.get("commands", [])
    for section, title, cols in (
            ("sentiment", "Sentiment classification (accuracy)",
             [("model", "model"), ("method", "method"), ("sst2_dev", "SST-2 dev"), ("world_reviews", "world reviews"),
              ("train_seconds", "train s")]),
            ("translation", "Translation (Tatoeba en→fr, val split)",
             [("model", "model"), ("decoding", "decoding"), ("bleu", "BLEU"), ("chrf", "chrF"), ("n", "sentences"),
              ("params", "parameters"), ("train_seconds", "train s")]),
            ("embeddings", "Word embeddings on the world's words (world-relation scores, docs/embeddings.md)",
             [("model", "model"), ("kind_clustering", "kind clustering"), ("nn_kind_purity@5", "NN kind purity@5"),
              ("city_city_cos", "cos city-city"), ("city_person_cos", "cos city-person"),
              ("capital_analogy_acc", "capital analogy"), ("language_analogy_acc", "language analogy"),
              ("train_seconds", "train s")])):
        res = load(work, section)
        if not res:
            continue
        parts.append(f"\n## {title}\n")
        parts.append(table(res["rows"], cols))
        if res.get("notes"):
            parts.append("\n" + res["notes"])
        commands += res.get("commands", [])
    parts.append("\n## Commands\n\n```bash\n" + "\n".join(commands) + "\n```\n")
    DOC.write_text("\n".join(parts))
    print(f"wrote {DOC}", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True, type=Path, help="working directory for data, runs and results")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    ap.add_argument("--iters", type=int, default=600, help="training steps of every neural model (default 600)")
    ap.add_argument("--gpt-run", type=Path, default=None,
                    help="GPT run dir to fine-tune and prompt for sentiment (default: the lm section's world GPT)")
    ap.add_argument("--write-up-only", action="store_true", help="only regenerate the report from WORK/*.json")
    args = ap.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if not args.write_up_only:
        runners = {"lm": section_lm, "translation": section_translation, "embeddings": section_embeddings,
                   "sentiment": lambda w, r, n: section_sentiment(w, r, n, args.gpt_run)}
        for section in args.sections.split(","):
            if section not in SECTIONS:
                ap.error(f"unknown section {section!r}; choose from {SECTIONS}")
            rec = Recorder()
            result = runners[section](work, rec, args.iters)
            result["commands"] = rec.commands
            save(work, section, result)
    write_up(work)


if __name__ == "__main__":
    main()
