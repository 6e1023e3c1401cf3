"""EmbeddingCache faults: overwritten vectors are re-encoded; unreadable files are moved aside.

Issue 13, items 4 and 10: the cache is derived data, so damage must never reach the output
and never block later runs.
"""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from embeddings.cache import EmbeddingCache, EmbeddingCacheError
from embeddings.precomputed import PrecomputedEmbeddings

DIM = 16


class Counting(PrecomputedEmbeddings):
    """The precomputed encoder, counting the items it is asked to encode."""

    def __init__(self) -> None:
        super().__init__(dim=DIM)
        self.encoded = 0

    def encode(self, items, *, batch_size=64, progress=None):
        self.encoded += len(items)
        return super().encode(items, batch_size=batch_size, progress=progress)


def _items(n: int = 200, seed: int = 0) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, DIM)).astype(np.float32).tolist()


def _filled(tmp_path, n: int = 200):
    items = _items(n)
    path = tmp_path / "cache"
    with EmbeddingCache(path) as cache:
        expected = cache.encode(Counting(), items)
    return path / "embeddings.sqlite", items, expected


def test_overwritten_bytes_inside_stored_vectors_are_detected_and_re_encoded(tmp_path):
    file, items, expected = _filled(tmp_path)
    data = bytearray(file.read_bytes())
    damaged = 0
    for row in expected[:20]:  # 4 bytes inside each of 20 vectors, 80 bytes in all
        at = data.find(row.astype("<f4").tobytes())
        assert at >= 0
        data[at + 20 : at + 24] = b"\x00\x00\x80\x7f"
        damaged += 1
    file.write_bytes(bytes(data))
    with sqlite3.connect(file) as conn:  # SQLite itself sees nothing wrong
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    encoder = Counting()
    with EmbeddingCache(file) as cache:
        lookup = cache.lookup(encoder.id, items, digest=encoder.content_digest)
        assert lookup.found.sum() == len(items) - damaged
        vectors = cache.encode(encoder, items)
        assert cache.repaired >= damaged
    np.testing.assert_array_equal(vectors, expected)
    assert encoder.encoded == damaged
    again = Counting()
    with EmbeddingCache(file) as cache:  # repaired in place: all hits now
        np.testing.assert_array_equal(cache.encode(again, items), expected)
        assert again.encoded == 0 and cache.repaired == 0


def _garbage_header(file):
    data = bytearray(file.read_bytes())
    data[:100] = b"\xde\xad\xbe\xef" * 25
    file.write_bytes(bytes(data))


def _truncated(file):
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 3])


def _malformed_page(file):
    data = bytearray(file.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    for number in range(1, len(data) // page):
        data[number * page : number * page + 12] = b"\xff" * 12  # every page header but the first
    file.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_garbage_header, _truncated, _malformed_page])
def test_an_unreadable_cache_is_moved_aside_and_rebuilt(tmp_path, damage):
    file, items, expected = _filled(tmp_path)
    damage(file)
    encoder = Counting()
    with EmbeddingCache(file, on_corrupt="move_aside") as cache:
        vectors = cache.encode(encoder, items)
        assert len(cache.moved_aside) == 1
        assert cache.moved_aside[0].exists()
        assert ".corrupt-" in cache.moved_aside[0].name
    np.testing.assert_array_equal(vectors, expected)
    assert encoder.encoded == len(items)
    again = Counting()
    with EmbeddingCache(file, on_corrupt="move_aside") as cache:
        np.testing.assert_array_equal(cache.encode(again, items), expected)
        assert again.encoded == 0 and not cache.moved_aside


def test_by_default_an_unreadable_cache_raises_a_clear_error(tmp_path):
    file, items, _ = _filled(tmp_path)
    _garbage_header(file)
    with pytest.raises(EmbeddingCacheError, match="embedding cache"):
        EmbeddingCache(file).encode(Counting(), items)
    assert file.exists()


def test_a_schema_1_cache_is_upgraded_and_its_unchecked_vectors_re_encoded(tmp_path):
    file = tmp_path / "old.sqlite"
    items = _items(10)
    encoder = Counting()
    with sqlite3.connect(file) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute(
            "CREATE TABLE encoders (eid INTEGER PRIMARY KEY, encoder_id TEXT NOT NULL UNIQUE, "
            "dim INTEGER NOT NULL)"
        )
        conn.execute(
            "CREATE TABLE vectors (eid INTEGER NOT NULL, digest BLOB NOT NULL, vector BLOB NOT "
            "NULL, PRIMARY KEY (eid, digest)) WITHOUT ROWID"
        )
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        conn.execute("INSERT INTO encoders VALUES (1, ?, ?)", (encoder.id, DIM))
        keys = [encoder.content_digest(i) for i in items]
        conn.executemany(
            "INSERT INTO vectors VALUES (1, ?, ?)", [(k, b"\x00" * DIM * 4) for k in keys]
        )
    with EmbeddingCache(file) as cache:
        vectors = cache.encode(encoder, items)
    assert encoder.encoded == len(items)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
