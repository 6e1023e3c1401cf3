"""EmbeddingCache: content-hash keys, persistence, hit/miss counts, concurrent readers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from embeddings.cache import CachedEncoder, CacheStats, EmbeddingCache, EmbeddingCacheError
from embeddings.encoder import EmbeddingInputError, Encoder, content_digest
from embeddings.image import HogPcaImageEncoder
from embeddings.precomputed import PrecomputedEmbeddings

REPO = Path(__file__).resolve().parents[2]


class Counting:
    """A real encoder, recording what it was asked to encode."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.calls: list[list[object]] = []

    @property
    def id(self) -> str:
        return self.inner.id

    @property
    def dim(self) -> int:
        return self.inner.dim

    def content_digest(self, item: object) -> bytes:
        return getattr(self.inner, "content_digest", content_digest)(item)

    def encode(self, items, *, batch_size=64, progress=None):
        self.calls.append(list(items))
        return self.inner.encode(items, batch_size=batch_size, progress=progress)


def test_second_run_is_served_from_the_cache(minilm, youtube, tmp_path):
    texts = youtube["text"].head(40).to_list()
    encoder = Counting(minilm)
    cache = EmbeddingCache(tmp_path / "cache")
    first = cache.encode(encoder, texts)
    assert cache.stats == CacheStats(hits=0, misses=40)
    again = cache.encode(encoder, texts)
    assert cache.stats == CacheStats(hits=40, misses=40)
    assert cache.stats.hit_rate == 0.5
    assert len(encoder.calls) == 1  # the second call encoded nothing
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first, minilm.encode(texts, progress=False), atol=1e-6)


def test_cache_persists_across_instances_and_only_misses_are_encoded(minilm, youtube, tmp_path):
    texts = youtube["text"].head(10).to_list()
    with EmbeddingCache(tmp_path / "cache") as cache:
        stored = cache.encode(minilm, texts[:6])
    encoder = Counting(minilm)
    reopened = EmbeddingCache(tmp_path / "cache")
    vectors = reopened.encode(encoder, texts)
    assert reopened.stats == CacheStats(hits=6, misses=4)
    assert encoder.calls == [texts[6:]]
    np.testing.assert_array_equal(vectors[:6], stored)
    assert (tmp_path / "cache" / "embeddings.sqlite").is_file()
    assert len(reopened) == 10 and reopened.encoder_ids() == {minilm.id: 10}


def test_an_all_hit_run_never_loads_the_model(minilm, youtube, tmp_path):
    from embeddings.text import TextEncoder

    texts = youtube["text"].head(8).to_list()
    expected = EmbeddingCache(tmp_path).encode(minilm, texts)
    fresh = TextEncoder()  # as in a new process: nothing loaded yet
    vectors = EmbeddingCache(tmp_path).encode(fresh, texts)
    np.testing.assert_array_equal(vectors, expected)
    assert fresh._model is None


def test_identical_items_are_encoded_once(minilm, tmp_path):
    encoder = Counting(minilm)
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    vectors = cache.encode(encoder, ["same text", "other", "same text", "same text"])
    assert encoder.calls == [["same text", "other"]]
    np.testing.assert_array_equal(vectors[0], vectors[2])
    assert cache.stats == CacheStats(hits=0, misses=4)


def test_keys_are_content_and_encoder_id(tmp_path):
    cache = EmbeddingCache(tmp_path)
    a = PrecomputedEmbeddings(dim=2, name="model-a")
    b = PrecomputedEmbeddings(dim=2, name="model-b")
    cache.encode(a, [[1.0, 0.0]])
    cache.encode(b, [[1.0, 0.0]])  # same content, other encoder: a miss
    cache.encode(a, [[1.0, 0.001]])  # changed content: a miss
    assert cache.stats == CacheStats(hits=0, misses=3)
    assert cache.encoder_ids() == {a.id: 2, b.id: 1}
    assert cache.clear(a.id) == 2 and len(cache) == 1
    assert cache.clear() == 1 and len(cache) == 0


def test_image_paths_are_keyed_by_file_content(mnist, tmp_path):
    images, _ = mnist
    encoder = Counting(HogPcaImageEncoder(n_components=8).fit(images[:50]))
    first, renamed = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(images[0]).save(first)
    first.rename(renamed)
    Image.fromarray(images[1]).save(first)  # a new image under the old name
    cache = EmbeddingCache(tmp_path / "cache")
    cache.encode(encoder, [images[0]])
    cache.encode(encoder, [str(renamed)])
    cache.encode(encoder, [str(renamed), str(first)])
    assert cache.stats == CacheStats(hits=1, misses=3)  # only the renamed file's 2nd read hits


def test_wrap_gives_a_caching_encoder(minilm, tmp_path):
    cache = EmbeddingCache(tmp_path)
    wrapped = cache.wrap(minilm)
    assert isinstance(wrapped, CachedEncoder) and isinstance(wrapped, Encoder)
    assert (wrapped.id, wrapped.dim) == (minilm.id, minilm.dim)
    wrapped.encode(["a", "b"])
    wrapped.encode(["b", "c"])
    assert cache.stats == CacheStats(hits=1, misses=3)


def test_lookup_reads_without_encoding(minilm, tmp_path):
    cache = EmbeddingCache(tmp_path)
    stored = cache.encode(minilm, ["known"])
    result = cache.lookup(minilm.id, ["known", "unknown"])
    assert result.found.tolist() == [True, False]
    np.testing.assert_array_equal(result.vectors[0], stored[0])
    assert np.isnan(result.vectors[1]).all()
    assert cache.lookup("no-such-encoder", ["known"]).found.tolist() == [False]
    assert cache.stats == CacheStats(hits=0, misses=1)


class _ChangedModel:
    """An encoder whose id did not change although its width did (a broken id)."""

    id = "precomputed:model-a:dim=2:l2"
    dim = 3

    def encode(self, items, *, batch_size=64, progress=None):
        return np.ones((len(items), 3), np.float32) / np.sqrt(3)


def test_an_id_reused_with_another_width_is_refused(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.encode(PrecomputedEmbeddings(dim=2, name="model-a"), [[1.0, 0.0]])
    with pytest.raises(EmbeddingCacheError, match="stored with dim 2 but the encoder now gives 3"):
        cache.encode(_ChangedModel(), [np.array([1.0, 0.0, 0.0])])


def test_bad_inputs(tmp_path):
    cache = EmbeddingCache(tmp_path)
    with pytest.raises(EmbeddingInputError, match="needs an encoder"):
        cache.encode("not an encoder", ["x"])  # type: ignore[arg-type]
    with pytest.raises(EmbeddingInputError, match="cannot compute a content hash"):
        cache.encode(PrecomputedEmbeddings(dim=2), [object()])
    with pytest.raises(EmbeddingInputError, match="cannot compute a content hash of a list"):
        cache.encode(_ChangedModel(), [[1.0, 0.0, 0.0]])
    with pytest.raises(EmbeddingInputError, match="write_every"):
        cache.encode(PrecomputedEmbeddings(dim=2), [[1.0, 0.0]], write_every=0)


def test_a_file_that_is_not_a_cache_is_refused(tmp_path):
    bogus = tmp_path / "bogus.sqlite"
    bogus.write_bytes(b"this is not a database" * 100)
    with pytest.raises(EmbeddingCacheError, match="cannot open the embedding cache"):
        EmbeddingCache(bogus)


_READER = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    from embeddings.cache import EmbeddingCache

    path, encoder_id, texts_file, expected_file = sys.argv[1:5]
    texts = json.load(open(texts_file))
    expected = np.load(expected_file)
    cache = EmbeddingCache(path)
    reads = 0
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline or reads < 5:
        result = cache.lookup(encoder_id, texts)
        if not result.found.all() or not np.array_equal(result.vectors, expected):
            print("MISMATCH", reads)
            sys.exit(1)
        reads += 1
    print("OK", reads)
    """
)


def test_two_processes_read_while_a_third_writes(minilm, youtube, tmp_path):
    texts = youtube["text"].head(50).to_list()
    cache = EmbeddingCache(tmp_path / "shared")
    expected = cache.encode(minilm, texts)
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    np.save(tmp_path / "expected.npy", expected)
    args = [str(tmp_path / "shared"), minilm.id, str(tmp_path / "texts.json")]
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", _READER, *args, str(tmp_path / "expected.npy")],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    writer = PrecomputedEmbeddings(dim=8, name="writer")
    rng = np.random.default_rng(0)
    for _ in range(20):  # commits while the readers read
        cache.encode(writer, rng.standard_normal((50, 8)), write_every=10)
    outputs = [reader.communicate(timeout=120) for reader in readers]
    for reader, (out, err) in zip(readers, outputs, strict=True):
        assert reader.returncode == 0, err
        assert out.startswith("OK")
    assert cache.encoder_ids() == {minilm.id: 50, writer.id: 1000}


def _open_at_once(path: str, barrier, errors) -> None:
    barrier.wait()
    try:
        EmbeddingCache(path).close()
    except Exception as exc:  # reported to the parent process
        errors.put(repr(exc))


def test_processes_opening_a_new_cache_at_the_same_moment_all_succeed(tmp_path):
    """Dask workers of one job open the job's new cache together: none may fail "locked"."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    for attempt in range(30):
        path = str(tmp_path / str(attempt) / "cache.sqlite")
        barrier, errors = ctx.Barrier(12), ctx.Queue()
        openers = [
            ctx.Process(target=_open_at_once, args=(path, barrier, errors)) for _ in range(12)
        ]
        for opener in openers:
            opener.start()
        for opener in openers:
            opener.join(60)
        assert errors.empty(), errors.get()
        assert all(opener.exitcode == 0 for opener in openers)
