"""Embeddings users already have: a column of vectors, validated and L2-normalized.

>>> import polars as pl
>>> column = pl.Series("vector", [[3.0, 4.0], [1.0, 0.0]], dtype=pl.Array(pl.Float64, 2))
>>> PrecomputedEmbeddings(dim=2).encode(column)
array([[0.6, 0.8],
       [1. , 0. ]], dtype=float32)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from embeddings.encoder import EmbeddingInputError, content_digest, row_norms, unit_rows

if TYPE_CHECKING:
    import numpy as np


def embedding_matrix(
    vectors: Any,
    *,
    dim: int | None = None,
    normalize: bool = True,
    allow_zero: bool = False,
    what: str = "vectors",
) -> np.ndarray:
    """Validate a column of vectors and return it as float32 ``(n, dim)`` with unit-norm rows.

    Parameters
    ----------
    vectors
        A 2-D numpy array; a polars Series of dtype ``Array`` or ``List`` of numbers; a pandas
        Series or list whose items are equal-length sequences or 1-D arrays; a pyarrow
        (fixed-size) list array.
    dim : int or None
        Required width; None accepts any width shared by all rows.
    normalize : bool
        Scale rows to unit L2 norm (False returns them as float32, unchanged).
    allow_zero : bool
        Accept all-zero rows (they stay zero) instead of raising.
    what : str
        How error messages name the vectors.

    Raises
    ------
    EmbeddingInputError
        Null rows, rows of different lengths, non-finite values (NaN/inf), all-zero rows
        (no direction to normalize), or a width other than ``dim``. The message quotes the
        first offending row.

    >>> embedding_matrix([[0.0, 2.0]]).tolist()
    [[0.0, 1.0]]
    """
    import numpy as np

    matrix = _to_2d(vectors, what)
    if matrix.ndim != 2:
        raise EmbeddingInputError(
            f"{what}: expected a 2-D array (n_rows, dim) or a column of vectors, got an "
            f"array of shape {matrix.shape}."
        )
    if len(matrix) == 0:
        return np.zeros((0, dim if dim is not None else matrix.shape[1]), dtype=np.float32)
    if matrix.shape[1] == 0:
        raise EmbeddingInputError(f"{what}: vectors are empty (0 dimensions).")
    if dim is not None and matrix.shape[1] != dim:
        raise EmbeddingInputError(
            f"{what}: vectors have {matrix.shape[1]} dimensions, expected {dim}; embed with "
            "the same model the index or encoder was built for."
        )
    kind = matrix.dtype
    if not np.issubdtype(kind, np.number) or np.issubdtype(kind, np.complexfloating):
        raise EmbeddingInputError(f"{what}: vectors must hold real numbers, got {matrix.dtype}.")
    matrix = matrix.astype(np.float32, copy=False)
    # a row's norm is finite iff all its values are, and 0 iff they all are 0
    norms = row_norms(matrix)
    finite = np.isfinite(norms)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise EmbeddingInputError(
            f"{what}: row {row} holds NaN or infinite values ({_row_preview(matrix[row])}); "
            f"{int((~finite).sum())} row(s) in all. Drop or re-embed them."
        )
    zero = norms == 0
    if zero.any() and not allow_zero:
        row = int(np.flatnonzero(zero)[0])
        raise EmbeddingInputError(
            f"{what}: row {row} is all zeros, so it has no direction to compare; "
            f"{int(zero.sum())} such row(s). Drop them or re-embed those assets."
        )
    return unit_rows(matrix, norms) if normalize else np.ascontiguousarray(matrix)


def _to_2d(vectors: Any, what: str) -> np.ndarray:
    import numpy as np

    if isinstance(vectors, np.ndarray) and vectors.dtype != object:
        return vectors
    to_numpy = getattr(vectors, "to_numpy", None)
    dtype = getattr(vectors, "dtype", None)
    if to_numpy is not None and type(vectors).__module__.startswith("polars"):
        import polars as pl

        if vectors.null_count():
            row = int(np.flatnonzero(vectors.is_null().to_numpy())[0])
            raise EmbeddingInputError(
                f"{what}: row {row} is null; {vectors.null_count()} null row(s). Drop them "
                "or embed those assets first."
            )
        if isinstance(dtype, pl.Array):
            return vectors.to_numpy()
        if isinstance(dtype, pl.List):
            lengths = vectors.list.len().to_numpy()
            _check_lengths(lengths, what)
            width = int(lengths[0]) if len(lengths) else 0
            if width == 0:
                return np.zeros((len(vectors), 0), dtype=np.float32)
            return vectors.list.to_array(width).to_numpy()
        raise EmbeddingInputError(
            f"{what}: a polars column of vectors must have dtype Array or List of numbers, "
            f"got {dtype}."
        )
    if hasattr(vectors, "to_pylist"):  # pyarrow
        vectors = vectors.to_pylist()
    elif hasattr(vectors, "tolist") and not isinstance(vectors, list):  # pandas, object array
        vectors = vectors.tolist()
    rows = list(vectors)
    for i, row in enumerate(rows):
        if row is None:
            raise EmbeddingInputError(
                f"{what}: row {i} is null; drop null rows or embed those assets first."
            )
        if isinstance(row, str | bytes) or not hasattr(row, "__len__"):
            raise EmbeddingInputError(
                f"{what}: row {i} is {type(row).__name__} {row!r:.40}, not a vector."
            )
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    _check_lengths(lengths, what)
    if not rows:
        return np.zeros((0, 0), dtype=np.float32)
    try:
        return np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise EmbeddingInputError(f"{what}: rows must hold numbers only ({exc}).") from exc


def _check_lengths(lengths: np.ndarray, what: str) -> None:
    import numpy as np

    if len(lengths) and (lengths != lengths[0]).any():
        row = int(np.flatnonzero(lengths != lengths[0])[0])
        raise EmbeddingInputError(
            f"{what}: rows have different lengths (row 0 has {int(lengths[0])}, row {row} has "
            f"{int(lengths[row])}); every vector must have the same dimension."
        )


def _row_preview(row: np.ndarray) -> str:
    shown = ", ".join(f"{v:.3g}" for v in row[:4])
    return f"[{shown}{', ...' if len(row) > 4 else ''}]"


class PrecomputedEmbeddings:
    """An encoder for vectors you already have: ``encode`` validates and normalizes them.

    Items are vectors (see :func:`embedding_matrix` for the accepted columns). Use it where an
    encoder is expected when assets come with embeddings made elsewhere; the vectors must
    all come from one model, which ``name`` should identify (it is part of ``id``).

    Parameters
    ----------
    dim : int
        Width of the vectors.
    name : str
        Name of the model that produced the vectors (e.g. ``"openai-clip-vit-b32"``).
    """

    def __init__(self, *, dim: int, name: str = "precomputed") -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise EmbeddingInputError(f"dim must be a positive integer, got {dim!r}.")
        if not isinstance(name, str) or not name or ":" in name:
            raise EmbeddingInputError(f"name must be a non-empty string without ':', got {name!r}.")
        self._dim = dim
        self.name = name

    def __repr__(self) -> str:
        return f"PrecomputedEmbeddings(dim={self._dim}, name={self.name!r})"

    @property
    def dim(self) -> int:
        """Width of the vectors."""
        return self._dim

    @property
    def id(self) -> str:
        """``"precomputed:<name>:dim=<dim>:l2"``."""
        return f"precomputed:{self.name}:dim={self._dim}:l2"

    def content_digest(self, item: Any) -> bytes:
        """Cache key of one vector (its float32 values)."""
        import numpy as np

        try:
            vector = np.asarray(item, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise EmbeddingInputError(
                f"cannot compute a content hash of {type(item).__name__} {item!r:.40}: "
                "precomputed items must be vectors of numbers."
            ) from exc
        return content_digest(vector)

    def encode(self, items: Any, *, batch_size: int = 65536, progress: bool | None = None):
        """Return the vectors as float32 ``(n, dim)`` with unit-norm rows.

        ``batch_size`` and ``progress`` are accepted for the common encoder shape; the work is
        one vectorized pass.
        """
        return embedding_matrix(items, dim=self._dim, what="PrecomputedEmbeddings.encode")
