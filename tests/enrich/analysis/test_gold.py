"""benchmark() and gold_vector(): every metric on hand-computed cases, then real WRENCH votes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from rich.console import Console

from enrich.analysis.gold import NO_PREDICTION_COLUMN, benchmark, gold_vector
from enrich.analysis.summary import lf_summary
from enrich.errors import InputError, MissingColumnError
from enrich.votes import VoteMatrix

REPO = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("ENRICH_SHARED_DATA", REPO.parent / "shared" / "data"))
YOUTUBE = SHARED / "wrench" / "youtube"


def wrench(split: str) -> tuple[np.ndarray, np.ndarray]:
    path = YOUTUBE / f"{split}.json"
    if not path.exists():
        pytest.skip(f"shared data not found at {path}")
    records = json.loads(path.read_text())
    L = np.array([r["weak_labels"] for r in records.values()], dtype=np.int64)
    y = np.array([r["label"] for r in records.values()], dtype=np.int64)
    return L, y


def majority_vote(L: np.ndarray, k: int) -> np.ndarray:
    """Majority vote with ties and empty rows going to the lowest class (as the data README)."""
    counts = np.stack([(c == L).sum(axis=1) for c in range(k)], axis=1)
    return counts.argmax(axis=1)


# -- labels: hand-computed -----------------------------------------------------------------
GOLD = np.array([0, 0, 1, 1, 2, 2, -1])
PRED = np.array([0, 1, 1, 1, 2, 0, 2])
NAMES = ["A", "B", "C"]


def test_per_class_precision_recall_f1_by_hand():
    result = benchmark(GOLD, labels=PRED, class_names=NAMES)
    # Gold rows 0..5 (row 6 unknown). A: predicted at rows 0, 5 (1 right) -> P 1/2, R 1/2.
    # B: predicted at rows 1, 2, 3 (2 right) -> P 2/3, R 2/2. C: predicted at row 4 -> P 1, R 1/2.
    assert result.n_gold == 6
    assert result.n_assets == 7
    assert result.accuracy == pytest.approx(4 / 6)
    rows = {r["class"]: r for r in result.per_class.iter_rows(named=True)}
    assert rows["A"]["precision"] == pytest.approx(0.5)
    assert rows["A"]["recall"] == pytest.approx(0.5)
    assert rows["A"]["f1"] == pytest.approx(0.5)
    assert rows["B"]["precision"] == pytest.approx(2 / 3)
    assert rows["B"]["recall"] == pytest.approx(1.0)
    assert rows["B"]["f1"] == pytest.approx(0.8)
    assert rows["C"]["precision"] == pytest.approx(1.0)
    assert rows["C"]["recall"] == pytest.approx(0.5)
    assert rows["C"]["f1"] == pytest.approx(2 / 3)
    assert [rows[c]["support"] for c in NAMES] == [2, 2, 2]
    assert result.macro["precision"] == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert result.macro["recall"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    assert result.macro["f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)


def test_confusion_matrix_rows_are_gold_columns_are_predictions():
    result = benchmark(GOLD, labels=PRED, class_names=NAMES)
    assert result.confusion.columns == ["gold", "A", "B", "C"]
    assert result.confusion.rows() == [("A", 1, 1, 0), ("B", 0, 2, 0), ("C", 1, 0, 1)]


def test_abstained_prediction_counts_wrong_and_gets_its_own_confusion_column():
    result = benchmark(np.array([0, 1, 1]), labels=np.array([0, -1, 1]), class_names=["A", "B"])
    assert result.accuracy == pytest.approx(2 / 3)
    assert result.confusion.columns == ["gold", "A", "B", NO_PREDICTION_COLUMN]
    assert result.confusion.rows() == [("A", 1, 0, 0), ("B", 0, 1, 1)]
    b = result.per_class.row(1, named=True)
    assert b["precision"] == 1.0 and b["recall"] == 0.5


def test_undefined_ratios_are_null_and_left_out_of_macro():
    # Class C has no gold rows and is never predicted; B is never predicted.
    result = benchmark(np.array([0, 1]), labels=np.array([0, 0]), class_names=NAMES)
    rows = {r["class"]: r for r in result.per_class.iter_rows(named=True)}
    assert rows["B"]["precision"] is None  # no prediction of B
    assert rows["B"]["recall"] == 0.0
    assert rows["C"]["precision"] is None and rows["C"]["recall"] is None
    assert rows["C"]["f1"] is None and rows["C"]["support"] == 0
    assert result.macro["precision"] == pytest.approx(0.5)  # A only
    assert result.macro["recall"] == pytest.approx(0.5)  # A 1.0, B 0.0


def test_without_class_names_classes_are_numbered_from_the_data():
    result = benchmark([1, 0, 1], labels=[1, 1, 1])
    assert result.per_class["class"].to_list() == ["0", "1"]
    assert result.reliability is None and result.ece is None and result.lf_accuracy is None


# -- probabilities: calibration by hand -----------------------------------------------------
PROBA = np.array([[0.95, 0.05], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.5, 0.5]])
PROBA_GOLD = np.array([0, 1, 1, 0, 1])


def test_reliability_table_and_ece_by_hand():
    result = benchmark(PROBA_GOLD, proba=PROBA, n_bins=4)
    # Top-class confidences 0.95 (right), 0.8 (wrong), 0.7 (right), 0.6 (right), 0.5 (argmax
    # tie -> class 0, wrong). Bins (0.75, 1]: 2 rows, conf 0.875, acc 0.5; (0.5, 0.75]:
    # conf 0.65, acc 1; (0.25, 0.5]: conf 0.5, acc 0. ECE = .4*.375 + .4*.35 + .2*.5 = 0.39.
    table = result.reliability
    assert table["bin"].to_list() == ["0.0-0.25", "0.25-0.5", "0.5-0.75", "0.75-1.0"]
    assert table["count"].to_list() == [0, 1, 2, 2]
    assert table["mean_confidence"].to_list()[0] is None
    assert table["mean_confidence"].to_list()[1:] == pytest.approx([0.5, 0.65, 0.875])
    assert table["accuracy"].to_list()[1:] == pytest.approx([0.0, 1.0, 0.5])
    assert table["gap"].to_list()[1:] == pytest.approx([-0.5, 0.35, -0.375])
    assert result.ece == pytest.approx(0.39)
    assert result.accuracy == pytest.approx(3 / 5)


def test_perfectly_calibrated_bins_give_zero_ece():
    proba = np.array([[0.75, 0.25]] * 4)
    result = benchmark(np.array([0, 0, 0, 1]), proba=proba, n_bins=10)
    assert result.ece == pytest.approx(0.0)
    assert result.reliability.filter(pl.col("count") > 0)["bin"].to_list() == ["0.7-0.8"]


def test_only_gold_rows_count_for_calibration():
    gold = np.array([0, -1, -1])
    proba = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    result = benchmark(gold, proba=proba, class_names=["A", "B"])
    assert result.n_gold == 1
    assert result.reliability["count"].sum() == 1
    assert result.ece == pytest.approx(0.0)


# -- LF accuracy -----------------------------------------------------------------------------
def test_lf_accuracy_on_gold_rows_only():
    votes = np.array([[0, -1], [1, 1], [-1, 1], [0, 0]])
    gold = np.array([0, 1, -1, 1])
    result = benchmark(gold, labels=np.array([0, 1, 1, 1]), votes=votes, lf_names=["a", "b"])
    # a votes on all 3 gold rows, 2 right; b votes on 2 of them, 1 right (row 2 has no gold).
    assert result.lf_accuracy.rows() == [
        ("a", 1.0, 3, 2, pytest.approx(2 / 3)),
        ("b", 2 / 3, 2, 1, 0.5),
    ]
    summary = lf_summary(votes, gold, lf_names=["a", "b"])
    assert summary.table["empirical_accuracy"].to_list() == pytest.approx(
        result.lf_accuracy["accuracy"].to_list()
    )


def test_lf_that_never_votes_on_gold_has_null_accuracy_and_names_come_from_vote_matrix():
    vm = VoteMatrix(
        votes=np.array([[1, -1], [0, -1]], dtype=np.int32),
        lf_names=("kw", "never"),
        asset_ids=pl.Series(["x", "y"]),
        class_names=("HAM", "SPAM"),
    )
    result = benchmark(np.array([1, 0]), labels=np.array([1, 0]), votes=vm)
    assert result.per_class["class"].to_list() == ["HAM", "SPAM"]
    assert result.lf_accuracy.row(1) == ("never", 0.0, 0, 0, None)


# -- real data -------------------------------------------------------------------------------
def test_wrench_youtube_majority_vote_matches_the_documented_accuracy():
    L_train, _ = wrench("train")
    L, y = wrench("test")
    labels = majority_vote(L, 2)
    result = benchmark(y, labels=labels, class_names=["HAM", "SPAM"], votes=L)
    assert result.accuracy == pytest.approx(0.776, abs=5e-4)  # the data README's figure
    from sklearn.metrics import f1_score

    assert result.per_class["f1"].to_list() == pytest.approx(
        f1_score(y, labels, average=None).tolist()
    )
    assert result.lf_accuracy.height == L.shape[1] == L_train.shape[1]
    # Vote shares as probabilities: rows with no vote get the uniform distribution.
    counts = np.stack([(c == L).sum(axis=1) for c in range(2)], axis=1).astype(float)
    proba = np.where(counts.sum(1, keepdims=True) > 0, counts, 1.0)
    proba /= proba.sum(axis=1, keepdims=True)
    calibrated = benchmark(y, proba=proba, class_names=["HAM", "SPAM"])
    assert 0.0 <= calibrated.ece <= 1.0
    assert calibrated.reliability["count"].sum() == len(y)


# -- rendering -------------------------------------------------------------------------------
def test_renders_in_text_rich_and_html():
    result = benchmark(PROBA_GOLD, proba=PROBA, class_names=["HAM", "SPAM"])
    text = str(result)
    assert text.startswith("Gold benchmark: 5 gold rows of 5 assets, 2 classes")
    assert "accuracy: 60.0%" in text and "ECE:" in text
    assert "<table" in result._repr_html_()
    console = Console(record=True, width=120)
    console.print(result)
    assert "SPAM" in console.export_text()
    assert result.to_dict()["accuracy"] == pytest.approx(0.6)


# -- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one of labels="),
        ({"labels": [0, 1], "proba": [[1, 0], [0, 1]]}, "got both"),
        ({"labels": [0]}, "labels has 1 entries but gold has 2"),
        ({"labels": [0, 5], "class_names": ["A", "B"]}, "labels holds 5 at index 1"),
        ({"labels": [0.5, 1]}, "whole class ids"),
        ({"labels": ["HAM", "SPAM"]}, "integer class ids"),
        ({"proba": [[0.5, 0.6], [1, 0]]}, "row 0 sums to 1.1"),
        ({"proba": [[1.5, -0.5], [1, 0]]}, r"proba\[0, 0\] = 1.5"),
        ({"proba": [0.5, 0.5]}, "must be 2-D"),
        ({"proba": [[1, 0], [0, 1]], "class_names": ["A", "B", "C"]}, "3 names"),
        ({"proba": [[1, 0], [0, 1]], "n_bins": 0}, "n_bins must be"),
        ({"labels": [0, 1], "votes": [[0], [7]]}, "votes holds 7 at row 1"),
        ({"labels": [0, 1], "votes": [[0], [1]], "lf_names": ["a", "b"]}, "2 names"),
        ({"labels": [0, 1], "class_names": "AB"}, "sequence of class names"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(kwargs, match):
    with pytest.raises(InputError, match=match):
        benchmark(np.array([0, 1]), **kwargs)


def test_no_gold_rows_is_an_error():
    with pytest.raises(InputError, match="no known label among its 3 entries"):
        benchmark(np.array([-1, -1, -1]), labels=np.array([0, 1, 0]))


def test_gold_out_of_range_is_an_error():
    with pytest.raises(InputError, match="gold holds 2 at index 0"):
        benchmark(np.array([2, 0]), labels=np.array([0, 0]), class_names=["A", "B"])


# -- gold_vector -----------------------------------------------------------------------------
def test_gold_vector_aligns_to_the_vote_matrix_rows():
    table = pl.DataFrame({"asset_id": ["c", "a", "zz"], "label_name": ["SPAM", "HAM", "HAM"]})
    y = gold_vector(table, ["a", "b", "c"], ["HAM", "SPAM"])
    assert y.tolist() == [0, -1, 1] and y.dtype == np.int64


def test_gold_vector_reads_a_vote_matrix_and_class_ids():
    vm = VoteMatrix(
        votes=np.zeros((3, 1), dtype=np.int32), lf_names=("a",), asset_ids=pl.Series([10, 11, 12])
    )
    table = pl.DataFrame({"asset_id": [12, 10], "label": [2, 0]})
    assert gold_vector(table, vm, 3).tolist() == [0, -1, 2]


def test_gold_vector_compares_ids_as_text_when_types_differ():
    table = pl.DataFrame({"asset_id": ["1", "3"], "label_name": ["B", "A"]})
    assert gold_vector(table, pl.Series([1, 2, 3]), ["A", "B"]).tolist() == [1, -1, 0]


def test_gold_vector_feeds_benchmark():
    table = pl.DataFrame({"asset_id": ["a", "c"], "label_name": ["HAM", "SPAM"]})
    y = gold_vector(table, ["a", "b", "c"], ["HAM", "SPAM"])
    result = benchmark(y, labels=np.array([0, 1, 0]), class_names=["HAM", "SPAM"])
    assert result.n_gold == 2 and result.accuracy == 0.5


@pytest.mark.parametrize(
    ("table", "classes", "error", "match"),
    [
        ({"id": ["a"], "label_name": ["HAM"]}, ["HAM"], MissingColumnError, "no 'asset_id'"),
        ({"asset_id": ["a"]}, ["HAM"], MissingColumnError, "'label_name' or 'label'"),
        ({"asset_id": ["a", "a"], "label": [0, 0]}, ["HAM"], InputError, r"\['a'\] more than"),
        ({"asset_id": ["a"], "label_name": ["EGGS"]}, ["HAM"], InputError, "'EGGS'"),
        ({"asset_id": ["a"], "label": [3]}, 2, InputError, "not a class id 0..1"),
        (
            {"asset_id": ["a"], "label": [1], "label_name": ["HAM"]},
            ["HAM", "SPAM"],
            InputError,
            "disagree for asset 'a'",
        ),
    ],
)
def test_gold_vector_refuses_bad_tables(table, classes, error, match):
    with pytest.raises(error, match=match):
        gold_vector(pl.DataFrame(table), ["a"], classes)


def test_gold_vector_keeps_row_order_on_large_shuffled_inputs():
    rng = np.random.default_rng(0)
    ids = [f"asset-{i}" for i in rng.permutation(50_000)]
    labeled = rng.choice(ids, size=5_000, replace=False)
    labels = rng.integers(0, 3, size=labeled.size)
    table = pl.DataFrame({"asset_id": labeled, "label": labels})
    expected = dict(zip(labeled.tolist(), labels.tolist(), strict=True))
    y = gold_vector(table, ids, ["A", "B", "C"])
    assert y.tolist() == [expected.get(i, -1) for i in ids]
