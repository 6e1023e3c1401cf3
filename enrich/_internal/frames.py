"""The data boundary: polars, pandas or Arrow in, one polars DataFrame inside.

>>> import pandas as pd
>>> as_polars(pd.DataFrame({"text": ["a", "b"]})).shape
(2, 1)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import polars as pl

from enrich.errors import InputError, MissingColumnError

__all__ = ["as_polars", "asset_ids", "require_columns", "require_unique_ids"]


def as_polars(data: Any) -> pl.DataFrame:
    """Convert a polars/pandas DataFrame or an Arrow table to polars (polars passes as is)."""
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pl.LazyFrame):
        return data.collect()
    module = type(data).__module__
    if module.startswith("pandas") and hasattr(data, "columns"):
        return pl.from_pandas(data)
    if module.startswith("pyarrow"):
        frame = pl.from_arrow(data)
        if isinstance(frame, pl.DataFrame):
            return frame
    raise InputError(
        f"Expected a polars DataFrame, a pandas DataFrame or a pyarrow Table, got "
        f"{type(data).__module__}.{type(data).__name__}; convert the data to one of those."
    )


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
