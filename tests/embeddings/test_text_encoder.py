"""TextEncoder with the real bundled MiniLM."""

from __future__ import annotations

import numpy as np
import pytest

from embeddings.encoder import EmbeddingInputError, Encoder, EncoderLoadError
from embeddings.text import TextEncoder, default_text_model_path


def test_shape_dtype_and_unit_rows(minilm):
    vectors = minilm.encode(["free iphone, click my link", "love this song"], progress=False)
    assert vectors.shape == (2, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert minilm.dim == 384
    assert isinstance(minilm, Encoder)


def test_matches_sentence_transformers_called_directly(minilm, youtube):
    from sentence_transformers import SentenceTransformer

    texts = youtube["text"].head(20).to_list()
    direct = SentenceTransformer(str(default_text_model_path()), device="cpu").encode(
        texts, batch_size=8, normalize_embeddings=True, convert_to_numpy=True
    )
    ours = minilm.encode(texts, batch_size=8, progress=False)
    np.testing.assert_allclose(ours, direct, atol=1e-5)


def test_similar_meaning_is_closer(minilm):
    a, b, c = minilm.encode(
        ["the cat sits on the mat", "a kitten is lying on the rug", "stock markets fell sharply"],
        progress=False,
    )
    assert a @ b > a @ c + 0.2


def test_batch_size_does_not_change_vectors(minilm, youtube):
    texts = youtube["text"].head(6).to_list()
    np.testing.assert_allclose(
        minilm.encode(texts, batch_size=1, progress=False),
        minilm.encode(texts, batch_size=64, progress=False),
        atol=1e-5,
    )


def test_accepts_series_arrays_and_empty(minilm, youtube):
    series = youtube["text"].head(3)
    expected = minilm.encode(series.to_list(), progress=False)
    np.testing.assert_allclose(minilm.encode(series, progress=False), expected, atol=1e-6)
    np.testing.assert_allclose(
        minilm.encode(series.to_numpy(), progress=False), expected, atol=1e-6
    )
    np.testing.assert_allclose(
        minilm.encode(series.to_pandas(), progress=False), expected, atol=1e-6
    )
    assert minilm.encode([], progress=False).shape == (0, 384)


def test_progress_bar_on_request_and_off_by_default_for_short_work(minilm, capsys):
    minilm.encode(["one", "two"], progress=True)
    assert "it/s" in capsys.readouterr().err  # a tqdm bar on stderr
    minilm.encode(["one", "two"])
    assert capsys.readouterr().err == ""


def test_id_names_model_files_and_normalization(minilm):
    first = minilm.id
    assert first == minilm.id
    library, name, digest, norm = first.split(":")
    assert (library, name, norm) == ("sentence-transformers", "all-MiniLM-L6-v2", "l2")
    assert len(digest) == 16 and int(digest, 16) >= 0
    fresh = TextEncoder(model=default_text_model_path())
    assert fresh.id == first  # same files, same id
    assert fresh._model is None  # a model folder gets its id without loading the model


def test_a_changed_model_folder_gets_a_new_id(tmp_path, minilm):
    import shutil

    copy = tmp_path / "minilm-copy"
    shutil.copytree(default_text_model_path(), copy)
    same = TextEncoder(model=copy)
    assert same.id.split(":")[2] == minilm.id.split(":")[2]
    config = copy / "sentence_bert_config.json"
    config.write_text(config.read_text().replace("256", "128"))  # shorter max length
    changed = TextEncoder(model=copy)
    assert changed.id != same.id and changed.id.split(":")[1] == "minilm-copy"


def test_none_and_blank_texts_are_refused_by_default(minilm):
    with pytest.raises(EmbeddingInputError, match=r"positions \[1, 2\].*missing='zero'"):
        minilm.encode(["fine", None, "   "], progress=False)


def test_missing_zero_gives_zero_rows(minilm):
    encoder = TextEncoder(missing="zero")
    encoder._model = minilm._model  # share the already loaded model: same weights
    vectors = encoder.encode(["fine", None, ""], progress=False)
    assert np.linalg.norm(vectors[0]) == pytest.approx(1.0, abs=1e-5)
    assert not vectors[1:].any()
    np.testing.assert_allclose(vectors[0], minilm.encode(["fine"], progress=False)[0], atol=1e-6)


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ("just one string", "wrap it in a list"),
        (["ok", 3], "item 1 is of type int"),
        ([b"bytes"], "item 0 is of type bytes"),
    ],
)
def test_bad_items_are_refused(minilm, items, message):
    with pytest.raises(EmbeddingInputError, match=message):
        minilm.encode(items, progress=False)


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, True])
def test_bad_batch_size(minilm, batch_size):
    with pytest.raises(EmbeddingInputError, match="batch_size"):
        minilm.encode(["x"], batch_size=batch_size)


def test_bad_options_and_unloadable_model(tmp_path):
    with pytest.raises(EmbeddingInputError, match="missing='nan'"):
        TextEncoder(missing="nan")  # type: ignore[arg-type]
    with pytest.raises(EmbeddingInputError, match="model must be"):
        TextEncoder(model=3)  # type: ignore[arg-type]
    (tmp_path / "not-a-model").mkdir()
    with pytest.raises(EncoderLoadError, match="not-a-model"):
        TextEncoder(model=tmp_path / "not-a-model").encode(["x"])
