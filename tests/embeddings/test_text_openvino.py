"""TextEncoder(backend="openvino"): the locally exported MiniLM, float32 / bfloat16 / int8.

The float32 ONNX export is made once per session into a temporary cache; bfloat16 runs only
where OpenVINO's CPU computes it natively (AMX, AVX512-BF16), and is refused elsewhere; int8
is NNCF's static quantization of that export, cached beside it.
"""

from __future__ import annotations

import numpy as np
import pytest

from embeddings.encoder import EmbeddingInputError, EncoderLoadError
from embeddings.openvino_model import calibration_texts, native_bfloat16
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
        ({"backend": "openvino", "precision": "float16"}, r"'float16'.*'bfloat16', 'int8'\]"),
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


def test_int8_ids_never_collide():
    ids = {
        TextEncoder(backend=backend, precision=precision).id
        for backend, precision in [
            ("openvino", "int8"),
            ("openvino", "float32"),
            ("openvino", "bfloat16"),
            ("onnx", "int8"),
            ("onnx", "float32"),
            ("torch", "float32"),
        ]
    }
    assert len(ids) == 6
    assert TextEncoder(backend="openvino", precision="int8").id.endswith(":openvino-int8")


def test_calibration_texts_are_generated_not_taken_from_the_data(youtube):
    texts = calibration_texts()
    assert len(set(texts)) > 250 and texts == calibration_texts()
    assert calibration_texts(seed=1) != texts
    assert not set(texts) & set(youtube["text"].to_list())


@pytest.mark.slow
def test_int8_is_quantized_once_beside_the_export_and_stays_close(
    ov_float32, onnx_dir, texts, reference
):
    ov_float32.encode(texts[:2], progress=False)  # the float32 export exists
    encoder = TextEncoder(backend="openvino", precision="int8", onnx_cache_dir=onnx_dir)
    try:
        vectors = encoder.encode(texts, progress=False)
        assert encoder._session.precision == "int8" and vectors.dtype == np.float32
        cosine = (vectors * reference).sum(axis=1)
        assert cosine.min() >= 0.9 and np.median(cosine) >= 0.98
        # static activation scales: a text's vector does not depend on its batch
        alone = np.vstack([encoder.encode([t], progress=False) for t in texts[:10]])
        assert (alone * vectors[:10]).sum(axis=1).min() >= 0.9999
    finally:
        encoder.close()
    (export,) = onnx_dir.iterdir()  # no second ONNX export: int8 lives in its folder
    (int8,) = [p for p in export.iterdir() if p.name.startswith("openvino-int8-")]
    assert (int8 / "model.xml").is_file() and (int8 / "model.bin").is_file()
    modified = (int8 / "model.bin").stat().st_mtime_ns
    again = TextEncoder(backend="openvino", precision="int8", onnx_cache_dir=onnx_dir)
    try:
        np.testing.assert_allclose(again.encode(texts[:5], progress=False), vectors[:5], atol=1e-5)
    finally:
        again.close()
    assert (int8 / "model.bin").stat().st_mtime_ns == modified  # read from the cache


@pytest.mark.slow
def test_int8_that_changes_vectors_too_much_is_refused(monkeypatch, onnx_dir):
    import embeddings.text as text

    monkeypatch.setattr(text, "INT8_MIN_COSINE", 1.01)  # no quantized model can pass
    with pytest.raises(EncoderLoadError, match=r"precision='int8'.*openvino.*worst cosine"):
        TextEncoder(backend="openvino", precision="int8", onnx_cache_dir=onnx_dir).encode(["x"])
