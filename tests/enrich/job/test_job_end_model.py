"""The job's ``[end_model]``: a classifier on the label model's probabilities, every asset."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from enrich.errors import JobConfigError
from enrich.io.store import read_table
from enrich.job.config import load_job_config
from enrich.job.end_model_step import linear_proba, sample_drift, training_sample
from enrich.job.run import run_job

LFS = """
from labeling_functions import keyword_lf, regex_lf

check_out = keyword_lf("check_out", ["check out", "my channel", "subscribe"], label="SPAM")
link = regex_lf("link", r"https?://|www\\.", label="SPAM", ignore_case=True)
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

[gaps]
min_slice_size = 10

{sections}

[output]
path = "out/enriched"
lock_timeout = 5
"""

TABULAR = """
[end_model]
enabled = true
embeddings = false
feature_columns = ["n_chars", "n_words", "has_http", "n_digits", "n_upper"]
max_train_rows = 150
cv = 3
"""

PARTS = ((0, 120), (120, 240))


def edit_source(name: str, rows: pl.DataFrame) -> pl.DataFrame:
    """Numeric features, a small precomputed vector (pattern counts), gold on every fifth asset."""
    text = pl.col("text")
    counts = [text.str.count_matches(pattern).cast(pl.Float32) for pattern in _PATTERNS]
    vector = pl.concat_list([*counts, pl.lit(1.0, dtype=pl.Float32)])  # never all zeros
    return (
        rows.with_row_index("_i")
        .with_columns(
            text.str.len_chars().cast(pl.Int64).alias("n_chars"),
            text.str.split(" ").list.len().cast(pl.Int64).alias("n_words"),
            text.str.contains("(?i)http|www").alias("has_http"),
            text.str.count_matches(r"\d").cast(pl.Int64).alias("n_digits"),
            text.str.count_matches(r"[A-Z]").cast(pl.Int64).alias("n_upper"),
            vector.alias("vector"),
            pl.when(pl.col("_i") % 5 == 0).then(pl.col("label")).otherwise(None).alias("label"),
        )
        .drop("_i")
    )


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


def _table(result) -> pl.DataFrame:
    return read_table(result.table_path).sort("asset_id")


def test_end_model_labels_every_asset_with_its_source(tmp_path, make_job):
    job = make_job(tmp_path, source_extra="", sections=TABULAR)
    result = run_job(load_job_config(job), progress=False)
    table = _table(result)
    model_cols = ["model_label", "model_label_name", "model_proba_HAM", "model_proba_SPAM"]
    assert set(model_cols) | {"model_confidence", "label_source"} <= set(table.columns)
    assert table.get_column("model_label").null_count() == 0
    # every asset gets a model label, those no LF voted on included
    no_vote = table.filter(pl.col("label").is_null())
    assert no_vote.height > 0
    assert no_vote.get_column("model_label").null_count() == 0
    # label_source: gold where gold is known, else lfs where some LF voted, else model
    expected = (
        pl.when(pl.col("gold") >= 0)
        .then(pl.lit("gold"))
        .when(pl.col("label").is_not_null())
        .then(pl.lit("lfs"))
        .otherwise(pl.lit("model"))
    )
    assert table.select((pl.col("label_source") == expected).all()).item()
    assert set(table.get_column("label_source")) == {"gold", "lfs", "model"}
    probs = table.select("model_proba_HAM", "model_proba_SPAM").to_numpy()
    assert abs(probs.sum(axis=1) - 1).max() < 1e-9
    metrics = result.metrics["end_model"]
    assert metrics["n_train"] <= 150
    assert metrics["n_labeled_by_model"] == no_vote.height
    gold_models = {row["model"] for row in metrics["vs_gold"]["overall"]}
    assert gold_models == {"end_model", "label_model"}
    assert {row["class"] for row in metrics["vs_label_model"]["per_class"]} == {"HAM", "SPAM"}
    assert "n_gold_suspect" in metrics
    assert "End model" in result.report_path.read_text()


def test_end_model_second_run_is_incremental_and_consistent(tmp_path, make_job):
    job = make_job(tmp_path, source_extra="", sections=TABULAR)
    first = run_job(load_job_config(job), progress=False)
    # a few new assets in a new file
    make_job(tmp_path, parts={"part-002.parquet": (240, 252)}, source_extra="", sections=TABULAR)
    second = run_job(load_job_config(job), progress=False)
    assert second.counts["n_new"] == 12
    assert second.counts["n_read"] == 12  # the old files are not read again
    assert second.record["mode"] in ("merge", "append")
    table = _table(second)
    assert table.height == first.counts["n_assets"] + 12
    assert table.get_column("asset_id").n_unique() == table.height
    assert table.get_column("model_label").null_count() == 0
    # rows whose model label flipped were rewritten: the table holds this run's labels
    current = {k: v for k, v in second.metrics["end_model"]["class_counts"].items() if v}
    written = table.get_column("model_label_name").value_counts()
    assert dict(zip(written["model_label_name"], written["count"], strict=True)) == current
    assert set(table.get_column("label_source")) <= {"gold", "lfs", "model"}


def test_end_model_on_the_jobs_precomputed_embeddings(tmp_path, make_job):
    sections = """
[embeddings]
enabled = true
encoder = "precomputed"

[end_model]
enabled = true
cv = 3
"""
    job = make_job(tmp_path, source_extra='embedding_column = "vector"', sections=sections)
    result = run_job(load_job_config(job), progress=False)
    table = _table(result)
    assert table.get_column("model_label").null_count() == 0
    assert "vector" not in table.columns  # vectors come from the job's index, not the table
    assert result.metrics["end_model"]["n_train"] > 0


def test_end_model_off_by_default_writes_no_model_columns(tmp_path, make_job):
    job = make_job(tmp_path, source_extra="", sections="")
    result = run_job(load_job_config(job), progress=False)
    table = _table(result)
    added = {"model_label", "model_label_name", "model_confidence", "label_source"}
    assert not added & set(table.columns)
    assert not [c for c in table.columns if c.startswith("model_proba_")]
    assert "end_model" not in result.metrics


def test_end_model_without_features_names_the_key(tmp_path, make_job):
    job = make_job(tmp_path, source_extra="", sections="[end_model]\nenabled = true\n")
    with pytest.raises(JobConfigError, match=r"end_model\.feature_columns"):
        load_job_config(job)


def test_end_model_unknown_key_refused(tmp_path, make_job):
    job = make_job(tmp_path, source_extra="", sections="[end_model]\nenabeld = true\n")
    with pytest.raises(JobConfigError, match="enabeld"):
        load_job_config(job)


def test_end_model_retrains_on_schedule_and_predicts_only_new_assets_between(tmp_path, make_job):
    sections = TABULAR + "retrain_after = 1.0\nretrain_every = 3\n"
    job = make_job(tmp_path, source_extra="", sections=sections)
    first = run_job(load_job_config(job), progress=False)
    assert first.metrics["end_model"]["retrained"]
    assert first.record["end_model"]["runs_since_training"] == 0
    before = _table(first)
    make_job(tmp_path, parts={"part-002.parquet": (240, 252)}, source_extra="", sections=sections)
    second = run_job(load_job_config(job), progress=False)
    assert not second.metrics["end_model"]["retrained"]
    assert second.record["end_model"]["runs_since_training"] == 1
    after = _table(second)
    assert after.get_column("model_label").null_count() == 0
    # the assets of the first run keep the model's probabilities (same stored model)
    cols = ["asset_id", "model_proba_HAM", "model_proba_SPAM"]
    kept = before.select(cols).join(after.select(cols), on="asset_id", suffix="_after")
    assert kept.height == before.height
    assert (kept["model_proba_SPAM"] - kept["model_proba_SPAM_after"]).abs().max() < 1e-12
    # trained on runs 1, 4, 7...: the third run still predicts, the fourth retrains
    third = run_job(load_job_config(job), progress=False)
    assert not third.metrics["end_model"]["retrained"]
    fourth = run_job(load_job_config(job), progress=False)
    assert fourth.metrics["end_model"]["retrained"]
    assert fourth.record["end_model"]["runs_since_training"] == 0
    assert fourth.record["end_model"]["retrain"]["reason"].startswith("3 runs since run ")


FEATURES = ["n_chars", "n_words", "has_http", "n_digits", "n_upper"]


def _stored_model_proba(table: pl.DataFrame, state: dict) -> np.ndarray:
    """Every asset's probabilities by the linear model a run stored (its run record)."""
    raw = table.select(pl.col(c).cast(pl.Float64).fill_null(0.0) for c in FEATURES).to_numpy()
    mean, scale = np.asarray(state["feature_mean"]), np.asarray(state["feature_scale"])
    return linear_proba(state, (raw - mean) / scale)


def test_end_model_not_retrained_while_its_sample_moves_little(tmp_path, make_job):
    job = make_job(tmp_path, source_extra="", sections=TABULAR)  # retrain_after = 0.05
    first = run_job(load_job_config(job), progress=False)
    assert first.record["end_model"]["retrain"]["retrained"]
    before = _table(first)
    # 3 new assets (about 1%): the training sample barely moves, the stored model predicts
    make_job(tmp_path, parts={"part-002.parquet": (240, 243)}, source_extra="", sections=TABULAR)
    second = run_job(load_job_config(job), progress=False)
    retrain = second.record["end_model"]["retrain"]
    assert not retrain["retrained"] and not second.metrics["end_model"]["retrained"]
    assert 0 < retrain["drift"] <= 0.05
    assert "<= retrain_after = 5.00%" in retrain["reason"]
    assert "Kept the stored model: the training sample moved" in second.report_path.read_text()
    # the table holds what predicting every asset with the stored model gives: the new
    # assets its prediction, the others their columns of the training run (out-of-fold for
    # the rows it trained on, its prediction for the rest)
    after = _table(second)
    expected = _stored_model_proba(after, second.record["end_model"])
    got = after.select("model_proba_HAM", "model_proba_SPAM").to_numpy()
    new = ~after.get_column("asset_id").is_in(before.get_column("asset_id").implode()).to_numpy()
    assert new.sum() == 3
    assert np.abs(got[new] - expected[new]).max() < 1e-9
    old = after.filter(~pl.Series(new))
    assert old.select("asset_id", "model_proba_SPAM").equals(
        before.select("asset_id", "model_proba_SPAM")
    )
    differs = np.abs(got[~new] - expected[~new]).max(axis=1) > 1e-9
    assert differs.sum() <= first.metrics["end_model"]["n_train"]  # out-of-fold rows
    assert (
        np.abs(
            before.select("model_proba_HAM", "model_proba_SPAM").to_numpy()[~differs]
            - expected[~new][~differs]
        ).max()
        < 1e-9
    )
    # a trigger setting is not the model: changing it keeps the model
    changed = TABULAR + "retrain_after = 0.5\n"
    make_job(tmp_path, parts={}, source_extra="", sections=changed)
    third = run_job(load_job_config(job), progress=False)
    assert not third.record["end_model"]["retrain"]["retrained"]
    # a batch of half as many assets again moves the sample past retrain_after
    make_job(tmp_path, parts={"part-003.parquet": (243, 363)}, source_extra="", sections=TABULAR)
    fourth = run_job(load_job_config(job), progress=False)
    retrain = fourth.record["end_model"]["retrain"]
    assert retrain["retrained"] and "> retrain_after = 5.00%" in retrain["reason"]
    assert retrain["drift"] > 0.05
    # so does a change of the model's settings
    make_job(tmp_path, parts={}, source_extra="", sections=TABULAR.replace("cv = 3", "cv = 4"))
    fifth = run_job(load_job_config(job), progress=False)
    assert fifth.record["end_model"]["retrain"] == {
        "retrained": True,
        "reason": "the [end_model] settings changed",
        "drift": 0.0,
    }


def test_end_model_retrained_incrementally_equals_a_full_run(tmp_path, make_job):
    sections = TABULAR + "retrain_after = 0.0\n"  # retrain whenever the sample moves
    # every row whose probabilities move is rewritten, so the tables can be compared exactly
    exact = JOB.replace("lock_timeout = 5", "lock_timeout = 5\nproba_tolerance = 0")
    every = {"part-000.parquet": (0, 120), "part-001.parquet": (120, 240)}
    nightly = tmp_path / "nightly"
    job = make_job(nightly, job=exact, parts=every, source_extra="", sections=sections)
    run_job(load_job_config(job), progress=False)
    batch = {"part-002.parquet": (240, 252)}
    make_job(nightly, job=exact, parts=batch, source_extra="", sections=sections)
    second = run_job(load_job_config(job), progress=False)
    assert second.record["end_model"]["retrain"]["retrained"]
    once = make_job(
        tmp_path / "once", job=exact, parts=every | batch, source_extra="", sections=sections
    )
    full = run_job(load_job_config(once), progress=False)
    cols = ["asset_id", "model_label", "model_proba_HAM", "model_proba_SPAM", "label_source"]
    a, b = _table(second).select(cols), _table(full).select(cols)
    assert a.get_column("asset_id").equals(b.get_column("asset_id"))
    assert a.get_column("model_label").equals(b.get_column("model_label"))
    diff = (a.get_column("model_proba_SPAM") - b.get_column("model_proba_SPAM")).abs().max()
    assert diff < 1e-9


def test_training_sample_is_gold_then_the_lowest_hashes_of_the_voted():
    rng = np.random.default_rng(0)
    voted, gold = rng.random(500) < 0.6, rng.random(500) < 0.05
    priority = rng.integers(0, 2**63, 500).astype(np.uint64)
    mask = training_sample(voted, gold, priority, max_rows=100)
    assert mask.sum() == 100 and mask[gold].all()
    others = np.flatnonzero(voted & ~gold)
    lowest = others[np.argsort(priority[others])[: 100 - gold.sum()]]
    assert set(np.flatnonzero(mask & ~gold)) == set(lowest)
    # a few new voted assets change the sample by about as many rows
    more = np.concatenate([voted, np.ones(5, dtype=bool)])
    grown = training_sample(
        more,
        np.concatenate([gold, np.zeros(5, dtype=bool)]),
        np.concatenate([priority, rng.integers(0, 2**63, 5).astype(np.uint64)]),
        max_rows=100,
    )
    assert (grown[:500] != mask).sum() <= 5


def test_sample_drift_is_a_share_of_the_label_mass_in_zero_one():
    rng = np.random.default_rng(1)
    n = 200
    sample = (rng.random(n) < 0.5, rng.integers(0, 3, n), rng.uniform(0.4, 1.0, n))
    none = np.zeros(n, dtype=bool)
    assert sample_drift(sample, sample, none) == 0.0
    other = (rng.random(n) < 0.5, rng.integers(0, 3, n), rng.uniform(0.4, 1.0, n))
    drift = sample_drift(sample, other, none)
    assert 0 < drift <= 1 and drift == pytest.approx(sample_drift(other, sample, none))
    assert sample_drift(sample, sample, np.ones(n, dtype=bool)) == pytest.approx(1.0)
    flipped = (sample[0], (sample[1] + 1) % 3, sample[2])
    assert sample_drift(sample, flipped, none) == pytest.approx(1.0)
