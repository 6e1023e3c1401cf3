"""All file I/O of a job's sources: find the files ``[source]`` names, check them, read them.

:func:`list_source_files` finds and inspects every file (format, fingerprint, column types)
without reading rows; :func:`read_sources` reads the planned columns of the files a run
needs; :func:`read_gold_table` reads the reviewed gold table of ``gold.path``.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from enrich._internal.frames import arrow_schema_to_polars
from enrich._internal.uri import Location, is_remote
from enrich.errors import InputError, MissingColumnError
from enrich.io.remote import expand_remote, inspect_remote
from enrich.io.store import read_table
from enrich.job.config import JobConfig

if TYPE_CHECKING:
    from enrich.job.plan import ColumnPlan

__all__ = ["SourceFile", "list_source_files", "read_gold_table", "read_sources"]

_EXTENSIONS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


@dataclass(frozen=True)
class SourceFile:
    """One source file (or Delta table): its format, fingerprint and column types."""

    path: str
    format: Literal["parquet", "csv", "delta"]
    fingerprint: list[Any]
    schema: Mapping[str, pl.DataType]


def list_source_files(config: JobConfig) -> list[SourceFile]:
    """Every file ``[source]`` names, checked readable, with its schema; nothing is read yet.

    Raises
    ------
    InputError
        A path that does not exist, a glob matching nothing, an unknown format, or a file
        that cannot be read (each names the file).
    MissingColumnError
        A file lacks a column the job needs (lists the file's columns).
    SourceSchemaError
        Two files give a needed column different types (names both files).
    """
    source = config.source
    options = config.storage_options_for("source")
    found: list[tuple[str, str]] = []
    for entry in source.paths:
        if is_remote(entry):  # an object-store URI: listed through fsspec
            found.extend(expand_remote(entry, source.format, options, format_of=_format_of))
        else:
            found.extend(_expand(entry, source.format))
    seen: set[str] = set()
    files = []
    for path, fmt in found:
        if path in seen:
            continue
        seen.add(path)
        files.append(_inspect(path, fmt, options))
    _check_columns(config, files)
    return files


def _expand(entry: str, fmt: str) -> list[tuple[str, str]]:
    from deltalake import DeltaTable

    if any(ch in entry for ch in "*?["):
        matches = sorted(glob.glob(entry, recursive=True))
        if not matches:
            raise InputError(
                f"source.path {entry!r} matches no file; check the pattern and the folder"
            )
        return [(str(Path(m)), _format_of(m, fmt)) for m in matches if not Path(m).is_dir()]
    path = Path(entry)
    if not path.exists():
        raise InputError(f"source file {entry!r} does not exist; nothing was written")
    if path.is_dir():
        if fmt == "delta" or (fmt == "auto" and DeltaTable.is_deltatable(str(path))):
            return [(str(path), "delta")]
        members = sorted(
            str(p)
            for p in path.rglob("*")
            if p.is_file() and (fmt != "auto" or p.suffix.lower() in _EXTENSIONS)
        )
        if not members:
            raise InputError(
                f"source folder {entry!r} holds no .parquet or .csv file; point source.path "
                "at the files (or set source.format)"
            )
        return [(m, _format_of(m, fmt)) for m in members]
    return [(str(path), _format_of(str(path), fmt))]


def _format_of(path: str, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in _EXTENSIONS:
        raise InputError(
            f"cannot tell the format of source file {path!r} from its extension; name it "
            "*.parquet or *.csv, or set source.format to 'parquet', 'csv' or 'delta'"
        )
    return _EXTENSIONS[suffix]


def _inspect(path: str, fmt: str, options: Mapping[str, str] | None = None) -> SourceFile:
    try:
        if is_remote(path):
            fingerprint, found = inspect_remote(path, fmt, options)
            return SourceFile(path, fmt, fingerprint, found)  # type: ignore[arg-type]
        if fmt == "delta":
            from deltalake import DeltaTable

            table = DeltaTable(path)
            import pyarrow as pa

            arrow = pa.schema(table.schema().to_arrow())
            schema = arrow_schema_to_polars(arrow)
            return SourceFile(path, "delta", ["delta", table.version()], schema)
        stat = os.stat(path)
        if fmt == "parquet":
            schema = dict(pl.read_parquet_schema(path))
        else:
            schema = dict(pl.scan_csv(path).collect_schema())
        return SourceFile(path, fmt, [stat.st_size, stat.st_mtime_ns], schema)  # type: ignore[arg-type]
    except InputError:
        raise
    except Exception as exc:
        raise InputError(
            f"source file {path!r} cannot be read as {fmt}: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}; fix or remove it (nothing was "
            "written)"
        ) from exc


def _check_columns(config: JobConfig, files: Sequence[SourceFile]) -> None:
    source = config.source
    wanted = [(source.id_column, "source.id_column")]
    for key in ("text_column", "image_column", "embedding_column"):
        if getattr(source, key):
            wanted.append((getattr(source, key), f"source.{key}"))
    wanted += [(c, "source.slice_columns") for c in source.slice_columns]
    if config.gold.column:
        wanted.append((config.gold.column, "gold.column"))
    if config.embeddings.column:
        wanted.append((config.embeddings.column, "embeddings.column"))
    for file in files:
        missing = [(c, key) for c, key in wanted if c not in file.schema]
        if missing:
            detail = ", ".join(f"{c!r} ({key})" for c, key in missing)
            raise MissingColumnError(
                f"source file {file.path!r} has no column {detail}; its columns are "
                f"{list(file.schema)}"
            )


def read_sources(
    files: Sequence[SourceFile],
    plan: ColumnPlan,
    *,
    storage_options: Mapping[str, str] | None = None,
) -> pl.DataFrame:
    """Read the planned columns of ``files`` into one frame with ``asset_id`` and ``source_file``.

    ``storage_options`` go to the Parquet and CSV readers (for object-store URIs).

    Raises
    ------
    InputError
        A file cannot be read, has null ids, or two rows share an asset id (names the files).
    """
    frames = []
    for file in files:
        try:
            options = Location.of(file.path, storage_options).delta_options()
            if file.format == "parquet":
                frame = pl.read_parquet(file.path, columns=list(plan.read), storage_options=options)
            elif file.format == "csv":
                frame = pl.read_csv(file.path, columns=list(plan.read), storage_options=options)
            else:
                frame = read_table(Location.of(file.path, options), columns=list(plan.read))
        except Exception as exc:
            raise InputError(
                f"source file {file.path!r} cannot be read: {type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}; nothing was written"
            ) from exc
        frames.append(frame.with_columns(pl.lit(file.path, dtype=pl.String).alias("source_file")))
    if frames:
        data = pl.concat(frames, how="vertical")
    else:
        schema = {c: plan.dtypes[c] for c in plan.read} | {"source_file": pl.String}
        data = pl.DataFrame(schema=schema)
    if plan.id_column != "asset_id":
        data = data.with_columns(pl.col(plan.id_column).alias("asset_id"))
    ids = data.get_column("asset_id")
    if ids.null_count():
        where = data.filter(pl.col("asset_id").is_null()).get_column("source_file").unique()
        raise InputError(
            f"{ids.null_count()} asset(s) have no id ({plan.id_column!r} is null) in "
            f"{sorted(where.to_list())[:3]}; every asset needs an id"
        )
    if ids.is_duplicated().any():
        twice = data.filter(pl.col("asset_id").is_duplicated()).sort("asset_id")
        sample = twice.head(6).select("asset_id", "source_file").rows()
        raise InputError(
            f"{twice.get_column('asset_id').n_unique():,} asset id(s) appear more than once in "
            f"the source, e.g. {sample}; each asset must appear once (remove the copies)"
        )
    return data


def read_gold_table(path: str, *, storage_options: Mapping[str, str] | None = None) -> pl.DataFrame:
    """The reviewed gold table of ``gold.path`` (parquet, csv or json; a path or a URI).

    Raises
    ------
    InputError
        The file cannot be read (the message names it and the formats allowed).
    """
    try:
        options = Location.of(path, storage_options).delta_options()
        if path.endswith(".csv"):
            return pl.read_csv(path, storage_options=options)
        if path.endswith(".json"):
            return pl.read_json(Location.of(path, storage_options).read_bytes())
        return pl.read_parquet(path, storage_options=options)
    except Exception as exc:
        raise InputError(
            f"gold.path {path!r} cannot be read ({type(exc).__name__}: {exc}); give a parquet, "
            "csv or json table with asset_id and label_name (or label)"
        ) from exc
