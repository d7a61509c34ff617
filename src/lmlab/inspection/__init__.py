"""Look inside a GPT: named activation hooks (read / patch), FFN key-value memories, logit lens, attention
patterns and causal tracing. See docs/inspection.md.

    from lmlab.checkpoint import load_run
    from lmlab.inspection import run_with_cache, causal_trace
    run = load_run("runs/tiny")
    logits, cache = run_with_cache(run.model, run.tokenizer.encode("The capital of"), ["blocks.2.mlp.post"])
"""

from lmlab.inspection.attention import attention_patterns, attention_report, check_layers, plot_attention
from lmlab.inspection.hooks import (as_token_batch, describe_hook_names, forward_until, hooked, patch_positions,
                                    read_activations, resolve_hook_names, run_with_cache, run_with_hooks)
from lmlab.inspection.lens import lens_logits, lens_stages, logit_lens, unembed
from lmlab.inspection.memories import (KeyStats, collect_key_stats, key_triggers, memory_agreement, memory_hooks,
                                       sample_windows, shuffled_match_rate, top_memories, value_scores,
                                       value_top_tokens, value_vectors)
from lmlab.inspection.prompts import (SubjectSpan, encode_prompt, fill_prompt, locate_subject, target_token,
                                      token_labels)
from lmlab.inspection.tracing import (BUCKETS, KINDS, Trace, average_traces, best_layer, causal_trace,
                                      default_window, embedding_std, plot_average, plot_trace, trace_facts,
                                      trace_tokens, window_layers)

__all__ = [
    "run_with_cache", "run_with_hooks", "hooked", "patch_positions", "resolve_hook_names", "describe_hook_names",
    "as_token_batch", "forward_until", "read_activations",
    "encode_prompt", "token_labels", "fill_prompt", "locate_subject", "SubjectSpan", "target_token",
    "top_memories", "value_vectors", "value_scores", "value_top_tokens", "collect_key_stats", "KeyStats",
    "key_triggers", "memory_agreement", "memory_hooks", "sample_windows", "shuffled_match_rate",
    "logit_lens", "lens_logits", "lens_stages", "unembed",
    "attention_patterns", "attention_report", "plot_attention", "check_layers",
    "causal_trace", "trace_facts", "trace_tokens", "average_traces", "best_layer", "plot_trace", "plot_average",
    "Trace",
    "KINDS", "BUCKETS", "default_window", "window_layers", "embedding_std",
]
