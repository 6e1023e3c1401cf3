"""Tokenize batches of texts in worker processes, running ahead of the model.

Each worker loads the same sentence-transformers model on CPU once and calls its own
``preprocess`` on the batches it is given, so the features are exactly those the model would
make itself. Workers are started with ``spawn`` (safe next to torch threads and CUDA) and keep
a bounded number of batches in flight, so tokenization overlaps inference and memory stays flat.

>>> length_sorted_batches(["a", "ccc", "bb", "dddd"], batch_size=2)
[[3, 1], [2, 0]]
"""

from __future__ import annotations

import weakref
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

_WORKER_MODEL: Any = None


def length_sorted_batches(texts: Sequence[str], *, batch_size: int) -> list[list[int]]:
    """Positions of ``texts``, longest first, cut into batches (little padding per batch)."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


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
    """Worker processes that turn batches of texts into model features (numpy arrays).

    Parameters
    ----------
    source : str
        The sentence-transformers model folder or name each worker loads (on CPU).
    revision : str or None
        Hub revision for a model name.
    workers : int
        Number of processes (>= 1).

    ``map`` yields the features of each batch in order, keeping up to ``2 * workers`` batches
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
        """Features of each batch of texts, in the order given, tokenized ahead."""
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
