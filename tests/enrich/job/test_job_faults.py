"""The job over damaged state and a full disk: derived data is rebuilt, state files are named
with their fix, and a committed run never reports failure (issue 13, items 4, 10, 11, 13,
15, 19)."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from embeddings.index import VectorIndex
from enrich.errors import CorruptStateError, DiskFullError, LFSourceError
from enrich.io.store import read_runs, read_table
from enrich.job.config import load_job_config
from enrich.job.index import load_run_index
from enrich.job.run import run_job

LFS = """
from labeling_functions import ABSTAIN, keyword_lf, labeling_function

check_out = keyword_lf("check_out", ["check out", "my channel", "subscribe"], label="SPAM")

@labeling_function(label="HAM")
def song(x):
    return "HAM" if "song" in (x.text or "").lower() else ABSTAIN
"""

JOB = """
[source]
path = "data/*.parquet"
text_column = "text"

[labeling_functions]
sources = ["lfs.py"]
classes = ["HAM", "SPAM"]

[embeddings]
enabled = {embeddings}

[gaps]
enabled = false

[output]
path = "{output}"
{output_extra}

[retention]
compact_every = {compact_every}
keep_reports = {keep_reports}
vacuum_after_days = 0
"""

PARTS = ((0, 40), (40, 80))


def job(make_job, root: Path, **fields) -> Path:
    defaults = {
        "embeddings": "false",
        "output": "out/enriched",
        "output_extra": "",
        "compact_every": 10,
        "keep_reports": 30,
    }
    return make_job(root, **{**defaults, **fields})


def add_part(root: Path, spam_data: pl.DataFrame, start: int, stop: int) -> None:
    spam_data.slice(start, stop - start).write_parquet(root / "data" / f"part-{start:04d}.parquet")


def table_of(config) -> pl.DataFrame:
    return read_table(config.output.path).sort("asset_id")


# -- derived data: the FAISS snapshot and the embedding cache ------------------------------
def test_a_corrupt_faiss_snapshot_is_moved_aside_and_rebuilt(tmp_path, make_job, spam_data):
    config = load_job_config(job(make_job, tmp_path, embeddings="true"))
    first = run_job(config, progress=False)
    snapshot = Path(first.record["embeddings"]["index_path"])
    faiss_file = snapshot / "index.faiss"
    data = bytearray(faiss_file.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = os.urandom(64)
    faiss_file.write_bytes(bytes(data))
    add_part(tmp_path, spam_data, 80, 100)
    second = run_job(config, progress=False)
    assert second.status == "succeeded"
    assert any("FAISS index snapshot" in w and "rebuilt" in w for w in second.warnings)
    assert any("FAISS index snapshot" in w for w in second.record["warnings"])
    assert list((Path(config.output.path).parent / "enriched_embeddings" / "corrupt").iterdir())
    rebuilt = VectorIndex.load(second.record["embeddings"]["index_path"])
    assert len(rebuilt) == 100
    third = run_job(config, progress=False)  # and the runs after it are clean
    assert third.status == "succeeded" and not third.warnings


def enrich_cli(*args: str) -> subprocess.CompletedProcess:
    """``enrich ARGS`` in a new process, as a nightly scheduler starts it."""
    command = [sys.executable, "-c", "from enrich.cli import main; main()", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_a_garbage_embedding_cache_is_moved_aside_and_rebuilt(tmp_path, make_job, spam_data):
    config = load_job_config(job(make_job, tmp_path, embeddings="true"))
    first = enrich_cli("--quiet", "run", str(tmp_path / "job.toml"))
    assert first.returncode == 0, first.stderr
    cache = Path(config.output.path).parent / "enriched_embeddings" / "embeddings.sqlite"
    data = bytearray(cache.read_bytes())
    data[:100] = b"\xde\xad\xbe\xef" * 25
    cache.write_bytes(bytes(data))
    add_part(tmp_path, spam_data, 80, 100)
    second = enrich_cli("--quiet", "run", str(tmp_path / "job.toml"))
    assert second.returncode == 0, second.stderr
    assert "embedding cache was unreadable" in second.stderr
    assert list(cache.parent.glob("embeddings.sqlite.corrupt-*"))
    assert table_of(config).height == 100


def test_overwritten_cached_vectors_never_reach_the_index(tmp_path, make_job):
    clean = load_job_config(job(make_job, tmp_path / "clean", embeddings="true"))
    damaged = load_job_config(job(make_job, tmp_path / "damaged", embeddings="true"))
    expected = run_job(clean, progress=False)
    assert enrich_cli("--quiet", "run", str(tmp_path / "damaged" / "job.toml")).returncode == 0
    cache = Path(damaged.output.path).parent / "enriched_embeddings" / "embeddings.sqlite"
    with sqlite3.connect(cache) as conn:
        blobs = [bytes(row[0]) for row in conn.execute("SELECT vector FROM vectors")]
    queries = np.stack([np.frombuffer(b, dtype="<f4") for b in blobs])
    data = bytearray(cache.read_bytes())
    for blob in blobs[:20]:  # 4 bytes inside each of 20 stored vectors: 80 bytes
        at = data.find(blob[:64])  # long vectors overflow SQLite pages: their start
        assert at >= 0
        data[at + 16 : at + 20] = b"\x00\x00\x80\x7f"
    cache.write_bytes(bytes(data))
    with sqlite3.connect(cache) as conn:  # SQLite's own check sees nothing wrong
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    snapshots = Path(damaged.output.path).parent / "enriched_embeddings" / "index"
    shutil.rmtree(snapshots)  # the index must be rebuilt, every vector from the cache

    second = enrich_cli("--quiet", "run", str(tmp_path / "damaged" / "job.toml"))
    assert second.returncode == 0, second.stderr
    (rebuilt,) = list(snapshots.iterdir())
    want = VectorIndex.load(expected.record["embeddings"]["index_path"]).search(queries, k=5)
    got = VectorIndex.load(rebuilt).search(queries, k=5)
    np.testing.assert_array_equal(got.ids, want.ids)
    np.testing.assert_allclose(got.similarities, want.similarities, atol=1e-5)


# -- state files: the Delta log, the runs table --------------------------------------------
def test_a_corrupt_delta_log_names_the_file_and_its_recovery_works(tmp_path, make_job):
    config = load_job_config(job(make_job, tmp_path))
    run_job(config, progress=False)
    run_job(config, progress=False, rerun_lfs="all")
    latest = Path(config.output.path) / "_delta_log" / f"{1:020d}.json"
    latest.write_text(latest.read_text()[:40])
    with pytest.raises(CorruptStateError) as caught:
        run_job(config, progress=False)
    message = str(caught.value)
    assert str(latest) in message and "version 0, the last good one" in message
    latest.rename(f"{latest}.corrupt")  # the recovery the message names
    again = run_job(config, progress=False)
    assert again.status == "succeeded" and again.table_version == 1


def test_a_deleted_latest_log_file_leaves_one_run_per_version(tmp_path, make_job):
    config = load_job_config(job(make_job, tmp_path))
    run_job(config, progress=False)
    lost = run_job(config, progress=False, rerun_lfs="all")
    (Path(config.output.path) / "_delta_log" / f"{1:020d}.json").unlink()
    again = run_job(config, progress=False)
    assert again.table_version == 1
    runs = read_runs(config.output.path, Path(config.output.path).with_name("enriched_runs"))
    status = dict(zip(runs["run_id"], runs["status"], strict=True))
    assert status[lost.run_id] == "lost" and status[again.run_id] == "succeeded"
    succeeded = runs.filter(pl.col("status") == "succeeded")
    assert succeeded.get_column("table_version").is_unique().all()


# -- a full disk ---------------------------------------------------------------------------
def fill(folder: Path, *, leave: int) -> Path:
    """Fill ``folder``'s file system until about ``leave`` bytes are free."""
    filler = folder / "filler.bin"
    free = shutil.disk_usage(folder).free
    with contextlib.suppress(OSError), filler.open("wb") as out:
        out.write(b"\0" * max(0, free - leave))
    return filler


def test_a_full_disk_says_no_space_cleans_up_and_the_next_run_recovers(
    tmp_path, make_job, spam_data, small_disk
):
    out = small_disk(tmp_path / "out", "3m")
    config = load_job_config(job(make_job, tmp_path))
    run_job(config, progress=False)
    files_before = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    add_part(tmp_path, spam_data, 80, 200)
    filler = fill(out, leave=4096)
    with pytest.raises(DiskFullError, match=f"no space left on {out}"):
        run_job(config, progress=False)
    left = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file() and p != filler)
    assert [p for p in left if p not in files_before] == []  # no temporary or data file left
    filler.unlink()
    again = run_job(config, progress=False)
    assert again.status == "succeeded" and again.counts["n_assets"] == 200
    assert table_of(config).height == 200


def test_reports_that_do_not_fit_do_not_fail_a_committed_run(
    tmp_path, make_job, spam_data, small_disk
):
    reports = small_disk(tmp_path / "reports", "1m")
    config = load_job_config(job(make_job, tmp_path, output_extra='reports_dir = "reports"'))
    run_job(config, progress=False)
    add_part(tmp_path, spam_data, 80, 120)
    filler = fill(reports, leave=0)
    second = run_job(config, progress=False)
    assert second.status == "succeeded" and second.table_version == 1
    assert any("committed table version 1" in w and "reports" in w for w in second.warnings), (
        second.warnings
    )
    assert not list(reports.glob(".*.partial"))
    filler.unlink()
    third = run_job(config, progress=False)  # writes the reports the second run could not
    assert (reports / f"{second.run_id}.html").is_file() and third.status == "succeeded"


# -- growth over time -----------------------------------------------------------------------
def test_retention_compacts_vacuums_and_keeps_the_last_reports(tmp_path, make_job, spam_data):
    config = load_job_config(job(make_job, tmp_path, compact_every=3, keep_reports=2))
    ids = []
    for i in range(6):
        add_part(tmp_path, spam_data, 80 + 5 * i, 85 + 5 * i)
        ids.append(run_job(config, progress=False).run_id)
    reports = Path(config.output.path).with_name("enriched_reports")
    kept = {p.name.split(".")[0].removesuffix("-review") for p in reports.glob("2*")}
    assert kept == set(ids[-2:])
    data_files = list(Path(config.output.path).glob("*.parquet"))
    assert len(data_files) < 6  # compacted and vacuumed: not one file per run
    assert table_of(config).height == 110
    runs = read_runs(config.output.path, Path(config.output.path).with_name("enriched_runs"))
    assert runs.get_column("run_id").to_list() == ids


# -- hostile LF files ----------------------------------------------------------------------
@pytest.mark.parametrize("code", ["0", "3"])
def test_an_lf_file_calling_sys_exit_is_a_clear_error_not_a_silent_exit(tmp_path, make_job, code):
    config = load_job_config(job(make_job, tmp_path))
    (tmp_path / "lfs.py").write_text(f"import sys\nsys.exit({code})\n")
    with pytest.raises(LFSourceError, match=rf"called sys.exit\({code}\) while importing"):
        run_job(config, progress=False)


# -- the index grows by small delta files, not a full snapshot per run ----------------------
def test_the_index_is_updated_incrementally_and_matches_a_full_build(tmp_path, make_job, spam_data):
    config = load_job_config(job(make_job, tmp_path / "inc", embeddings="true"))
    first = run_job(config, progress=False)
    base = first.record["embeddings"]["index_path"]
    for start in (80, 90):
        add_part(tmp_path / "inc", spam_data, start, start + 10)
        result = run_job(config, progress=False)
        assert result.record["embeddings"]["index_path"] == base  # no new full snapshot
    deltas = result.record["embeddings"]["index_deltas"]
    assert [d["rows"] for d in deltas] == [10, 10]
    assert len(list((Path(base) / "deltas").glob("*.npz"))) == 2
    snapshots = list((Path(config.output.path).parent / "enriched_embeddings" / "index").iterdir())
    assert len(snapshots) == 1

    full = load_job_config(
        job(make_job, tmp_path / "full", embeddings="true"),
    )
    add_part(tmp_path / "full", spam_data, 80, 90)
    add_part(tmp_path / "full", spam_data, 90, 100)
    whole = run_job(full, progress=False)
    queries = np.random.default_rng(0).normal(size=(8, 384)).astype(np.float32)
    again = run_job(config, progress=False)  # loads the snapshot plus both deltas
    assert again.counts["n_read"] == 0
    loaded = load_run_index(again.record["embeddings"])
    want = VectorIndex.load(whole.record["embeddings"]["index_path"]).search(queries, k=5)
    got = loaded.search(queries, k=5)
    assert len(loaded) == 100

    def assets(config, ids):  # index ids are numbered per run: compare the assets they name
        rows = table_of(config).select("index_id", "asset_id").rows()
        names = dict(rows)
        return [[names[i] for i in row] for row in ids.tolist()]

    assert assets(config, got.ids) == assets(full, want.ids)
    np.testing.assert_allclose(got.similarities, want.similarities, atol=1e-5)


def test_a_damaged_index_delta_is_moved_aside_and_the_index_rebuilt(tmp_path, make_job, spam_data):
    config = load_job_config(job(make_job, tmp_path, embeddings="true"))
    run_job(config, progress=False)
    add_part(tmp_path, spam_data, 80, 90)
    second = run_job(config, progress=False)
    (delta,) = second.record["embeddings"]["index_deltas"]
    file = Path(second.record["embeddings"]["index_path"]) / "deltas" / delta["file"]
    file.write_bytes(file.read_bytes()[:50])
    add_part(tmp_path, spam_data, 90, 95)
    third = run_job(config, progress=False)
    assert any("could not be read" in w and "rebuilt" in w for w in third.warnings)
    assert third.record["embeddings"]["index_deltas"] == []
    assert third.record["embeddings"]["n_indexed"] == 95
