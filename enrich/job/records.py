"""The bookkeeping around a run's record.

The phase clock, the memory and versions a record holds, the run's one-line message, and the
recovery of runs that died after their commit.
"""

from __future__ import annotations

import logging
import resource
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from enrich.io.report import write_reports
from enrich.io.store import JobPaths, reconcile_runs, run_records

__all__ = ["Clock", "one_line", "peak_rss_mb", "recover", "versions"]

logger = logging.getLogger(__name__)


def recover(paths: JobPaths, *, keep_reports: int | None = None) -> None:
    """Finish the bookkeeping of runs that died after their commit: runs rows and reports.

    Only the reports of the last ``keep_reports`` runs are written again (None: all).
    """
    reconcile_runs(paths.table, paths.runs)
    records = run_records(paths.table)
    first = 0 if keep_reports is None else max(0, len(records) - keep_reports)
    present = {child.name for child in paths.reports.iterdir()}  # one listing, also on a bucket
    missing = [
        i
        for i, (_, record) in enumerate(records)
        if i >= first
        and not {f"{record.get('run_id')}.json", f"{record.get('run_id')}.html"} <= present
    ]
    for name in present:
        if name.startswith(".") and name.endswith(".partial"):  # left by a run killed mid-write
            (paths.reports / name).unlink(missing_ok=True)
    if not missing:
        return
    for i in missing:
        version, record = records[i]
        previous = records[i - 1][1] if i else None
        logger.info("writing the missing reports of run %s", record.get("run_id"))
        write_reports(
            record,
            previous,
            paths.reports,
            table_path=paths.table,
            table_version=version,
            latest=i == len(records) - 1,
        )


class Clock:
    """Seconds spent in each named phase of a run (``timings``), and in the whole run."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._start = time.perf_counter()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Add the time spent in this block to ``timings[name]``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.timings[name] = round(self.timings.get(name, 0.0) + elapsed, 4)

    def total(self) -> float:
        """Seconds since the clock started."""
        return time.perf_counter() - self._start


def peak_rss_mb() -> float:
    """The peak resident memory of this process so far, in MiB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def versions() -> dict[str, str]:
    """The versions of Python and of the packages a run's output depends on."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": sys.version.split()[0]}
    for name in ("enrich", "polars", "deltalake", "numpy"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "unknown"
    return found


def one_line(
    run_id: str,
    counts: Mapping[str, int],
    metrics: Mapping[str, Any],
    version: int,
    summary_path: Path,
    report_path: Path,
    classes: Sequence[str],
) -> str:
    """The run's one-line message (the CLI prints it)."""
    labels = " / ".join(f"{c} {metrics['class_counts'][c]:,}" for c in classes)
    return (
        f"run {run_id}: {counts['n_assets']:,} assets ({counts['n_new']:,} new, "
        f"{counts['n_changed']:,} changed, {counts['n_unchanged']:,} unchanged); "
        f"{counts['n_written']:,} rows written, table version {version}; labels {labels}; "
        f"{metrics['n_needs_review']:,} need review; summary {summary_path}; report {report_path}"
    )
