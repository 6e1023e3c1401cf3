"""Behaviour of enrich's LabelModel (and the vote-matrix helpers it is built on)."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enrich._internal.vote_arrays import (
    VoteValueError,
    compress_votes,
    validate_gold,
    validate_votes,
)
from enrich.errors import InputError, NotFittedError
from enrich.models.label_model import LabelModel, near_duplicates, post_stratified
from enrich.models.majority_vote import MajorityVote
from enrich.models.snorkel import SnorkelLabelModel


def dawid_skene_votes(
    accuracies, coverages, *, n=20_000, prior=(0.5, 0.3, 0.2), seed=1
) -> tuple[np.ndarray, np.ndarray]:
    """Annotators that fire independently of the class and err uniformly (Dawid-Skene)."""
    rng = np.random.default_rng(seed)
    k = len(prior)
    y = rng.choice(k, n, p=prior)
    votes = np.full((n, len(accuracies)), -1)
    for j, (acc, cov) in enumerate(zip(accuracies, coverages, strict=True)):
        fire = rng.random(n) < cov
        right = rng.random(n) < acc
        wrong = (y + rng.integers(1, k, n)) % k
        votes[:, j] = np.where(fire, np.where(right, y, wrong), -1)
    return votes, y


def detector_votes(spec, *, n=20_000, prior=(0.5, 0.3, 0.2), seed=2):
    """Keyword-style LFs: LF j votes only its class c, firing w.p. a if y == c else b."""
    rng = np.random.default_rng(seed)
    y = rng.choice(len(prior), n, p=prior)
    votes = np.full((n, len(spec)), -1)
    for j, (c, a, b) in enumerate(spec):
        votes[rng.random(n) < np.where(y == c, a, b), j] = c
    return votes, y


# ------------------------------------------------------------------------------- recovery
def test_recovers_known_accuracies_and_class_balance():
    accuracies = [0.9, 0.8, 0.7, 0.6, 0.85, 0.75]
    votes, y = dawid_skene_votes(accuracies, [0.5, 0.4, 0.6, 0.3, 0.2, 0.5])
    model = LabelModel(cardinality=3).fit(votes)
    assert model.converged_
    assert list(model.lf_role_) == ["annotator"] * 6
    assert np.allclose(model.lf_accuracy_, accuracies, atol=0.02)
    # EM's balance scores the rows with votes; rows without votes get the balance of the
    # majority-vote labels (class_balance_), which is sound where EM's drifts
    assert model.structure_ == "em"
    assert np.allclose(model.score_prior_, [0.5, 0.3, 0.2], atol=0.02)
    assert np.allclose(model.class_balance_, [0.5, 0.3, 0.2], atol=0.05)
    fire = model.confusion_[:, :, 1:].sum(axis=2)  # P(vote | y) summed over votes
    assert np.allclose(fire, np.array([0.5, 0.4, 0.6, 0.3, 0.2, 0.5])[:, None], atol=0.02)
    assert np.allclose(model.confusion_.sum(axis=2), 1.0)
    mv = MajorityVote(cardinality=3).fit(votes)
    assert (model.predict(votes) == y).mean() > (mv.predict(votes) == y).mean()


def test_flips_the_sign_of_an_inverted_lf():
    votes, _ = dawid_skene_votes([0.85, 0.8, 0.75, 0.2], [0.7, 0.7, 0.7, 0.9], prior=(0.5, 0.5))
    model = LabelModel(cardinality=2).fit(votes)
    assert model.lf_accuracy_[3] == pytest.approx(0.2, abs=0.03)
    # a vote for 0 from LF 3 is evidence for class 1, and the other way round
    assert model.log_lr_[3, 0, 1] > model.log_lr_[3, 0, 0]
    assert model.log_lr_[3, 1, 0] > model.log_lr_[3, 1, 1]
    # next to another vote it strengthens the opposite class; alone it is turned round too:
    # it is right less often than chance about either class, so its vote does not bind the
    # label to its class (the voted-class guard of issue 14 holds for every other vote)
    rows = np.array([[0, -1, -1, -1], [0, -1, -1, 1], [-1, -1, -1, 0], [-1, -1, -1, 1]])
    proba = model.predict_proba(rows)
    assert proba[1, 0] > proba[0, 0] > 0.5
    flags = model.lf_diagnostics(votes)["worse_than_random"].to_list()
    assert flags == [False, False, False, True]
    assert model.predict(rows[2:]).tolist() == [1, 0]


def test_detectors_beat_majority_vote():
    spec = [(0, 0.4, 0.05), (0, 0.3, 0.02), (1, 0.5, 0.03), (1, 0.2, 0.05), (2, 0.6, 0.02)]
    votes, y = detector_votes(spec)
    model = LabelModel(cardinality=3).fit(votes)
    assert list(model.lf_role_) == ["detector"] * 5
    true_precision = [np.mean(y[votes[:, j] >= 0] == c) for j, (c, _, _) in enumerate(spec)]
    # detectors that meet a detector of their own class are estimated well; a lone detector
    # of its class only ever meets conflicting votes and is underestimated (documented)
    assert np.allclose(model.lf_accuracy_[:2], true_precision[:2], atol=0.06)
    mv = MajorityVote(cardinality=3).fit(votes)
    assert (model.predict(votes) == y).mean() >= (mv.predict(votes) == y).mean()
    # a lone detector vote always names its class
    lone = np.full((5, 5), -1)
    lone[np.arange(5), np.arange(5)] = [c for c, _, _ in spec]
    assert model.predict(lone).tolist() == [c for c, _, _ in spec]


def test_beats_majority_vote_on_real_wrench_youtube(shared_data):
    def load(split):
        records = json.loads((shared_data / "wrench" / "youtube" / f"{split}.json").read_text())
        rows = [records[key] for key in sorted(records, key=int)]
        return np.array([r["weak_labels"] for r in rows]), np.array([r["label"] for r in rows])

    train, _ = load("train")
    test, gold = load("test")
    model = LabelModel(cardinality=2, random_state=0).fit(train)
    ours = (model.predict(test) == gold).mean()
    majority = (MajorityVote(cardinality=2).fit(train).predict(test) == gold).mean()
    assert ours >= 0.85 and ours > majority


# ---------------------------------------------------------------------------- gold labels
def test_gold_rows_are_clamped_and_anchor_estimates():
    votes, y = dawid_skene_votes([0.7, 0.65, 0.6], [0.6, 0.6, 0.6], n=3000, prior=(0.5, 0.5))
    gold = np.full(len(y), -1)
    gold[:300] = y[:300]
    model = LabelModel(cardinality=2).fit(votes, gold)
    unsupervised = LabelModel(cardinality=2).fit(votes)
    true_acc = [np.mean(votes[votes[:, j] >= 0, j] == y[votes[:, j] >= 0]) for j in range(3)]
    err_gold = np.abs(model.lf_accuracy_ - true_acc).mean()
    err_plain = np.abs(unsupervised.lf_accuracy_ - true_acc).mean()
    assert err_gold <= err_plain + 0.01


def test_gold_that_misses_classes_is_fine():
    votes, y = dawid_skene_votes([0.9, 0.8, 0.8], [0.8, 0.8, 0.8], n=2000)
    gold = np.where(y == 2, -1, y)  # class 2 never labelled
    gold[200:] = -1
    model = LabelModel(cardinality=3).fit(votes, gold)
    assert np.all(model.class_balance_ > 0.05)
    assert (model.predict(votes) == y).mean() > 0.9


# ------------------------------------------------------------------------------ edge cases
@pytest.mark.parametrize("m", [1, 2])
def test_one_or_two_lfs(m):
    votes, y = dawid_skene_votes([0.9, 0.8][:m], [0.9, 0.9][:m], n=500, prior=(0.6, 0.4))
    model = LabelModel(cardinality=2).fit(votes)
    proba = model.predict_proba(votes)
    assert np.allclose(proba.sum(axis=1), 1) and not np.isnan(proba).any()
    assert (model.predict(votes) == y)[votes[:, 0] >= 0].mean() > 0.8
    with pytest.raises(InputError, match="at least 3 labeling functions"):
        SnorkelLabelModel(cardinality=2).fit(votes)


def test_one_detector_alone_keeps_its_votes():
    votes = np.array([[1], [-1], [1], [-1], [-1]])
    model = LabelModel(cardinality=2).fit(votes)
    assert model.predict(votes[[0]]).tolist() == [1]
    assert np.allclose(model.predict_proba(votes[[1]]), model.class_balance_)


def test_all_abstain_rows_get_the_prior_and_a_given_prior_is_used():
    votes, _ = dawid_skene_votes([0.9, 0.8, 0.7], [0.5, 0.5, 0.5], n=1000)
    empty = (votes < 0).all(axis=1)
    assert empty.any()
    model = LabelModel(cardinality=3, class_balance=[2, 1, 1]).fit(votes)
    assert np.allclose(model.class_balance_, [0.5, 0.25, 0.25])
    assert np.allclose(model.predict_proba(votes)[empty], [0.5, 0.25, 0.25])


def test_no_votes_at_all():
    votes = np.full((10, 3), -1)
    model = LabelModel(cardinality=4).fit(votes)
    assert list(model.lf_role_) == ["silent"] * 3
    assert np.allclose(model.predict_proba(votes), 0.25)
    diag = model.lf_diagnostics(votes)
    assert diag["never_fires"].to_list() == [True] * 3
    assert diag["estimated_accuracy"].null_count() == 3


def test_thousands_of_lfs():
    rng = np.random.default_rng(0)
    n, m = 2000, 3000
    y = rng.integers(0, 2, n)
    fire = rng.random((n, m)) < 0.01
    right = rng.random((n, m)) < 0.8
    votes = np.where(fire, np.where(right, y[:, None], 1 - y[:, None]), -1)
    model = LabelModel(cardinality=2).fit(votes)
    proba = model.predict_proba(votes)
    assert not np.isnan(proba).any()
    assert (proba.argmax(axis=1) == y)[fire.any(axis=1)].mean() > 0.9
    assert model.lf_diagnostics(votes).height == m


def test_a_hundred_classes_and_dense_lfs_give_no_nan():
    rng = np.random.default_rng(0)
    n, m, k = 3000, 40, 100
    y = rng.integers(0, k, n)
    fire = rng.random((n, m)) < 0.9
    right = rng.random((n, m)) < 0.7
    votes = np.where(fire, np.where(right, y[:, None], rng.integers(0, k, (n, m))), -1)
    model = LabelModel(cardinality=k).fit(votes)
    proba = model.predict_proba(votes)
    assert proba.shape == (n, k) and np.isfinite(proba).all()
    assert np.allclose(proba.sum(axis=1), 1)
    assert (proba.argmax(axis=1) == y).mean() > 0.95


def test_stray_votes_keep_a_detector_a_detector():
    spec = [(0, 0.5, 0.05), (1, 0.5, 0.05), (0, 0.4, 0.1), (1, 0.3, 0.02)]
    votes, _ = detector_votes(spec, n=3000, prior=(0.5, 0.5))
    votes[np.flatnonzero(votes[:, 0] == 0)[0], 0] = 1  # one odd vote
    model = LabelModel(cardinality=2).fit(votes)
    assert list(model.lf_role_) == ["detector"] * 4
    assert (
        list(LabelModel(cardinality=2, lf_kind="annotator").fit(votes).lf_role_)
        == ["annotator"] * 4
    )


def test_large_inputs_fit_on_a_deterministic_sample():
    votes, y = dawid_skene_votes([0.9, 0.8, 0.7, 0.8, 0.75], [0.6] * 5, n=5000)
    gold = np.full(len(y), -1)
    gold[:50] = y[:50]
    a = LabelModel(cardinality=3, max_fit_rows=1000).fit(votes, gold)
    b = LabelModel(cardinality=3, max_fit_rows=1000).fit(votes, gold)
    assert a.n_fit_rows_ == 1000
    assert np.array_equal(a.predict_proba(votes), b.predict_proba(votes))
    # the sample must approximate the full fit of the same structure (on 1000 rows the
    # default keeps equal weights, on 5000 EM is significantly better: a different model)
    seeded = LabelModel(cardinality=3, max_fit_rows=1000, random_state=4, structure="em")
    seeded.fit(votes, gold)
    again = LabelModel(cardinality=3, max_fit_rows=1000, random_state=4, structure="em")
    assert np.array_equal(seeded.log_lr_, again.fit(votes, gold).log_lr_)
    assert np.allclose(seeded.lf_accuracy_, [0.9, 0.8, 0.7, 0.8, 0.75], atol=0.08)  # 1000 rows
    full = LabelModel(cardinality=3, max_fit_rows=None, structure="em").fit(votes, gold)
    assert full.n_fit_rows_ == 5000
    assert np.mean(seeded.predict(votes) == full.predict(votes)) > 0.97


def test_weighted_distinct_rows_fit_like_every_row():
    votes, y = dawid_skene_votes([0.9, 0.8, 0.7, 0.8], [0.6] * 4, n=4000)
    gold = np.full(len(y), -1)
    gold[:40] = y[:40]
    rows = np.column_stack([votes, gold])
    distinct, inverse = np.unique(rows, axis=0, return_inverse=True)
    counts = np.bincount(inverse.reshape(-1))
    every = LabelModel(cardinality=3, max_fit_rows=None).fit(votes, gold)
    weighted = LabelModel(cardinality=3, max_fit_rows=None).fit(
        distinct[:, :-1], distinct[:, -1], sample_weight=counts
    )
    assert np.allclose(every.log_lr_, weighted.log_lr_)
    assert np.allclose(every.class_balance_, weighted.class_balance_)
    assert np.allclose(every.lf_coverage_, weighted.lf_coverage_)
    assert weighted.n_fit_rows_ == 4000
    # the row sample counts rows of L, so a few weighted rows are never sampled away
    small = LabelModel(cardinality=3, max_fit_rows=len(distinct)).fit(
        distinct[:, :-1], distinct[:, -1], sample_weight=counts
    )
    assert np.allclose(small.log_lr_, weighted.log_lr_)


def test_bad_sample_weight_is_refused():
    votes = np.array([[0, 1], [1, 1], [0, 0]])
    for weight, message in [
        ([1, 2], r"shape \(2,\) but L has 3 rows"),
        ([1, -1, 2], "holds -1.0 at row 1; weights must be finite and >= 0"),
        ([1, np.nan, 2], "holds nan at row 1"),
        ([0, 0, 0], "sums to 0"),
        (["a", "b", "c"], "must hold numbers"),
    ]:
        with pytest.raises(InputError, match=message):
            LabelModel().fit(votes, sample_weight=weight)


# ------------------------------------------------------------------------- diagnostics
def test_lf_diagnostics_columns_and_flags():
    votes, _ = dawid_skene_votes([0.85, 0.8, 0.8, 0.15], [0.6, 0.6, 0.6, 0.6], n=3000)
    votes = np.column_stack([votes, votes[:, 0], np.full(len(votes), -1)])
    model = LabelModel(cardinality=3).fit(votes)
    diag = model.lf_diagnostics(votes)
    assert diag.schema == pl.Schema(
        {
            "lf": pl.String,
            "estimated_accuracy": pl.Float64,
            "identifiable": pl.Boolean,
            "worse_than_random": pl.Boolean,
            "never_fires": pl.Boolean,
            "near_duplicate_of": pl.Int64,
        }
    )
    assert diag["near_duplicate_of"].to_list() == [None, None, None, None, 0, None]
    assert diag["never_fires"].to_list() == [False] * 5 + [True]
    assert diag["lf"].to_list() == [f"lf_{j}" for j in range(6)]
    assert diag["identifiable"].to_list() == [True] * 5 + [False]
    assert diag["worse_than_random"].to_list() == [False, False, False, True, False, False]
    assert diag["estimated_accuracy"][5] is None
    accuracy = diag["estimated_accuracy"].to_list()
    assert accuracy[3] < 0.3 < min(accuracy[:3])


def test_an_lf_that_only_meets_other_classes_is_not_identifiable():
    # LF 2 votes class 1 only on rows where LFs of class 0 vote: no agreement to learn from
    votes = np.array([[0, 0, -1], [0, -1, 1], [-1, 0, 1], [0, 0, -1], [1, -1, -1]] * 20)
    diag = LabelModel(cardinality=2).fit(votes).lf_diagnostics(votes)
    assert diag["identifiable"].to_list() == [True, True, False]


def test_near_duplicates_tolerates_a_few_differences():
    base = np.array([0, 1, 0, 1, -1] * 40)
    other = base.copy()
    other[0] = 1  # 1 difference in 160 votes
    unrelated = np.roll(base, 1)
    votes = np.column_stack([base, other, unrelated])
    assert near_duplicates(votes, k=2) == [None, 0, None]


# ---------------------------------------------------------------------- determinism & io
def test_deterministic_and_json_round_trip(tmp_path):
    votes, _ = dawid_skene_votes([0.9, 0.7, 0.6], [0.5, 0.5, 0.5], n=2000)
    votes[:, 2] = np.where(votes[:, 2] >= 0, 1, -1)  # a detector too
    first = LabelModel(cardinality=3).fit(votes)
    second = LabelModel(cardinality=3).fit(votes)
    for attr in ("log_lr_", "class_balance_", "confusion_", "lf_accuracy_"):
        assert np.array_equal(getattr(first, attr), getattr(second, attr), equal_nan=True)
    first.save(tmp_path / "lm.json")
    loaded = LabelModel.load(tmp_path / "lm.json")
    for attr in ("log_lr_", "class_balance_", "confusion_", "lf_accuracy_", "lf_precision_"):
        assert np.allclose(getattr(loaded, attr), getattr(first, attr), equal_nan=True)
    assert list(loaded.lf_role_) == list(first.lf_role_)
    assert loaded.lf_diagnostics(votes).equals(first.lf_diagnostics(votes))
    assert np.array_equal(loaded.predict(votes), first.predict(votes))


def test_load_refuses_other_versions(tmp_path):
    votes, _ = dawid_skene_votes([0.9, 0.7, 0.6], [0.5, 0.5, 0.5], n=200)
    path = tmp_path / "lm.json"
    LabelModel(cardinality=3).fit(votes).save(path)
    payload = json.loads(path.read_text())
    payload["format_version"] = 99
    path.write_text(json.dumps(payload))
    with pytest.raises(InputError, match="format version 99"):
        LabelModel.load(path)


# ----------------------------------------------------------------------------- bad input
def test_bad_votes_get_clear_errors():
    model = LabelModel(cardinality=2)
    with pytest.raises(VoteValueError, match=r"holds 2 at row 1, column 0, outside -1..1"):
        model.fit([[0, 1], [2, 0]])
    with pytest.raises(VoteValueError, match=r"holds -3 at row 0, column 1"):
        model.fit([[0, -3]])
    with pytest.raises(VoteValueError, match=r"non-integer value 0.5 at row 0, column 0"):
        model.fit(np.array([[0.5, 1.0]]))
    with pytest.raises(VoteValueError, match="nan"):
        model.fit(np.array([[np.nan, 1.0]]))
    with pytest.raises(InputError, match=r"must be 2-D.*reshape\(1, -1\)"):
        model.fit([0, 1, 1])
    with pytest.raises(InputError, match="dtype <U1"):
        model.fit([["a", "b"]])
    with pytest.raises(InputError, match="boolean"):
        model.fit(np.array([[True, False]]))
    with pytest.raises(InputError, match="no rows"):
        model.fit(np.zeros((0, 3), dtype=int))
    with pytest.raises(NotFittedError):
        model.lf_diagnostics([[0, 1]])
    fitted = LabelModel(cardinality=2).fit([[0, 1, -1], [1, 1, 0]])
    with pytest.raises(InputError, match="2 columns but the model was fitted on 3"):
        fitted.predict([[0, 1]])
    assert fitted.predict(np.array([[0.0, 1.0, -1.0]])).shape == (1,)  # whole floats are fine


def test_bad_gold_and_options_get_clear_errors():
    votes = np.array([[0, 1], [1, 1], [0, 0]])
    with pytest.raises(InputError, match="2 labels but the vote matrix has 3 rows"):
        LabelModel().fit(votes, [0, 1])
    with pytest.raises(VoteValueError, match=r"holds 5 at row 1, outside -1\.\.1"):
        LabelModel().fit(votes, [0, 5, -1])
    for options, message in [
        ({"cardinality": 1}, "cardinality must be >= 2"),
        ({"cardinality": "2"}, "cardinality must be an int"),
        ({"lf_kind": "crowd"}, "lf_kind must be 'auto', 'detector' or 'annotator'"),
        ({"class_balance": [1, 0]}, "class_balance must be positive"),
        ({"class_balance": [1, 1, 1]}, "one number per class"),
        ({"detector_prior": -1}, "detector_prior must be a number > 0"),
        ({"annotator_prior": (1.0, 0.0)}, "off_diagonal > 0"),
        ({"max_iter": 0}, "max_iter must be an int >= 1"),
        ({"max_fit_rows": 0}, "max_fit_rows must be None or an int"),
        ({"random_state": "seed"}, "random_state must be None, an int"),
    ]:
        with pytest.raises(InputError, match=message):
            LabelModel(**options).fit(votes)


def test_validate_votes_keeps_integer_arrays_and_packs_others():
    votes = np.array([[0, -1], [1, 1]], dtype=np.int64)
    assert validate_votes(votes, cardinality=2) is votes
    packed = validate_votes([[0.0, -1.0], [1.0, 1.0]], cardinality=2)
    assert packed.dtype == np.int8 and packed.tolist() == [[0, -1], [1, 1]]
    assert validate_votes([[300, -1]]).dtype == np.int16
    assert validate_gold([1, -1], n_assets=2, cardinality=2).tolist() == [1, -1]


# counted codes (4**3 <= 8 * 500) / sorted codes (4**8) / raw-bytes comparison (4**60)
@pytest.mark.parametrize("m", [3, 8, 60])
def test_compress_votes_round_trips(m):
    rng = np.random.default_rng(m)
    votes = validate_votes(rng.integers(-1, 3, (500, m)) * (rng.random((500, 1)) < 0.5))
    packed = compress_votes(votes)
    assert np.array_equal(packed.patterns[packed.inverse], votes)
    assert packed.counts.sum() == 500 and packed.n_patterns == len(packed.counts)
    assert len({tuple(row) for row in packed.patterns.tolist()}) == packed.n_patterns
    if m < 60:  # packed codes, counted or sorted, give the rows in lexicographic order
        rows = [tuple(row) for row in packed.patterns.tolist()]
        assert rows == sorted(rows)
    assert packed.patterns.dtype == votes.dtype


# ---------------------------------------------------------------------------- invariants
@st.composite
def vote_matrices(draw):
    k = draw(st.integers(2, 4))
    n = draw(st.integers(1, 30))
    m = draw(st.integers(1, 6))
    cells = draw(st.lists(st.integers(-1, k - 1), min_size=n * m, max_size=n * m))
    votes = np.array(cells).reshape(n, m)
    n_empty = draw(st.integers(0, 3))
    votes = np.vstack([votes, np.full((n_empty, m), -1)])
    perm = np.array(draw(st.permutations(list(range(m)))))
    return votes, k, perm


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(vote_matrices())
def test_invariants_all_abstain_prior_and_column_order(case):
    votes, k, perm = case
    for make in (LabelModel, MajorityVote):
        model = make(cardinality=k).fit(votes)
        proba = model.predict_proba(votes)
        assert np.all(np.isfinite(proba)) and np.allclose(proba.sum(axis=1), 1)
        empty = (votes < 0).all(axis=1)
        assert np.allclose(proba[empty], model.class_balance_)
        permuted = make(cardinality=k).fit(votes[:, perm]).predict_proba(votes[:, perm])
        assert np.allclose(permuted, proba, atol=1e-4)


def test_post_stratified_gold_stands_for_every_row_of_its_vote_pattern():
    votes = np.array([0, 0, 1, 1, 2, 2])  # vote patterns (0, 1), (1, 1), (1, -1)
    known = np.array([True, False, True, False, True, False])  # gold, then the pattern's rest
    # gold in proportion to the patterns' rows (1 in 10 of each): equal weights, one per row
    even = post_stratified(votes, known, np.array([4.0, 36.0, 2.0, 18.0, 1.0, 9.0]))
    assert np.allclose(even.sum(), 7.0) and np.allclose(even / [4, 2, 1], 1.0)
    # all the gold of a large pattern in one row: that row weighs for its whole pattern,
    # and the total is the effective number of gold rows, below their count
    skewed = post_stratified(votes, known, np.array([1.0, 99.0, 2.0, 6.0, 4.0, 4.0]))
    per_row = skewed / [1, 2, 4]
    assert per_row[0] > per_row[1] > per_row[2] and skewed.sum() < 7.0


def test_gold_on_rows_without_votes_sets_their_class_only_when_significant():
    # votes say class 0 is the larger class; rows no LF fired on are mostly class 1
    voted = np.array([[0, 0, -1]] * 120 + [[1, 1, -1]] * 80 + [[0, -1, 0]] * 40)
    empty = np.full((300, 3), -1)
    votes = np.vstack([voted, empty])
    gold = np.full(votes.shape[0], -1)
    unsupervised = LabelModel(cardinality=2, random_state=0).fit(votes)
    assert unsupervised.predict(empty[:1]).tolist() == [0]
    gold[240:340] = 1  # 100 gold rows without votes, all class 1: significant
    assert LabelModel(cardinality=2, random_state=0).fit(votes, gold).predict(empty[:1]) == [1]
    gold[:] = -1
    gold[240:246] = [1, 1, 1, 1, 0, 0]  # six of them, 4 to 2: not enough to switch
    assert LabelModel(cardinality=2, random_state=0).fit(votes, gold).predict(empty[:1]) == [0]


# ------------------------------------------------------------------- structure and speed
@pytest.mark.parametrize("with_gold", [False, True])
def test_a_given_structure_rebuilds_what_auto_chose_rows_without_votes_included(with_gold):
    """``structure="em"`` is the model "auto" fits when it chooses EM: voted rows scored by
    EM fitted without gold, rows without votes given the majority-vote balance (gold of such
    rows mixed in), not EM's own balance."""
    votes, y = dawid_skene_votes([0.9, 0.8, 0.7, 0.8, 0.75], [0.45, 0.4, 0.4, 0.35, 0.3])
    empty = (votes < 0).all(axis=1)
    assert empty.mean() > 0.05
    gold = None
    if with_gold:
        gold = np.where(np.arange(len(y)) % 10 == 0, y, -1)
        gold[np.flatnonzero(empty)[:300]] = 2  # gold of rows without votes moves their class
    chosen = LabelModel(cardinality=3, random_state=0).fit(votes, gold)
    assert chosen.structure_ == "em"
    given = LabelModel(cardinality=3, random_state=0, structure="em").fit(votes, gold)
    assert given.structure_ == "em"
    assert np.array_equal(given.class_balance_, chosen.class_balance_)
    assert np.allclose(given.predict_proba(votes), chosen.predict_proba(votes), atol=1e-12)
    # EM's own balance differs from what rows without votes get
    assert not np.allclose(given.score_prior_, given.class_balance_, atol=1e-3)
    assert np.allclose(given.predict_proba(votes[empty]), given.class_balance_)
    if with_gold:
        clamped = LabelModel(cardinality=3, random_state=0, structure="em+gold").fit(votes, gold)
        assert clamped.structure_ == "em+gold"
        assert np.array_equal(clamped.class_balance_, chosen.class_balance_)
        assert not np.array_equal(clamped.log_lr_, given.log_lr_)  # gold is clamped in EM
    vote = LabelModel(cardinality=3, random_state=0, structure="vote").fit(votes, gold)
    assert np.array_equal(vote.class_balance_, chosen.class_balance_)


def _general_proba(model, votes):
    """The probabilities by the general path: sparse scores, the guard (rows with a vote
    that is evidence for its class keep to the classes their votes name), rows without
    votes."""
    from enrich.models.em import keep_voted_classes, needs_vote_guard, proba
    from enrich.models.label_model import binding_votes

    out = proba(model.log_lr_, model.score_prior_, votes)
    if needs_vote_guard(model.log_lr_, model.score_prior_):
        binding = binding_votes(
            model.lf_precision_,
            model.confusion_,
            model.class_balance_,
            model.n_fit_rows_,
            detectors=model.lf_role_ == "detector",
        )
        assert not binding.all()  # the two LFs that are right 5% and 10% of the time
        masked = votes.astype(np.int64)
        rows, cols = np.nonzero(votes >= 0)
        bound = np.zeros(len(votes), dtype=bool)
        bound[rows[binding[cols, votes[rows, cols]]]] = True
        masked[~bound] = -1
        keep_voted_classes(out, masked)
    out[(votes < 0).all(axis=1)] = model.class_balance_
    return out


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("lf_kind", ["auto", "annotator"])
def test_scoring_votes_four_lfs_at_a_time_gives_the_general_probabilities(k, lf_kind):
    """Dense votes of up to three classes are scored from their packed bytes in blocks: the
    same probabilities, guard and rows without votes included, for every integer dtype."""
    rng = np.random.default_rng(k)
    n, m = 40_000, 13  # several blocks; 13 LFs leave a partly filled last word
    y = rng.integers(0, k, n)
    accuracy = np.r_[rng.uniform(0.55, 0.9, m - 2), 0.05, 0.1]  # two worse than random
    fire = rng.random((n, m)) < rng.uniform(0.02, 0.5, m)
    wrong = (y[:, None] + rng.integers(1, k, (n, m))) % k
    votes = np.where(fire, np.where(rng.random((n, m)) < accuracy, y[:, None], wrong), -1)
    model = LabelModel(cardinality=k, lf_kind=lf_kind, structure="em").fit(votes)
    expected = _general_proba(model, votes)
    for dtype in (np.int8, np.int16, np.int64, np.uint8):
        if dtype == np.uint8:  # unsigned votes cannot abstain: every LF votes
            full = np.abs(votes) % k
            got, want = model.predict_proba(full.astype(dtype)), _general_proba(model, full)
        else:
            got, want = model.predict_proba(votes.astype(dtype)), expected
        assert got.dtype == np.float64 and got.shape == want.shape
        assert np.abs(got - want).max() < 1e-9
    assert np.abs(model.predict_proba(votes.tolist()[:500]) - expected[:500]).max() < 1e-9


def test_a_bad_vote_deep_in_a_large_matrix_is_named():
    votes = np.zeros((50_000, 4), dtype=np.int64)
    votes[::3, 1] = 1
    model = LabelModel(cardinality=2).fit(votes)
    votes[41_234, 2] = 2
    with pytest.raises(VoteValueError, match=r"holds 2 at row 41234, column 2, outside -1..1"):
        model.predict_proba(votes)
    votes[41_234, 2] = -7
    with pytest.raises(VoteValueError, match=r"holds -7 at row 41234, column 2"):
        model.predict(votes)
