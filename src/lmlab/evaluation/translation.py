"""Translation quality of an encoder-decoder run: corpus BLEU and chrF with sacrebleu (`lmlab eval translation`).

BLEU (Papineni et al. 2002) and chrF (Popović 2015) are computed by sacrebleu with its defaults (BLEU: 13a
tokenisation, exponential smoothing off → standard corpus BLEU on 0..100; chrF: character 6-grams, β = 2), so
the numbers are comparable with published ones computed the same way. One reference per source.

Default data: the val split of the run's own training data (`source<sep>target` shards made by
`lmlab.data.prepare_parallel`), i.e. pairs the model never trained on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from lmlab.checkpoint import Run, load_run, run_data_dir
from lmlab.data.parallel import parallel_options, read_parallel, split_pairs
from lmlab.errors import LmlabError
from lmlab.generation.seq2seq import translate


def corpus_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """{"bleu", "chrf"} of hypotheses against references (one each, same order), both on 0..100."""
    import sacrebleu

    if len(hypotheses) != len(references):
        raise LmlabError(f"{len(hypotheses)} translations but {len(references)} references")
    if not hypotheses:
        raise LmlabError("no sentence pairs to score")
    return {"bleu": sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score,
            "chrf": sacrebleu.corpus_chrf(list(hypotheses), [list(references)]).score}


def translation_scores(run: Run | str | os.PathLike, pairs: Sequence[tuple[str, str]], *, beam: int = 1,
                       limit: int | None = None, max_new_tokens: int | None = None, length_penalty: float = 1.0,
                       batch_size: int = 64, examples: int = 0) -> dict[str, Any]:
    """Translate the sources of `pairs` [(source, reference), ...] with the run's model (greedy, or beam search
    with `beam` beams) and score them: {"bleu", "chrf", "n", "beam"} plus, with examples=k, the first k
    {"source", "reference", "translation"}. `run` is a loaded Run or a run dir; limit: only the first N pairs."""
    if isinstance(run, (str, os.PathLike)):
        run = load_run(run)
    if limit is not None:
        if limit < 1:
            raise LmlabError(f"limit must be ≥ 1, got {limit}")
        pairs = list(pairs)[:limit]
    sources = [s for s, _ in pairs]
    refs = [t for _, t in pairs]
    out = translate(run.model, run.tokenizer, sources, max_new_tokens=max_new_tokens, beam=beam,
                    length_penalty=length_penalty, batch_size=batch_size)
    hyps = [t.text for t in out]
    result: dict[str, Any] = {**corpus_scores(hyps, refs), "n": len(hyps), "beam": beam}
    if examples:
        result["examples"] = [{"source": s, "reference": r, "translation": h}
                              for s, r, h in list(zip(sources, refs, hyps))[:examples]]
    return result


def evaluation_pairs(run: Run, data: str | os.PathLike | None = None, *, split: str = "val",
                     src_lang: str | None = None, tgt_lang: str | None = None,
                     reverse: bool | None = None) -> list[tuple[str, str]]:
    """The (source, reference) pairs to score `run` on: `split` of a parallel shard dir (default: the data dir the
    run was trained on), or parallel text (file / PREFIX / directory, as `read_parallel`) read in the direction the
    run's data dir records unless src_lang/tgt_lang/reverse are given."""
    recorded = run_data_dir(run)
    opts = parallel_options(recorded) if recorded is not None and (recorded / "manifest.json").is_file() else {}
    if data is None:
        data = run_data_dir(run, required="--data FILE|DIR")
    path = Path(data)
    if (path / "manifest.json").is_file():
        return split_pairs(path, split, run.tokenizer)
    return read_parallel(path, src_lang=src_lang or opts.get("src_lang", "en"),
                         tgt_lang=tgt_lang or opts.get("tgt_lang", "fr"),
                         reverse=opts.get("reverse", False) if reverse is None else reverse)


def eval_translation(run_dir: str | os.PathLike, data: str | os.PathLike | None = None, *, split: str = "val",
                     src_lang: str | None = None, tgt_lang: str | None = None, reverse: bool | None = None,
                     beam: int = 1, limit: int | None = None, examples: int = 3,
                     device: str = "cpu") -> dict[str, Any]:
    """What `lmlab eval translation` does: `translation_scores` of a run dir's model on its `evaluation_pairs`."""
    run = load_run(run_dir, device=device)
    pairs = evaluation_pairs(run, data, split=split, src_lang=src_lang, tgt_lang=tgt_lang, reverse=reverse)
    return translation_scores(run, pairs, beam=beam, limit=limit, examples=examples)


def format_translation_scores(result: dict[str, Any]) -> str:
    """The example translations of `translation_scores`' result, then one line of BLEU, chrF, pairs and search."""
    lines = [f"  {e['source']!r} → {e['translation']!r} (reference {e['reference']!r})"
             for e in result.get("examples", [])]
    search = "greedy" if result["beam"] == 1 else f"beam {result['beam']}"
    lines.append(f"BLEU {result['bleu']:.2f} | chrF {result['chrf']:.2f} | {result['n']} pairs, {search}")
    return "\n".join(lines)
