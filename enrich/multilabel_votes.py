"""Votes of a multi-label task: each LF votes for (+1), against (-1) or abstains (0), per label.

The votes are one int8 array ``(n_assets, n_lfs, n_labels)``: 20,000 assets x 20 LFs x 5
labels take 2 MB. :meth:`MultiLabelVoteMatrix.for_label` gives the vote matrix of one label
as a binary task (1 = the asset has the label, 0 = it has not, -1 = abstain), which every
single-label tool (``LabelModel``, ``lf_summary``, ``benchmark``) reads.

>>> import numpy as np, polars as pl
>>> votes = np.zeros((2, 2, 2), dtype=np.int8)
>>> votes[0, 0, 0], votes[1, 1, 0], votes[1, 1, 1] = 1, -1, 1
>>> vm = MultiLabelVoteMatrix(votes=votes, lf_names=("a", "b"), label_names=("cat", "dog"),
...                           asset_ids=pl.Series("asset_id", ["x", "y"]))
>>> vm.for_label("cat").votes.tolist()
[[1, -1], [-1, 0]]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import polars as pl

from enrich._internal.display import TableDisplay
from enrich.errors import InputError, NotAClassError
from enrich.votes import VoteMatrix, _no_errors

__all__ = ["PRESENCE_CLASSES", "MultiLabelVoteMatrix"]

PRESENCE_CLASSES: tuple[str, str] = ("absent", "present")
"""Class names of one label seen as a binary task: 0 = absent, 1 = present."""


@dataclass(frozen=True, eq=False, repr=False)
class MultiLabelVoteMatrix(TableDisplay):
    """Votes of each LF on each asset and label: int8 ``(n_assets, n_lfs, n_labels)``.

    Attributes
    ----------
    votes : the int8 array; +1 = votes for the label, -1 = against it, 0 = abstains.
    lf_names : LF names, one per LF (axis 1).
    label_names : label names, one per label (axis 2).
    asset_ids : polars Series of asset ids, one per row.
    lf_versions : each LF's definition hash, for lineage.
    lf_targets : per LF, the label ids it may vote on (from its declared ``label``), or None
        when it may vote on any label (row-wise LFs without ``label``, nearest-neighbour LFs).
    errors : per-LF error counts recorded under ``on_error="abstain"``.
    """

    display_max_rows: ClassVar[int] = 20

    votes: np.ndarray
    lf_names: tuple[str, ...]
    label_names: tuple[str, ...]
    asset_ids: pl.Series
    lf_versions: tuple[str, ...] = ()
    lf_targets: tuple[tuple[int, ...] | None, ...] = ()
    errors: pl.DataFrame = field(default_factory=_no_errors)

    def __post_init__(self) -> None:
        votes = np.asarray(self.votes)
        expected = (len(self.asset_ids), len(self.lf_names), len(self.label_names))
        if votes.ndim != 3 or votes.shape != expected:
            raise InputError(
                f"multi-label votes must have shape (n_assets, n_lfs, n_labels) = {expected}, "
                f"got {votes.shape}."
            )
        if votes.dtype != np.int8:
            if votes.size and not np.all(np.isin(votes, (-1, 0, 1))):
                raise InputError(
                    "multi-label votes must be +1 (for), -1 (against) or 0 (abstain); got "
                    f"values {sorted(set(np.unique(votes).tolist()) - {-1, 0, 1})[:5]}."
                )
            votes = votes.astype(np.int8)
        object.__setattr__(self, "votes", votes)
        if not self.lf_targets:
            object.__setattr__(self, "lf_targets", (None,) * len(self.lf_names))

    @property
    def shape(self) -> tuple[int, int, int]:
        """(n_assets, n_lfs, n_labels)."""
        return self.votes.shape

    def __len__(self) -> int:
        return self.votes.shape[0]

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        if dtype is None or np.dtype(dtype) == self.votes.dtype:
            return self.votes.copy() if copy else self.votes
        return self.votes.astype(dtype)

    def take(self, rows: Any) -> MultiLabelVoteMatrix:
        """The votes of some assets only (``rows``: positions or a boolean mask), e.g. a split.

        Examples
        --------
        >>> import numpy as np, polars as pl
        >>> vm = MultiLabelVoteMatrix(votes=np.zeros((3, 1, 2), dtype=np.int8), lf_names=("a",),
        ...     label_names=("cat", "dog"), asset_ids=pl.Series(["x", "y", "z"]))
        >>> vm.take([2, 0]).asset_ids.to_list()
        ['z', 'x']
        """
        index = np.asarray(rows)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        return MultiLabelVoteMatrix(
            votes=self.votes[index],
            lf_names=self.lf_names,
            label_names=self.label_names,
            asset_ids=self.asset_ids.gather(index),
            lf_versions=self.lf_versions,
            lf_targets=self.lf_targets,
            errors=self.errors,
        )

    def label_id(self, label: str | int) -> int:
        """Return the position of ``label`` (a name or an id) among :attr:`label_names`."""
        if isinstance(label, str) and label in self.label_names:
            return self.label_names.index(label)
        if (
            isinstance(label, int)
            and not isinstance(label, bool)
            and 0 <= label < len(self.label_names)
        ):
            return label
        raise NotAClassError(
            f"{label!r} is not a label of these votes; labels: {list(self.label_names)}"
        )

    def lfs_for(self, label: str | int) -> list[int]:
        """Positions of the LFs that may vote on ``label`` (their targets include it)."""
        target = self.label_id(label)
        return [j for j, t in enumerate(self.lf_targets) if t is None or target in t]

    def for_label(self, label: str | int) -> VoteMatrix:
        """The votes on one label as a binary vote matrix (1 = present, 0 = absent, -1 = none).

        Only the LFs that may vote on the label are columns (:meth:`lfs_for`), so a label
        model of this label sees no LF that never concerns it.

        Examples
        --------
        >>> import numpy as np, polars as pl
        >>> vm = MultiLabelVoteMatrix(
        ...     votes=np.array([[[1, 0]], [[-1, 1]]], dtype=np.int8), lf_names=("a",),
        ...     label_names=("cat", "dog"), asset_ids=pl.Series(["x", "y"]))
        >>> vm.for_label("dog").votes.tolist(), vm.for_label("dog").class_names
        ([[-1], [1]], ('absent', 'present'))
        """
        target = self.label_id(label)
        columns = self.lfs_for(target)
        sub = self.votes[:, columns, target].astype(np.int32)
        binary = np.where(sub > 0, 1, np.where(sub < 0, 0, -1)).astype(np.int32)
        return VoteMatrix(
            votes=binary,
            lf_names=tuple(self.lf_names[j] for j in columns),
            asset_ids=self.asset_ids,
            lf_versions=tuple(self.lf_versions[j] for j in columns) if self.lf_versions else (),
            class_names=PRESENCE_CLASSES,
        )

    def to_polars(self) -> pl.DataFrame:
        """One row per asset: ``asset_id`` then an Int8 column ``"<lf>:<label>"`` per LF and label.

        Only the labels an LF may vote on (its targets) get a column.
        """
        columns: dict[str, np.ndarray] = {}
        for j, name in enumerate(self.lf_names):
            targets = self.lf_targets[j]
            for t in range(len(self.label_names)) if targets is None else targets:
                columns[f"{name}:{self.label_names[t]}"] = self.votes[:, j, t]
        frame = pl.DataFrame(columns) if columns else pl.DataFrame()
        return frame.insert_column(0, self.asset_ids.alias("asset_id"))

    def to_pandas(self) -> object:
        """The :meth:`to_polars` table as a pandas DataFrame."""
        return self.to_polars().to_pandas()

    def _display_table(self) -> pl.DataFrame:
        rows = []
        for i in range(len(self)):
            row = {}
            for j, name in enumerate(self.lf_names):
                marks = [
                    f"{'+' if v > 0 else '-'}{self.label_names[t]}"
                    for t, v in enumerate(self.votes[i, j])
                    if v
                ]
                row[name] = " ".join(marks) or "-"
            rows.append(row)
            if i + 1 >= self.display_max_rows:
                break
        table = pl.DataFrame(rows, schema=dict.fromkeys(self.lf_names, pl.String))
        ids = self.asset_ids.head(table.height).alias("asset_id")
        return table.insert_column(0, ids)

    def _display_title(self) -> str:
        n, m, k = self.shape
        return f"Multi-label votes: {n:,} assets x {m} LFs x {k} labels ('-' = abstain)"

    def _display_totals(self) -> dict[str, str]:
        n, m, k = self.shape
        covered = (self.votes != 0).any(axis=(1, 2)).mean() if n and m and k else 0.0
        totals = {"assets with at least one vote": f"{covered:.1%}"}
        if self.errors.height:
            totals["LF errors recorded as abstains"] = f"{self.errors['n_errors'].sum():,}"
        return totals
