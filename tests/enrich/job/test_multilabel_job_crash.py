"""Killing a two-task run (multi-class spam, multi-label topics) at a named phase leaves the
previous table version intact; the next run completes the work, as an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from enrich.datasets import load_youtube_spam
from enrich.io.store import JobPaths, read_runs, read_table, run_records, table_version
from enrich.job._faults import KILL_AT_ENV
from enrich.job.config import load_job_config
from enrich.job.run import run_job

from .test_multilabel_job import TASKS_JOB, TOPIC_LFS

pytestmark = pytest.mark.slow

JOB = TASKS_JOB
LFS = TOPIC_LFS
PARTS = {"a.parquet": (0, 150), "b.parquet": (150, 300)}
RUN = (
    "from enrich.job.config import load_job_config; from enrich.job.run import run_job; "
    "run_job(load_job_config('job.toml'), progress=False)"
)
LINEAGE = ["run_id", "created_at", "model_version", "source_file"]


def setup_job(make_job, root: Path) -> Path:
    job = make_job(root)
    run_job(load_job_config(job), progress=False)
    load_youtube_spam().slice(300, 150).write_parquet(root / "data" / "c.parquet")
    return job


def content(job: Path) -> pl.DataFrame:
    return read_table(job.parent / "out" / "enriched").drop(LINEAGE).sort("asset_id")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, make_job):
    job = setup_job(make_job, tmp_path_factory.mktemp("reference"))
    before = content(job)
    run_job(load_job_config(job), progress=False)
    return before, content(job)


@pytest.mark.parametrize("phase", ["fitted", "before_commit", "after_commit"])
def test_kill_a_two_task_run_at_a_named_phase(tmp_path, reference, phase, make_job):
    job = setup_job(make_job, tmp_path)
    env = {**os.environ, KILL_AT_ENV: phase}
    repo = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, env.get("PYTHONPATH")) if p)
    child = subprocess.run(
        [sys.executable, "-c", RUN], cwd=job.parent, env=env, capture_output=True, text=True
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    table = job.parent / "out" / "enriched"
    before, after = reference
    version = table_version(table)
    assert version == (1 if phase == "after_commit" else 0)
    assert content(job).equals(before if version == 0 else after)
    result = run_job(load_job_config(job), progress=False)
    final = content(job)
    assert final.equals(after) and final.get_column("asset_id").n_unique() == 450
    committed = [r["run_id"] for _, r in run_records(table)]
    listed = read_runs(table, JobPaths.for_table(table).runs).get_column("run_id").to_list()
    assert listed == committed and result.run_id == committed[-1]
    reports = JobPaths.for_table(table).reports
    for run_id in committed:
        assert (reports / f"{run_id}.html").is_file()
