"""TextEncoder's backends (torch, ONNX Runtime int8/float32), precisions and tokenizer workers.

The ONNX models are exported once per session from the bundled MiniLM into a temporary cache.
"""

from __future__ import annotations

import numpy as np
import pytest

from embeddings.encoder import EmbeddingInputError, EncoderLoadError
from embeddings.onnx_model import EXPORT_RECIPE, onnx_cache_dir
from embeddings.text import TextEncoder


@pytest.fixture(scope="session")
def onnx_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="session")
def onnx_int8(onnx_dir):
    encoder = TextEncoder(backend="onnx", precision="int8", onnx_cache_dir=onnx_dir)
    encoder.encode(["warm up"], progress=False)  # exports once for the session
    return encoder


@pytest.fixture(scope="session")
def onnx_float32(onnx_dir):
    encoder = TextEncoder(backend="onnx", precision="float32", onnx_cache_dir=onnx_dir)
    encoder.encode(["warm up"], progress=False)
    return encoder


@pytest.fixture(scope="session")
def texts(youtube):
    return youtube["text"].to_list()


@pytest.fixture(scope="session")
def reference(minilm, texts):
    """float32 torch vectors of the 300 YouTube comments (sentence-transformers' own loop)."""
    return minilm.encode(texts, progress=False)


def test_backend_and_precision_change_the_id_without_loading(minilm):
    torch_id = minilm.id
    ids = {
        "onnx": TextEncoder(backend="onnx"),
        "onnx-int8": TextEncoder(backend="onnx", precision="int8"),
        "bf16": TextEncoder(precision="bfloat16", device="cpu"),
        "fp16": TextEncoder(precision="float16", device="cuda"),
    }
    assert ids["onnx"].id == torch_id + ":onnx-float32"  # "auto": the same votes as torch
    assert ids["onnx-int8"].id == torch_id + ":onnx-int8"
    assert ids["bf16"].id == torch_id + ":torch-bfloat16"
    assert ids["fp16"].id == torch_id + ":torch-float16"
    assert TextEncoder(precision="float32", device="cpu").id == torch_id
    assert all(encoder._model is None for encoder in ids.values())  # nothing loaded


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"backend": "tensorrt"}, r"backend='tensorrt'.*\['torch', 'onnx', 'openvino'\]"),
        ({"backend": "onnx", "precision": "float16"}, r"'float16'.*\['auto', 'float32', 'int8'\]"),
        ({"precision": "int8"}, r"'int8' is not available with backend='torch'.*bfloat16"),
        ({"workers": -1}, "workers must be"),
        ({"workers": 1.5}, "workers must be"),
    ],
)
def test_bad_options_list_the_choices(options, message):
    with pytest.raises(EmbeddingInputError, match=message):
        TextEncoder(**options)


def test_onnx_int8_vectors_stay_close_to_torch_on_real_texts(onnx_int8, texts, reference):
    vectors = onnx_int8.encode(texts, progress=False)
    assert vectors.shape == reference.shape and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosine = (vectors * reference).sum(axis=1)
    assert cosine.min() >= 0.985 and cosine.mean() >= 0.997  # measured: 0.992, 0.998
    # the nearest neighbour of each comment among the others barely moves
    same = 0
    for matrix in (vectors, reference):
        sims = matrix @ matrix.T
        np.fill_diagonal(sims, -1)
        same = sims.argmax(axis=1) if isinstance(same, int) else same == sims.argmax(axis=1)
    assert same.mean() >= 0.9


def test_onnx_float32_matches_torch(onnx_float32, texts, reference):
    np.testing.assert_allclose(onnx_float32.encode(texts, progress=False), reference, atol=2e-5)


def test_int8_model_is_exported_locally_once_and_cached(onnx_int8, onnx_dir):
    folders = [p for p in onnx_dir.iterdir() if "int8" in p.name]
    assert len(folders) == 1 and EXPORT_RECIPE in folders[0].name
    assert folders[0].name.startswith("all-MiniLM-L6-v2-")
    model = folders[0] / "model.onnx"
    assert (folders[0] / "export.json").is_file()
    import onnx

    ops = {node.op_type for node in onnx.load(str(model), load_external_data=False).graph.node}
    assert {"QAttention", "DynamicQuantizeMatMul"} <= ops or "MatMulInteger" in ops  # int8 ops
    assert not [p for p in onnx_dir.iterdir() if p.name.startswith(".")]  # no temp folder left
    stamp = model.stat().st_mtime_ns
    again = TextEncoder(backend="onnx", precision="int8", onnx_cache_dir=onnx_dir)
    np.testing.assert_array_equal(
        again.encode(["is this exported again?"], progress=False),
        onnx_int8.encode(["is this exported again?"], progress=False),
    )
    assert model.stat().st_mtime_ns == stamp  # loaded from the cache, not exported again


def test_onnx_cache_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("ENRICH_ONNX_CACHE", str(tmp_path / "from-env"))
    assert onnx_cache_dir() == tmp_path / "from-env"
    assert onnx_cache_dir(tmp_path / "given") == tmp_path / "given"
    monkeypatch.delenv("ENRICH_ONNX_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert onnx_cache_dir() == tmp_path / "xdg" / "enrich" / "onnx"


def test_unwritable_onnx_cache_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(EncoderLoadError, match="ENRICH_ONNX_CACHE"):
        TextEncoder(backend="onnx", onnx_cache_dir=blocker / "cache").encode(["x"])


def test_tokenizer_workers_give_the_same_vectors(texts, reference):
    encoder = TextEncoder(device="cpu", workers=1)
    try:
        vectors = encoder.encode(texts[:40], batch_size=8, progress=False)
        again = encoder.encode(texts[40:50], batch_size=8, progress=False)  # pool is reused
    finally:
        encoder.close()
    np.testing.assert_allclose(vectors, reference[:40], atol=1e-5)
    np.testing.assert_allclose(again, reference[40:50], atol=1e-5)


def test_onnx_batches_and_missing_texts(onnx_float32, texts, reference):
    encoder = TextEncoder(
        backend="onnx",
        precision="float32",
        missing="zero",
        onnx_cache_dir=onnx_float32.onnx_cache_dir,
    )
    vectors = encoder.encode([texts[0], None, "  ", texts[1]], batch_size=1, progress=False)
    assert not vectors[1:3].any()
    np.testing.assert_allclose(vectors[[0, 3]], reference[:2], atol=2e-5)


def test_bfloat16_on_cpu_is_checked_and_close(texts, reference):
    encoder = TextEncoder(precision="bfloat16", device="cpu")
    vectors = encoder.encode(texts[:50], progress=False)
    assert encoder.id.endswith(":torch-bfloat16")
    assert next(encoder._model.parameters()).dtype.is_floating_point
    assert (vectors * reference[:50]).sum(axis=1).min() >= 0.99


def test_half_precision_that_changes_vectors_is_refused(monkeypatch):
    import embeddings.text as text

    monkeypatch.setattr(text, "HALF_PRECISION_MIN_COSINE", 1.01)  # no precision can pass
    with pytest.raises(EncoderLoadError, match=r"precision='bfloat16'.*worst cosine"):
        TextEncoder(precision="bfloat16", device="cpu").encode(["x"])


def test_default_batch_size_follows_backend_and_device():
    assert TextEncoder(device="cpu").default_batch_size() == 64
    assert TextEncoder(backend="onnx", device="cpu").default_batch_size() == 32
    assert TextEncoder(backend="openvino").default_batch_size() == 32


def test_progress_bar_on_the_batched_path(onnx_int8, capsys):
    onnx_int8.encode(["one", "two"], progress=True)
    assert "Encoding texts" in capsys.readouterr().err
    onnx_int8.encode(["one", "two"])
    assert capsys.readouterr().err == ""


def test_token_length_batches_equal_the_models_own_features_per_batch(minilm, texts):
    """Cutting one chunk's features into batches changes nothing but the padding."""
    from embeddings.tokenizer_pool import features_as_numpy, token_length_batches

    model = minilm._load()
    chunk = texts[:37]
    features = features_as_numpy(model.preprocess(chunk))
    batches = token_length_batches(features, batch_size=8)
    rows = np.concatenate([positions for positions, _ in batches])
    assert sorted(rows.tolist()) == list(range(len(chunk)))
    lengths = features["attention_mask"].sum(axis=1)
    assert (np.diff(lengths[rows]) <= 0).all()  # longest first, by tokens
    for positions, batch in batches:
        own = features_as_numpy(model.preprocess([chunk[i] for i in positions]))
        for key in ("input_ids", "attention_mask", "token_type_ids"):
            np.testing.assert_array_equal(batch[key], own[key])


def test_onnx_threads_option(onnx_float32, texts, reference):
    with pytest.raises(EmbeddingInputError, match="threads must be"):
        TextEncoder(backend="onnx", threads=0)
    one = TextEncoder(
        backend="onnx", precision="float32", threads=1, onnx_cache_dir=onnx_float32.onnx_cache_dir
    )
    three = TextEncoder(
        backend="onnx", precision="float32", threads=3, onnx_cache_dir=onnx_float32.onnx_cache_dir
    )
    try:
        for encoder in (one, three):  # batches run side by side, results in input order
            vectors = encoder.encode(texts[:60], batch_size=4, progress=False)
            np.testing.assert_allclose(vectors, reference[:60], atol=2e-5)
        assert (one._session.concurrency, three._session.concurrency) == (1, 3)
    finally:
        one.close()
        three.close()
