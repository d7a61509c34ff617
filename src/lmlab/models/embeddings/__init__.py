"""Word-embedding models on word-level tokens: count-based (co-occurrence + SVD: centred/PCA and PPMI) and word2vec
(skip-gram / CBOW with negative sampling). See docs/embeddings.md."""

from lmlab.models.embeddings.base import EmbeddingModel
from lmlab.models.embeddings.cooccurrence import (CoocConfig, CountEmbeddings, PPMIConfig, centred_operator,
                                                  cooccurrence_matrix, ppmi_matrix, transform_counts, truncated_svd)
from lmlab.models.embeddings.vectors import WordVectors
from lmlab.models.embeddings.windows import batch_compact, compact_words, word_mask_of
from lmlab.models.embeddings.word2vec import Word2Vec, Word2VecConfig

__all__ = ["EmbeddingModel", "CoocConfig", "PPMIConfig", "CountEmbeddings", "cooccurrence_matrix", "ppmi_matrix",
           "transform_counts", "centred_operator", "truncated_svd", "WordVectors", "word_mask_of", "compact_words",
           "batch_compact", "Word2Vec", "Word2VecConfig"]
