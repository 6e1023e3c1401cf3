"""The batch job on real Delta tables and slices of the bundled YouTube spam data."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from enrich.datasets import load_youtube_spam
from enrich.errors import InputError, MissingColumnError
from enrich.io.store import RunLock, RunLockedError, read_runs, read_table, run_records
from enrich.job.config import JobConfig, load_job_config
from enrich.job.run import SourceSchemaError, run_job
from enrich.labeling.engines import LocalEngine
from enrich.models.label_model import LabelModel

LFS = """
from labeling_functions import ABSTAIN, expression_lf, keyword_lf, labeling_function, regex_lf
import polars as pl

check_out = keyword_lf("check_out", ["check out", "my channel", "subscribe"], label="SPAM")
link = regex_lf("link", r"https?://|www\\.", label="SPAM", ignore_case=True)
short = expression_lf("short", pl.col("text").str.len_chars() <= 25, label="HAM")

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

[gaps]
min_slice_size = 10

[output]
path = "out/enriched"
lock_timeout = 0.5
"""


class RecordingEngine(LocalEngine):
    """The real local engine, noting which LFs it applied to how many assets."""

    def __init__(self):
        super().__init__(n_jobs=1)
        self.calls = []

    def apply(self, lfs, data, **options):
        self.calls.append((sorted(lf.name for lf in lfs), data.height))
        return super().apply(lfs, data, **options)


def table(config: JobConfig) -> pl.DataFrame:
    return read_table(config.output.path).sort("asset_id")


def test_first_run_writes_the_table_runs_and_reports(tmp_path, make_job):
    config = load_job_config(make_job(tmp_path))
    result = run_job(config, progress=False)
    assert result.status == "succeeded" and result.table_version == 0
    out = table(config)
    assert out.height == 240 and out.get_column("asset_id").n_unique() == 240
    for column in [
        "label_name",
        "proba_HAM",
        "confidence",
        "needs_review",
        "vote_link",
        "vote_song",
        "content_hash",
        "source_file",
        "video",
        "gold",
        "run_id",
    ]:
        assert column in out.columns
    assert set(out.get_column("run_id")) == {result.run_id}
    assert result.counts["n_new"] == 240 and result.counts["n_written"] == 240
    assert result.metrics["gold_accuracy"] is not None
    assert {row["slice"] for row in result.metrics["slices"]["table"]} >= {"video=Psy"}
    summary = json.loads(result.summary_path.read_text())
    assert summary["status"] == "succeeded" and summary["table"]["version"] == 0
    assert summary["lf_versions"].keys() == {"check_out", "link", "short", "song"}
    page = result.report_path.read_text()
    assert page.count("<svg") >= 5  # balance, LF coverage and accuracy, confidence, slices
    assert "Class balance" in page and "Drift against the previous run" in page
    assert (result.report_path.parent / "latest.html").read_text() == page
    queue = pl.read_parquet(result.review_path)
    assert queue.height == result.metrics["review"]["n_queued"] > 0  # gold only scores here
    runs = read_runs(config.output.path, Path(config.output.path).with_name("enriched_runs"))
    assert runs.get_column("run_id").to_list() == [result.run_id]
    assert result.message.startswith(f"run {result.run_id}: 240 assets (240 new")


def test_an_unchanged_source_reads_nothing_and_votes_nothing(tmp_path, make_job):
    config = load_job_config(make_job(tmp_path))
    first = run_job(config, progress=False)
    before = table(config)
    engine = RecordingEngine()
    second = run_job(config, progress=False, engine=engine)
    assert second.counts["n_files_read"] == 0 and second.counts["n_read"] == 0
    assert second.counts["n_written"] == 0 and second.counts["n_unchanged"] == 240
    assert engine.calls == []  # no LF ran, none was even loaded
    assert second.table_version == first.table_version + 1  # the run is still recorded
    assert table(config).equals(before)
    assert second.metrics["drift"]["n_labels_flipped"] == 0
    assert [r["run_id"] for _, r in run_records(config.output.path)] == [
        first.run_id,
        second.run_id,
    ]


def test_only_new_and_changed_assets_are_voted(tmp_path, make_job):
    job = make_job(tmp_path)
    config = load_job_config(job)
    run_job(config, progress=False)
    data = load_youtube_spam()
    data.slice(240, 60).write_parquet(tmp_path / "data" / "part-002.parquet")  # 60 new
    changed = data.slice(120, 120).with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.lit("check out my channel http://spam.example"))
        .otherwise(pl.col("text"))
        .alias("text")
    )
    changed.write_parquet(tmp_path / "data" / "part-001.parquet")  # 1 changed asset
    engine = RecordingEngine()
    result = run_job(config, progress=False, engine=engine)
    counts = result.counts
    assert (counts["n_new"], counts["n_changed"], counts["n_unchanged"]) == (60, 1, 239)
    assert counts["n_files_read"] == 2 and counts["n_read"] == 180
    assert engine.calls == [(["check_out", "link", "short", "song"], 61)]
    out = table(config)
    assert out.height == 300 and out.get_column("asset_id").n_unique() == 300
    edited = out.filter(pl.col("asset_id") == changed.get_column("asset_id")[0])
    assert edited.get_column("vote_link").item() == 1 and edited.get_column("run_id").item() == (
        result.run_id
    )
    assert counts["n_written"] >= 61


def test_incremental_runs_end_where_one_full_run_ends(tmp_path, make_job):
    tolerance = 0.005
    incremental = tmp_path / "inc"
    incremental.mkdir()
    config = load_job_config(make_job(incremental, parts=((0, 100),)))
    run_job(config, progress=False)
    data = load_youtube_spam()
    data.slice(100, 80).write_parquet(incremental / "data" / "part-001.parquet")
    run_job(config, progress=False)
    data.slice(180, 70).write_parquet(incremental / "data" / "part-002.parquet")
    run_job(config, progress=False)
    full = tmp_path / "full"
    full.mkdir()
    once = load_job_config(make_job(full, parts=((0, 100), (100, 180), (180, 250))))
    run_job(once, progress=False)
    a, b = table(config), table(once)
    assert a.height == b.height == 250
    same = [
        "asset_id",
        "content_hash",
        "vote_check_out",
        "vote_link",
        "vote_short",
        "vote_song",
        "gold",
        "video",
        "conflict",
        "all_abstain",
        "n_votes",
    ]
    assert a.select(same).equals(b.select(same))
    gap = (a.get_column("proba_SPAM") - b.get_column("proba_SPAM")).abs().max()
    assert gap <= tolerance + 1e-9
    flips = (a.get_column("label") != b.get_column("label")).sum()
    assert flips == 0


def test_the_model_is_fitted_on_every_vote_so_old_rows_stay_put(tmp_path, make_job):
    # max_fit_rows would fit a sample of 50 rows, which a few new assets reshuffle; the job
    # fits every distinct vote pattern with its count instead: the exact fit on all rows
    job = JOB + "\n[label_model]\nparams = { max_fit_rows = 50 }\n"
    config = load_job_config(make_job(tmp_path, parts=((0, 240),), job=job))
    run_job(config, progress=False)
    load_youtube_spam().slice(240, 3).write_parquet(tmp_path / "data" / "part-001.parquet")
    result = run_job(config, progress=False)
    out = table(config)
    votes = out.select(sorted(c for c in out.columns if c.startswith("vote_"))).to_numpy()
    exact = LabelModel(cardinality=2, max_fit_rows=None).fit(votes)
    gap = np.abs(out.get_column("proba_SPAM").to_numpy() - exact.predict_proba(votes)[:, 1])
    written = (out.get_column("run_id") == result.run_id).to_numpy()
    assert gap[written].max() < 1e-9  # rows written now hold the exact fit's probabilities
    assert gap.max() <= config.output.proba_tolerance  # the others moved less than that
    assert result.counts["n_new"] == 3 and result.counts["n_written"] < 240


def test_a_refit_review_queue_spreads_lf_conflicts_over_vote_patterns(tmp_path, make_job):
    job = JOB + '\n[review]\npurpose = "refit"\nmax_items = 12\n'
    config = load_job_config(make_job(tmp_path, job=job))
    result = run_job(config, progress=False)
    queue = pl.read_parquet(result.review_path)
    assert queue.height == 12
    reasons = queue.get_column("reasons").to_list()
    # conflicts, and assets no LF voted on (their gold sets the class the model gives them)
    assert all({"lf_conflict", "no_lf_votes"} & set(r) for r in reasons)
    assert queue.get_column("why").str.contains("from a vote pattern of").all()
    out = table(config).filter(pl.col("asset_id").is_in(queue.get_column("asset_id").implode()))
    votes = out.select(sorted(c for c in out.columns if c.startswith("vote_")))
    assert votes.n_unique() > 1  # not one pattern's assets only


def test_a_changed_lf_is_rerun_for_its_column_only(tmp_path, make_job):
    job = make_job(tmp_path)
    config = load_job_config(job)
    first = run_job(config, progress=False)
    before = table(config)
    (tmp_path / "lfs.py").write_text(LFS.replace('"check out", ', '"check out", "watch", '))
    config = load_job_config(job)
    engine = RecordingEngine()
    result = run_job(config, progress=False, engine=engine)
    assert engine.calls == [(["check_out"], 240)]
    assert result.record["lfs_rerun"] == ["check_out"]
    assert result.counts["n_revoted"] == 240 and result.counts["n_voted"] == 0
    after = table(config)
    for lf in ("link", "short", "song"):
        assert after.get_column(f"vote_{lf}").equals(before.get_column(f"vote_{lf}"))
    assert (after.get_column("vote_check_out") != before.get_column("vote_check_out")).any()
    versions = json.loads(after.get_column("lf_versions")[0])
    assert versions["check_out"] != first.record["lf_versions"]["check_out"]
    assert versions["link"] == first.record["lf_versions"]["link"]


def test_a_new_lf_adds_its_column_and_a_removed_one_drops_it(tmp_path, make_job):
    job = make_job(tmp_path)
    config = load_job_config(job)
    run_job(config, progress=False)
    without_link = "\n".join(line for line in LFS.splitlines() if not line.startswith("link ="))
    money = 'money = keyword_lf("money", ["free", "money"], label="SPAM")\n'
    (tmp_path / "lfs.py").write_text(without_link + "\n" + money)
    config = load_job_config(job)
    engine = RecordingEngine()
    result = run_job(config, progress=False, engine=engine)
    assert engine.calls[-1] == (["money"], 240)
    out = table(config)
    assert "vote_money" in out.columns and "vote_link" not in out.columns
    assert result.record["mode"] == "overwrite" and out.height == 240


def test_assets_that_leave_the_source_are_kept(tmp_path, make_job):
    config = load_job_config(make_job(tmp_path))
    run_job(config, progress=False)
    (tmp_path / "data" / "part-001.parquet").unlink()
    result = run_job(config, progress=False)
    assert table(config).height == 240
    assert result.counts["n_assets"] == 240 and result.counts["n_files"] == 1


def reviewed_job(tmp_path, make_job, n_reviewed, extra=""):
    """A job whose gold is the table of the first ``n_reviewed`` comments, as reviewed."""
    job = JOB.replace('column = "label"', 'path = "reviewed.parquet"\nuse_in_fit = true')
    reviewed = (
        load_youtube_spam()
        .head(n_reviewed)
        .select(
            "asset_id", pl.col("label").replace_strict({0: "HAM", 1: "SPAM"}).alias("label_name")
        )
    )
    reviewed.write_parquet(tmp_path / "reviewed.parquet")
    return make_job(tmp_path, job=job + extra), reviewed


def test_reviewed_gold_teaches_the_model_and_leaves_the_queue(tmp_path, make_job):
    job, reviewed = reviewed_job(tmp_path, make_job, 40)
    result = run_job(load_job_config(job), progress=False)
    assert result.metrics["gold"]["n_gold"] == 40
    queue = pl.read_parquet(result.review_path)
    assert queue.height == result.metrics["review"]["n_queued"] > 0
    assert not set(queue.get_column("asset_id")) & set(reviewed.get_column("asset_id"))


def test_a_refit_queue_weighs_unvoted_assets_by_their_reviewed_labels(tmp_path, make_job):
    refit = '\n[review]\npurpose = "refit"\nmax_items = 60\n'
    job, reviewed = reviewed_job(tmp_path, make_job, 80, refit)
    result = run_job(load_job_config(job), progress=False)
    queue = pl.read_parquet(result.review_path)
    unvoted = queue.filter(pl.col("reasons").list.contains("no_lf_votes"))
    assert unvoted.height > 0 and not set(queue["asset_id"]) & set(reviewed["asset_id"])
    # the reviewed labels of assets without votes say how much is left to learn there
    assert unvoted.get_column("why").str.contains(r"\d+ reviewed leave \d+% of").all()


def test_a_second_run_waits_then_refuses_with_a_clear_message(tmp_path, make_job):
    config = load_job_config(make_job(tmp_path))
    lock = Path(config.output.path).with_name(".enriched.lock")
    with (
        RunLock(lock, timeout=0, run_id="nightly-1"),
        pytest.raises(RunLockedError, match=r"another enrich run \(run nightly-1"),
    ):
        run_job(config, progress=False)
    assert not Path(config.output.path).exists()


# -- bad input: clear errors, nothing written ------------------------------------------------
def assert_nothing_written(config: JobConfig) -> None:
    assert not Path(config.output.path).exists()


def test_a_missing_file_among_many_is_named(tmp_path, make_job):
    job = make_job(
        tmp_path,
        job=JOB.replace(
            'path = "data/*.parquet"',
            'path = ["data/part-000.parquet", "data/gone.parquet", "data/part-001.parquet"]',
        ),
    )
    config = load_job_config(job)
    with pytest.raises(InputError, match=r"gone\.parquet' does not exist"):
        run_job(config, progress=False)
    assert_nothing_written(config)


def test_an_unreadable_file_is_named(tmp_path, make_job):
    job = make_job(tmp_path)
    (tmp_path / "data" / "part-002.parquet").write_bytes(b"not parquet at all")
    config = load_job_config(job)
    with pytest.raises(InputError, match=r"part-002\.parquet' cannot be read as parquet"):
        run_job(config, progress=False)
    assert_nothing_written(config)


def test_a_glob_matching_nothing_is_clear(tmp_path, make_job):
    config = load_job_config(make_job(tmp_path, job=JOB.replace("*.parquet", "*.csv")))
    with pytest.raises(InputError, match=r"matches no file"):
        run_job(config, progress=False)


def test_an_empty_source_succeeds_with_a_message(tmp_path, make_job):
    job = make_job(tmp_path, parts=((0, 0),))
    config = load_job_config(job)
    result = run_job(config, progress=False)
    assert result.status == "empty" and "holds no assets" in result.message
    assert_nothing_written(config)


def test_unknown_columns_list_the_available_ones(tmp_path, make_job):
    config = load_job_config(make_job(tmp_path, job=JOB.replace('"video"', '"channel"')))
    with pytest.raises(MissingColumnError) as caught:
        run_job(config, progress=False)
    message = str(caught.value)
    assert "'channel' (source.slice_columns)" in message
    assert "['asset_id', 'text', 'author', 'published_at', 'video', 'label']" in message


def test_an_lf_reading_a_missing_column_lists_the_available_ones(tmp_path, make_job):
    lfs = LFS + '\nodd = keyword_lf("odd", ["x"], column="body", label="SPAM")\n'
    config = load_job_config(make_job(tmp_path, lfs=lfs))
    with pytest.raises(MissingColumnError, match=r"\['odd'\] read column\(s\) \['body'\]"):
        run_job(config, progress=False)


def test_a_type_change_between_files_names_both(tmp_path, make_job):
    job = make_job(tmp_path)
    odd = load_youtube_spam().slice(300, 10).with_columns(pl.col("label").cast(pl.Utf8))
    odd.write_parquet(tmp_path / "data" / "part-009.parquet")
    with pytest.raises(
        SourceSchemaError,
        match=r"'label' is Int8 in .*part-000\.parquet.* but String in .*part-009",
    ):
        run_job(load_job_config(job), progress=False)


def test_a_type_change_since_the_last_run_is_reported(tmp_path, make_job):
    job = make_job(tmp_path, parts=((0, 120),))
    config = load_job_config(job)
    run_job(config, progress=False)
    load_youtube_spam().slice(0, 120).with_columns(pl.col("label").cast(pl.Int64)).write_parquet(
        tmp_path / "data" / "part-000.parquet"
    )
    result = run_job(config, progress=False)
    assert any("column 'label' Int8 -> Int64" in w for w in result.warnings)
    assert result.counts["n_changed"] == 120  # re-hashed, so treated as changed


def test_an_asset_id_type_change_is_refused(tmp_path, make_job):
    job = make_job(tmp_path, parts=((0, 50),))
    config = load_job_config(job)
    run_job(config, progress=False)
    load_youtube_spam().slice(0, 50).with_columns(
        pl.int_range(pl.len()).alias("asset_id")
    ).write_parquet(tmp_path / "data" / "part-000.parquet")
    with pytest.raises(SourceSchemaError, match="asset ids are String in the output table but"):
        run_job(config, progress=False)


def test_the_same_asset_in_two_files_is_refused(tmp_path, make_job):
    job = make_job(tmp_path, parts=((0, 100), (90, 150)))
    with pytest.raises(InputError, match="10 asset id\\(s\\) appear more than once"):
        run_job(load_job_config(job), progress=False)


# -- embeddings ------------------------------------------------------------------------------
EMBEDDING_LFS = (
    LFS
    + """
from embeddings.text import TextEncoder
from labeling_functions.embedding_lfs import prototype_lf

near_song = prototype_lf(
    "near_song", TextEncoder().encode(["I love this song"]), label="HAM", threshold=0.3
)
"""
)

EMBEDDING_JOB = (
    JOB.replace("[gaps]\n", "[gaps]\nmin_confident = 400\ncandidates_per_gap = 3\n").replace(
        '[gold]\ncolumn = "label"\n', ""
    )
    + "\n[embeddings]\nenabled = true\nbatch_size = 32\n"
)


@pytest.mark.slow
def test_only_new_assets_are_embedded_and_the_index_follows(tmp_path, make_job):
    job = make_job(tmp_path, parts=((0, 60), (60, 100)), job=EMBEDDING_JOB, lfs=EMBEDDING_LFS)
    config = load_job_config(job)
    first = run_job(config, progress=False)
    embedded = first.record["embeddings"]
    assert embedded["n_embedded"] == 100 and embedded["n_indexed"] == 100
    assert embedded["dim"] == 384 and embedded["encoder_id"].startswith("sentence-transformers:")
    out = table(config)
    assert out.get_column("index_id").sort().to_list() == list(range(100))
    assert (out.get_column("vote_near_song") == 0).any()  # the embedding LF saw the vectors
    assert first.metrics["gaps"]["n_candidates"] > 0
    assert first.metrics["review"]["reason_counts"].get("gap_candidate", 0) > 0

    load_youtube_spam().slice(100, 20).write_parquet(tmp_path / "data" / "part-002.parquet")
    second = run_job(config, progress=False)
    assert second.record["embeddings"]["n_embedded"] == 20
    assert second.record["embeddings"]["n_indexed"] == 120
    after = table(config)
    kept = after.join(out.select("asset_id", "index_id"), on="asset_id", suffix="_before")
    assert kept.get_column("index_id").equals(kept.get_column("index_id_before"))
    assert sorted(after.get_column("index_id")) == list(range(120))
    snapshots = sorted(
        p.name for p in (tmp_path / "out" / "enriched_embeddings" / "index").iterdir()
    )
    assert snapshots == [first.run_id]  # incremental: the second run wrote a delta file
    assert [d["rows"] for d in second.record["embeddings"]["index_deltas"]] == [20]
    from embeddings.cache import EmbeddingCache

    with EmbeddingCache(tmp_path / "out" / "enriched_embeddings") as cache:
        assert len(cache) == 120  # every text encoded once, across both runs
    third = run_job(config, progress=False)  # nothing new: the last snapshot is reused
    assert third.record["embeddings"]["n_embedded"] == 0
    assert third.record["embeddings"]["index_path"] == second.record["embeddings"]["index_path"]


# -- the command line ------------------------------------------------------------------------
def test_cli_run_prints_one_line_and_exits_zero(tmp_path, make_job):
    from typer.testing import CliRunner

    from enrich.cli import app

    job = make_job(tmp_path)
    out = CliRunner().invoke(app, ["--quiet", "run", str(job)])
    assert out.exit_code == 0, out.output
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("run ") and "240 assets" in lines[0]
    summary = Path(lines[0].split("summary ")[1].split(";")[0])
    assert json.loads(summary.read_text())["status"] == "succeeded"


def test_cli_run_failure_is_one_line_and_exit_one(tmp_path, make_job):
    from typer.testing import CliRunner

    from enrich.cli import app

    job = make_job(tmp_path, job=JOB.replace("data/*.parquet", "data/missing.parquet"))
    out = CliRunner().invoke(app, ["--quiet", "run", str(job)])
    assert out.exit_code == 1
    assert out.output.startswith("enrich: error: source file ")
    assert len(out.output.strip().splitlines()) == 1
    out = CliRunner().invoke(app, ["run", str(tmp_path / "nope.toml")])
    assert out.exit_code == 1 and "enrich init" in out.output


@pytest.mark.slow
def test_cli_init_writes_a_job_that_runs_on_the_bundled_data(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from enrich.cli import app

    monkeypatch.chdir(tmp_path)
    cli = CliRunner()
    assert cli.invoke(app, ["init"]).exit_code == 0
    again = cli.invoke(app, ["init"])
    assert again.exit_code == 1 and "--force" in again.output
    assert cli.invoke(app, ["init", "--force"]).exit_code == 0
    out = cli.invoke(app, ["--quiet", "run", "job.toml"])
    assert out.exit_code == 0, out.output
    assert "1,953 assets (1,953 new" in out.stdout
    assert (tmp_path / "out" / "youtube" / "enriched_reports" / "latest.html").is_file()
    result = json.loads((tmp_path / "out/youtube/enriched_reports/latest.json").read_text())
    assert result["metrics"]["gold_accuracy"] > 0.6  # HAM and SPAM are about 50:50


def test_csv_and_delta_sources_give_the_same_table(tmp_path):
    from deltalake import write_deltalake

    data = load_youtube_spam().slice(0, 80).drop("published_at")
    (tmp_path / "lfs.py").write_text(LFS)
    data.write_csv(tmp_path / "comments.csv")
    write_deltalake(str(tmp_path / "comments_delta"), data.to_arrow())
    tables = []
    for name, path in (("csv", "comments.csv"), ("delta", "comments_delta")):
        job = tmp_path / f"{name}.toml"
        job.write_text(
            JOB.replace('"data/*.parquet"', f'"{path}"').replace("out/enriched", f"out/{name}")
        )
        result = run_job(load_job_config(job), progress=False)
        assert result.counts["n_new"] == 80
        tables.append(
            read_table(tmp_path / "out" / name).drop("run_id", "created_at", "source_file")
        )
    a, b = (t.sort("asset_id") for t in tables)
    assert a.drop("model_version", "lf_versions").equals(b.drop("model_version", "lf_versions"))
    again = run_job(load_job_config(tmp_path / "delta.toml"), progress=False)
    assert again.counts["n_files_read"] == 0  # same Delta version: nothing read


def test_a_run_without_gold_imports_neither_scikit_learn_nor_scipy_stats(tmp_path, make_job):
    """Importing them takes about a second, which a small nightly run would mostly spend
    waiting; the label model and the slice intervals need neither."""
    path = make_job(tmp_path, job=JOB.replace('[gold]\ncolumn = "label"\n', ""))
    code = (
        "import sys; from enrich.job.config import load_job_config; "
        "from enrich.job.run import run_job; "
        f"result = run_job(load_job_config({str(path)!r}), progress=False); "
        "assert result.status == 'succeeded' and result.metrics['slices'], result.message; "
        "print(sorted(m for m in ('sklearn', 'scipy.stats', 'pandas') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_a_few_new_assets_keep_the_label_model_structure_so_old_rows_stay_put(tmp_path, make_job):
    # structure="auto" chooses EM or equal weights from the data; 1% more assets could tip
    # that choice and move every probability, so the job keeps it until much has changed
    config = load_job_config(make_job(tmp_path, parts=((0, 240),)))
    first = run_job(config, progress=False)
    load_youtube_spam().slice(240, 3).write_parquet(tmp_path / "data" / "part-001.parquet")
    second = run_job(config, progress=False)
    chosen, kept = first.record["label_model_structure"], second.record["label_model_structure"]
    assert chosen["chosen_at_assets"] == 240 and not chosen["kept"]
    assert kept["kept"] and kept["structure"] == chosen["structure"]
    assert kept["chosen_at_assets"] == 240 and kept["changed_since"] == 3
    assert second.counts["n_written"] < 240  # not every row (at 50k assets: only the new ones)
