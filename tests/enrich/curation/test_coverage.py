"""The coverage strategy's adaptive parts: uncertainty where it pays, random draws as the floor."""

from __future__ import annotations

import numpy as np
import polars as pl

from embeddings.index import VectorIndex
from enrich.curation.coverage import (
    balance_target,
    random_picks,
    uncertain_picks,
    uncertainty_target,
)
from enrich.curation.gap_filling import fill_gaps
from enrich.curation.gaps import find_gaps


def two_clusters(per: int = 50, bridge: int = 10, seed: int = 0):
    """Two tight clusters of ``per`` unit vectors, and ``bridge`` vectors halfway between."""
    rng = np.random.default_rng(seed)
    dim = 8
    a, b = np.eye(dim)[0], np.eye(dim)[1]
    points = [a + rng.normal(0, 0.05, (per, dim)), b + rng.normal(0, 0.05, (per, dim))]
    t = np.linspace(0.3, 0.7, bridge)[:, None]
    points.append((1 - t) * a + t * b + rng.normal(0, 0.05, (bridge, dim)))
    vectors = np.vstack(points).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    side = np.concatenate([np.zeros(per), np.ones(per), (t[:, 0] > 0.5).astype(float)])
    return vectors, side.astype(int)


def confident(side: np.ndarray, p: float = 0.95) -> np.ndarray:
    return np.column_stack([np.where(side == 0, p, 1 - p), np.where(side == 0, 1 - p, p)])


def test_uncertainty_takes_the_quota_when_the_unsure_assets_lie_between_clusters():
    vectors, side = two_clusters()
    proba = confident(side)
    proba[100:] = [0.5, 0.5]  # the model is unsure of the bridge only
    picks, share = uncertain_picks(vectors, proba, 10)
    assert share > 0.9
    assert len(picks) == round(share * 10) and all(i >= 100 for i in picks)


def test_no_uncertainty_picks_when_the_unsure_assets_sit_in_a_dense_cluster():
    vectors, side = two_clusters()
    proba = confident(side)
    core = np.argsort(-(vectors[:50] @ vectors[:50].mean(axis=0)))[:10]  # cluster A's core
    proba[core] = [0.5, 0.5]
    picks, share = uncertain_picks(vectors, proba, 10)
    assert share == 0.0 and picks == []


def test_uncertainty_share_is_the_ratio_of_between_cluster_to_band_picks():
    vectors, side = two_clusters(bridge=3)
    proba = confident(side)
    # the model is unsure of the 3 bridge assets and of 7 typical cluster assets (of median
    # density): 3 in 10 of its unsure assets lie between clusters, u = 2 * AUC - 1 ~ 0.3
    density = np.sort(vectors[:100] @ vectors[:100].T, axis=1)[:, -21:-1].mean(axis=1)
    band = np.argsort(density)[46:53]
    proba[band] = [0.5, 0.5]
    proba[100:] = [0.5, 0.5]
    picks, share = uncertain_picks(vectors, proba, 10)
    assert 0.35 < share < 0.8  # u / (1 - u): more than u, less than the whole quota
    assert len(picks) == round(share * 10)
    assert set(picks) <= {*band.tolist(), 100, 101, 102}


def test_a_sampled_region_still_picks_its_most_uncertain_assets():
    rng = np.random.default_rng(0)
    dim = 8
    a, b = np.eye(dim)[0], np.eye(dim)[1]
    per = 4000  # a region larger than the sample coverage works on (3,000)
    t = np.linspace(0.3, 0.7, 12)[:, None]
    vectors = np.vstack(
        [
            a + rng.normal(0, 0.05, (per, dim)),
            b + rng.normal(0, 0.05, (per, dim)),
            (1 - t) * a + t * b + rng.normal(0, 0.02, (12, dim)),
        ]
    ).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    side = np.r_[np.zeros(per, int), np.ones(per, int), (t[:, 0] > 0.5).astype(int)]
    labeled = np.r_[np.arange(20), per + np.arange(20)]
    pool_ids = np.setdiff1d(np.arange(len(side)), labeled)
    labels = pl.DataFrame({"asset_id": labeled, "label_name": np.where(side[labeled], "b", "a")})
    gaps = find_gaps(labels, classes=["a", "b"], min_confident=30)
    index = VectorIndex(dim, kind="flat")
    index.add(np.arange(len(side)), vectors)
    proba = confident(side[pool_ids])
    bridge = np.flatnonzero(pool_ids >= 2 * per)
    proba[bridge] = [0.5, 0.5]
    pool = pl.DataFrame({"asset_id": pool_ids})
    picked = fill_gaps(gaps, index, pool, 24, probabilities=proba, random_state=0)
    unsure = picked.table.filter(pl.col("reason").str.contains("the model is unsure of it"))
    # every bridge asset is picked for its uncertainty, whether or not the sample held it
    assert set(unsure["asset_id"].to_list()) == set(pool_ids[bridge].tolist())


def test_random_draws_only_where_the_classes_do_not_follow_the_neighbourhoods():
    vectors, side = two_clusters(bridge=0)
    rng = np.random.default_rng(0)
    weights = np.ones(len(side))
    # predicted classes follow the clusters: coverage stands for the classes, nothing drawn
    drawn, share = random_picks(vectors, confident(side), weights, 10, [], rng)
    assert share < 0.1 and len(drawn) == round(share * 10)
    # predicted classes at random inside each cluster: the neighbourhoods say nothing
    mixed = rng.integers(0, 2, len(side))
    drawn, share = random_picks(vectors, confident(mixed), weights, 10, [3, 4], rng)
    assert share > 0.7
    assert len(drawn) == round(share * 10) == len(set(drawn))
    assert not {3, 4} & set(drawn)
    # one predicted class everywhere: no evidence either way
    assert random_picks(vectors, confident(np.zeros_like(side)), weights, 10, [], rng) == (
        [],
        0.0,
    )


def test_fill_gaps_spends_part_of_a_class_gap_on_the_assets_the_model_is_unsure_of():
    vectors, side = two_clusters(per=60, bridge=12)
    labeled = np.array([0, 1, 2, 3, 4, 5, 60])  # six of side 0, one of side 1
    pool_ids = np.setdiff1d(np.arange(len(side)), labeled)
    labels = pl.DataFrame(
        {"asset_id": labeled, "label_name": np.where(side[labeled] == 1, "b", "a").astype(str)}
    )
    gaps = find_gaps(labels, classes=["a", "b"])
    assert gaps.gap_ids == ["class=b"]
    index = VectorIndex(vectors.shape[1], kind="flat")
    index.add(np.arange(len(vectors)), vectors)
    proba = confident(side[pool_ids])
    bridge = pool_ids >= 120
    proba[bridge] = [0.5, 0.5]
    pool = pl.DataFrame({"asset_id": pool_ids})
    picked = fill_gaps(gaps, index, pool, 8, probabilities=proba, random_state=0)
    unsure = picked.table.filter(pl.col("reason").str.contains("the model is unsure of it"))
    assert unsure.height >= 6 and (unsure["asset_id"].to_numpy() >= 120).all()
    assert picked.table.height == 8 and picked.asset_ids.is_unique().all()
    again = fill_gaps(gaps, index, pool, 8, probabilities=proba, random_state=0)
    assert picked.table.equals(again.table)


def test_balance_target_evens_out_the_classes_as_the_model_weighs_them():
    counts = {"ham": 60, "spam": 3}
    names = ["ham", "spam"]
    # an unweighted model: its mass on spam is spam's share of the labels (lambda = 1), and
    # the rest of the quota holds spam at that share (3/63):
    # 3 + m + (40 - m) * 3/63 = 60 + (40 - m) * 60/63 -> m = 48.9, clipped to the quota
    unweighted = np.tile([60 / 63, 3 / 63], (500, 1))
    assert balance_target(counts, names, 1, unweighted, 40) == 40
    assert balance_target(counts, names, 1, unweighted, 200) == 125
    # a model that weighs each spam label 20 times a ham label (class_weight="balanced")
    # and expects half the rest of the quota to be spam: nothing to search for
    balanced = np.tile([0.5, 0.5], (500, 1))
    assert balance_target(counts, names, 1, balanced, 40) == 0
    # a region where the class is rare yields none of it by itself: more to search for
    region = np.arange(250)
    skewed = balanced.copy()
    skewed[region] = [0.99, 0.01]
    assert balance_target(counts, names, 1, skewed, 40, region=region) > 0
    # the well-labeled class needs nothing; no quota, nothing
    assert balance_target(counts, names, 0, unweighted, 40) == 0
    assert balance_target(counts, names, 1, unweighted, 0) == 0


def test_balance_target_searches_nothing_for_a_class_the_model_never_learned():
    # a model trained without the class gives it no probability anywhere: its scores cannot
    # find the class, so no pick is spent searching by them (they would fall on the pool's
    # first rows, all tied at 0)
    counts = {"a": 30, "b": 30, "c": 0}
    names = ["a", "b", "c"]
    proba = np.tile([0.5, 0.5, 0.0], (200, 1))
    assert balance_target(counts, names, 2, proba, 40) == 0
    proba[:5] = [0.4, 0.4, 0.2]  # it knows the class a little: something to search for
    assert balance_target(counts, names, 2, proba, 40) > 0


def test_fill_gaps_finds_a_rare_class_the_model_barely_predicts():
    rng = np.random.default_rng(0)
    dim = 16
    centres = np.eye(dim)
    common = np.vstack([centres[i] + rng.normal(0, 0.3, (90, dim)) for i in range(8)])
    rare = centres[8] + rng.normal(0, 0.3, (60, dim))  # 8% of the assets
    vectors = np.vstack([common, rare]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    y = np.r_[np.zeros(len(common), int), np.ones(len(rare), int)]
    labeled = np.r_[np.arange(0, 720, 12), 720, 721, 722]  # 60 common, 3 rare
    pool_ids = np.setdiff1d(np.arange(len(y)), labeled)
    labels = pl.DataFrame(
        {"asset_id": labeled, "label_name": np.where(y[labeled] == 1, "rare", "common")}
    )
    gaps = find_gaps(labels, classes=["common", "rare"])
    assert gaps.gap_ids == ["class=rare"]
    index = VectorIndex(dim, kind="flat")
    index.add(np.arange(len(y)), vectors)
    # an unweighted model: it ranks the rare class right but never predicts it
    score = vectors[pool_ids] @ vectors[720:723].mean(axis=0)
    p_rare = 0.02 + 0.2 * (score - score.min()) / (score.max() - score.min())
    proba = np.column_stack([1 - p_rare, p_rare])
    pool = pl.DataFrame({"asset_id": pool_ids})
    picked = fill_gaps(gaps, index, pool, 30, probabilities=proba, random_state=0)
    found = y[picked.asset_ids.to_numpy()]
    assert found.sum() >= 15  # random picks would find about 2
    searched = picked.table.filter(pl.col("reason").str.contains("likely of the class 'rare'"))
    assert searched.height >= 15
    assert picked.asset_ids.is_unique().all()


def test_a_class_the_model_already_weighs_at_par_gets_an_evenly_weighted_region():
    # three classes and a class-balanced model: 3 labels of "rare" weigh as much as 60 of
    # each other class, and it expects the class in a third of the pool -- no search, and
    # the rest of the quota is not steered towards the class either (it would over-fill it
    # at the expense of the class that is weakest next)
    rng = np.random.default_rng(1)
    dim = 12
    vectors = rng.normal(size=(500, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labeled = np.arange(123)
    names = np.where(labeled < 60, "a", np.where(labeled < 120, "b", "rare"))
    labels = pl.DataFrame({"asset_id": labeled, "label_name": names})
    gaps = find_gaps(labels, classes=["a", "b", "rare"])
    assert gaps.gap_ids == ["class=rare"]
    index = VectorIndex(dim, kind="flat")
    index.add(np.arange(500), vectors)
    pool_ids = np.arange(123, 500)
    logits = vectors[pool_ids, :3] * 3
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)  # mean about 1/3 each
    pool = pl.DataFrame({"asset_id": pool_ids})

    def reasons(p: np.ndarray) -> pl.Series:
        picked = fill_gaps(gaps, index, pool, 30, probabilities=p, random_state=0)
        assert len(picked) == 30
        assert not picked.table["reason"].str.contains("likely of the class").any()
        return picked.table["reason"]

    even = reasons(proba)
    assert not even.str.contains("class probability").any()
    assert even.str.contains("uniform").any()
    # two classes: the likely and unsure members lie on the one boundary; the weights stay
    labels2 = labels.with_columns(pl.col("label_name").replace({"b": "a"}))
    gaps = find_gaps(labels2, classes=["a", "rare"])
    two = np.column_stack([proba[:, 0] + proba[:, 1], proba[:, 2]])
    two[:, 1] = np.clip(two[:, 1] + 0.2, 0, 1)
    two[:, 0] = 1 - two[:, 1]
    assert reasons(two).str.contains("class probability").any()


def test_uncertainty_target_follows_the_share_of_the_doubt_the_class_carries():
    # three classes; the model doubts only between "a" and "b" (a margin of 0 there)
    rng = np.random.default_rng(0)
    n = 300
    p_c = rng.uniform(0.0, 0.3, n)
    split = rng.uniform(0.3, 0.7, n)
    proba = np.column_stack([(1 - p_c) * split, (1 - p_c) * (1 - split), p_c])
    likely_c = np.argsort(-p_c)[: n // 3]
    targeted = np.zeros(n)
    targeted[likely_c] = 3.0  # the class's targeted profile: all on its likely members
    # the most uncertain assets are a-or-b ones: "c" (easy, past parity) is released
    easy = uncertainty_target(proba, 2, targeted, 30)
    # make the class the doubt's: its likely members are the ones torn between it and "a"
    hard = proba.copy()
    hard[likely_c] = np.column_stack([np.full(n // 3, 0.5), np.zeros(n // 3), np.full(n // 3, 0.5)])
    assert uncertainty_target(hard, 2, targeted, 30) == 1.0
    assert easy < 0.2
    assert uncertainty_target(proba, 2, targeted, 0) == 0.0


def test_an_easy_class_past_parity_releases_the_rest_of_the_quota():
    # three clusters; an unweighted model with 3 labels of "rare" finds it by a search, but
    # doubts only between "a" and "b": the rest of the quota goes where it doubts, not to
    # more of the rare class
    rng = np.random.default_rng(2)
    dim = 12
    centres = np.eye(dim)
    vectors = np.vstack(
        [
            centres[0] + rng.normal(0, 0.3, (200, dim)),
            centres[1] + rng.normal(0, 0.3, (200, dim)),
            centres[2] + rng.normal(0, 0.3, (200, dim)),
        ]
    ).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    y = np.repeat([0, 1, 2], 200)
    labeled = np.r_[np.arange(0, 200, 10), np.arange(200, 400, 10), 400, 401, 402]
    names = np.array(["a", "b", "rare"])[y[labeled]]
    gaps = find_gaps(
        pl.DataFrame({"asset_id": labeled, "label_name": names}), classes=["a", "b", "rare"]
    )
    assert gaps.gap_ids == ["class=rare"]
    index = VectorIndex(dim, kind="flat")
    index.add(np.arange(600), vectors)
    pool_ids = np.setdiff1d(np.arange(600), labeled)
    v = vectors[pool_ids]
    p_rare = 0.02 + 0.08 * (v[:, 2] - v[:, 2].min()) / np.ptp(v[:, 2])  # right order, small
    # unsure between a and b along their border (margin about 0); the rare cluster it calls
    # "a", less unsure (margin about 0.37)
    ab = np.where(y[pool_ids] == 2, 0.7, 1 / (1 + np.exp(-4 * (v[:, 0] - v[:, 1]))))
    proba = np.column_stack([(1 - p_rare) * ab, (1 - p_rare) * (1 - ab), p_rare])
    picked = fill_gaps(
        gaps, index, pl.DataFrame({"asset_id": pool_ids}), 60, probabilities=proba, random_state=0
    )
    searched = picked.table["reason"].str.contains("likely of the class 'rare'").to_numpy()
    assert searched.sum() > 0
    rest = y[picked.asset_ids.to_numpy()[~searched]]
    # targeted at the class as before, 16 of the 27 were rare
    assert (rest == 2).mean() < 0.25
