"""Source files on an object store: expand a URI, a URI folder or a URI glob; inspect a file.

The job's source may be ``s3://bucket/assets/*.parquet``, a folder URI, or a Delta table URI.
:func:`expand_remote` lists the files (through fsspec) and :func:`inspect_remote` gives
each one's fingerprint (size and ETag, or the store's generation or modification time: an
unchanged object is not read again) and column types (from the Parquet footer, the CSV
header or the Delta log) without reading rows; polars and delta-rs read the rows.

>>> from enrich._internal.uri import Location
>>> _fingerprint({"size": 10, "ETag": '"abc"'})
[10, '"abc"']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import polars as pl

from enrich._internal.frames import arrow_schema_to_polars
from enrich._internal.uri import Location, scheme_of
from enrich.errors import InputError
from enrich.io.store import is_table

__all__ = ["expand_remote", "inspect_remote"]

_DATA_SUFFIXES = (".parquet", ".pq", ".csv")


def expand_remote(
    entry: str,
    fmt: str,
    storage_options: Mapping[str, Any] | None,
    *,
    format_of: Callable[[str, str], str],
) -> list[tuple[str, str]]:
    """The ``(uri, format)`` of every file a URI source entry names, sorted.

    ``format_of(uri, fmt)`` gives a file's format (``fmt`` unless it is ``"auto"``).

    Raises
    ------
    InputError
        Nothing is at the URI, a glob matches nothing, or a folder holds no data file.
    """
    where = Location.of(entry, storage_options)
    fs, path = where.fs()
    scheme = scheme_of(entry)

    def uri(name: str) -> str:
        return f"{scheme}://{str(name).lstrip('/')}"

    if any(ch in entry for ch in "*?["):
        matches = sorted(uri(m) for m in fs.glob(path) if not fs.isdir(m))
        if not matches:
            raise InputError(
                f"source.path {entry!r} matches no object; check the pattern, the bucket and "
                "the storage options"
            )
        return [(m, format_of(m, fmt)) for m in matches]
    if fs.isfile(path):
        return [(str(where), format_of(str(where), fmt))]
    if not fs.isdir(path):
        raise InputError(
            f"source {entry!r} does not exist (no object or prefix there); check the bucket, "
            "the path and the storage options; nothing was written"
        )
    if fmt == "delta" or (fmt == "auto" and is_table(where)):
        return [(str(where), "delta")]
    members = sorted(
        uri(name)
        for name in fs.find(path)
        if "/_delta_log/" not in str(name)
        and (fmt != "auto" or str(name).lower().endswith(_DATA_SUFFIXES))
    )
    if not members:
        raise InputError(
            f"source folder {entry!r} holds no .parquet or .csv object; point source.path at "
            "the files (or set source.format)"
        )
    return [(m, format_of(m, fmt)) for m in members]


def inspect_remote(
    path: str, fmt: str, storage_options: Mapping[str, Any] | None
) -> tuple[list[Any], dict[str, pl.DataType]]:
    """The fingerprint and column types of one object (or Delta table) without its rows."""
    from enrich.io.store import delta_table

    where = Location.of(path, storage_options)
    options = where.delta_options()
    if fmt == "delta":
        import pyarrow as pa

        table = delta_table(where)
        arrow = pa.schema(table.schema().to_arrow())
        schema = arrow_schema_to_polars(arrow)
        return ["delta", table.version()], schema
    fs, key = where.fs()
    info = fs.info(key)
    if fmt == "parquet":
        schema = dict(pl.scan_parquet(path, storage_options=options).collect_schema())
    else:
        schema = dict(pl.scan_csv(path, storage_options=options).collect_schema())
    return _fingerprint(info), schema


def _fingerprint(info: Mapping[str, Any]) -> list[Any]:
    """Size and version tag of an object: what changes whenever its content is replaced."""
    tag = next(
        (
            info[key]
            for key in ("ETag", "etag", "generation", "md5Hash", "LastModified", "mtime")
            if info.get(key) is not None
        ),
        None,
    )
    return [int(info.get("size") or 0), str(tag)]
