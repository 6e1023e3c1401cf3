"""Run an exported sentence-transformers model on OpenVINO's CPU plugin (float32 or bfloat16).

OpenVINO reads the float32 ONNX model that :mod:`embeddings.onnx_model` exports (one export,
cached, shared by both backends) with its own runtime (``Core.read_model``: no conversion
tool, so none of its usage telemetry) and compiles it for this CPU. In ``"bfloat16"`` the
matrix products run in bfloat16 on the CPU's AMX or AVX512-BF16 units, with float32
accumulation, while layer norms, softmax and the pooling stay in float32: on MiniLM-L6 the
vectors keep a cosine of 0.9999 or more to float32 (measured in
``benchmarks/embeddings_speed.py``), unlike a per-batch int8 quantization. One batch runs at a
time on all the cores given (one stream, no thread pinning, so the cores can be shared).

>>> OPENVINO_PRECISIONS
('float32', 'bfloat16')
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from embeddings.encoder import EncoderLoadError

logger = logging.getLogger(__name__)

OPENVINO_PRECISIONS = ("float32", "bfloat16")
_HINTS = {"float32": "f32", "bfloat16": "bf16"}


def _core() -> Any:
    try:
        import openvino
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise EncoderLoadError(
            "backend='openvino' needs the OpenVINO runtime (PyPI 'openvino'); install it, or "
            "use backend='onnx' or 'torch'."
        ) from exc
    return openvino.Core()


def native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AMX or AVX512-BF16), as OpenVINO sees it.

    >>> isinstance(native_bfloat16(), bool)
    True
    """
    return "BF16" in _core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def _no_bfloat16(actual: str) -> EncoderLoadError:
    return EncoderLoadError(
        "precision='bfloat16' with backend='openvino' needs a CPU with native bfloat16 (AMX "
        f"or AVX512-BF16); this one runs {actual}. Use precision='float32' or 'auto'."
    )


class OpenVinoSession:
    """An OpenVINO model compiled for the CPU: feature dicts in, float32 vectors out.

    Parameters
    ----------
    path : Path
        An ONNX (or OpenVINO IR) model whose inputs are the tokenizer's features and whose
        first output is the ``(batch, dim)`` sentence embedding.
    precision : {"float32", "bfloat16"}
        The inference precision; ``"bfloat16"`` needs a CPU with native bfloat16.
    threads : int or None
        Threads of the one inference stream; None: OpenVINO's choice (the cores it may use).

    Raises
    ------
    EncoderLoadError
        The model could not be read or compiled, or bfloat16 was asked of a CPU without it.
    """

    #: Batches in flight at once (one stream; its threads share each batch).
    concurrency = 1

    def __init__(
        self,
        path: Path,
        *,
        precision: Literal["float32", "bfloat16"] = "float32",
        threads: int | None = None,
    ) -> None:
        core = _core()
        if precision == "bfloat16" and "BF16" not in core.get_property(
            "CPU", "OPTIMIZATION_CAPABILITIES"
        ):
            raise _no_bfloat16("float32")
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": _HINTS[precision],
            "PERFORMANCE_HINT": "LATENCY",
            "ENABLE_CPU_PINNING": False,  # the cores are often shared (LF workers, Dask)
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        try:
            compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        except Exception as exc:  # openvino raises its own untyped errors
            raise EncoderLoadError(
                f"OpenVINO could not compile {str(path)!r} ({exc}); delete that folder to "
                "re-export it, or use backend='onnx'."
            ) from exc
        actual = str(compiled.get_property("INFERENCE_PRECISION_HINT"))
        if precision == "bfloat16" and "bf16" not in actual and "bfloat16" not in actual:
            raise _no_bfloat16(actual)
        self.precision = precision
        self.inputs = [port.get_any_name() for port in compiled.inputs]
        self._compiled = compiled
        self._request = compiled.create_infer_request()
        self._lock = threading.Lock()  # one request: calls from several threads take turns

    def run(self, features: dict[str, Any]) -> Any:
        """The model's output ``(batch, dim)`` float32 for one batch of features (numpy)."""
        import numpy as np

        feed = {name: np.asarray(features[name], dtype=np.int64) for name in self.inputs}
        with self._lock:
            result = self._request.infer(feed)
            return np.array(result[0], dtype=np.float32)  # a copy: the request reuses its buffer

    def run_many(self, batches: Iterable[dict[str, Any]]) -> Iterator[Any]:
        """Outputs of each batch, in order, one batch at a time."""
        yield from map(self.run, batches)

    def close(self) -> None:
        """Nothing to stop (kept for the same shape as the ONNX Runtime session)."""
