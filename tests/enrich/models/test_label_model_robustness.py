"""Quick version of the label-model stress suite (benchmarks/label_model_robustness.py).

Every scenario draws votes with known truth; the default LabelModel must never be more than
2 points below majority vote, and gold labels (50 of them, or every row) must never make it
worse than the unsupervised fit by more than 0.5 points.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.label_model_robustness import SCENARIOS, gold_subset, scenario
from enrich.models.label_model import LabelModel
from enrich.models.majority_vote import MajorityVote


def accuracy(model, votes, y, gold=None):
    return float(np.mean(model.fit(votes, gold).predict(votes) == y))


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_never_loses_badly_to_majority_vote_and_gold_never_hurts(name):
    votes, y, k = scenario(name, seed=0, n=1500)
    unsupervised = accuracy(LabelModel(cardinality=k, random_state=0), votes, y)
    majority = accuracy(MajorityVote(cardinality=k), votes, y)
    assert unsupervised >= majority - 0.02
    for gold in (gold_subset(y, 50, seed=1), y):
        semi = accuracy(LabelModel(cardinality=k, random_state=0), votes, y, gold)
        assert semi >= unsupervised - 0.005


def test_structure_follows_the_evidence():
    # LFs worse than random are only caught by learned weights; under strong class
    # imbalance EM's balance drifts, it predicts held-out votes worse, and equal weights stay
    votes, _, k = scenario("worse_than_random", seed=0, n=1500)
    assert LabelModel(cardinality=k, random_state=0).fit(votes).structure_ == "em"
    votes, _, k = scenario("imbalance", seed=0, n=1500)
    assert LabelModel(cardinality=k, random_state=0).fit(votes).structure_ == "vote"
