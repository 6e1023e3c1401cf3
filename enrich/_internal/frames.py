"""The data boundary: polars, pandas or Arrow in, one polars DataFrame inside.

>>> import pandas as pd
>>> as_polars(pd.DataFrame({"text": ["a", "b"]})).shape
(2, 1)
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import polars as pl

from enrich.errors import InputError, MissingColumnError

__all__ = [
    "arrow_schema_to_polars",
    "as_polars",
    "asset_ids",
    "frame_and_id_column",
    "require_columns",
    "require_unique_ids",
]


def as_polars(data: Any) -> pl.DataFrame:
    """Convert data to a polars DataFrame (polars passes as is).

    Accepts a polars DataFrame or LazyFrame, a pandas DataFrame (a named index becomes a
    column of that name), a pyarrow Table, or a Hugging Face ``datasets.Dataset`` (read
    through its Arrow table, in the dataset's current row order and selection).
    """
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pl.LazyFrame):
        return data.collect()
    module = type(data).__module__
    if module.startswith("pandas") and hasattr(data, "columns"):
        return pl.from_pandas(_with_named_index(data))
    if module.startswith("pyarrow"):
        frame = pl.from_arrow(data)
        if isinstance(frame, pl.DataFrame):
            return frame
    if module.startswith("datasets.") and hasattr(data, "with_format"):
        # a Dataset view (select, shuffle, filter) keeps an index map over the full table:
        # slicing with the arrow format applies it
        frame = pl.from_arrow(data.with_format("arrow")[:])
        if isinstance(frame, pl.DataFrame):
            return frame
    raise InputError(
        f"Expected a polars DataFrame, a pandas DataFrame, a pyarrow Table or a Hugging Face "
        f"Dataset, got {type(data).__module__}.{type(data).__name__}; convert the data to one "
        "of those."
    )


def _with_named_index(frame: Any) -> Any:
    """A pandas frame whose named index levels are columns (an unnamed index is dropped)."""
    names = [n for n in frame.index.names if n is not None]
    if not names or any(n in frame.columns for n in names):
        return frame
    return frame.reset_index(level=names)


def frame_and_id_column(data: Any, id_column: str | None) -> tuple[pl.DataFrame, str | None]:
    """The data as polars and the column to read asset ids from (None: row positions).

    A pandas frame's named index is a column like the others; with ``id_column=None`` and
    no ``asset_id`` column, a named index (one level) is the id column. An unnamed index
    that is not ``0..n-1`` is not read: a warning says so, since its values were probably
    meant as ids.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"text": ["a", "b"]}, index=pd.Index(["x9", "x7"], name="video"))
    >>> frame, column = frame_and_id_column(df, None)
    >>> column, frame["video"].to_list()
    ('video', ['x9', 'x7'])
    """
    module = type(data).__module__
    if id_column is None and module.startswith("pandas") and hasattr(data, "index"):
        index = data.index
        names = [n for n in index.names if n is not None]
        if "asset_id" not in data.columns:
            if len(index.names) == 1 and names and names[0] not in data.columns:
                return as_polars(data), str(names[0])
            if not names and not _is_default_index(index):
                warnings.warn(
                    f"the pandas frame has an unnamed index that is not 0..n-1 (it starts "
                    f"{index[:3].tolist()!r}); enrich does not read an unnamed index, so the "
                    "assets get row positions 0..n-1 as ids. Name the index "
                    "(df.index.name = 'asset_id'), or pass id_column=, to use it.",
                    UserWarning,
                    stacklevel=3,
                )
    return as_polars(data), id_column


def _is_default_index(index: Any) -> bool:
    start, step = getattr(index, "start", None), getattr(index, "step", None)
    if start == 0 and step == 1:  # a RangeIndex 0..n-1
        return True
    try:
        return bool(index.equals(type(index)(range(len(index)))))
    except (TypeError, ValueError):
        return False


def require_columns(
    frame: pl.DataFrame, needed: Iterable[tuple[str, str]], *, what: str = "labeling function"
) -> None:
    """Raise :class:`MissingColumnError` if any needed column is absent.

    ``needed`` holds (column, who needs it) pairs; the message names each missing column,
    who needs it, and the columns that exist.

    >>> require_columns(pl.DataFrame({"text": ["a"]}), [("text", "lf_a")])
    """
    missing: dict[str, list[str]] = {}
    for column, user in needed:
        if column not in frame.columns:
            missing.setdefault(column, []).append(user)
    if missing:
        detail = "; ".join(
            f"{column!r} (needed by {what} {', '.join(repr(u) for u in users)})"
            for column, users in missing.items()
        )
        raise MissingColumnError(
            f"Missing column(s): {detail}. The data has columns {frame.columns}; "
            "rename the data's column or point the LF at an existing one."
        )


def asset_ids(frame: pl.DataFrame, id_column: str | None) -> pl.Series:
    """Return the asset id column (or row positions when there is none).

    ``id_column=None`` uses ``asset_id`` when present, else the row position 0..n-1.
    Null ids are refused: every asset must be addressable.
    """
    if id_column is None:
        if "asset_id" not in frame.columns:
            return pl.Series("asset_id", range(frame.height), dtype=pl.Int64)
        id_column = "asset_id"
    require_columns(frame, [(id_column, "id_column")], what="argument")
    ids = frame.get_column(id_column)
    if ids.null_count():
        positions = ids.is_null().arg_true().head(5).to_list()
        raise InputError(
            f"Id column {id_column!r} has {ids.null_count()} null value(s) (rows {positions}...); "
            "every asset needs an id: fill them or choose another id_column."
        )
    return ids.alias("asset_id")


def require_unique_ids(ids: pl.Series, what: str) -> None:
    """Raise :class:`InputError` if ``ids`` holds a null or a repeated asset id.

    ``what`` names the table in the message. One hash pass when the ids are unique; the
    repeats are only looked for when there are some.

    >>> require_unique_ids(pl.Series(["a", "b"]), "the labels table")
    >>> require_unique_ids(pl.Series(["a", "b", "a"]), "the labels table")
    Traceback (most recent call last):
    ...
    enrich.errors.InputError: the labels table lists asset id(s) ['a'] more than once; ...
    """
    if ids.null_count():
        raise InputError(f"{what} has {ids.null_count()} null asset_id(s); every row needs one")
    if ids.n_unique() == ids.len():
        return
    repeated = ids.filter(ids.is_duplicated()).unique().sort()
    raise InputError(
        f"{what} lists asset id(s) {repeated.head(5).to_list()} more than once; keep one row "
        "per asset"
    )


def arrow_schema_to_polars(schema: Any) -> dict[str, pl.DataType]:
    """The polars column types of a pyarrow schema (without pyarrow importing pandas).

    ``Schema.empty_table()`` would import pandas (a quarter of a second); an empty table
    built from no batches does not.

    >>> import pyarrow as pa
    >>> arrow_schema_to_polars(pa.schema([("id", pa.large_string()), ("n", pa.int64())]))
    {'id': String, 'n': Int64}
    """
    import pyarrow as pa

    return dict(pl.DataFrame(pl.from_arrow(pa.Table.from_batches([], schema=schema))).schema)
