"""The shape every encoder has, the errors encoders raise, and helpers they share.

An encoder turns a sequence of items (texts, images, vectors) into a float32 matrix of shape
``(n_items, encoder.dim)`` with L2-normalized rows, so that the inner product of two rows is
their cosine similarity. ``encoder.id`` names the model *and* its weights (or fitted state)
and normalization; :class:`~embeddings.cache.EmbeddingCache` keys vectors by it, so two
encoders with the same id must give the same vectors.

>>> import numpy as np
>>> unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]]))
array([[0.6, 0.8],
       [0. , 0. ]], dtype=float32)
>>> content_digest("hello").hex()[:16]
'306f89347195cc05'
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from embeddings.errors import EmbeddingsError

if TYPE_CHECKING:
    import numpy as np


class EmbeddingInputError(EmbeddingsError, ValueError):
    """Items or vectors handed to an encoder, the cache or an index cannot be used as given."""


class EncoderLoadError(EmbeddingsError, OSError):
    """A model could not be loaded from the name or path given."""


class EncoderNotFittedError(EmbeddingsError, AttributeError):
    """An encoder that must be fitted (e.g.

    :class:`~embeddings.image.HogPcaImageEncoder`) was used before ``fit``.
    """


@runtime_checkable
class Encoder(Protocol):
    """What every encoder provides.

    Attributes
    ----------
    id : str
        Stable name of the model, its weights (or fitted state) and its normalization. Equal
        ids promise equal vectors; the embedding cache keys by it.
    dim : int
        Width of the vectors ``encode`` returns.

    Methods
    -------
    encode(items, *, batch_size=..., progress=None) -> np.ndarray
        float32 array ``(len(items), dim)`` with L2-normalized rows.

    Encoders may also define ``content_digest(item) -> bytes`` (a sha256 digest of what the
    item *is*: the text, the pixels, the file's bytes); the cache uses it when present and
    :func:`content_digest` otherwise.
    """

    @property
    def id(self) -> str:
        """A stable id of the encoder and its settings (cache key)."""
        ...

    @property
    def dim(self) -> int:
        """The length of each vector."""
        ...

    def encode(
        self, items: Any, *, batch_size: int = ..., progress: bool | None = None
    ) -> np.ndarray:
        """Encode ``items`` as float32 ``(n, dim)`` unit vectors."""
        ...


def unit_rows(matrix: Any, norms: np.ndarray | None = None) -> np.ndarray:
    """Return ``matrix`` as float32 with each row scaled to unit L2 norm (zero rows stay zero).

    ``norms``: the rows' norms if already known (:func:`row_norms`).

    >>> unit_rows([[1.0, 1.0]]).round(4)
    array([[0.7071, 0.7071]], dtype=float32)
    """
    import numpy as np

    out = np.array(matrix, dtype=np.float32, copy=True, ndmin=2)
    norms = row_norms(out) if norms is None else norms
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(norms > 0, 1.0 / norms, 1.0).astype(np.float32)
    # one multiply per value: float32 division, or a (n, dim) temporary, costs 10x more
    np.multiply(out, scale[:, None], out=out)
    return out


def row_norms(matrix: np.ndarray) -> np.ndarray:
    """The L2 norm of each row of a 2-D float array, as float64 ``(n,)``.

    One float32 dot product per row (no ``(n, dim)`` temporary); rows whose sum of squares
    over- or underflows float32 (values beyond about 1e19 or below 1e-19) are redone in
    float64, so the result is exact to float32 precision for any finite row, ``inf``/``nan``
    for rows holding ``inf``/``nan``, and 0 only for all-zero rows.

    >>> import numpy as np
    >>> rows = np.array([[3, 4], [1e30, 1e30], [1e-30, 0], [0, 0]], dtype=np.float32)
    >>> norms = row_norms(rows)
    >>> bool(np.allclose(norms, [5, 2**0.5 * 1e30, 1e-30, 0], rtol=1e-6)), bool(norms[3] == 0)
    (True, True)
    """
    import numpy as np

    if matrix.dtype != np.float32:
        return np.sqrt(np.einsum("ij,ij->i", matrix, matrix, dtype=np.float64))
    squares = np.einsum("ij,ij->i", matrix, matrix)
    norms = np.sqrt(squares, dtype=np.float64)
    odd = ~np.isfinite(norms) | (norms < 1e-18)
    if odd.any():
        rows = matrix[odd].astype(np.float64)
        norms[odd] = np.sqrt(np.einsum("ij,ij->i", rows, rows))
        still = odd.copy()
        still[odd] = ~np.isfinite(norms[odd])  # overflow even in float64: scale first
        if still.any():
            big = np.abs(matrix[still].astype(np.float64)).max(axis=1)
            with np.errstate(invalid="ignore"):
                scaled = matrix[still].astype(np.float64) / big[:, None]
                norms[still] = big * np.sqrt(np.einsum("ij,ij->i", scaled, scaled))
    return norms


def as_item_list(items: Any, *, what: str) -> list[Any]:
    """Turn a list, tuple, numpy array, polars/pandas Series or pyarrow array into a list.

    A single string or bytes object is refused (it would be read as a sequence of
    characters); wrap it in a list.

    >>> as_item_list(("a", "b"), what="texts")
    ['a', 'b']
    """
    if isinstance(items, str | bytes):
        raise EmbeddingInputError(
            f"{what}: expected a sequence of items, got a single {type(items).__name__} "
            f"{_preview(items)}; wrap it in a list: [{_preview(items)}]."
        )
    import numpy as np

    if isinstance(items, np.ndarray):
        # 1-D: scalars or objects (texts, paths); more dims: one item per leading index (images)
        return items.tolist() if items.ndim == 1 else list(items)
    for method in ("to_pylist", "to_list"):  # pyarrow arrays; polars and pandas Series
        convert = getattr(items, method, None)
        if callable(convert):
            return list(convert())
    if isinstance(items, Sequence) or (hasattr(items, "__iter__") and not hasattr(items, "keys")):
        return list(items)
    raise EmbeddingInputError(
        f"{what}: expected a sequence (list, numpy array, polars or pandas Series), "
        f"got {type(items).__name__}."
    )


def check_batch_size(batch_size: Any) -> int:
    """Validate a ``batch_size`` argument (a positive int)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise EmbeddingInputError(
            f"batch_size must be a positive integer, got {batch_size!r}; 32 to 256 suits most "
            "models on CPU."
        )
    return batch_size


def content_digest(item: Any) -> bytes:
    """sha256 digest (32 bytes) of an item's content, used as the embedding cache key.

    Strings hash as UTF-8 text, ``bytes`` as themselves, numpy arrays by dtype, shape and
    data, PIL images by mode, size and pixels, ``pathlib.Path`` objects by the file's bytes
    (so a renamed file still hits the cache), None as a fixed marker. Each kind has its own
    prefix, so the text ``"abc"`` and the bytes ``b"abc"`` differ.

    >>> content_digest("abc") == content_digest("abc")
    True
    >>> content_digest("abc") == content_digest(b"abc")
    False
    """
    h = hashlib.sha256()
    if item is None:
        h.update(b"none\0")
    elif isinstance(item, str):
        h.update(b"text\0")
        h.update(item.encode("utf-8", "surrogatepass"))
    elif isinstance(item, bytes | bytearray | memoryview):
        h.update(b"bytes\0")
        h.update(bytes(item))
    elif isinstance(item, os.PathLike):
        return file_digest(item)
    elif hasattr(item, "dtype") and hasattr(item, "shape") and hasattr(item, "tobytes"):
        import numpy as np

        arr = np.ascontiguousarray(item)
        h.update(f"array\0{arr.dtype.str}\0{arr.shape}\0".encode())
        h.update(arr.tobytes())
    elif hasattr(item, "mode") and hasattr(item, "size") and hasattr(item, "tobytes"):
        h.update(f"image\0{item.mode}\0{item.size}\0".encode())
        h.update(item.tobytes())
    else:
        raise EmbeddingInputError(
            f"cannot compute a content hash of a {type(item).__name__} ({_preview(item)}); "
            "items must be str, bytes, numpy arrays, PIL images or pathlib.Path objects."
        )
    return h.digest()


def file_digest(path: str | os.PathLike[str]) -> bytes:
    """sha256 digest of a file's bytes (with the ``file`` prefix :func:`content_digest` uses)."""
    h = hashlib.sha256(b"file\0")
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError as exc:
        raise EmbeddingInputError(
            f"cannot read {str(path)!r} to hash its content ({exc.strerror or exc}); check the "
            "path exists and is readable."
        ) from exc
    return h.digest()


_FOLDER_HASHES: dict[tuple[Any, ...], str] = {}


def hash_model_folder(folder: str | os.PathLike[str]) -> str:
    """Hex sha256 over every file of a saved model folder (relative paths and bytes).

    Hidden files and READMEs are skipped (they do not change the model's output). Results
    are memoized per process by path, size and modification time, so asking twice is free.
    Used for encoder ids: a model on disk gets its id without being loaded.
    """
    root = Path(folder).resolve()
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
        and not p.name.lower().startswith("readme")
    )
    stamp = tuple((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    key = (str(root), stamp)
    if key not in _FOLDER_HASHES:
        h = hashlib.sha256()
        for path in files:
            h.update(str(path.relative_to(root).as_posix()).encode() + b"\0")
            h.update(file_digest(path))
        _FOLDER_HASHES[key] = h.hexdigest()
    return _FOLDER_HASHES[key]


def hash_state_dict(model: Any) -> str:
    """Hex sha256 over every tensor of a loaded torch model (names, dtypes, shapes, bytes)."""
    import torch

    h = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        data = tensor.detach().to("cpu").contiguous()
        h.update(f"{key}\0{data.dtype}\0{tuple(data.shape)}\0".encode())
        h.update(data.view(-1).view(dtype=torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _preview(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
