"""The store on an S3 bucket (moto's server on 127.0.0.1): tables, runs, lock, recovery."""

from __future__ import annotations

import polars as pl
import pytest

from enrich.errors import CorruptStateError
from enrich.io.store import (
    JobPaths,
    RunLock,
    append_run,
    commit_enriched,
    compact_and_vacuum,
    latest_run,
    prune_reports,
    read_runs,
    read_table,
    reconcile_runs,
    run_records,
    table_version,
)


def rows(ids, label=0):
    return pl.DataFrame({"asset_id": ids, "label": [label] * len(ids)})


def record(run_id):
    return {"run_id": run_id, "counts": {"n_assets": 1}, "metrics": {"coverage": 0.5}}


@pytest.fixture
def paths(s3_bucket) -> JobPaths:
    bucket, options = s3_bucket
    return JobPaths.for_table(f"{bucket}/lake/enriched", storage_options=options)


def test_tables_and_runs_live_in_the_bucket(paths):
    assert str(paths.runs).endswith("/lake/enriched_runs") and paths.runs.storage_options
    assert table_version(paths.table) is None
    commit_enriched(paths.table, rows(["a"]), mode="create", read_version=None, record=record("r0"))
    append_run(paths.runs, 0, record("r0"))
    commit_enriched(paths.table, rows(["b"]), mode="merge", read_version=0, record=record("r1"))
    # the run r1 died before its runs-table row: the next run's recovery adds it
    assert read_runs(paths.table, paths.runs).get_column("run_id").to_list() == ["r0", "r1"]
    assert reconcile_runs(paths.table, paths.runs) == ["r1"]
    assert [r["run_id"] for _, r in run_records(paths.table)] == ["r0", "r1"]
    assert latest_run(paths.table)[0] == 1
    assert read_table(paths.table, version=0).get_column("asset_id").to_list() == ["a"]
    assert read_table(paths.table, asset_id="b").height == 1
    done = compact_and_vacuum(paths.table, vacuum_after_days=0)
    assert done["files_compacted"] == 2 and sorted(read_table(paths.table)["asset_id"]) == [
        "a",
        "b",
    ]


def test_the_lock_on_a_bucket_is_the_commit_itself(paths):
    """Two runs overlap freely; the second to commit is refused (nothing of it is visible)."""
    from enrich.errors import ConcurrentRunError

    with (
        RunLock(paths.lock, timeout=0, run_id="r1") as first,
        RunLock(paths.lock, timeout=0, run_id="r2") as second,  # no RunLockedError
    ):
        assert first.optimistic and second.optimistic
        v = commit_enriched(
            paths.table, rows(["a"]), mode="create", read_version=None, record=record("r1")
        )
        with pytest.raises(ConcurrentRunError):
            commit_enriched(
                paths.table, rows(["b"]), mode="create", read_version=None, record=record("r2")
            )
    assert v == 0 and read_table(paths.table).get_column("asset_id").to_list() == ["a"]
    assert not paths.lock.exists()  # nothing was written for the lock


def test_a_corrupt_log_file_in_the_bucket_is_named(paths):
    commit_enriched(paths.table, rows(["a"]), mode="create", read_version=None, record=record("r0"))
    commit_enriched(paths.table, rows(["b"]), mode="merge", read_version=0, record=record("r1"))
    log = paths.table / "_delta_log" / f"{1:020d}.json"
    log.write_text("{not json")
    with pytest.raises(CorruptStateError) as caught:
        read_table(paths.table)
    assert str(log) in str(caught.value) and "version 1, the latest" in str(caught.value)


def test_old_reports_are_pruned_in_the_bucket(paths):
    for run_id in ("20260101T000000Z-aa", "20260102T000000Z-bb"):
        for suffix in (".json", ".html", "-review.parquet"):
            (paths.reports / f"{run_id}{suffix}").write_text("x")
    (paths.reports / "latest.json").write_text("x")
    assert prune_reports(paths.reports, ["20260102T000000Z-bb"]) == 3
    assert sorted(f.name for f in paths.reports.iterdir()) == [
        "20260102T000000Z-bb-review.parquet",
        "20260102T000000Z-bb.html",
        "20260102T000000Z-bb.json",
        "latest.json",
    ]
