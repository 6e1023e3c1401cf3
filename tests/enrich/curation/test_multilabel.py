"""Gaps and review per label of a multi-label task."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from enrich import MultiLabelModel, multilabel_table
from enrich.curation.gap_search import split_budget
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


# -- fill_gaps_per_label, on the bundled MNIST sample -------------------------------------------
@pytest.fixture(scope="module")
def digits_task():
    """Attributes of the MNIST sample digits, LF votes that starve "closed_loop", and an index.

    The LFs are noisy readings of the true attributes (85% right, 60% coverage), except
    that "closed_loop" is almost never voted present: its "present" class is a gap. The
    vectors are a fixed random projection of the pixels.
    """
    from embeddings import VectorIndex
    from enrich.datasets import load_mnist_sample

    sample = load_mnist_sample()
    digits = sample.labels.astype(int)
    n = len(digits)
    gold = np.stack([digits % 2 == 0, digits >= 5, np.isin(digits, [0, 6, 8, 9])], axis=1).astype(
        np.int8
    )
    rng = np.random.default_rng(0)
    votes = np.zeros((n, 3, 3), dtype=np.int8)
    for j in range(3):
        fires = rng.random((n, 3)) < 0.6
        said = np.where(rng.random((n, 3)) < 0.85, gold, 1 - gold)
        votes[:, j] = np.where(fires, np.where(said == 1, 1, -1), 0)
    starve = (votes[:, :, 2] == 1) & (rng.random((n, 3)) < 0.97)
    votes[:, :, 2][starve] = 0
    ids = pl.Series(np.arange(n, dtype=np.int64))
    vm = MultiLabelVoteMatrix(
        votes=votes, lf_names=("a", "b", "c"),
        label_names=("even", "at_least_five", "closed_loop"), asset_ids=ids,
    )  # fmt: skip
    model = MultiLabelModel(random_state=0).fit(vm)
    table = multilabel_table(vm, model.predict_proba(vm), thresholds=model.thresholds_)
    pixels = sample.images.reshape(n, -1).astype(np.float32) / 255
    vectors = pixels @ np.random.default_rng(0).normal(size=(784, 24)).astype(np.float32)
    index = VectorIndex(24, kind="flat")
    index.add(ids.to_numpy(), vectors)
    gold_table = pl.DataFrame(
        {"asset_id": ids, **{name: gold[:, t] for t, name in enumerate(vm.label_names)}}
    )
    return vm, table, index, gold_table


def test_fill_gaps_per_label_proposes_pool_assets_for_each_labels_gaps(digits_task) -> None:
    from enrich import fill_gaps_per_label

    vm, table, index, gold = digits_task
    gaps = find_gaps_per_label(table, vm, min_confident=100)
    assert "class=present" in gaps["closed_loop"].table["gap"].to_list()
    unsure = pl.any_horizontal(
        label_view(table, vm, name)["confidence"] < 0.9 for name in vm.label_names
    )
    pool = table.filter(unsure).select("asset_id")
    picked = fill_gaps_per_label(table, vm, index, pool, 30, gaps=gaps, random_state=0)
    chosen = picked.table
    assert 0 < chosen.height <= 30
    assert chosen["asset_id"].n_unique() == chosen.height  # proposed once, for one label
    assert chosen["asset_id"].is_in(pool["asset_id"].implode()).all()
    for name in vm.label_names:
        mine = chosen.filter(pl.col("label") == name)["asset_id"]
        assert not mine.is_in(gaps[name].labeled_ids.implode()).any()  # none labeled already
    starved = chosen.filter((pl.col("label") == "closed_loop") & (pl.col("gap") == "class=present"))
    assert starved.height > 0
    # ...and they hold the label far more often than the pool does (0.40 on this sample)
    truth = starved.join(gold, on="asset_id")["closed_loop"].mean()
    base = pool.join(gold, on="asset_id")["closed_loop"].mean()
    assert truth > base + 0.3
    assert chosen["reason"].str.starts_with("label ").all()
    assert picked.allocation.select("label", "gap").unique().height == picked.allocation.height
    # the same picks when the gaps are found here, from the same options
    again = fill_gaps_per_label(table, vm, index, pool, 30, min_confident=100, random_state=0)
    assert again.table.equals(chosen)
    # a model's per-label probabilities steer the picks; the budget still holds
    proba = np.asarray(
        table.filter(unsure).select(f"p_{name}" for name in vm.label_names).to_numpy()
    )
    steered = fill_gaps_per_label(
        table, vm, index, pool, 12, gaps=gaps, probabilities=proba, random_state=0
    )
    assert 0 < len(steered) <= 12
    # one budget over every label's gaps, shared by deficit as fill_gaps shares it per gap
    many = find_gaps_per_label(table, vm, min_confident=700)
    assert all(len(g) for g in many.values())
    shared = fill_gaps_per_label(table, vm, index, pool, 30, gaps=many, random_state=0)
    per_label = shared.allocation.group_by("label").agg(pl.col("label_quota").first())
    assert per_label["label_quota"].sum() == 30 and len(shared) <= 30
    deficits = [
        (name, gap, deficit)
        for name in vm.label_names
        for gap, deficit in many[name]
        .table.group_by("gap", maintain_order=True)
        .agg(pl.col("deficit").max())
        .rows()
    ]
    shares = split_budget(30, [d for _, _, d in deficits])
    expected = {
        name: sum(q for (n, _, _), q in zip(deficits, shares, strict=True) if n == name)
        for name in vm.label_names
    }
    assert dict(per_label.rows()) == expected
    none = fill_gaps_per_label(table, vm, index, pool, 0, gaps=gaps)
    assert len(none) == 0 and "label" in none.table.columns


def test_fill_gaps_per_label_refuses_bad_input(digits_task) -> None:
    from enrich import fill_gaps_per_label

    vm, table, index, _ = digits_task
    pool = table.head(50).select("asset_id")
    gaps = find_gaps_per_label(table, vm, min_confident=100)
    with pytest.raises(InputError, match="budget"):
        fill_gaps_per_label(table, vm, index, pool, -1, gaps=gaps)
    with pytest.raises(InputError, match="one Gaps per label"):
        fill_gaps_per_label(table, vm, index, pool, 5, gaps={"even": gaps["even"]})
    with pytest.raises(InputError, match="shape"):
        fill_gaps_per_label(table, vm, index, pool, 5, gaps=gaps, probabilities=np.ones((50, 2)))
    with pytest.raises(InputError, match="not rows of the table"):
        fill_gaps_per_label(table, vm, index, pl.DataFrame({"asset_id": [-5]}), 5, gaps=gaps)
    with pytest.raises(InputError, match="repeats"):
        fill_gaps_per_label(table, vm, index, pl.concat([pool, pool]), 5, gaps=gaps)


def test_review_queue_per_label_queues_each_labels_gap_candidates(digits_task) -> None:
    from enrich import fill_gaps_per_label

    vm, table, index, _ = digits_task
    gaps = find_gaps_per_label(table, vm, min_confident=700)
    pool = table.filter(pl.col("review")).select("asset_id")
    picked = fill_gaps_per_label(table, vm, index, pool, 12, gaps=gaps, random_state=0)
    queues = review_queue_per_label(table, vm, batch_size=len(vm), candidates=picked.table)
    for name, queue in queues.items():
        flagged = queue.table.filter(pl.col("reasons").list.contains("gap_candidate"))
        mine = picked.table.filter(pl.col("label") == name)["asset_id"]
        assert sorted(flagged["asset_id"].to_list()) == sorted(mine.to_list())
    with pytest.raises(InputError, match="label"):
        review_queue_per_label(table, vm, candidates=picked.table.drop("label"))
