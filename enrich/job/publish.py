"""After the commit: the runs-table row, retention and the reports of a run.

A failure here never fails a run whose commit succeeded: it becomes a warning, and the next
run completes what is missing. Every path may be on an object store (each file is then
uploaded whole); the result names local files as paths, and object-store files as
:class:`~enrich._internal.uri.Location`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from enrich._internal.uri import Location
from enrich.io.report import write_reports
from enrich.io.store import (
    append_run,
    compact_and_vacuum,
    prune_reports,
    run_records,
)
from enrich.job._faults import checkpoint
from enrich.job.context import (
    EnrichResult,
    JobResult,
    ReadResult,
    RunContext,
)
from enrich.job.records import one_line

__all__ = [
    "after_commit",
    "bookkeep_runs_table",
    "finish_committed",
    "native",
    "publish_reports",
    "retain_old_versions",
]

logger = logging.getLogger(__name__)


def bookkeep_runs_table(
    run: RunContext, read: ReadResult, record: Mapping[str, Any], version: int
) -> None:
    """After the commit: the runs table row, and the index snapshots no run names removed."""
    previous_record = read.previous.record if read.previous else {}
    append_run(run.paths.runs, version, record)
    if read.embedder is not None:
        kept = [(r.get("embeddings") or {}).get("index_path") for r in (record, previous_record)]
        read.embedder.cleanup(keep=kept, newest=run.run_id)


def after_commit(step: str, version: int, exc: BaseException) -> str:
    """The warning of a step after a successful commit that failed (the run still succeeded)."""
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    logger.warning("after committing version %d, %s failed: %s", version, step, reason)
    return (
        f"the run committed table version {version}, but {step} failed ({reason}); the next "
        "run completes it"
    )


def retain_old_versions(run: RunContext) -> None:
    """``[retention]``: keep the last reports; every ``compact_every`` runs, compact + vacuum."""
    settings = run.config.retention
    if not settings.enabled:
        return
    records = run_records(run.paths.table)
    keep = [str(r.get("run_id")) for _, r in records[-settings.keep_reports :]]
    prune_reports(run.paths.reports, [*keep, run.run_id])
    if records and len(records) % settings.compact_every == 0:
        for table in (run.paths.table, run.paths.runs):
            done = compact_and_vacuum(table, vacuum_after_days=settings.vacuum_after_days)
            logger.info("retention of %s: %s", table, done)


def finish_committed(
    run: RunContext,
    read: ReadResult,
    out: EnrichResult,
    record: dict[str, Any],
    version: int,
    *,
    retain: Callable[[RunContext], None] = retain_old_versions,
) -> JobResult:
    """Everything after a successful commit of ``version``: runs table, retention, reports.

    The runs-table row and ``retain`` (retention of the table's old versions and files) that
    fail become warnings, as the reports do in :func:`publish_reports`: the commit stands and
    the next run completes them. Every engine's run ends here.
    """
    try:
        bookkeep_runs_table(run, read, record, version)
    except Exception as exc:  # the commit stands: the next run finishes the bookkeeping
        run.warnings.append(after_commit("recording the run in the runs table", version, exc))
    try:
        retain(run)
    except Exception as exc:
        run.warnings.append(after_commit("compacting and vacuuming", version, exc))
    checkpoint("after_runs")
    return publish_reports(run, read, out, record, version)


def publish_reports(
    run: RunContext, read: ReadResult, out: EnrichResult, record: dict[str, Any], version: int
) -> JobResult:
    """Write the review queue and the reports; the result."""
    paths, counts, metrics = run.paths, record["counts"], out.metrics
    review_path = summary_path = report_path = None
    try:
        if out.queue is not None:
            review_path = native(
                (paths.reports / f"{run.run_id}-review.parquet").write_file(
                    out.queue.table.write_parquet
                )
            )
        summary_path, report_path = write_reports(
            record,
            read.previous.record if read.previous else None,
            paths.reports,
            table_path=paths.table,
            table_version=version,
            review_path=review_path,
        )
    except Exception as exc:  # the commit stands: the next run writes the missing reports
        run.warnings.append(after_commit("writing the reports", version, exc))
    checkpoint("done")
    message = one_line(run.run_id, counts, metrics, version, summary_path, report_path, run.classes)
    logger.info(message)
    return JobResult(
        status="succeeded",
        run_id=run.run_id,
        message=message,
        table_path=native(paths.table),
        table_version=version,
        counts=counts,
        metrics=metrics,
        summary_path=summary_path,
        report_path=report_path,
        review_path=review_path,
        warnings=tuple(run.warnings),
        record=record,
    )


def native(location: Any) -> Any:
    """A local location as a plain :class:`~pathlib.Path`; an object-store one as it is."""
    if isinstance(location, Location) and not location.is_remote:
        return location.path
    return location
