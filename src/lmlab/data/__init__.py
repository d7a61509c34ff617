"""Corpus → token shards: reading (files, dirs, JSONL), dedup, train/val split, shards + manifest, samplers.

See docs/data.md. Everything a user calls is importable from here.
"""

from lmlab.data.documents import RandomDocumentSampler, SequentialDocumentSampler, document_spans
from lmlab.data.dedup import DEDUP_MODES, ExactDeduplicator, NearDeduplicator, make_deduplicator
from lmlab.data.pipeline import encode_documents, prepare, resolve_tokenizer
from lmlab.data.reading import Document, SourceFile, iter_documents, list_input_files
from lmlab.data.samplers import RandomWindowSampler, SequentialWindowSampler
from lmlab.data.shards import (check_tokenizer, dtype_for_vocab, load_manifest, load_split, load_tokenizer_of,
                               verify_shards)
from lmlab.data.split import split_mask, validation_count
from lmlab.data.reports import format_data_stats, format_parallel_report, format_prepare_report
from lmlab.data.stats import data_stats

__all__ = [
    "Document", "SourceFile", "iter_documents", "list_input_files",
    "DEDUP_MODES", "ExactDeduplicator", "NearDeduplicator", "make_deduplicator",
    "split_mask", "validation_count",
    "prepare", "resolve_tokenizer", "encode_documents",
    "load_manifest", "load_split", "load_tokenizer_of", "check_tokenizer", "verify_shards", "dtype_for_vocab",
    "RandomWindowSampler", "SequentialWindowSampler",
    "RandomDocumentSampler", "SequentialDocumentSampler", "document_spans",
    "data_stats", "format_prepare_report", "format_data_stats", "format_parallel_report",
]
