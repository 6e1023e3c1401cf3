"""Gaps and review per label of a multi-label task."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from enrich import MultiLabelModel, multilabel_table
from enrich.curation.multilabel import (
    find_gaps_per_label,
    label_view,
    review_queue_per_label,
    slice_report_per_label,
)
from enrich.errors import InputError
from enrich.multilabel_votes import MultiLabelVoteMatrix


@pytest.fixture
def example():
    rng = np.random.default_rng(0)
    n = 400
    gold = np.stack([rng.random(n) < 0.5, rng.random(n) < 0.03], axis=1).astype(np.int8)
    votes = np.zeros((n, 3, 2), dtype=np.int8)
    for j in range(3):
        fires = rng.random((n, 2)) < 0.6
        said = np.where(rng.random((n, 2)) < 0.85, gold, 1 - gold)
        votes[:, j] = np.where(fires, np.where(said == 1, 1, -1), 0)
    ids = pl.Series([f"a{i}" for i in range(n)])
    vm = MultiLabelVoteMatrix(
        votes=votes, lf_names=("x", "y", "z"), label_names=("common", "rare"), asset_ids=ids
    )
    model = MultiLabelModel(random_state=0).fit(vm)
    table = multilabel_table(vm, model.predict_proba(vm), thresholds=model.thresholds_)
    data = pl.DataFrame({"asset_id": ids, "source": np.where(np.arange(n) < 200, "web", "app")})
    gold_table = pl.DataFrame({"asset_id": ids, "common": gold[:, 0], "rare": gold[:, 1]})
    return vm, table, data, gold_table


def test_label_view_is_a_binary_enriched_table(example) -> None:
    vm, table, data, _ = example
    view = label_view(table, vm, "rare", data=data, columns=["source"])
    assert view.columns == [
        "asset_id", "label", "label_name", "predicted", "probability", "confidence",
        "conflict", "all_abstain", "source",
    ]  # fmt: skip
    no_vote = (vm.votes[:, :, 1] == 0).all(axis=1)
    assert view["all_abstain"].to_list() == no_vote.tolist()
    assert view["label"].is_null().to_list() == no_vote.tolist()
    present = table["labels"].list.contains("rare").to_numpy() & ~no_vote
    assert (view["label"].fill_null(0).to_numpy() == present).all()
    assert ((view["confidence"] >= 0.5) | view["all_abstain"]).all()
    with pytest.raises(InputError, match="not a label"):
        label_view(table, vm, "other")
    with pytest.raises(InputError, match="same order"):
        label_view(table.reverse(), vm, "rare")


def test_gaps_and_review_per_label(example) -> None:
    vm, table, data, gold_table = example
    gaps = find_gaps_per_label(table, vm, data=data, slices=["source"], gold=gold_table)
    assert set(gaps) == {"common", "rare"}
    assert "class=present" in gaps["rare"].table["gap"].to_list()  # few confident "rare"
    assert "class=present" not in gaps["common"].table["gap"].to_list()
    queues = review_queue_per_label(table, vm, batch_size=10)
    assert set(queues) == {"common", "rare"}
    assert all(q.table.height == 10 for q in queues.values())


def test_slice_report_per_label(example) -> None:
    vm, table, data, gold_table = example
    reports = slice_report_per_label(
        table, vm, data=data, slices=["source"], gold=gold_table, min_size=10
    )
    assert set(reports) == {"common", "rare"}
    predicted = table["labels"].list.contains("common").to_numpy()
    accuracy = (predicted == gold_table["common"].to_numpy()).mean()
    assert reports["common"].overall["metric"] == pytest.approx(accuracy)
    confidence = slice_report_per_label(table, vm, data=data, slices=["source"], min_size=10)
    assert confidence["rare"].overall["metric"] == pytest.approx(
        label_view(table, vm, "rare")["confidence"].mean()
    )


def test_per_label_gaps_feed_fill_gaps(example) -> None:
    from embeddings import VectorIndex
    from enrich import fill_gaps

    vm, table, _, gold_table = example
    n = len(vm)
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(n, 8)).astype(np.float32)
    vectors[gold_table["rare"].to_numpy() == 1] += 3.0  # the rare label's assets lie together
    index = VectorIndex(8, kind="flat")
    index.add(np.arange(n, dtype=np.int64), vectors)
    id_map = pl.DataFrame({"asset_id": vm.asset_ids, "index_id": np.arange(n)})
    gaps = find_gaps_per_label(table, vm)["rare"]
    pool = label_view(table, vm, "rare").select("asset_id", "confidence")
    candidates = fill_gaps(gaps, index, pool, budget=5, id_map=id_map, random_state=0)
    chosen = candidates.table["asset_id"].to_list()
    assert 0 < len(chosen) <= 5
    assert not set(chosen) & set(gaps.labeled_ids.to_list())


def test_label_view_carries_columns_of_aligned_or_shuffled_data_alike(example) -> None:
    vm, table, data, _ = example
    aligned = label_view(table, vm, "rare", data=data, columns=["source"])
    shuffled = data.sample(fraction=1.0, shuffle=True, seed=1)
    assert not shuffled.get_column("asset_id").equals(data.get_column("asset_id"))
    assert aligned.equals(label_view(table, vm, "rare", data=shuffled, columns=["source"]))
    doubled = pl.concat([data, data.head(3)])  # an id twice: the join's rows, as before
    assert label_view(table, vm, "rare", data=doubled, columns=["source"]).height == 403


def test_views_made_once_give_the_same_gaps_and_queues(example) -> None:
    vm, table, data, gold = example
    views = {
        label: label_view(table, vm, label, data=data, columns=["source"])
        for label in vm.label_names
    }
    for label, gaps in find_gaps_per_label(
        table, vm, data=data, slices=["source"], gold=gold, views=views
    ).items():
        alone = find_gaps_per_label(table, vm, data=data, slices=["source"], gold=gold)[label]
        assert gaps.table.equals(alone.table)
    shared = review_queue_per_label(table, vm, batch_size=20, views=views)
    for label, queue in review_queue_per_label(table, vm, batch_size=20).items():
        assert queue.table.equals(shared[label].table)


def test_refit_queue_per_label_spreads_over_each_labels_vote_patterns(example) -> None:
    vm, table, _, _ = example
    view = label_view(table, vm, "rare", lf_votes=True)
    assert {"vote_x", "vote_y", "vote_z"} <= set(view.columns)
    assert set(view.get_column("vote_x").unique()) <= {-1, 0, 1}
    queues = review_queue_per_label(table, vm, batch_size=15, purpose="refit")
    assert {label: len(q) for label, q in queues.items()} == {"common": 15, "rare": 15}
