"""MultiLabelModel: the label-model contract per label, thresholds, priors, save/load."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from enrich import LabelModel
from enrich.errors import InputError, LabelModelFileError, NotFittedError, VoteValueError
from enrich.models.multilabel import MultiLabelModel
from enrich.multilabel_votes import MultiLabelVoteMatrix


def _votes(seed: int = 0, n: int = 600) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic votes of 5 LFs on 3 correlated labels with known gold sets."""
    rng = np.random.default_rng(seed)
    gold = np.zeros((n, 3), dtype=np.int8)
    gold[:, 0] = rng.random(n) < 0.4
    gold[:, 1] = np.where(gold[:, 0] == 1, rng.random(n) < 0.8, rng.random(n) < 0.2)
    gold[:, 2] = rng.random(n) < 0.3
    votes = np.zeros((n, 5, 3), dtype=np.int8)
    for j, (accuracy, coverage) in enumerate([(0.9, 0.6), (0.8, 0.5), (0.7, 0.7), (0.85, 0.3)]):
        for t in range(3):
            fires = rng.random(n) < coverage
            right = rng.random(n) < accuracy
            said = np.where(right, gold[:, t], 1 - gold[:, t])
            votes[fires, j, t] = np.where(said[fires] == 1, 1, -1)
    # LF 4 only ever votes for label 2 (a one-sided detector), precisely
    votes[(gold[:, 2] == 1) & (rng.random(n) < 0.7), 4, 2] = 1
    return votes, gold


def _f1(gold: np.ndarray, predicted: np.ndarray) -> float:
    tp = ((gold == 1) & (predicted == 1)).sum()
    return 2 * tp / ((gold == 1).sum() + (predicted == 1).sum())


def test_fit_returns_self_keeps_params_and_predicts_probabilities() -> None:
    votes, gold = _votes()
    model = MultiLabelModel(random_state=1)
    params = model.get_params()
    assert model.fit(votes) is model
    assert model.get_params() == params
    proba = model.predict_proba(votes)
    assert proba.shape == (600, 3) and ((proba >= 0) & (proba <= 1)).all()
    predicted = model.predict(votes)
    assert predicted.dtype == np.int8 and set(np.unique(predicted)) <= {0, 1}
    assert np.array_equal(predicted, (proba >= model.thresholds_).astype(np.int8))
    for t in range(3):  # better than every single LF's votes on that label
        assert _f1(gold[:, t], predicted[:, t]) > 0.75
    assert all(isinstance(m, LabelModel) for m in model.models_)


def test_not_fitted_and_bad_input_errors() -> None:
    votes, _ = _votes()
    with pytest.raises(NotFittedError, match="fit"):
        MultiLabelModel().predict_proba(votes)
    with pytest.raises(InputError, match="n_labels"):
        MultiLabelModel().fit(votes[:, :, 0])
    with pytest.raises(VoteValueError, match="asset 0, LF 0, label 0"):
        MultiLabelModel().fit(np.full((2, 1, 1), 2))
    model = MultiLabelModel().fit(votes)
    with pytest.raises(InputError, match="5 LFs x 3 labels"):
        model.predict(votes[:, :4])
    with pytest.raises(InputError, match="thresholds"):
        MultiLabelModel(thresholds=1.5).fit(votes)
    with pytest.raises(InputError, match="label_prior"):
        MultiLabelModel(label_prior=[0.2, 0.3]).fit(votes)
    with pytest.raises(InputError, match="shape"):
        MultiLabelModel().fit(votes, np.zeros((600, 2)))


def test_deterministic_and_batch_equals_whole() -> None:
    votes, _ = _votes()
    a = MultiLabelModel(random_state=3).fit(votes).predict_proba(votes)
    model = MultiLabelModel(random_state=3).fit(votes)
    b = np.concatenate([model.predict_proba(votes[:250]), model.predict_proba(votes[250:])])
    assert np.array_equal(a, b)
    assert np.array_equal(a, model.predict_proba(votes))


def test_one_sided_label_gets_the_coverage_prior_not_present_everywhere() -> None:
    votes = np.zeros((100, 2, 1), dtype=np.int8)
    votes[:20, 0, 0] = 1
    votes[10:25, 1, 0] = 1
    model = MultiLabelModel(thresholds=0.5).fit(votes)
    assert model.label_prior_[0] == pytest.approx(0.25)
    assert model.predict(votes)[:, 0].tolist() == [1] * 25 + [0] * 75


def test_expected_f1_thresholds_and_tuned_thresholds() -> None:
    votes, gold = _votes(seed=4)
    fixed = MultiLabelModel(thresholds=0.5, random_state=0).fit(votes)
    expected = MultiLabelModel(thresholds="f1", random_state=0).fit(votes)
    assert fixed.thresholds_.tolist() == [0.5, 0.5, 0.5]
    assert expected.thresholds_.shape == (3,) and (expected.thresholds_ <= 0.5 + 1e-9).all()
    tuned = MultiLabelModel(random_state=0).fit(votes).tune_thresholds(votes, gold)
    with pytest.raises(InputError, match="'f1'"):
        MultiLabelModel(thresholds="best").fit(votes)
    for t in range(3):
        assert _f1(gold[:, t], tuned.predict(votes)[:, t]) >= _f1(
            gold[:, t], fixed.predict(votes)[:, t]
        )


def test_gold_label_sets_are_used() -> None:
    votes, gold = _votes(seed=5)
    partial = np.where(np.arange(600)[:, None] < 200, gold, -1)
    model = MultiLabelModel(random_state=0).fit(votes, partial)
    assert model.predict_proba(votes).shape == (600, 3)
    without = MultiLabelModel(random_state=0).fit(votes)
    # the co-occurrence tables count the gold rows' true labels
    assert any(
        not np.array_equal(a[1], b[1])
        for a, b in zip(model.cooccurrence_, without.cooccurrence_, strict=True)
    )
    # label 1 follows label 0 (80% / 20%): its prior given label 0 present is higher
    codes, priors = model.cooccurrence_[1]
    by_label_0 = dict(zip(codes.tolist(), priors.tolist(), strict=True))
    assert by_label_0[0 + 2 * 3] < by_label_0[1 + 2 * 3]  # label 2 unknown, label 0 absent/present


def test_vote_matrix_input_uses_each_lfs_targets(tmp_path) -> None:
    votes, _ = _votes()
    vm = MultiLabelVoteMatrix(
        votes=votes,
        lf_names=tuple(f"lf{j}" for j in range(5)),
        label_names=("a", "b", "c"),
        asset_ids=pl.Series(range(600)),
        lf_targets=(None, None, None, None, (2,)),
    )
    model = MultiLabelModel(random_state=0).fit(vm)
    assert model.label_names_ == ("a", "b", "c")
    assert [c.tolist() for c in model.lf_columns_] == [[0, 1, 2, 3]] * 2 + [[0, 1, 2, 3, 4]]
    path = tmp_path / "model.json"
    model.save(path)
    loaded = MultiLabelModel.load(path)
    assert np.array_equal(loaded.predict_proba(vm), model.predict_proba(vm))
    assert np.array_equal(loaded.thresholds_, model.thresholds_)
    assert loaded.get_params() == model.get_params()
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(LabelModelFileError, match="not a saved MultiLabelModel"):
        MultiLabelModel.load(tmp_path / "bad.json")
    with pytest.raises(NotFittedError):
        MultiLabelModel().save(tmp_path / "x.json")


@pytest.mark.parametrize("thresholds", [0.5, "f1"])
def test_fit_on_distinct_patterns_weighted_by_count_equals_fit_on_every_row(thresholds) -> None:
    from enrich._internal.vote_arrays import compress_votes

    votes, gold = _votes(seed=3, n=900)
    n, m, k = votes.shape
    rows = MultiLabelModel(thresholds=thresholds, random_state=0).fit(votes, gold)
    patterns = compress_votes(np.column_stack([votes.reshape(n, -1), gold]).astype(np.int32))
    distinct = patterns.patterns[:, : m * k].reshape(-1, m, k).astype(np.int8)
    weighted = MultiLabelModel(thresholds=thresholds, random_state=0).fit(
        distinct, patterns.patterns[:, m * k :], sample_weight=patterns.counts
    )
    assert patterns.n_patterns < n
    assert np.allclose(rows.predict_proba(votes), weighted.predict_proba(votes), atol=1e-9)
    assert np.allclose(rows.thresholds_, weighted.thresholds_)
    with pytest.raises(InputError, match="sample_weight must be 900 finite, non-negative"):
        MultiLabelModel().fit(votes, sample_weight=-np.ones(n))
