"""VectorIndex with real FAISS (and real MiniLM vectors where it matters)."""

from __future__ import annotations

import json
import tempfile

import faiss
import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import embeddings.index as index_module
from embeddings.encoder import EmbeddingInputError
from embeddings.index import (
    IndexCorruptError,
    IndexMismatchError,
    IndexOperationError,
    SearchResult,
    VectorIndex,
)


def clustered(n: int, dim: int = 32, *, clusters: int = 50, seed: int = 0) -> np.ndarray:
    """Unit vectors from one Gaussian mixture (fixed centres; ``seed`` draws the points)."""
    centres = np.random.default_rng(12345).standard_normal((clusters, dim)).astype(np.float32)
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, clusters, n)] + 0.6 * rng.standard_normal((n, dim)).astype(
        np.float32
    )
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact_top(data: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    order = np.argsort(-(queries @ data.T), axis=1, kind="stable")[:, :k]
    return ids[order]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])
    )


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return clustered(6000)


@pytest.fixture(scope="module", params=["flat", "ivf", "ivf_hnsw_sq8"])
def built(request, data) -> VectorIndex:
    index = VectorIndex(32, kind=request.param, n_threads=2, encoder_id="test-encoder:v1")
    index.add(np.arange(len(data)) * 10, data)
    return index


# -- search ------------------------------------------------------------------------------------
def test_each_kind_builds_what_it_says(built):
    expected = {"flat": "IDMap2,Flat", "ivf": "IVF128,Flat", "ivf_hnsw_sq8": "IVF128_HNSW32,SQ8"}
    assert built.factory_ == expected[built.kind_]
    assert len(built) == 6000
    if built.kind_ == "flat":
        assert built.nprobe_ is None
    else:
        assert built.nlist_ == 128 and 1 <= built.nprobe_ <= 128
        assert built.recall_estimate_ >= built.target_recall


def test_recall_against_exact_search(built, data):
    queries = clustered(200, seed=1)
    result = built.search(queries, k=10)
    assert result.ids.shape == (200, 10) and result.ids.dtype == np.int64
    assert result.similarities.dtype == np.float32
    truth = exact_top(data, np.arange(len(data)) * 10, queries, 10)
    assert recall(result.ids, truth) >= 0.93
    # similarities are cosines, best first
    assert np.all(np.diff(result.similarities, axis=1) <= 1e-5)
    stored = built.get_vectors(result.ids[:, 0])
    np.testing.assert_allclose(
        result.similarities[:, 0], np.sum(stored * queries, axis=1), atol=2e-3
    )


def test_each_vector_finds_itself(built, data):
    result = built.search(data[:50], k=1)
    assert result.ids[:, 0].tolist() == (np.arange(50) * 10).tolist()
    np.testing.assert_allclose(result.similarities[:, 0], 1.0, atol=2e-3)


def test_subset_search_only_returns_subset_members(built, data):
    rng = np.random.default_rng(3)
    ids = np.arange(len(data)) * 10
    subset = np.sort(rng.choice(ids, 600, replace=False))
    queries = clustered(50, seed=2)
    result = built.search(queries, k=5, subset=subset)
    assert np.isin(result.ids, subset).all()
    truth = exact_top(data[subset // 10], subset, queries, 5)
    assert recall(result.ids, truth) >= 0.95


def test_subset_search_through_the_faiss_selector(built, data, monkeypatch):
    monkeypatch.setattr(index_module, "SUBSET_EXACT_MAX", 0)  # force the ID-selector path
    ids = np.arange(len(data)) * 10
    subset = ids[ids % 30 == 0]  # a third of the assets, e.g. "the unlabeled ones"
    queries = clustered(50, seed=4)
    result = built.search(queries, k=10, subset=subset)
    assert np.isin(result.ids, subset).all()
    truth = exact_top(data[subset // 10], subset, queries, 10)
    assert recall(result.ids, truth) >= 0.9


def test_subset_edge_cases(built, data):
    unknown_only = built.search(data[:2], k=3, subset=[7, 99_999_999])
    assert (unknown_only.ids == -1).all() and np.isnan(unknown_only.similarities).all()
    mixed = built.search(data[:1], k=3, subset=[20, 7])  # 7 is not in the index: ignored
    assert mixed.ids.tolist() == [[20, -1, -1]]
    assert np.isnan(mixed.similarities[0, 1:]).all()


def test_k_larger_than_the_index_pads():
    index = VectorIndex(4, kind="flat")
    index.add([1, 2], [[1.0, 0, 0, 0], [0, 1.0, 0, 0]])
    result = index.search([1.0, 0.1, 0, 0], k=4)  # one 1-D query
    assert result.ids.tolist() == [[1, 2, -1, -1]]
    assert np.isnan(result.similarities[0, 2:]).all()
    assert VectorIndex(4).search(np.ones((3, 4)), k=2).ids.tolist() == [[-1, -1]] * 3


def test_cosine_normalizes_and_inner_product_does_not():
    vectors = np.array([[1.0, 0.0], [10.0, 10.0]], dtype=np.float32)
    cosine = VectorIndex(2, kind="flat")
    cosine.add([0, 1], vectors)
    assert cosine.search([[3.0, 0.1]], k=1).ids[0, 0] == 0
    np.testing.assert_allclose(cosine.search([[5.0, 5.0]], k=1).similarities[0, 0], 1.0, atol=1e-6)
    raw = VectorIndex(2, kind="flat", metric="inner_product")
    raw.add([0, 1], vectors)
    assert raw.search([[3.0, 0.1]], k=1).ids[0, 0] == 1  # the long vector wins
    assert raw.search([[3.0, 0.1]], k=1).similarities[0, 0] == pytest.approx(31.0)


def test_search_result_to_polars():
    result = SearchResult(
        ids=np.array([[5, 6], [7, -1]]),
        similarities=np.array([[0.9, 0.8], [0.7, np.nan]], dtype=np.float32),
    )
    frame = result.to_polars()
    assert frame.columns == ["query", "rank", "id", "similarity"]
    assert frame["id"].to_list() == [5, 6, 7]
    assert frame["query"].to_list() == [0, 0, 1] and frame["rank"].to_list() == [0, 1, 0]
    assert frame.schema["similarity"] == pl.Float32


# -- add / remove ------------------------------------------------------------------------------
def test_add_refuses_duplicates_unless_asked_to_replace():
    index = VectorIndex(2, kind="flat")
    index.add([1, 2], [[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(EmbeddingInputError, match=r"1 id\(s\) are already in the index \(2\)"):
        index.add([2, 3], [[1.0, 1.0], [1.0, -1.0]])
    assert len(index) == 2 and 3 not in index  # nothing was added
    index.add([2, 3], [[1.0, 0.05], [-1.0, 0.0]], on_duplicate="replace")
    assert len(index) == 3
    np.testing.assert_allclose(index.get_vectors([2])[0], [0.99875, 0.0499375], atol=1e-4)
    with pytest.raises(EmbeddingInputError, match=r"ids repeat within the call \(4\)"):
        index.add([4, 4], [[1.0, 0.0], [0.0, 1.0]])


@pytest.mark.parametrize("kind", ["flat", "ivf", "ivf_hnsw_sq8"])
def test_remove(kind, data):
    index = VectorIndex(32, kind=kind)
    ids = np.arange(len(data))
    index.add(ids, data)
    assert index.remove(ids[:100]) == 100
    assert len(index) == len(data) - 100 and 5 not in index and 100 in index
    result = index.search(data[:100], k=5)
    assert not np.isin(result.ids, ids[:100]).any()
    with pytest.raises(EmbeddingInputError, match=r"1 id\(s\) are not in the index \(3\)"):
        index.remove([3, 200])
    assert 200 in index  # an error removes nothing
    assert index.remove([3, 200], missing="ignore") == 1
    index.add(ids[:100], data[:100])  # removed ids can come back
    assert index.search(data[:3], k=1).ids[:, 0].tolist() == [0, 1, 2]


def test_auto_grows_into_an_ivf_index(monkeypatch):
    monkeypatch.setattr(index_module, "AUTO_FLAT_MAX", 3000)
    vectors = clustered(5000, seed=5)
    index = VectorIndex(32)
    index.add(np.arange(2000), vectors[:2000])
    assert index.kind_ == "flat"
    index.add(np.arange(2000, 5000), vectors[2000:])
    assert index.kind_ == "ivf" and index.factory_.startswith("IVF") and len(index) == 5000
    assert index.search(vectors[[10, 4000]], k=1).ids[:, 0].tolist() == [10, 4000]


def test_ivf_needs_enough_vectors_to_train():
    with pytest.raises(EmbeddingInputError, match="use kind='flat'"):
        VectorIndex(8, kind="IVF256,Flat").add(np.arange(100), clustered(100, 8))


def test_custom_factory_string(data):
    index = VectorIndex(32, kind="HNSW16,Flat")
    index.add(np.arange(len(data)), data)
    assert index.search(data[:3], k=1).ids[:, 0].tolist() == [0, 1, 2]
    with pytest.raises(IndexOperationError, match="cannot remove"):
        index.remove([0])
    with pytest.raises(EmbeddingInputError, match="FAISS factory string"):
        VectorIndex(32, kind="NotAnIndex,Flat")


def test_threads_are_set_for_faiss_and_restored():
    faiss.omp_set_num_threads(1)  # what Dask/Ray workers do
    index = VectorIndex(4, kind="flat", n_threads=2)
    assert index.n_threads_ == 2
    index.add([0], [[1.0, 0, 0, 0]])
    index.search([[1.0, 0, 0, 0]], k=1)
    assert faiss.omp_get_max_threads() == 1
    assert VectorIndex(4).n_threads_ >= 1


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ix: ix.add([-1], [[1.0, 0.0]]), "ids must be >= 0"),
        (lambda ix: ix.add([1.5], [[1.0, 0.0]]), "ids must be integers"),
        (lambda ix: ix.add(["a"], [[1.0, 0.0]]), "map string asset ids"),
        (lambda ix: ix.add([1, 2], [[1.0, 0.0]]), "2 ids for 1 vectors"),
        (lambda ix: ix.add([1], [[1.0, 0.0, 0.0]]), "3 dimensions, expected 2"),
        (lambda ix: ix.add([1], [[np.nan, 0.0]]), "row 0 holds NaN"),
        (lambda ix: ix.add([1], [[1.0, 0.0]], on_duplicate="skip"), "on_duplicate='skip'"),
        (lambda ix: ix.search([[1.0, 0.0]], k=0), "k must be a positive integer"),
        (lambda ix: ix.remove(7), "sequence of integer ids"),
    ],
)
def test_bad_arguments_are_refused(call, message):
    with pytest.raises(EmbeddingInputError, match=message):
        call(VectorIndex(2, kind="flat"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dim": 0}, "dim must be"),
        ({"dim": 2, "metric": "l2"}, "metric='l2'"),
        ({"dim": 2, "nprobe": 0}, "nprobe"),
        ({"dim": 2, "target_recall": 1.5}, "target_recall"),
        ({"dim": 2, "n_threads": 0}, "n_threads"),
        ({"dim": 2, "random_state": "seed"}, "random_state"),
    ],
)
def test_bad_options_are_refused(kwargs, message):
    with pytest.raises(EmbeddingInputError, match=message):
        VectorIndex(**kwargs)


def test_fixed_nprobe_and_per_call_override(data):
    index = VectorIndex(32, kind="ivf", nprobe=3)
    index.add(np.arange(len(data)), data)
    assert index.nprobe_ == 3 and index.recall_estimate_ is None
    recalls = index.tune(target_recall=0.99)
    assert index.nprobe_ in recalls and recalls[index.nprobe_] >= 0.99
    queries = clustered(20, seed=9)
    assert index.search(queries, k=5, nprobe=index.nlist_).ids.shape == (20, 5)


def test_same_seed_same_index(data):
    a = VectorIndex(32, kind="ivf", random_state=7)
    b = VectorIndex(32, kind="ivf", random_state=7)
    for index in (a, b):
        index.add(np.arange(len(data)), data)
    queries = clustered(30, seed=11)
    assert a.nprobe_ == b.nprobe_
    np.testing.assert_array_equal(a.search(queries, k=5).ids, b.search(queries, k=5).ids)


# -- persistence -------------------------------------------------------------------------------
def test_save_load_round_trip(built, data, tmp_path):
    folder = built.save(tmp_path / "index")
    sidecar = json.loads((folder / "index.json").read_text())
    assert sidecar["dim"] == 32 and sidecar["metric"] == "cosine"
    assert sidecar["factory"] == built.factory_ and sidecar["count"] == 6000
    assert sidecar["encoder_id"] == "test-encoder:v1"
    assert sidecar["checksums"]["index.faiss"].startswith("sha256:")
    loaded = VectorIndex.load(folder, expected_dim=32, expected_encoder_id="test-encoder:v1")
    assert (loaded.kind_, loaded.factory_, loaded.nprobe_) == (
        built.kind_,
        built.factory_,
        built.nprobe_,
    )
    np.testing.assert_array_equal(loaded.ids, built.ids)
    queries = clustered(20, seed=6)
    subset = built.ids[::3]
    for kwargs in ({}, {"subset": subset}):
        before, after = built.search(queries, k=5, **kwargs), loaded.search(queries, k=5, **kwargs)
        np.testing.assert_array_equal(before.ids, after.ids)
        np.testing.assert_allclose(before.similarities, after.similarities, atol=1e-6)
    loaded.add([10**9], data[:1])  # a loaded index keeps working
    assert loaded.search(data[:1], k=2).ids[0].tolist() in ([0, 10**9], [10**9, 0])


def test_load_refuses_mismatches(built, tmp_path):
    folder = built.save(tmp_path / "index")
    with pytest.raises(IndexMismatchError, match="holds 32-dimensional vectors, expected 384"):
        VectorIndex.load(folder, expected_dim=384)
    with pytest.raises(IndexMismatchError, match="built from encoder 'test-encoder:v1'"):
        VectorIndex.load(folder, expected_encoder_id="sentence-transformers:other")


def test_load_refuses_corrupt_files(built, tmp_path):
    folder = built.save(tmp_path / "index")
    data = bytearray((folder / "index.faiss").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "index.faiss").write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="does not match the checksum"):
        VectorIndex.load(folder)
    (folder / "index.json").write_text("{not json")
    with pytest.raises(IndexCorruptError, match="not a valid VectorIndex sidecar"):
        VectorIndex.load(folder)
    (folder / "index.json").unlink()
    with pytest.raises(IndexCorruptError, match="not a saved VectorIndex"):
        VectorIndex.load(folder)


def test_load_refuses_a_sidecar_that_disagrees_with_the_file(built, tmp_path):
    folder = built.save(tmp_path / "index")
    sidecar = json.loads((folder / "index.json").read_text())
    sidecar["count"] = 5
    (folder / "index.json").write_text(json.dumps(sidecar))
    with pytest.raises(IndexCorruptError, match="its sidecar says 5"):
        VectorIndex.load(folder)


def test_saving_an_empty_index_is_refused(tmp_path):
    with pytest.raises(IndexOperationError, match="nothing was added"):
        VectorIndex(4).save(tmp_path / "empty")


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=60),
    dim=st.integers(min_value=1, max_value=12),
    k=st.integers(min_value=1, max_value=8),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_round_trip_returns_the_same_neighbours(n, dim, k, seed):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    ids = rng.choice(10**6, n, replace=False)
    index = VectorIndex(dim, kind="flat")
    index.add(ids, vectors)
    queries = rng.standard_normal((5, dim)).astype(np.float32)
    with tempfile.TemporaryDirectory() as folder:
        loaded = VectorIndex.load(index.save(folder))
    before, after = index.search(queries, k=k), loaded.search(queries, k=k)
    np.testing.assert_array_equal(before.ids, after.ids)
    assert set(before.ids[before.ids >= 0].tolist()) <= set(ids.tolist())


# -- with real MiniLM vectors ------------------------------------------------------------------
def test_minilm_neighbours_of_spam_are_mostly_spam(minilm, youtube):
    comments = youtube.head(200)
    vectors = minilm.encode(comments["text"], progress=False)
    spam = comments["spam"].to_numpy()
    index = VectorIndex(minilm.dim, encoder_id=minilm.id)
    index.add(np.arange(len(vectors)), vectors)
    neighbours = index.search(vectors, k=2).ids[:, 1]  # rank 0 is the comment itself
    agreement = float((spam[neighbours] == spam).mean())
    assert agreement >= 0.8  # the classes are balanced, so chance is about 0.5
    query = minilm.encode(["check out my channel and subscribe"], progress=False)
    top = index.search(query, k=5, subset=np.flatnonzero(spam == 1)).ids[0]
    assert spam[top].all()
