"""Store faults: corrupt logs and run records are named with their fix, lost commits are
reconciled, a full disk says so, and retention keeps the files in check (issue 13)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest
from deltalake import CommitProperties, write_deltalake

from enrich.errors import CorruptStateError, DiskFullError
from enrich.io.store import (
    RUN_METADATA_KEY,
    JobPaths,
    append_run,
    commit_enriched,
    compact_and_vacuum,
    latest_run,
    prune_reports,
    read_runs,
    read_table,
    reconcile_runs,
    table_version,
)


def rows(ids, label=0):
    return pl.DataFrame({"asset_id": ids, "label": [label] * len(ids)})


def record(run_id):
    return {"run_id": run_id, "counts": {"n_assets": 1}, "metrics": {"coverage": 0.5}}


def three_versions(tmp_path: Path) -> Path:
    table = tmp_path / "t"
    commit_enriched(table, rows(["a"]), mode="create", read_version=None, record=record("r0"))
    commit_enriched(table, rows(["b"]), mode="merge", read_version=0, record=record("r1"))
    commit_enriched(table, rows(["c"]), mode="merge", read_version=1, record=record("r2"))
    return table


def log_file(table: Path, version: int) -> Path:
    return table / "_delta_log" / f"{version:020d}.json"


def test_a_corrupt_latest_log_file_is_named_with_the_way_back(tmp_path):
    table = three_versions(tmp_path)
    latest = log_file(table, 2)
    latest.write_text(latest.read_text()[:50])
    for read in (
        lambda: table_version(table),
        lambda: read_table(table),
        lambda: latest_run(table),
    ):
        with pytest.raises(CorruptStateError) as caught:
            read()
        message = str(caught.value)
        assert str(latest) in message and "version 1, the last good one" in message
        assert "Kernel error" not in message
    latest.rename(f"{latest}.corrupt")  # the recovery the message gives
    assert table_version(table) == 1
    assert sorted(read_table(table).get_column("asset_id")) == ["a", "b"]


def test_a_corrupt_older_log_file_is_named(tmp_path):
    table = three_versions(tmp_path)
    middle = log_file(table, 1)
    middle.write_bytes(b"\x00garbage{")
    with pytest.raises(CorruptStateError, match=r"00000000000000000001\.json \(version 1 of 2\)"):
        read_table(table)


def test_an_unreadable_run_record_is_named_with_its_file(tmp_path):
    table = tmp_path / "t"
    commit_enriched(table, rows(["a"]), mode="create", read_version=None, record=record("r0"))
    properties = CommitProperties(custom_metadata={RUN_METADATA_KEY: '{"run_id": "r1'})
    write_deltalake(str(table), rows(["b"]).to_arrow(), mode="append", commit_properties=properties)
    with pytest.raises(CorruptStateError) as caught:
        latest_run(table)
    message = str(caught.value)
    assert str(log_file(table, 1)) in message and "version 0" in message


def test_a_deleted_latest_log_file_leaves_one_run_per_version(tmp_path):
    paths = JobPaths.for_table(tmp_path / "t")
    commit_enriched(paths.table, rows(["a"]), mode="create", read_version=None, record=record("r0"))
    append_run(paths.runs, 0, record("r0"))
    commit_enriched(paths.table, rows(["b"]), mode="merge", read_version=0, record=record("r1"))
    append_run(paths.runs, 1, record("r1"))
    log_file(paths.table, 1).unlink()  # the latest commit is lost
    commit_enriched(paths.table, rows(["c"]), mode="merge", read_version=0, record=record("r2"))
    append_run(paths.runs, 1, record("r2"))
    assert reconcile_runs(paths.table, paths.runs) == []
    runs = read_runs(paths.table, paths.runs)
    succeeded = runs.filter(pl.col("status") == "succeeded")
    assert succeeded.get_column("table_version").is_unique().all()
    assert dict(zip(runs["run_id"], runs["status"], strict=True)) == {
        "r0": "succeeded",
        "r1": "lost",
        "r2": "succeeded",
    }


def test_an_unreadable_runs_table_is_rebuilt_from_the_commits(tmp_path):
    paths = JobPaths.for_table(tmp_path / "t")
    commit_enriched(paths.table, rows(["a"]), mode="create", read_version=None, record=record("r0"))
    append_run(paths.runs, 0, record("r0"))
    log_file(paths.runs, 0).write_text("{not json")
    assert reconcile_runs(paths.table, paths.runs) == ["r0"]
    assert read_runs(paths.table, paths.runs).get_column("run_id").to_list() == ["r0"]
    assert list(paths.runs.parent.glob(f"{paths.runs.name}.corrupt-*"))


def test_a_commit_on_a_full_disk_says_no_space_and_leaves_no_data_file(small_disk, tmp_path):
    folder = small_disk(tmp_path / "small", "512k")
    table = folder / "t"
    commit_enriched(table, rows(["a"]), mode="create", read_version=None, record=record("r0"))
    files_before = sorted(p.name for p in table.glob("*.parquet"))
    big = pl.DataFrame({"asset_id": [os.urandom(32).hex() for _ in range(40_000)], "label": 0})

    with pytest.raises(DiskFullError, match=f"no space left on {folder}"):
        commit_enriched(table, big, mode="merge", read_version=0, record=record("r1"))
    assert sorted(p.name for p in table.glob("*.parquet")) == files_before
    assert table_version(table) == 0


def test_compact_and_vacuum_shrink_the_file_count(tmp_path):
    table = tmp_path / "t"
    commit_enriched(table, rows(["a0"]), mode="create", read_version=None, record=record("r0"))
    for i in range(1, 12):
        commit_enriched(
            table, rows([f"a{i}"]), mode="append", read_version=i - 1, record=record(f"r{i}")
        )
    before = len(list(table.glob("*.parquet")))
    done = compact_and_vacuum(table, vacuum_after_days=0)
    after = len(list(table.glob("*.parquet")))
    assert before == 12 and after < before and done["files_vacuumed"] >= 1
    assert read_table(table).height == 12
    assert latest_run(table)[1]["run_id"] == "r11"


def test_prune_reports_keeps_the_last_runs_and_latest(tmp_path):
    runs = ["20260101T000000Z-aaaaaa", "20260102T000000Z-bbbbbb", "20260103T000000Z-cccccc"]
    for run in runs:
        (tmp_path / f"{run}.json").write_text(json.dumps({"run_id": run}))
        (tmp_path / f"{run}.html").write_text("<html></html>")
    (tmp_path / f"{runs[2]}-review.parquet").write_bytes(b"x")
    (tmp_path / "latest.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("not a report")
    assert prune_reports(tmp_path, [runs[2]]) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"{runs[2]}-review.parquet",
        f"{runs[2]}.html",
        f"{runs[2]}.json",
        "latest.json",
        "notes.txt",
    ]
