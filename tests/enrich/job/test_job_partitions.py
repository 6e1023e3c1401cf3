"""Dask workers read and write their own partitions: the table equals the local engine's, run
after run, and an incremental run reads and rewrites only the partitions that changed."""

import polars as pl
import pytest

from enrich.io.store import read_table, run_records
from enrich.job.config import load_job_config
from enrich.job.run import run_job
from enrich.labeling.engines import DaskEngine

LFS = """
from labeling_functions import ABSTAIN, keyword_lf, labeling_function, regex_lf
check_out = keyword_lf("check_out", ["check out", "my channel", "subscribe"], label="SPAM")
link = regex_lf("link", r"https?://", label="SPAM")

@labeling_function(label="HAM")
def song(x):
    return "HAM" if "song" in (x.text or "").lower() else ABSTAIN
"""

MORE_LFS = """
love = keyword_lf("love", ["love", "beautiful"], label="HAM")
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
path = "{name}/enriched"
[engine]
kind = "{kind}"
"""

PARTS = {"a.parquet": (0, 100), "b.parquet": (100, 200), "c.parquet": (200, 300)}
LINEAGE = ["run_id", "created_at"]


def table(root, name):
    return read_table(root / name / "enriched").drop(LINEAGE).sort("asset_id")


def both(root, client):
    """Run the local job and the Dask job once each; their results."""
    local = run_job(load_job_config(root / "local.toml"), progress=False)
    dask = run_job(
        load_job_config(root / "dask.toml"),
        progress=False,
        engine=DaskEngine(client=client),
    )
    return local, dask


def edit_jobs(root, *, gold=None, extra=""):
    """Edit the local and the Dask job files alike: a new ``[gold]`` head, ``extra`` appended."""
    for name in ("local.toml", "dask.toml"):
        path = root / name
        text = path.read_text()
        if gold is not None:
            text = text.replace('[gold]\ncolumn = "label"', gold)
        path.write_text(text + extra)


def assert_same_gaps(local, dask):
    """``metrics.gaps`` of the Dask run, decided from the partitions' counts, is the local one."""
    assert dask.metrics["gaps"] == local.metrics["gaps"]
    return local.metrics["gaps"]["gaps"]


def assert_same_tables(root):
    a, b = table(root, "local"), table(root, "dask")
    assert a.columns == b.columns
    assert a.equals(b), a.join(b, on="asset_id", how="anti").head()


@pytest.fixture
def job(tmp_path, make_job):
    make_job(tmp_path, toml="local.toml", name="local", kind="local")
    make_job(tmp_path, toml="dask.toml", name="dask", kind="dask")
    return tmp_path


def test_runs_after_runs_leave_the_local_engines_table(job, client, spam_data):
    local, dask = both(job, client)
    assert_same_tables(job)
    assert dask.record["mode"] == "create" and dask.counts["n_partitions"] == 3
    assert dask.record["model"]["version"] == local.record["model"]["version"]
    for key in ("class_counts", "n_needs_review", "n_all_abstain", "coverage", "lfs"):
        assert dask.metrics[key] == local.metrics[key], key
    assert dask.metrics["mean_confidence"] == pytest.approx(local.metrics["mean_confidence"])
    assert dask.metrics["gold_accuracy"] == pytest.approx(local.metrics["gold_accuracy"])
    found = assert_same_gaps(local, dask)
    assert "confident labels" in {g["metric"] for g in found}
    for mine, theirs in zip(
        dask.metrics["slices"]["table"], local.metrics["slices"]["table"], strict=True
    ):
        assert mine.keys() == theirs.keys()
        for key, value in theirs.items():
            assert mine[key] == (pytest.approx(value) if isinstance(value, float) else value)

    # nothing changed: no file read, no partition rewritten
    local, dask = both(job, client)
    assert dask.counts["n_files_read"] == 0 and dask.counts["n_partitions_written"] == 0
    assert_same_tables(job)

    # a new file: only it is read
    spam_data.slice(300, 40).write_parquet(job / "data" / "d.parquet")
    local, dask = both(job, client)
    assert dask.counts["n_files_read"] == 1 and dask.counts["n_new"] == 40
    assert dask.counts["n_voted"] == local.counts["n_voted"] == 40
    assert_same_tables(job)
    assert dask.metrics["drift"]["n_labels_flipped"] == local.metrics["drift"]["n_labels_flipped"]
    assert_same_gaps(local, dask)

    # a changed file, and a file gone from the source (its rows stay, as locally)
    b = pl.read_parquet(job / "data" / "b.parquet")
    b.with_columns(
        pl.when(pl.int_range(pl.len()) < 10)
        .then(pl.lit("subscribe to my song channel http://x.io"))
        .otherwise(pl.col("text"))
        .alias("text")
    ).write_parquet(job / "data" / "b.parquet")
    (job / "data" / "c.parquet").unlink()
    local, dask = both(job, client)
    assert dask.counts["n_changed"] == local.counts["n_changed"] == 10
    assert dask.counts["n_files_read"] == 1
    assert_same_tables(job)
    assert table(job, "dask").height == 340
    assert_same_gaps(local, dask)  # the gone file's assets count from its stored summary

    # a new LF: every asset is voted again, the table rewritten
    (job / "lfs.py").write_text(LFS + MORE_LFS)
    local, dask = both(job, client)
    assert dask.record["mode"] == "overwrite" and dask.record["lfs_rerun"] == ["love"]
    assert_same_tables(job)
    versions = [r["mode"] for _, r in run_records(job / "dask" / "enriched")]
    assert versions == ["create", "partitions", "partitions", "partitions", "overwrite"]


def test_a_table_the_local_engine_wrote_is_taken_over(job, client, spam_data):
    local = run_job(load_job_config(job / "local.toml"), progress=False)
    text = (job / "dask.toml").read_text().replace("dask/enriched", "local/enriched")
    (job / "dask.toml").write_text(text)
    spam_data.slice(300, 20).write_parquet(job / "data" / "d.parquet")
    dask = run_job(
        load_job_config(job / "dask.toml"), progress=False, engine=DaskEngine(client=client)
    )
    assert any("no partition state" in w for w in dask.warnings)
    assert dask.counts["n_new"] == 20 and dask.counts["n_assets"] == local.counts["n_assets"] + 20
    again = run_job(
        load_job_config(job / "dask.toml"), progress=False, engine=DaskEngine(client=client)
    )
    assert again.counts["n_files_read"] == 0
    back = run_job(load_job_config(job / "local.toml"), progress=False)  # and back again
    assert back.counts["n_read"] == 0 and back.counts["n_assets"] == 320
    ids = read_table(job / "local" / "enriched").get_column("asset_id")
    assert ids.n_unique() == ids.len() == 320


def test_a_new_table_schema_rewrites_every_row_as_locally(job, client):
    both(job, client)
    for name in ("local.toml", "dask.toml"):  # no slice column any more
        path = job / name
        path.write_text(path.read_text().replace('slice_columns = ["video"]\n', ""))
    local, dask = both(job, client)
    assert dask.record["mode"] == "overwrite" and "video" not in table(job, "dask").columns
    assert dask.counts["n_changed"] == local.counts["n_changed"] == 300
    assert_same_tables(job)


def test_retention_vacuums_but_keeps_one_file_per_partition(job, client, spam_data):
    path = job / "dask.toml"
    path.write_text(path.read_text() + "[retention]\ncompact_every = 2\nvacuum_after_days = 0\n")
    engine = DaskEngine(client=client)
    run_job(load_job_config(path), progress=False, engine=engine)
    spam_data.slice(300, 30).write_parquet(job / "data" / "d.parquet")
    run_job(load_job_config(path), progress=False, engine=engine)  # retention runs here
    spam_data.slice(330, 30).write_parquet(job / "data" / "e.parquet")
    third = run_job(load_job_config(path), progress=False, engine=engine)
    assert not any("no partition state" in w for w in third.warnings)
    assert third.counts["n_files_read"] == 1 and third.counts["n_assets"] == 360
    summaries = {p.name for p in (job / "dask" / "enriched" / "_enrich_partitions").iterdir()}
    named = {
        e["summary"].split("/")[1]
        for _, r in run_records(job / "dask" / "enriched")
        for e in r["partitions"].values()
    }
    assert summaries <= named | {third.run_id}


def test_reviewed_gold_and_learning_from_gold_as_locally(job, client, spam_data):
    reviewed = spam_data.slice(0, 40).select(
        "asset_id", pl.when(pl.col("label") == 1).then(pl.lit("HAM")).otherwise(pl.lit("SPAM"))
    )
    reviewed.columns = ["asset_id", "label_name"]  # deliberately the opposite of the source
    reviewed.write_parquet(job / "reviewed.parquet")
    gold = f'[gold]\ncolumn = "label"\npath = "{job / "reviewed.parquet"}"\nuse_in_fit = true'
    edit_jobs(job, gold=gold)
    local, dask = both(job, client)
    assert_same_tables(job)
    assert dask.record["model"]["version"] == local.record["model"]["version"]
    assert dask.metrics["gold_accuracy"] == pytest.approx(local.metrics["gold_accuracy"])
    found = assert_same_gaps(local, dask)  # reviewed gold overrides the source's in counts too
    assert {"label F1 vs gold", "label accuracy vs gold"} <= {g["metric"] for g in found}
    queued = set(pl.read_parquet(dask.review_path).get_column("asset_id").to_list())
    assert not queued & set(reviewed.get_column("asset_id").to_list())


def test_a_refit_review_queue_is_allocated_over_vote_patterns_as_locally(job, client):
    both(job, client)  # a first run under purpose = "correct": candidates without votes
    edit_jobs(job, extra='[review]\npurpose = "refit"\nmax_items = 15\n')
    local, dask = both(job, client)  # nothing changed but the purpose
    assert_same_tables(job)  # the partitions rewritten for their candidates' votes
    ours = pl.read_parquet(dask.review_path)
    theirs = pl.read_parquet(local.review_path)
    assert ours.height == theirs.height == 15
    assert dask.metrics["review"]["reason_counts"] == local.metrics["review"]["reason_counts"]

    def allocation(queue):  # the size of the pattern each pick was allocated from
        return sorted(queue.get_column("why").str.extract(r"(from a vote pattern of .*)$"))

    # the batch is allocated by the whole table's pattern counts, as locally
    assert None not in allocation(ours)
    assert allocation(ours) == allocation(theirs)


def test_a_refit_queue_reads_the_reviewed_labels_as_locally(job, client, spam_data):
    unvoted = ~pl.col("text").str.to_lowercase().str.contains(
        r"check out|my channel|subscribe|https?://|song"
    )
    reviewed = (
        spam_data.filter(unvoted)
        .head(20)
        .select(
            "asset_id", pl.col("label").replace_strict({0: "HAM", 1: "SPAM"}).alias("label_name")
        )
    )
    reviewed.write_parquet(job / "reviewed.parquet")
    edit_jobs(
        job,
        gold=f'[gold]\npath = "{job / "reviewed.parquet"}"\nuse_in_fit = true',
        extra='[review]\npurpose = "refit"\nmax_items = 30\n',
    )
    local, dask = both(job, client)
    ours = pl.read_parquet(dask.review_path)
    theirs = pl.read_parquet(local.review_path)
    assert sorted(ours["why"].to_list()) == sorted(theirs["why"].to_list())
    # the reviewed labels of assets without votes say how much is left to learn there
    unvoted_picks = ours.filter(pl.col("reasons").list.contains("no_lf_votes"))
    assert unvoted_picks.height > 0
    assert unvoted_picks["why"].str.contains(r"20 reviewed leave \d+% of").all()


def test_the_review_queue_is_the_best_of_every_asset_by_score(job, client):
    edit_jobs(job, extra="[review]\nmax_items = 15\n")  # a small batch: most flagged are cut
    local, dask = both(job, client)
    assert dask.metrics["review"]["n_eligible"] == local.metrics["review"]["n_eligible"]
    assert dask.metrics["review"]["n_eligible"] > 3 * 15
    ours = pl.read_parquet(dask.review_path)
    theirs = pl.read_parquet(local.review_path)
    assert ours.height == theirs.height == 15
    # the same scores (assets of equal score may be picked otherwise)
    assert sorted(ours.get_column("score").to_list()) == pytest.approx(
        sorted(theirs.get_column("score").to_list())
    )
