"""review_queue(): hand-computed scores, every reason, ties, exclusions, real WRENCH votes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from enrich.errors import InputError, MissingColumnError
from enrich.review import REASONS, review_queue

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("ENRICH_SHARED_DATA", REPO.parent / "shared" / "data"))


def enriched() -> pl.DataFrame:
    """Five assets shaped like ``enriched_table`` output (the columns the queue reads)."""
    return pl.DataFrame(
        {
            "asset_id": ["a", "b", "c", "d", "e"],
            "label": [1, 1, 0, 0, 1],
            "label_name": ["SPAM", "SPAM", "HAM", "HAM", "SPAM"],
            "confidence": [0.35, 0.90, 0.50, 0.99, 0.35],
            "conflict": [False, True, False, False, False],
            "all_abstain": [False, False, True, False, False],
            "vote_kw": [1, 1, -1, 0, 1],
            "vote_short": [-1, 0, -1, 0, 1],
        }
    )


def test_scores_by_hand_and_ties_broken_by_asset_id():
    queue = review_queue(enriched(), batch_size=10)
    # a, e: low confidence, severity 1 - 0.35/0.7 = 0.5 -> 0.5 + 0.25 = 0.75.
    # b: conflict, 1 of its 2 votes against the label -> severity 0.5 -> 0.75.
    # c: low confidence (severity 1 - 0.5/0.7) + no LF votes (severity 1).
    c_score = (0.5 + 0.5 * (1 - 0.5 / 0.7)) + 1.0
    assert queue.table.select("rank", "asset_id").rows() == [(1, "c"), (2, "a"), (3, "b"), (4, "e")]
    assert queue.table["score"].to_list() == pytest.approx([c_score, 0.75, 0.75, 0.75])
    assert queue.table["reasons"].to_list() == [
        ["low_confidence", "no_lf_votes"],
        ["low_confidence"],
        ["lf_conflict"],
        ["low_confidence"],
    ]
    assert queue.table["why"].to_list()[:3] == [
        "confidence 0.50 < 0.7; no LF voted",
        "confidence 0.35 < 0.7",
        "LFs disagree (1 of 2 votes against the label)",
    ]
    assert queue.n_eligible == 4 and queue.n_assets == 5
    assert queue.reason_counts == {"low_confidence": 3, "lf_conflict": 1, "no_lf_votes": 1}


def test_batch_size_cuts_after_ranking():
    queue = review_queue(enriched(), batch_size=2)
    assert queue.asset_ids.to_list() == ["c", "a"]
    assert len(queue) == 2 and queue.n_eligible == 4


def test_every_signal_adds_its_reason_to_one_row_per_asset():
    model = pl.DataFrame({"asset_id": ["d", "a"], "label": [1, 1], "confidence": [0.8, 0.9]})
    agreement = pl.DataFrame({"asset_id": ["d", "b"], "agreement": [0.6, 0.9]})
    candidates = pl.DataFrame(
        {
            "asset_id": ["f", "f", "a"],
            "reason": ["class SPAM", "slice video=Psy", None],
            "score": [0.2, 0.6, None],
        }
    )
    queue = review_queue(
        enriched(),
        model_predictions=model,
        annotations_agreement=agreement,
        candidates=candidates,
        batch_size=10,
    )
    table = queue.table
    assert table["asset_id"].is_unique().all()
    rows = {r["asset_id"]: r for r in table.iter_rows(named=True)}
    # d: the model says SPAM (1) with 0.8 -> 0.9; agreement 0.6 < 0.8 -> 0.5 + 0.2 = 0.7.
    assert rows["d"]["reasons"] == ["model_disagreement", "annotator_disagreement"]
    assert rows["d"]["score"] == pytest.approx(1.6)
    assert rows["d"]["why"] == "model says 1, label is 0; annotator agreement 0.60 < 0.8"
    # a: model agrees (no reason); low confidence 0.75 + gap candidate without score 1.0.
    assert rows["a"]["reasons"] == ["low_confidence", "gap_candidate"]
    assert rows["a"]["score"] == pytest.approx(1.75)
    # f is not in the enriched table: queued with null label, both gaps named, best score.
    assert rows["f"]["reasons"] == ["gap_candidate"]
    assert rows["f"]["score"] == pytest.approx(0.8)
    assert rows["f"]["why"] == "gap candidate: class SPAM, slice video=Psy"
    assert rows["f"]["label"] is None and rows["f"]["confidence"] is None
    assert "b" in rows and rows["b"]["reasons"] == ["lf_conflict"]  # agreement 0.9 is fine
    assert table["score"].to_list() == sorted(table["score"].to_list(), reverse=True)


def test_model_predictions_by_label_name():
    model = pl.DataFrame({"asset_id": ["d"], "label_name": ["SPAM"]})
    queue = review_queue(enriched(), model_predictions=model)
    row = queue.table.filter(pl.col("asset_id") == "d").row(0, named=True)
    assert row["reasons"] == ["model_disagreement"] and row["score"] == 1.0
    assert row["why"] == "model says 'SPAM', label is 'HAM'"


def test_exclude_accepts_a_table_a_series_or_a_list():
    for exclude in (pl.DataFrame({"asset_id": ["c", "a"]}), pl.Series(["c", "a"]), ["c", "a"]):
        queue = review_queue(enriched(), exclude=exclude)
        assert queue.asset_ids.to_list() == ["b", "e"]


def test_weights_change_the_order():
    queue = review_queue(enriched(), weights={"lf_conflict": 3.0, "no_lf_votes": 0.0})
    assert queue.asset_ids.to_list()[0] == "b"
    assert queue.table.row(0, named=True)["score"] == pytest.approx(2.25)
    zero = queue.table.filter(pl.col("asset_id") == "c").row(0, named=True)
    assert zero["reasons"] == ["low_confidence", "no_lf_votes"]  # reasons kept at weight 0


def test_same_input_same_queue_and_pandas_input():
    first = review_queue(enriched())
    again = review_queue(enriched().to_pandas())
    assert first.table.equals(again.table)


def test_nothing_to_review_gives_an_empty_queue():
    calm = enriched().with_columns(
        pl.lit(0.99).alias("confidence"),
        pl.lit(False).alias("conflict"),
        pl.lit(False).alias("all_abstain"),
    )
    queue = review_queue(calm)
    assert len(queue) == 0 and queue.n_eligible == 0
    assert "(no rows)" in str(queue)


def test_integer_asset_ids_and_int_exclusions():
    table = enriched().with_columns(pl.Series("asset_id", [5, 4, 3, 2, 1]))
    queue = review_queue(table, exclude=[3], candidates=pd.DataFrame({"asset_id": [2]}))
    assert queue.asset_ids.to_list() == [2, 1, 4, 5]


def test_renders_as_a_table():
    queue = review_queue(enriched())
    text = str(queue)
    assert text.startswith("Review queue: 4 of 4 eligible assets (5 assets scored)")
    assert "low_confidence: 3" in text
    assert "<table" in queue._repr_html_()


# -- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"batch_size": 0}, InputError, "batch_size"),
        ({"low_confidence": 0}, InputError, "low_confidence"),
        ({"min_agreement": 2}, InputError, "min_agreement"),
        ({"weights": {"typo": 1.0}}, InputError, r"unknown reason\(s\) \['typo'\]"),
        ({"weights": {"lf_conflict": -1}}, InputError, "must be a number >= 0"),
        ({"model_predictions": pl.DataFrame({"asset_id": ["a"]})}, MissingColumnError, "label"),
        (
            {"model_predictions": pl.DataFrame({"asset_id": ["a", "a"], "label": [0, 1]})},
            InputError,
            r"\['a'\] more than once",
        ),
        (
            {"annotations_agreement": pl.DataFrame({"asset_id": ["a"], "agreement": [1.5]})},
            InputError,
            "agreement 1.5 for asset 'a'",
        ),
        (
            {"annotations_agreement": pl.DataFrame({"asset_id": ["a"]})},
            MissingColumnError,
            "agreement",
        ),
        ({"candidates": pl.DataFrame({"id": ["a"]})}, MissingColumnError, "asset_id"),
        (
            {"model_predictions": pl.DataFrame({"asset_id": ["a"], "label": ["SPAM"]})},
            InputError,
            "put class names in a 'label_name' column",
        ),
        ({"candidates": pl.DataFrame({"asset_id": [1.5]})}, InputError, "not converted"),
        ({"exclude": [1, 2]}, InputError, "cast them"),
        ({"exclude": "a"}, InputError, "not the string 'a'"),
    ],
)
def test_bad_arguments_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        review_queue(enriched(), **kwargs)


def test_bad_enriched_tables_are_refused():
    with pytest.raises(MissingColumnError, match="'confidence'"):
        review_queue(enriched().drop("confidence"))
    with pytest.raises(InputError, match=r"\['a'\] more than once"):
        review_queue(pl.concat([enriched(), enriched().head(1)]))
    with pytest.raises(InputError, match="values in \\[0, 1\\]"):
        review_queue(enriched().with_columns(pl.lit(1.2).alias("confidence")))


# -- real data -------------------------------------------------------------------------------
def test_wrench_youtube_queue_is_consistent_with_its_inputs():
    path = SHARED / "wrench" / "youtube" / "train.json"
    if not path.exists():
        pytest.skip(f"shared data not found at {path}")
    records = json.loads(path.read_text())
    L = np.array([r["weak_labels"] for r in records.values()])
    counts = np.stack([(c == L).sum(axis=1) for c in range(2)], axis=1).astype(float)
    proba = np.where(counts.sum(1, keepdims=True) > 0, counts, 1.0)
    proba /= proba.sum(axis=1, keepdims=True)
    label = proba.argmax(axis=1)
    voted = L != -1
    table = pl.DataFrame(
        {
            "asset_id": list(records),
            "label": label,
            "confidence": proba.max(axis=1),
            "conflict": ((label[:, None] != L) & voted).any(axis=1),
            "all_abstain": ~voted.any(axis=1),
            **{f"vote_lf{j}": L[:, j] for j in range(L.shape[1])},
        }
    )
    gold_ids = list(records)[:100]
    queue = review_queue(table, batch_size=200, exclude=gold_ids)
    picked = queue.table.join(table, on="asset_id", how="left", suffix="_in")
    assert picked.height == 200 and picked["asset_id"].is_unique().all()
    assert not picked["asset_id"].is_in(gold_ids).any()
    for row in picked.iter_rows(named=True):
        assert ("low_confidence" in row["reasons"]) == (row["confidence"] < 0.7)
        assert ("lf_conflict" in row["reasons"]) == row["conflict"]
        assert ("no_lf_votes" in row["reasons"]) == row["all_abstain"]
        assert set(row["reasons"]) <= set(REASONS)
    scores = picked.select("score", "asset_id").rows()
    assert scores == sorted(scores, key=lambda r: (-r[0], r[1]))
    eligible = table.filter(
        (pl.col("confidence") < 0.7) | pl.col("conflict") | pl.col("all_abstain")
    ).filter(~pl.col("asset_id").is_in(gold_ids))
    assert queue.n_eligible == eligible.height


def test_reads_the_enriched_table_that_enriched_table_writes():
    pytest.importorskip("enrich.label_output", reason="enrich.label_output is not written yet")
    from enrich.enriched import enriched_table
    from enrich.votes import VoteMatrix

    votes = np.array([[1, 1], [0, 1], [-1, -1], [0, 0]], dtype=np.int32)
    vm = VoteMatrix(
        votes=votes,
        lf_names=("a", "b"),
        asset_ids=pl.Series(["w", "x", "y", "z"]),
        class_names=("HAM", "SPAM"),
    )
    proba = np.array([[0.1, 0.9], [0.5, 0.5], [0.6, 0.4], [0.95, 0.05]])
    table = enriched_table(vm, proba, run_id="r1", model_version="m1")
    queue = review_queue(table)
    # Every asset the enriched table flags for review is eligible, and nothing else.
    assert queue.n_eligible == int(table["needs_review"].sum())
    assert set(queue.asset_ids) == set(table.filter("needs_review")["asset_id"])
    x = queue.table.filter(pl.col("asset_id") == "x").row(0, named=True)
    assert x["reasons"] == ["low_confidence", "lf_conflict"]  # confidence 0.5, votes 0 and 1
    assert x["label_name"] == table.filter(pl.col("asset_id") == "x")["label_name"].item()
