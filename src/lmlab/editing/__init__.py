"""Knowledge editing: ROME, MEMIT and constrained fine-tuning (FT-L) behind one interface, with CounterFact's
edit metrics. See docs/editing.md.

    from lmlab.checkpoint import load_run, run_data_dir
    from lmlab.editing import edit
    run = load_run("runs/tiny")
    result = edit(run.model, run.tokenizer, {"prompt": "The capital of {} is", "subject": "Vorland",
                                             "target_new": "Gutaiholm"}, method="rome",
                  stats_data=run_data_dir(run))
    result.model  # the edited copy; result.log, result.deltas
"""

from lmlab.editing.api import METHODS, EditResult, default_layers, edit, hparams_per_method, make_hparams, parse_hparams
from lmlab.editing.ft_l import FtHparams
from lmlab.editing.memit import MemitHparams, memit_update
from lmlab.editing.metrics import (case_probs, case_scores, generation_entropy, harmonic_mean, n_gram_entropy,
                                   summarize, target_probs)
from lmlab.editing.prompts import context_prefixes
from lmlab.editing.requests import (EditRequest, load_requests, prompt_template, request_from_record,
                                    requests_from_options)
from lmlab.editing.rome import RomeHparams, rank_one_update, subject_key
from lmlab.editing.stats import SecondMoments, default_cache_dir

__all__ = [
    "edit", "EditResult", "METHODS", "make_hparams", "parse_hparams", "hparams_per_method", "default_layers",
    "EditRequest", "load_requests", "request_from_record", "requests_from_options", "prompt_template",
    "RomeHparams", "MemitHparams", "FtHparams", "rank_one_update", "memit_update", "subject_key",
    "SecondMoments", "default_cache_dir", "context_prefixes",
    "case_probs", "case_scores", "summarize", "harmonic_mean", "target_probs", "generation_entropy",
    "n_gram_entropy",
]
