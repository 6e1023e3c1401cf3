"""Lineage of an enriched table: its runs, one asset's history, and what changed between runs.

Every enrich run commits one table version carrying its run record, so Delta time travel
gives the table as each run left it. :func:`runs` lists the runs with their metrics,
:func:`history` follows one asset across runs (label, confidence, LF votes), and :func:`diff`
compares two runs (labels flipped, new assets, LF coverage change). Time travel needs the
data files of old versions: vacuuming the table with a short retention shortens history.
A table may be an object-store URI (``s3://lake/enriched``): pass ``storage_options``
(object_store keys, as delta-rs takes them) or leave the credentials to the environment.

>>> import tempfile, polars as pl
>>> from enrich.io.store import commit_enriched
>>> with tempfile.TemporaryDirectory() as d:
...     rows = pl.DataFrame({"asset_id": ["a"], "label_name": ["HAM"], "confidence": [0.9]})
...     v = commit_enriched(f"{d}/t", rows, mode="create", read_version=None,
...                         record={"run_id": "r1", "metrics": {"lfs": []}})
...     history(f"{d}/t", "a").table.select("run_id", "label_name").rows()
[('r1', 'HAM')]
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from enrich._internal.display import ColumnFormat, TableDisplay
from enrich._internal.uri import Location
from enrich.io.store import (
    JobPaths,
    TableHistoryError,
    is_table,
    read_runs,
    read_table,
    run_records,
)

__all__ = ["AssetHistory", "RunDiff", "RunList", "diff", "history", "resolve_run", "runs"]

logger = logging.getLogger(__name__)

_HISTORY_COLUMNS = ("label_name", "confidence", "needs_review", "conflict", "run_id")


class RunList(TableDisplay):
    """The runs of a table, oldest first (see :func:`runs`); ``.table`` is polars."""

    def __init__(self, table: pl.DataFrame, path: Any) -> None:
        self.table = table
        self.path = path

    def __len__(self) -> int:
        return self.table.height

    def _display_table(self) -> pl.DataFrame:
        shown = [
            "run_id",
            "table_version",
            "finished_at",
            "n_assets",
            "n_new",
            "n_changed",
            "n_written",
            "n_needs_review",
            "coverage",
            "mean_confidence",
            "gold_accuracy",
            "duration_s",
        ]
        return self.table.select(shown)

    def _display_title(self) -> str:
        return f"Runs of {self.path}: {self.table.height}"

    def _display_no_wrap(self) -> Sequence[str]:
        return ("run_id",)

    def _display_formats(self) -> Mapping[str, ColumnFormat]:
        return {
            "coverage": "percent",
            "mean_confidence": "float",
            "gold_accuracy": "percent",
            "duration_s": "float",
        }


@dataclass(frozen=True)
class _Run:
    version: int
    record: Mapping[str, Any]

    @property
    def run_id(self) -> str:
        return str(self.record.get("run_id"))


class AssetHistory(TableDisplay):
    """One asset across runs (see :func:`history`): one row per run, oldest first.

    ``table`` columns: ``run_id`` (the run whose version this is), ``table_version``,
    ``finished_at``, ``present`` (the asset was in the table), ``label_name``,
    ``confidence``, ``needs_review``, ``conflict``, ``written_by`` (the run that last wrote
    the row), ``votes`` (``lf=class`` for every LF that voted).
    """

    def __init__(self, table: pl.DataFrame, asset_id: Any) -> None:
        self.table = table
        self.asset_id = asset_id

    def _display_table(self) -> pl.DataFrame:
        return self.table

    def _display_title(self) -> str:
        return f"History of asset {self.asset_id!r}: {self.table.height} run(s)"

    def _display_no_wrap(self) -> Sequence[str]:
        return ("run_id", "written_by")

    def _display_formats(self) -> Mapping[str, ColumnFormat]:
        return {"confidence": "float"}


class RunDiff(TableDisplay):
    """What changed from run A to run B (see :func:`diff`).

    Attributes
    ----------
    flipped : polars.DataFrame
        ``asset_id``, ``label_a``, ``label_b``, ``confidence_a``, ``confidence_b``: assets in
        both runs whose label changed.
    new_assets, removed_assets : polars.Series
        Asset ids in B but not A, and in A but not B.
    coverage : polars.DataFrame
        ``lf``, ``coverage_a``, ``coverage_b``, ``change`` (null where an LF is in one run).
    totals : dict
        ``n_assets_a``, ``n_assets_b``, ``n_new``, ``n_removed``, ``n_flipped``.
    """

    def __init__(
        self,
        run_a: str,
        run_b: str,
        flipped: pl.DataFrame,
        new_assets: pl.Series,
        removed_assets: pl.Series,
        coverage: pl.DataFrame,
        totals: Mapping[str, int],
    ) -> None:
        self.run_a = run_a
        self.run_b = run_b
        self.flipped = flipped
        self.new_assets = new_assets
        self.removed_assets = removed_assets
        self.coverage = coverage
        self.totals = dict(totals)

    def _display_table(self) -> pl.DataFrame:
        return self.coverage

    def _display_title(self) -> str:
        return f"Diff {self.run_a} -> {self.run_b}: LF coverage"

    def _display_totals(self) -> Mapping[str, str]:
        t = self.totals
        return {
            "assets": f"{t['n_assets_a']:,} -> {t['n_assets_b']:,}",
            "new assets": f"{t['n_new']:,}",
            "removed": f"{t['n_removed']:,}",
            "labels flipped": f"{t['n_flipped']:,}",
        }

    def _display_formats(self) -> Mapping[str, ColumnFormat]:
        return {
            "coverage_a": "percent",
            "coverage_b": "percent",
            "change": lambda v: f"{v:+.1%}",
        }


def runs(
    table: str | os.PathLike[str],
    *,
    runs_path: str | os.PathLike[str] | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> RunList:
    """Every run of the enriched ``table`` with its counts and metrics, oldest first.

    ``runs_path`` defaults to ``<table>_runs``; runs committed to the table but missing
    from it (a run killed between the two writes) are listed too. ``storage_options``
    reach a table on an object store.

    Raises
    ------
    TableHistoryError
        There is no Delta table at ``table``.
    """
    options = dict(storage_options) if storage_options else None
    paths = JobPaths.for_table(table, runs=runs_path, storage_options=options)
    _require_table(paths.table)
    return RunList(read_runs(paths.table, paths.runs), paths.table)


def resolve_run(
    table: str | os.PathLike[str],
    run: str,
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> tuple[int, Mapping[str, Any]]:
    """``(table version, run record)`` of ``run``.

    a run id, a unique prefix, ``latest``, ``previous``, or ``v<N>`` (the run that committed
    version N).

    Raises
    ------
    TableHistoryError
        No run matches (the message lists the latest run ids), or a prefix is ambiguous.
    """
    table = _located(table, storage_options)
    found = [_Run(v, r) for v, r in run_records(table)]
    if not found:
        raise TableHistoryError(f"the table {str(table)!r} has no enrich run yet")
    if run == "latest":
        return found[-1].version, found[-1].record
    if run == "previous":
        if len(found) < 2:
            raise TableHistoryError(f"the table {str(table)!r} has only one run")
        return found[-2].version, found[-2].record
    if run.startswith("v") and run[1:].isdigit():
        for item in found:
            if item.version == int(run[1:]):
                return item.version, item.record
    exact = [r for r in found if r.run_id == run]
    matches = exact or [r for r in found if r.run_id.startswith(run)]
    if len(matches) == 1:
        return matches[0].version, matches[0].record
    if matches:
        raise TableHistoryError(
            f"run {run!r} is ambiguous: it starts {len(matches)} run ids "
            f"({', '.join(m.run_id for m in matches[:5])}); give more characters"
        )
    recent = ", ".join(r.run_id for r in found[-5:])
    raise TableHistoryError(
        f"no run {run!r} in {str(table)!r}; the latest runs are {recent} (see `enrich runs`)"
    )


def history(
    table: str | os.PathLike[str],
    asset_id: Any,
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> AssetHistory:
    """One asset's label, confidence and LF votes as each run left them (Delta time travel).

    Raises
    ------
    TableHistoryError
        No table, or the asset was never in it (the message says so), or an old version's
        files were vacuumed.
    """
    table = _located(table, storage_options)
    _require_table(table)
    rows = []
    seen = False
    for version, record in run_records(table):
        frame = read_table(table, version=version, asset_id=asset_id)
        row: dict[str, Any] = {
            "run_id": record.get("run_id"),
            "table_version": version,
            "finished_at": record.get("finished_at"),
            "present": frame.height > 0,
        }
        if frame.height:
            seen = True
            values = frame.row(0, named=True)
            for column in _HISTORY_COLUMNS:
                row["written_by" if column == "run_id" else column] = values.get(column)
            row["votes"] = _votes_text(values, record)
        rows.append(row)
    if not seen:
        raise TableHistoryError(
            f"asset {asset_id!r} is in no version of {str(table)!r} written by a run; check "
            "the id (ids are matched exactly)"
        )
    schema = {
        "run_id": pl.String,
        "table_version": pl.Int64,
        "finished_at": pl.String,
        "present": pl.Boolean,
        "label_name": pl.String,
        "confidence": pl.Float64,
        "needs_review": pl.Boolean,
        "conflict": pl.Boolean,
        "written_by": pl.String,
        "votes": pl.String,
    }
    return AssetHistory(pl.DataFrame(rows, schema=schema), asset_id)


def _votes_text(values: Mapping[str, Any], record: Mapping[str, Any]) -> str:
    classes = list(record.get("classes", []))
    parts = []
    for column, vote in values.items():
        if column.startswith("vote_") and vote is not None and vote >= 0:
            name = classes[vote] if vote < len(classes) else str(vote)
            parts.append(f"{column[5:]}={name}")
    return ", ".join(parts) if parts else "(no votes)"


def diff(
    table: str | os.PathLike[str],
    run_a: str,
    run_b: str,
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> RunDiff:
    """What changed from ``run_a`` to ``run_b``: labels flipped, new assets, LF coverage.

    Runs are named as :func:`resolve_run` accepts (ids, unique prefixes, ``latest``,
    ``previous``, ``v<N>``).
    """
    table = _located(table, storage_options)
    _require_table(table)
    version_a, record_a = resolve_run(table, run_a)
    version_b, record_b = resolve_run(table, run_b)
    columns = ["asset_id", "label_name", "confidence"]
    a = read_table(table, version=version_a, columns=columns)
    b = read_table(table, version=version_b, columns=columns)
    both = a.join(b, on="asset_id", how="inner", suffix="_b")
    flipped = (
        # a label that became null (no LF votes any more) or appeared counts as flipped
        both.filter(pl.col("label_name").ne_missing(pl.col("label_name_b")))
        .select(
            "asset_id",
            pl.col("label_name").alias("label_a"),
            pl.col("label_name_b").alias("label_b"),
            pl.col("confidence").alias("confidence_a"),
            pl.col("confidence_b"),
        )
        .sort("asset_id")
    )
    new = b.join(a, on="asset_id", how="anti").get_column("asset_id").sort()
    removed = a.join(b, on="asset_id", how="anti").get_column("asset_id").sort()
    coverage = _coverage_change(record_a, record_b)
    totals = {
        "n_assets_a": a.height,
        "n_assets_b": b.height,
        "n_new": new.len(),
        "n_removed": removed.len(),
        "n_flipped": flipped.height,
    }
    return RunDiff(
        str(record_a.get("run_id")),
        str(record_b.get("run_id")),
        flipped,
        new,
        removed,
        coverage,
        totals,
    )


def _coverage_change(a: Mapping[str, Any], b: Mapping[str, Any]) -> pl.DataFrame:
    cov_a = {row["lf"]: row.get("coverage") for row in a.get("metrics", {}).get("lfs", [])}
    cov_b = {row["lf"]: row.get("coverage") for row in b.get("metrics", {}).get("lfs", [])}
    names: Sequence[str] = list(cov_b) + [n for n in cov_a if n not in cov_b]
    rows = [
        {
            "lf": name,
            "coverage_a": cov_a.get(name),
            "coverage_b": cov_b.get(name),
            "change": (
                cov_b[name] - cov_a[name]
                if cov_a.get(name) is not None and cov_b.get(name) is not None
                else None
            ),
        }
        for name in names
    ]
    schema = {
        "lf": pl.String,
        "coverage_a": pl.Float64,
        "coverage_b": pl.Float64,
        "change": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)


def _located(table: Any, storage_options: Mapping[str, Any] | None) -> Location:
    return Location.of(table, dict(storage_options) if storage_options else None)


def _require_table(path: Location) -> None:
    if not is_table(path):
        raise TableHistoryError(
            f"there is no Delta table at {str(path)!r}; run the job first (`enrich run job.toml`)"
        )
