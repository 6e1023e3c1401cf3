"""EndModel: a classifier trained on probabilistic labels, its output columns and its errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from sklearn.base import clone
from sklearn.linear_model import SGDClassifier
from sklearn.neighbors import KNeighborsClassifier

from enrich.errors import InputError, MissingColumnError, NotFittedError
from enrich.models.end_model import EndModel, filter_unlabeled, model_columns
from enrich.models.label_model import LabelModel
from enrich.models.output import enriched_table
from enrich.votes import VoteMatrix


def _blobs(n_per_class=60, k=2, dim=8, seed=0):
    """Gaussian blobs, one per class, with LF-like votes covering ~60% of rows."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 2, (k, dim))
    gold = np.repeat(np.arange(k), n_per_class)
    X = centres[gold] + rng.normal(0, 1.0, (gold.size, dim))
    votes = np.full((gold.size, 2), -1, dtype=np.int64)
    fires = rng.random((gold.size, 2)) < 0.45
    wrong = rng.random((gold.size, 2)) < 0.1
    noisy = np.where(wrong, (gold[:, None] + 1) % k, gold[:, None])
    votes[fires] = noisy[fires]
    return X, votes, gold


@pytest.fixture(scope="module")
def blobs():
    X, votes, gold = _blobs()
    proba = LabelModel(cardinality=2, random_state=0).fit(votes).predict_proba(votes)
    return X, votes, gold, proba


def test_fit_returns_self_keeps_params_and_learns_the_classes(blobs):
    X, votes, gold, proba = blobs
    model = EndModel(random_state=0)
    params = model.get_params()
    assert model.fit(X, proba, votes=votes) is model
    assert model.get_params() == params
    assert clone(model).get_params() == params
    assert model.classes_.tolist() == [0, 1]
    assert model.n_features_in_ == X.shape[1]
    assert (model.predict(X) == gold).mean() > 0.9


def test_rows_no_lf_voted_on_are_left_out_and_still_predicted(blobs):
    X, votes, gold, proba = blobs
    model = EndModel(random_state=0).fit(X, proba, votes=votes)
    voted = (votes >= 0).any(axis=1)
    assert model.train_mask_.tolist() == voted.tolist()
    assert model.n_train_ == int(voted.sum())
    # the label model gives unvoted rows its prior; the end model labels them from features
    uncovered = ~voted
    assert (model.oof_proba_[uncovered].argmax(1) == gold[uncovered]).mean() > 0.85
    np.testing.assert_allclose(model.oof_proba_[uncovered], model.predict_proba(X[uncovered]))


def test_probabilities_are_rows_summing_to_one_and_batches_equal_the_whole(blobs):
    X, votes, _, proba = blobs
    model = EndModel(random_state=0).fit(X, proba, votes=votes)
    whole = model.predict_proba(X)
    assert whole.shape == (X.shape[0], 2)
    np.testing.assert_allclose(whole.sum(axis=1), 1.0)
    np.testing.assert_allclose(
        np.vstack([model.predict_proba(X[:7]), model.predict_proba(X[7:])]), whole
    )
    np.testing.assert_allclose(model.oof_proba_.sum(axis=1), 1.0)


def test_same_seed_same_output_and_the_global_rng_is_untouched(blobs):
    X, votes, _, proba = blobs
    state = np.random.get_state()[1].copy()
    a = EndModel(random_state=3).fit(X, proba, votes=votes)
    b = EndModel(random_state=3).fit(X, proba, votes=votes)
    np.testing.assert_array_equal(a.oof_proba_, b.oof_proba_)
    assert a.temperature_ == b.temperature_
    assert (np.random.get_state()[1] == state).all()


def test_out_of_fold_predictions_differ_from_in_sample_ones(blobs):
    X, votes, _, proba = blobs
    model = EndModel(random_state=0).fit(X, proba, votes=votes)
    trained = model.train_mask_
    in_sample = model.predict_proba(X[trained])
    assert not np.allclose(model.oof_proba_[trained], in_sample)


def test_temperature_lowers_the_out_of_fold_loss_against_the_targets(blobs):
    X, votes, _, proba = blobs
    plain = EndModel(targets="soft", calibration="none", random_state=0)
    plain.fit(X, proba, votes=votes)
    scaled = EndModel(targets="soft", calibration="temperature", random_state=0)
    scaled.fit(X, proba, votes=votes)
    assert plain.temperature_ == 1.0 and scaled.temperature_ != 1.0
    rows = scaled.train_mask_

    def loss(p):
        return -(proba[rows] * np.log(p[rows])).sum(axis=1).mean()

    assert loss(scaled.oof_proba_) <= loss(plain.oof_proba_) + 1e-9
    # calibration never changes the predicted class
    assert (scaled.oof_proba_.argmax(1) == plain.oof_proba_.argmax(1)).all()


def test_min_confidence_and_gold_choose_the_training_rows(blobs):
    X, votes, gold, proba = blobs
    voted = (votes >= 0).any(axis=1)
    floor = float(np.median(proba.max(axis=1)[voted]))
    sure = EndModel(min_confidence=floor, random_state=0).fit(X, proba, votes=votes)
    expected = voted & (proba.max(axis=1) >= floor)
    assert 0 < expected.sum() < voted.sum()
    assert sure.train_mask_.tolist() == expected.tolist()
    some_gold = np.full(gold.size, -1)
    some_gold[:10] = gold[:10]
    with_gold = EndModel(min_confidence=floor, random_state=0).fit(
        X, proba, votes=votes, gold=some_gold
    )
    assert with_gold.train_mask_.tolist() == (expected | (some_gold >= 0)).tolist()


def test_the_training_targets_soft_hard_and_confidence_weighted(blobs):
    X, votes, gold, proba = blobs
    voted = (votes >= 0).any(axis=1)
    hard = EndModel(targets="hard", calibration="none", random_state=0)
    hard.fit(X, proba, votes=votes)
    labels = np.where(voted, proba.argmax(axis=1), -1)
    same = EndModel(calibration="none", random_state=0).fit(X, labels)  # ids train with weight 1
    np.testing.assert_allclose(hard.oof_proba_, same.oof_proba_)
    # the temperature is fitted to the label model's probabilities, whatever the targets
    tempered = EndModel(targets="hard", calibration="temperature", random_state=0)
    tempered.fit(X, proba, votes=votes)
    other = EndModel(calibration="temperature", random_state=0).fit(X, labels)
    assert tempered.temperature_ != other.temperature_

    for targets in ("soft", "confidence"):
        model = EndModel(targets=targets, random_state=0).fit(X, proba, votes=votes)
        assert (model.predict(X) == gold).mean() > 0.85
        assert not np.allclose(model.oof_proba_, hard.oof_proba_)
    with pytest.raises(InputError, match="targets must be one of"):
        EndModel(targets="fuzzy").fit(X, proba, votes=votes)


def test_auto_calibration_fits_a_temperature_on_enough_gold_only(blobs):
    X, votes, gold, proba = blobs
    assert EndModel(random_state=0).fit(X, proba, votes=votes).temperature_ == 1.0
    few = np.where(np.arange(gold.size) < 10, gold, -1)
    assert EndModel(random_state=0).fit(X, proba, votes=votes, gold=few).temperature_ == 1.0
    many = np.where(np.arange(gold.size) % 2 == 0, gold, -1)
    model = EndModel(random_state=0).fit(X, proba, votes=votes, gold=many)
    assert model.temperature_ != 1.0


def test_hard_labels_with_minus_one_train_like_probabilities(blobs):
    X, votes, gold, _ = blobs
    labels = np.where((votes >= 0).any(axis=1), gold, -1)
    model = EndModel(random_state=0).fit(X, labels, class_names=["a", "b"])
    assert model.train_mask_.tolist() == (labels >= 0).tolist()
    assert model.class_names_ == ("a", "b")


def test_any_estimator_with_sample_weight_plugs_in(blobs):
    X, votes, gold, proba = blobs
    sgd = SGDClassifier(loss="log_loss", random_state=0)
    model = EndModel(estimator=sgd, random_state=0).fit(X, proba, votes=votes)
    assert (model.predict(X) == gold).mean() > 0.85
    assert not hasattr(sgd, "coef_")  # the estimator passed in is cloned, never fitted


def test_three_classes_and_a_class_missing_from_a_fold():
    X, votes, gold = _blobs(n_per_class=40, k=3, seed=1)
    proba = LabelModel(cardinality=3, random_state=0).fit(votes).predict_proba(votes)
    model = EndModel(cv=3, random_state=0).fit(X, proba, votes=votes)
    assert model.oof_proba_.shape == (120, 3)
    assert (model.predict(X) == gold).mean() > 0.8
    # a class with two training rows cannot reach every one of 5 folds
    labels = np.full(gold.size, -1)
    labels[:30], labels[40:70], labels[80:82] = 0, 1, 2
    rare = EndModel(random_state=0).fit(X, labels, class_names=["a", "b", "c"])
    np.testing.assert_allclose(rare.oof_proba_.sum(axis=1), 1.0)


def test_tabular_feature_columns_alone_or_with_an_embedding_column(blobs):
    X, votes, gold, proba = blobs
    frame = pl.DataFrame({"x0": X[:, 0] * 1000, "x1": X[:, 1] > 0, "embedding": X[:, 2:]})
    tabular = EndModel(embedding_column=None, feature_columns=["x0", "x1"], random_state=0)
    tabular.fit(frame, proba, votes=votes)
    assert tabular.n_features_in_ == 2 and tabular.embedding_dim_ == 0
    both = EndModel(feature_columns=["x0"], random_state=0).fit(
        frame.to_pandas(), proba, votes=votes
    )
    assert both.n_features_in_ == X.shape[1] - 2 + 1
    assert (both.predict(frame) == gold).mean() > 0.85


def test_an_encoder_embeds_a_text_column(minilm):
    texts = [
        "subscribe to my channel please",
        "check out my new video",
        "free gift card click here",
        "visit my page for money",
        "this song is beautiful",
        "love this song so much",
        "great music, brings memories",
        "her voice is amazing",
    ] * 3
    frame = pl.DataFrame({"text": texts})
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0] * 3)
    labels[::5] = -1
    model = EndModel(encoder=minilm, cv=3, random_state=0).fit(frame, labels)
    assert model.embedding_dim_ == minilm.dim
    new = pl.DataFrame({"text": ["subscribe and click my channel link", "what a lovely song"]})
    assert model.predict(new).tolist() == [1, 0]


def test_filter_unlabeled_keeps_rows_some_lf_voted_on_in_the_type_given():
    votes = VoteMatrix(
        votes=np.array([[0, -1], [-1, -1], [-1, 1]], dtype=np.int32),
        lf_names=("a", "b"),
        asset_ids=pl.Series(["x", "y", "z"]),
        class_names=("N", "P"),
    )
    proba = np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]])
    kept, p = filter_unlabeled(pd.DataFrame({"t": ["a", "b", "c"]}), proba, votes)
    assert isinstance(kept, pd.DataFrame) and kept["t"].tolist() == ["a", "c"]
    assert p.tolist() == [[0.9, 0.1], [0.2, 0.8]]
    rows, _ = filter_unlabeled(np.arange(3), proba, votes)
    assert rows.tolist() == [0, 2]
    with pytest.raises(InputError, match="one row per asset"):
        filter_unlabeled(np.arange(4), proba, votes)


def test_model_columns_and_the_enriched_label_source():
    votes = VoteMatrix(
        votes=np.array([[1, 1], [0, -1], [-1, -1], [-1, -1]], dtype=np.int32),
        lf_names=("a", "b"),
        asset_ids=pl.Series(["w", "x", "y", "z"]),
        class_names=("HAM", "SPAM"),
    )
    proba = np.array([[0.1, 0.9], [0.8, 0.2], [0.6, 0.4], [0.6, 0.4]])
    model_proba = np.array([[0.2, 0.8], [0.7, 0.3], [0.1, 0.9], [0.9, 0.1]])
    gold = np.array([-1, -1, -1, 0])
    table = enriched_table(
        votes, proba, run_id="r", model_version="m", model_proba=model_proba, gold=gold
    )
    assert table.select("model_label", "model_label_name", "label_source").rows() == [
        (1, "SPAM", "lfs"),
        (0, "HAM", "lfs"),
        (1, "SPAM", "model"),
        (0, "HAM", "gold"),
    ]
    assert table["model_proba_SPAM"].to_list() == [0.8, 0.3, 0.9, 0.1]
    assert table["model_confidence"].to_list() == [0.8, 0.7, 0.9, 0.9]
    plain = enriched_table(votes, proba, run_id="r", model_version="m")
    assert "label_source" not in plain.columns and "model_label" not in plain.columns
    with pytest.raises(InputError, match="model_proba has shape"):
        enriched_table(votes, proba, run_id="r", model_version="m", model_proba=model_proba[:2])
    assert model_columns(model_proba[:1]).columns == [
        "model_label",
        "model_proba_0",
        "model_proba_1",
        "model_confidence",
    ]


# -- errors --------------------------------------------------------------------------------------
def test_no_embedding_column_is_a_clear_error(blobs):
    X, votes, _, proba = blobs
    frame = pl.DataFrame({"text": ["t"] * X.shape[0]})
    with pytest.raises(
        MissingColumnError, match=r"no embedding column 'embedding'.*columns: \['text'\]"
    ):
        EndModel().fit(frame, proba, votes=votes)
    with pytest.raises(InputError, match="has no features"):
        EndModel(embedding_column=None).fit(frame, proba, votes=votes)


def test_mismatched_dimensions_are_a_clear_error(blobs):
    X, votes, _, proba = blobs
    model = EndModel(random_state=0).fit(X, proba, votes=votes)
    with pytest.raises(InputError, match="have 5 dimensions but the end model was trained on 8"):
        model.predict(X[:, :5])
    with pytest.raises(InputError, match="X has 10 rows but y has"):
        EndModel().fit(X[:10], proba, votes=votes)


def test_every_row_unlabeled_is_a_clear_error(blobs):
    X, _, _, proba = blobs
    silent = np.full((X.shape[0], 2), -1)
    with pytest.raises(InputError, match=f"every one of the {X.shape[0]} rows is unlabeled"):
        EndModel().fit(X, proba, votes=silent)


def test_one_class_only_is_a_clear_error(blobs):
    X, votes, _, _ = blobs
    labels = np.where((votes >= 0).any(axis=1), 1, -1)
    with pytest.raises(InputError, match=r"training rows are labeled 'SPAM'.*at least two classes"):
        EndModel().fit(X, labels, class_names=["HAM", "SPAM"])


def test_other_bad_input_is_refused(blobs):
    X, votes, _, proba = blobs
    with pytest.raises(NotFittedError, match="not fitted"):
        EndModel().predict(X)
    with pytest.raises(InputError, match="takes no sample_weight"):
        EndModel(estimator=KNeighborsClassifier()).fit(X, proba, votes=votes)
    with pytest.raises(InputError, match="cv must be"):
        EndModel(cv=1).fit(X, proba, votes=votes)
    with pytest.raises(InputError, match="calibration must be one of"):
        EndModel(calibration="platt").fit(X, proba, votes=votes)
    with pytest.raises(InputError, match="sum to 1"):
        EndModel().fit(X, proba * 2, votes=votes)
    with pytest.raises(InputError, match="feature column 'x' has 1 null"):
        frame = pl.DataFrame({"x": [None] + [1.0] * (X.shape[0] - 1)})
        EndModel(embedding_column=None, feature_columns=["x"]).fit(frame, proba, votes=votes)
