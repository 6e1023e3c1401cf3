"""Run an exported sentence-transformers model on OpenVINO's CPU plugin (float32, bfloat16, int8).

OpenVINO reads the float32 ONNX model that :mod:`embeddings.onnx_model` exports (one export,
cached, shared by both backends) with its own runtime (``Core.read_model``: no conversion
tool, so none of its usage telemetry) and compiles it for this CPU. In ``"bfloat16"`` the
matrix products run in bfloat16 on the CPU's AMX or AVX512-BF16 units, with float32
accumulation, while layer norms, softmax and the pooling stay in float32: on MiniLM-L6 the
vectors keep a cosine of 0.9999 or more to float32 (measured in
``benchmarks/embeddings_speed.py``), unlike a per-batch int8 quantization. One batch runs at a
time on all the cores given (one stream, no thread pinning, so the cores can be shared).

``"int8"`` (opt-in, for CPUs without bfloat16: VNNI / AVX-512 int8) is a static post-training
quantization by NNCF (:func:`quantized_model_path`): int8 weights and calibrated int8
activations in the projections, SmoothQuant, with the attention products and the
feed-forward down-projections kept in float32. It is cached in the float32 export's folder.
It is faster, but its vectors move far more than bfloat16's, so ``"auto"`` never picks it.
Measured on MiniLM-L6 against float32 sentence-transformers (``benchmarks/embeddings_speed.py``,
2 shared Sapphire Rapids cores, int8 on AMX): 2.46x (bfloat16 4.08x, float32 1.41x), 2.45x in
CPU seconds on one core, about 2.5x with oneDNN capped to AVX512-VNNI (no AMX); worst cosine
0.973 (YouTube) / 0.987 (SMS) / 0.985 (sentiment); kNN votes unchanged 97.4% / 99.3% /
96.1%, prototype votes 99.4% / 98.6% / 99.3%: below issue 19's bar (cosine >= 0.99 on every
text, >= 99% of votes), like ONNX Runtime's dynamic int8. Unlike that one its activation
scales are fixed, so a text's vector does not depend on the texts batched with it.

>>> OPENVINO_PRECISIONS
('float32', 'bfloat16', 'int8')
>>> texts = calibration_texts()
>>> len(texts), texts == calibration_texts()   # generated, deterministic
(300, True)
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from embeddings.encoder import EncoderLoadError

logger = logging.getLogger(__name__)

OPENVINO_PRECISIONS = ("float32", "bfloat16", "int8")
# int8: the operations left unquantized run in float32, as on a CPU without bfloat16
_HINTS = {"float32": "f32", "bfloat16": "bf16", "int8": "f32"}
#: Bumped whenever the int8 recipe changes (calibration, ignored nodes, SmoothQuant): a new
#: folder.
INT8_RECIPE = "nncf-ptq-v1"
#: SmoothQuant's migration strength for the quantized projections.
INT8_SMOOTHQUANT_ALPHA = 0.5
INT8_CALIBRATION_SIZE = 300

# Parts of generated calibration sentences: chatty and formal, short and long, numbers,
# links, tags, emoji, shouting, questions. Generated so that no evaluation set (the bundled
# YouTube comments, SMS, reviews) leaks into the quantization scales.
_SUBJECTS = (
    "the new phone", "my neighbour", "our team", "this video", "the committee",
    "a small shop in town", "the weather", "your order #4821", "the film", "my little sister",
    "the train to Leeds", "the software update", "this recipe", "the hotel staff", "the app",
    "Dr. Patel", "the quarterly report", "the concert", "his latest song", "the new policy",
)  # fmt: skip
_VERBS = ("was", "is", "will be", "seems", "has been", "looked", "sounds", "felt", "became")
_ADJECTIVES = (
    "amazing", "terrible", "late again", "much better than expected", "ok i guess",
    "completely broken", "really expensive", "surprisingly good", "boring", "a total scam",
    "delayed by two hours", "worth every penny", "confusing", "FREE for members", "sold out",
)  # fmt: skip
_TAILS = (
    "", "!", "!!!", "...", " :)", " lol", " \U0001f602", " - highly recommend.", " - avoid.",
    " Call 0800 555 0199 for details.", " See http://example.org/info?id=77 for more.",
    " Reply STOP to opt out.", " Thanks a lot!", " What do you think?", " 10/10",
    " Visit www.shop-example.com today", " #music #fun", " @jamie check this",
)  # fmt: skip
_QUESTIONS = (
    "What is the capital of {x}?", "Who wrote {x}?", "How many people live in {x}?",
    "When did {x} happen?", "Why is {x} so popular?", "Where can I buy {x}?",
)  # fmt: skip
_THINGS = (
    "Peru", "the Odyssey", "Tokyo", "the first moon landing", "jazz", "cheap tickets",
    "Norway", "the printing press", "football", "a used bike",
)  # fmt: skip


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


def calibration_texts(n: int = INT8_CALIBRATION_SIZE, *, seed: int = 0) -> list[str]:
    """Generated sentences whose activations calibrate the int8 model (no dataset's texts).

    One to five clauses each (a few to about 80 tokens), from fixed word lists, drawn by a
    local ``random.Random(seed)``: the same texts on every machine.
    """
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        parts = []
        for _ in range(rng.choice((1, 1, 1, 2, 3, 5))):
            if rng.random() < 0.2:
                parts.append(rng.choice(_QUESTIONS).format(x=rng.choice(_THINGS)))
                continue
            part = (
                f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_ADJECTIVES)}"
                f"{rng.choice(_TAILS)}"
            )
            if rng.random() < 0.15:
                part = part.upper()
            elif rng.random() < 0.5:
                part = part[0].upper() + part[1:]
            parts.append(part)
        texts.append(" ".join(parts))
    return texts


def _import_nncf() -> Any:
    """Import NNCF with its usage telemetry off (it sends by default unless in CI)."""
    if "nncf" not in sys.modules:
        saved = {key: os.environ.get(key) for key in ("NNCF_CI", "CI")}
        os.environ.update({"NNCF_CI": "1", "CI": "true"})  # read once, at import
        try:
            import nncf  # noqa: F401
        except ImportError as exc:  # pragma: no cover - a dependency of the project
            raise EncoderLoadError(
                "precision='int8' with backend='openvino' needs NNCF (PyPI 'nncf') to "
                "quantize the model; install it, or use precision='float32' or 'auto'."
            ) from exc
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    return sys.modules["nncf"]


def quantized_model_path(onnx_path: Path, *, tokenize: Any) -> Path:
    """The int8 OpenVINO model (IR) of a float32 ONNX export, quantizing it on first use.

    NNCF's post-training quantization (``model_type=TRANSFORMER``: SmoothQuant, per-channel
    int8 weights, calibrated per-tensor int8 activations, fast bias correction) on the
    activations of :func:`calibration_texts`, one text per sample (no padding). The products
    of two activations (attention scores and context) and the feed-forward
    down-projections (fed by the GELU, whose outputs no single int8 scale fits) stay float32.
    Saved atomically in a sub-folder of the export's folder, named by the recipe and the
    OpenVINO and NNCF versions.

    Parameters
    ----------
    onnx_path : Path
        The float32 ``model.onnx`` of :func:`embeddings.onnx_model.exported_model_path`.
    tokenize : callable
        The model's tokenizer: a list of texts to a dict of feature arrays.

    Raises
    ------
    EncoderLoadError
        The quantization failed (the message says why).
    """
    import numpy as np
    import openvino

    nncf = _import_nncf()
    ov_version = openvino.__version__.split("-")[0]  # "2026.4.1-22982-<hash>-releases/..."
    name = f"openvino-int8-{INT8_RECIPE}-ov{ov_version}-nncf{nncf.__version__}"
    final = onnx_path.parent / name
    model_file = final / "model.xml"
    if model_file.is_file():
        return model_file
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=onnx_path.parent))
    try:
        logger.info("quantizing %s to int8 for OpenVINO in %s", onnx_path, final)
        core = openvino.Core()
        # a clone: models read from one file share constant nodes, which NNCF cannot graph
        model = core.read_model(str(onnx_path)).clone()
        inputs = [port.get_any_name() for port in model.inputs]
        samples = []
        for text in calibration_texts():
            features = tokenize([text])
            samples.append({k: np.asarray(features[k], dtype=np.int64) for k in inputs})
        advanced = nncf.quantization.advanced_parameters
        nncf_logger = logging.getLogger("nncf")
        level = nncf_logger.level
        nncf_logger.setLevel(logging.WARNING)  # its INFO lines list every ignored node
        try:
            quantized = nncf.quantize(
                model,
                nncf.Dataset(samples),
                model_type=nncf.ModelType.TRANSFORMER,
                subset_size=len(samples),
                ignored_scope=nncf.IgnoredScope(names=_float32_matmuls(model), validate=False),
                advanced_parameters=advanced.AdvancedQuantizationParameters(
                    smooth_quant_alphas=advanced.AdvancedSmoothQuantParameters(
                        matmul=INT8_SMOOTHQUANT_ALPHA
                    )
                ),
            )
        finally:
            nncf_logger.setLevel(level)
        openvino.save_model(quantized, str(work / "model.xml"), compress_to_fp16=False)
        try:
            os.rename(work, final)  # atomic; fails if another process got there first
        except OSError:
            if not model_file.is_file():
                raise
    except Exception as exc:
        raise EncoderLoadError(
            f"could not quantize {str(onnx_path)!r} to int8 with NNCF ({type(exc).__name__}: "
            f"{exc}); use precision='float32' or 'auto'."
        ) from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return model_file


def _float32_matmuls(model: Any) -> list[str]:
    """Names of the MatMuls to leave in float32: activation x activation, and after a GELU."""
    passthrough = ("Convert", "Reshape", "Transpose")

    def source(op: Any, port: int) -> Any:
        node = op.input_value(port).get_node()
        while node.get_type_name() in passthrough and node.inputs():
            node = node.input_value(0).get_node()
        return node

    names = []
    for op in model.get_ops():
        if op.get_type_name() != "MatMul":
            continue
        if source(op, 1).get_type_name() != "Constant" or source(op, 0).get_type_name() == "Gelu":
            names.append(op.get_friendly_name())
    return names


class OpenVinoSession:
    """An OpenVINO model compiled for the CPU: feature dicts in, float32 vectors out.

    Parameters
    ----------
    path : Path
        An ONNX (or OpenVINO IR) model whose inputs are the tokenizer's features and whose
        first output is the ``(batch, dim)`` sentence embedding.
    precision : {"float32", "bfloat16", "int8"}
        The inference precision; ``"bfloat16"`` needs a CPU with native bfloat16; ``"int8"``
        expects ``path`` to be the quantized model (:func:`quantized_model_path`) and runs
        its unquantized operations in float32.
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
        precision: Literal["float32", "bfloat16", "int8"] = "float32",
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
