"""Which training text made this output: an exact-match suffix-array index over token shards and a kNN memory.

    from lmlab.attribution import index, count, find, trace, SuffixIndex
    index("data/world")                         # DATA_DIR/attribution-index, beside the shards
    count("data/world", "The capital of")       # occurrences in the indexed splits
    ix = SuffixIndex.open("data/world")         # memory-mapped, for many queries
    ix.infgram_next(run.tokenizer.encode("The capital of"))

See docs/attribution.md.
"""

from lmlab.attribution.api import (MemorisationReport, NeighboursReport, Neighbour, Occurrence, TraceReport, count,
                                   find, index, knn, memorisation, memory_perplexity, neighbours, occurrences,
                                   open_run_index, trace, trace_text)
from lmlab.attribution.datastore import Datastore, build_datastore, knn_logprobs
from lmlab.attribution.corpus import Corpus, shards_fingerprint
from lmlab.attribution.memorisation import Coverage, span_coverage
from lmlab.attribution.spans import Span, Trace, char_offsets, mark_spans, trace_ids
from lmlab.attribution.suffix_array import NextTokens, SuffixIndex, build_index

__all__ = ["index", "count", "find", "occurrences", "open_run_index", "trace", "trace_text", "memorisation", "knn",
           "neighbours", "memory_perplexity", "Occurrence", "TraceReport", "MemorisationReport", "Neighbour",
           "NeighboursReport", "Datastore", "build_datastore", "knn_logprobs", "SuffixIndex", "NextTokens",
           "build_index", "Corpus", "shards_fingerprint", "Coverage", "span_coverage", "Span", "Trace", "trace_ids",
           "mark_spans", "char_offsets"]
