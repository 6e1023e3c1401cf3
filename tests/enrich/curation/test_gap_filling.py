"""fill_gaps(): exact picks on hand-made vectors, budget shares, invariants, real MiniLM + FAISS."""

from __future__ import annotations

import logging

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embeddings.index import VectorIndex
from enrich.curation.gap_filling import Candidates, fill_gaps, with_index_ids
from enrich.curation.gaps import find_gaps
from enrich.curation.review import review_queue
from enrich.datasets import load_youtube_spam
from enrich.errors import InputError, MissingColumnError

NEAREST = {"strategy": "neighbours"}
EXACT = {**NEAREST, "uncertainty_weight": 0.0, "redundancy": 0.0}  # by similarity alone


def build_index(vectors: np.ndarray, ids=None) -> VectorIndex:
    index = VectorIndex(vectors.shape[1], kind="flat")
    index.add(np.arange(len(vectors)) if ids is None else ids, vectors)
    return index


def unit(*rows: list[float]) -> np.ndarray:
    v = np.asarray(rows, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture
def pets():
    """Assets 0-3 labeled (1 cat, 3 dogs), 4-9 unlabeled; integer asset ids = index ids."""
    vectors = unit(
        [1, 0, 0],  # 0 cat (labeled)
        [0, 1, 0],  # 1 dog (labeled)
        [0.1, 1, 0],  # 2 dog (labeled)
        [0, 1, 0.1],  # 3 dog (labeled)
        [1, 0.1, 0],  # 4 cat-like
        [1, 0.3, 0],  # 5 cat-like
        [1, 0.6, 0],  # 6 between
        [0.2, 1, 0.2],  # 7 dog-like
        [0, 0, 1],  # 8 neither
        [1, 0.5, 0.1],  # 9 cat-like
    )
    labels = pl.DataFrame(
        {"asset_id": [0, 1, 2, 3], "label_name": ["cat", "dog", "dog", "dog"], "confidence": 1.0}
    )
    pool = pl.DataFrame({"asset_id": list(range(4, 10))})
    return build_index(vectors), labels, pool, vectors


def test_exact_picks_and_budget_split_by_deficit(pets):
    index, labels, pool, vectors = pets
    gaps = find_gaps(labels, min_confident=5)  # cat deficit 4, dog deficit 2
    picked = fill_gaps(gaps, index, pool, 3, diversity=1.0, **EXACT)
    assert isinstance(picked, Candidates)
    assert picked.allocation.select("gap", "deficit", "quota", "picked").rows() == [
        ("class=cat", 4, 2, 2),
        ("class=dog", 2, 1, 1),
    ]
    table = picked.table
    assert table.columns == [
        "asset_id",
        "index_id",
        "gap",
        "similarity",
        "confidence",
        "score",
        "reason",
    ]
    assert table.select("asset_id", "gap").rows() == [
        (4, "class=cat"),
        (5, "class=cat"),
        (7, "class=dog"),
    ]
    expected = [float(vectors[a] @ vectors[0]) for a in (4, 5)]
    assert table["similarity"].to_list()[:2] == pytest.approx(expected, abs=1e-6)
    assert table["score"].to_list() == pytest.approx(table["similarity"].to_list(), abs=1e-6)
    assert table["confidence"].null_count() == 3  # the pool has no confidence column
    assert table["reason"][0] == (
        "fills class=cat (confident labels 1 < 5): cosine 1.00 to its nearest example; "
        "no label-model confidence"
    )
    assert picked.asset_ids.to_list() == [4, 5, 7]
    assert len(picked) == 3
    assert "class=cat: 2/2" in str(picked)
    # asset 5 is a near-copy of 4 (cosine 0.98): by default the next cat-like asset replaces it
    default = fill_gaps(gaps, index, pool, 3, **EXACT)
    assert default.asset_ids.to_list() == [4, 9, 7]


def test_budget_shares_follow_deficits_with_at_least_one_each():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((60, 8)).astype(np.float32)
    counts = {"a": 1, "b": 3, "c": 5, "d": 5}  # min_confident 6 -> deficits 5, 3, 1, 1
    names = [name for name, n in counts.items() for _ in range(n)]
    labels = pl.DataFrame(
        {"asset_id": list(range(len(names))), "label_name": names, "confidence": 1.0}
    )
    pool = pl.DataFrame({"asset_id": list(range(len(names), 60))})
    gaps = find_gaps(labels, min_confident=6)
    index = build_index(vectors)

    def quotas(budget: int) -> list[int]:
        return fill_gaps(gaps, index, pool, budget).allocation["quota"].to_list()

    assert quotas(10) == [5, 3, 1, 1]  # exactly proportional
    assert quotas(4) == [1, 1, 1, 1]  # proportional gives 2, 1, 0, 1: one moves to the last
    assert quotas(2) == [1, 1, 0, 0]  # fewer than the gaps: the largest deficits
    assert quotas(20) == [10, 6, 2, 2]
    full = fill_gaps(gaps, index, pool, 20)
    assert full.allocation["picked"].to_list() == [10, 6, 2, 2]
    assert full.table.group_by("gap").len().sort("gap")["len"].to_list() == [10, 6, 2, 2]


def test_never_returns_labeled_or_example_assets_even_when_the_pool_lists_them(pets):
    index, labels, _, _ = pets
    gaps = find_gaps(labels, min_confident=5)
    everything = pl.DataFrame({"asset_id": list(range(10))})
    picked = fill_gaps(gaps, index, everything, 10, diversity=1.0)
    chosen = set(picked.asset_ids.to_list())
    assert not chosen & {0, 1, 2, 3}
    assert len(chosen) == picked.table.height == 6  # the whole unlabeled pool, once each


def test_near_duplicates_are_skipped_and_redundancy_spreads_the_picks():
    vectors = unit([1, 0], [1, 0.01], [1, 0.05], [1, 0.5], [0.2, 1])
    labels = pl.DataFrame({"asset_id": [0], "label_name": ["x"], "confidence": [1.0]})
    pool = pl.DataFrame({"asset_id": [1, 2, 3, 4]})
    gaps = find_gaps(labels, min_confident=3)
    index = build_index(vectors)
    picked = fill_gaps(gaps, index, pool, 2, **EXACT)
    # 2 is a near-copy of 1 (cosine > 0.95): skipped even though it is second most similar
    assert picked.asset_ids.to_list() == [1, 3]
    assert picked.allocation["near_duplicates"][0] >= 1
    loose = fill_gaps(gaps, index, pool, 2, diversity=1.0, **EXACT)
    assert loose.asset_ids.to_list() == [1, 2]
    # with a redundancy penalty the second pick moves away from the first
    spread = fill_gaps(
        gaps, index, pool, 2, diversity=1.0, uncertainty_weight=0.0, redundancy=2.0, **NEAREST
    )
    assert spread.asset_ids.to_list() == [1, 4]


def test_an_asset_fitting_two_gaps_goes_to_one():
    vectors = unit([1, 0], [0.9, 0.1], [1, 0.05], [0.5, 0.5])
    labels = pl.DataFrame(
        {
            "asset_id": [0, 1],
            "label_name": ["x", "y"],
            "confidence": 1.0,
            "video": ["v", "w"],
        }
    )
    pool = pl.DataFrame({"asset_id": [2, 3], "video": ["v", "w"]})
    gaps = find_gaps(labels, slices=["video"], min_confident=2)
    picked = fill_gaps(gaps, build_index(vectors), pool, 4, diversity=1.0, **EXACT)
    assert picked.table["asset_id"].is_unique().all()
    assert sorted(picked.asset_ids.to_list()) == [2, 3]


def sliced_world():
    """40 random vectors; assets 0-19 in video Psy, 20-39 in Katy."""
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((40, 6)).astype(np.float32)
    videos = ["Psy"] * 20 + ["Katy"] * 20
    return build_index(vectors), videos


def test_slice_gaps_search_only_their_slice():
    index, videos = sliced_world()
    labels = pl.DataFrame(
        {
            "asset_id": [0, 1, 20],
            "label_name": ["HAM", "SPAM", "HAM"],
            "confidence": 1.0,
            "video": ["Psy", "Psy", "Katy"],
        }
    )
    rest = [i for i in range(40) if i not in (0, 1, 20)]
    pool = pl.DataFrame({"asset_id": rest, "video": [videos[i] for i in rest]})
    gaps = find_gaps(labels, slices=["video"], min_confident=5, classes=["HAM", "SPAM"])
    picked = fill_gaps(gaps, index, pool, 12, **NEAREST)
    for gap, video in (("video=Psy", "Psy"), ("video=Katy", "Katy")):
        ids = picked.table.filter(pl.col("gap") == gap)["asset_id"].to_list()
        assert ids and all(videos[i] == video for i in ids)
    # without the slice column in the pool the whole pool is searched, and noted
    anywhere = fill_gaps(gaps, index, pool.drop("video"), 12, **NEAREST)
    notes = anywhere.allocation.filter(pl.col("kind") == "slice")["note"].to_list()
    assert notes == ["pool has no column 'video': searched the whole pool"] * 2


def test_a_slice_without_labeled_examples_searches_from_its_centroid():
    index, videos = sliced_world()
    # Katy appears in the labels only through an unlabeled asset (as in an enriched table)
    labels = pl.DataFrame(
        {
            "asset_id": [0, 1, 20],
            "label_name": ["HAM", "SPAM", None],
            "confidence": [1.0, 1.0, None],
            "video": ["Psy", "Psy", "Katy"],
        }
    )
    rest = [i for i in range(40) if i not in (0, 1)]
    pool = pl.DataFrame({"asset_id": rest, "video": [videos[i] for i in rest]})
    gaps = find_gaps(labels, slices=["video"], min_confident=5)
    assert gaps.examples.filter(pl.col("gap") == "video=Katy").height == 0
    picked = fill_gaps(gaps, index, pool, 30, **NEAREST)
    katy = picked.allocation.filter(pl.col("gap") == "video=Katy")
    assert katy["note"][0] == "no labeled examples: searched from the slice's centroid"
    rows = picked.table.filter(pl.col("gap") == "video=Katy")
    assert rows.height >= 1
    assert all(videos[i] == "Katy" for i in rows["asset_id"].to_list())
    assert "cosine" in rows["reason"][0] and "to the slice's centroid" in rows["reason"][0]


def test_class_gaps_without_examples_are_skipped_and_noted(pets):
    index, labels, pool, _ = pets
    gaps = find_gaps(labels, classes=["cat", "dog", "bird"], min_confident=5)
    picked = fill_gaps(gaps, index, pool, 4, **NEAREST)
    bird = picked.allocation.filter(pl.col("gap") == "class=bird").row(0, named=True)
    assert bird["quota"] == 0 and bird["picked"] == 0
    assert bird["note"].startswith("no labeled examples to search from")
    assert picked.table.height == 4
    assert "class=bird" not in picked.table["gap"].to_list()
    assert "class=bird: no labeled examples" in str(picked)


def test_uncertainty_raises_unsure_assets(pets):
    index, labels, pool, vectors = pets
    gaps = find_gaps(labels.filter(pl.col("label_name") == "cat"), min_confident=5)
    sure_first = pool.with_columns(
        pl.Series("confidence", [0.99, 0.99, 0.99, 0.99, 0.99, 0.2])  # asset 9 unsure
    )
    picked = fill_gaps(
        gaps, index, sure_first, 1, uncertainty_weight=0.5, redundancy=0.0, **NEAREST
    )
    assert picked.asset_ids.to_list() == [9]
    row = picked.table.row(0, named=True)
    sim = float(vectors[9] @ vectors[0])
    assert row["score"] == pytest.approx(0.5 * sim + 0.5 * 0.8, abs=1e-6)
    assert row["confidence"] == 0.2
    assert row["reason"].endswith("label-model confidence 0.20")
    # a null confidence counts as fully uncertain
    nulls = pool.with_columns(pl.Series("confidence", [0.99, None, 0.99, 0.99, 0.99, 0.99]))
    assert fill_gaps(
        gaps, index, nulls, 1, uncertainty_weight=0.5, **NEAREST
    ).asset_ids.to_list() == [5]


def test_string_asset_ids_map_through_index_id_or_id_map():
    assets = with_index_ids(pl.DataFrame({"asset_id": ["a", "b", "c", "d"]}), offset=10)
    assert assets["index_id"].to_list() == [10, 11, 12, 13]
    index = build_index(unit([1, 0], [0, 1], [1, 0.1], [0.1, 1]), ids=np.arange(10, 14))
    labels = assets.head(2).with_columns(label_name=pl.Series(["x", "y"]), confidence=pl.lit(1.0))
    pool = assets.tail(2)
    gaps = find_gaps(labels, min_confident=2)
    picked = fill_gaps(gaps, index, pool, 2, **EXACT)
    assert picked.table.select("asset_id", "index_id", "gap").rows() == [
        ("c", 12, "class=x"),
        ("d", 13, "class=y"),
    ]
    # without index_id columns, an id map does the job
    id_map = assets.select("asset_id", "index_id")
    bare = find_gaps(labels.drop("index_id"), min_confident=2)
    by_map = fill_gaps(bare, index, pool.drop("index_id"), 2, id_map=id_map, **EXACT)
    assert by_map.table.select("asset_id", "index_id").rows() == [("c", 12), ("d", 13)]
    with pytest.raises(MissingColumnError, match="with_index_ids numbers the rows"):
        fill_gaps(bare, index, pool.drop("index_id"), 2)
    with pytest.raises(InputError, match=r"asset\(s\) \['d'\] are not in id_map"):
        fill_gaps(bare, index, pool.drop("index_id"), 2, id_map=id_map.head(3))
    with pytest.raises(InputError, match="already has a 'index_id' column"):
        with_index_ids(assets)


def test_examples_override_and_pool_assets_missing_from_the_index(pets, caplog):
    index, labels, pool, _ = pets
    gaps = find_gaps(labels, min_confident=5)
    # searching for "cat" from asset 8 instead of asset 0
    picked = fill_gaps(gaps, index, pool, 1, examples={"class=cat": [8]}, **EXACT)
    assert picked.table["gap"].to_list() == ["class=cat"]
    # asset 8 is now an example, so it is not proposed; 7 is the nearest to it
    assert picked.asset_ids.to_list() == [7]
    assert picked.table["similarity"][0] == pytest.approx(0.2 / np.sqrt(1.08), abs=1e-6)
    with pytest.raises(InputError, match=r"examples name gap\(s\) \['class=cow'\]"):
        fill_gaps(gaps, index, pool, 1, examples={"class=cow": [4]})
    frame = pl.DataFrame({"gap": ["class=dog"], "asset_id": [1]})
    assert fill_gaps(gaps, index, pool, 1, examples=frame).table.height == 1
    extra = pool.vstack(pl.DataFrame({"asset_id": [500]}))
    with caplog.at_level(logging.WARNING, logger="enrich.curation.gap_filling"):
        result = fill_gaps(gaps, index, extra, 10)
    assert "1 pool asset(s) are not in the index" in caplog.text
    assert 500 not in result.asset_ids.to_list()


def test_zero_budget_and_no_gaps_give_empty_tables(pets):
    index, labels, pool, _ = pets
    gaps = find_gaps(labels, min_confident=5)
    empty = fill_gaps(gaps, index, pool, 0)
    assert empty.table.height == 0
    assert empty.table.schema["similarity"] == pl.Float64
    assert empty.allocation["quota"].to_list() == [0, 0]
    none = fill_gaps(find_gaps(labels, min_confident=1), index, pool, 5)
    assert none.table.height == 0 and none.allocation.height == 0
    assert "(no rows)" in str(none)


def test_same_inputs_same_output(pets):
    index, labels, pool, _ = pets
    gaps = find_gaps(labels, min_confident=5)
    pool = pool.with_columns(pl.Series("confidence", [0.5, 0.6, 0.7, 0.8, 0.9, 0.5]))
    first = fill_gaps(gaps, index, pool, 4, random_state=3)
    again = fill_gaps(gaps, index, pool, 4, random_state=3)
    assert first.table.equals(again.table)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"budget": -1}, "budget must be a whole number >= 0"),
        ({"budget": 2.5}, "budget must be a whole number"),
        ({"diversity": 1.5}, r"diversity must be a cosine similarity in \(-1, 1\]"),
        ({"uncertainty_weight": 2}, r"uncertainty_weight must be in \[0, 1\]"),
        ({"redundancy": -1}, "redundancy must be a number >= 0"),
        ({"neighbours": 0}, "neighbours must be a whole number >= 1"),
        ({"max_queries": 0}, "max_queries must be a whole number >= 1"),
        ({"random_state": "seed"}, "random_state must be None, an int or a numpy Generator"),
    ],
)
def test_bad_options_are_refused(pets, kwargs, message):
    index, labels, pool, _ = pets
    gaps = find_gaps(labels, min_confident=5)
    args = {"budget": 2, **kwargs}
    budget = args.pop("budget")
    with pytest.raises(InputError, match=message):
        fill_gaps(gaps, index, pool, budget, **args)


def test_bad_inputs_are_refused(pets):
    index, labels, pool, _ = pets
    gaps = find_gaps(labels, min_confident=5)
    with pytest.raises(InputError, match="gaps must be the Gaps that find_gaps returns"):
        fill_gaps(gaps.table, index, pool, 2)
    with pytest.raises(InputError, match=r"index must be an embeddings\.index\.VectorIndex"):
        fill_gaps(gaps, object(), pool, 2)
    with pytest.raises(InputError, match=r"lists asset\(s\) \[4\] more than once"):
        fill_gaps(gaps, index, pl.concat([pool, pool.head(1)]), 2)
    with pytest.raises(InputError, match=r"'confidence' must lie in \[0, 1\]"):
        fill_gaps(gaps, index, pool.with_columns(confidence=pl.lit(2.0)), 2)
    with pytest.raises(MissingColumnError, match="asset_id"):
        fill_gaps(gaps, index, pool.rename({"asset_id": "id"}), 2)


# -- invariants --------------------------------------------------------------------------
@st.composite
def worlds(draw):
    n = draw(st.integers(8, 30))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, 4)).astype(np.float32)
    labeled = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n // 2, unique=True))
    classes = draw(
        st.lists(st.sampled_from(["a", "b", "c"]), min_size=len(labeled), max_size=len(labeled))
    )
    videos = [draw(st.sampled_from(["v", "w"])) for _ in range(n)]
    in_pool = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
    budget = draw(st.integers(0, 12))
    diversity = draw(st.sampled_from([0.8, 0.95, 1.0]))
    return vectors, labeled, classes, videos, in_pool, budget, diversity


@settings(max_examples=40, deadline=None)
@given(worlds())
def test_fill_gaps_never_returns_labeled_or_duplicate_assets_and_stays_in_budget(world):
    vectors, labeled, classes, videos, in_pool, budget, diversity = world
    labels = pl.DataFrame(
        {
            "asset_id": labeled,
            "label_name": classes,
            "confidence": 1.0,
            "video": [videos[i] for i in labeled],
        }
    )
    pool = pl.DataFrame(
        {"asset_id": in_pool, "video": [videos[i] for i in in_pool]}  # may list labeled ones
    )
    gaps = find_gaps(labels, slices=["video"], min_confident=50)
    picked = fill_gaps(gaps, build_index(vectors), pool, budget, diversity=diversity)
    ids = picked.asset_ids.to_list()
    assert len(ids) <= budget
    assert len(set(ids)) == len(ids)
    assert not set(ids) & set(labeled)
    assert set(ids) <= set(in_pool)
    available = sorted(set(in_pool) - set(labeled))
    unit_rows = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cos = unit_rows[available] @ unit_rows[available].T
    distinct = not (np.triu(cos, 1) >= 0.999).any()
    if diversity == 1.0 and distinct:
        # a class gap searches the whole pool, so the budget is spent while assets last
        assert len(ids) == min(budget, len(available))
    assert picked.allocation["picked"].sum() == len(ids)


# -- real data: MiniLM and FAISS on bundled comments -------------------------------------
@pytest.fixture(scope="module")
def comments(minilm):
    data = load_youtube_spam().sample(n=300, seed=7).sort("asset_id")
    data = with_index_ids(data)
    index = VectorIndex(minilm.dim, kind="flat")
    index.add(data["index_id"], minilm.encode(data["text"].to_list(), progress=False))
    return data, index


def test_real_comments_a_starved_class_is_filled_with_that_class(comments):
    data, index = comments
    ham = data.filter(pl.col("label") == 0).head(40)
    spam = data.filter(pl.col("label") == 1).head(3)
    labeled = (
        pl.concat([ham, spam])
        .with_columns(
            pl.col("label").replace_strict({0: "HAM", 1: "SPAM"}).alias("label_name"),
            pl.lit(1.0).alias("confidence"),
        )
        .drop("label")
    )
    pool = data.join(labeled.select("asset_id"), on="asset_id", how="anti")
    gaps = find_gaps(labeled, classes=["HAM", "SPAM"], min_confident=20)
    assert gaps.gap_ids == ["class=SPAM"]
    picked = fill_gaps(gaps, index, pool.drop("label"), 20, random_state=0)
    assert picked.table.height == 20
    truth = dict(zip(data["asset_id"].to_list(), data["label"].to_list(), strict=True))
    spam_share = np.mean([truth[a] for a in picked.asset_ids.to_list()])
    base_rate = pool["label"].mean()
    assert base_rate < 0.6  # a random pick is SPAM a bit over half the time ...
    assert spam_share >= 0.75  # ... while these picks are SPAM at least 3 times in 4
    assert not set(picked.asset_ids.to_list()) & set(labeled["asset_id"].to_list())
    # the candidates feed the review queue
    enriched = pool.select(
        "asset_id",
        pl.lit(0).alias("label"),
        pl.lit(0.9).alias("confidence"),
        pl.lit(False).alias("conflict"),
    )
    queue = review_queue(enriched, candidates=picked.table, batch_size=20)
    assert set(queue.asset_ids.to_list()) == set(picked.asset_ids.to_list())
    assert all("gap candidate: fills class=SPAM" in why for why in queue.table["why"].to_list())


def test_real_comments_a_starved_video_is_filled_from_that_video(comments):
    data, index = comments
    labeled = (
        pl.concat(
            [
                data.filter(pl.col("video") != "Psy").head(100),
                data.filter(pl.col("video") == "Psy").head(2),
            ]
        )
        .with_columns(
            pl.col("label").replace_strict({0: "HAM", 1: "SPAM"}).alias("label_name"),
            pl.lit(1.0).alias("confidence"),
        )
        .drop("label")
    )
    pool = data.join(labeled.select("asset_id"), on="asset_id", how="anti").drop("label")
    gaps = find_gaps(labeled, slices=["video"], min_confident=10)
    assert "video=Psy" in gaps.gap_ids
    picked = fill_gaps(gaps, index, pool, 10, random_state=0, **NEAREST)
    psy = picked.table.filter(pl.col("gap") == "video=Psy")
    videos = dict(zip(data["asset_id"].to_list(), data["video"].to_list(), strict=True))
    assert psy.height >= 5
    assert all(videos[a] == "Psy" for a in psy["asset_id"].to_list())
    assert psy["similarity"].min() > 0.0


# -- strategy "coverage" (the default) ------------------------------------------------------
def blobs(seed: int = 0, per: int = 60, centres: int = 6, dim: int = 8):
    """``centres`` well-separated clusters; clusters 0-2 are class 0, 3-5 class 1."""
    rng = np.random.default_rng(seed)
    centre = np.eye(dim)[:centres] * 4
    vectors = np.vstack([c + rng.normal(0, 0.3, (per, dim)) for c in centre]).astype(np.float32)
    cluster = np.repeat(np.arange(centres), per)
    return vectors, cluster, (cluster >= centres // 2).astype(int)


def test_coverage_spreads_picks_over_the_region():
    vectors, cluster, y = blobs()
    labeled = np.array([0, 60 * 3])  # one example of each class
    pool = pl.DataFrame({"asset_id": np.setdiff1d(np.arange(len(y)), labeled)})
    labels = pl.DataFrame({"asset_id": labeled, "label_name": ["a", "b"]})
    gaps = find_gaps(labels, min_confident=10)  # both classes are gaps
    picked = fill_gaps(gaps, build_index(vectors), pool, 6, random_state=0)
    assert picked.table.height == 6
    # six picks, six clusters: no two picks land in one cluster
    assert sorted(cluster[picked.asset_ids.to_numpy()].tolist()) == [0, 1, 2, 3, 4, 5]
    assert picked.table["score"].is_between(0, 1).all()
    assert "covers" in picked.table["reason"][0]


def test_coverage_searches_a_starved_class_where_the_model_under_expects_it():
    vectors, _, y = blobs(per=50)
    labeled = np.concatenate([np.arange(0, 150, 10), [150]])  # 15 of class 0, 1 of class 1
    pool_ids = np.setdiff1d(np.arange(len(y)), labeled)
    labels = pl.DataFrame(
        {"asset_id": labeled, "label_name": np.where(y[labeled] == 1, "b", "a").astype(str)}
    )
    gaps = find_gaps(labels)
    assert gaps.gap_ids == ["class=b"]
    index = build_index(vectors)
    pool = pl.DataFrame({"asset_id": pool_ids})
    # a model that barely predicts class b, but ranks its assets highest
    p_b = np.where(y[pool_ids] == 1, 0.08, 0.02)
    shy = np.column_stack([1 - p_b, p_b])
    picked = fill_gaps(gaps, index, pool, 12, probabilities=shy, random_state=0)
    share = float(np.mean(y[picked.asset_ids.to_numpy()] == 1))
    assert share >= 0.7  # random picks would give about 0.5
    # a model that already expects class b at its share: representative picks
    fair = np.column_stack([1 - 2 * p_b * 6, 2 * p_b * 6])
    spread = fill_gaps(gaps, index, pool, 12, probabilities=fair, random_state=0)
    assert 0.3 <= float(np.mean(y[spread.asset_ids.to_numpy()] == 1)) < share
    with pytest.raises(InputError, match="probabilities must be"):
        fill_gaps(gaps, index, pool, 4, probabilities=shy[:5])
    with pytest.raises(InputError, match="strategy must be"):
        fill_gaps(gaps, index, pool, 4, strategy="nearest")  # type: ignore[arg-type]


def test_coverage_of_a_slice_gap_stays_in_its_slice_and_is_seeded():
    vectors, cluster, y = blobs()
    video = np.where(cluster % 2 == 0, "A", "B")
    labeled = np.concatenate([np.flatnonzero(video == "A")[:20], np.flatnonzero(video == "B")[:2]])
    labels = pl.DataFrame(
        {"asset_id": labeled, "label_name": y[labeled].astype(str), "video": video[labeled]}
    )
    gaps = find_gaps(labels, slices=["video"])
    assert "video=B" in gaps.gap_ids
    pool_ids = np.setdiff1d(np.arange(len(y)), labeled)
    pool = pl.DataFrame({"asset_id": pool_ids, "video": video[pool_ids]})
    index = build_index(vectors)
    first = fill_gaps(gaps, index, pool, 9, random_state=1)
    in_b = first.table.filter(pl.col("gap") == "video=B")["asset_id"].to_numpy()
    assert len(in_b) and (video[in_b] == "B").all()
    assert first.table.equals(fill_gaps(gaps, index, pool, 9, random_state=1).table)
    assert first.asset_ids.is_unique().all() and not first.asset_ids.is_in(labeled).any()
