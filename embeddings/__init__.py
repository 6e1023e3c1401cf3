"""Encoders, an on-disk embedding cache and a FAISS vector index; no label concepts here.

Heavy libraries (torch, sentence-transformers, transformers, faiss) load on first use.

>>> from embeddings import PrecomputedEmbeddings
>>> PrecomputedEmbeddings(dim=2).encode([[3.0, 4.0]]).tolist()
[[0.6000000238418579, 0.800000011920929]]
"""

from embeddings.cache import (
    CachedEncoder,
    CacheStats,
    EmbeddingCache,
    EmbeddingCacheError,
    ShardedEmbeddingCache,
    open_cache,
)
from embeddings.encoder import (
    EmbeddingInputError,
    Encoder,
    EncoderLoadError,
    EncoderNotFittedError,
)
from embeddings.errors import EmbeddingsError
from embeddings.image import ClipImageEncoder, HogPcaImageEncoder
from embeddings.index import (
    IndexCorruptError,
    IndexMismatchError,
    IndexOperationError,
    SearchResult,
    VectorIndex,
)
from embeddings.precomputed import PrecomputedEmbeddings, embedding_matrix
from embeddings.text import TextEncoder

__all__ = [
    "CacheStats",
    "CachedEncoder",
    "ClipImageEncoder",
    "EmbeddingCache",
    "EmbeddingCacheError",
    "EmbeddingInputError",
    "EmbeddingsError",
    "Encoder",
    "EncoderLoadError",
    "EncoderNotFittedError",
    "HogPcaImageEncoder",
    "IndexCorruptError",
    "IndexMismatchError",
    "IndexOperationError",
    "PrecomputedEmbeddings",
    "SearchResult",
    "ShardedEmbeddingCache",
    "TextEncoder",
    "VectorIndex",
    "embedding_matrix",
    "open_cache",
]
