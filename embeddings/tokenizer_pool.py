"""Tokenize texts in chunks (in worker processes, running ahead of the model, or inline).

Texts are tokenized a chunk at a time (:data:`CHUNK_TEXTS` or more) by the model's own
``preprocess``, so the features are exactly those the model would make itself; then
:func:`token_length_batches` cuts a chunk into batches of texts of similar *token* length,
each trimmed to its longest row (little padding, whatever the characters). Workers load the
same sentence-transformers model on CPU once, are started with ``spawn`` (safe next to torch
threads and CUDA) and keep a bounded number of chunks in flight, so tokenization overlaps
inference and memory stays flat.

>>> import numpy as np
>>> mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]])
>>> [(rows.tolist(), b["attention_mask"].shape) for rows, b in
...  token_length_batches({"attention_mask": mask}, batch_size=2)]
[([1, 0], (2, 4)), ([2], (1, 1))]
"""

from __future__ import annotations

import weakref
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

_WORKER_MODEL: Any = None


#: Texts tokenized in one ``preprocess`` call (then sorted by token length within the chunk).
CHUNK_TEXTS = 4096


def token_length_batches(
    features: dict[str, Any], *, batch_size: int
) -> list[tuple[Any, dict[str, Any]]]:
    """Cut one chunk's padded features into batches of similar token length.

    Parameters
    ----------
    features : dict
        A ``preprocess`` result as numpy arrays (see :func:`features_as_numpy`), rows padded
        to the chunk's longest text, with an ``attention_mask``.
    batch_size : int
        Rows per batch.

    Returns
    -------
    list of (rows, batch)
        ``rows``: int array of the chunk's row positions, longest first; ``batch``: the
        features of those rows, the sequence axis cut to the batch's longest row when the
        padding is on the right (only padding is removed: the model's output is unchanged).
        Values that are not per-row arrays are passed through.
    """
    import numpy as np

    mask = np.asarray(features["attention_mask"])
    count, width = mask.shape
    lengths = mask.sum(axis=1)
    order = np.argsort(-lengths, kind="stable")
    right_padded = bool(np.array_equal(mask != 0, np.arange(width) < lengths[:, None]))
    batches = []
    for start in range(0, count, batch_size):
        rows = order[start : start + batch_size]
        keep = int(lengths[rows].max()) if right_padded else width
        batch = {}
        for key, value in features.items():
            if isinstance(value, np.ndarray) and value.ndim >= 1 and len(value) == count:
                value = value[rows]
                if value.ndim == 2 and value.shape[1] == width:
                    value = np.ascontiguousarray(value[:, :keep])
            batch[key] = value
        batches.append((rows, batch))
    return batches


def _init_worker(source: str, revision: str | None) -> None:
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(1)  # this worker process only tokenizes
    global _WORKER_MODEL
    _WORKER_MODEL = SentenceTransformer(source, device="cpu", revision=revision)


def features_as_numpy(features: dict[str, Any]) -> dict[str, Any]:
    """A ``preprocess`` result with its tensors turned into numpy arrays (others kept)."""
    return {k: v.numpy() if hasattr(v, "numpy") else v for k, v in features.items()}


def _tokenize(texts: list[str]) -> dict[str, Any]:
    return features_as_numpy(_WORKER_MODEL.preprocess(texts))


class TokenizerPool:
    """Worker processes that turn chunks of texts into model features (numpy arrays).

    Parameters
    ----------
    source : str
        The sentence-transformers model folder or name each worker loads (on CPU).
    revision : str or None
        Hub revision for a model name.
    workers : int
        Number of processes (>= 1).

    ``map`` yields the features of each chunk in order, keeping up to ``2 * workers`` chunks
    in flight. ``close`` stops the workers (also done when the pool is garbage-collected).
    """

    def __init__(self, source: str, *, revision: str | None = None, workers: int) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.workers = workers
        self._executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(source, revision),
        )
        self._finalizer = weakref.finalize(self, self._executor.shutdown, cancel_futures=True)

    def map(self, batches: Iterable[list[str]]) -> Iterator[dict[str, Any]]:
        """Features of each chunk of texts, in the order given, tokenized ahead."""
        pending: deque[Any] = deque()
        ahead = 2 * self.workers
        for batch in batches:
            pending.append(self._executor.submit(_tokenize, batch))
            if len(pending) > ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def close(self) -> None:
        """Stop the worker processes."""
        self._finalizer()
