"""The exceptions embeddings raises; every one derives from :class:`EmbeddingsError`."""

from __future__ import annotations


class EmbeddingsError(Exception):
    """Base class of every error raised by embeddings."""
