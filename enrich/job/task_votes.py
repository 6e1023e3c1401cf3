"""Votes, gold and previous outputs of a multi-label or several-task job, as its state keeps them.

A multi-class task's LF keeps its ``vote_<lf>`` Int32 class id. A multi-label task's LF
votes +1 / -1 / 0 on every label; the table shows them as a ``vote_<lf>`` list (List[Int8],
one entry per label) and the run packs them into one base-3 number per asset
(:func:`encode_votes`, :func:`packed_state`) so the shared state code handles them as any
other vote column; :class:`TaskEngine` applies each task's LFs and packs their votes. Gold
is kept as ``gold`` / ``<task>__gold`` (:func:`with_gold`: Int32 class id; List[Int8] of
1 present / 0 absent / -1 unknown per label), and a task's previous outputs are joined by
:func:`with_previous`.

>>> encode_votes(np.array([[1, 0, -1], [0, 0, 0]], dtype=np.int8)).tolist()
[19, 0]
>>> decode_votes(np.array([19, 0]), 3).tolist()
[[1, 0, -1], [0, 0, 0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from enrich.errors import InputError
from enrich.job.context import ReadResult
from enrich.job.fit import source_gold
from enrich.job.job_tasks import JobTask
from enrich.labeling.engines import Engine, merge_errors

__all__ = [
    "TaskEngine",
    "decode_votes",
    "encode_votes",
    "lists_to_array",
    "packed_state",
    "with_gold",
    "with_previous",
]


def encode_votes(votes: np.ndarray) -> np.ndarray:
    """Pack one LF's votes ``(n, n_labels)`` of +1 / -1 / 0 into one int32 per asset.

    Label ``t`` is base-3 digit ``t``: 0 abstain, 1 for, 2 against (0 = no vote at all).
    """
    digits = np.where(votes > 0, 1, np.where(votes < 0, 2, 0)).astype(np.int64)
    return (digits @ (3 ** np.arange(votes.shape[1], dtype=np.int64))).astype(np.int32)


def decode_votes(codes: np.ndarray, n_labels: int) -> np.ndarray:
    """The votes ``(n, n_labels)`` int8 that :func:`encode_votes` packed (negative: none).

    Each distinct code is decoded once (an LF has few): a look-up table of every code for
    up to 8 labels, else the distinct codes of the column.
    """
    codes = np.maximum(np.asarray(codes, dtype=np.int64), 0)
    if n_labels <= 8:
        return _digits(np.arange(3**n_labels, dtype=np.int64), n_labels)[codes]
    distinct, inverse = np.unique(codes, return_inverse=True)
    return _digits(distinct, n_labels)[inverse.reshape(-1)]


def _digits(codes: np.ndarray, n_labels: int) -> np.ndarray:
    digits = (codes[:, None] // (3 ** np.arange(n_labels, dtype=np.int64))) % 3
    return np.where(digits == 1, 1, np.where(digits == 2, -1, 0)).astype(np.int8)


def lists_to_array(column: pl.Series, width: int, *, missing: int) -> np.ndarray:
    """A list column as an int8 array ``(n, width)``; null or other-length rows are ``missing``."""
    out = np.full((column.len(), width), missing, dtype=np.int8)
    whole = (column.list.len() == width).fill_null(False).to_numpy()
    if whole.any():
        values = column.filter(pl.Series(whole)).explode().fill_null(missing).to_numpy()
        out[whole] = values.reshape(-1, width).astype(np.int8)
    return out


@dataclass(frozen=True)
class _PackedVotes:
    """What the vote phase reads of a vote matrix: the votes, LF names and errors."""

    votes: np.ndarray
    lf_names: tuple[str, ...]
    errors: pl.DataFrame


class TaskEngine(Engine):
    """The job's engine, applying each task's LFs for its task; multi-label votes packed."""

    def __init__(self, inner: Engine, tasks: Sequence[JobTask]) -> None:
        self.inner = inner
        self.kind = inner.kind
        self.tasks = list(tasks)
        self._task_of = {lf.name: task for task in tasks for lf in task.lfs}

    def apply(self, lfs: Sequence[Any], data: pl.DataFrame, **options: Any) -> Any:  # type: ignore[override]
        """Each task's LFs among ``lfs`` applied with its own names, sources and ``on_error``."""
        names = [lf.name for lf in lfs]
        columns: dict[str, np.ndarray] = {}
        errors = []
        for task in self.tasks:
            members = [lf for lf in lfs if self._task_of[lf.name] is task]
            if not members:
                continue
            votes = self.inner.apply(
                members,
                data,
                classes=task.names,
                on_error=task.on_error,
                progress=options.get("progress", False),
                lf_sources=task.sources,
                **({"task": task.task} if task.kind == "multilabel" else {}),
            )
            errors.append(votes.errors)
            for j, name in enumerate(votes.lf_names):
                column = votes.votes[:, j]
                columns[name] = encode_votes(column) if column.ndim == 2 else column
        packed = np.zeros((data.height, len(names)), dtype=np.int32)
        for j, name in enumerate(names):
            packed[:, j] = columns[name]
        return _PackedVotes(votes=packed, lf_names=tuple(names), errors=merge_errors(errors))

    def encode(self, spec: Any, items: Any, **options: Any) -> np.ndarray:  # type: ignore[override]
        """The wrapped engine's encoding."""
        return self.inner.encode(spec, items, **options)


def packed_state(state: pl.DataFrame, tasks: Sequence[JobTask]) -> pl.DataFrame:
    """The table's multi-label vote lists packed into Int32 (:func:`encode_votes`)."""
    columns = []
    for task in tasks:
        if task.kind != "multilabel":
            continue
        for lf in task.lfs:
            name = f"vote_{lf.name}"
            if name in state.columns and isinstance(state.schema[name], pl.List):
                votes = lists_to_array(state.get_column(name), len(task.names), missing=0)
                columns.append(pl.Series(name, encode_votes(votes), dtype=pl.Int32))
    return state.with_columns(columns) if columns else state


def with_gold(data: pl.DataFrame, tasks: Sequence[JobTask]) -> pl.DataFrame:
    """Each task's gold as the table keeps it (``gold`` / ``<task>__gold``)."""
    columns = []
    for task in tasks:
        if task.gold_column is None:
            continue
        if task.kind == "multiclass":
            columns.append(source_gold(data, task.gold_column, task.names).alias(task.gold_state))
        else:
            columns.append(_label_set_gold(data, task).alias(task.gold_state))
    return data.with_columns(columns) if columns else data


def _label_set_gold(data: pl.DataFrame, task: JobTask) -> pl.Series:
    """A multi-label gold column (lists of the labels present) as 1 / 0 / -1 per label."""
    key = "gold.column" if not task.prefix else f"tasks.{task.name}.gold_column"
    raw = data.get_column(str(task.gold_column))
    if raw.dtype == pl.Null:
        raw = raw.cast(pl.List(pl.String))
    if not isinstance(raw.dtype, pl.List) or raw.dtype.inner not in (
        pl.String,
        pl.Categorical,
        pl.Null,
    ):
        raise InputError(
            f"{key} {task.gold_column!r} is {raw.dtype}; a multi-label task's gold is a list of "
            f"the labels present per asset (e.g. ['{task.names[0]}']), null where unknown"
        )
    names = raw.cast(pl.List(pl.String))
    unknown = names.explode().drop_nulls().unique().sort()
    unknown = unknown.filter(~unknown.is_in(list(task.names)))
    if unknown.len():
        raise InputError(
            f"{key} {task.gold_column!r} holds {unknown.head(3).to_list()}, which are not labels "
            f"{list(task.names)}; list only the task's labels (null = unknown)"
        )
    frame = names.to_frame("g").select(
        pl.concat_list(
            [
                pl.when(pl.col("g").is_null())
                .then(pl.lit(-1, dtype=pl.Int8))
                .otherwise(pl.col("g").list.contains(name).cast(pl.Int8))
                for name in task.names
            ]
        ).alias("g")
    )
    return frame.get_column("g").cast(pl.List(pl.Int8))


def with_previous(full: pl.DataFrame, read: ReadResult, names: dict[str, str]) -> pl.DataFrame:
    """``full`` with the previous run's ``names`` columns (table name -> new name) joined."""
    state = read.state
    wanted = {k: v for k, v in names.items() if k in state.columns}
    if not wanted or read.previous is None:
        return full
    previous = state.select("asset_id", *(pl.col(k).alias(v) for k, v in wanted.items()))
    return full.join(previous, on="asset_id", how="left", maintain_order="left")
