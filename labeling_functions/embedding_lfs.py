"""Embedding LFs: vote from where an asset lies in embedding space (text or image alike).

Both LFs read a column of vectors (a polars ``Array``/``List`` column, e.g. made with an
``embeddings`` encoder) and work on cosine similarity:

- :func:`prototype_lf` votes its class when an asset is close to any of a few prototype
  vectors (examples of the class);
- :func:`nearest_neighbor_lf` votes the class of the ``k`` nearest labeled (gold) assets
  when enough of them agree.

>>> import numpy as np, polars as pl
>>> data = pl.DataFrame({"embedding": [[1.0, 0.0], [0.0, 1.0], [0.8, 0.6]]})
>>> lf = prototype_lf("near_x", [[1.0, 0.0]], label="SPAM", threshold=0.75)
>>> lf.fires(data).tolist()
[True, False, True]
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from labeling_functions.core import ABSTAIN, Label, LabelSpec, VectorizedLF
from labeling_functions.errors import LFDefinitionError

if TYPE_CHECKING:
    import polars as pl


def _matrix(vectors: Any, *, what: str, dim: int | None = None) -> np.ndarray:
    from embeddings import embedding_matrix

    try:
        return embedding_matrix(vectors, dim=dim, what=what)
    except ValueError as exc:
        raise LFDefinitionError(str(exc)) from exc


def _array_digest(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(repr((array.shape, array.dtype.str)).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True, kw_only=True, eq=False)
class PrototypeLF(VectorizedLF):
    """Votes ``label`` where cosine similarity to the nearest prototype is >= ``threshold``."""

    prototypes: np.ndarray = field(repr=False)
    column: str = "embedding"
    threshold: float = 0.8

    def __post_init__(self) -> None:
        if self.label is None:
            raise LFDefinitionError(f"LF {self.name!r} needs the class it votes for (label=...).")
        if not -1.0 <= self.threshold <= 1.0:
            raise LFDefinitionError(
                f"LF {self.name!r}: threshold is a cosine similarity in [-1, 1], "
                f"got {self.threshold}."
            )
        object.__setattr__(self, "prototypes", _matrix(self.prototypes, what="prototypes"))
        super().__post_init__()

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns this LF reads."""
        return (self.column,)

    def similarity(self, frame: pl.DataFrame) -> np.ndarray:
        """Cosine similarity (n_rows,) of each asset to its nearest prototype."""
        vectors = _matrix(
            frame.get_column(self.column),
            what=f"column {self.column!r} of LF {self.name!r}",
            dim=self.prototypes.shape[1],
        )
        if len(vectors) == 0:
            return np.zeros(0, dtype=np.float32)
        return (vectors @ self.prototypes.T).max(axis=1)

    def fires(self, frame: pl.DataFrame) -> np.ndarray:
        """Boolean mask ``(n_rows,)``: where the LF votes its label."""
        return self.similarity(frame) >= self.threshold

    def _definition(self) -> tuple[object, ...]:
        return (self.label, self.column, self.threshold, _array_digest(self.prototypes))


@dataclass(frozen=True, kw_only=True, eq=False)
class NearestNeighborLF(VectorizedLF):
    """Votes the class shared by at least ``min_agreement`` of the ``k`` nearest references.

    References are labeled assets (their vectors and classes). Neighbours less similar than
    ``min_similarity`` are ignored; an asset found among the references (same id in
    ``id_column``) never counts as its own neighbour, so the LF can be scored on gold data
    without leaking the answer.
    """

    reference_vectors: np.ndarray = field(repr=False)
    reference_labels: tuple[Label | tuple[Label, ...], ...] = field(repr=False)
    reference_ids: tuple[Any, ...] | None = field(default=None, repr=False)
    column: str = "embedding"
    id_column: str | None = None
    k: int = 10
    min_agreement: float = 0.7
    min_similarity: float = 0.0

    def __post_init__(self) -> None:
        vectors = _matrix(self.reference_vectors, what="reference_vectors")
        labels = tuple(_label_or_set(label) for label in self.reference_labels)
        if len(labels) != len(vectors) or not labels:
            raise LFDefinitionError(
                f"LF {self.name!r} needs one label per reference vector: got {len(vectors)} "
                f"vectors and {len(labels)} labels."
            )
        if self.k < 1 or not 0 < self.min_agreement <= 1:
            raise LFDefinitionError(
                f"LF {self.name!r}: k must be >= 1 and min_agreement in (0, 1], got "
                f"k={self.k}, min_agreement={self.min_agreement}."
            )
        if (self.reference_ids is None) != (self.id_column is None):
            raise LFDefinitionError(
                f"LF {self.name!r}: pass reference_ids and id_column together (or neither)."
            )
        object.__setattr__(self, "reference_vectors", vectors)
        object.__setattr__(self, "reference_labels", labels)
        super().__post_init__()

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns this LF reads."""
        return (self.column,) if self.id_column is None else (self.column, self.id_column)

    def votes(self, frame: pl.DataFrame, to_id: Callable[[object], int]) -> np.ndarray:
        """Votes ``(n_rows,)``: a class id, or ``-1`` where the LF abstains."""
        if frame.height == 0:
            return np.zeros(0, dtype=np.int32)
        classes = np.array([to_id(label) for label in self.reference_labels], dtype=np.int64)
        neighbours, usable = self._usable_neighbours(frame)
        neighbour_class = np.where(usable, classes[np.maximum(neighbours, 0)], -1)
        return _agreed_class(neighbour_class, self.min_agreement)

    def label_votes(
        self, frame: pl.DataFrame, to_id: Callable[[object], int], n_labels: int
    ) -> np.ndarray:
        """Multi-label votes ``(n_rows, n_labels)`` int8: +1 for, -1 against, 0 abstain.

        Each reference label is a label set (a tuple, list or set of labels; a plain label is
        the set of that one label). The LF votes for a label where at least
        ``min_agreement`` of the usable neighbours have it, and against it where at least
        ``min_agreement`` of them lack it.
        """
        members = np.zeros((len(self.reference_labels), n_labels), dtype=bool)
        for row, labels in enumerate(self.reference_labels):
            for label in labels if isinstance(labels, tuple) else (labels,):
                members[row, to_id(label)] = True
        if frame.height == 0:
            return np.zeros((0, n_labels), dtype=np.int8)
        neighbours, usable = self._usable_neighbours(frame)
        n_usable = usable.sum(axis=1, keepdims=True)
        having = (members[np.maximum(neighbours, 0)] & usable[:, :, None]).sum(axis=1)
        share = having / np.maximum(n_usable, 1)
        some = n_usable > 0
        out = np.zeros(share.shape, dtype=np.int8)
        out[some & (share >= self.min_agreement)] = 1
        out[some & (1.0 - share >= self.min_agreement)] = -1
        return out

    def _usable_neighbours(self, frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Neighbour reference positions (n_rows, k') and which of them count."""
        from embeddings import VectorIndex

        queries = _matrix(
            frame.get_column(self.column),
            what=f"column {self.column!r} of LF {self.name!r}",
            dim=self.reference_vectors.shape[1],
        )
        n_references = len(self.reference_labels)
        index = VectorIndex(self.reference_vectors.shape[1], kind="flat")
        index.add(np.arange(n_references, dtype=np.int64), self.reference_vectors)
        extra = 1 if self.id_column is not None else 0
        found = index.search(queries, min(self.k + extra, n_references))
        neighbours, similarity = found.ids, found.similarities
        usable = (neighbours >= 0) & (similarity >= self.min_similarity)
        if self.id_column is not None:
            usable &= ~self._is_self(frame, neighbours)
        usable &= np.cumsum(usable, axis=1) <= self.k  # keep the k best usable neighbours
        return neighbours, usable

    def _is_self(self, frame: pl.DataFrame, neighbours: np.ndarray) -> np.ndarray:
        reference_ids = np.asarray(self.reference_ids, dtype=object)
        own_ids = np.asarray(frame.get_column(self.id_column).to_list(), dtype=object)
        return reference_ids[np.maximum(neighbours, 0)] == own_ids[:, None]

    def _definition(self) -> tuple[object, ...]:
        return (
            self.column,
            self.id_column,
            self.k,
            self.min_agreement,
            self.min_similarity,
            _array_digest(self.reference_vectors),
            self.reference_labels,
            self.reference_ids,
        )


def _label_or_set(label: Any) -> Any:
    """A reference label as stored: a plain label, or a label set as a tuple (multi-label)."""
    if isinstance(label, set | frozenset):
        return tuple(sorted(label, key=repr))
    if isinstance(label, list):
        return tuple(label)
    return label


def _agreed_class(neighbour_class: np.ndarray, min_agreement: float) -> np.ndarray:
    """Per row, the class held by >= min_agreement of the usable neighbours (-1 = none)."""
    n_usable = (neighbour_class >= 0).sum(axis=1)
    n_classes = int(neighbour_class.max()) + 1 if neighbour_class.size else 0
    if n_classes == 0:
        return np.full(len(neighbour_class), ABSTAIN, dtype=np.int32)
    counts = np.stack([(neighbour_class == c).sum(axis=1) for c in range(n_classes)], axis=1)
    best = counts.argmax(axis=1)
    share = counts.max(axis=1) / np.maximum(n_usable, 1)
    agreed = (n_usable > 0) & (share >= min_agreement)
    return np.where(agreed, best, ABSTAIN).astype(np.int32)


def prototype_lf(
    name: str,
    prototypes: Any,
    *,
    label: LabelSpec,
    column: str = "embedding",
    threshold: float = 0.8,
) -> PrototypeLF:
    """Make an LF that votes ``label`` near any of ``prototypes`` (a (p, dim) array of vectors)."""
    return PrototypeLF(
        name=name, label=label, prototypes=prototypes, column=column, threshold=threshold
    )


def nearest_neighbor_lf(
    name: str,
    reference_vectors: Any,
    reference_labels: Sequence[Label | Sequence[Label] | frozenset[Label]],
    *,
    column: str = "embedding",
    reference_ids: Sequence[Any] | None = None,
    id_column: str | None = None,
    k: int = 10,
    min_agreement: float = 0.7,
    min_similarity: float = 0.0,
) -> NearestNeighborLF:
    """Make an LF that votes the class its ``k`` nearest labeled references agree on.

    >>> import polars as pl
    >>> refs = [[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]
    >>> lf = nearest_neighbor_lf("knn", refs, ["SPAM", "SPAM", "HAM"], k=2, min_agreement=1.0)
    >>> data = pl.DataFrame({"embedding": [[1.0, 0.05], [0.1, 1.0]]})
    >>> lf.votes(data, {"HAM": 0, "SPAM": 1}.__getitem__).tolist()
    [1, -1]
    """
    return NearestNeighborLF(
        name=name,
        label=None,
        reference_vectors=reference_vectors,
        reference_labels=tuple(reference_labels),
        reference_ids=tuple(reference_ids) if reference_ids is not None else None,
        column=column,
        id_column=id_column,
        k=k,
        min_agreement=min_agreement,
        min_similarity=min_similarity,
    )
