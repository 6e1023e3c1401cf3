"""``[embeddings]`` on Dask workers that read their own partitions.

Each worker embeds its partition's new and changed assets through the shared cache, the
embedding LFs vote there, and the driver builds the job's index from the workers' vector
files: the table equals the local engine's (but for ``index_id``, numbered per partition),
and every asset has the same vector in both engines' indexes, run after run.
"""

import numpy as np
import polars as pl
import pytest

from enrich.io.store import read_table
from enrich.job.config import load_job_config
from enrich.job.index import index_from_files, load_run_index
from enrich.job.run import run_job
from enrich.labeling.engines import DaskEngine

LFS = """
import numpy as np
from labeling_functions import keyword_lf, prototype_lf, regex_lf

check_out = keyword_lf("check_out", ["check out", "my channel", "subscribe"], label="SPAM")
link = regex_lf("link", r"https?://", label="SPAM")
song = keyword_lf("song", ["song", "love this"], label="HAM")
_spam = np.zeros(17)
_spam[[0, 1, 2, 3]] = 1.0
near_spam = prototype_lf("near_spam", [_spam], label="SPAM", threshold=0.35)
_ham = np.zeros(17)
_ham[[4, 5, 6]] = 1.0
near_ham = prototype_lf("near_ham", [_ham], label="HAM", threshold=0.35)
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
[output]
path = "{name}/enriched"
[engine]
kind = "{kind}"
"""

PARTS = {"a.parquet": (0, 100), "b.parquet": (100, 200), "c.parquet": (200, 300)}
LINEAGE = ["run_id", "created_at"]
_PATTERNS = [
    r"(?i)check",
    r"(?i)channel",
    r"(?i)subscribe",
    r"(?i)http",
    r"(?i)song",
    r"(?i)love",
    r"(?i)video",
    r"!",
    r"\?",
    r"\d",
    r"[A-Z]",
    r"(?i)please",
    r"(?i)money",
    r"(?i)like",
    r"(?i)best",
    r" ",
]


def edit_source(name: str, rows: pl.DataFrame) -> pl.DataFrame:
    """A small precomputed vector per asset (which patterns it holds; never all zeros)."""
    counts = [pl.col("text").str.contains(p).cast(pl.Float32) for p in _PATTERNS]
    return rows.with_columns(pl.concat_list([*counts, pl.lit(1.0)]).alias("vector"))


@pytest.fixture
def job(tmp_path, make_job):
    make_job(tmp_path, toml="local.toml", name="local", kind="local")
    make_job(tmp_path, toml="dask.toml", name="dask", kind="dask")
    return tmp_path


def both(root, client):
    local = run_job(load_job_config(root / "local.toml"), progress=False)
    dask = run_job(
        load_job_config(root / "dask.toml"), progress=False, engine=DaskEngine(client=client)
    )
    return local, dask


def assert_same(root, local, dask):
    """Equal tables but for index_id; each asset has the same vector in both indexes."""
    a = read_table(root / "local" / "enriched").drop(LINEAGE).sort("asset_id")
    b = read_table(root / "dask" / "enriched").drop(LINEAGE).sort("asset_id")
    assert a.columns == b.columns and "index_id" in a.columns
    assert a.drop("index_id").equals(b.drop("index_id"))
    assert b.get_column("index_id").n_unique() == b.height  # one id per asset
    ours, theirs = (
        load_run_index(dask.record["embeddings"]),
        load_run_index(local.record["embeddings"]),
    )
    assert len(ours) == len(theirs) == a.height
    mine = ours.get_vectors(b.get_column("index_id").to_numpy())
    other = theirs.get_vectors(a.get_column("index_id").to_numpy())
    np.testing.assert_allclose(mine, other, atol=1e-6)
    # the same gaps, from the partitions' counts; similar assets are searched for them on
    # both (test_job_partitions_gaps.py checks the partitions' picks)
    ours_gaps, their_gaps = dask.metrics["gaps"], local.metrics["gaps"]
    assert ours_gaps["gaps"] == their_gaps["gaps"]
    assert (ours_gaps["n_candidates"] is None) == (their_gaps["n_candidates"] is None)


def test_workers_embed_vote_and_index_as_the_local_engine(job, client, spam_data):
    local, dask = both(job, client)
    assert not [w for w in dask.warnings if "do not read their own partitions" in w]
    assert dask.counts["n_partitions"] == 3 and dask.record["mode"] == "create"
    assert dask.record["embeddings"]["n_embedded"] == local.record["embeddings"]["n_embedded"]
    assert dask.record["embeddings"]["encoder_id"] == local.record["embeddings"]["encoder_id"]
    votes = read_table(job / "dask" / "enriched")
    assert (votes.get_column("vote_near_spam") >= 0).sum() > 0  # the embedding LFs voted
    assert (votes.get_column("vote_near_ham") >= 0).sum() > 0
    assert_same(job, local, dask)

    # nothing changed: nothing embedded, the index is the previous run's
    before = dask.record["embeddings"]["index_path"]
    local, dask = both(job, client)
    assert dask.record["embeddings"]["n_embedded"] == 0
    assert dask.record["embeddings"]["index_path"] == before
    assert_same(job, local, dask)

    # a new file: only its assets are embedded, added to the index as a delta
    edit_source("d", spam_data.slice(300, 40)).write_parquet(job / "data" / "d.parquet")
    local, dask = both(job, client)
    assert dask.counts["n_files_read"] == 1
    assert dask.record["embeddings"]["n_embedded"] == local.record["embeddings"]["n_embedded"] == 40
    assert len(dask.record["embeddings"]["index_deltas"]) == 1
    assert_same(job, local, dask)

    # changed assets are embedded again; their vectors replace the old ones
    b = pl.read_parquet(job / "data" / "b.parquet")
    b.with_columns(
        pl.when(pl.int_range(pl.len()) < 10)
        .then(pl.lit("subscribe to my song channel http://x.io"))
        .otherwise(pl.col("text"))
        .alias("text")
    ).pipe(lambda f: edit_source("b", f.drop("vector"))).write_parquet(job / "data" / "b.parquet")
    local, dask = both(job, client)
    assert dask.counts["n_changed"] == local.counts["n_changed"] == 10
    assert dask.record["embeddings"]["n_embedded"] == 10
    assert_same(job, local, dask)

    # an LF that reads the vectors changed: every asset is embedded again, a new index
    (job / "lfs.py").write_text(LFS.replace("threshold=0.35)\n_ham", "threshold=0.4)\n_ham"))
    local, dask = both(job, client)
    assert dask.record["mode"] == "overwrite" and dask.record["lfs_rerun"] == ["near_spam"]
    assert dask.record["embeddings"]["n_embedded"] == 340
    assert not dask.record["embeddings"]["index_deltas"]
    assert_same(job, local, dask)


def test_an_index_built_from_vector_files_trains_on_a_sample(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((120_000, 8)).astype("float32")
    files = []
    for i, start in enumerate(range(0, 120_000, 40_000)):
        path = tmp_path / f"v{i}.parquet"
        pl.DataFrame(
            {
                "index_id": np.arange(start, start + 40_000),
                "vector": vectors[start : start + 40_000],
                "run_id": ["r"] * 40_000,
            }
        ).write_parquet(path)
        files.append(str(path))
    index = index_from_files(files, n_vectors=120_000, dim=8, encoder_id="e", train_sample=20_000)
    assert index.kind_ == "ivf" and len(index) == 120_000
    assert index.nlist_ == 256  # lists for the 20,000-vector sample, not all 120,000
    found = index.search(vectors[:50], k=1).ids[:, 0]
    assert (found == np.arange(50)).mean() >= 0.9


def test_retention_removes_vector_files_no_run_names(job, client, spam_data):
    from enrich.io.store import run_records

    path = job / "dask.toml"
    path.write_text(path.read_text() + "[retention]\ncompact_every = 2\nvacuum_after_days = 0\n")
    engine = DaskEngine(client=client)
    run_job(load_job_config(path), progress=False, engine=engine)
    folder = job / "dask" / "enriched_embeddings" / "vectors"
    stray = folder / "part-00009-20000101T000000Z-abcdef-00000000.parquet"  # a dead run's
    stray.write_bytes(b"")
    edit_source("d", spam_data.slice(300, 30)).write_parquet(job / "data" / "d.parquet")
    second = run_job(load_job_config(path), progress=False, engine=engine)  # retention here
    assert not stray.exists()
    current = {e["vectors"].rsplit("/", 1)[-1] for e in second.record["partitions"].values()}
    on_disk = {p.name for p in folder.iterdir()}
    assert current <= on_disk
    named = {
        e["vectors"].rsplit("/", 1)[-1]
        for _, r in run_records(job / "dask" / "enriched")
        for e in r["partitions"].values()
    }
    assert on_disk <= named


def test_a_table_the_local_engine_embedded_is_taken_over(job, client, spam_data):
    from embeddings.precomputed import embedding_matrix

    run_job(load_job_config(job / "local.toml"), progress=False)
    text = (job / "dask.toml").read_text().replace("dask/enriched", "local/enriched")
    (job / "dask.toml").write_text(text)
    edit_source("d", spam_data.slice(300, 20)).write_parquet(job / "data" / "d.parquet")
    engine = DaskEngine(client=client)
    dask = run_job(load_job_config(job / "dask.toml"), progress=False, engine=engine)
    assert any("no partition state" in w for w in dask.warnings)
    # no vector files yet: every asset is embedded again and the index rebuilt from them
    assert dask.record["embeddings"]["n_embedded"] == 320
    table = read_table(job / "local" / "enriched").select("asset_id", "index_id")
    assert table.get_column("index_id").n_unique() == 320
    source = pl.concat([pl.read_parquet(f) for f in sorted((job / "data").iterdir())])
    rows = table.join(source.select("asset_id", "vector"), on="asset_id")
    index = load_run_index(dask.record["embeddings"])
    np.testing.assert_allclose(
        index.get_vectors(rows.get_column("index_id").to_numpy()),
        embedding_matrix(rows.get_column("vector")),
        atol=1e-6,
    )
    again = run_job(load_job_config(job / "dask.toml"), progress=False, engine=engine)
    assert again.counts["n_files_read"] == 0 and again.record["embeddings"]["n_embedded"] == 0


def test_a_damaged_index_snapshot_is_rebuilt_from_the_vector_files(job, client, spam_data):
    from pathlib import Path

    engine = DaskEngine(client=client)
    first = run_job(load_job_config(job / "dask.toml"), progress=False, engine=engine)
    snapshot = Path(first.record["embeddings"]["index_path"])
    (snapshot / "index.faiss").write_bytes(b"not an index")
    edit_source("d", spam_data.slice(300, 20)).write_parquet(job / "data" / "d.parquet")
    second = run_job(load_job_config(job / "dask.toml"), progress=False, engine=engine)
    assert any("could not be read" in w for w in second.warnings)
    assert second.counts["n_files_read"] == 1  # only the new file is read and embedded
    index = load_run_index(second.record["embeddings"])
    table = read_table(job / "dask" / "enriched")
    assert len(index) == table.height == 320
    assert set(index.ids.tolist()) == set(table.get_column("index_id").to_list())
