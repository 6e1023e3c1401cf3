"""Image items given as URIs (file://, s3://) are read through fsspec like local files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from embeddings.cache import ShardedEmbeddingCache
from embeddings.encoder import EmbeddingInputError, file_digest
from embeddings.image import HogPcaImageEncoder, image_content_digest, is_image_uri


@pytest.fixture(scope="module")
def hog(mnist) -> HogPcaImageEncoder:
    images, _ = mnist
    return HogPcaImageEncoder(n_components=16).fit(images[:200])


def _s3_env(monkeypatch, options):
    """Credentials in the environment, as fsspec (s3fs/botocore) reads them."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", options["aws_endpoint_url"])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def test_a_file_uri_is_the_same_image_and_key_as_its_path(hog, mnist, tmp_path):
    images, _ = mnist
    png = tmp_path / "digit.png"
    Image.fromarray(images[3]).save(png)
    uri = png.as_uri()
    assert is_image_uri(uri) and not is_image_uri(str(png))
    np.testing.assert_allclose(hog.encode([uri]), hog.encode([str(png)]), atol=1e-6)
    assert image_content_digest(uri) == file_digest(png) == hog.content_digest(str(png))


def test_images_in_a_bucket_are_encoded_and_cached_by_content(
    hog, mnist, tmp_path, s3_bucket, monkeypatch
):
    import fsspec

    bucket, options = s3_bucket
    _s3_env(monkeypatch, options)
    images, _ = mnist
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    local, remote = [], []
    for i in range(4):
        png = tmp_path / f"{i}.png"
        Image.fromarray(images[i]).save(png)
        fs.put_file(str(png), f"{bucket[5:]}/images/{i}.png")
        local.append(str(png))
        remote.append(f"{bucket}/images/{i}.png")
    np.testing.assert_allclose(hog.encode(remote), hog.encode(local), atol=1e-6)
    cache = ShardedEmbeddingCache(f"{bucket}/cache")
    cache.encode(hog, local)  # keyed by content: the same files behind URIs are hits
    cache.encode(hog, remote)
    assert cache.stats.hits == 4 and cache.stats.misses == 4


def test_a_missing_object_is_refused_with_its_uri(hog, s3_bucket, monkeypatch):
    bucket, options = s3_bucket
    _s3_env(monkeypatch, options)
    with pytest.raises(EmbeddingInputError, match=f"{bucket}/nope.png"):
        hog.encode([f"{bucket}/nope.png"])
