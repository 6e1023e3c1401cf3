"""Image encoders: HOG + PCA on real MNIST digits, CLIP through a small locally built model."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from embeddings.encoder import (
    EmbeddingInputError,
    Encoder,
    EncoderLoadError,
    EncoderNotFittedError,
)
from embeddings.image import ClipImageEncoder, HogPcaImageEncoder


@pytest.fixture(scope="module")
def hog(mnist) -> HogPcaImageEncoder:
    images, _ = mnist
    return HogPcaImageEncoder(n_components=48).fit(images[:300])


def _nn_label_agreement(vectors: np.ndarray, labels: np.ndarray) -> float:
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    return float((labels[sims.argmax(axis=1)] == labels).mean())


# -- HogPcaImageEncoder ----------------------------------------------------------------------
def test_hog_neighbours_share_the_digit_label(hog, mnist):
    images, labels = mnist
    held_out = images[300:600]  # not seen by fit
    vectors = hog.encode(held_out)
    assert vectors.shape == (300, 48) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    agreement = _nn_label_agreement(vectors, labels[300:600])
    raw = held_out.reshape(300, -1).astype(np.float32)
    raw /= np.linalg.norm(raw, axis=1, keepdims=True)
    assert agreement >= 0.85  # chance is about 0.1
    assert agreement >= _nn_label_agreement(raw, labels[300:600])  # beats raw pixels


def test_hog_is_an_encoder_with_a_fitted_id(hog, mnist):
    images, _ = mnist
    assert isinstance(hog, Encoder)
    assert hog.dim == 48
    assert hog.id.startswith("hog-pca:v1:") and ":fit=" in hog.id
    refit = HogPcaImageEncoder(n_components=48).fit(images[:300])
    assert refit.id == hog.id  # deterministic fit
    np.testing.assert_array_equal(refit.encode(images[:5]), hog.encode(images[:5]))
    other = HogPcaImageEncoder(n_components=48).fit(images[100:400])
    assert other.id != hog.id  # fitted state is part of the id


def test_long_encodes_draw_no_bar_into_a_log(hog, mnist, capfd, monkeypatch):
    """progress=None: stderr is a file here, so even long work writes no carriage returns."""
    import embeddings._progress

    monkeypatch.setattr(embeddings._progress, "AUTO_PROGRESS_MIN_ITEMS", 10)  # 300 is "long"
    hog.encode(mnist[0][:300])
    assert "\r" not in capfd.readouterr().err
    hog.encode(mnist[0][:300], progress=True)  # an explicit request still draws
    assert "HOG-PCA" in capfd.readouterr().err


def test_hog_save_load_round_trip_without_pickle(hog, mnist, tmp_path):
    images, _ = mnist
    path = hog.save(tmp_path / "hog")
    assert path.suffix == ".npz"
    with np.load(path, allow_pickle=False) as data:  # readable with pickle disabled
        assert set(data.files) >= {"config", "mean", "components"}
    loaded = HogPcaImageEncoder.load(path)
    assert loaded.id == hog.id and loaded.get_params() == hog.get_params()
    np.testing.assert_array_equal(loaded.encode(images[:10]), hog.encode(images[:10]))


def test_hog_load_refuses_foreign_or_altered_files(hog, tmp_path):
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, something=np.arange(3))
    with pytest.raises(EncoderLoadError, match="not a HogPcaImageEncoder file"):
        HogPcaImageEncoder.load(foreign)
    path = hog.save(tmp_path / "hog.npz")
    with np.load(path) as data:
        arrays = dict(data)
    arrays["components"] = arrays["components"] * 2
    altered = tmp_path / "altered.npz"
    np.savez(altered, **arrays)
    with pytest.raises(EncoderLoadError, match="corrupt"):
        HogPcaImageEncoder.load(altered)


def test_hog_needs_fit():
    encoder = HogPcaImageEncoder()
    with pytest.raises(EncoderNotFittedError, match=r"call \.fit"):
        encoder.encode(np.zeros((1, 8, 8), np.uint8))
    with pytest.raises(EncoderNotFittedError):
        _ = encoder.id


def test_hog_accepts_every_image_kind(hog, mnist, tmp_path):
    images, _ = mnist
    digit = images[0]
    png = tmp_path / "digit.png"
    Image.fromarray(digit).save(png)
    buffer = io.BytesIO()
    Image.fromarray(digit).save(buffer, format="PNG")
    items = [
        digit,
        digit.astype(np.float32) / 255,
        np.repeat(digit[:, :, None], 3, axis=2),
        digit[:, :, None],
        Image.fromarray(digit),
        png,
        str(png),
        buffer.getvalue(),
    ]
    vectors = hog.encode(items)
    for row in vectors[1:]:
        np.testing.assert_allclose(row, vectors[0], atol=1e-4)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (np.full((8, 8), 2.0), r"float images must be finite and in \[0, 1\]"),
        (np.full((8, 8), 300, dtype=np.int32), "0..255"),
        (np.zeros((8, 8, 2), np.uint8), r"shape \(8, 8, 2\)"),
        (np.zeros(8, np.uint8), r"shape \(8,\)"),
        ("/no/such/image.png", "could not be read as an image"),
        (b"not an image", "could not be read as an image"),
        (3.5, "images must be numpy arrays"),
    ],
)
def test_bad_images_are_refused_with_their_position(hog, item, message):
    with pytest.raises(EmbeddingInputError, match=message):
        hog.encode([np.zeros((8, 8), np.uint8), item])


def test_hog_fit_checks_its_inputs(mnist):
    images, _ = mnist
    with pytest.raises(EmbeddingInputError, match="more than n_components images"):
        HogPcaImageEncoder(n_components=64).fit(images[:10])
    with pytest.raises(EmbeddingInputError, match="multiple of cell_size"):
        HogPcaImageEncoder(image_size=30, cell_size=4).fit(images[:100])
    with pytest.raises(EmbeddingInputError, match="pixel_weight"):
        HogPcaImageEncoder(pixel_weight=1.5).fit(images[:100])


def test_colour_images_differ_by_colour(mnist):
    rng = np.random.default_rng(0)
    shapes = rng.integers(0, 255, size=(120, 16, 16, 1), dtype=np.uint8)
    red = np.concatenate([shapes, shapes // 4, shapes // 4], axis=3)
    blue = np.concatenate([shapes // 4, shapes // 4, shapes], axis=3)
    encoder = HogPcaImageEncoder(n_components=8, image_size=16).fit(np.concatenate([red, blue]))
    v_red, v_blue = encoder.encode(red[:20]), encoder.encode(blue[:20])
    # each red image is closer to the other red images than its blue twin is
    assert (v_red @ v_red.T).mean() > (v_red @ v_blue.T).mean()


# -- ClipImageEncoder ----------------------------------------------------------------------
def test_clip_loads_a_saved_model_by_path(tiny_clip_dir, mnist):
    images, _ = mnist
    encoder = ClipImageEncoder(tiny_clip_dir, device="cpu")
    assert isinstance(encoder, Encoder)
    assert encoder.dim == 24
    vectors = encoder.encode(images[:6], batch_size=4)
    assert vectors.shape == (6, 24) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.id.startswith(f"clip:{tiny_clip_dir.name}:") and encoder.id.endswith(":l2")


def test_clip_matches_transformers_called_directly(tiny_clip_dir, mnist):
    import torch
    from transformers import CLIPImageProcessor, CLIPModel

    images, _ = mnist
    rgb = [Image.fromarray(im).convert("RGB") for im in images[:3]]
    model = CLIPModel.from_pretrained(tiny_clip_dir).eval()
    inputs = CLIPImageProcessor.from_pretrained(tiny_clip_dir)(images=rgb, return_tensors="pt")
    with torch.inference_mode():
        out = model.get_image_features(pixel_values=inputs["pixel_values"])
    direct = (out if isinstance(out, torch.Tensor) else out.pooler_output).numpy()
    direct /= np.linalg.norm(direct, axis=1, keepdims=True)
    ours = ClipImageEncoder(tiny_clip_dir, device="cpu").encode(rgb)
    np.testing.assert_allclose(ours, direct, atol=1e-5)


def test_clip_is_deterministic_and_batch_invariant(tiny_clip_dir, mnist):
    images, _ = mnist
    encoder = ClipImageEncoder(tiny_clip_dir, device="cpu")
    one_by_one = encoder.encode(images[:5], batch_size=1)
    together = encoder.encode(images[:5], batch_size=5)
    np.testing.assert_allclose(one_by_one, together, atol=1e-5)
    assert not np.allclose(together[0], together[1])
    assert ClipImageEncoder(tiny_clip_dir, device="cpu").id == encoder.id


def test_clip_refuses_missing_models(tmp_path):
    with pytest.raises(EncoderLoadError, match="could not load a CLIP-style model"):
        ClipImageEncoder(tmp_path / "nothing-here").encode([np.zeros((8, 8), np.uint8)])
    with pytest.raises(EmbeddingInputError, match="HogPcaImageEncoder"):
        ClipImageEncoder("")


def test_clip_prefetched_batches_and_device_batch_size(tiny_clip_dir, mnist):
    images, _ = mnist
    encoder = ClipImageEncoder(tiny_clip_dir, device="cpu")
    assert encoder.default_batch_size() == 32  # on CPU
    whole = encoder.encode(images[:40], progress=False)  # two batches, the second prefetched
    np.testing.assert_allclose(encoder.encode(images[:40], batch_size=7), whole, atol=1e-5)
    np.testing.assert_allclose(encoder.encode(images[:1], batch_size=1), whole[:1], atol=1e-5)
