"""The vote matrix that ``enrich.apply`` returns: votes plus the names that give them meaning.

>>> import numpy as np, polars as pl
>>> vm = VoteMatrix(votes=np.array([[1, -1], [0, 0]], dtype=np.int32), lf_names=("a", "b"),
...                 asset_ids=pl.Series("asset_id", ["x", "y"]))
>>> np.asarray(vm).shape, vm.to_polars().columns
((2, 2), ['asset_id', 'a', 'b'])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import polars as pl
from numpy.lib.mixins import NDArrayOperatorsMixin

from enrich._internal.display import TableDisplay

__all__ = ["VoteMatrix", "VotesArray"]


_ARRAY_ATTRIBUTES = frozenset(
    {
        "T", "all", "any", "argmax", "argmin", "astype", "flatten", "item", "max", "mean",
        "min", "nonzero", "ravel", "reshape", "size", "sum", "tolist", "transpose",
    }
)  # fmt: skip


class VotesArray(NDArrayOperatorsMixin):
    """Array protocol for objects holding a ``votes`` matrix.

    ``np.asarray``, ``len``, ``shape``, ``ndim``, ``dtype``, indexing (``vm[:, j]``) and
    numpy arithmetic and comparisons (``vm + 1``, ``vm == 0``) all act on the votes and
    return plain arrays, so the object goes wherever an array of votes is expected --
    Snorkel's ``LFAnalysis(L=...)`` and ``LabelModel.fit(L_train=...)`` included. Equality
    is element-wise, as for an array; the object stays hashable by identity.

    Examples
    --------
    >>> import numpy as np, polars as pl
    >>> vm = VoteMatrix(votes=np.array([[1, -1], [0, 0]], dtype=np.int32), lf_names=("a", "b"),
    ...                 asset_ids=pl.Series("asset_id", ["x", "y"]))
    >>> (vm + 1).tolist(), vm[:, 0].tolist(), (vm == 0).sum()
    ([[2, 0], [1, 1]], [1, 0], np.int64(2))
    """

    votes: np.ndarray
    __hash__ = object.__hash__  # the operators mixin's __eq__ would otherwise unset it

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        if dtype is None or np.dtype(dtype) == self.votes.dtype:
            return self.votes.copy() if copy else self.votes
        return self.votes.astype(dtype)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        def plain(value: Any) -> Any:
            return value.votes if isinstance(value, VotesArray) else value

        if "out" in kwargs:
            kwargs["out"] = tuple(plain(v) for v in kwargs["out"])
        return getattr(ufunc, method)(*(plain(v) for v in inputs), **kwargs)

    def __getitem__(self, index: Any) -> Any:
        return self.votes[index]

    def __getattr__(self, name: str) -> Any:
        # only called for names the object lacks: the read-only array methods array code
        # calls on a label matrix (``L.flatten()``, ``L.max()``, ``L.T``) answer from the votes
        if name in _ARRAY_ATTRIBUTES:
            return getattr(object.__getattribute__(self, "votes"), name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def ndim(self) -> int:
        """2: rows are assets."""
        return self.votes.ndim

    @property
    def dtype(self) -> np.dtype:
        """The votes' dtype (int32 for a :class:`VoteMatrix`)."""
        return self.votes.dtype

    def __len__(self) -> int:
        return self.votes.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        """(n_assets, n_columns)."""
        return self.votes.shape


def _no_errors() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "lf": pl.String,
            "n_errors": pl.Int64,
            "first_error": pl.String,
            "sample_asset_ids": pl.List(pl.String),
        }
    )


@dataclass(frozen=True, eq=False, repr=False)
class VoteMatrix(VotesArray, TableDisplay):
    """Votes of each LF on each asset: int32 (n_assets, n_lfs), classes 0..k-1, -1 = abstain.

    Attributes
    ----------
    votes : the (n_assets, n_lfs) int32 array; ``np.asarray(vote_matrix)`` returns it.
    lf_names : LF names, one per column.
    asset_ids : polars Series of asset ids, one per row.
    lf_versions : each LF's definition hash, for lineage.
    class_names : class names when the task has them.
    errors : per-LF error counts recorded under ``on_error="abstain"`` (lf, n_errors,
        first_error, sample_asset_ids); empty when nothing failed.
    """

    display_max_rows: ClassVar[int] = 20

    votes: np.ndarray
    lf_names: tuple[str, ...]
    asset_ids: pl.Series
    lf_versions: tuple[str, ...] = ()
    class_names: tuple[str, ...] | None = None
    errors: pl.DataFrame = field(default_factory=_no_errors)

    def to_polars(self) -> pl.DataFrame:
        """One row per asset: ``asset_id`` then one Int32 column of votes per LF."""
        columns = {name: self.votes[:, j] for j, name in enumerate(self.lf_names)}
        return pl.DataFrame(columns).insert_column(0, self.asset_ids.alias("asset_id"))

    def to_pandas(self) -> Any:
        """The :meth:`to_polars` table as a pandas DataFrame."""
        return self.to_polars().to_pandas()

    def _display_table(self) -> pl.DataFrame:
        table = self.to_polars()
        if self.class_names is None:
            return table
        names = pl.Series(["-", *self.class_names])  # index 0 is ABSTAIN
        return table.with_columns(
            pl.col(name).cast(pl.Int64).add(1).replace_strict(range(len(names)), names)
            for name in self.lf_names
        )

    def _display_title(self) -> str:
        n, m = self.shape
        return f"Vote matrix: {n:,} assets x {m} LFs ('-' = abstain)"

    def _display_totals(self) -> dict[str, str]:
        n, m = self.shape
        covered = (self.votes != -1).any(axis=1).mean() if n and m else 0.0
        totals = {"assets with at least one vote": f"{covered:.1%}"}
        if self.errors.height:
            totals["LF errors recorded as abstains"] = f"{self.errors['n_errors'].sum():,}"
        return totals
