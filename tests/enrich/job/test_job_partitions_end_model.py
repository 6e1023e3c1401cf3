"""``[end_model]`` on Dask workers that read their own partitions.

The driver trains on the sample the local engine would pick (gathered from the partitions,
bounded by ``max_train_rows``), keeps or retrains by the same rule, and the workers predict
every asset: the table equals the local engine's, run after run.
"""

import re

import numpy as np
import polars as pl
import pytest

from enrich.io.store import read_table
from enrich.job.config import load_job_config
from enrich.job.partition_model import merge_candidates
from enrich.job.run import run_job
from enrich.labeling.engines import DaskEngine

LFS = """
from labeling_functions import keyword_lf, regex_lf

check_out = keyword_lf("check_out", ["check out", "my channel", "subscribe"], label="SPAM")
link = regex_lf("link", r"https?://|www\\\\.", label="SPAM", ignore_case=True)
song = keyword_lf("song", ["song", "love this"], label="HAM")
"""

JOB = """
[source]
path = "data/*.parquet"
text_column = "text"
slice_columns = ["video"]
{source_extra}
[labeling_functions]
sources = ["lfs.py"]
classes = ["HAM", "SPAM"]
[gold]
column = "label"
{sections}
[end_model]
enabled = true
{features}
max_train_rows = 120
cv = 3
retrain_after = 0.5
[output]
path = "{name}/enriched"
[engine]
kind = "{kind}"
"""

TABULAR = 'embeddings = false\nfeature_columns = ["n_chars", "n_words", "has_http", "n_upper"]'
PARTS = {"a.parquet": (0, 100), "b.parquet": (100, 200), "c.parquet": (200, 300)}
LINEAGE = ["run_id", "created_at"]
_PATTERNS = [r"(?i)check", r"(?i)channel", r"(?i)subscribe", r"(?i)http", r"(?i)song"]


def edit_source(name: str, rows: pl.DataFrame) -> pl.DataFrame:
    """Numeric features, a small precomputed vector, gold on every fifth asset."""
    text = pl.col("text")
    flags = [text.str.contains(p).cast(pl.Float32) for p in _PATTERNS]
    return (
        rows.with_row_index("_i")
        .with_columns(
            text.str.len_chars().cast(pl.Int64).alias("n_chars"),
            text.str.split(" ").list.len().cast(pl.Int64).alias("n_words"),
            text.str.contains("(?i)http|www").alias("has_http"),
            text.str.count_matches(r"[A-Z]").cast(pl.Int64).alias("n_upper"),
            pl.concat_list([*flags, pl.lit(1.0, dtype=pl.Float32)]).alias("vector"),
            pl.when(pl.col("_i") % 5 == 0).then(pl.col("label")).otherwise(None).alias("label"),
        )
        .drop("_i")
    )


def make(root, make_job, **fields):
    for kind in ("local", "dask"):
        make_job(root, toml=f"{kind}.toml", name=kind, kind=kind, **fields)
    return root


def both(root, client):
    local = run_job(load_job_config(root / "local.toml"), progress=False)
    dask = run_job(
        load_job_config(root / "dask.toml"), progress=False, engine=DaskEngine(client=client)
    )
    return local, dask


def assert_same(root, local, dask, *, drop=()):
    assert not [w for w in dask.warnings if "do not read their own partitions" in w]
    a = read_table(root / "local" / "enriched").drop(*LINEAGE, *drop).sort("asset_id")
    b = read_table(root / "dask" / "enriched").drop(*LINEAGE, *drop).sort("asset_id")
    assert "model_label" in a.columns and a.columns == b.columns
    assert a.equals(b), a.join(b, on=a.columns, how="anti").head()
    for key in ("n_train", "n_labeled_by_model", "class_counts", "retrained"):
        assert dask.metrics["end_model"][key] == local.metrics["end_model"][key], key
    assert dask.metrics["gaps"]["gaps"] == local.metrics["gaps"]["gaps"]  # of the label model
    mine, theirs = dask.record["end_model"], local.record["end_model"]
    assert mine["retrain"]["retrained"] == theirs["retrain"]["retrained"]
    assert mine["retrain"]["drift"] == pytest.approx(theirs["retrain"]["drift"])
    since = re.compile(r"run \S+")  # each engine's table was trained by its own run
    assert since.sub("", mine["retrain"]["reason"]) == since.sub("", theirs["retrain"]["reason"])
    for key in ("coef", "intercept", "temperature", "n_gold", "drift_since_training"):
        np.testing.assert_allclose(mine[key], theirs[key], err_msg=key)


def set_in_jobs(root, old, new):
    for name in ("local.toml", "dask.toml"):
        path = root / name
        path.write_text(path.read_text().replace(old, new))


def test_tabular_end_model_trains_keeps_and_retrains_as_locally(
    tmp_path, make_job, client, spam_data
):
    job = make(tmp_path, make_job, source_extra="", sections="", features=TABULAR)
    local, dask = both(job, client)
    assert dask.record["end_model"]["retrain"]["retrained"]
    assert dask.metrics["end_model"]["n_train"] == local.metrics["end_model"]["n_train"]
    assert_same(job, local, dask)

    # a few new assets: the sample moves little, the stored model predicts only them
    edit_source("d", spam_data.slice(300, 30)).write_parquet(job / "data" / "d.parquet")
    local, dask = both(job, client)
    assert not dask.record["end_model"]["retrain"]["retrained"]
    assert dask.counts["n_files_read"] == 1
    assert_same(job, local, dask)

    # nothing new but a stricter rule: the accumulated drift retrains, every asset predicted
    set_in_jobs(job, "retrain_after = 0.5", "retrain_after = 0.0")
    local, dask = both(job, client)
    assert dask.record["end_model"]["retrain"]["retrained"]
    assert_same(job, local, dask)


def test_end_model_on_worker_embeddings_as_locally(tmp_path, make_job, client):
    job = make(
        tmp_path,
        make_job,
        source_extra='embedding_column = "vector"',
        sections='[embeddings]\nenabled = true\nencoder = "precomputed"',
        features='feature_columns = ["n_chars"]',
    )
    local, dask = both(job, client)
    assert dask.record["end_model"]["embedding"]
    assert_same(job, local, dask, drop=["index_id"])


def test_candidates_merged_in_any_order_keep_the_jobs_sample():
    rng = np.random.default_rng(0)
    n = 400
    frame = pl.DataFrame(
        {
            "asset_id": [f"a{i:04d}" for i in rng.permutation(n)],
            "_priority": rng.integers(0, 2**62, n).astype(np.uint64),
            "_gold": np.where(rng.random(n) < 0.1, rng.integers(0, 2, n), -1),
            "_voted": rng.random(n) < 0.7,
            "_prev_needs_review": pl.Series([True if r < 0.8 else None for r in rng.random(n)]),
            "_prev_label": pl.Series([1 if r < 0.6 else None for r in rng.random(n)]),
        }
    )
    whole = merge_candidates(frame, max_rows=30)
    parts = [merge_candidates(frame[i::3], max_rows=30) for i in range(3)]
    merged = merge_candidates(
        merge_candidates(pl.concat(parts[:2]), max_rows=30).vstack(parts[2]), max_rows=30
    )
    assert merged.equals(whole) and whole.height <= 60


def test_end_model_and_embeddings_in_a_bucket_as_locally(
    tmp_path, make_job, client, s3_bucket, spam_data
):
    """Source, table, vector files, cache and index on S3 (moto): the local engine's table."""
    import json

    from enrich._internal.uri import fsspec_filesystem

    bucket, options = s3_bucket
    pairs = ", ".join(f"{k} = {json.dumps(v)}" for k, v in options.items())
    fields = {
        "source_extra": 'embedding_column = "vector"',
        "sections": '[embeddings]\nenabled = true\nencoder = "precomputed"',
        "features": 'feature_columns = ["n_chars"]',
    }
    make_job(tmp_path, toml="local.toml", name="local", kind="local", **fields)
    remote = make_job(tmp_path, toml="dask.toml", name=f"{bucket}/out", kind="dask", **fields)
    text = remote.read_text().replace(
        'path = "data/*.parquet"', f'path = "{bucket}/data/*.parquet"'
    )
    remote.write_text(text + f"[storage]\noptions = {{ {pairs} }}\n")
    fs = fsspec_filesystem(bucket, options)
    for file in sorted((tmp_path / "data").iterdir()):
        fs.put_file(str(file), f"{bucket[5:]}/data/{file.name}")
    engine = DaskEngine(client=client)
    run_job(load_job_config(tmp_path / "local.toml"), progress=False)
    dask = run_job(load_job_config(remote), progress=False, engine=engine)
    assert dask.record["engine"] == "dask" and dask.counts["n_partitions"] == 3
    assert fs.ls(f"{bucket[5:]}/out/enriched_embeddings/vectors")  # the workers wrote there
    drop = [*LINEAGE, "index_id", "source_file"]
    a = read_table(tmp_path / "local" / "enriched").drop(drop).sort("asset_id")
    b = read_table(dask.table_path).drop(drop).sort("asset_id")
    assert a.equals(b)
    # a new file in the bucket: the kept model predicts its assets, as locally
    new = edit_source("d", spam_data.slice(300, 30))
    new.write_parquet(tmp_path / "data" / "d.parquet")
    fs.put_file(str(tmp_path / "data" / "d.parquet"), f"{bucket[5:]}/data/d.parquet")
    run_job(load_job_config(tmp_path / "local.toml"), progress=False)
    dask = run_job(load_job_config(remote), progress=False, engine=engine)
    assert dask.counts["n_files_read"] == 1
    assert not dask.record["end_model"]["retrain"]["retrained"]
    a = read_table(tmp_path / "local" / "enriched").drop(drop).sort("asset_id")
    b = read_table(dask.table_path).drop(drop).sort("asset_id")
    assert a.equals(b)
