"""LabelModel is a classifier by scikit-learn's rules."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from benchmarks.label_model_robustness import scenario
from enrich.errors import InputError
from enrich.models.label_model import LabelModel
from enrich.votes import VoteMatrix


def test_is_a_classifier_with_a_score():
    from sklearn.base import clone, is_classifier

    votes, y, k = scenario("independent", 0, n=600)
    model = LabelModel(cardinality=k, random_state=0)
    assert is_classifier(model)
    fitted = clone(model).fit(votes)
    assert fitted.score(votes, y) == pytest.approx(np.mean(fitted.predict(votes) == y))
    unknown = np.where(np.arange(len(y)) % 2 == 0, y, -1)  # -1 rows are left out
    half = fitted.predict(votes)[::2] == y[::2]
    assert fitted.score(votes, unknown) == pytest.approx(half.mean())
    with pytest.raises(InputError, match="no known label"):
        fitted.score(votes, np.full(len(y), -1))


def test_calibrated_classifier_cv_works_on_it():
    from sklearn.calibration import CalibratedClassifierCV

    votes, y, k = scenario("independent", 1, n=900)
    calibrated = CalibratedClassifierCV(LabelModel(cardinality=k, random_state=0), cv=3)
    calibrated.fit(votes, y)
    proba = calibrated.predict_proba(votes)
    assert proba.shape == (len(y), k) and np.allclose(proba.sum(axis=1), 1.0)
    assert np.mean(calibrated.predict(votes) == y) > 1.0 / k


def test_cardinality_must_match_the_vote_matrix_classes():
    votes = VoteMatrix(
        votes=np.array([[0, 1], [1, 1], [0, -1]], dtype=np.int32),
        lf_names=("a", "b"),
        asset_ids=pl.Series(["x", "y", "z"]),
        class_names=("HAM", "SPAM"),
    )
    with pytest.raises(InputError, match=r"2 classes \['HAM', 'SPAM'\] but cardinality=3"):
        LabelModel(cardinality=3).fit(votes)
    model = LabelModel(cardinality=2).fit(votes)
    assert model.predict_proba(votes).shape == (3, 2)
