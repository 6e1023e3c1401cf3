"""A driver SIGKILLed mid-run with ``[embeddings]`` and ``[end_model]`` on the Dask workers
leaves the previous table version intact (the vector files and index snapshot it wrote stay
unreferenced), and the next run completes the work."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from enrich.io.store import read_table, table_version
from enrich.job._faults import KILL_AT_ENV
from enrich.job.config import load_job_config
from enrich.job.index import load_run_index
from enrich.job.run import run_job
from enrich.labeling.engines import DaskEngine

pytestmark = pytest.mark.slow

LFS = """
from labeling_functions import keyword_lf, regex_lf
check_out = keyword_lf("check_out", ["check out", "my channel", "subscribe"], label="SPAM")
link = regex_lf("link", r"https?://", label="SPAM")
song = keyword_lf("song", ["song", "love this"], label="HAM")
"""

JOB = """
[source]
path = "data/*.parquet"
text_column = "text"
embedding_column = "vector"
slice_columns = ["video"]
[labeling_functions]
sources = ["lfs.py"]
classes = ["HAM", "SPAM"]
[gold]
column = "label"
[embeddings]
enabled = true
encoder = "precomputed"
[end_model]
enabled = true
feature_columns = ["n_chars"]
max_train_rows = 100
cv = 3
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


def edit_source(name: str, rows: pl.DataFrame) -> pl.DataFrame:
    text = pl.col("text")
    flags = [text.str.contains(p).cast(pl.Float32) for p in ("(?i)check", "(?i)song", "http")]
    return rows.with_columns(
        text.str.len_chars().cast(pl.Int64).alias("n_chars"),
        pl.concat_list([*flags, pl.lit(1.0, dtype=pl.Float32)]).alias("vector"),
    )


def content(root: Path) -> pl.DataFrame:
    return read_table(root / "out" / "enriched").drop(CONTENT).sort("asset_id")


def setup_job(make_job, root: Path, client, spam_data) -> Path:
    """A table after one Dask run over two files, and a third file waiting for the next run."""
    job = make_job(root, address=client.scheduler.address)
    run_job(load_job_config(job), progress=False, engine=DaskEngine(client=client))
    edit_source("c", spam_data.slice(300, 150)).write_parquet(root / "data" / "c.parquet")
    return job


@pytest.fixture(scope="module")
def reference(tmp_path_factory, make_job, client, spam_data):
    """The table before and after an uninterrupted second run."""
    root = tmp_path_factory.mktemp("reference")
    job = setup_job(make_job, root, client, spam_data)
    before = content(root)
    run_job(load_job_config(job), progress=False, engine=DaskEngine(client=client))
    return before, content(root)


@pytest.mark.parametrize("phase", ["fitted", "enriched", "before_commit"])
def test_a_driver_killed_mid_run(tmp_path, make_job, client, reference, spam_data, phase):
    job = setup_job(make_job, tmp_path, client, spam_data)
    env = dict(os.environ) | {KILL_AT_ENV: phase}
    repo = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, env.get("PYTHONPATH")) if p)
    child = subprocess.run(
        [sys.executable, "-c", RUN], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    assert table_version(tmp_path / "out" / "enriched") == 0
    assert content(tmp_path).equals(reference[0])  # the previous version, intact
    result = run_job(load_job_config(job), progress=False, engine=DaskEngine(client=client))
    assert result.status == "succeeded"
    final = content(tmp_path)
    assert final.equals(reference[1])
    assert final.get_column("asset_id").n_unique() == final.height == 450
    index = load_run_index(result.record["embeddings"])
    assert set(index.ids.tolist()) == set(final.get_column("index_id").to_list())
