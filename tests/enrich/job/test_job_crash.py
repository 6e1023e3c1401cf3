"""Killing a run at any moment (SIGKILL) leaves the previous table version intact and readable,
and the next run completes the work with no duplicates."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from enrich.datasets import load_youtube_spam
from enrich.io.store import JobPaths, read_runs, read_table, run_records, table_version
from enrich.job._faults import KILL_AT_ENV
from enrich.job.config import load_job_config
from enrich.job.run import run_job

pytestmark = pytest.mark.slow

LFS = """
from labeling_functions import ABSTAIN, keyword_lf, labeling_function, regex_lf
check_out = keyword_lf("check_out", ["check out", "my channel", "subscribe"], label="SPAM")
link = regex_lf("link", r"https?://", label="SPAM")

@labeling_function(label="HAM")
def song(x):
    return "HAM" if "song" in (x.text or "").lower() else ABSTAIN
"""

JOB = """
[source]
path = "data/*.parquet"
text_column = "text"
slice_columns = ["video"]
[labeling_functions]
sources = ["lfs.py"]
classes = ["HAM", "SPAM"]
[gold]
column = "label"
[output]
path = "out/enriched"
lock_timeout = 30
"""

RUN = (
    "from enrich.job.config import load_job_config; from enrich.job.run import run_job; "
    "run_job(load_job_config('job.toml'), progress=False)"
)
# Columns that say what the table holds (lineage columns differ from run to run).
CONTENT = ["run_id", "created_at", "model_version", "source_file"]


PARTS = {"a.parquet": (0, 150), "b.parquet": (150, 300)}


def setup_job(make_job, root: Path) -> Path:
    """A table after one run over two files, and a third file waiting for the next run."""
    job = make_job(root)
    run_job(load_job_config(job), progress=False)
    load_youtube_spam().slice(300, 150).write_parquet(root / "data" / "c.parquet")
    return job


def content(path: Path) -> pl.DataFrame:
    return read_table(path).drop(CONTENT).sort("asset_id")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, make_job):
    """The table an uninterrupted second run leaves."""
    job = setup_job(make_job, tmp_path_factory.mktemp("reference"))
    before = content(job.parent / "out" / "enriched")
    run_job(load_job_config(job), progress=False)
    return before, content(job.parent / "out" / "enriched")


def start_run(job: Path, kill_at: str | None = None) -> subprocess.Popen:
    env = dict(os.environ)
    env.pop(KILL_AT_ENV, None)
    repo = str(Path(__file__).resolve().parents[3])  # this checkout, whatever the cwd
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, env.get("PYTHONPATH")) if p)
    if kill_at:
        env[KILL_AT_ENV] = kill_at
    return subprocess.Popen(
        [sys.executable, "-c", RUN],
        cwd=job.parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def check_recovery(job: Path, reference) -> None:
    """The table is one of the two committed states; the next run finishes the work."""
    before, after = reference
    table = job.parent / "out" / "enriched"
    version = table_version(table)
    assert version in (0, 1)
    assert content(table).equals(before if version == 0 else after)
    result = run_job(load_job_config(job), progress=False)  # the next run completes
    final = content(table)
    assert final.equals(after)
    assert final.get_column("asset_id").n_unique() == final.height == 450
    committed = [r["run_id"] for _, r in run_records(table)]
    listed = read_runs(table, JobPaths.for_table(table).runs).get_column("run_id").to_list()
    assert listed == committed and result.run_id == committed[-1]
    reports = JobPaths.for_table(table).reports
    for run_id in committed:  # reports of runs killed after their commit are written later
        assert (reports / f"{run_id}.json").is_file() and (reports / f"{run_id}.html").is_file()


@pytest.mark.parametrize("phase", ["before_commit", "after_commit", "after_runs"])
def test_kill_at_a_named_phase(tmp_path, reference, phase, make_job):
    job = setup_job(make_job, tmp_path)
    child = start_run(job, kill_at=phase)
    _, err = child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL, err
    expected = 1 if phase in ("after_commit", "after_runs") else 0
    assert table_version(job.parent / "out" / "enriched") == expected
    check_recovery(job, reference)


@pytest.mark.parametrize("delay", [1.0, 2.5])
def test_kill_after_a_delay(tmp_path, reference, delay, make_job):
    job = setup_job(make_job, tmp_path)
    child = start_run(job)
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=120)
    check_recovery(job, reference)
