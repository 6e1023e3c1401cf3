import json
import os
import signal
import subprocess
import sys
import threading
import time

import polars as pl
import pytest
from deltalake import DeltaTable

from enrich.io.store import (
    RUN_METADATA_KEY,
    ConcurrentRunError,
    JobPaths,
    RunLock,
    RunLockedError,
    TableHistoryError,
    append_run,
    commit_enriched,
    latest_run,
    read_runs,
    read_table,
    reconcile_runs,
    run_records,
    table_schema,
    table_version,
)


def rows(ids, label=0):
    return pl.DataFrame({"asset_id": ids, "label": [label] * len(ids)})


def record(run_id, **extra):
    return {"run_id": run_id, "counts": {"n_assets": 1}, "metrics": {"coverage": 0.5}, **extra}


def test_paths_sit_beside_the_table(tmp_path):
    paths = JobPaths.for_table(tmp_path / "out" / "enriched")
    assert paths.runs == tmp_path / "out" / "enriched_runs"
    assert paths.reports == tmp_path / "out" / "enriched_reports"
    assert paths.embeddings == tmp_path / "out" / "enriched_embeddings"
    assert paths.lock == tmp_path / "out" / ".enriched.lock"
    custom = JobPaths.for_table(tmp_path / "t", runs=tmp_path / "r")
    assert custom.runs == tmp_path / "r"


def test_each_write_is_one_commit_carrying_its_run_record(tmp_path):
    table = tmp_path / "t"
    assert table_version(table) is None
    v0 = commit_enriched(
        table, rows(["a", "b"]), mode="create", read_version=None, record=record("r1")
    )
    v1 = commit_enriched(
        table, rows(["b", "c"], 1), mode="merge", read_version=v0, record=record("r2")
    )
    v2 = commit_enriched(table, rows([]), mode="append", read_version=v1, record=record("r3"))
    assert (v0, v1, v2) == (0, 1, 2)
    current = read_table(table).sort("asset_id")
    assert current.rows() == [("a", 0), ("b", 1), ("c", 1)]  # upsert by asset id
    assert [(v, r["run_id"]) for v, r in run_records(table)] == [(0, "r1"), (1, "r2"), (2, "r3")]
    assert latest_run(table)[0] == 2
    history = DeltaTable(str(table)).history()
    assert json.loads(history[0][RUN_METADATA_KEY])["run_id"] == "r3"
    # time travel reads what each run left
    assert read_table(table, version=0).height == 2
    assert read_table(table, version=1, asset_id="c").rows() == [("c", 1)]
    assert table_schema(table) == {"asset_id": pl.String, "label": pl.Int64}


def test_overwrite_replaces_rows_and_schema(tmp_path):
    table = tmp_path / "t"
    commit_enriched(table, rows(["a", "b"]), mode="create", read_version=None, record=record("r1"))
    new = pl.DataFrame({"asset_id": ["a"], "vote_x": [1]})
    commit_enriched(table, new, mode="overwrite", read_version=0, record=record("r2"))
    assert read_table(table).rows() == [("a", 1)]
    assert read_table(table, version=0).height == 2


def test_a_commit_on_a_stale_version_is_refused_and_writes_nothing(tmp_path):
    table = tmp_path / "t"
    commit_enriched(table, rows(["a"]), mode="create", read_version=None, record=record("r1"))
    commit_enriched(table, rows(["b"]), mode="merge", read_version=0, record=record("r2"))
    with pytest.raises(ConcurrentRunError, match="someone else committed"):
        commit_enriched(table, rows(["c"]), mode="merge", read_version=0, record=record("r3"))
    with pytest.raises(ConcurrentRunError):
        commit_enriched(table, rows(["c"]), mode="create", read_version=None, record=record("r3"))
    assert table_version(table) == 1
    assert sorted(read_table(table).get_column("asset_id")) == ["a", "b"]


def test_reading_a_missing_table_or_version_is_clear(tmp_path):
    with pytest.raises(TableHistoryError, match="there is no Delta table"):
        read_table(tmp_path / "nope")
    table = tmp_path / "t"
    commit_enriched(table, rows(["a"]), mode="create", read_version=None, record=record("r1"))
    with pytest.raises(TableHistoryError, match="cannot read version 5"):
        read_table(table, version=5)


def test_runs_table_is_rebuilt_from_commit_metadata(tmp_path):
    paths = JobPaths.for_table(tmp_path / "t")
    commit_enriched(paths.table, rows(["a"]), mode="create", read_version=None, record=record("r1"))
    append_run(paths.runs, 0, record("r1"))
    # a run that died between its commit and its runs row:
    commit_enriched(paths.table, rows(["b"]), mode="merge", read_version=0, record=record("r2"))
    listed = read_runs(paths.table, paths.runs)
    assert listed.get_column("run_id").to_list() == ["r1", "r2"]
    assert listed.get_column("table_version").to_list() == [0, 1]
    assert reconcile_runs(paths.table, paths.runs) == ["r2"]
    assert reconcile_runs(paths.table, paths.runs) == []
    stored = pl.from_arrow(DeltaTable(str(paths.runs)).to_pyarrow_table()).sort("table_version")
    assert stored.get_column("run_id").to_list() == ["r1", "r2"]
    assert stored.get_column("coverage").to_list() == [0.5, 0.5]


def test_lock_refuses_a_second_holder_with_a_clear_message(tmp_path):
    lock_path = tmp_path / ".t.lock"
    with RunLock(lock_path, timeout=0, run_id="first", target="out/t"):
        start = time.monotonic()
        with pytest.raises(RunLockedError) as caught, RunLock(lock_path, timeout=0.3):
            pass
        assert time.monotonic() - start >= 0.3
    message = str(caught.value)
    assert "run first" in message and f"pid {os.getpid()}" in message
    assert "out/t" not in message or "waited 0.3 s" in message
    assert "output.lock_timeout" in message
    with RunLock(lock_path, timeout=0, run_id="third"):  # free again
        pass


def test_a_waiting_run_gets_the_lock_when_the_first_finishes(tmp_path):
    lock_path = tmp_path / ".t.lock"
    first = RunLock(lock_path, timeout=0, run_id="first").__enter__()
    timer = threading.Timer(0.3, first.__exit__, args=(None, None, None))
    timer.start()
    with RunLock(lock_path, timeout=10, run_id="second"):
        pass
    timer.join()


def test_a_killed_holder_never_leaves_a_stale_lock(tmp_path):
    lock_path = tmp_path / ".t.lock"
    code = (
        "import sys, time; from enrich.io.store import RunLock\n"
        f"lock = RunLock({str(lock_path)!r}, timeout=0, run_id='doomed').__enter__()\n"
        "print('locked', flush=True); time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match="run doomed"):
            RunLock(lock_path, timeout=0).__enter__()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    with RunLock(lock_path, timeout=5, run_id="next"):
        pass
