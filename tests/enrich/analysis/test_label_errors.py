"""find_label_errors: planted wrong labels are found, and they reach the review queue."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from enrich.analysis.label_errors import find_label_errors
from enrich.curation.review import review_queue
from enrich.errors import InputError
from enrich.models.end_model import EndModel


@pytest.fixture(scope="module")
def planted():
    """Three separable blobs, 5% of the labels flipped, out-of-fold end-model probabilities."""
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (3, 6))
    truth = np.repeat(np.arange(3), 100)
    X = centres[truth] + rng.normal(0, 1, (truth.size, 6))
    labels = truth.copy()
    flipped = rng.choice(truth.size, 15, replace=False)
    labels[flipped] = (truth[flipped] + rng.integers(1, 3, flipped.size)) % 3
    model = EndModel(random_state=0).fit(X, labels, gold=labels, class_names=["a", "b", "c"])
    return labels, model.oof_proba_, flipped


def test_planted_flips_are_found_with_good_precision_and_recall(planted):
    labels, oof, flipped = planted
    errors = find_label_errors(labels, oof, class_names=["a", "b", "c"])
    found = set(errors.table["asset_id"].to_list())
    hits = len(found & set(flipped.tolist()))
    assert hits / len(found) >= 0.9  # precision
    assert hits / len(flipped) >= 0.7  # recall
    # cleanlab's own default flags more: as precise here, more recall
    more = find_label_errors(labels, oof, filter_by="prune_by_noise_rate")
    more_hits = len(set(more.table["asset_id"].to_list()) & set(flipped.tolist()))
    assert len(more) >= len(errors) and more_hits >= hits
    assert more_hits / len(more) >= 0.8 and more_hits / len(flipped) >= 0.8
    assert errors.is_error.sum() == len(found) and errors.n_checked == labels.size
    quality = errors.table["label_quality"].to_list()
    assert quality == sorted(quality)  # worst first
    assert errors.table.columns == [
        "rank",
        "asset_id",
        "label",
        "label_name",
        "suggested_label",
        "suggested_label_name",
        "label_quality",
    ]
    wrong = errors.table.filter(pl.col("asset_id").is_in(flipped.tolist()))
    assert (wrong["suggested_label"] != wrong["label"]).all()


@pytest.mark.parametrize("filter_by", ["low_self_confidence", "low_normalized_margin"])
def test_ranked_filters_flag_as_many_rows_as_cleanlab_estimates(planted, filter_by):
    from cleanlab.count import num_label_issues

    labels, oof, flipped = planted
    errors = find_label_errors(labels, oof, filter_by=filter_by)
    assert len(errors) == num_label_issues(labels, oof)
    if filter_by == "low_self_confidence":  # the labels the model least believes
        worst = np.argsort(errors.label_quality, kind="stable")[: len(errors)]
        assert set(errors.table["asset_id"].to_list()) == set(worst.tolist())
    hits = len(set(errors.table["asset_id"].to_list()) & set(flipped.tolist()))
    assert hits / len(errors) >= 0.8


def test_unlabeled_rows_are_skipped_and_asset_ids_are_kept(planted):
    labels, oof, _flipped = planted
    partial = labels.copy()
    partial[::2] = -1
    ids = [f"id{i}" for i in range(labels.size)]
    errors = find_label_errors(partial, oof, asset_ids=ids)
    assert errors.n_checked == int((partial >= 0).sum())
    assert np.isnan(errors.label_quality[::2]).all() and not errors.is_error[::2].any()
    assert all(i in ids and int(i[2:]) % 2 == 1 for i in errors.table["asset_id"])
    assert "label_name" not in errors.table.columns


def test_suspect_labels_enter_the_review_queue_as_gold_suspect(planted):
    labels, oof, _flipped = planted
    errors = find_label_errors(labels, oof, class_names=["a", "b", "c"])
    enriched = pl.DataFrame(
        {
            "asset_id": np.arange(labels.size),
            "label": labels,
            "confidence": np.full(labels.size, 0.95),
            "conflict": np.zeros(labels.size, dtype=bool),
        }
    )
    queue = review_queue(enriched, suspect_labels=errors.table, batch_size=100)
    assert set(queue.asset_ids.to_list()) == set(errors.table["asset_id"].to_list())
    assert queue.reason_counts == {"gold_suspect": len(errors)}
    first = queue.table.row(0, named=True)
    assert first["reasons"] == ["gold_suspect"]
    assert "gold label looks wrong (label quality" in first["why"]
    assert "model suggests" in first["why"]


def test_bad_input_is_refused(planted):
    labels, oof, _ = planted
    with pytest.raises(InputError, match="pred_probs must have shape"):
        find_label_errors(labels[:10], oof)
    with pytest.raises(InputError, match="at least two classes"):
        find_label_errors(np.zeros(labels.size, dtype=int), oof)
    with pytest.raises(InputError, match="labels hold 7"):
        find_label_errors(np.full(labels.size, 7), oof)
    with pytest.raises(InputError, match="filter_by must be one of"):
        find_label_errors(labels, oof, filter_by="vibes")
