"""Vote matrices: validation and compression to unique vote patterns.

A vote matrix holds one row per asset and one column per labeling function (LF): an integer
class id ``0..k-1`` where the LF voted, ``-1`` (:data:`ABSTAIN`) where it abstained. Every label
model in enrich takes one; :func:`validate_votes` is the single place that checks it, and
:func:`compress_votes` turns it into its distinct rows (vote patterns) with their counts, which
is what the label models fit on: real vote matrices repeat a few hundred patterns over
thousands of rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from enrich.errors import InputError, VoteValueError
from labeling_functions.core import ABSTAIN

__all__ = [
    "ABSTAIN",
    "VotePatterns",
    "compress_votes",
    "validate_gold",
    "validate_votes",
]


def _smallest_int_dtype(low: int, high: int) -> np.dtype:
    for dtype in (np.int8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def _as_integer_array(values: Any, *, name: str, ndim: int) -> np.ndarray:
    """``np.asarray`` + dtype and shape checks shared by votes and gold labels."""
    try:
        arr = np.asarray(values)
    except Exception as exc:  # e.g. ragged lists
        raise InputError(
            f"{name} could not be read as an array ({exc}); pass a rectangular numpy array, "
            "a list of equal-length lists, or an object with __array__"
        ) from exc
    if arr.ndim != ndim:
        shape = "(n_assets, n_lfs)" if ndim == 2 else "(n_assets,)"
        hint = (
            " (for a single asset use votes.reshape(1, -1))" if ndim == 2 and arr.ndim == 1 else ""
        )
        raise InputError(
            f"{name} must be {ndim}-D with shape {shape}; got {arr.ndim}-D shape {arr.shape}{hint}"
        )
    if arr.dtype.kind in "iu":
        return arr
    if arr.dtype.kind == "b":
        raise InputError(
            f"{name} has boolean dtype; votes are class ids 0..k-1 with -1 for abstain, "
            f"convert with {name}.astype(int) if True/False really mean classes 1/0"
        )
    if arr.dtype.kind == "f":
        if arr.size:
            finite = np.isfinite(arr)
            if not finite.all():
                pos = tuple(int(i) for i in np.argwhere(~finite)[0])
                raise VoteValueError(
                    f"{name} holds {arr[pos].item()!r} at {_where(pos)}; votes must be whole "
                    "numbers (class id, or -1 for abstain)"
                )
            whole = arr == np.round(arr)
            if not whole.all():
                pos = tuple(int(i) for i in np.argwhere(~whole)[0])
                raise VoteValueError(
                    f"{name} holds the non-integer value {arr[pos].item()!r} at "
                    f"{_where(pos)}; votes must be whole numbers (class id, or -1 for abstain)"
                )
        return arr.astype(np.int64)
    raise InputError(
        f"{name} has dtype {arr.dtype}; votes must be integers (class id 0..k-1, -1 for abstain)"
    )


def _where(pos: tuple[int, ...]) -> str:
    return f"row {pos[0]}, column {pos[1]}" if len(pos) == 2 else f"row {pos[0]}"


def validate_votes(
    votes: Any,
    *,
    cardinality: int | None = None,
    n_lfs: int | None = None,
    name: str = "L",
    check_values: bool = True,
) -> np.ndarray:
    """Check a vote matrix and return it as a compact integer array.

    Parameters
    ----------
    votes
        anything ``np.asarray`` turns into a 2-D array of shape ``(n_assets, n_lfs)``
        (a numpy array, nested lists, an object with ``__array__``). Floats are accepted
        when every value is a whole number.
    cardinality
        the number of classes ``k``; when given, every value must lie in
        ``-1..k-1``. When ``None``, only ``>= -1`` is checked.
    n_lfs
        the number of columns the matrix must have (e.g. the number seen at fit time).
    name
        what to call the matrix in error messages.
    check_values
        ``False`` checks the shape and dtype only and leaves the values to the caller,
        which reads them anyway (e.g. block by block while scoring them): it must check
        them and call this function again with ``True`` to raise the error a bad value
        gets.

    Returns
    -------
    An integer array of shape ``(n_assets, n_lfs)``: the input itself when it already is
    an integer numpy array (no copy), otherwise a new array of the smallest signed integer
    dtype that holds the values (``int8`` for up to 127 classes; ``int64`` when the values
    are not checked).

    Raises
    ------
    InputError
        not 2-D, not integer-valued, or the wrong number of columns.
    VoteValueError
        a value outside ``-1..k-1``; the message quotes it with its row and
        column.

    Examples
    --------
    >>> validate_votes([[0, -1, 1], [1, 1, -1]], cardinality=2).tolist()
    [[0, -1, 1], [1, 1, -1]]
    >>> validate_votes([[0, 2]], cardinality=2)
    Traceback (most recent call last):
    ...
    enrich.errors.VoteValueError: L holds 2 at row 0, column 1, outside -1..1 ...
    """
    if cardinality is not None and (
        not isinstance(cardinality, int | np.integer) or cardinality < 1
    ):
        raise InputError(f"cardinality must be a positive int; got {cardinality!r}")
    original = votes
    arr = _as_integer_array(votes, name=name, ndim=2)
    if n_lfs is not None and arr.shape[1] != n_lfs:
        raise InputError(
            f"{name} has {arr.shape[1]} columns but the model was fitted on {n_lfs} LFs; pass "
            "the votes of the same LFs, in the same column order, as at fit time"
        )
    if arr.size == 0:
        return np.ascontiguousarray(arr, dtype=np.int8)
    if not check_values:
        return arr
    low, high = int(arr.min()), int(arr.max())
    top = None if cardinality is None else int(cardinality) - 1
    if low < ABSTAIN or (top is not None and high > top):
        bad = arr < ABSTAIN if top is None else (arr < ABSTAIN) | (arr > top)
        r, c = (int(i) for i in np.argwhere(bad)[0])
        allowed = "-1 (abstain) or a class id >= 0" if top is None else f"-1..{top}"
        suffix = "" if top is None else f" for cardinality={cardinality}"
        raise VoteValueError(
            f"{name} holds {int(arr[r, c])} at row {r}, column {c}, outside {allowed}{suffix}; "
            "encode abstain as -1 and classes as 0..k-1, or raise cardinality"
        )
    if isinstance(original, np.ndarray) and original is arr:
        return arr
    return np.ascontiguousarray(arr, dtype=_smallest_int_dtype(low, high))


def validate_gold(y: Any, *, n_assets: int, cardinality: int, name: str = "y") -> np.ndarray:
    """Check optional gold labels: shape ``(n_assets,)``, values in ``-1..k-1`` (-1 = unknown).

    Returns an ``int64`` array. Raises :class:`InputError` / :class:`VoteValueError`.

    Examples
    --------
    >>> validate_gold([0, -1, 1], n_assets=3, cardinality=2)
    array([ 0, -1,  1])
    """
    arr = _as_integer_array(y, name=name, ndim=1)
    if arr.shape[0] != n_assets:
        raise InputError(
            f"{name} has {arr.shape[0]} labels but the vote matrix has {n_assets} rows; give one "
            "gold label per row, -1 where it is unknown"
        )
    arr = arr.astype(np.int64)
    bad = (arr < -1) | (arr >= cardinality)
    if bad.any():
        i = int(np.argmax(bad))
        raise VoteValueError(
            f"{name} holds {int(arr[i])} at row {i}, outside -1..{cardinality - 1} for "
            f"cardinality={cardinality}; use -1 for rows without a gold label"
        )
    return arr


#: Largest number of possible packed rows that :func:`compress_votes` counts in a table
#: (32 MiB of counters) instead of sorting the rows' codes.
_DENSE_CODES = 1 << 22


@dataclass(frozen=True)
class VotePatterns:
    """The distinct rows of a vote matrix.

    Attributes
    ----------
    patterns
        ``(n_patterns, n_lfs)`` integer array, the distinct rows.
    counts
        ``(n_patterns,)`` int64, how many rows have each pattern.
    inverse
        ``(n_assets,)`` intp, the pattern index of every row
        (``patterns[inverse]`` rebuilds the matrix).
    """

    patterns: np.ndarray
    counts: np.ndarray
    inverse: np.ndarray

    @property
    def n_patterns(self) -> int:
        """Number of distinct rows."""
        return int(self.patterns.shape[0])


def compress_votes(votes: np.ndarray) -> VotePatterns:
    """Reduce a validated vote matrix to its distinct rows, their counts and the row mapping.

    When ``(max_value + 2) ** n_lfs`` fits in 63 bits each row is packed into one integer
    code (one sort of ``n_assets`` numbers; patterns come out in lexicographic order).
    Wider matrices are grouped by a 64-bit hash of each row, checked against the rows, and
    compared as raw bytes in the (astronomically rare) case of a collision. Either way the
    result depends only on the rows, so it is deterministic.

    Parameters
    ----------
    votes
        a 2-D integer array as returned by :func:`validate_votes`.

    Examples
    --------
    >>> p = compress_votes(validate_votes([[0, -1], [1, 1], [0, -1]]))
    >>> p.patterns.tolist(), p.counts.tolist(), p.inverse.tolist()
    ([[0, -1], [1, 1]], [2, 1], [0, 1, 0])
    """
    votes = np.asarray(votes)
    n, m = votes.shape
    if n == 0:
        return VotePatterns(votes.copy(), np.zeros(0, np.int64), np.zeros(0, np.intp))
    if m == 0:
        return VotePatterns(votes[:1].copy(), np.array([n], np.int64), np.zeros(n, np.intp))
    base = int(votes.max()) + 2  # values -1..max shifted to 0..base-1
    if m * np.log2(base) < 62:  # exact: each row packed into one integer
        weights = base ** np.arange(m - 1, -1, -1, dtype=np.int64)
        codes = np.empty(n, dtype=np.int64)
        step = max(1, (1 << 20) // m)
        for start in range(0, n, step):
            codes[start : start + step] = (
                votes[start : start + step].astype(np.int64) + 1
            ) @ weights
        if base**m <= min(_DENSE_CODES, 8 * n):  # few possible codes: count them, no sort
            per_code = np.bincount(codes, minlength=base**m)
            present = np.flatnonzero(per_code)  # ascending: the order np.unique gives
            position = np.zeros(per_code.size, dtype=np.intp)
            position[present] = np.arange(present.size)
            digits = (present[:, None] // weights) % base - 1
            return VotePatterns(
                digits.astype(votes.dtype), per_code[present].astype(np.int64), position[codes]
            )
        first, inverse, counts = _group_codes(codes)
        patterns = votes[first]
    else:  # wide: a 64-bit hash of each row, verified; raw-bytes comparison if it collides
        salt = np.random.default_rng(0x5EED).integers(1, 2**62, size=m, dtype=np.int64) | 1
        codes = np.empty(n, dtype=np.int64)
        step = max(1, (1 << 20) // m)
        with np.errstate(over="ignore"):
            for start in range(0, n, step):
                block = votes[start : start + step].astype(np.int64) + 1
                codes[start : start + step] = block @ salt
        first, inverse, counts = _group_codes(codes)
        patterns = votes[first]
        if not np.array_equal(patterns[inverse.reshape(-1)], votes):
            rows = np.ascontiguousarray(votes)
            view = rows.view(np.dtype((np.void, rows.dtype.itemsize * m))).ravel()
            _, first, inverse, counts = np.unique(
                view, return_index=True, return_inverse=True, return_counts=True
            )
            patterns = rows[first]
    return VotePatterns(
        np.ascontiguousarray(patterns),
        counts.astype(np.int64),
        inverse.reshape(-1).astype(np.intp),
    )


def _group_codes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(codes, return_index, return_inverse, return_counts)`` without the values.

    The index is of one row of each code (its rows are identical, so which one does not
    matter); the groups come in ascending code order. One unstable sort: several times
    faster than ``np.unique`` (a stable sort, or a hash table without ``return_*``).
    """
    order = np.argsort(codes)
    ordered = codes[order]
    new = np.empty(codes.size, dtype=bool)
    new[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    inverse = np.empty(codes.size, dtype=np.intp)
    inverse[order] = np.cumsum(new) - 1
    counts = np.diff(np.append(starts, codes.size))
    return order[starts], inverse, counts
