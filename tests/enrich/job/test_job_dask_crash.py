"""A SIGKILL of the driver or of a Dask worker mid-run leaves the previous table version intact,
and the next run completes the work (workers read and write their own partitions)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from enrich.datasets import load_youtube_spam
from enrich.io.store import read_table, run_records, table_version
from enrich.job._faults import KILL_AT_ENV
from enrich.job.config import load_job_config
from enrich.job.run import run_job
from enrich.labeling.engines import DaskEngine

pytestmark = pytest.mark.slow

LFS = """
import os, signal
from pathlib import Path
from labeling_functions import ABSTAIN, keyword_lf, labeling_function, regex_lf
check_out = keyword_lf("check_out", ["check out", "my channel", "subscribe"], label="SPAM")
link = regex_lf("link", r"https?://", label="SPAM")

@labeling_function(label="HAM")
def song(x):
    # a worker that runs this while the job folder holds no 'armed-off' file dies (SIGKILL)
    folder = Path(os.environ.get("ENRICH_TEST_JOB_DIR", "."))
    if (folder / "armed").exists() and not (folder / "armed-off").exists():
        os.kill(os.getpid(), signal.SIGKILL)
    try:  # ... and with a file 'once', the first worker to take it dies
        (folder / "once").rename(folder / "once-taken")
    except OSError:
        pass
    else:
        os.kill(os.getpid(), signal.SIGKILL)
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
[engine]
kind = "dask"
address = "{address}"
"""

PARTS = {"a.parquet": (0, 150), "b.parquet": (150, 300)}
CONTENT = ["run_id", "created_at", "model_version", "source_file"]
RUN = (
    "from enrich.job.config import load_job_config; from enrich.job.run import run_job; "
    "run_job(load_job_config('job.toml'), progress=False)"
)


@pytest.fixture(scope="module")
def client():
    import dask
    from dask.distributed import Client, LocalCluster

    # a task whose worker dies twice fails the run (the default retries it three times)
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 1}),
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


def content(root: Path) -> pl.DataFrame:
    return read_table(root / "out" / "enriched").drop(CONTENT).sort("asset_id")


def setup_job(make_job, root: Path, client) -> Path:
    """A table after one Dask run over two files, and a third file waiting for the next run."""
    job = make_job(root, address=client.scheduler.address)
    run_job(load_job_config(job), progress=False, engine=DaskEngine(client=client))
    load_youtube_spam().slice(300, 150).write_parquet(root / "data" / "c.parquet")
    return job


@pytest.fixture(scope="module")
def reference(tmp_path_factory, make_job, client):
    """The table before and after an uninterrupted second run."""
    root = tmp_path_factory.mktemp("reference")
    job = setup_job(make_job, root, client)
    before = content(root)
    run_job(load_job_config(job), progress=False, engine=DaskEngine(client=client))
    return before, content(root)


def point_workers_at(client, folder: Path) -> None:
    """Tell every worker process where the job folder is (the LF looks for 'armed' there)."""
    where = str(folder)
    client.run(lambda: os.environ.update(ENRICH_TEST_JOB_DIR=where))


def check_next_run_completes(job: Path, client, reference) -> None:
    after = reference[1]
    result = run_job(load_job_config(job), progress=False, engine=DaskEngine(client=client))
    assert result.status == "succeeded"
    final = content(job.parent)
    assert final.equals(after)
    assert final.get_column("asset_id").n_unique() == final.height == 450


@pytest.mark.parametrize("phase", ["voted", "fitted", "before_commit", "after_commit"])
def test_a_driver_killed_mid_run(tmp_path, make_job, client, reference, phase):
    job = setup_job(make_job, tmp_path, client)
    env = dict(os.environ) | {KILL_AT_ENV: phase}
    repo = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, env.get("PYTHONPATH")) if p)
    child = subprocess.run(
        [sys.executable, "-c", RUN], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    committed = phase == "after_commit"
    assert table_version(tmp_path / "out" / "enriched") == (1 if committed else 0)
    if not committed:  # the previous version, intact
        assert content(tmp_path).equals(reference[0])
    check_next_run_completes(job, client, reference)
    if committed:  # the next run had nothing left to read
        assert run_records(tmp_path / "out" / "enriched")[-1][1]["counts"]["n_files_read"] == 0


def test_a_worker_killed_mid_run(tmp_path, make_job, client, reference):
    job = setup_job(make_job, tmp_path, client)
    point_workers_at(client, tmp_path)
    (tmp_path / "armed").touch()  # every worker that votes dies, until it is disarmed
    with pytest.raises(Exception, match=r"(?i)killed|worker"):
        run_job(load_job_config(job), progress=False, engine=DaskEngine(client=client))
    assert table_version(tmp_path / "out" / "enriched") == 0
    assert content(tmp_path).equals(reference[0])
    (tmp_path / "armed-off").touch()
    point_workers_at(client, tmp_path)  # the workers started since
    check_next_run_completes(job, client, reference)


def test_a_worker_killed_once_the_run_completes(tmp_path, make_job, client, reference):
    job = setup_job(make_job, tmp_path, client)
    point_workers_at(client, tmp_path)
    (tmp_path / "once").touch()
    check_next_run_completes(job, client, reference)  # its task ran again on another worker
    assert (tmp_path / "once-taken").exists()
