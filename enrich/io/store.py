"""Delta Lake I/O of the batch job: the enriched table, its run records, the runs table, a lock.

The enriched table is the job's only state that matters: besides each asset's label,
probabilities and votes it holds the asset's content hash and source file, and every commit
a run makes carries the run record (run id, config hash, LF versions, model, metrics, the
source file manifest) in its commit metadata under :data:`RUN_METADATA_KEY`. A run changes
the table with exactly one commit, made only if nobody committed since the run read the
table, so the visible output never holds half a run. The runs table (one row per run) is
written after that commit and rebuilt from the commit metadata when a run died between the
two (:func:`reconcile_runs`).

Every path may be an object-store URI (``s3://``, ``gs://``, ``az://``; see
:class:`~enrich._internal.uri.Location` for the ``storage_options``): delta-rs and polars
read and write the tables, fsspec the report files. On an object store there is no file
lock: the commit itself is the guard (delta-rs commits with a conditional put, so of two
runs that read the same version only the first commits; the other gets
:class:`ConcurrentRunError` and nothing of it becomes visible).

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
import re
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl

from enrich._internal.files import mount_point
from enrich._internal.uri import Location
from enrich.errors import (
    ConcurrentRunError,
    CorruptStateError,
    DiskFullError,
    InputError,
    RunLockedError,
    TableHistoryError,
)

__all__ = [
    "RUN_METADATA_KEY",
    "ConcurrentRunError",
    "JobPaths",
    "Location",
    "RunLock",
    "RunLockedError",
    "TableHistoryError",
    "append_run",
    "commit_enriched",
    "commit_files",
    "compact_and_vacuum",
    "delta_table",
    "diagnose_log",
    "disk_full_error",
    "is_disk_full",
    "is_table",
    "latest_run",
    "prune_reports",
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


PathLike = str | os.PathLike[str] | Location


@dataclass(frozen=True)
class JobPaths:
    """Where a job's files live: the Delta table and, beside it, runs, reports, cache, lock.

    Each is a :class:`~enrich._internal.uri.Location`: a local path or an object-store URI
    carrying its ``storage_options``.
    """

    table: Location
    runs: Location
    reports: Location
    embeddings: Location
    lock: Location

    @classmethod
    def for_table(
        cls,
        table: PathLike,
        *,
        runs: PathLike | None = None,
        reports: PathLike | None = None,
        embeddings: PathLike | None = None,
        storage_options: dict[str, Any] | None = None,
        embeddings_storage_options: dict[str, Any] | None = None,
    ) -> JobPaths:
        """Defaults beside ``table``: ``<table>_runs``, ``<table>_reports``, ``<table>_embeddings``.

        ``storage_options`` reach every URI among them (``embeddings_storage_options``, when
        given, the embedding cache's).

        >>> str(JobPaths.for_table("out/enriched").runs)
        'out/enriched_runs'
        >>> str(JobPaths.for_table("s3://lake/enriched").reports)
        's3://lake/enriched_reports'
        """
        where = Location.of(table, storage_options)

        def place(value: PathLike | None, default: str, options: Any = None) -> Location:
            if value:
                return Location.of(value, options if options is not None else storage_options)
            return Location.of(where.with_name(default), options)

        return cls(
            table=where,
            runs=place(runs, f"{where.name}_runs"),
            reports=place(reports, f"{where.name}_reports"),
            embeddings=place(embeddings, f"{where.name}_embeddings", embeddings_storage_options),
            lock=where.with_name(f".{where.name}.lock"),
        )


# -- the lock ----------------------------------------------------------------------------
class RunLock:
    """An exclusive lock on one output table, held for a whole run (``fcntl.flock``).

    The operating system releases it when the process ends, however it ends (a SIGKILL
    included), so a dead run never leaves a stale lock. A second run waits up to ``timeout``
    seconds, then raises :class:`RunLockedError` naming the holder.

    For a table on an object store (``path`` a URI) there is no file to lock: object stores
    have no ``flock``, and a lock object written there would outlive a killed run. The lock
    is then optimistic: nothing is held, and the run's single commit is made only on top of
    the version it read (see :func:`commit_enriched`), so of two overlapping runs the second
    to commit is refused with :class:`ConcurrentRunError` and writes nothing.

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
        path: PathLike,
        *,
        timeout: float,
        run_id: str = "",
        poll_interval: float = 0.1,
        target: str | None = None,
    ) -> None:
        location = Location.of(path)
        self.optimistic = location.is_remote
        self.path = Path(location.uri) if not self.optimistic else Path(location.name)
        self.timeout = timeout
        self.run_id = run_id
        self.poll_interval = poll_interval
        self.target = target or str(location)
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        import fcntl

        if self.optimistic:
            logger.debug(
                "%s is on an object store: no file lock; the commit is refused if another "
                "run committed first",
                self.target,
            )
            return self
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
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(holder).encode(), 0)
        except OSError as exc:  # a full disk: the lock holds; only its label is missing
            logger.warning("cannot write the run lock's holder to %s: %s", self.path, exc)
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
def is_table(path: PathLike) -> bool:
    """Whether a Delta table is at ``path`` (a local path or a URI)."""
    from deltalake import DeltaTable

    where = Location.of(path)
    return bool(DeltaTable.is_deltatable(str(where), storage_options=where.delta_options()))


def table_version(path: PathLike) -> int | None:
    """The current version of the Delta table at ``path``, or None if there is no table."""
    if not is_table(path):
        return None
    return delta_table(path).version()


def delta_table(path: PathLike, *, version: int | None = None) -> Any:
    """Open the Delta table at ``path`` (at ``version``); a corrupt log is named with its fix.

    Raises
    ------
    CorruptStateError
        A file of ``_delta_log`` cannot be read: the message names it and the recovery.
    """
    from deltalake import DeltaTable

    where = Location.of(path)
    try:
        return DeltaTable(str(where), version=version, storage_options=where.delta_options())
    except Exception as exc:
        problem = diagnose_log(path, exc)
        if problem is None:
            raise
        raise problem from exc


def diagnose_log(path: PathLike, exc: BaseException) -> CorruptStateError | None:
    """The error naming the unreadable file of the Delta log behind ``exc`` (None if none is).

    Each ``_delta_log/<version>.json`` must be JSON lines; the first that is not is named,
    with how to recover: restore it, or (when it is the latest) move it aside to go back to
    the version before it.
    """
    log = Location.of(path) / "_delta_log"
    try:
        if not log.is_dir():
            return None
        files = list(log.glob("*.json"))
    except Exception:  # an unreachable store: nothing to say about the log's files
        return None
    commits = sorted(
        (int(f.name.split(".")[0]), f) for f in files if f.name.split(".")[0].isdigit()
    )
    latest = commits[-1][0] if commits else None
    for number, file in commits:
        why = _unreadable_json_lines(file)
        if why is None:
            continue
        if number == latest == 0:
            return CorruptStateError(
                f"the Delta log file {file} (version 0, the only one) is corrupt ({why}); "
                f"restore it from a backup, or move it aside (mv {file} {file}.corrupt): the "
                "next run then builds the table again from the source"
            )
        if number == latest:
            return CorruptStateError(
                f"the Delta log file {file} (version {number}, the latest) is corrupt ({why}); "
                f"restore it from a backup, or move it aside (mv {file} {file}.corrupt) to go "
                f"back to version {number - 1}, the last good one: the next run redoes the "
                "work of the lost version"
            )
        return CorruptStateError(
            f"the Delta log file {file} (version {number} of {latest}) is corrupt ({why}); "
            f"restore it from a backup: without it the table cannot be read past version "
            f"{number - 1} (time travel to version {number - 1} still works)"
        )
    checkpoint = log / "_last_checkpoint"
    if checkpoint.is_file() and _unreadable_json_lines(checkpoint) is not None:
        return CorruptStateError(
            f"the Delta checkpoint pointer {checkpoint} is corrupt; delete it (the log is "
            "read from its JSON files instead) and run again"
        )
    text = str(exc)
    if latest is not None and ("Json error" in text or "checkpoint" in text.lower()):
        return CorruptStateError(
            f"the Delta log of {str(path)!r} cannot be read ({text.splitlines()[0]}); check the "
            f"files in {log} (a checkpoint .parquet may be damaged: move it aside) and restore "
            "the damaged one from a backup"
        )
    return None


def _unreadable_json_lines(file: Location) -> str | None:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return f"unreadable: {exc}"
    if not text.strip():
        return "empty file"
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            json.loads(line)
        except ValueError as exc:
            return f"line {number}: {exc}"
    return None


def is_disk_full(exc: BaseException) -> bool:
    """True when ``exc`` (an OSError, or a Delta/FAISS error quoting one) means a full disk."""
    if isinstance(exc, OSError) and exc.errno == 28:
        return True
    text = str(exc)
    return "No space left" in text or "os error 28" in text or "disk is full" in text


def disk_full_error(path: PathLike, what: str) -> DiskFullError:
    """The one-line error for a full disk under ``path``."""
    where = Location.of(path)
    device = "the object store" if where.is_remote else str(mount_point(where.uri))
    return DiskFullError(
        f"no space left on {device} (writing {what} at {str(where)!r}); free "
        "some space and run again"
    )


def table_columns(path: PathLike) -> list[str]:
    """The column names of the Delta table at ``path`` (current version)."""
    return list(table_schema(path))


def table_schema(path: PathLike) -> dict[str, pl.DataType]:
    """Column names and polars types of the Delta table at ``path`` (current version)."""
    where = Location.of(path)
    return dict(pl.scan_delta(str(where), storage_options=where.delta_options()).collect_schema())


def read_table(
    path: PathLike,
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
    where = Location.of(path)
    if not is_table(where):
        raise TableHistoryError(
            f"there is no Delta table at {str(where)!r}; run the job first (`enrich run`)"
        )
    try:
        lazy = pl.scan_delta(str(where), version=version, storage_options=where.delta_options())
        if asset_id is not None:
            kind = lazy.collect_schema()["asset_id"]
            lazy = lazy.filter(pl.col("asset_id") == _typed_key(asset_id, kind))
        if columns is not None:
            lazy = lazy.select(list(columns))
        return lazy.collect()
    except InputError:
        raise
    except Exception as exc:
        problem = diagnose_log(path, exc)
        if problem is not None:
            raise problem from exc
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
    path: PathLike,
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
    from deltalake import CommitProperties, write_deltalake

    where = Location.of(path)
    table = str(where)
    properties = CommitProperties(
        custom_metadata={RUN_METADATA_KEY: json.dumps(record, default=_json_default)},
        max_commit_retries=0,
    )
    arrow = _to_arrow(rows)
    before = _data_files(where)
    try:
        if mode == "create":
            if read_version is not None:
                raise InputError("mode='create' needs read_version=None")
            where.parent.mkdir()
            write_deltalake(
                table,
                arrow,
                mode="error",
                commit_properties=properties,
                storage_options=where.delta_options(),
            )
        else:
            base = delta_table(where, version=read_version)
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
    except CorruptStateError:
        raise
    except Exception as exc:
        refused = _refused_commit(table, exc)
        if refused is not None:
            raise refused from exc
        if is_disk_full(exc):
            _remove_uncommitted(where, before)
            raise disk_full_error(
                where,
                f"the run's commit (nothing was committed: the table stays at "
                f"version {read_version})",
            ) from exc
        raise
    version = delta_table(where).version()
    if read_version is not None and version != read_version + 1:
        logger.warning("table %s moved from %s to %s", table, read_version, version)
    return version


def _refused_commit(table: str, exc: Exception) -> ConcurrentRunError | None:
    """The :class:`ConcurrentRunError` a failed commit means, or None if it means another thing.

    Delta refuses a commit when someone committed since the version read (optimistic
    concurrency), when the table changed or vanished under the run, or when another writer
    created it first; nothing of the run is then in the table.
    """
    from deltalake.exceptions import CommitFailedError, TableNotFoundError

    if isinstance(exc, CommitFailedError):
        return ConcurrentRunError(
            f"someone else committed to {table!r} while this run was working ({exc}); "
            "nothing was written. Run again: the next run starts from their result."
        )
    if isinstance(exc, FileExistsError | TableNotFoundError):
        return ConcurrentRunError(
            f"the table {table!r} changed while this run was working ({exc}); nothing was "
            "written. Run again."
        )
    if type(exc).__name__ == "DeltaError" and "already exists" in str(exc):
        return ConcurrentRunError(
            f"the table {table!r} was created by another writer while this run was "
            "working; nothing was written. Run again."
        )
    return None


def _data_files(table: Location) -> set[str]:
    """The data files under a local table's folder (relative paths), to spot a failed write's.

    Only a local disk fills up; on an object store nothing is listed (the listing would
    cost a request per run).
    """
    if table.is_remote:
        return set()
    root = table.path
    if not root.is_dir():
        return set()
    return {
        str(f.relative_to(root)) for f in root.rglob("*.parquet") if "_delta_log" not in f.parts
    }


def _remove_uncommitted(table: Location, before: set[str]) -> None:
    """Delete data files a failed commit wrote (no log entry names them; the lock is held)."""
    if table.is_remote:
        return
    for name in _data_files(table) - before:
        (table.path / name).unlink(missing_ok=True)
    log = table.path / "_delta_log"
    if log.is_dir():
        for tmp in log.glob("*.tmp"):
            tmp.unlink(missing_ok=True)


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


def run_records(path: PathLike) -> list[tuple[int, dict[str, Any]]]:
    """Every enrich run committed to the table: ``(version, record)``, oldest first."""
    if not is_table(path):
        return []
    found = []
    for entry in _history(path):
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


def _history(path: PathLike) -> list[dict[str, Any]]:
    table = delta_table(path)
    try:
        return table.history()
    except Exception as exc:
        problem = diagnose_log(path, exc)
        if problem is None:
            raise
        raise problem from exc


def latest_run(path: PathLike) -> tuple[int, dict[str, Any]] | None:
    """The newest ``(version, record)`` of an enrich run in the table, or None."""
    if not is_table(path):
        return None
    for entry in _history(path):  # newest first
        raw = entry.get(RUN_METADATA_KEY)
        if raw is not None:
            version = int(entry["version"])
            try:
                record = json.loads(raw)
                if not isinstance(record, dict):
                    raise ValueError(f"a JSON {type(record).__name__}, not an object")
            except ValueError as exc:
                file = Location.of(path) / "_delta_log" / f"{version:020d}.json"
                back = (
                    f"to go back to version {version - 1}: the next run redoes the lost run's work"
                    if version
                    else "and the next run builds the table again from the source"
                )
                raise CorruptStateError(
                    f"the run record of version {version} in {file} is unreadable ({exc}); "
                    f"restore that file from a backup, or move it aside (mv {file} "
                    f"{file}.corrupt) {back}"
                ) from exc
            return version, record
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


def append_run(runs_path: PathLike, version: int, record: dict[str, Any]) -> None:
    """Append one run to the runs table (created on first use)."""
    _append_runs(runs_path, [(version, record)])


def _append_runs(runs_path: PathLike, entries: list[tuple[int, dict]]) -> None:
    if not entries:
        return
    _write_runs(runs_path, runs_frame(entries), mode="append")


def _write_runs(runs_path: PathLike, frame: pl.DataFrame, *, mode: Literal["append", "overwrite"]):
    from deltalake import write_deltalake

    where = Location.of(runs_path)
    where.parent.mkdir()
    write_deltalake(str(where), _to_arrow(frame), mode=mode, storage_options=where.delta_options())


def read_runs(table_path: PathLike, runs_path: PathLike) -> pl.DataFrame:
    """Every run of the table, oldest first: the runs table plus any run it missed.

    A run that died after its commit but before writing its row is still listed (from the
    table's commit metadata).
    """
    runs = Location.of(runs_path)
    stored = (
        pl.read_delta(str(runs), storage_options=runs.delta_options())
        if is_table(runs)
        else pl.DataFrame(schema=_RUN_SCHEMA)
    )
    known = set(stored.get_column("run_id").to_list())
    missing = [(v, r) for v, r in run_records(table_path) if r.get("run_id") not in known]
    frame = pl.concat([stored.select(list(_RUN_SCHEMA)), runs_frame(missing)])
    return frame.unique("run_id", keep="first", maintain_order=True).sort("table_version")


def reconcile_runs(table_path: PathLike, runs_path: PathLike) -> list[str]:
    """Bring the runs table in line with the table's history; return the run ids added.

    Runs the table committed but the runs table lacks are appended. A row whose version the
    table's log now gives to another run (its commit file was deleted and the version
    committed again), or whose version is past the table's, is marked ``status="lost"``:
    one version, one run. An unreadable runs table (it is derived data) is moved aside and
    rebuilt from the commit metadata. Call it while holding the :class:`RunLock`.
    """
    records = run_records(table_path)
    stored = _read_runs_table(runs_path)
    if stored is None:
        missing = records
    else:
        current = table_version(table_path)
        owner = {version: record.get("run_id") for version, record in records}
        stale = pl.Series(
            [
                status == "succeeded"
                and (
                    (current is not None and version > current)
                    or (version in owner and owner[version] != run_id)
                )
                for run_id, version, status in stored.select(
                    "run_id", "table_version", "status"
                ).iter_rows()
            ],
            dtype=pl.Boolean,
        )
        if stale.any():
            lost = stored.filter(stale).get_column("run_id").to_list()
            logger.warning(
                "run(s) %s of %s are no longer in the table's log (their commit was lost); "
                "marked status='lost' in %s",
                lost,
                table_path,
                runs_path,
            )
            fixed = stored.with_columns(
                pl.when(stale).then(pl.lit("lost")).otherwise(pl.col("status")).alias("status")
            )
            _write_runs(runs_path, fixed, mode="overwrite")
        known = set(stored.get_column("run_id").to_list())
        missing = [(v, r) for v, r in records if r.get("run_id") not in known]
    _append_runs(runs_path, missing)
    if missing:
        logger.info("recorded %d run(s) missing from %s", len(missing), runs_path)
    return [r["run_id"] for _, r in missing]


def _read_runs_table(runs_path: PathLike) -> pl.DataFrame | None:
    """The runs table, or None when there is none (an unreadable one is moved aside)."""
    runs = Location.of(runs_path)
    if not is_table(runs):
        return None
    try:
        stored = pl.read_delta(str(runs), storage_options=runs.delta_options())
        return stored.select(list(_RUN_SCHEMA)).cast(_RUN_SCHEMA)
    except Exception as exc:
        if is_disk_full(exc):
            raise
        aside = runs.with_name(f"{runs.name}.corrupt-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}")
        runs.rename(aside)
        logger.warning(
            "the runs table %s is unreadable (%s); moved it aside to %s and rebuilt it from "
            "the table's commit metadata",
            runs_path,
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            aside,
        )
        return None


# -- retention -----------------------------------------------------------------------------
def compact_and_vacuum(
    path: str | os.PathLike[str], *, vacuum_after_days: float, compact: bool = True
) -> dict[str, int]:
    """Merge the small files of a Delta table, then delete files no version needs any more.

    ``compact`` rewrites small data files into larger ones (one commit, same rows);
    the vacuum deletes data files that no version newer than ``vacuum_after_days`` days
    reads, so time travel to older versions is no longer possible. Returns counts of files
    removed and added.
    """
    table = delta_table(path)
    removed = added = 0
    if compact:
        metrics = table.optimize.compact()
        removed, added = (
            int(metrics.get("numFilesRemoved", 0)),
            int(metrics.get("numFilesAdded", 0)),
        )
    deleted = table.vacuum(
        retention_hours=int(vacuum_after_days * 24),
        dry_run=False,
        enforce_retention_duration=False,
    )
    return {"files_compacted": removed, "files_written": added, "files_vacuumed": len(deleted)}


_REPORT_NAME = re.compile(r"(?P<run_id>\d{8}T\d{6}Z-[0-9a-f]+)(\.json|\.html|-review\.parquet)")


def prune_reports(reports: PathLike, keep_run_ids: Sequence[str]) -> int:
    """Delete the reports (``<run_id>.json``/``.html``/``-review.parquet``) of other runs.

    Only files named like a run's reports are touched (``latest.*`` and anything else in the
    folder stay). Returns how many files were removed.
    """
    folder = Location.of(reports)
    keep = set(keep_run_ids)
    removed = 0
    for file in folder.iterdir():  # nothing when there is no folder
        match = _REPORT_NAME.fullmatch(file.name)
        if match is None or (not folder.is_remote and not file.is_file()):
            continue
        if match.group("run_id") not in keep:
            file.unlink()
            removed += 1
    return removed


def commit_files(
    path: PathLike,
    *,
    adds: Sequence[dict[str, Any]],
    removes: Sequence[str],
    schema: Any,
    read_version: int | None,
    record: dict[str, Any],
    overwrite: bool = False,
    storage_options: dict[str, str] | None = None,
) -> int:
    """Commit data files written elsewhere (e.g. by Dask workers) in ONE commit with ``record``.

    Parameters
    ----------
    path
        The Delta table (created when ``read_version`` is None).
    adds
        The new data files, already in the table's folder: ``path`` (relative to the table),
        ``size`` (bytes) and ``stats`` (Delta statistics JSON).
    removes
        Data files (relative paths) this commit replaces.
    schema
        The Arrow schema of the new files.
    read_version
        The version the run read; if anyone committed since, nothing is committed.
    record
        The run record (the commit metadata under :data:`RUN_METADATA_KEY`).
    overwrite
        Replace every file of the table (and its schema) with ``adds``.
    storage_options
        Options for an object-store table.

    Returns
    -------
    int
        The new table version.

    Raises
    ------
    ConcurrentRunError
        Someone committed to the table since ``read_version`` (nothing was committed).
    """
    from deltalake import CommitProperties, Schema
    from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions

    where = Location.of(path, storage_options)
    table = str(where)
    properties = CommitProperties(
        custom_metadata={RUN_METADATA_KEY: json.dumps(record, default=_json_default)},
        max_commit_retries=0,
    )
    now = int(time.time() * 1000)
    add_actions = [
        AddAction(a["path"], int(a["size"]), {}, now, True, a.get("stats") or "") for a in adds
    ]
    delta_schema = Schema.from_arrow(schema)
    try:
        if read_version is None:
            create_table_with_add_actions(
                table,
                delta_schema,
                add_actions,
                mode="error",
                storage_options=where.delta_options(),
                commit_properties=properties,
            )
        else:
            base = delta_table(where, version=read_version)
            actions: list[Any] = list(add_actions)
            if not overwrite:
                actions += [RemoveAction(r, True, now) for r in removes]
            base.create_write_transaction(
                actions,
                "overwrite" if overwrite else "append",
                delta_schema,
                commit_properties=properties,
            )
    except Exception as exc:
        refused = _refused_commit(table, exc)
        if refused is not None:
            raise refused from exc
        raise
    return delta_table(where).version()
