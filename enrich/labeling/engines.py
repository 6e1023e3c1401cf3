"""Where a job's heavy work runs: this machine's processes, or a Dask cluster.

Both engines load the LFs from their sources (``module:attribute`` or a Python file) and
apply them to a table of assets, returning the same :class:`~enrich.votes.VoteMatrix` for
the same input: LFs decide each asset on its own, so splitting the rows into partitions
changes nothing. Given a multi-label ``task`` (:class:`~enrich.tasks.Task`), both return
the same :class:`~enrich.MultiLabelVoteMatrix`. :class:`DaskEngine` applies LFs and
encodes per partition on the workers; each worker loads the LFs, spaCy pipelines and
encoders once and keeps them.

>>> import polars as pl
>>> from enrich.labeling.sources import load_lfs
>>> engine = LocalEngine()
>>> lfs = load_lfs(["labeling_functions.packs.youtube_spam:subscribe"])
>>> data = pl.DataFrame({"asset_id": ["a", "b"], "text": ["subscribe!", "nice"]})
>>> engine.apply(lfs, data, classes=["HAM", "SPAM"]).votes.tolist()
[[1], [-1]]
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from enrich.errors import InputError
from enrich.labeling.apply import OnError, apply, as_labeling_function
from enrich.labeling.sources import load_lfs
from enrich.multilabel_votes import MultiLabelVoteMatrix
from enrich.votes import VoteMatrix

if TYPE_CHECKING:
    from enrich.tasks import Task

__all__ = [
    "DaskEngine",
    "EncoderSpec",
    "Engine",
    "LocalEngine",
    "get_encoder",
    "merge_errors",
]

logger = logging.getLogger(__name__)

_CACHE_LOCK = threading.Lock()
_ENCODER_CACHE: dict[Any, Any] = {}


# -- encoders ----------------------------------------------------------------------------
@dataclass(frozen=True)
class EncoderSpec:
    """A picklable description of an encoder; :func:`get_encoder` builds it once per process.

    ``kind`` is ``"text"`` (``embeddings`` text encoder; ``model`` None = the bundled
    MiniLM) or ``"image"`` (the offline image encoder).
    """

    kind: str
    model: str | None = None
    backend: str = "torch"  # text: "torch" or "onnx"
    precision: str = "auto"  # text: see embeddings.TextEncoder
    device: str | None = None
    workers: int | None = None  # text: tokenizer processes

    def build(self) -> Any:
        """A new encoder object (its model loads on first use)."""
        if self.kind == "text":
            from embeddings.text import TextEncoder

            return TextEncoder(
                self.model,
                missing="zero",
                backend=self.backend,  # type: ignore[arg-type]
                precision=self.precision,  # type: ignore[arg-type]
                device=self.device,
                workers=self.workers,
            )
        if self.kind == "image" and self.model:
            if self.model.endswith(".npz"):
                from embeddings.image import HogPcaImageEncoder

                return HogPcaImageEncoder.load(self.model)
            from embeddings.image import ClipImageEncoder

            return ClipImageEncoder(self.model, device=self.device)
        raise InputError(
            f"no encoder of kind {self.kind!r} with model {self.model!r}; use 'text', or "
            "'image' with a CLIP model name/folder or a HogPcaImageEncoder .npz file"
        )


def get_encoder(spec: EncoderSpec) -> Any:
    """The encoder ``spec`` describes, built once per process and kept."""
    with _CACHE_LOCK:
        encoder = _ENCODER_CACHE.get(spec)
        if encoder is None:
            encoder = _ENCODER_CACHE[spec] = spec.build()
    return encoder


# -- engines -----------------------------------------------------------------------------
class Engine:
    """What the job needs from an engine: apply LFs, encode items, close."""

    kind: str = "base"

    def apply(
        self,
        lfs: Sequence[Any],
        data: pl.DataFrame,
        *,
        classes: Sequence[str],
        on_error: OnError = "raise",
        progress: bool | None = False,
        lf_sources: Sequence[str] | None = None,
        task: Task | None = None,
    ) -> VoteMatrix | MultiLabelVoteMatrix:
        """Apply ``lfs`` to ``data`` (with an ``asset_id`` column); the vote matrix.

        ``task``: a :class:`~enrich.tasks.Task` instead of ``classes`` (a multi-label task
        gives a :class:`~enrich.MultiLabelVoteMatrix`); None: one class of ``classes``.
        """
        raise NotImplementedError

    def encode(
        self,
        spec: EncoderSpec,
        items: Any,
        *,
        batch_size: int,
        cache_path: str | os.PathLike[str] | None = None,
        progress: bool | None = False,
    ) -> np.ndarray:
        """Encode ``items`` with the encoder ``spec`` describes: float32 ``(n, dim)``.

        With ``cache_path``, vectors go through :class:`embeddings.cache.EmbeddingCache`
        there: items encoded before (same content, same encoder id) are read, not encoded.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release what the engine started (no-op for the local engine)."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalEngine(Engine):
    """Run on this machine: ``n_jobs`` processes for row-wise LFs (1 = in this process)."""

    kind = "local"

    def __init__(self, *, n_jobs: int = 1) -> None:
        self.n_jobs = n_jobs

    def apply(
        self,
        lfs: Sequence[Any],
        data: pl.DataFrame,
        *,
        classes: Sequence[str],
        on_error: OnError = "raise",
        progress: bool | None = False,
        lf_sources: Sequence[str] | None = None,
        task: Task | None = None,
    ) -> VoteMatrix | MultiLabelVoteMatrix:
        """Apply ``lfs`` to every row of ``data``; the same votes as :func:`enrich.apply`."""
        return apply(
            lfs,
            data,
            classes=list(classes) if task is None else None,
            id_column="asset_id",
            n_jobs=self.n_jobs,
            on_error=on_error,
            progress=progress,
            **({} if task is None else {"task": task}),
        )

    def encode(
        self,
        spec: EncoderSpec,
        items: Any,
        *,
        batch_size: int,
        cache_path: str | os.PathLike[str] | None = None,
        progress: bool | None = False,
    ) -> np.ndarray:
        """Encode ``data[column]`` with the encoder ``spec`` describes; ``(n, dim)`` float32."""
        return _encode_partition(
            list(items), spec=spec, encode_batch=batch_size, cache_path=cache_path, threads=None
        )


class DaskEngine(Engine):
    """Run on a Dask cluster: at ``address``, or a ``LocalCluster`` started here.

    A job (:func:`enrich.job.run.run_job`) given this engine has its workers read, vote and
    write their own partitions (:mod:`enrich.job.partitions`): the driver ships paths, never
    rows (and encode, vote and predict the end model there). :meth:`apply` and
    :meth:`encode` serve rows the caller already holds.

    LFs are applied and items encoded per partition of ``partition_size`` rows; results are
    put back in row order, so the output equals :class:`LocalEngine`'s. Workers load the
    LFs from their sources (files must be readable at the same path on every worker) and
    keep LFs, spaCy pipelines and encoders for the next partitions. Dask pins BLAS/OpenMP to
    one thread per worker; encoders get ``threads_per_worker`` threads set explicitly.
    """

    kind = "dask"

    def __init__(
        self,
        *,
        address: str | None = None,
        n_workers: int = 2,
        threads_per_worker: int = 1,
        processes: bool = True,
        partition_size: int = 50_000,
        client: Any = None,
    ) -> None:
        self.partition_size = partition_size
        self.threads_per_worker = threads_per_worker
        self._cluster = None
        self._own_client = client is None
        if client is not None:
            self.client = client
            return
        from dask.distributed import Client, LocalCluster

        if address:
            try:
                self.client = Client(address, timeout="30s")
            except OSError as exc:
                raise InputError(
                    f"cannot reach the Dask scheduler at engine.address={address!r} ({exc}); "
                    "check it is running, or leave engine.address unset for a local cluster"
                ) from exc
        else:
            self._cluster = LocalCluster(
                n_workers=n_workers,
                threads_per_worker=threads_per_worker,
                processes=processes,
                dashboard_address=None,
            )
            self.client = Client(self._cluster)

    def _partitions(self, data: pl.DataFrame) -> list[pl.DataFrame]:
        size = self.partition_size
        return [data.slice(start, size) for start in range(0, data.height, size)] or [data]

    def apply(
        self,
        lfs: Sequence[Any],
        data: pl.DataFrame,
        *,
        classes: Sequence[str],
        on_error: OnError = "raise",
        progress: bool | None = False,
        lf_sources: Sequence[str] | None = None,
        task: Task | None = None,
    ) -> VoteMatrix | MultiLabelVoteMatrix:
        """Apply ``lfs`` to every row of ``data``; the same votes as :func:`enrich.apply`."""
        wrapped = [as_labeling_function(lf) for lf in lfs]
        names = [lf.name for lf in wrapped]
        # With sources, workers load (and keep) the LFs themselves; else ship the objects.
        payload: Any = ("sources", tuple(lf_sources), tuple(names)) if lf_sources else lfs
        parts = self._partitions(_columns_for(wrapped, data))
        futures = self.client.map(
            _apply_partition,
            parts,
            payload=payload,
            classes=tuple(classes),
            on_error=on_error,
            task=task,
            pure=False,
        )
        results: list[Any] = self.client.gather(futures)
        if task is not None and task.kind == "multilabel":
            return _concat_multilabel_votes(results, data)
        return _concat_votes(results, data)

    def encode(
        self,
        spec: EncoderSpec,
        items: Any,
        *,
        batch_size: int,
        cache_path: str | os.PathLike[str] | None = None,
        progress: bool | None = False,
    ) -> np.ndarray:
        """Encode ``data[column]`` with the encoder ``spec`` describes; ``(n, dim)`` float32."""
        values = list(items)
        size = self.partition_size
        chunks = [values[start : start + size] for start in range(0, len(values), size)]
        if not chunks:
            return np.zeros((0, get_encoder(spec).dim), dtype=np.float32)
        futures = self.client.map(
            _encode_partition,
            chunks,
            spec=spec,
            encode_batch=batch_size,  # not batch_size: Client.map has its own
            cache_path=cache_path,
            threads=self.threads_per_worker,
            pure=False,
        )
        return np.concatenate(self.client.gather(futures), axis=0)

    def close(self) -> None:
        """Release what the engine started (worker processes, a local cluster)."""
        if self._own_client:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def _columns_for(lfs: Sequence[Any], data: pl.DataFrame) -> pl.DataFrame:
    """Only the columns the LFs read (and ``asset_id``): less to ship to the workers."""
    wanted = {"asset_id"}
    for lf in lfs:
        if getattr(lf, "columns_read", ()) is None:  # a row-wise LF that may read anything
            return data
        wanted.update(lf.columns)
    return data.select([c for c in data.columns if c in wanted])


# -- work done on the workers --------------------------------------------------------------
def _apply_partition(
    part: pl.DataFrame,
    *,
    payload: Any,
    classes: tuple[str, ...],
    on_error: OnError,
    task: Task | None = None,
) -> VoteMatrix | MultiLabelVoteMatrix:
    if isinstance(payload, tuple) and payload and payload[0] == "sources":
        _, sources, names = payload
        by_name = {lf.name: lf for lf in load_lfs(list(sources))}
        lfs = [by_name[name] for name in names]
    else:
        lfs = payload
    if task is not None:
        return apply(lfs, part, task=task, id_column="asset_id", on_error=on_error, progress=False)
    return apply(
        lfs, part, classes=list(classes), id_column="asset_id", on_error=on_error, progress=False
    )


def _encode_partition(
    items: list[Any],
    *,
    spec: EncoderSpec,
    encode_batch: int,
    cache_path: str | os.PathLike[str] | None,
    threads: int | None,
) -> np.ndarray:
    if threads is not None:
        _set_threads(threads)
    encoder = get_encoder(spec)
    batch_size = encode_batch
    if cache_path is None:
        vectors = encoder.encode(items, batch_size=batch_size, progress=False)
    else:
        vectors = _cache(cache_path).encode(encoder, items, batch_size=batch_size, progress=False)
    return np.asarray(vectors, dtype=np.float32)


def _cache(path: str | os.PathLike[str]) -> Any:
    """The embedding cache at ``path``, opened once per process."""
    from embeddings.cache import open_cache
    from enrich._internal.uri import Location

    where = Location.of(path)  # a URI: Parquet shards many hosts share; local: SQLite
    key = ("cache", str(where))
    with _CACHE_LOCK:
        cache = _ENCODER_CACHE.get(key)
        if cache is None:
            cache = _ENCODER_CACHE[key] = open_cache(
                str(where), storage_options=where.fsspec_options(), on_corrupt="move_aside"
            )
    return cache


def _set_threads(threads: int) -> None:
    try:
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if "faiss" in sys.modules:
        sys.modules["faiss"].omp_set_num_threads(threads)


def _concat_votes(results: Sequence[VoteMatrix], data: pl.DataFrame) -> VoteMatrix:
    first = results[0]
    votes = np.concatenate([r.votes for r in results], axis=0)
    ids = pl.concat([r.asset_ids for r in results]) if data.height else first.asset_ids
    errors = merge_errors([r.errors for r in results])
    return VoteMatrix(
        votes=votes,
        lf_names=first.lf_names,
        asset_ids=ids,
        lf_versions=first.lf_versions,
        class_names=first.class_names,
        errors=errors,
    )


def _concat_multilabel_votes(
    results: Sequence[MultiLabelVoteMatrix], data: pl.DataFrame
) -> MultiLabelVoteMatrix:
    first = results[0]
    return MultiLabelVoteMatrix(
        votes=np.concatenate([r.votes for r in results], axis=0),
        lf_names=first.lf_names,
        label_names=first.label_names,
        asset_ids=pl.concat([r.asset_ids for r in results]) if data.height else first.asset_ids,
        lf_versions=first.lf_versions,
        lf_targets=first.lf_targets,
        errors=merge_errors([r.errors for r in results]),
    )


def merge_errors(tables: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """Add up per-LF error tables of several vote matrices (first message, 5 sample ids)."""
    frame = pl.concat(tables)
    if frame.height == 0:
        return tables[0]
    return (
        frame.group_by("lf", maintain_order=True)
        .agg(
            pl.col("n_errors").sum(),
            pl.col("first_error").first(),
            pl.col("sample_asset_ids").explode().drop_nulls().head(5),
        )
        .select(tables[0].columns)
    )
