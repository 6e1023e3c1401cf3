"""Quick version of the label-model stress suite (benchmarks/label_model_robustness.py).

Every scenario draws votes with known truth; the default LabelModel must never be more than
2 points below majority vote, and gold labels (50 of them, or every row) must never make it
worse than the unsupervised fit by more than 0.5 points.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.label_model_robustness import SCENARIOS, gold_subset, scenario, unvoted
from enrich.curation.review import queue_from_votes
from enrich.models.label_model import LabelModel, binding_votes
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


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_gold_picked_by_the_review_queue_never_hurts_the_rows_not_reviewed(name):
    # review picks are not a random sample (conflicts first): the structure chosen with
    # them is compared on post-stratified gold rows. Unweighted, the duplicated-LF scenario
    # switched to EM with gold and lost 3.3 points on the unreviewed rows.
    votes, y, k = scenario(name, seed=0, n=1500)
    unsupervised = LabelModel(cardinality=k, random_state=0).fit(votes)
    proba = unsupervised.predict_proba(votes)
    picked = queue_from_votes(votes, proba, batch_size=100).asset_ids.to_numpy()
    gold = np.full(len(y), -1)
    gold[picked] = y[picked]
    semi = LabelModel(cardinality=k, random_state=0).fit(votes, gold)
    rest = np.setdiff1d(np.arange(len(y)), picked)
    before = np.mean(unsupervised.predict(votes[rest]) == y[rest])
    assert np.mean(semi.predict(votes[rest]) == y[rest]) >= before - 0.005


def test_structure_follows_the_evidence():
    # LFs worse than random are only caught by learned weights; under strong class
    # imbalance EM's balance drifts, it predicts held-out votes worse, and equal weights stay
    votes, _, k = scenario("worse_than_random", seed=0, n=1500)
    assert LabelModel(cardinality=k, random_state=0).fit(votes).structure_ == "em"
    votes, _, k = scenario("imbalance", seed=0, n=1500)
    assert LabelModel(cardinality=k, random_state=0).fit(votes).structure_ == "vote"


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_never_names_a_class_no_lf_voted(name):
    # on a row with votes the label is one of the voted classes (issue 14), with or without
    # gold labels, unless no vote on the row is shown to be evidence for its class (its LF's
    # estimated precision for it is not significantly above the class's base rate)
    votes, y, k = scenario(name, seed=1, n=1500)
    for gold in (None, gold_subset(y, 200, seed=1), y):
        model = LabelModel(cardinality=k, random_state=0).fit(votes, gold)
        pred = model.predict(votes)
        binding = binding_votes(
            model.lf_precision_,
            model.confusion_,
            model.class_balance_,
            model.n_fit_rows_,
            detectors=model.lf_role_ == "detector",
        )
        rows, cols = np.nonzero(votes >= 0)
        binds = np.zeros(votes.shape, dtype=bool)
        binds[rows, cols] = binding[cols, votes[rows, cols]]
        named = (votes == pred[:, None]).any(axis=1)
        assert not (binds.any(axis=1) & ~named).any()
        if binding.all():
            assert unvoted(votes, pred) == 0


def test_a_lone_answer_of_an_adversarial_annotator_is_turned_round():
    # three good annotators and one who answers the next class (mod k) nine times in ten; on
    # the items only the adversary answered, the class its answer points to is the one before
    rng = np.random.default_rng(3)
    k, n = 3, 3000
    y = rng.integers(0, k, n)
    cols = []
    for accuracy in (0.85, 0.8, 0.75):
        fire = rng.random(n) < 0.5
        wrong = (y + rng.integers(1, k, n)) % k
        cols.append(np.where(fire, np.where(rng.random(n) < accuracy, y, wrong), -1))
    answer = np.where(rng.random(n) < 0.9, (y + 1) % k, y)
    cols.append(np.where(rng.random(n) < 0.6, answer, -1))
    votes = np.stack(cols, axis=1)
    model = LabelModel(cardinality=k, random_state=0).fit(votes)
    assert model.lf_diagnostics(votes)["worse_than_random"].to_list() == [False] * 3 + [True]
    alone = (votes[:, :3] < 0).all(axis=1) & (votes[:, 3] >= 0)
    assert alone.sum() > 100
    pred = model.predict(votes)
    assert np.mean(pred[alone] == y[alone]) > 0.8  # majority vote: 0.1
    assert np.mean(pred == y) > np.mean(MajorityVote(cardinality=k).fit(votes).predict(votes) == y)


def test_low_precision_votes_never_make_a_rare_class_win():
    # the failure of issue 14: two imprecise detectors of class 2 (they also fire on half of
    # every other class) used to send their rows to a rare class (balance 0.006) once their
    # precision was learned from gold; a vote now spreads its doubt by the class balance
    rng = np.random.default_rng(0)
    k, n = 10, 4000
    balance = np.full(k, 0.994 / (k - 1))
    balance[6] = 0.006
    y = rng.choice(k, size=n, p=balance)
    cols = []
    for _ in range(2):
        fire = np.where(y == 2, rng.random(n) < 0.8, rng.random(n) < 0.3)
        cols.append(np.where(fire, 2, -1))
    for c in range(k):
        cols.append(np.where((y == c) & (rng.random(n) < 0.3), c, -1))
    votes = np.stack(cols, axis=1)
    only_two = (votes[:, :2] == 2).all(axis=1) & (votes[:, 2:] < 0).all(axis=1)
    for gold in (None, y):
        model = LabelModel(cardinality=k, random_state=0).fit(votes, gold)
        assert (model.predict(votes[only_two]) == 2).all()
        assert unvoted(votes, model.predict(votes)) == 0
