"""What the job writes and reports: no label where no LF voted, an asset that moves between
source files, drift over labeled assets, and a report that says why and flags what
disagrees (issue 13 items 2, 3, 6, 8, 9)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from enrich._internal.vote_arrays import compress_votes
from enrich.datasets import load_youtube_spam
from enrich.io.label_studio import to_label_studio
from enrich.io.report import accuracy_disagreement, drift_rows, render_html
from enrich.io.store import read_table
from enrich.job.config import load_job_config
from enrich.job.metrics import run_metrics
from enrich.job.run import run_job
from enrich.job.state import compare_previous
from enrich.models.output import enriched_table
from enrich.votes import VoteMatrix

# LFs that leave many comments without a vote
LFS = """
from labeling_functions import keyword_lf
check = keyword_lf("check", ["check out", "subscribe"], label="SPAM")
song = keyword_lf("song", ["song"], label="HAM")
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

PARTS = {"a.parquet": (0, 60), "b.parquet": (60, 120)}


def test_rows_no_lf_voted_on_have_no_label_in_the_table_or_label_studio(tmp_path, make_job):
    result = run_job(load_job_config(make_job(tmp_path)), progress=False)
    table = read_table(tmp_path / "out" / "enriched")
    empty = table.filter(pl.col("all_abstain"))
    assert empty.height == result.metrics["n_all_abstain"] > 0
    assert empty["label"].null_count() == empty.height
    assert empty["label_name"].null_count() == empty.height
    assert empty["confidence"].null_count() == empty.height
    assert empty["needs_review"].all()
    voted = table.filter(~pl.col("all_abstain"))
    assert voted["label"].null_count() == 0 and voted["confidence"].null_count() == 0
    # never pre-annotated in Label Studio
    data = load_youtube_spam().slice(0, 120)
    tasks = to_label_studio(table, data, class_names=["HAM", "SPAM"])
    by_id = {t["data"]["asset_id"]: t for t in tasks}
    assert all(by_id[a]["predictions"] == [] for a in empty["asset_id"].to_list())
    assert all(by_id[a]["predictions"] for a in voted["asset_id"].to_list())
    # the figures count labeled assets only
    assert result.metrics["n_labeled"] == voted.height
    assert sum(result.metrics["class_balance"].values()) == pytest.approx(1.0)
    # a second run over the same data writes nothing (null labels compare as unchanged)
    again = run_job(load_job_config(tmp_path / "job.toml"), progress=False)
    assert again.counts["n_written"] == 0


def test_an_asset_that_moves_between_files_is_tracked(tmp_path, make_job):
    job = make_job(tmp_path)
    run_job(load_job_config(job), progress=False)
    data = load_youtube_spam()
    a, b = data.slice(0, 60), data.slice(60, 60)
    moved = a.get_column("asset_id")[5]
    # run 2: one asset moves from a to b, nothing else changes
    a.filter(pl.col("asset_id") != moved).write_parquet(tmp_path / "data" / "a.parquet")
    pl.concat([b, a.filter(pl.col("asset_id") == moved)]).write_parquet(
        tmp_path / "data" / "b.parquet"
    )
    run_job(load_job_config(job), progress=False)
    row = read_table(tmp_path / "out" / "enriched").filter(pl.col("asset_id") == moved)
    assert Path(row["source_file"][0]).name == "b.parquet"
    # run 3: only b changes (a is not read): the moved asset is no copy of itself in a
    edited = pl.read_parquet(tmp_path / "data" / "b.parquet").with_columns(
        pl.when(pl.col("asset_id") == b.get_column("asset_id")[0])
        .then(pl.lit("check out my new channel"))
        .otherwise(pl.col("text"))
        .alias("text")
    )
    edited.write_parquet(tmp_path / "data" / "b.parquet")
    third = run_job(load_job_config(job), progress=False)
    assert third.counts["n_changed"] == 1
    assert read_table(tmp_path / "out" / "enriched").height == 120


# -- drift over labeled assets -------------------------------------------------------------
CLASSES = ("HAM", "SPAM")


def _run(votes: np.ndarray, proba: np.ndarray, previous=None, compared=None):
    vm = VoteMatrix(
        votes=votes,
        lf_names=("a", "b"),
        asset_ids=pl.Series("asset_id", np.arange(len(votes))),
        class_names=CLASSES,
    )
    enriched = enriched_table(
        vm, proba, run_id="r", model_version="m", created_at=dt.datetime(2026, 1, 1)
    )
    patterns = compress_votes(votes)
    if compared is None:
        compared = compare_previous(enriched, enriched.select("asset_id"), CLASSES)
    return run_metrics(
        enriched,
        votes=vm,
        patterns=patterns,
        labelled=None,
        model=None,
        proba=proba,
        gold=None,
        classes=CLASSES,
        compared=compared,
        previous_record=previous,
        slice_columns=(),
        min_slice_size=10,
    )


def test_a_moving_prior_on_no_vote_rows_is_no_confidence_drift():
    rng = np.random.default_rng(0)
    votes = rng.choice([-1, 0, 1], size=(1000, 2), p=[0.6, 0.2, 0.2]).astype(np.int32)
    empty = (votes < 0).all(axis=1)
    assert empty.mean() > 0.3
    sure = np.where(votes.max(axis=1) == 1, 0.9, 0.1)
    labeled = np.column_stack([1 - sure, sure])
    # run 1: the prior is 0.58 POS; run 2: 0.66 (a refit moved it), labeled rows unchanged
    before = np.where(empty[:, None], [0.42, 0.58], labeled)
    after = np.where(empty[:, None], [0.34, 0.66], labeled)
    first = _run(votes, before)
    second = _run(votes, after, previous={"run_id": "r1", "metrics": first})
    moved = second["drift"]
    assert moved["confidence_psi"] == pytest.approx(0.0, abs=1e-9)
    assert moved["mean_confidence_change"] == pytest.approx(0.0, abs=1e-12)
    assert moved["class_balance_change"] == {"HAM": 0.0, "SPAM": 0.0}
    assert moved["all_abstain_share_change"] == pytest.approx(0.0)
    assert moved["confidence_shift"] == pytest.approx(0.0, abs=1e-12)
    levels = {r["figure"]: r["level"] for r in drift_rows(moved, second)}
    assert levels["confidence PSI"] == levels["confidence shift"] == "stable"


def test_a_small_move_across_a_bin_edge_is_a_small_shift():
    """Most labeled assets share one vote pattern: a refit moving its confidence from 0.749
    to 0.751 crosses a histogram edge. The PSI calls that a major shift; the shift says
    how far confidence moved."""
    votes = np.array([[1, -1]] * 900 + [[0, 0]] * 100, dtype=np.int32)
    first = _run(votes, np.where(votes[:, :1] == 1, [0.251, 0.749], [0.9, 0.1]))
    second = _run(
        votes,
        np.where(votes[:, :1] == 1, [0.249, 0.751], [0.9, 0.1]),
        previous={"run_id": "r1", "metrics": first},
    )
    moved = second["drift"]
    assert moved["confidence_psi"] > 1.0  # what the PSI says
    assert moved["confidence_shift"] <= 0.05 * 0.9 + 1e-9  # at most one bin, for 90%
    assert abs(moved["mean_confidence_change"]) < 0.003


def test_drift_against_an_older_record_is_not_compared():
    votes = np.array([[0, -1], [-1, -1], [1, 1]], dtype=np.int32)
    proba = np.array([[0.8, 0.2], [0.4, 0.6], [0.1, 0.9]])
    old = _run(votes, proba)
    old.pop("confidence_scope")  # a record written before labels could be null
    moved = _run(votes, proba, previous={"run_id": "r0", "metrics": old})["drift"]
    assert moved["comparable"] is False and moved["confidence_psi"] is None
    assert "next run" in moved["note"]


def test_report_explains_each_drift_figure_and_its_level():
    record = {
        "run_id": "r2",
        "classes": list(CLASSES),
        "metrics": {
            "n_assets": 100,
            "n_all_abstain": 40,
            "all_abstain_share": 0.4,
            "confidence_scope": "labeled",
            "lfs": [],
            "drift": {
                "previous_run_id": "r1",
                "comparable": True,
                "n_assets_before": 100,
                "n_labels_flipped": 8,
                "confidence_psi": 0.31,
                "mean_confidence_change": 0.02,
                "class_balance_change": {"HAM": 0.01, "SPAM": -0.01},
                "all_abstain_share_change": 0.0,
                "coverage_change": {"a": 0.0},
            },
        },
    }
    page = render_html(record, None)
    assert "population stability index" in page
    assert "<span class='bad'>alert</span>" in page  # PSI 0.31 and 8% flipped
    assert "40 asset(s) (40.0%) got no LF vote" in page
    assert "left out of the class balance" in page


# -- gap candidates: say why none ----------------------------------------------------------
def test_report_says_why_no_similar_assets_were_proposed():
    def page(gaps):
        record = {"run_id": "r", "classes": ["HAM"], "metrics": {"lfs": [], "gaps": gaps}}
        return render_html(record, None)

    none_to_search = page(
        {
            "enabled": True,
            "gaps": [{"gap": "class=HAM", "kind": "class", "reason": "few"}],
            "n_candidates": 0,
            "n_searched": 0,
            "candidates_note": "no unlabeled assets to search: every asset ...",
        }
    )
    assert "0 similar assets proposed for review: no unlabeled assets to search" in none_to_search
    no_index = page(
        {
            "enabled": True,
            "gaps": [],
            "n_candidates": None,
            "candidates_note": "no embedding index to search ([embeddings] is off)",
        }
    )
    assert "No similar assets proposed for review: no embedding index" in no_index


def test_followups_give_the_reason_without_an_index():
    from enrich.job.config import GapsConfig
    from enrich.job.followups import gap_candidates

    enriched = pl.DataFrame(
        {
            "asset_id": list(range(40)),
            "label_name": ["HAM"] * 38 + ["SPAM"] * 2,
            "confidence": [0.95] * 40,
            "needs_review": [False] * 40,
        }
    )
    summary, candidates = gap_candidates(
        enriched, None, classes=["HAM", "SPAM"], slice_columns=(), settings=GapsConfig()
    )
    assert candidates is None and "no embedding index" in summary["candidates_note"]


# -- estimated vs measured LF accuracy -----------------------------------------------------
@pytest.mark.parametrize(
    ("estimated", "correct", "incorrect", "flag"),
    [(0.99, 73, 27, True), (0.43, 91, 9, True), (0.75, 73, 27, False), (0.9, 3, 1, False)],
)
def test_an_estimate_outside_the_gold_interval_is_flagged(estimated, correct, incorrect, flag):
    check = accuracy_disagreement(
        {"estimated_accuracy": estimated, "correct": correct, "incorrect": incorrect}
    )
    assert check["flag"] is flag
    record = {
        "run_id": "r",
        "classes": ["HAM", "SPAM"],
        "metrics": {
            "lfs": [
                {
                    "lf": "<b>lf</b>",
                    "coverage": 0.5,
                    "correct": correct,
                    "incorrect": incorrect,
                    "empirical_accuracy": correct / (correct + incorrect),
                    "estimated_accuracy": estimated,
                }
            ]
        },
    }
    page = render_html(record, None)
    assert ("disagrees with the accuracy measured on gold" in page) is flag
    assert "<b>lf</b>" not in page  # still escaped


def test_the_job_records_what_the_accuracy_check_needs(tmp_path, make_job):
    job = JOB + '[gold]\ncolumn = "label"\n'
    result = run_job(load_job_config(make_job(tmp_path, job=job)), progress=False)
    rows = result.metrics["lfs"]
    assert all({"correct", "incorrect", "estimated_accuracy"} <= set(r) for r in rows)
    # the report's flag is lf_summary's (one definition of a mismatch)
    for row in rows:
        if row.get("accuracy_mismatch") is not None:
            assert accuracy_disagreement(row)["flag"] is row["accuracy_mismatch"]
    assert json.dumps(rows)  # plain JSON
    assert "estimate vs gold" in Path(result.report_path).read_text()
