"""What a partitioned run commits and keeps: the partition state, and retention of its files.

Incremental state is kept per partition in the run record (``partitions``: each file's
fingerprint, the data file holding its rows and a summary of its vote patterns and stored
outputs, :func:`partition_state`): a run reads only the files that changed, and rewrites an
unchanged partition only when the refitted model flips a label or review flag, or moves a
probability past ``output.proba_tolerance``, for a pattern it holds.
:func:`retain_partitioned` is ``[retention]`` for a table the workers write.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from enrich._internal.uri import Location
from enrich.io.store import compact_and_vacuum, delta_table, prune_reports, run_records
from enrich.job.context import JobResult, ReadResult, RunContext
from enrich.job.worker import SUMMARY_DIR, PartitionTask, Written

__all__ = [
    "empty_result",
    "index_of",
    "partition_state",
    "retain_partitioned",
    "table_arrow_schema",
    "vector_state",
    "with_previous",
]


def partition_state(
    written: Sequence[Written],
    untouched: Mapping[str, Mapping[str, Any]],
    *,
    tasks: Sequence[PartitionTask],
    reloaded: Sequence[PartitionTask],
    files: Sequence[Any],
    kept: Mapping[str, Any] | None,
    vectors: bool,
) -> dict[str, Any]:
    """The run record's ``partitions``: each written partition's new state, the others' kept.

    A partition's state is its index, its source file's fingerprint, the data file holding
    its rows, its summary, its counts and (with ``vectors``) its vector file.
    """
    return {
        w.key: {
            "index": index_of(w, tasks, reloaded),
            "fingerprint": _fingerprint(files, w.key, kept),
            "files": [w.path],
            "summary": w.summary_path,
            "n_rows": w.n_rows,
            "n_review_eligible": w.n_review_eligible,
            **({"model_counts": w.model_counts} if w.model_counts is not None else {}),
            **(vector_state(w) if vectors else {}),
        }
        for w in written
    } | untouched


def retain_partitioned(run: RunContext) -> None:
    """``[retention]`` for a table the workers write: vacuum, but never compact it.

    Its files are already one per partition, and compacting would merge them and lose the
    partition state (the next run would read every file again). The runs table is compacted
    as usual; partition summaries no run record names any more are removed.
    """
    settings = run.config.retention
    if not settings.enabled:
        return
    table = run.paths.table
    records = run_records(table)
    keep = [str(r.get("run_id")) for _, r in records[-settings.keep_reports :]]
    prune_reports(run.paths.reports, [*keep, run.run_id])
    if not records or len(records) % settings.compact_every:
        return
    days = settings.vacuum_after_days
    compact_and_vacuum(table, vacuum_after_days=days, compact=False)
    compact_and_vacuum(run.paths.runs, vacuum_after_days=days)
    named = {
        Path(entry["summary"]).parts[1]
        for _, record in records
        for entry in (record.get("partitions") or {}).values()
    }
    folder = Path(table) / SUMMARY_DIR
    if folder.is_dir():
        for child in folder.iterdir():
            if child.is_dir() and child.name not in named and child.name != run.run_id:
                shutil.rmtree(child, ignore_errors=True)
    _remove_unnamed_vectors(run, records)


def _remove_unnamed_vectors(run: RunContext, records: Sequence[tuple[int, Any]]) -> None:
    """Remove the partitions' vector files no kept run record names.

    Files a later run wrote (their name holds its run id, which starts with its start
    time) are left alone: on an object store, where runs are not locked out of each other,
    they may belong to a run still working.
    """
    named = {
        str(entry.get("vectors")).rsplit("/", 1)[-1]
        for _, record in records
        for entry in (record.get("partitions") or {}).values()
        if entry.get("vectors")
    }
    for file in (run.paths.embeddings / "vectors").iterdir():  # nothing when there is none
        parts = file.name.split("-")
        run_id = "-".join(parts[2:-1])  # part-<index>-<run id>-<random>.parquet
        if file.name in named or run_id >= run.run_id:
            continue
        file.unlink()


def vector_state(w: Written) -> dict[str, Any]:
    """A partition's vectors in its state: the file, its rows, its largest index id."""
    return {"vectors": w.vectors_path, "n_vectors": w.n_vectors, "max_index_id": w.max_index_id}


def index_of(w: Written, tasks: Sequence[PartitionTask], reload: Sequence[PartitionTask]) -> int:
    """The partition index of the task that wrote ``w``."""
    for task in [*tasks, *reload]:
        if task.key == w.key:
            return task.index
    raise KeyError(w.key)


def _fingerprint(files: Sequence[Any], key: str, kept: Mapping[str, Any] | None) -> Any:
    for file in files:
        if file.path == key:
            return list(file.fingerprint)
    return (kept or {}).get(key, {}).get("fingerprint")


def table_arrow_schema(table: Location) -> Any:
    """The table's Arrow schema (a run that writes no file commits it)."""
    import pyarrow as pa

    return pa.schema(delta_table(table).schema().to_arrow())


def with_previous(read: ReadResult, previous: Any) -> ReadResult:
    """``read`` with the previous run's table state set."""
    read.previous = previous
    return read


def empty_result(run: RunContext, table: str, version: int | None) -> JobResult:
    """The result of a run whose source and table hold no assets."""
    message = (
        f"the source ({len(run.files)} file(s)) holds no assets and the table has none; "
        "nothing to do, nothing written"
    )
    return JobResult(
        status="empty",
        run_id=run.run_id,
        message=message,
        table_path=run.paths.table,
        table_version=version,
        counts={"n_assets": 0, "n_files": len(run.files)},
    )
