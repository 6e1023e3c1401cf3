"""Rows without votes: their class mix from class-conditional abstention, and its guard."""

from __future__ import annotations

import numpy as np

from enrich.models.abstention import empty_row_balance, implied_silent_rows, silent_mix
from enrich.models.label_model import LabelModel


def skewed_coverage(seed: int, n: int = 6000) -> tuple[np.ndarray, np.ndarray]:
    """Two equal classes; three precise detectors of class 0 fire on half its rows each,
    three of class 1 on a quarter: the rows without a vote are mostly class 1, while the
    voted rows are mostly class 0."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    target = np.array([0, 0, 0, 1, 1, 1])
    recall = np.array([0.5, 0.5, 0.5, 0.25, 0.25, 0.25])
    fire = (y[:, None] == target) & (rng.random((n, 6)) < recall)
    return np.where(fire, target, -1), y


def trigger_families(seed: int, n: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """Four class-0 LFs that share one trigger (each keeps 90% of its rows) and two
    independent class-1 LFs: class 0 looks fully covered under independence, it is not."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    trigger = np.where(y == 0, rng.random(n) < 0.4, rng.random(n) < 0.03)
    cols = [np.where(trigger & (rng.random(n) < 0.9), 0, -1) for _ in range(4)]
    for _ in range(2):
        fire = np.where(y == 1, rng.random(n) < 0.3, rng.random(n) < 0.03)
        cols.append(np.where(fire, 1, -1))
    return np.stack(cols, axis=1), y


def test_rows_without_votes_get_the_poorly_covered_class():
    votes, y = skewed_coverage(0)
    empty = (votes < 0).all(axis=1)
    assert y[empty].mean() > 0.7  # the rows without a vote are mostly class 1 ...
    model = LabelModel(cardinality=2, random_state=0).fit(votes)
    assert model.class_balance_.argmax() == 0  # ... while the voted balance says class 0
    assert model.empty_prior_.argmax() == 1
    assert np.allclose(model.predict_proba(votes[empty]), model.empty_prior_)
    assert np.mean(model.predict(votes[empty]) == y[empty]) > 0.7
    # rows with votes are scored as before: the mix only labels rows without votes
    voted = ~empty
    given = LabelModel(cardinality=2, random_state=0, class_balance=model.class_balance_)
    assert np.array_equal(model.predict(votes[voted]), given.fit(votes).predict(votes[voted]))


def test_dependent_lfs_keep_the_voted_balance():
    for seed in range(3):
        votes, _ = trigger_families(seed)
        model = LabelModel(cardinality=2, random_state=0).fit(votes)
        assert np.array_equal(model.empty_prior_, model.class_balance_)
        # the independence product alone would send every row without a vote to class 1
        post = np.eye(2)[np.where((votes[:, :4] >= 0).any(axis=1), 0, 1)]
        patterns, inverse, counts = np.unique(
            votes, axis=0, return_inverse=True, return_counts=True
        )
        pattern_post = np.zeros((len(patterns), 2))
        pattern_post[inverse.ravel()] = post
        assert silent_mix(patterns, counts, pattern_post)[1] > 0.9
        # because it implies far fewer silent rows than there are
        silent = counts[(patterns < 0).all(axis=1)].sum()
        assert implied_silent_rows(patterns, counts, pattern_post) < 0.7 * silent


def test_the_mix_is_deterministic_and_survives_save_load_and_column_order(tmp_path):
    votes, _ = skewed_coverage(1)
    model = LabelModel(cardinality=2, random_state=0).fit(votes)
    again = LabelModel(cardinality=2, random_state=0).fit(votes)
    assert np.array_equal(model.empty_prior_, again.empty_prior_)
    perm = np.array([3, 0, 5, 1, 4, 2])
    permuted = LabelModel(cardinality=2, random_state=0).fit(votes[:, perm])
    assert np.allclose(permuted.empty_prior_, model.empty_prior_)
    model.save(tmp_path / "m.json")
    loaded = LabelModel.load(tmp_path / "m.json")
    assert np.allclose(loaded.empty_prior_, model.empty_prior_)
    assert np.allclose(loaded.predict_proba(votes), model.predict_proba(votes))


def test_gold_on_voted_rows_leaves_the_mix_and_gold_on_empty_rows_moves_it():
    votes, y = skewed_coverage(2)
    unsupervised = LabelModel(cardinality=2, random_state=0).fit(votes)
    empty = (votes < 0).all(axis=1)
    gold = np.where(~empty & (np.arange(len(y)) % 5 == 0), y, -1)
    with_gold = LabelModel(cardinality=2, random_state=0).fit(votes, gold)
    assert np.allclose(with_gold.empty_prior_, unsupervised.empty_prior_)
    gold = np.where(empty & (np.arange(len(y)) % 3 == 0), y, -1)
    with_gold = LabelModel(cardinality=2, random_state=0).fit(votes, gold)
    seen = np.bincount(y[gold >= 0], minlength=2)
    expected = seen + 20.0 * unsupervised.empty_prior_
    assert np.allclose(with_gold.empty_prior_, expected / expected.sum())


def test_a_given_class_balance_or_too_few_lfs_keep_the_voted_balance():
    votes, _ = skewed_coverage(0)
    given = LabelModel(cardinality=2, class_balance=[0.5, 0.5]).fit(votes)
    assert np.allclose(given.empty_prior_, [0.5, 0.5])
    one = votes[:, [0]]
    patterns, counts = np.unique(one, axis=0, return_counts=True)
    post = np.eye(2)[(patterns[:, 0] < 0).astype(int)]
    mix, adopted = empty_row_balance(patterns, counts, post, np.array([0.6, 0.4]))
    assert not adopted and np.allclose(mix, [0.6, 0.4])
