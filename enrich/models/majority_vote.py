"""Majority vote: the baseline every label model is compared with, under the same API."""

from __future__ import annotations

from typing import Any

import numpy as np

from enrich._internal.vote_arrays import validate_gold, validate_votes
from enrich.errors import InputError
from enrich.models.base import (
    VoteModel,
    check_cardinality,
    check_class_balance,
    check_fitted,
    check_random_state,
    predict_from_proba,
    score_rows,
)

__all__ = ["MajorityVote"]


def _majority_proba(votes: np.ndarray, k: int, prior: np.ndarray) -> np.ndarray:
    """Majority-vote probabilities: ties split evenly, rows without votes get ``prior``.

    Vote counts come from the blocked scorer the label model uses (relative to class 0,
    exact small integers), so this is vectorized and memory-bounded.

    Example:
        >>> votes = np.array([[0, 1, 1], [0, 1, -1], [-1, -1, -1]])
        >>> _majority_proba(votes, 2, np.array([0.3, 0.7])).tolist()
        [[0.0, 1.0], [0.5, 0.5], [0.3, 0.7]]
    """
    m = votes.shape[1]
    counts = score_rows(votes, np.tile(np.eye(k), (m, 1)), np.zeros(k))
    top = counts.max(axis=1, keepdims=True)
    proba = (counts == top).astype(np.float64)
    proba /= proba.sum(axis=1, keepdims=True)
    proba[~(votes >= 0).any(axis=1)] = prior
    return proba


class MajorityVote(VoteModel):
    """Majority vote over the non-abstain votes, as a label model with the enrich API.

    ``predict_proba`` gives each asset the share of the top count to every class that reaches
    it: a clear majority gets probability 1, a tie is split evenly between the tied classes,
    and a row where every LF abstained gets ``class_balance_``. ``predict`` is the arg-max, so
    ties go to the **lowest class id** among the tied classes (deterministic), and all-abstain
    rows to the most frequent class of ``class_balance_``.

    Parameters (keyword-only):
        cardinality: number of classes ``k``.
        class_balance: fixed class prior ``(k,)`` for all-abstain rows; ``None`` (default)
            estimates it at fit time as the average majority-vote distribution of the rows
            that have votes (gold rows count with their gold label).
        random_state: accepted for API symmetry; majority vote draws no random numbers.

    Fitted attributes: ``classes_``, ``n_lfs_``, ``class_balance_``.

    Example:
        >>> import numpy as np
        >>> L = np.array([[0, 0, 1], [1, 0, -1], [-1, -1, -1]])
        >>> mv = MajorityVote(cardinality=2, class_balance=[0.3, 0.7]).fit(L)
        >>> mv.predict_proba(L).tolist()
        [[1.0, 0.0], [0.5, 0.5], [0.3, 0.7]]
        >>> mv.predict(L).tolist()
        [0, 0, 1]
    """

    def __init__(
        self, *, cardinality: int = 2, class_balance: Any = None, random_state: Any = None
    ) -> None:
        self.cardinality = cardinality
        self.class_balance = class_balance
        self.random_state = random_state

    def fit(self, L: Any, y: Any = None) -> MajorityVote:
        """Record the number of LFs and the class balance. Returns self."""
        k = check_cardinality(self.cardinality)
        prior = check_class_balance(self.class_balance, k)
        check_random_state(self.random_state)
        votes = validate_votes(L, cardinality=k)
        n, m = votes.shape
        if m == 0:
            raise InputError("L has no columns; fit needs at least one labeling function")
        if prior is None:
            proba = _majority_proba(votes, k, np.zeros(k))
            if y is not None:
                gold = validate_gold(y, n_assets=n, cardinality=k)
                known = gold >= 0
                proba[known] = np.eye(k)[gold[known]]
            mass = proba.sum(axis=0)
            prior = (mass + 1.0) / (mass.sum() + k)  # add-one smoothing keeps every class > 0
        elif y is not None:
            validate_gold(y, n_assets=n, cardinality=k)
        self.classes_ = np.arange(k)
        self.n_lfs_ = m
        self.n_features_in_ = m
        self.class_balance_ = prior
        return self

    def predict_proba(self, L: Any) -> np.ndarray:
        """Vote shares of the top class(es), ``(n_assets, k)``; rows sum to 1."""
        check_fitted(self)
        k = len(self.classes_)
        votes = validate_votes(L, cardinality=k, n_lfs=self.n_lfs_)
        return _majority_proba(votes, k, self.class_balance_)

    def predict(self, L: Any) -> np.ndarray:
        """Majority class per asset; ties go to the lowest tied class id."""
        return predict_from_proba(self.predict_proba(L))

    _FORMAT = "enrich.MajorityVote"
    _FORMAT_VERSION = 1

    def _fitted_state(self) -> dict[str, Any]:
        return {"n_lfs": int(self.n_lfs_), "class_balance": self.class_balance_.tolist()}

    def _restore(self, fitted: dict[str, Any]) -> None:
        self.classes_ = np.arange(int(self.cardinality))
        self.n_lfs_ = int(fitted["n_lfs"])
        self.n_features_in_ = self.n_lfs_
        self.class_balance_ = np.asarray(fitted["class_balance"], dtype=np.float64)
