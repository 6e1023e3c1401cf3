"""MultiLabelEndModel: one EndModel per label labels the assets no LF voted on."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.datasets import load_digits

from enrich import EndModel, MultiLabelModel, multilabel_scores
from enrich.errors import InputError, NotFittedError
from enrich.models.multilabel_end_model import MultiLabelEndModel
from enrich.multilabel_votes import MultiLabelVoteMatrix


def test_end_model_labels_what_no_lf_covers() -> None:
    digits = load_digits()
    X = digits.data / 16.0
    d = digits.target
    gold = np.stack([d % 2 == 0, d >= 5, np.isin(d, [0, 4, 6, 8, 9])], axis=1).astype(np.int8)
    rng = np.random.default_rng(0)
    n = len(d)
    votes = np.zeros((n, 2, 3), dtype=np.int8)
    for j, accuracy in enumerate([0.95, 0.85]):  # two noisy LFs per label, 50% coverage each
        fires = rng.random((n, 3)) < 0.5
        said = np.where(rng.random((n, 3)) < accuracy, gold, 1 - gold)
        votes[:, j, :] = np.where(fires, np.where(said == 1, 1, -1), 0)
    vm = MultiLabelVoteMatrix(
        votes=votes,
        lf_names=("a", "b"),
        label_names=("even", "at_least_five", "closed_loop"),
        asset_ids=pl.Series(range(n)),
    )
    proba = MultiLabelModel(random_state=0).fit(vm).predict_proba(vm)
    model = MultiLabelEndModel(end_model=EndModel(cv=3, random_state=0))
    assert model.fit(X, proba, votes=vm) is model
    assert model.label_names_ == vm.label_names and len(model.models_) == 3
    assert model.oof_proba_.shape == (n, 3)
    uncovered = (votes == 0).all(axis=1)  # (n, 3): no LF voted on that label
    predicted = (model.oof_proba_ >= 0.5).astype(int)
    for t in range(3):
        rows = uncovered[:, t]
        scores = multilabel_scores(gold[rows, t : t + 1], predicted[rows, t : t + 1])
        assert scores.macro_f1 > 0.75, (t, scores.macro_f1)
    assert np.array_equal(model.predict(X[:5]), (model.predict_proba(X[:5]) >= 0.5).astype(np.int8))


def test_errors() -> None:
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(NotFittedError):
        MultiLabelEndModel().predict_proba(X)
    with pytest.raises(InputError, match="n_assets, n_labels"):
        MultiLabelEndModel().fit(X, np.zeros(20))
    with pytest.raises(InputError, match="label '0'"):
        MultiLabelEndModel(end_model=EndModel(cv=2)).fit(X, np.zeros((20, 1)))
    with pytest.raises(InputError, match="thresholds"):
        MultiLabelEndModel(thresholds=[0.5, 0.5]).fit(X, np.full((20, 1), 0.5))
