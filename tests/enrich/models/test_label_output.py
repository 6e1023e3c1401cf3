"""label_table: the per-asset label, probabilities, confidence and vote metadata."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enrich.errors import InputError
from enrich.models.label_model import LabelModel
from enrich.models.output import label_table

VOTES = np.array([[0, 0, -1], [0, 1, -1], [-1, -1, -1], [2, -1, 2], [1, 2, 0]])
PROBA = np.array(
    [[0.9, 0.05, 0.05], [0.4, 0.4, 0.2], [0.5, 0.25, 0.25], [0.0, 0.0, 1.0], [1 / 3, 1 / 3, 1 / 3]]
)


def test_columns_and_types_with_class_names():
    table = label_table(VOTES, PROBA, class_names=["ham", "spam", "eggs"])
    assert table.schema == pl.Schema(
        {
            "label": pl.Int64,
            "label_name": pl.String,
            "proba_ham": pl.Float64,
            "proba_spam": pl.Float64,
            "proba_eggs": pl.Float64,
            "confidence": pl.Float64,
            "entropy": pl.Float64,
            "n_votes": pl.Int64,
            "conflict": pl.Boolean,
            "all_abstain": pl.Boolean,
        }
    )
    # ties go to the lowest class id; the row no LF voted on has no label
    assert table["label"].to_list() == [0, 0, None, 2, 0]
    assert table["label_name"].to_list() == ["ham", "ham", None, "eggs", "ham"]
    assert table["n_votes"].to_list() == [2, 2, 0, 2, 3]
    assert table["conflict"].to_list() == [False, True, False, False, True]
    assert table["all_abstain"].to_list() == [False, False, True, False, False]
    confidence = table["confidence"].to_list()
    assert confidence[2] is None  # the class prior is not confidence in a label
    assert [c for i, c in enumerate(confidence) if i != 2] == pytest.approx([0.9, 0.4, 1.0, 1 / 3])
    entropy = table["entropy"].to_list()
    assert entropy[3] == 0.0 and entropy[4] == pytest.approx(math.log(3))
    assert table.select("proba_ham", "proba_spam", "proba_eggs").to_numpy() == pytest.approx(PROBA)


def test_without_class_names_columns_use_class_ids():
    table = label_table(VOTES, PROBA)
    assert table.columns == [
        "label",
        "proba_0",
        "proba_1",
        "proba_2",
        "confidence",
        "entropy",
        "n_votes",
        "conflict",
        "all_abstain",
    ]


def test_from_a_fitted_model_all_abstain_rows_carry_the_prior_but_no_label():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    votes = np.where(rng.random((300, 4)) < 0.4, y[:, None], -1)
    model = LabelModel(cardinality=2).fit(votes)
    table = label_table(votes, model.predict_proba(votes), class_names=["neg", "pos"])
    empty = table.filter(pl.col("all_abstain"))
    assert empty.height == int((votes < 0).all(axis=1).sum()) > 0
    assert empty["proba_pos"].to_list() == pytest.approx([model.class_balance_[1]] * empty.height)
    assert empty["label"].null_count() == empty["label_name"].null_count() == empty.height
    assert empty["confidence"].null_count() == empty.height
    voted = table.filter(~pl.col("all_abstain"))
    keep = ~(votes < 0).all(axis=1)
    assert np.array_equal(voted["label"].to_numpy(), model.predict(votes)[keep])
    # the model itself still predicts the prior's class there (the LabelModel contract)
    assert set(model.predict(votes)[~keep].tolist()) == {int(np.argmax(model.class_balance_))}


def test_empty_input_gives_an_empty_table():
    table = label_table(np.zeros((0, 3), dtype=int), np.zeros((0, 2)))
    assert table.height == 0 and table.columns[0] == "label"


def test_bad_input_is_refused():
    with pytest.raises(InputError, match="L has 4 rows but proba has 5"):
        label_table(VOTES[:4], PROBA)
    with pytest.raises(InputError, match=r"row 1 sums to 1\.5"):
        label_table(VOTES, PROBA + np.array([[0, 0, 0], [0.5, 0, 0], [0] * 3, [0] * 3, [0] * 3]))
    with pytest.raises(InputError, match="finite and >= 0"):
        label_table(VOTES, np.where(PROBA == 0.9, np.nan, PROBA))
    with pytest.raises(InputError, match="3 distinct names"):
        label_table(VOTES, PROBA, class_names=["a", "a", "b"])
    with pytest.raises(InputError, match=r"holds 2 at row 3, column 0.*cardinality=2"):
        label_table(VOTES, np.full((5, 2), 0.5))
    with pytest.raises(InputError, match=r"shape \(n_assets, k\)"):
        label_table(VOTES, PROBA[:, 0])


@st.composite
def labelled(draw):
    k = draw(st.integers(2, 5))
    n = draw(st.integers(1, 20))
    m = draw(st.integers(1, 5))
    votes = np.array(
        draw(st.lists(st.integers(-1, k - 1), min_size=n * m, max_size=n * m))
    ).reshape(n, m)
    raw = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=n * k, max_size=n * k))).reshape(
        n, k
    )
    raw[:, 0] += 1e-3
    return votes, raw / raw.sum(axis=1, keepdims=True)


@settings(max_examples=60, deadline=None)
@given(labelled())
def test_invariants(case):
    votes, proba = case
    table = label_table(votes, proba)
    k = proba.shape[1]
    voted = (votes >= 0).any(axis=1)
    label = table["label"].fill_null(-1).to_numpy()
    assert np.array_equal(label, np.where(voted, proba.argmax(axis=1), -1))
    confidence = table["confidence"].fill_null(-1.0).to_numpy()
    assert np.allclose(confidence, np.where(voted, proba.max(axis=1), -1.0))
    entropy = table["entropy"].to_numpy()
    assert np.all(entropy >= 0) and np.all(entropy <= math.log(k) + 1e-9)
    n_votes = (votes >= 0).sum(axis=1)
    assert np.array_equal(table["n_votes"].to_numpy(), n_votes)
    assert np.array_equal(table["all_abstain"].to_numpy(), n_votes == 0)
    distinct = [len(set(row[row >= 0].tolist())) for row in votes]
    assert table["conflict"].to_list() == [d > 1 for d in distinct]


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64])
def test_agreeing_votes_are_no_conflict_whatever_the_integer_type(dtype):
    votes = np.array([[0, 0, -1], [0, 1, -1], [1, -1, -1]], dtype=dtype)
    table = label_table(votes, np.full((3, 2), 0.5))
    assert table["conflict"].to_list() == [False, True, False]
