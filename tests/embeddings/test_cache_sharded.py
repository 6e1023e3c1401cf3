"""ShardedEmbeddingCache: Parquet shards many hosts share, on a local folder and on S3."""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from embeddings.cache import (
    CacheStats,
    EmbeddingCache,
    EmbeddingCacheError,
    ShardedEmbeddingCache,
    open_cache,
)
from embeddings.precomputed import PrecomputedEmbeddings


class Counting:
    """A real encoder, recording what it was asked to encode."""

    def __init__(self, dim: int = 3) -> None:
        self.inner = PrecomputedEmbeddings(dim=dim)
        self.calls: list[list[object]] = []

    @property
    def id(self) -> str:
        return self.inner.id

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode(self, items, *, batch_size=64, progress=None):
        self.calls.append(list(items))
        return self.inner.encode(items, batch_size=batch_size, progress=progress)


def vectors(n: int, dim: int = 3, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return list(rng.normal(size=(n, dim)).astype(np.float32) + 0.1)


@pytest.fixture(params=["local", "s3"])
def where(request, tmp_path):
    """A cache folder and its fsspec options: a local folder, or a prefix of an S3 bucket."""
    if request.param == "local":
        return str(tmp_path / "cache"), None
    from enrich._internal.uri import fsspec_options

    bucket, options = request.getfixturevalue("s3_bucket")
    return f"{bucket}/cache", fsspec_options(bucket, options)


def test_only_misses_are_encoded_and_a_new_instance_reads_the_shards(where):
    path, options = where
    items = vectors(50)
    encoder = Counting()
    first = ShardedEmbeddingCache(path, storage_options=options)
    stored = first.encode(encoder, items[:30])
    again = ShardedEmbeddingCache(path, storage_options=options)  # another host
    out = again.encode(encoder, items)
    assert again.stats == CacheStats(hits=30, misses=20)
    assert encoder.calls == [items[:30], items[30:]]
    np.testing.assert_array_equal(out[:30], stored)
    np.testing.assert_allclose(out, PrecomputedEmbeddings(dim=3).encode(items), atol=1e-7)
    assert len(again) == 50 and again.encoder_ids() == {encoder.id: 50}
    found = again.lookup(encoder.id, [items[0], np.full(3, 9.0, np.float32)])
    assert found.found.tolist() == [True, False]


def test_two_writers_at_once_share_everything_they_wrote(where):
    path, options = where
    items = vectors(40, seed=1)
    a = ShardedEmbeddingCache(path, storage_options=options)
    b = ShardedEmbeddingCache(path, storage_options=options)
    a.encode(Counting(), items[:25])
    b.encode(Counting(), items[15:])  # overlapping keys: both store them, readers take one
    encoder = Counting()
    c = ShardedEmbeddingCache(path, storage_options=options)
    c.encode(encoder, items)
    assert encoder.calls == [] and c.stats == CacheStats(hits=40, misses=0)


def test_shards_are_merged_past_max_shards_and_nothing_is_lost(where):
    path, options = where
    items = vectors(60, seed=2)
    cache = ShardedEmbeddingCache(path, storage_options=options, max_shards=3)
    for start in range(0, 60, 10):  # six writes: six shards, merged as they pass three
        cache.encode(Counting(), items[start : start + 10])
    folder = cache._folder(Counting().id)
    assert len(cache._shards(folder)) <= 3
    encoder = Counting()
    fresh = ShardedEmbeddingCache(path, storage_options=options)
    fresh.encode(encoder, items)
    assert encoder.calls == [] and len(fresh) == 60


def test_a_lookup_reads_only_the_row_groups_that_hold_its_keys(tmp_path):
    items = vectors(10_000, dim=2, seed=3)
    cache = ShardedEmbeddingCache(tmp_path)
    cache.encode(PrecomputedEmbeddings(dim=2), items, write_every=20_000)  # one shard
    (shard,) = cache._shards(cache._folder(PrecomputedEmbeddings(dim=2).id))
    assert pq.ParquetFile(shard).metadata.num_row_groups == 3
    ranges = cache._ranges(shard)
    assert all(low <= high for low, high in ranges)
    assert all(ranges[i][1] < ranges[i + 1][0] for i in range(2))  # sorted keys: disjoint
    one = ShardedEmbeddingCache(tmp_path).lookup(PrecomputedEmbeddings(dim=2).id, items[:1])
    assert one.found.all()


def test_a_bad_vector_or_an_unreadable_shard_is_encoded_again(tmp_path, caplog):
    items = vectors(6, seed=4)
    encoder = Counting()
    cache = ShardedEmbeddingCache(tmp_path)
    cache.encode(encoder, items[:3])
    folder = cache._folder(encoder.id)
    (shard,) = cache._shards(folder)
    table = pq.read_table(shard)
    broken = table.set_column(2, "checksum", pa.array([b"\0" * 8] * 3, pa.binary()))
    pq.write_table(broken, shard)  # every stored vector fails its checksum
    with open(f"{folder}/shard-00000000T000000-garbage.parquet", "wb") as fh:
        fh.write(b"not parquet at all")
    fresh = ShardedEmbeddingCache(tmp_path)
    with caplog.at_level(logging.WARNING, logger="embeddings.cache"):
        out = fresh.encode(encoder, items)
    assert fresh.stats == CacheStats(hits=0, misses=6) and fresh.repaired == 3
    assert len(fresh.skipped) == 1 and "unreadable" in caplog.text
    np.testing.assert_allclose(out, PrecomputedEmbeddings(dim=3).encode(items), atol=1e-7)


def test_an_encoder_whose_width_changed_is_refused(tmp_path):
    ShardedEmbeddingCache(tmp_path).encode(PrecomputedEmbeddings(dim=3), vectors(2))

    class Wider(Counting):
        @property
        def id(self) -> str:
            return PrecomputedEmbeddings(dim=3).id

    with pytest.raises(EmbeddingCacheError, match=r"\(the dim stored for its id\)"):
        ShardedEmbeddingCache(tmp_path).encode(Wider(dim=4), vectors(2, dim=4))


def test_open_cache_picks_sqlite_for_a_folder_and_shards_for_a_uri(tmp_path):
    assert isinstance(open_cache(tmp_path / "a"), EmbeddingCache)
    assert isinstance(open_cache((tmp_path / "b").as_uri()), EmbeddingCache)
    shards = open_cache("memory://enrich-test/cache")
    assert isinstance(shards, ShardedEmbeddingCache)
    encoder = Counting()
    shards.encode(encoder, vectors(3))
    again = ShardedEmbeddingCache("memory://enrich-test/cache").encode(encoder, vectors(3))
    assert again.shape == (3, 3) and len(encoder.calls) == 1
