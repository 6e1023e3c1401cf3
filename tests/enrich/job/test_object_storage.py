"""The whole job against an S3 server (moto, on 127.0.0.1): the same output as on local paths.

Source files, the enriched table, the runs table, the reports, the review queue, the
embedding cache and the FAISS index all live in a bucket; every run is compared with the
same job run on local folders.
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from embeddings.cache import ShardedEmbeddingCache
from enrich._internal.uri import Location, fsspec_filesystem, fsspec_options
from enrich.datasets import load_youtube_spam
from enrich.errors import ConcurrentRunError
from enrich.io.lineage import runs
from enrich.io.store import commit_enriched, read_runs, read_table, table_version
from enrich.job.config import load_job_config
from enrich.job.index import load_run_index
from enrich.job.run import run_job

LFS = """
from labeling_functions import ABSTAIN, expression_lf, keyword_lf, labeling_function, regex_lf
from embeddings.text import TextEncoder
from labeling_functions.embedding_lfs import prototype_lf
import polars as pl

check_out = keyword_lf("check_out", ["check out", "my channel", "subscribe"], label="SPAM")
link = regex_lf("link", r"https?://|www\\.", label="SPAM", ignore_case=True)
short = expression_lf("short", pl.col("text").str.len_chars() <= 25, label="HAM")

@labeling_function(label="HAM")
def song(x):
    return "HAM" if "song" in (x.text or "").lower() else ABSTAIN

near_song = prototype_lf(
    "near_song", TextEncoder().encode(["I love this song"]), label="HAM", threshold=0.3
)
"""

JOB = """
[source]
path = "{data}/*.parquet"
text_column = "text"
slice_columns = ["video"]

[labeling_functions]
sources = ["lfs.py"]
classes = ["HAM", "SPAM"]

[gaps]
min_slice_size = 10
min_confident = 400
candidates_per_gap = 3

[embeddings]
enabled = true
batch_size = 32

[output]
path = "{out}/enriched"
{storage}
"""

PARTS = ((0, 60), (60, 100))
# columns that name the run or where the source file is (the rest must be identical)
RUN_COLUMNS = ("run_id", "created_at", "source_file")


def storage_section(options: dict[str, str]) -> str:
    pairs = ", ".join(f"{key} = {json.dumps(value)}" for key, value in options.items())
    return f"\n[storage]\noptions = {{ {pairs} }}\n"


def content(table: str | Location) -> pl.DataFrame:
    frame = read_table(table).sort("asset_id")
    return frame.drop([c for c in RUN_COLUMNS if c in frame.columns])


@pytest.fixture
def jobs(tmp_path, make_job, s3_bucket):
    """The same job twice: on local folders, and on the bucket (its data uploaded there)."""
    bucket, options = s3_bucket
    local = make_job(
        tmp_path / "local", parts=PARTS, job=JOB, lfs=LFS, data="data", out="out", storage=""
    )
    remote = make_job(
        tmp_path / "remote",
        parts=PARTS,
        job=JOB,
        lfs=LFS,
        data=f"{bucket}/data",
        out=f"{bucket}/out",
        storage=storage_section(options),
    )
    fs = fsspec_filesystem(bucket, options)
    for file in sorted((tmp_path / "remote" / "data").iterdir()):
        fs.put_file(str(file), f"{bucket[5:]}/data/{file.name}")
    return local, remote, bucket, options, fs


@pytest.mark.slow
def test_the_whole_job_on_s3_equals_the_same_job_on_local_paths(tmp_path, jobs):
    local_job, remote_job, bucket, options, fs = jobs
    local, remote = load_job_config(local_job), load_job_config(remote_job)
    table = Location.of(f"{bucket}/out/enriched", options)

    # the full run
    first_local = run_job(local, progress=False)
    first = run_job(remote, progress=False)
    assert first.status == "succeeded" and first.table_version == 0
    assert str(first.table_path) == f"{bucket}/out/enriched"
    assert content(table).equals(content(local.output.path))
    sources = read_table(table).get_column("source_file").unique().sort().to_list()
    assert sources == [f"{bucket}/data/part-000.parquet", f"{bucket}/data/part-001.parquet"]
    assert not (tmp_path / "remote" / "out").exists()  # nothing written locally

    # the reports and the review queue, in the bucket
    summary = json.loads(first.summary_path.read_text())
    assert summary["status"] == "succeeded" and summary["table"]["version"] == 0
    assert "<html" in (first.report_path.parent / "latest.html").read_text().lower()
    queue = pl.read_parquet(str(first.review_path), storage_options=table.delta_options())
    local_queue = pl.read_parquet(first_local.review_path)
    assert queue.get_column("asset_id").to_list() == local_queue.get_column("asset_id").to_list()

    # the embedding cache (Parquet shards) and the FAISS index, in the bucket
    embedded = first.record["embeddings"]
    assert embedded["n_embedded"] == 100 and embedded["index_path"].startswith(f"{bucket}/out/")
    cache_uri = f"{bucket}/out/enriched_embeddings"
    cache = ShardedEmbeddingCache(cache_uri, storage_options=fsspec_options(cache_uri, options))
    assert len(cache) == 100
    assert len(load_run_index(embedded, storage_options=options)) == 100

    # a +1% run: one new file, on both sides
    new_rows = load_youtube_spam().slice(100, 20)
    new_rows.write_parquet(tmp_path / "local" / "data" / "part-002.parquet")
    with fs.open(f"{bucket[5:]}/data/part-002.parquet", "wb") as out:
        new_rows.write_parquet(out)
    second_local = run_job(local, progress=False)
    second = run_job(remote, progress=False)
    assert second.counts["n_new"] == 20 and second.counts["n_read"] == 20
    assert second.counts == second_local.counts
    assert second.record["embeddings"]["n_embedded"] == 20
    assert len(cache) == 120  # only the new texts were encoded
    assert content(table).equals(content(local.output.path))
    assert len(load_run_index(second.record["embeddings"], storage_options=options)) == 120

    # nothing new: nothing read, nothing encoded, the index reused
    third = run_job(remote, progress=False)
    assert third.counts["n_read"] == 0 and third.record["embeddings"]["n_embedded"] == 0
    assert third.record["embeddings"]["index_path"] == second.record["embeddings"]["index_path"]
    assert table_version(table) == 2

    # lineage and the runs table read from the bucket
    listed = runs(str(table), storage_options=options).table.get_column("run_id").to_list()
    assert listed == [first.run_id, second.run_id, third.run_id]
    assert read_runs(table, table.with_name("enriched_runs")).height == 3

    # the command line reads the bucket with the job's [storage] options
    from typer.testing import CliRunner

    from enrich.cli import app

    shown = CliRunner().invoke(app, ["runs", "--job", str(remote_job), "--json"])
    assert shown.exit_code == 0, shown.output
    assert [r["run_id"] for r in json.loads(shown.stdout)] == listed
    asset = str(read_table(table).get_column("asset_id")[0])
    shown = CliRunner().invoke(app, ["history", asset, "--job", str(remote_job), "--json"])
    assert shown.exit_code == 0 and len(json.loads(shown.stdout)) == 3


def test_a_commit_on_top_of_an_old_version_is_refused_on_s3(s3_bucket):
    """No file lock on an object store: the commit itself refuses a run that was overtaken."""
    bucket, options = s3_bucket
    table = Location.of(f"{bucket}/t", options)
    rows = pl.DataFrame({"asset_id": ["a", "b"], "x": [1, 2]})
    assert (
        commit_enriched(table, rows, mode="create", read_version=None, record={"run_id": "a"}) == 0
    )
    assert commit_enriched(table, rows, mode="merge", read_version=0, record={"run_id": "b"}) == 1
    with pytest.raises(ConcurrentRunError, match="someone else committed"):
        commit_enriched(table, rows, mode="merge", read_version=0, record={"run_id": "c"})
    with pytest.raises(ConcurrentRunError):
        commit_enriched(table, rows, mode="create", read_version=None, record={"run_id": "d"})
    assert table_version(table) == 1


# -- the Dask engine: workers read and write the bucket themselves ---------------------------
DASK_JOB = """
[source]
path = "{data}/*.parquet"
text_column = "text"
slice_columns = ["video"]

[labeling_functions]
sources = ["lfs.py"]
classes = ["HAM", "SPAM"]

[gold]
column = "label"

[gaps]
min_slice_size = 10

[output]
path = "{out}/enriched"

[engine]
kind = "{kind}"
partition_size = 70
"""

DASK_LFS = LFS.split("\nnear_song")[0].replace(
    "from embeddings.text import TextEncoder\nfrom labeling_functions.embedding_lfs import "
    "prototype_lf\n",
    "",
)


@pytest.mark.slow
def test_the_dask_engine_on_s3_with_credentials_from_the_environment(
    tmp_path, make_job, s3_bucket, monkeypatch
):
    """The job names only s3:// paths; the driver and every worker take the credentials from
    the environment (as delta-rs, polars, pyarrow and s3fs each do) and equal the local run."""
    from dask.distributed import Client, LocalCluster

    from enrich.labeling.engines import DaskEngine

    bucket, options = s3_bucket
    for name, value in {
        "AWS_ENDPOINT_URL": options["aws_endpoint_url"],
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }.items():
        monkeypatch.setenv(name, value)
    local_job = make_job(
        tmp_path / "local",
        parts=PARTS,
        job=DASK_JOB,
        lfs=DASK_LFS,
        data="data",
        out="out",
        kind="local",
    )
    remote_job = make_job(
        tmp_path / "remote",
        parts=PARTS,
        job=DASK_JOB,
        lfs=DASK_LFS,
        data=f"{bucket}/data",
        out=f"{bucket}/out",
        kind="dask",
    )
    fs = fsspec_filesystem(bucket)
    for file in sorted((tmp_path / "remote" / "data").iterdir()):
        fs.put_file(str(file), f"{bucket[5:]}/data/{file.name}")
    local, remote = load_job_config(local_job), load_job_config(remote_job)
    table = f"{bucket}/out/enriched"
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        engine = DaskEngine(client=client, partition_size=70)
        run_job(local, progress=False)
        first = run_job(remote, progress=False, engine=engine)
        assert first.status == "succeeded" and first.record["engine"] == "dask"
        assert not any("partitions" in warning for warning in first.warnings)  # workers read
        assert content(table).equals(content(local.output.path))

        new_rows = load_youtube_spam().slice(100, 20)
        new_rows.write_parquet(tmp_path / "local" / "data" / "part-002.parquet")
        with fs.open(f"{bucket[5:]}/data/part-002.parquet", "wb") as out:
            new_rows.write_parquet(out)
        second_local = run_job(local, progress=False)
        second = run_job(remote, progress=False, engine=engine)
        assert second.counts["n_new"] == second_local.counts["n_new"] == 20
        assert content(table).equals(content(local.output.path))
    summary = json.loads(second.summary_path.read_text())
    assert summary["table"]["version"] == 1


@pytest.mark.slow
def test_the_dask_engine_on_s3_with_credentials_only_in_the_job_file(
    tmp_path, make_job, s3_bucket, monkeypatch
):
    """No AWS variable anywhere: the job file's ``[storage] options`` reach the driver's
    Delta calls and every worker's reads and writes (s3fs spelling for the Parquet files),
    and the table equals the local run's, first run and +20 assets."""
    from dask.distributed import Client, LocalCluster

    from enrich.labeling.engines import DaskEngine

    bucket, options = s3_bucket
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ALLOW_HTTP",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    # no shared credentials file or instance metadata to fall back on either
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    job = DASK_JOB.replace('path = "{out}/enriched"', 'path = "{out}/enriched"\n{storage}')
    local_job = make_job(
        tmp_path / "local",
        parts=PARTS,
        job=job,
        lfs=DASK_LFS,
        data="data",
        out="out",
        kind="local",
        storage="",
    )
    remote_job = make_job(
        tmp_path / "remote",
        parts=PARTS,
        job=job,
        lfs=DASK_LFS,
        data=f"{bucket}/data",
        out=f"{bucket}/out",
        kind="dask",
        storage=storage_section(options),
    )
    fs = fsspec_filesystem(bucket, options)
    for file in sorted((tmp_path / "remote" / "data").iterdir()):
        fs.put_file(str(file), f"{bucket[5:]}/data/{file.name}")
    local, remote = load_job_config(local_job), load_job_config(remote_job)
    table = Location.of(f"{bucket}/out/enriched", options)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        engine = DaskEngine(client=client, partition_size=70)
        run_job(local, progress=False)
        first = run_job(remote, progress=False, engine=engine)
        assert first.status == "succeeded" and first.record["engine"] == "dask"
        assert not any("partitions" in warning for warning in first.warnings)  # workers read
        assert first.counts["n_partitions_written"] == len(PARTS)
        assert content(table).equals(content(local.output.path))

        new_rows = load_youtube_spam().slice(100, 20)
        new_rows.write_parquet(tmp_path / "local" / "data" / "part-002.parquet")
        with fs.open(f"{bucket[5:]}/data/part-002.parquet", "wb") as out:
            new_rows.write_parquet(out)
        second_local = run_job(local, progress=False)
        second = run_job(remote, progress=False, engine=engine)
        assert second.status == "succeeded" and second.record["mode"] != "overwrite"
        assert second.counts["n_new"] == second_local.counts["n_new"] == 20
        assert content(table).equals(content(local.output.path))
    assert table_version(table) == 1


# -- image URIs: the images, the fitted image encoder and its vectors in the bucket -----------
IMAGE_JOB = """
[source]
path = "{bucket}/assets.parquet"
image_column = "image"

[labeling_functions]
sources = ["lfs.py"]
classes = ["LOW", "HIGH"]

[embeddings]
enabled = true

[output]
path = "{bucket}/out/enriched"
"""

IMAGE_LFS = """
import polars as pl
from labeling_functions import expression_lf

low = expression_lf("low", pl.col("digit") < 5, label="LOW")
high = expression_lf("high", pl.col("digit") >= 5, label="HIGH")
"""


@pytest.mark.slow
def test_an_image_job_reads_image_uris_from_the_bucket(tmp_path, s3_bucket, monkeypatch):
    """Image URIs are read through fsspec; the offline encoder is fitted once and kept there."""
    from importlib import resources

    import numpy as np
    from PIL import Image

    bucket, options = s3_bucket
    for name, value in {
        "AWS_ENDPOINT_URL": options["aws_endpoint_url"],
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }.items():
        monkeypatch.setenv(name, value)
    with np.load(resources.files("enrich") / "data" / "mnist_sample.npz") as sample:
        images, labels = sample["images"][:80], sample["labels"][:80]
    fs = fsspec_filesystem(bucket)
    for i, image in enumerate(images):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
        fs.put_file(str(tmp_path / f"{i}.png"), f"{bucket[5:]}/images/{i}.png")
    assets = pl.DataFrame(
        {
            "asset_id": list(range(80)),
            "image": [f"{bucket}/images/{i}.png" for i in range(80)],
            "digit": labels.astype(np.int64),
        }
    )
    with fs.open(f"{bucket[5:]}/assets.parquet", "wb") as out:
        assets.write_parquet(out)
    (tmp_path / "lfs.py").write_text(IMAGE_LFS)
    (tmp_path / "job.toml").write_text(IMAGE_JOB.format(bucket=bucket))
    config = load_job_config(tmp_path / "job.toml")
    first = run_job(config, progress=False)
    embedded = first.record["embeddings"]
    assert embedded["n_embedded"] == 80 and embedded["encoder_id"].startswith("hog-pca")
    assert fs.isfile(f"{bucket[5:]}/out/enriched_embeddings/hog_pca.npz")
    assert len(load_run_index(embedded)) == 80
    again = run_job(config, progress=False)  # the stored encoder and index are reused
    assert again.record["embeddings"]["encoder_id"] == embedded["encoder_id"]
    assert again.counts["n_read"] == 0 and again.record["embeddings"]["n_embedded"] == 0


@pytest.mark.slow
def test_dask_workers_share_the_embedding_cache_in_the_bucket(tmp_path, jobs):
    """With [embeddings] the Dask workers encode (the driver plans); each writes cache shards
    to the bucket with the job's storage options, and the table equals the local run's."""
    from dask.distributed import Client, LocalCluster

    from enrich.labeling.engines import DaskEngine

    local_job, remote_job, bucket, options, _ = jobs
    local, remote = load_job_config(local_job), load_job_config(remote_job)
    table = Location.of(f"{bucket}/out/enriched", options)
    cache_uri = f"{bucket}/out/enriched_embeddings"
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        engine = DaskEngine(client=client, partition_size=30)
        on_disk = run_job(local, progress=False)
        first = run_job(remote, progress=False, engine=engine)
        assert first.record["engine"] == "dask" and first.record["embeddings"]["n_embedded"] == 100
        # index ids are numbered per partition on the workers; each asset's vector is the same
        ours, theirs = content(table), content(local.output.path)
        assert ours.drop("index_id").equals(theirs.drop("index_id"))
        index = load_run_index(first.record["embeddings"], storage_options=options)
        local_index = load_run_index(on_disk.record["embeddings"])
        mine = index.get_vectors(ours.get_column("index_id").to_numpy())
        other = local_index.get_vectors(theirs.get_column("index_id").to_numpy())
        assert np.allclose(mine, other, atol=1e-5)  # same vector per asset
        cache = ShardedEmbeddingCache(cache_uri, storage_options=fsspec_options(cache_uri, options))
        assert len(cache) == 100  # written by the workers, one task per source file
        again = run_job(remote, progress=False, engine=engine)
        assert again.counts["n_read"] == 0 and again.record["embeddings"]["n_embedded"] == 0
