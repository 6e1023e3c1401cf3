"""The same job on a Dask LocalCluster gives the same table as the local engine."""

import numpy as np
import polars as pl
import pytest

from enrich.datasets import load_youtube_spam
from enrich.errors import LFApplicationError
from enrich.io.store import read_table
from enrich.job.config import load_job_config
from enrich.job.run import run_job
from enrich.labeling.engines import DaskEngine, LocalEngine
from enrich.labeling.sources import load_lfs

LFS = """
from labeling_functions import ABSTAIN, keyword_lf, labeling_function, regex_lf
check_out = keyword_lf("check_out", ["check out", "my channel", "subscribe"], label="SPAM")
link = regex_lf("link", r"https?://", label="SPAM")

@labeling_function(label="HAM")
def song(x):
    return "HAM" if "song" in (x.text or "").lower() else ABSTAIN

@labeling_function(label="SPAM")
def fragile(x):
    if x.text.startswith("!!"):
        raise ValueError("cannot read this one")
    return ABSTAIN
"""

JOB = """
[source]
path = "data/*.parquet"
text_column = "text"
slice_columns = ["video"]
[labeling_functions]
sources = ["lfs.py", "labeling_functions.packs.youtube_spam:money"]
classes = ["HAM", "SPAM"]
on_error = "abstain"
[gold]
column = "label"
[output]
path = "{name}/enriched"
[engine]
kind = "{kind}"
partition_size = 70
"""

# Lineage columns name the run; everything else must be equal.
LINEAGE = ["run_id", "created_at"]


PARTS = {"a.parquet": (0, 160), "b.parquet": (160, 250)}


def edit_source(name: str, rows: pl.DataFrame) -> pl.DataFrame:
    """Three comments of b.parquet that the fragile LF cannot read."""
    if name != "b.parquet":
        return rows
    return rows.with_columns(
        pl.when(pl.int_range(pl.len()) < 3)
        .then(pl.lit("!!") + pl.col("text"))
        .otherwise(pl.col("text"))
        .alias("text")
    )


def test_dask_output_equals_local_output(tmp_path, client, make_job):
    local = run_job(
        load_job_config(make_job(tmp_path, toml="local.toml", name="local", kind="local")),
        progress=False,
    )
    engine = DaskEngine(client=client, partition_size=70)
    dask = run_job(
        load_job_config(make_job(tmp_path, toml="dask.toml", name="dask", kind="dask")),
        progress=False,
        engine=engine,
    )
    a = read_table(tmp_path / "local" / "enriched").drop(LINEAGE).sort("asset_id")
    b = read_table(tmp_path / "dask" / "enriched").drop(LINEAGE).sort("asset_id")
    assert a.height == 250 and a.equals(b)
    assert dask.record["engine"] == "dask" and local.record["engine"] == "local"
    errors = {row["lf"]: row["n_errors"] for row in dask.metrics["lf_errors"]}
    assert errors == {"fragile": 3}
    assert dask.metrics["lf_errors"] == local.metrics["lf_errors"]
    assert dask.record["model"]["version"] == local.record["model"]["version"]


def test_incremental_dask_runs_vote_only_new_assets(tmp_path, client, make_job):
    job = make_job(tmp_path, toml="dask.toml", name="dask", kind="dask")
    engine = DaskEngine(client=client, partition_size=70)
    run_job(load_job_config(job), progress=False, engine=engine)
    load_youtube_spam().slice(250, 40).write_parquet(tmp_path / "data" / "c.parquet")
    result = run_job(load_job_config(job), progress=False, engine=engine)
    assert result.counts["n_new"] == 40 and result.counts["n_voted"] == 40
    table = read_table(tmp_path / "dask" / "enriched")
    assert table.height == 290 and table.get_column("asset_id").n_unique() == 290


def test_partitioned_apply_equals_one_apply_and_raises_the_same_errors(client):
    data = load_youtube_spam().head(230)
    lfs = load_lfs(["labeling_functions.packs.youtube_spam:LFS"])
    local = LocalEngine().apply(lfs, data, classes=["HAM", "SPAM"])
    dask = DaskEngine(client=client, partition_size=50).apply(lfs, data, classes=["HAM", "SPAM"])
    assert np.array_equal(local.votes, dask.votes)
    assert local.asset_ids.equals(dask.asset_ids) and local.lf_names == dask.lf_names
    shouting = load_lfs(["labeling_functions.packs.youtube_spam:shouting"])
    numbers = data.with_columns(pl.lit(1).alias("text"))  # shouting cannot read a number
    with pytest.raises(LFApplicationError, match="LF 'shouting' raised on asset"):
        DaskEngine(client=client, partition_size=50).apply(
            shouting, numbers, classes=["HAM", "SPAM"]
        )


@pytest.mark.slow
def test_a_local_cluster_is_started_and_closed_by_the_engine(tmp_path, make_job):
    config = load_job_config(make_job(tmp_path, toml="own.toml", name="own", kind="dask"))
    one_worker = config.engine.model_copy(update={"n_workers": 1})
    result = run_job(config.model_copy(update={"engine": one_worker}), progress=False)
    assert result.status == "succeeded" and result.record["engine"] == "dask"


@pytest.mark.slow
def test_dask_embeds_per_partition_like_the_local_engine(tmp_path, client, make_job):
    job = make_job(tmp_path, toml="local.toml", name="local", kind="local")
    (tmp_path / "lfs.py").write_text(LFS.split('@labeling_function(label="SPAM")')[0])
    load_youtube_spam().slice(0, 50).write_parquet(tmp_path / "data" / "a.parquet")
    load_youtube_spam().slice(50, 30).write_parquet(tmp_path / "data" / "b.parquet")
    embedded = job.read_text() + "\n[embeddings]\nenabled = true\nbatch_size = 32\n"
    (tmp_path / "local.toml").write_text(embedded.replace('on_error = "abstain"', ""))
    (tmp_path / "dask.toml").write_text(
        embedded.replace("local/enriched", "dask/enriched").replace(
            'kind = "local"', 'kind = "dask"'
        )
    )
    local = run_job(load_job_config(tmp_path / "local.toml"), progress=False)
    engine = DaskEngine(client=client, partition_size=30)  # 3 partitions on 2 workers
    dask = run_job(load_job_config(tmp_path / "dask.toml"), progress=False, engine=engine)
    assert dask.record["embeddings"]["n_embedded"] == local.record["embeddings"]["n_embedded"] == 80
    assert dask.record["embeddings"]["encoder_id"] == local.record["embeddings"]["encoder_id"]
    assert dask.counts["n_partitions"] == 2  # the workers read their own files
    from embeddings.index import VectorIndex

    # index ids are numbered per partition on the workers: compare each asset's vector
    ours = read_table(tmp_path / "dask" / "enriched").sort("asset_id")
    theirs = read_table(tmp_path / "local" / "enriched").sort("asset_id")
    assert ours.drop("index_id", *LINEAGE).equals(theirs.drop("index_id", *LINEAGE))
    a = VectorIndex.load(local.record["embeddings"]["index_path"])
    b = VectorIndex.load(dask.record["embeddings"]["index_path"])
    mine = b.get_vectors(ours.get_column("index_id").to_numpy())
    other = a.get_vectors(theirs.get_column("index_id").to_numpy())
    assert np.allclose(mine, other, atol=1e-5)


def test_a_scheduler_address_in_the_job_is_used(tmp_path, client, make_job):
    config = load_job_config(make_job(tmp_path, toml="remote.toml", name="remote", kind="dask"))
    remote = config.engine.model_copy(update={"address": client.scheduler.address})
    result = run_job(config.model_copy(update={"engine": remote}), progress=False)
    assert result.status == "succeeded" and result.record["engine"] == "dask"
    assert result.counts["n_voted"] == 250
