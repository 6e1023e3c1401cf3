"""The label model in the crowd regime: annotators who vote many classes (issue 14).

One-answer crowd workers, ties of equal weights broken by EM, and which votes bind a row to
the classes its votes name, on seeded crowds with known truth and on the visible crowd sets.
"""

from __future__ import annotations

import numpy as np
import pytest

from enrich.models.label_model import LabelModel, binding_votes
from enrich.models.majority_vote import MajorityVote


def _crowd(rng, y, k, accuracies, coverage):
    """Annotators right with each accuracy, else a uniformly drawn wrong class."""
    n = y.size
    cols = []
    for accuracy in accuracies:
        fire = rng.random(n) < coverage
        wrong = (y + rng.integers(1, k, n)) % k
        cols.append(np.where(fire, np.where(rng.random(n) < accuracy, y, wrong), -1))
    return cols


def test_a_crowd_worker_with_one_answer_is_an_annotator_and_a_keyword_lf_a_detector():
    # eight annotators of mixed skill; one worker answers class 1 to every item he is given
    # (his items are any items); one keyword-like LF fires mostly on items of class 1
    rng = np.random.default_rng(0)
    k, n = 2, 3000
    y = rng.choice(k, size=n, p=[0.8, 0.2])
    cols = _crowd(rng, y, k, np.linspace(0.65, 0.9, 8), coverage=0.5)
    cols.append(np.where(rng.random(n) < 0.3, 1, -1))  # always "1", on random items
    cols.append(np.where((y == 1) & (rng.random(n) < 0.5) | (rng.random(n) < 0.02), 1, -1))
    votes = np.stack(cols, axis=1)
    model = LabelModel(cardinality=k, random_state=0, structure="em").fit(votes)
    assert model.lf_role_[8] == "annotator"
    assert model.lf_role_[9] == "detector"
    # the one-answer worker's vote says almost nothing; the keyword LF's says class 1
    assert abs(model.log_lr_[8, 1, 1] - model.log_lr_[8, 1, 0]) < 0.3
    assert model.log_lr_[9, 1, 1] - model.log_lr_[9, 1, 0] > 1.0
    # so the labels are about those of the crowd without him (as a detector, his answer
    # was floored to be evidence for class 1, and EM drifted towards class 1)
    without = np.delete(votes, 8, axis=1)
    alone = LabelModel(cardinality=k, random_state=0, structure="em").fit(without)
    agree = np.mean(model.predict(votes) == alone.predict(without))
    assert agree > 0.97


def test_without_annotators_one_class_lfs_stay_detectors():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 2000)
    cols = [np.where((y == c) & (rng.random(2000) < 0.4), c, -1) for c in range(3)]
    cols.append(np.where(rng.random(2000) < 0.3, 0, -1))  # fires anywhere: still one class
    model = LabelModel(cardinality=3, random_state=0).fit(np.stack(cols, axis=1))
    assert model.lf_role_.tolist() == ["detector"] * 4


def _tied_crowd():
    """Annotators of very different skill answering 4 items each: many tied rows."""
    rng = np.random.default_rng(2)
    k, n = 3, 2000
    y = rng.integers(0, k, n)
    votes = np.full((n, 12), -1)
    skill = np.r_[np.full(4, 0.92), np.full(8, 0.45)]
    for i in range(n):
        for j in rng.choice(12, size=2, replace=False):
            right = rng.random() < skill[j]
            votes[i, j] = y[i] if right else (y[i] + rng.integers(1, k)) % k
    return votes, y, k


def test_vote_plus_em_is_majority_vote_with_em_breaking_the_ties():
    votes, y, k = _tied_crowd()
    em = LabelModel(cardinality=k, random_state=0, structure="em").fit(votes)
    hybrid = LabelModel(cardinality=k, random_state=0, structure="vote+em").fit(votes)
    assert hybrid.structure_ == "vote+em"
    counts = np.stack([(votes == c).sum(axis=1) for c in range(k)], axis=1)
    top = counts.max(axis=1)
    tied = (counts == top[:, None]).sum(axis=1) > 1
    assert tied.sum() > 200
    pred = hybrid.predict(votes)
    # every label is a class with the most votes
    assert (counts[np.arange(len(pred)), pred] == top).all()
    # on tied rows it is the tied class EM scores highest
    em_proba = em.predict_proba(votes)
    among = np.where(counts == top[:, None], em_proba, -1.0).argmax(axis=1)
    assert (pred[tied] == among[tied]).all()
    # which beats breaking ties by the class balance, as the good annotators decide them
    vote = LabelModel(cardinality=k, random_state=0, structure="vote").fit(votes)
    assert np.mean(pred[tied] == y[tied]) > np.mean(vote.predict(votes)[tied] == y[tied]) + 0.1
    # rows without votes get the class balance, as with equal weights
    empty = np.full((1, votes.shape[1]), -1)
    assert np.allclose(hybrid.predict_proba(empty)[0], vote.class_balance_)


def test_vote_plus_em_round_trips_and_rebuilds(tmp_path):
    votes, _, k = _tied_crowd()
    model = LabelModel(cardinality=k, random_state=0, structure="vote+em").fit(votes)
    model.save(tmp_path / "model.json")
    loaded = LabelModel.load(tmp_path / "model.json")
    assert loaded.structure_ == "vote+em"
    assert np.allclose(loaded.predict_proba(votes), model.predict_proba(votes))


def test_only_votes_shown_to_be_evidence_bind():
    confusion = np.zeros((3, 2, 3))
    confusion[:, :, 1:] = 0.5  # each LF always votes, each class half the time
    balance = np.array([0.5, 0.5])
    precision = np.array([[0.52, 0.9], [0.3, 0.5], [0.52, 0.52]])
    binds = binding_votes(precision, confusion, balance, 1000)
    # near chance does not bind, above chance by two standard errors does
    assert binds.tolist() == [[False, True], [False, False], [False, False]]
    detectors = np.array([False, False, True])
    assert binding_votes(precision, confusion, balance, 1000, detectors=detectors)[2].all()


def test_answers_of_workers_near_chance_do_not_force_their_class():
    # good workers and workers at chance (their answer is independent of the item's class);
    # on items only workers at chance answered,
    # the label follows the model (it may name a class none of them voted), and on items
    # with a good worker's answer it stays one of the answered classes
    rng = np.random.default_rng(4)
    k, n = 3, 4000
    y = rng.choice(k, size=n, p=[0.6, 0.25, 0.15])
    votes = np.stack(_crowd(rng, y, k, [0.9, 0.85, 0.8, 1 / 3, 1 / 3, 1 / 3], 0.35), axis=1)
    model = LabelModel(cardinality=k, random_state=0, structure="em").fit(votes)
    pred = model.predict(votes)
    binds = model._binding_votes()
    assert binds[:3].any(axis=1).all() and not binds[3:].any()
    good = (votes[:, :3] >= 0).any(axis=1)
    named = (votes == pred[:, None]).any(axis=1)
    assert named[good].all()
    weak = ~good & (votes[:, 3:] >= 0).any(axis=1)
    assert (~named[weak]).any()  # some rows get a class no (near-chance) vote names
    assert np.mean(pred[weak] == y[weak]) >= np.mean(
        MajorityVote(cardinality=k).fit(votes).predict(votes)[weak] == y[weak]
    )


@pytest.mark.parametrize("name", ["dog", "product_er"])
def test_visible_crowd_sets_beat_majority_vote(shared_data, name):
    from benchmarks._data import load_crowd

    data = load_crowd(name)
    known = data.gold >= 0
    model = LabelModel(cardinality=data.cardinality, random_state=0).fit(data.votes)
    ours = np.mean(model.predict(data.votes)[known] == data.gold[known])
    majority = MajorityVote(cardinality=data.cardinality).fit(data.votes).predict(data.votes)
    assert ours > np.mean(majority[known] == data.gold[known])


@pytest.mark.parametrize("name", ["independent", "duplicated", "many_classes", "mixed_kinds"])
def test_a_gold_label_does_not_move_the_unsupervised_choice(name):
    # the structure check sees the votes alone: a gold label splits its row's vote pattern
    # in two (with and without gold), which must not redraw the check's halves; one gold
    # label is too few to replace the choice, so the fit is the unsupervised one
    from benchmarks.label_model_robustness import scenario

    votes, y, k = scenario(name, seed=0, n=1500)
    unsupervised = LabelModel(cardinality=k, random_state=0).fit(votes)
    voted = np.flatnonzero((votes >= 0).sum(axis=1) >= 2)
    for row in voted[:5]:
        gold = np.full(len(y), -1)
        gold[row] = y[row]
        semi = LabelModel(cardinality=k, random_state=0).fit(votes, gold)
        assert semi.structure_ == unsupervised.structure_
        assert np.array_equal(semi.predict(votes), unsupervised.predict(votes))
