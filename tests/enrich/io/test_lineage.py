"""Runs, asset history and run diffs on a real Delta table written by three job runs."""

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from enrich.cli import app
from enrich.datasets import load_youtube_spam
from enrich.io.lineage import diff, history, resolve_run, runs
from enrich.io.store import TableHistoryError, read_table
from enrich.job.config import load_job_config
from enrich.job.run import run_job

LFS = """
from labeling_functions import keyword_lf, regex_lf
check_out = keyword_lf("check_out", ["check out", "my channel", "subscribe"], label="SPAM")
link = regex_lf("link", r"https?://", label="SPAM")
song = keyword_lf("song", ["song", "love"], label="HAM")
"""

JOB = """
[source]
path = "data/*.parquet"
text_column = "text"
[labeling_functions]
sources = ["lfs.py"]
classes = ["HAM", "SPAM"]
[output]
path = "out/enriched"
proba_tolerance = 0
"""


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    """Run 1: 80 assets; run 2: +40 new assets and one asset edited into spam; run 3: LF change."""
    root = tmp_path_factory.mktemp("lineage")
    data = load_youtube_spam()
    (root / "data").mkdir()
    (root / "lfs.py").write_text(LFS)
    (root / "job.toml").write_text(JOB)
    first = data.slice(0, 80)
    first.write_parquet(root / "data" / "a.parquet")
    config = load_job_config(root / "job.toml")
    r1 = run_job(config, progress=False)
    labelled = read_table(config.output.path).sort("asset_id")
    target = labelled.filter(pl.col("label_name") == "HAM").get_column("asset_id")[0]
    edited = first.with_columns(
        pl.when(pl.col("asset_id") == target)
        .then(pl.lit("check out my channel http://x.example"))
        .otherwise(pl.col("text"))
        .alias("text")
    )
    edited.write_parquet(root / "data" / "a.parquet")
    data.slice(80, 40).write_parquet(root / "data" / "b.parquet")
    r2 = run_job(config, progress=False)
    (root / "lfs.py").write_text(LFS.replace('["song", "love"]', '["song", "love", "great"]'))
    r3 = run_job(load_job_config(root / "job.toml"), progress=False)
    return root, config, target, (r1, r2, r3)


def test_runs_lists_every_run_with_its_metrics(three_runs):
    _, config, _, results = three_runs
    listed = runs(config.output.path)
    table = listed.table
    assert table.get_column("run_id").to_list() == [r.run_id for r in results]
    assert table.get_column("table_version").to_list() == [0, 1, 2]
    assert table.get_column("n_assets").to_list() == [80, 120, 120]
    assert table.get_column("n_new").to_list() == [80, 40, 0]
    assert table.get_column("n_changed").to_list() == [0, 1, 0]
    assert table.get_column("coverage").null_count() == 0
    metrics = json.loads(table.get_column("metrics")[2])
    assert "class_balance" in metrics
    assert "Runs of" in str(listed)


def test_history_follows_one_asset_across_runs(three_runs):
    _, config, target, results = three_runs
    found = history(config.output.path, target).table
    assert found.get_column("run_id").to_list() == [r.run_id for r in results]
    assert found.get_column("label_name").to_list() == ["HAM", "SPAM", "SPAM"]
    assert found.get_column("votes")[1] == "check_out=SPAM, link=SPAM"
    assert found.get_column("written_by").to_list()[:2] == [results[0].run_id, results[1].run_id]
    assert found.get_column("present").all()


def test_history_of_an_asset_added_later_shows_its_absence(three_runs):
    _, config, _, _ = three_runs
    late = load_youtube_spam().get_column("asset_id")[100]
    found = history(config.output.path, late).table
    assert found.get_column("present").to_list() == [False, True, True]
    assert found.get_column("label_name")[0] is None


def test_history_of_an_unknown_asset_is_a_clear_error(three_runs):
    _, config, _, _ = three_runs
    with pytest.raises(TableHistoryError, match="asset 'no-such-id' is in no version"):
        history(config.output.path, "no-such-id")


def test_diff_shows_flips_new_assets_and_coverage_change(three_runs):
    _, config, target, results = three_runs
    changes = diff(config.output.path, results[0].run_id, results[1].run_id)
    assert changes.totals["n_new"] == 40 and changes.totals["n_removed"] == 0
    assert target in changes.flipped.get_column("asset_id").to_list()
    row = changes.flipped.filter(pl.col("asset_id") == target).row(0, named=True)
    assert (row["label_a"], row["label_b"]) == ("HAM", "SPAM")
    coverage = diff(config.output.path, "previous", "latest").coverage
    song = coverage.filter(pl.col("lf") == "song").row(0, named=True)
    assert song["change"] > 0 and song["coverage_b"] > song["coverage_a"]
    assert "labels flipped" in str(changes)


def test_runs_are_named_by_id_prefix_alias_or_version(three_runs):
    _, config, _, results = three_runs
    path = config.output.path
    assert resolve_run(path, results[1].run_id)[0] == 1
    assert resolve_run(path, results[2].run_id[:-2])[0] == 2
    assert resolve_run(path, "latest")[0] == 2 and resolve_run(path, "previous")[0] == 1
    assert resolve_run(path, "v0")[1]["run_id"] == results[0].run_id
    with pytest.raises(TableHistoryError, match="ambiguous"):
        resolve_run(path, results[0].run_id[:4])
    with pytest.raises(TableHistoryError, match="the latest runs are"):
        resolve_run(path, "zzz")


def test_lineage_of_a_missing_table_is_clear(tmp_path):
    with pytest.raises(TableHistoryError, match="run the job first"):
        runs(tmp_path / "nothing")


def test_cli_runs_history_and_diff(three_runs):
    root, config, target, results = three_runs
    cli = CliRunner()
    job = str(Path(root) / "job.toml")
    out = cli.invoke(app, ["runs", "--job", job, "--json"])
    assert out.exit_code == 0, out.output
    assert [r["run_id"] for r in json.loads(out.output)] == [r.run_id for r in results]
    out = cli.invoke(app, ["history", target, "--table", config.output.path, "--json"])
    assert out.exit_code == 0 and json.loads(out.output)[1]["label_name"] == "SPAM"
    out = cli.invoke(app, ["diff", "v0", "v1", "--job", job])
    assert out.exit_code == 0 and f"  {target}: HAM -> SPAM" in out.output
    out = cli.invoke(app, ["diff", "v0", "nope", "--job", job])
    assert out.exit_code == 1 and out.output.startswith("enrich: error: no run 'nope'")
