"""TextEncoder(backend="openvino"): OpenVINO on the locally exported MiniLM, float32 / bfloat16.

The float32 ONNX export is made once per session into a temporary cache; bfloat16 runs only
where OpenVINO's CPU computes it natively (AMX, AVX512-BF16), and is refused elsewhere.
"""

from __future__ import annotations

import numpy as np
import pytest

from embeddings.encoder import EmbeddingInputError, EncoderLoadError
from embeddings.openvino_model import native_bfloat16
from embeddings.text import TextEncoder

NATIVE_BF16 = native_bfloat16()


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("openvino-onnx-cache")


@pytest.fixture(scope="module")
def texts(youtube):
    return youtube["text"].to_list()


@pytest.fixture(scope="module")
def reference(minilm, texts):
    """float32 torch vectors of the YouTube comments (sentence-transformers' own loop)."""
    return minilm.encode(texts, progress=False)


@pytest.fixture(scope="module")
def ov_float32(onnx_dir):
    encoder = TextEncoder(backend="openvino", precision="float32", onnx_cache_dir=onnx_dir)
    yield encoder
    encoder.close()


def test_id_names_backend_and_precision_without_loading(minilm):
    auto = TextEncoder(backend="openvino")
    assert auto.id == minilm.id + (":openvino-bfloat16" if NATIVE_BF16 else ":openvino-float32")
    fp32 = TextEncoder(backend="openvino", precision="float32")
    assert fp32.id == minilm.id + ":openvino-float32"
    assert fp32.id != TextEncoder(backend="onnx").id  # another runtime: another cache key
    assert auto._model is None and fp32._model is None  # known without loading or exporting


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"backend": "openvino", "precision": "int8"}, r"'int8'.*'float32', 'bfloat16'\]"),
        ({"backend": "openvino", "device": "cuda"}, r"runs on the CPU.*device='cuda'"),
    ],
)
def test_bad_options_are_refused_with_the_choices(options, message):
    with pytest.raises(EmbeddingInputError, match=message):
        TextEncoder(**options)


def test_float32_matches_torch_and_shares_the_onnx_export(ov_float32, onnx_dir, texts, reference):
    vectors = ov_float32.encode(texts, progress=False)
    assert vectors.shape == reference.shape and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, reference, atol=5e-5)
    folders = [p.name for p in onnx_dir.iterdir()]
    assert len(folders) == 1 and "-float32-" in folders[0]  # the float32 ONNX model, once
    assert ov_float32._session.concurrency == 1  # one stream on all the threads


def test_batches_missing_texts_and_threads(ov_float32, texts, reference):
    encoder = TextEncoder(
        backend="openvino",
        precision="float32",
        missing="zero",
        threads=1,
        onnx_cache_dir=ov_float32.onnx_cache_dir,
    )
    try:
        vectors = encoder.encode([texts[0], None, "  ", texts[1]], batch_size=1, progress=False)
        assert not vectors[1:3].any()
        np.testing.assert_allclose(vectors[[0, 3]], reference[:2], atol=5e-5)
        small = encoder.encode(texts[:30], batch_size=4, progress=False)  # results in order
        np.testing.assert_allclose(small, reference[:30], atol=5e-5)
    finally:
        encoder.close()
    assert encoder.default_batch_size() == 32


def test_encoding_from_several_threads_at_once(ov_float32, texts, reference):
    from concurrent.futures import ThreadPoolExecutor

    parts = [texts[i : i + 25] for i in range(0, 100, 25)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda part: ov_float32.encode(part, batch_size=4), parts))
    np.testing.assert_allclose(np.vstack(results), reference[:100], atol=5e-5)


@pytest.mark.skipif(not NATIVE_BF16, reason="this CPU has no native bfloat16 (AMX/AVX512-BF16)")
def test_bfloat16_keeps_the_vectors_and_does_not_depend_on_the_batch(onnx_dir, texts, reference):
    encoder = TextEncoder(backend="openvino", onnx_cache_dir=onnx_dir)  # auto: bfloat16 here
    vectors = encoder.encode(texts, progress=False)
    assert encoder.id.endswith(":openvino-bfloat16") and encoder._session.precision == "bfloat16"
    cosine = (vectors * reference).sum(axis=1)
    assert cosine.min() >= 0.999 and cosine.mean() >= 0.9999  # measured: 0.99993, 0.99998
    # a text's vector hardly depends on the texts batched with it
    alone = np.vstack([encoder.encode([t], progress=False) for t in texts[:20]])
    assert (alone * vectors[:20]).sum(axis=1).min() >= 0.9999
    # the nearest neighbour of each comment among the others stays the same
    nearest = []
    for matrix in (vectors, reference):
        sims = matrix @ matrix.T
        np.fill_diagonal(sims, -1)
        nearest.append(sims.argmax(axis=1))
    assert (nearest[0] == nearest[1]).mean() >= 0.98


@pytest.mark.skipif(not NATIVE_BF16, reason="this CPU has no native bfloat16 (AMX/AVX512-BF16)")
def test_bfloat16_that_changes_vectors_is_refused(monkeypatch, onnx_dir):
    import embeddings.text as text

    monkeypatch.setattr(text, "HALF_PRECISION_MIN_COSINE", 1.01)  # no precision can pass
    with pytest.raises(EncoderLoadError, match=r"precision='bfloat16'.*openvino.*worst cosine"):
        TextEncoder(backend="openvino", precision="bfloat16", onnx_cache_dir=onnx_dir).encode(["x"])


@pytest.mark.skipif(NATIVE_BF16, reason="this CPU computes bfloat16 natively")
def test_bfloat16_without_native_support_is_refused(onnx_dir):
    with pytest.raises(EncoderLoadError, match="native bfloat16"):
        TextEncoder(backend="openvino", precision="bfloat16", onnx_cache_dir=onnx_dir).encode(["x"])
