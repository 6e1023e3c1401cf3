"""The figures of a job run: class balance, confidence, LF statistics, gold, slices, drift."""

import datetime as dt

import numpy as np
import polars as pl
import pytest

from enrich._internal.vote_arrays import compress_votes
from enrich.job.fit import fit_predict
from enrich.job.metrics import HIST_BINS, drift, psi, run_metrics, slice_metrics
from enrich.job.state import compare_previous
from enrich.models.output import enriched_table
from enrich.votes import VoteMatrix

CLASSES = ("HAM", "SPAM")
RNG = np.random.default_rng(3)
N = 120
VOTES = RNG.choice([-1, 0, 1], size=(N, 3), p=[0.5, 0.25, 0.25]).astype(np.int32)
VIDEO = RNG.choice(["v1", "v2", "v3"], size=N)
# gold agrees with the first LF where it votes
GOLD = np.where(VOTES[:, 0] >= 0, VOTES[:, 0], RNG.integers(0, 2, size=N))


def enriched_run(gold=None):
    votes = VoteMatrix(
        votes=VOTES,
        lf_names=("a", "b", "c"),
        asset_ids=pl.Series("asset_id", np.arange(N)),
        class_names=CLASSES,
    )
    patterns = compress_votes(VOTES)
    labelled = compress_votes(np.column_stack([VOTES, gold])) if gold is not None else None
    model, pattern_proba = fit_predict(patterns, labelled, cardinality=2, random_state=0, params={})
    proba = pattern_proba[patterns.inverse]
    enriched = enriched_table(
        votes, proba, run_id="r2", model_version="m", created_at=dt.datetime(2026, 1, 1)
    ).with_columns(pl.Series("video", VIDEO))
    return enriched, votes, patterns, labelled, model, proba


def metrics_of(gold=None, previous_record=None, compared=None, slices=("video",)):
    enriched, votes, patterns, labelled, model, proba = enriched_run(gold)
    if compared is None:
        compared = compare_previous(enriched, enriched.select("asset_id"), CLASSES)
    return enriched, run_metrics(
        enriched,
        votes=votes,
        patterns=patterns,
        labelled=labelled,
        model=model,
        proba=proba,
        gold=gold,
        classes=CLASSES,
        compared=compared,
        previous_record=previous_record,
        slice_columns=slices,
        min_slice_size=10,
    )


def test_run_metrics_count_labels_confidence_and_lfs():
    enriched, metrics = metrics_of()
    labels = enriched.get_column("label")
    assert metrics["n_assets"] == N
    assert metrics["class_counts"] == {
        "HAM": int((labels == 0).sum()),
        "SPAM": int((labels == 1).sum()),
    }
    # the label figures count labeled assets only; the no-vote ones are counted apart
    unlabeled = labels.null_count()
    assert 0 < unlabeled == metrics["n_all_abstain"] == N - metrics["n_labeled"]
    assert metrics["all_abstain_share"] == pytest.approx(unlabeled / N)
    assert sum(metrics["class_balance"].values()) == pytest.approx(1.0)
    hist = metrics["confidence_hist"]
    assert len(hist["counts"]) == HIST_BINS and sum(hist["counts"]) == N - unlabeled
    assert metrics["mean_confidence"] == pytest.approx(enriched.get_column("confidence").mean())
    assert metrics["coverage"] == pytest.approx(float((VOTES >= 0).any(axis=1).mean()))
    assert [row["lf"] for row in metrics["lfs"]] == ["a", "b", "c"]
    assert metrics["n_needs_review"] == int(enriched.get_column("needs_review").sum())
    assert metrics["gold_accuracy"] is None and "gold" not in metrics
    assert metrics["slices"]["metric"] != "accuracy" and metrics["drift"] is None


def test_gold_scores_the_run_and_the_slices():
    enriched, metrics = metrics_of(gold=GOLD)
    predicted = enriched.get_column("label").fill_null(-1).to_numpy()
    assert metrics["gold_accuracy"] == pytest.approx(metrics["gold"]["accuracy"])
    assert 0.5 < metrics["gold_accuracy"] <= 1.0
    assert {row["class"] for row in metrics["gold"]["per_class"]} >= {"HAM"}
    # label accuracy is judged where the asset has a label (no LF vote: nothing to judge)
    labeled = predicted >= 0
    assert metrics["slices"]["overall"]["metric"] == pytest.approx(
        float((predicted == GOLD)[labeled].mean())
    )
    slices = {row["slice"] for row in metrics["slices"]["table"]}
    assert {"video=v1", "video=v2", "video=v3"} <= slices


def test_slice_metrics_need_slices_and_enough_gold():
    enriched = enriched_run()[0]
    assert slice_metrics(enriched, None, slice_columns=(), min_size=10) is None
    assert slice_metrics(enriched.head(0), None, slice_columns=["video"], min_size=10) is None
    few = np.full(N, -1)
    few[:5] = GOLD[:5]
    by_confidence = slice_metrics(enriched, few, slice_columns=["video"], min_size=10)
    by_accuracy = slice_metrics(enriched, GOLD, slice_columns=["video"], min_size=10)
    assert by_confidence["metric"] != by_accuracy["metric"]
    mean_confidence = enriched.get_column("confidence").mean()
    assert by_confidence["overall"]["metric"] == pytest.approx(mean_confidence)


def test_drift_against_the_previous_run():
    enriched, before = metrics_of()
    flipped = enriched.select(
        pl.when(pl.col("label") == 0).then(1).otherwise(pl.col("label")).alias("_prev_label"),
        pl.col("needs_review").alias("_prev_review"),
        pl.lit(0.0).alias("_moved"),
    )
    record = {"run_id": "r1", "metrics": before | {"lfs": before["lfs"][:2]}}
    _, metrics = metrics_of(previous_record=record, compared=flipped)
    moved = metrics["drift"]
    assert moved["previous_run_id"] == "r1" and moved["n_assets_before"] == N
    assert moved["n_labels_flipped"] == metrics["class_counts"]["HAM"]
    assert moved["class_balance_change"] == {"HAM": 0.0, "SPAM": 0.0}
    assert moved["mean_confidence_change"] == 0.0 and moved["confidence_psi"] == 0.0
    assert moved["coverage_change"] == {"a": 0.0, "b": 0.0, "c": None}  # c is new
    enriched = enriched_run()[0]
    assert drift(None, enriched, metrics, CLASSES, flipped) is None


def test_psi_is_zero_for_the_same_shape_and_grows_with_the_shift():
    assert psi([5, 5, 10], [10, 10, 20]) == pytest.approx(0.0)
    small, large = psi([10, 10], [12, 8]), psi([10, 10], [18, 2])
    assert 0 < small < large
    assert psi(None, [1, 2]) is None and psi([1, 2], [1, 2, 3]) is None
    assert psi([0, 0], [1, 2]) is None and psi([1, 2], [0, 0]) is None
