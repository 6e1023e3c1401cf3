"""Gap candidates on Dask workers that read their own partitions.

Each partition sends a capped, seeded sample of each gap's examples and of its unsure
assets; one worker task searches them in the job's index with ``fill_gaps``. The picks are
not the local engine's (a sample is searched, index ids differ), so the tests check what
they must be: unsure, unlabeled assets of their gap's region, within the budget, in the
review queue as gap candidates, with the run record saying how they were chosen.
"""

import numpy as np
import polars as pl
import pytest

from enrich.io.store import read_table
from enrich.job.partition_gaps import GapSample, Region, merge_samples, sample_partition
from tests.enrich.job.test_job_partitions_embeddings import JOB as EMBEDDINGS_JOB
from tests.enrich.job.test_job_partitions_embeddings import (  # noqa: F401 (make_job reads them)
    LFS,
    PARTS,
    both,
    edit_source,
)

# no gold: the unsure assets are unlabeled (with every asset gold, none is left to propose)
JOB = EMBEDDINGS_JOB.replace('[gold]\ncolumn = "label"\n', "") + "[gaps]\ncandidates_per_gap = 4\n"


@pytest.fixture
def job(tmp_path, make_job):
    make_job(tmp_path, toml="local.toml", name="local", kind="local")
    make_job(tmp_path, toml="dask.toml", name="dask", kind="dask")
    return tmp_path


def check_candidates(root, result, settings_budget=4):
    gaps = result.metrics["gaps"]
    assert gaps["enabled"] and gaps["gaps"], "the fixture must have gaps to fill"
    n = gaps["n_candidates"]
    n_gaps = len({g["gap"] for g in gaps["gaps"]})
    assert 0 < n <= settings_budget * n_gaps and gaps["candidates_note"] is None
    how = gaps["candidates_sampling"]
    assert how["n_searched"] == gaps["n_searched"] <= how["n_unsure"]
    assert how["n_examples"] > 0 and "random sample" in how["how"]
    assert sum(a["picked"] for a in gaps["allocation"]) == n
    table = read_table(root / "dask" / "enriched")
    queue = pl.read_parquet(result.review_path)
    picked = queue.filter(pl.col("reasons").list.contains("gap_candidate"))
    assert picked.height == n == result.metrics["review"]["reason_counts"]["gap_candidate"]
    rows = table.join(picked.select("asset_id"), on="asset_id")
    assert rows.height == n
    # unsure and unlabeled: flagged for review, not confident, no gold, in the index
    assert rows.get_column("needs_review").all()
    assert (rows.get_column("confidence").fill_null(0) < 0.8).all()
    assert rows.get_column("index_id").is_not_null().all()
    # each pick lies in some gap's region: its slice value, or for a class gap no other
    # class predicted (as on the local engine, unlabeled assets near the class's examples)
    regions = {(g["gap"].split("=", 1)[0], g["gap"].split("=", 1)[1]) for g in gaps["gaps"]}
    for row in rows.to_dicts():
        assert any(
            (col == "class" and row["label_name"] in (value, None))
            or (col != "class" and str(row.get(col)) == value)
            for col, value in regions
        ), row
    return picked


def test_gap_candidates_from_partition_samples(job, client, spam_data):
    local, dask = both(job, client)
    assert local.metrics["gaps"]["gaps"] == dask.metrics["gaps"]["gaps"]
    assert local.metrics["gaps"]["n_candidates"] > 0
    first = check_candidates(job, dask)
    # nothing was capped here, and the budget binds: as many picks as the local engine's
    assert dask.metrics["gaps"]["n_candidates"] == local.metrics["gaps"]["n_candidates"]
    # the same inputs give the same picks (seeded sampling)
    again = both(job, client)[1]
    assert (
        check_candidates(job, again)
        .sort("asset_id")
        .get_column("asset_id")
        .equals(first.sort("asset_id").get_column("asset_id"))
    )
    # +1%: a small new file; gaps are filled again over every partition
    edit_source("d", spam_data.slice(300, 3)).write_parquet(job / "data" / "d.parquet")
    local, dask = both(job, client)
    assert dask.counts["n_files_read"] == 1
    check_candidates(job, dask)


def test_a_partition_sample_is_capped_and_keeps_to_its_regions(tmp_path):
    rng = np.random.default_rng(0)
    n = 5_000
    frame = pl.DataFrame(
        {
            "asset_id": np.arange(n),
            "index_id": np.arange(n),
            "label_name": rng.choice(["A", "B"], n),
            "confidence": rng.random(n),
            "needs_review": rng.random(n) < 0.5,
            "gold": np.where(rng.random(n) < 0.05, 1, -1),
            "video": rng.choice(["x", "y"], n),
        }
    )
    frame.write_parquet(tmp_path / "part.parquet")
    sample = GapSample(
        table=str(tmp_path),
        storage_options=None,
        regions=(
            Region("class=B", "class", "class", "B"),
            Region("video=x", "slice", "video", "x"),
        ),
        classes=("A", "B"),
        confident_above=0.8,
        reviewed=None,
        columns=("asset_id", "label_name", "confidence", "needs_review", "video"),
        examples_per_gap=50,
        pool_size=100,
        seed=3,
    )
    examples, pool, n_unsure = sample_partition(["part.parquet"], 0, sample)
    assert pool.height == 100 and examples.group_by("gap").len().get_column("len").max() == 50
    joined = examples.join(frame, on="asset_id")
    klass = joined.filter(pl.col("gap") == "class=B")
    assert (
        (klass["label_name"] == "B") & (klass["confidence"] >= 0.8) | (klass["gold"] == 1)
    ).all()
    assert (joined.filter(pl.col("gap") == "video=x")["video"] == "x").all()
    unsure = frame.filter(
        pl.col("needs_review") & (pl.col("confidence") < 0.8) & (pl.col("gold") < 0)
    )
    assert n_unsure == unsure.height
    assert pool.get_column("asset_id").is_in(unsure["asset_id"].implode()).all()
    # seeded: the same sample again, another partition index gives another one
    assert sample_partition(["part.parquet"], 0, sample)[1].equals(pool)
    assert not sample_partition(["part.parquet"], 1, sample)[1].equals(pool)
    merged_ex, merged_pool, total = merge_samples(
        [(examples, pool.with_columns(pl.col("asset_id") + k * n), n_unsure) for k in range(3)],
        max_examples=20,
        max_pool=60,
    )
    assert merged_pool.height == 60 and total == 3 * n_unsure
    assert merged_ex.group_by("gap").len().get_column("len").max() == 20
