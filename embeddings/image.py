"""Image encoders: CLIP-style models by name or path, and a weight-free HOG + PCA encoder.

Image items are numpy arrays ``(H, W)`` or ``(H, W, C)`` with C in {1, 3, 4} (uint8 or any
integer dtype in 0..255, or floats in [0, 1]), PIL images, file paths (str or Path), URIs
(``s3://``, ``gs://``, ``az://``, ``https://``, ``file://``; read through fsspec, with the
credentials of the environment or of fsspec's configuration) or the encoded bytes of an
image file. A 3-D array ``(N, H, W)`` or 4-D ``(N, H, W, C)`` is read as
N images.

:class:`ClipImageEncoder` needs model weights (a Hugging Face name while online, or a saved
folder). :class:`HogPcaImageEncoder` needs none: it describes each image by a colour
thumbnail and histograms of oriented gradients, and projects them on principal axes fitted
to your images, which gives useful nearest neighbours offline.

>>> from sklearn.datasets import load_digits
>>> digits = load_digits().images[:200] / 16          # 8 x 8 float images in [0, 1]
>>> encoder = HogPcaImageEncoder(n_components=16, image_size=16).fit(digits)
>>> encoder.encode(digits[:3]).shape
(3, 16)
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embeddings._progress import progress_bar, show_progress
from embeddings.encoder import (
    EmbeddingInputError,
    EncoderLoadError,
    EncoderNotFittedError,
    as_item_list,
    check_batch_size,
    content_digest,
    file_digest,
    hash_model_folder,
    hash_state_dict,
    unit_rows,
)

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)


# -- decoding ------------------------------------------------------------------------------
_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]+://")


def is_image_uri(item: Any) -> bool:
    """Whether ``item`` is a URI string (``s3://...``, ``https://...``, ``file://...``).

    >>> is_image_uri("s3://bucket/cat.png"), is_image_uri("cat.png")
    (True, False)
    """
    return isinstance(item, str) and bool(_URI.match(item))


def read_image_bytes(uri: str, *, storage_options: dict[str, Any] | None = None) -> bytes:
    """The bytes of the image file at ``uri``, through fsspec.

    ``storage_options`` are the fsspec filesystem's keyword arguments; without them fsspec
    takes credentials from the environment (``AWS_ACCESS_KEY_ID``...) or its configuration.

    Raises
    ------
    EmbeddingInputError
        The scheme needs a package that is not installed (named), or the file cannot be read.
    """
    import fsspec

    try:
        with fsspec.open(uri, "rb", **(storage_options or {})) as fh:
            return fh.read()
    except ImportError as exc:
        raise EmbeddingInputError(
            f"reading the image {uri!r} needs an fsspec package for its scheme ({exc}); "
            "install it (s3fs for s3://, gcsfs for gs://, adlfs for az://, aiohttp for https://)."
        ) from exc
    except (OSError, ValueError) as exc:
        raise EmbeddingInputError(
            f"the image {uri!r} cannot be read ({type(exc).__name__}: {exc}); check the URI "
            "and the credentials."
        ) from exc


def _image_list(items: Any, what: str) -> list[Any]:
    import numpy as np

    if isinstance(items, np.ndarray) and items.ndim in (3, 4):
        return list(items)
    return as_item_list(items, what=what)


def to_pil(item: Any, *, index: int = 0) -> Any:
    """Decode one image item into an RGB ``PIL.Image`` (see the module docstring for kinds)."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    if isinstance(item, Image.Image):
        return item.convert("RGB")
    if isinstance(item, str | os.PathLike | bytes | bytearray):
        data = read_image_bytes(item) if is_image_uri(item) else item
        source = io.BytesIO(bytes(data)) if isinstance(data, bytes | bytearray) else data
        try:
            with Image.open(source) as img:
                return img.convert("RGB")
        except (OSError, UnidentifiedImageError) as exc:
            shown = f"{len(item)} bytes" if isinstance(item, bytes | bytearray) else repr(item)
            raise EmbeddingInputError(
                f"image {index} ({shown}) could not be read as an image file ({exc}); pass an "
                "existing PNG/JPEG/... path, its bytes, a numpy array or a PIL image."
            ) from exc
    if isinstance(item, np.ndarray):
        return Image.fromarray(_as_uint8(item, index)).convert("RGB")
    raise EmbeddingInputError(
        f"image {index} is a {type(item).__name__}; images must be numpy arrays (H, W) or "
        "(H, W, C), PIL images, file paths or encoded image bytes."
    )


def _as_uint8(arr: np.ndarray, index: int) -> np.ndarray:
    import numpy as np

    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise EmbeddingInputError(
            f"image {index} has shape {arr.shape}; arrays must be (H, W) or (H, W, C) with C "
            "in {1, 3, 4}. To encode one image, wrap it in a list."
        )
    if arr.size == 0:
        raise EmbeddingInputError(f"image {index} is empty (shape {arr.shape}).")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
            raise EmbeddingInputError(
                f"image {index} is a float array with values in [{np.nanmin(arr):.3g}, "
                f"{np.nanmax(arr):.3g}]; float images must be finite and in [0, 1] (divide "
                "uint8 pixel values by 255)."
            )
        return np.rint(arr * 255).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer):
        if arr.dtype != np.uint8 and (arr.min() < 0 or arr.max() > 255):
            raise EmbeddingInputError(
                f"image {index} has {arr.dtype} values in [{arr.min()}, {arr.max()}]; integer "
                "images must lie in 0..255 (rescale 16-bit images first)."
            )
        return arr.astype(np.uint8, copy=False)
    raise EmbeddingInputError(
        f"image {index} has dtype {arr.dtype}; use uint8 (0..255) or float (0..1) pixels."
    )


def image_content_digest(item: Any) -> bytes:
    """Cache key of an image item: a path (str or Path) or a URI hashes the file's bytes.

    A local file and the same file behind a URI get the same key.
    """
    if is_image_uri(item):
        return hashlib.sha256(b"file\0" + read_image_bytes(item)).digest()
    if isinstance(item, str):
        return file_digest(item)
    return content_digest(item)


# -- CLIP-style models ---------------------------------------------------------------------
class ClipImageEncoder:
    """Encode images with a CLIP-style model (CLIP, SigLIP...) loaded by name or folder.

    Parameters
    ----------
    model : str or Path
        A Hugging Face model name (e.g. ``"openai/clip-vit-base-patch32"``, downloaded by
        transformers while online) or a folder saved with ``save_pretrained`` holding the
        model and its image processor.
    revision : str or None
        Hub revision (branch, tag or commit) for a model name.
    device : str or None
        ``"cpu"``, ``"cuda"``...; None uses CUDA when available, else the CPU.

    The model needs ``get_image_features`` (``CLIPModel``, ``SiglipModel``...) or outputs
    ``image_embeds`` (``CLIPVisionModelWithProjection``). It loads once, on first use.
    ``id`` is ``"clip:<name>:<sha256[:16]>:l2"`` over the folder's files (model and
    processor config), or ``"clip:<name>:<tensors sha256[:16]>:<processor sha256[:8]>:l2"``
    for a hub name.
    """

    def __init__(
        self,
        model: str | Path,
        *,
        revision: str | None = None,
        device: str | None = None,
    ) -> None:
        if not isinstance(model, str | Path) or not str(model):
            raise EmbeddingInputError(
                f"model must be a model name or a folder path, got {model!r}; for an encoder "
                "that needs no downloaded weights use HogPcaImageEncoder."
            )
        self.model = model
        self.revision = revision
        self.device = device
        self._loaded: tuple[Any, Any, str] | None = None
        self._id: str | None = None
        self._dim: int | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ClipImageEncoder(model={self.model!r})"

    def _load(self) -> tuple[Any, Any, str]:
        with self._lock:
            if self._loaded is not None:
                return self._loaded
            import torch
            from transformers import AutoImageProcessor, AutoModel

            source = str(self.model)
            device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            try:
                processor = AutoImageProcessor.from_pretrained(source, revision=self.revision)
                model = AutoModel.from_pretrained(source, revision=self.revision)
            except (OSError, ValueError, KeyError) as exc:
                raise EncoderLoadError(
                    f"could not load a CLIP-style model and image processor from {source!r} "
                    f"({exc}); pass a folder saved with save_pretrained (model + processor) or "
                    "a Hugging Face model name while online."
                ) from exc
            if (
                not hasattr(model, "get_image_features")
                and "WithProjection" not in type(model).__name__
            ):
                raise EncoderLoadError(
                    f"{source!r} loads as {type(model).__name__}, which has no image "
                    "embedding head; use a CLIP-style model (CLIPModel, SiglipModel, "
                    "CLIPVisionModelWithProjection)."
                )
            model.eval().to(device)
            self._loaded = (model, processor, device)
            logger.info("loaded image model %s on %s", source, device)
            return self._loaded

    @property
    def name(self) -> str:
        """The hub name, or the folder's name."""
        path = Path(self.model)
        return path.name if path.exists() else str(self.model)

    @property
    def dim(self) -> int:
        """Width of the vectors (loads the model)."""
        if self._dim is None:
            model, _, _ = self._load()
            cfg = model.config
            dim = getattr(cfg, "projection_dim", None)
            if dim is None:  # e.g. SigLIP: the vision tower's width
                dim = getattr(getattr(cfg, "vision_config", cfg), "hidden_size", None)
            if dim is None:
                dim = int(self._embed([_blank_image()])[0].shape[0])
            self._dim = int(dim)
        return self._dim

    @property
    def id(self) -> str:
        """Stable id.

        model name and sha256 of its files (a folder: known without loading), or of its
        tensors and image processor config (a hub name).
        """
        if self._id is None:
            folder = Path(self.model)
            if folder.is_dir():  # weights and processor config are files: no need to load
                self._id = f"clip:{self.name}:{hash_model_folder(folder)[:16]}:l2"
            else:
                model, processor, _ = self._load()
                proc = json.dumps(processor.to_dict(), sort_keys=True, default=str)
                proc_hash = hashlib.sha256(proc.encode()).hexdigest()[:8]
                self._id = f"clip:{self.name}:{hash_state_dict(model)[:16]}:{proc_hash}:l2"
        return self._id

    def content_digest(self, item: Any) -> bytes:
        """Cache key of an image item (a path hashes the file's bytes)."""
        return image_content_digest(item)

    def _pixels(self, images: list[Any], start: int = 0) -> Any:
        """Decode and preprocess a batch into a pixel tensor (pinned on a GPU), on the CPU."""
        _, processor, device = self._load()
        pil = [to_pil(im, index=start + i) for i, im in enumerate(images)]
        pixel_values = processor(images=pil, return_tensors="pt")["pixel_values"]
        return pixel_values.pin_memory() if device.startswith("cuda") else pixel_values

    def _embed(self, images: list[Any], *, pixels: Any = None) -> np.ndarray:
        import torch

        model, _, device = self._load()
        if pixels is None:
            pixels = self._pixels(images)
        pixel_values = pixels.to(device, non_blocking=True)
        with torch.inference_mode():
            if hasattr(model, "get_image_features"):
                out = model.get_image_features(pixel_values=pixel_values)
            else:
                out = model(pixel_values=pixel_values)
        if not isinstance(out, torch.Tensor):  # transformers >= 5 returns an output object
            for field in ("image_embeds", "pooler_output"):
                value = getattr(out, field, None)
                if isinstance(value, torch.Tensor):
                    out = value
                    break
        return out.detach().to("cpu", torch.float32).numpy()

    def default_batch_size(self) -> int:
        """Images per forward pass when ``encode`` is given none.

        32 on CPU; on a GPU 64 below 12 GiB of memory, 128 below 40 GiB, else 256 (loads the
        model).
        """
        _, _, device = self._load()
        if not device.startswith("cuda"):
            return 32
        import torch

        gib = torch.cuda.get_device_properties(torch.device(device)).total_memory / 2**30
        return 64 if gib < 12 else 128 if gib < 40 else 256

    def encode(self, items: Any, *, batch_size: int | None = None, progress: bool | None = None):
        """Encode images into a float32 array ``(n_images, dim)`` of unit-norm rows.

        The next batch is decoded and preprocessed in a background thread while the model
        runs on the current one (on a GPU, into pinned memory copied without blocking).

        Parameters
        ----------
        items : sequence of images
            See the module docstring for the accepted kinds.
        batch_size : int or None
            Images per forward pass; None: :meth:`default_batch_size` (for the device).
        progress : bool or None
            Show a progress bar; None shows one only for long work (5,000 images or more).
        """
        from concurrent.futures import ThreadPoolExecutor

        import numpy as np

        if batch_size is not None:
            batch_size = check_batch_size(batch_size)
        images = _image_list(items, "ClipImageEncoder.encode")
        dim = self.dim
        batch_size = batch_size or self.default_batch_size()
        starts = list(range(0, len(images), batch_size))
        out = np.empty((len(images), dim), dtype=np.float32)
        with (
            progress_bar(
                total=len(images), desc="CLIP", enabled=show_progress(progress, len(images))
            ) as bar,
            ThreadPoolExecutor(max_workers=1) as ahead,
        ):
            pending = None
            for k, start in enumerate(starts):
                chunk = images[start : start + batch_size]
                pixels = pending.result() if pending is not None else self._pixels(chunk, start)
                if k + 1 < len(starts):  # prepare the next batch while this one runs
                    nxt = starts[k + 1]
                    pending = ahead.submit(self._pixels, images[nxt : nxt + batch_size], nxt)
                out[start : start + len(chunk)] = self._embed(chunk, pixels=pixels)
                bar.update(len(chunk))
        return unit_rows(out)


def _top_eigenpairs(cov: np.ndarray, k: int, *, n_iter: int = 7) -> tuple[np.ndarray, Any]:
    """Top-``k`` eigenpairs of a symmetric PSD matrix by subspace iteration (fixed start).

    Much faster than a full ``eigh`` for k << n_features; the start is drawn from a local
    generator seeded with 0, so the result is deterministic. Returns (values, components
    ``(k, n_features)``), values descending.
    """
    import numpy as np

    f = cov.shape[0]
    width = min(f, k + max(10, k // 2))
    basis = np.random.default_rng(0).standard_normal((f, width))
    for _ in range(n_iter):
        basis, _ = np.linalg.qr(cov @ basis)
    values, small = np.linalg.eigh(basis.T @ cov @ basis)
    order = np.argsort(values)[::-1][:k]
    return values[order], (basis @ small[:, order]).T


def _fix_signs(components: np.ndarray) -> np.ndarray:
    """Flip each axis so that its largest loading is positive (a canonical sign)."""
    import numpy as np

    rows = np.arange(len(components))
    signs = np.sign(components[rows, np.abs(components).argmax(axis=1)])
    return components * np.where(signs == 0, 1.0, signs)[:, None]


def _blank_image() -> Any:
    from PIL import Image

    return Image.new("RGB", (32, 32))


# -- weight-free encoder -------------------------------------------------------------------
_HOG_FORMAT = "enrich-hog-pca-v1"


class HogPcaImageEncoder:
    """Weight-free image encoder: colour thumbnail + HOG features, projected by a fitted PCA.

    Each image is resized to ``image_size`` x ``image_size``. Its features are (a) a colour
    thumbnail at half that size, centred and unit-normalized, weighted by ``pixel_weight``;
    (b) histograms of oriented gradients over ``cell_size`` cells, normalized in 2 x 2
    blocks (as in Dalal & Triggs), weighted by ``1 - pixel_weight``. ``fit`` learns the
    principal axes of these features on your images (exactly, from the images' Gram
    matrix, for up to ``n_features`` images; beyond, by subspace iteration from a fixed
    start), so refits on the same images give the same encoder; ``encode`` projects on the
    first ``n_components`` axes and L2-normalizes.

    Parameters
    ----------
    n_components : int
        Output dimension.
    image_size : int
        Side images are resized to (a multiple of ``cell_size`` and of 2).
    cell_size : int
        Side of a HOG cell in pixels.
    n_bins : int
        Orientation bins per cell (unsigned gradients, 0..180 degrees).
    pixel_weight : float
        Weight of the thumbnail against the gradient histograms, in [0, 1].

    Fitted attributes: ``mean_`` (n_features,), ``components_`` (n_components, n_features),
    ``explained_variance_`` (n_components,). ``save``/``load`` use a ``.npz`` file without
    pickle; the fitted arrays are part of ``id``.
    """

    def __init__(
        self,
        *,
        n_components: int = 64,
        image_size: int = 32,
        cell_size: int = 4,
        n_bins: int = 9,
        pixel_weight: float = 0.3,
    ) -> None:
        self.n_components = n_components
        self.image_size = image_size
        self.cell_size = cell_size
        self.n_bins = n_bins
        self.pixel_weight = pixel_weight

    def __repr__(self) -> str:
        return (
            f"HogPcaImageEncoder(n_components={self.n_components}, image_size="
            f"{self.image_size}, cell_size={self.cell_size}, n_bins={self.n_bins}, "
            f"pixel_weight={self.pixel_weight})"
        )

    def get_params(self) -> dict[str, Any]:
        """The constructor's keyword arguments."""
        return {
            "n_components": self.n_components,
            "image_size": self.image_size,
            "cell_size": self.cell_size,
            "n_bins": self.n_bins,
            "pixel_weight": self.pixel_weight,
        }

    def _check_params(self) -> None:
        def positive_int(name: str, minimum: int = 1) -> int:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise EmbeddingInputError(f"{name} must be an integer >= {minimum}, got {value!r}.")
            return value

        positive_int("n_components")
        size = positive_int("image_size", 4)
        cell = positive_int("cell_size", 2)
        positive_int("n_bins", 2)
        if size % cell or size % 2 or size // cell < 2:
            raise EmbeddingInputError(
                f"image_size={size} must be even and a multiple of cell_size={cell} with at "
                "least 2 cells per side (e.g. image_size=32, cell_size=4)."
            )
        w = self.pixel_weight
        if isinstance(w, bool) or not isinstance(w, int | float) or not 0 <= w <= 1:
            raise EmbeddingInputError(f"pixel_weight must be a number in [0, 1], got {w!r}.")

    @property
    def n_features(self) -> int:
        """Width of the feature vector before projection."""
        s, c = self.image_size, self.cell_size
        cells = s // c
        return (s // 2) ** 2 * 3 + (cells - 1) ** 2 * 4 * self.n_bins

    def _arrays(self, images: list[Any], start: int) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np
        from PIL import Image

        s = self.image_size
        rgb = np.empty((len(images), s, s, 3), dtype=np.float32)
        for i, item in enumerate(images):
            img = to_pil(item, index=start + i).resize((s, s), Image.Resampling.BILINEAR)
            rgb[i] = np.asarray(img, dtype=np.float32)
        rgb /= 255.0
        gray = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        return rgb, gray

    def features(self, items: Any) -> np.ndarray:
        """Unprojected features, float32 ``(n_images, n_features)``."""
        self._check_params()
        images = _image_list(items, "HogPcaImageEncoder")
        return self._features(images, 0)

    def _features(self, images: list[Any], start: int) -> np.ndarray:
        import numpy as np

        n, s, c, nb = len(images), self.image_size, self.cell_size, self.n_bins
        rgb, gray = self._arrays(images, start)
        # (a) colour thumbnail, centred and unit-normalized per image
        thumb = rgb.reshape(n, s // 2, 2, s // 2, 2, 3).mean(axis=(2, 4)).reshape(n, -1)
        thumb -= thumb.mean(axis=1, keepdims=True)
        thumb /= np.linalg.norm(thumb, axis=1, keepdims=True) + 1e-6
        # (b) HOG: unsigned orientations, linear interpolation between neighbouring bins
        gy, gx = np.gradient(gray, axis=(1, 2))
        mag = np.hypot(gx, gy)
        pos = np.mod(np.arctan2(gy, gx), np.pi) / np.pi * nb - 0.5
        lo = np.floor(pos)
        frac = (pos - lo).astype(np.float32)
        lo = lo.astype(np.int64) % nb
        hi = (lo + 1) % nb
        cells = s // c
        hist = np.zeros((n, cells, cells, nb), dtype=np.float32)
        for b in range(nb):
            weight = mag * ((lo == b) * (1 - frac) + (hi == b) * frac)
            hist[..., b] = weight.reshape(n, cells, c, cells, c).sum(axis=(2, 4))
        blocks = np.concatenate(
            [hist[:, :-1, :-1], hist[:, 1:, :-1], hist[:, :-1, 1:], hist[:, 1:, 1:]], axis=-1
        )
        blocks /= np.linalg.norm(blocks, axis=-1, keepdims=True) + 1e-3
        np.minimum(blocks, 0.2, out=blocks)  # L2-Hys clipping
        blocks /= np.linalg.norm(blocks, axis=-1, keepdims=True) + 1e-3
        hog = blocks.reshape(n, -1)
        hog /= np.linalg.norm(hog, axis=1, keepdims=True) + 1e-6
        w = float(self.pixel_weight)
        return np.concatenate([w * thumb, (1.0 - w) * hog], axis=1).astype(np.float32)

    def fit(self, items: Any, *, batch_size: int = 1024, progress: bool | None = None):
        """Learn the principal axes of the features of ``items``; returns ``self``.

        Needs at least ``n_components + 1`` images. Memory stays bounded: beyond
        ``n_features`` images, features are computed ``batch_size`` images at a time and only
        their covariance is kept.
        """
        import numpy as np

        self._check_params()
        batch_size = check_batch_size(batch_size)
        images = _image_list(items, "HogPcaImageEncoder.fit")
        n, k, f = len(images), self.n_components, self.n_features
        if n <= k or k > f:
            raise EmbeddingInputError(
                f"HogPcaImageEncoder.fit got {n} images for n_components={k} (features: {f}); "
                f"it needs more than n_components images and n_components <= {f}: pass more "
                "images or lower n_components."
            )
        with progress_bar(total=n, desc="HOG features", enabled=show_progress(progress, n)) as bar:
            if n <= f:  # fewer images than features: exact SVD of the (small) feature matrix
                parts = []
                for start in range(0, n, batch_size):
                    parts.append(self._features(images[start : start + batch_size], start))
                    bar.update(len(parts[-1]))
                feats = np.concatenate(parts).astype(np.float64)
                mean = feats.mean(axis=0)
                centred = feats - mean
                # eigenvectors of the n x n Gram matrix give the principal axes exactly
                eigval, eigvec = np.linalg.eigh(centred @ centred.T)
                top = np.argsort(eigval)[::-1][:k]
                scale = np.sqrt(np.maximum(eigval[top], 1e-12))
                components = (eigvec[:, top].T @ centred) / scale[:, None]
                values = eigval[top] / max(n - 1, 1)
            else:  # many images: keep only the covariance, then subspace iteration
                total = np.zeros(f, dtype=np.float64)
                gram = np.zeros((f, f), dtype=np.float64)
                for start in range(0, n, batch_size):
                    feats = self._features(images[start : start + batch_size], start)
                    total += feats.sum(axis=0, dtype=np.float64)
                    gram += feats.T @ feats
                    bar.update(len(feats))
                mean = total / n
                cov = (gram - n * np.outer(mean, mean)) / max(n - 1, 1)
                values, components = _top_eigenpairs(cov, k)
        components = _fix_signs(components)
        self.mean_ = mean.astype(np.float32)
        self.components_ = np.ascontiguousarray(components, dtype=np.float32)
        self.explained_variance_ = np.maximum(values, 0.0).astype(np.float32)
        self.n_samples_seen_ = n
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "components_"):
            raise EncoderNotFittedError(
                "HogPcaImageEncoder is not fitted; call .fit(images) on a sample of your "
                "images (a few hundred suffice) or HogPcaImageEncoder.load(path)."
            )

    @property
    def dim(self) -> int:
        """Width of the vectors (``n_components``)."""
        return int(self.n_components)

    @property
    def id(self) -> str:
        """Stable id: feature parameters and sha256 of the fitted mean and components."""
        self._check_fitted()
        h = hashlib.sha256(self.mean_.tobytes())
        h.update(self.components_.tobytes())
        p = self.get_params()
        return (
            f"hog-pca:v1:size={p['image_size']}:cell={p['cell_size']}:bins={p['n_bins']}:"
            f"pixel_weight={p['pixel_weight']}:k={p['n_components']}:"
            f"fit={h.hexdigest()[:16]}:l2"
        )

    def content_digest(self, item: Any) -> bytes:
        """Cache key of an image item (a path hashes the file's bytes)."""
        return image_content_digest(item)

    def encode(self, items: Any, *, batch_size: int = 1024, progress: bool | None = None):
        """Encode images into a float32 array ``(n_images, n_components)`` of unit-norm rows."""
        import numpy as np

        self._check_fitted()
        batch_size = check_batch_size(batch_size)
        images = _image_list(items, "HogPcaImageEncoder.encode")
        out = np.empty((len(images), self.dim), dtype=np.float32)
        with progress_bar(
            total=len(images), desc="HOG-PCA", enabled=show_progress(progress, len(images))
        ) as bar:
            for start in range(0, len(images), batch_size):
                feats = self._features(images[start : start + batch_size], start)
                out[start : start + len(feats)] = (feats - self.mean_) @ self.components_.T
                bar.update(len(feats))
        return unit_rows(out)

    # -- persistence (no pickle) ---------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the parameters and fitted arrays to a ``.npz`` file; returns its path."""
        import numpy as np

        self._check_fitted()
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        config = json.dumps({"format": _HOG_FORMAT, "params": self.get_params(), "id": self.id})
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                config=np.array(config),
                mean=self.mean_,
                components=self.components_,
                explained_variance=self.explained_variance_,
                n_samples_seen=np.array(self.n_samples_seen_),
            )
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> HogPcaImageEncoder:
        """Read an encoder written by :meth:`save` (refuses files it did not write).

        ``path`` may be a URI (``s3://.../hog_pca.npz``), read through fsspec.
        """
        import numpy as np

        try:
            source: Any = io.BytesIO(read_image_bytes(path)) if is_image_uri(path) else path
            with np.load(source, allow_pickle=False) as data:
                config = json.loads(str(data["config"]))
                arrays = {
                    k: data[k]
                    for k in ("mean", "components", "explained_variance", "n_samples_seen")
                }
        except (OSError, KeyError, ValueError) as exc:
            raise EncoderLoadError(
                f"{str(path)!r} is not a HogPcaImageEncoder file ({exc}); write one with "
                "HogPcaImageEncoder(...).fit(images).save(path)."
            ) from exc
        if config.get("format") != _HOG_FORMAT:
            raise EncoderLoadError(
                f"{str(path)!r} has format {config.get('format')!r}, expected {_HOG_FORMAT!r}."
            )
        encoder = cls(**config["params"])
        encoder.mean_ = arrays["mean"].astype(np.float32)
        encoder.components_ = arrays["components"].astype(np.float32)
        encoder.explained_variance_ = arrays["explained_variance"].astype(np.float32)
        encoder.n_samples_seen_ = int(arrays["n_samples_seen"])
        if encoder.components_.shape != (encoder.n_components, encoder.n_features) or (
            encoder.id != config.get("id")
        ):
            raise EncoderLoadError(
                f"{str(path)!r} is corrupt: its arrays do not match the id it was saved with; "
                "refit and save the encoder again."
            )
        return encoder
