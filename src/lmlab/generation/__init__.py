"""Decoding (greedy, sampling, beam search, streaming) with a KV cache, and scoring (log-likelihood, perplexity).

    from lmlab.checkpoint import load_run
    from lmlab.generation import generate, score_text, set_kv_cache_storage, set_weight_storage
    run = load_run("runs/tiny")
    print(generate(run.model, run.tokenizer, "The capital of", temperature=0)[0].text)
    set_weight_storage(run.model, "int8")  # decode and score with int8 copies of the Linear weights from now on
    set_kv_cache_storage(run.model, "bf16")  # decode with keys/values cached as bfloat16 from now on

See docs/generation.md for the conventions.
"""

from lmlab.generation.batching import BatchedDecoder, TokenEvent
from lmlab.generation.decoding import (Completion, choose_next, eval_mode, generate, new_text,
                                       releasable_length, stream)
from lmlab.generation.kv_storage import KV_STORAGES, check_kv_storage, kv_cache_storage, set_kv_cache_storage
from lmlab.generation.scoring import (TextScore, perplexity, prompt_logprobs, score_continuation, score_continuations,
                                      score_text, text_perplexity, token_logprobs)
from lmlab.generation.weight_storage import STORAGES, check_weight_storage, set_weight_storage, weight_storage

__all__ = ["Completion", "generate", "stream", "choose_next", "new_text", "eval_mode", "TextScore", "score_text",
           "score_continuation", "score_continuations", "perplexity", "text_perplexity", "token_logprobs",
           "prompt_logprobs", "BatchedDecoder", "TokenEvent", "releasable_length",
           "STORAGES", "check_weight_storage", "set_weight_storage", "weight_storage",
           "KV_STORAGES", "check_kv_storage", "set_kv_cache_storage", "kv_cache_storage"]
