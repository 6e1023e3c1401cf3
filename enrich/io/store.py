"""Delta Lake I/O of the batch job: the enriched table, its run records, the runs table, a lock.

The enriched table is the job's only state that matters: besides each asset's label,
probabilities and votes it holds the asset's content hash and source file, and every commit
a run makes carries the run record (run id, config hash, LF versions, model, metrics, the
source file manifest) in its commit metadata under :data:`RUN_METADATA_KEY`. A run changes
the table with exactly one commit, made only if nobody committed since the run read the
table, so the visible output never holds half a run. The runs table (one row per run) is
written after that commit and rebuilt from the commit metadata when a run died between the
two (:func:`reconcile_runs`).

>>> import tempfile, polars as pl
>>> with tempfile.TemporaryDirectory() as d:
...     paths = JobPaths.for_table(f"{d}/enriched")
...     v = commit_enriched(paths.table, pl.DataFrame({"asset_id": ["a"], "x": [1]}),
...                         mode="create", read_version=None, record={"run_id": "r1"})
...     v, [r["run_id"] for _, r in run_records(paths.table)]
(0, ['r1'])
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl

from enrich.errors import (
    ConcurrentRunError,
    InputError,
    RunLockedError,
    TableHistoryError,
)

__all__ = [
    "RUN_METADATA_KEY",
    "ConcurrentRunError",
    "JobPaths",
    "RunLock",
    "RunLockedError",
    "TableHistoryError",
    "append_run",
    "commit_enriched",
    "latest_run",
    "read_runs",
    "read_table",
    "reconcile_runs",
    "run_records",
    "table_columns",
    "table_schema",
    "table_version",
]

logger = logging.getLogger(__name__)

RUN_METADATA_KEY = "enrich.run"
"""Key of the run record (a JSON object) in the commit metadata of each enrich commit."""

CommitMode = Literal["create", "merge", "overwrite", "append"]


@dataclass(frozen=True)
class JobPaths:
    """Where a job's files live: the Delta table and, beside it, runs, reports, cache, lock."""

    table: Path
    runs: Path
    reports: Path
    embeddings: Path
    lock: Path

    @classmethod
    def for_table(
        cls,
        table: str | os.PathLike[str],
        *,
        runs: str | os.PathLike[str] | None = None,
        reports: str | os.PathLike[str] | None = None,
        embeddings: str | os.PathLike[str] | None = None,
    ) -> JobPaths:
        """Defaults beside ``table``: ``<table>_runs``, ``<table>_reports``, ``<table>_embeddings``.

        >>> JobPaths.for_table("out/enriched").runs.as_posix()
        'out/enriched_runs'
        """
        table = Path(table)
        return cls(
            table=table,
            runs=Path(runs) if runs else table.with_name(f"{table.name}_runs"),
            reports=Path(reports) if reports else table.with_name(f"{table.name}_reports"),
            embeddings=(
                Path(embeddings) if embeddings else table.with_name(f"{table.name}_embeddings")
            ),
            lock=table.with_name(f".{table.name}.lock"),
        )


# -- the lock ----------------------------------------------------------------------------
class RunLock:
    """An exclusive lock on one output table, held for a whole run (``fcntl.flock``).

    The operating system releases it when the process ends, however it ends (a SIGKILL
    included), so a dead run never leaves a stale lock. A second run waits up to ``timeout``
    seconds, then raises :class:`RunLockedError` naming the holder.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with RunLock(f"{d}/.t.lock", timeout=0, run_id="r1") as lock:
    ...         try:
    ...             RunLock(f"{d}/.t.lock", timeout=0, run_id="r2").__enter__()
    ...         except RunLockedError as exc:
    ...             print(str(exc)[:45])
    another enrich run (run r1, pid ...
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float,
        run_id: str = "",
        poll_interval: float = 0.1,
        target: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.run_id = run_id
        self.poll_interval = poll_interval
        self.target = target or str(self.path)
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_holder(self.path)
                    os.close(fd)
                    raise RunLockedError(
                        f"another enrich run ({holder}) is writing to {self.target!r}; waited "
                        f"{self.timeout:g} s. Let it finish, or raise output.lock_timeout."
                    ) from None
                time.sleep(self.poll_interval)
        holder = {
            "run_id": self.run_id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        import fcntl

        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_holder(path: Path) -> str:
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        holder = {}
    if not holder:
        return "holder unknown"
    return (
        f"run {holder.get('run_id') or '?'}, pid {holder.get('pid', '?')} on "
        f"{holder.get('host', '?')}, since {holder.get('since', '?')}"
    )


# -- the enriched table ------------------------------------------------------------------
def table_version(path: str | os.PathLike[str]) -> int | None:
    """The current version of the Delta table at ``path``, or None if there is no table."""
    from deltalake import DeltaTable

    if not DeltaTable.is_deltatable(str(path)):
        return None
    return DeltaTable(str(path)).version()


def table_columns(path: str | os.PathLike[str]) -> list[str]:
    """The column names of the Delta table at ``path`` (current version)."""
    return list(table_schema(path))


def table_schema(path: str | os.PathLike[str]) -> dict[str, pl.DataType]:
    """Column names and polars types of the Delta table at ``path`` (current version)."""
    return dict(pl.scan_delta(str(path)).collect_schema())


def read_table(
    path: str | os.PathLike[str],
    *,
    version: int | None = None,
    columns: Sequence[str] | None = None,
    asset_id: Any = None,
) -> pl.DataFrame:
    """Read the Delta table (optionally at ``version``, only ``columns``, one ``asset_id``).

    Raises
    ------
    TableHistoryError
        There is no Delta table at ``path``, or ``version`` is not (or no longer) readable.
    """
    from deltalake import DeltaTable

    if not DeltaTable.is_deltatable(str(path)):
        raise TableHistoryError(
            f"there is no Delta table at {str(path)!r}; run the job first (`enrich run`)"
        )
    try:
        lazy = pl.scan_delta(str(path), version=version)
        if asset_id is not None:
            kind = lazy.collect_schema()["asset_id"]
            lazy = lazy.filter(pl.col("asset_id") == _typed_key(asset_id, kind))
        if columns is not None:
            lazy = lazy.select(list(columns))
        return lazy.collect()
    except InputError:
        raise
    except Exception as exc:
        raise TableHistoryError(
            f"cannot read version {version} of {str(path)!r} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); its files may have been "
            "vacuumed. Time travel needs the data files of the versions it reads."
        ) from exc


def _typed_key(asset_id: Any, kind: pl.DataType) -> Any:
    if kind.is_integer():
        try:
            return int(asset_id)
        except (TypeError, ValueError):
            raise InputError(
                f"asset ids of this table are integers; {asset_id!r} is not one"
            ) from None
    return str(asset_id)


def commit_enriched(
    path: str | os.PathLike[str],
    rows: pl.DataFrame,
    *,
    mode: CommitMode,
    read_version: int | None,
    record: dict[str, Any],
) -> int:
    """Write ``rows`` to the table in ONE commit carrying ``record``; return the new version.

    ``mode``: ``"create"`` a new table; ``"merge"`` upserts by ``asset_id``; ``"overwrite"``
    replaces every row and the schema; ``"append"`` adds rows (with no rows: a commit that
    only records the run). The commit is made only on top of ``read_version`` (the version
    the run read); if anyone committed since, :class:`ConcurrentRunError` is raised and
    nothing becomes visible.
    """
    from deltalake import CommitProperties, DeltaTable, write_deltalake
    from deltalake.exceptions import CommitFailedError, TableNotFoundError

    table = str(path)
    properties = CommitProperties(
        custom_metadata={RUN_METADATA_KEY: json.dumps(record, default=_json_default)},
        max_commit_retries=0,
    )
    arrow = _to_arrow(rows)
    try:
        if mode == "create":
            if read_version is not None:
                raise InputError("mode='create' needs read_version=None")
            Path(table).parent.mkdir(parents=True, exist_ok=True)
            write_deltalake(table, arrow, mode="error", commit_properties=properties)
        else:
            base = DeltaTable(table, version=read_version)
            if mode == "merge":
                (
                    base.merge(
                        arrow,
                        predicate="t.asset_id = s.asset_id",
                        source_alias="s",
                        target_alias="t",
                        commit_properties=properties,
                    )
                    .when_matched_update_all()
                    .when_not_matched_insert_all()
                    .execute()
                )
            else:
                write_deltalake(
                    base,
                    arrow,
                    mode=mode,
                    schema_mode="overwrite" if mode == "overwrite" else None,
                    commit_properties=properties,
                )
    except CommitFailedError as exc:
        raise ConcurrentRunError(
            f"someone else committed to {table!r} while this run was working ({exc}); "
            "nothing was written. Run again: the next run starts from their result."
        ) from exc
    except (FileExistsError, TableNotFoundError) as exc:
        raise ConcurrentRunError(
            f"the table {table!r} changed while this run was working ({exc}); nothing was "
            "written. Run again."
        ) from exc
    except Exception as exc:
        if type(exc).__name__ == "DeltaError" and "already exists" in str(exc):
            raise ConcurrentRunError(
                f"the table {table!r} was created by another writer while this run was "
                "working; nothing was written. Run again."
            ) from exc
        raise
    version = DeltaTable(table).version()
    if read_version is not None and version != read_version + 1:
        logger.warning("table %s moved from %s to %s", table, read_version, version)
    return version


def _to_arrow(frame: pl.DataFrame) -> Any:
    """Arrow without view types: every Delta reader (and pyarrow's filters) handles them."""
    return frame.to_arrow(compat_level=pl.CompatLevel.oldest())


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to a run record")


def run_records(path: str | os.PathLike[str]) -> list[tuple[int, dict[str, Any]]]:
    """Every enrich run committed to the table: ``(version, record)``, oldest first."""
    from deltalake import DeltaTable

    if not DeltaTable.is_deltatable(str(path)):
        return []
    found = []
    for entry in DeltaTable(str(path)).history():
        raw = entry.get(RUN_METADATA_KEY)
        if raw is None:
            continue
        try:
            record = json.loads(raw)
        except ValueError:
            logger.warning("version %s of %s has an unreadable run record", entry["version"], path)
            continue
        found.append((int(entry["version"]), record))
    return sorted(found, key=lambda item: item[0])


def latest_run(path: str | os.PathLike[str]) -> tuple[int, dict[str, Any]] | None:
    """The newest ``(version, record)`` of an enrich run in the table, or None."""
    from deltalake import DeltaTable

    if not DeltaTable.is_deltatable(str(path)):
        return None
    table = DeltaTable(str(path))
    for entry in table.history():  # newest first
        raw = entry.get(RUN_METADATA_KEY)
        if raw is not None:
            return int(entry["version"]), json.loads(raw)
    return None


# -- the runs table ----------------------------------------------------------------------
_RUN_SCHEMA = {
    "run_id": pl.String,
    "table_version": pl.Int64,
    "started_at": pl.String,
    "finished_at": pl.String,
    "status": pl.String,
    "config_hash": pl.String,
    "n_assets": pl.Int64,
    "n_new": pl.Int64,
    "n_changed": pl.Int64,
    "n_unchanged": pl.Int64,
    "n_written": pl.Int64,
    "n_needs_review": pl.Int64,
    "coverage": pl.Float64,
    "mean_confidence": pl.Float64,
    "gold_accuracy": pl.Float64,
    "duration_s": pl.Float64,
    "model_version": pl.String,
    "lf_versions": pl.String,
    "metrics": pl.String,
}


def _run_row(version: int, record: dict[str, Any]) -> dict[str, Any]:
    counts = record.get("counts", {})
    metrics = record.get("metrics", {})
    return {
        "run_id": record.get("run_id"),
        "table_version": version,
        "started_at": record.get("started_at"),
        "finished_at": record.get("finished_at"),
        "status": "succeeded",
        "config_hash": record.get("config_hash"),
        "n_assets": counts.get("n_assets"),
        "n_new": counts.get("n_new"),
        "n_changed": counts.get("n_changed"),
        "n_unchanged": counts.get("n_unchanged"),
        "n_written": counts.get("n_written"),
        "n_needs_review": metrics.get("n_needs_review"),
        "coverage": metrics.get("coverage"),
        "mean_confidence": metrics.get("mean_confidence"),
        "gold_accuracy": metrics.get("gold_accuracy"),
        "duration_s": record.get("duration_s"),
        "model_version": (record.get("model") or {}).get("version"),
        "lf_versions": json.dumps(record.get("lf_versions", {}), sort_keys=True),
        "metrics": json.dumps(metrics, default=_json_default, sort_keys=True),
    }


def runs_frame(entries: Sequence[tuple[int, dict[str, Any]]]) -> pl.DataFrame:
    """One row per ``(version, record)``, in the runs table's schema."""
    return pl.DataFrame([_run_row(v, r) for v, r in entries], schema=_RUN_SCHEMA)


def append_run(runs_path: str | os.PathLike[str], version: int, record: dict[str, Any]) -> None:
    """Append one run to the runs table (created on first use)."""
    _append_runs(runs_path, [(version, record)])


def _append_runs(runs_path: str | os.PathLike[str], entries: list[tuple[int, dict]]) -> None:
    from deltalake import write_deltalake

    if not entries:
        return
    Path(runs_path).parent.mkdir(parents=True, exist_ok=True)
    write_deltalake(str(runs_path), _to_arrow(runs_frame(entries)), mode="append")


def read_runs(
    table_path: str | os.PathLike[str], runs_path: str | os.PathLike[str]
) -> pl.DataFrame:
    """Every run of the table, oldest first: the runs table plus any run it missed.

    A run that died after its commit but before writing its row is still listed (from the
    table's commit metadata).
    """
    from deltalake import DeltaTable

    stored = (
        pl.read_delta(str(runs_path))
        if DeltaTable.is_deltatable(str(runs_path))
        else pl.DataFrame(schema=_RUN_SCHEMA)
    )
    known = set(stored.get_column("run_id").to_list())
    missing = [(v, r) for v, r in run_records(table_path) if r.get("run_id") not in known]
    frame = pl.concat([stored.select(list(_RUN_SCHEMA)), runs_frame(missing)])
    return frame.unique("run_id", keep="first", maintain_order=True).sort("table_version")


def reconcile_runs(
    table_path: str | os.PathLike[str], runs_path: str | os.PathLike[str]
) -> list[str]:
    """Append to the runs table the runs the table committed but the runs table lacks.

    Call it while holding the :class:`RunLock`. Returns the run ids added.
    """
    from deltalake import DeltaTable

    known: set[str] = set()
    if DeltaTable.is_deltatable(str(runs_path)):
        ids = pl.scan_delta(str(runs_path)).select("run_id").collect()
        known = set(ids.get_column("run_id").to_list())
    missing = [(v, r) for v, r in run_records(table_path) if r.get("run_id") not in known]
    _append_runs(runs_path, missing)
    if missing:
        logger.info("recorded %d run(s) missing from %s", len(missing), runs_path)
    return [r["run_id"] for _, r in missing]
