"""VectorIndex: FAISS nearest-neighbour search over asset embeddings, by asset id.

Cosine similarity is the inner product of L2-normalized vectors. The index type follows the
collection's size unless you name one (``kind``):

=====================  ============================================  =========================
kind                   FAISS index                                   chosen by "auto" for
=====================  ============================================  =========================
``"flat"``             ``IDMap2,Flat`` (exact)                       fewer than 100,000 vectors
``"ivf"``              ``IVF{nlist},Flat``, nprobe tuned             100,000 to 999,999
``"ivf_hnsw_sq8"``     ``IVF{nlist}_HNSW32,SQ8`` with an fp16        1,000,000 and more
                       re-ranking store, nprobe tuned
any factory string     ``faiss.index_factory(dim, kind)``            (never)
=====================  ============================================  =========================

``nlist`` is the power of two nearest ``2 * sqrt(n)``. With ``nprobe="auto"`` the index
measures recall@10 against exact search on a sample of its own vectors right after training
and keeps the smallest nprobe (1, 2, 4, ... nlist) that reaches ``target_recall``. With
``kind="auto"`` an index that grows past a size boundary is rebuilt as the larger kind
during the ``add`` that crosses it.

Asset ids are non-negative int64 (-1 marks "no result"); keep your own mapping when your
asset ids are strings (e.g. their row number). Adding an id that is already present is
refused unless ``on_duplicate="replace"``.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> vectors = rng.standard_normal((1000, 32)).astype("float32")
>>> index = VectorIndex(32)
>>> index.add(np.arange(1000), vectors)
>>> result = index.search(vectors[:2], k=3)
>>> result.ids[:, 0].tolist()                       # each vector finds itself first
[0, 1]
>>> index.search(vectors[:1], k=2, subset=[5, 6, 7]).ids.tolist()   # only among 5, 6, 7
[[6, 7]]
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import math
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from embeddings.encoder import EmbeddingInputError
from embeddings.errors import EmbeddingsError
from embeddings.precomputed import embedding_matrix

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np
    import polars as pl

logger = logging.getLogger(__name__)

IndexKind = Literal["auto", "flat", "ivf", "ivf_hnsw_sq8"]
Metric = Literal["cosine", "inner_product"]
OnDuplicate = Literal["error", "replace"]
OnMissing = Literal["error", "ignore"]

_KINDS = ("auto", "flat", "ivf", "ivf_hnsw_sq8")
_METRICS = ("cosine", "inner_product")
#: ``kind="auto"`` uses an exact index below this many vectors ...
AUTO_FLAT_MAX = 100_000
#: ... an IVF-Flat index below this many, and IVF-HNSW-SQ8 with re-ranking from here on.
AUTO_IVF_MAX = 1_000_000
#: ``search(subset=...)`` on an approximate index scores subsets up to this size exactly.
SUBSET_EXACT_MAX = 20_000
_REFINE_FACTOR = 4  # ivf_hnsw_sq8 re-ranks k * this many candidates exactly
_TUNE_QUERIES = 256
_TUNE_K = 10
_KMEANS_ITERATIONS = 10
_TRAIN_POINTS_PER_LIST = 40
_FORMAT = "enrich-vector-index"
_FORMAT_VERSION = 1
INDEX_FILE = "index.faiss"
REFINE_FILE = "refine.faiss"
SIDECAR_FILE = "index.json"


class IndexMismatchError(EmbeddingsError, ValueError):
    """A saved index does not match what the caller expects (dimension, encoder id)."""


class IndexCorruptError(EmbeddingsError, OSError):
    """A saved index is incomplete, altered or unreadable (checksum, sidecar, FAISS file)."""


class IndexOperationError(EmbeddingsError, RuntimeError):
    """The index type cannot do what was asked (e.g. ``remove`` on a custom HNSW index)."""


@dataclass(frozen=True, eq=False)
class SearchResult:
    """Neighbours of each query, best first.

    Attributes
    ----------
    ids : np.ndarray
        int64 ``(n_queries, k)`` asset ids; -1 where fewer than ``k`` results exist (an index
        or subset smaller than ``k``).
    similarities : np.ndarray
        float32 ``(n_queries, k)`` cosine similarities (inner products for
        ``metric="inner_product"``); NaN where ``ids`` is -1.
    """

    ids: np.ndarray
    similarities: np.ndarray

    def to_polars(self) -> pl.DataFrame:
        """Long frame with columns query, rank, id, similarity (padding rows dropped).

        >>> import numpy as np
        >>> SearchResult(np.array([[4, -1]]), np.array([[0.9, np.nan]], "float32")).to_polars()
        shape: (1, 4)
        ┌───────┬──────┬─────┬────────────┐
        │ query ┆ rank ┆ id  ┆ similarity │
        │ ---   ┆ ---  ┆ --- ┆ ---        │
        │ i64   ┆ i64  ┆ i64 ┆ f32        │
        ╞═══════╪══════╪═════╪════════════╡
        │ 0     ┆ 0    ┆ 4   ┆ 0.9        │
        └───────┴──────┴─────┴────────────┘
        """
        import numpy as np
        import polars as pl

        m, k = self.ids.shape
        keep = (self.ids >= 0).ravel()
        return pl.DataFrame(
            {
                "query": np.repeat(np.arange(m, dtype=np.int64), k)[keep],
                "rank": np.tile(np.arange(k, dtype=np.int64), m)[keep],
                "id": self.ids.ravel()[keep].astype(np.int64),
                "similarity": self.similarities.ravel()[keep].astype(np.float32),
            }
        )


class VectorIndex:
    """Nearest-neighbour index over embeddings, keyed by int64 asset ids (FAISS).

    Parameters
    ----------
    dim : int
        Width of the vectors.
    kind : {"auto", "flat", "ivf", "ivf_hnsw_sq8"} or str
        Index type (see the module docstring), or any FAISS factory string (e.g.
        ``"IVF1024,PQ32"``); types FAISS cannot give ids are wrapped in ``IDMap2``.
    metric : {"cosine", "inner_product"}
        ``"cosine"`` normalizes added and query vectors; ``"inner_product"`` uses them as
        they are.
    encoder_id : str or None
        Id of the encoder that made the vectors; saved in the sidecar and checked by
        :meth:`load` when asked.
    n_threads : int or None
        OpenMP threads FAISS uses, set before every FAISS call (Dask and Ray workers set it
        to 1 behind your back); None = the CPUs this process may use.
    nprobe : "auto" or int
        IVF lists searched per query; "auto" tunes it to ``target_recall`` after training.
    target_recall : float
        Recall@10 against exact search that ``nprobe="auto"`` aims for, in (0, 1].
    random_state : None, int or numpy Generator
        Seeds the training sample, k-means and the tuning sample (passed to FAISS
        explicitly; no global state is touched).

    Fitted attributes (after the first ``add``): ``kind_``, ``factory_``, ``nlist_``,
    ``nprobe_``, ``recall_estimate_`` (measured recall@10 at ``nprobe_``, or None).

    Not safe to share across processes while writing; calls from several threads are
    serialized.
    """

    def __init__(
        self,
        dim: int,
        *,
        kind: IndexKind | str = "auto",
        metric: Metric = "cosine",
        encoder_id: str | None = None,
        n_threads: int | None = None,
        nprobe: Literal["auto"] | int = "auto",
        target_recall: float = 0.95,
        random_state: Any = 0,
    ) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise EmbeddingInputError(f"dim must be a positive integer, got {dim!r}.")
        if not isinstance(kind, str) or not kind:
            raise EmbeddingInputError(
                f"kind must be one of {list(_KINDS)} or a FAISS factory string, got {kind!r}."
            )
        if metric not in _METRICS:
            raise EmbeddingInputError(
                f"metric={metric!r} is not supported; choose one of {list(_METRICS)}."
            )
        if encoder_id is not None and not isinstance(encoder_id, str):
            raise EmbeddingInputError(f"encoder_id must be a string or None, got {encoder_id!r}.")
        if n_threads is not None and (
            isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1
        ):
            raise EmbeddingInputError(
                f"n_threads must be a positive integer or None, got {n_threads!r}."
            )
        if nprobe != "auto" and (
            isinstance(nprobe, bool) or not isinstance(nprobe, int) or nprobe < 1
        ):
            raise EmbeddingInputError(
                f"nprobe must be 'auto' or a positive integer, got {nprobe!r}."
            )
        if isinstance(target_recall, bool) or not (
            isinstance(target_recall, int | float) and 0 < target_recall <= 1
        ):
            raise EmbeddingInputError(
                f"target_recall must be a number in (0, 1], got {target_recall!r}."
            )
        self.dim = dim
        self.kind = kind
        self.metric = metric
        self.encoder_id = encoder_id
        self.n_threads = n_threads
        self.nprobe = nprobe
        self.target_recall = float(target_recall)
        self.random_state = random_state
        self._rng = _resolve_rng(random_state)
        self._lock = threading.RLock()
        self._index: Any = None
        self._refine: Any = None  # IDMap2,SQfp16 store that re-ranks ivf_hnsw_sq8 candidates
        self._ids = _empty_ids()
        self.kind_: str | None = None
        self.factory_: str | None = None
        self.nlist_: int | None = None
        self.nprobe_: int | None = None
        self.recall_estimate_: float | None = None
        if kind not in _KINDS:
            self._check_factory(kind)

    def __repr__(self) -> str:
        built = f", factory={self.factory_!r}" if self.factory_ else ""
        return f"VectorIndex(dim={self.dim}, kind={self.kind!r}, count={len(self)}{built})"

    def __len__(self) -> int:
        return int(self._ids.size)

    def __contains__(self, asset_id: object) -> bool:
        import numpy as np

        if isinstance(asset_id, bool) or not isinstance(asset_id, int | np.integer):
            return False
        pos = np.searchsorted(self._ids, asset_id)
        return bool(pos < self._ids.size and self._ids[pos] == asset_id)

    @property
    def ids(self) -> np.ndarray:
        """Sorted int64 array of the asset ids in the index (a copy)."""
        return self._ids.copy()

    @property
    def n_threads_(self) -> int:
        """Threads FAISS is given (``n_threads`` or the CPUs this process may use)."""
        if self.n_threads is not None:
            return self.n_threads
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover - not Linux
            return max(1, os.cpu_count() or 1)

    # -- FAISS plumbing ----------------------------------------------------------------------
    @contextmanager
    def _faiss(self) -> Iterator[Any]:
        """Import FAISS and set its thread count for the duration of one operation."""
        import faiss

        previous = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(self.n_threads_)
        try:
            yield faiss
        finally:
            faiss.omp_set_num_threads(previous)

    def _check_factory(self, factory: str) -> None:
        import faiss

        try:
            faiss.index_factory(self.dim, factory, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as exc:
            raise EmbeddingInputError(
                f"kind={factory!r} is neither one of {list(_KINDS)} nor a FAISS factory "
                f"string FAISS accepts ({str(exc).splitlines()[-1][:200]}); e.g. "
                "'IVF1024,Flat' or 'HNSW32,Flat'."
            ) from exc

    def _resolve_kind(self, n: int) -> str:
        if self.kind != "auto":
            return self.kind
        if n < AUTO_FLAT_MAX:
            return "flat"
        return "ivf" if n < AUTO_IVF_MAX else "ivf_hnsw_sq8"

    @staticmethod
    def _nlist_for(n: int) -> int:
        """Power of two nearest 2*sqrt(n), at most n / 40 (so k-means has data), at least 1."""
        target = 2 * math.sqrt(max(n, 1))
        nlist = 2 ** round(math.log2(target)) if target > 1 else 1
        return int(max(1, min(nlist, n // _TRAIN_POINTS_PER_LIST, 65536)))

    def _factory_for(self, kind: str, n: int) -> tuple[str, int | None]:
        if kind == "flat":
            return "IDMap2,Flat", None
        if kind == "ivf":
            nlist = self._nlist_for(n)
            return f"IVF{nlist},Flat", nlist
        if kind == "ivf_hnsw_sq8":
            nlist = self._nlist_for(n)
            return f"IVF{nlist}_HNSW32,SQ8", nlist
        return kind, None

    def _build(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Create, train, fill and tune a new index from scratch."""
        import numpy as np

        n = len(vectors)
        kind = self._resolve_kind(n)
        factory, _ = self._factory_for(kind, n)
        with self._faiss() as faiss:
            index = faiss.index_factory(self.dim, factory, faiss.METRIC_INNER_PRODUCT)
            ivf = faiss.try_extract_index_ivf(index)
            if ivf is not None:
                ivf.cp.seed = int(self._rng.integers(2**31 - 1))
                ivf.cp.niter = _KMEANS_ITERATIONS
                if ivf.nlist > n:
                    raise EmbeddingInputError(
                        f"kind={self.kind!r} needs at least {ivf.nlist} vectors in the first "
                        f"add to train {ivf.nlist} lists, got {n}; add more vectors at once or "
                        "use kind='flat'."
                    )
            if not index.is_trained:
                n_train = n if ivf is None else min(n, _TRAIN_POINTS_PER_LIST * ivf.nlist)
                sample = (
                    vectors
                    if n_train == n
                    else vectors[np.sort(self._rng.choice(n, n_train, replace=False))]
                )
                logger.info("training %s on %d vectors", factory, len(sample))
                index.train(np.ascontiguousarray(sample))
            if ivf is not None and kind != "ivf_hnsw_sq8":  # by-id lookups: get_vectors, rebuild
                ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
            if not _accepts_ids(faiss, index):
                index = faiss.IndexIDMap2(index)
            refine = None
            if kind == "ivf_hnsw_sq8":
                refine = faiss.index_factory(self.dim, "IDMap2,SQfp16", faiss.METRIC_INNER_PRODUCT)
            self._index, self._refine = index, refine
            self.kind_, self.factory_ = kind, factory
            self.nlist_ = None if ivf is None else int(ivf.nlist)
            self._ids = _empty_ids()
            self._add_to_faiss(faiss, vectors, ids)
        self._set_nprobe(vectors, ids)

    def _add_to_faiss(self, faiss: Any, vectors: np.ndarray, ids: np.ndarray) -> None:
        import numpy as np

        try:
            self._index.add_with_ids(vectors, ids)
            if self._refine is not None:
                self._refine.add_with_ids(vectors, ids)
        except RuntimeError as exc:
            raise IndexOperationError(
                f"FAISS refused to add to a {self.factory_!r} index: {_faiss_message(exc)}"
            ) from exc
        self._ids = np.union1d(self._ids, ids)

    def _set_nprobe(self, vectors: np.ndarray | None, ids: np.ndarray | None) -> None:
        if self.nlist_ is None:
            self.nprobe_, self.recall_estimate_ = None, None
            return
        if self.nprobe != "auto":
            self.nprobe_ = int(min(self.nprobe, self.nlist_))
            self.recall_estimate_ = None
            return
        self._tune(self.target_recall, _TUNE_QUERIES, database=vectors, db_ids=ids)

    def _search_params(self, faiss: Any, nprobe: int | None, selector: Any) -> tuple[Any, ...]:
        """FAISS search parameters, and the objects they point to (kept alive by the caller)."""
        ivf = faiss.try_extract_index_ivf(self._index)
        if ivf is not None:
            nprobe = int(nprobe or 1)
            params = faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)
            if isinstance(faiss.downcast_index(ivf.quantizer), faiss.IndexHNSW):
                # the HNSW quantizer must find the nprobe nearest lists, not just a few
                quantizer = faiss.SearchParametersHNSW(efSearch=max(32, 2 * nprobe))
                params.quantizer_params = quantizer
                return params, quantizer
            return (params,)
        if selector is not None:
            return (faiss.SearchParameters(sel=selector),)
        return (None,)

    def _raw_search(
        self, faiss: Any, queries: np.ndarray, k: int, nprobe: int | None, selector: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        """FAISS search (+ exact re-ranking for ivf_hnsw_sq8); -1 ids for missing results."""
        import numpy as np

        params, *_keep_alive = self._search_params(faiss, nprobe, selector)
        fetch = k * _REFINE_FACTOR if self._refine is not None else k
        fetch = min(fetch, max(len(self), 1))
        try:
            sims, ids = self._index.search(queries, fetch, params=params)
        except RuntimeError as exc:
            raise IndexOperationError(
                f"FAISS cannot search a {self.factory_!r} index this way "
                f"({_faiss_message(exc)}); subset search needs an index type that supports "
                "ID selectors (the built-in kinds do)."
            ) from exc
        if self._refine is not None:
            sims, ids = self._rerank(queries, ids, k)
        if ids.shape[1] < k:
            pad = k - ids.shape[1]
            ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
            sims = np.pad(sims, ((0, 0), (0, pad)), constant_values=np.nan)
        sims = sims.astype(np.float32, copy=False)
        sims[ids < 0] = np.nan
        return sims, ids.astype(np.int64, copy=False)

    def _rerank(
        self, queries: np.ndarray, candidates: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        m, c = candidates.shape
        valid = candidates >= 0
        vectors = np.zeros((m * c, self.dim), dtype=np.float32)
        flat_ids = candidates.ravel()
        keep = np.flatnonzero(valid.ravel())
        if keep.size:
            vectors[keep] = self._refine.reconstruct_batch(np.ascontiguousarray(flat_ids[keep]))
        exact = np.einsum("mcd,md->mc", vectors.reshape(m, c, self.dim), queries)
        exact[~valid] = -np.inf
        order = np.argsort(-exact, axis=1, kind="stable")[:, :k]
        ids = np.take_along_axis(candidates, order, axis=1)
        sims = np.take_along_axis(exact, order, axis=1)
        ids[~np.isfinite(sims)] = -1
        return sims, ids

    # -- public API ------------------------------------------------------------------------
    def add(self, ids: Any, vectors: Any, *, on_duplicate: OnDuplicate = "error") -> None:
        """Add vectors under asset ids.

        Parameters
        ----------
        ids : array-like of int
            ``(n,)`` non-negative int64 asset ids, unique within the call.
        vectors : array-like
            ``(n, dim)`` floats (numpy, or a polars/pandas/Arrow column of vectors); finite.
            With ``metric="cosine"`` rows are normalized (all-zero rows stay zero and have
            similarity 0 to every query).
        on_duplicate : {"error", "replace"}
            What an id already in the index does: raise (nothing is added), or replace the
            stored vector.

        The first add trains the index (IVF kinds need at least ``nlist`` vectors then).
        """
        import numpy as np

        if on_duplicate not in ("error", "replace"):
            raise EmbeddingInputError(
                f"on_duplicate={on_duplicate!r} is not an option; choose 'error' or 'replace'."
            )
        id_array = _as_ids(ids, what="VectorIndex.add ids")
        matrix = self._as_vectors(vectors, what="VectorIndex.add vectors")
        if len(id_array) != len(matrix):
            raise EmbeddingInputError(
                f"VectorIndex.add got {len(id_array)} ids for {len(matrix)} vectors; pass one "
                "id per vector."
            )
        uniq, counts = np.unique(id_array, return_counts=True)
        if (counts > 1).any():
            dup = uniq[counts > 1]
            raise EmbeddingInputError(
                f"VectorIndex.add: ids repeat within the call ({_show(dup)}); each asset "
                "needs one vector."
            )
        if not len(id_array):
            return
        with self._lock:
            present = id_array[self._member(id_array)]
            if present.size and on_duplicate == "error":
                raise EmbeddingInputError(
                    f"VectorIndex.add: {present.size} id(s) are already in the index "
                    f"({_show(present)}); remove them first or pass on_duplicate='replace'."
                )
            if present.size:
                self._remove_present(present)
            if self._index is None:
                self._build(matrix, id_array)
                return
            new_kind = self._resolve_kind(len(self) + len(id_array))
            if self.kind == "auto" and new_kind != self.kind_:
                logger.info(
                    "VectorIndex grows to %d vectors: rebuilding %s as %s",
                    len(self) + len(id_array),
                    self.kind_,
                    new_kind,
                )
                old_ids = self._ids.copy()
                old = self._reconstruct(old_ids)
                self._build(np.concatenate([old, matrix]), np.concatenate([old_ids, id_array]))
                return
            with self._faiss() as faiss:
                self._add_to_faiss(faiss, matrix, id_array)

    def remove(self, ids: Any, *, missing: OnMissing = "error") -> int:
        """Remove asset ids; returns how many were removed.

        ``missing="error"`` (default) raises when an id is not in the index (nothing is
        removed); ``"ignore"`` skips such ids.
        """
        if missing not in ("error", "ignore"):
            raise EmbeddingInputError(
                f"missing={missing!r} is not an option; choose 'error' or 'ignore'."
            )
        import numpy as np

        id_array = np.unique(_as_ids(ids, what="VectorIndex.remove ids"))
        with self._lock:
            member = self._member(id_array)
            if not member.all() and missing == "error":
                absent = id_array[~member]
                raise EmbeddingInputError(
                    f"VectorIndex.remove: {absent.size} id(s) are not in the index "
                    f"({_show(absent)}); pass missing='ignore' to skip them."
                )
            present = id_array[member]
            if present.size:
                self._remove_present(present)
            return int(present.size)

    def _member(self, ids: np.ndarray) -> np.ndarray:
        import numpy as np

        if not self._ids.size:
            return np.zeros(len(ids), dtype=bool)
        pos = np.searchsorted(self._ids, ids).clip(max=self._ids.size - 1)
        return self._ids[pos] == ids

    def _remove_present(self, ids: np.ndarray) -> None:
        import numpy as np

        ids = np.ascontiguousarray(ids, dtype=np.int64)
        with self._faiss() as faiss:
            try:
                ivf = faiss.try_extract_index_ivf(self._index)
                hashtable = ivf is not None and ivf.direct_map.type == faiss.DirectMap.Hashtable
                selector = faiss.IDSelectorArray(ids) if hashtable else faiss.IDSelectorBatch(ids)
                removed = self._index.remove_ids(selector)
                if self._refine is not None:
                    self._refine.remove_ids(faiss.IDSelectorBatch(ids))
            except RuntimeError as exc:
                raise IndexOperationError(
                    f"a {self.factory_!r} index cannot remove vectors "
                    f"({_faiss_message(exc)}); use kind 'flat', 'ivf' or 'ivf_hnsw_sq8'."
                ) from exc
        if removed != len(ids):
            raise IndexCorruptError(
                f"FAISS removed {removed} vectors for {len(ids)} ids; the index is "
                "inconsistent: rebuild it from your embeddings."
            )
        self._ids = np.setdiff1d(self._ids, ids, assume_unique=True)

    def _as_vectors(self, vectors: Any, *, what: str) -> np.ndarray:
        import numpy as np

        if (isinstance(vectors, np.ndarray) and vectors.ndim == 1) or (
            isinstance(vectors, list | tuple)
            and vectors
            and all(isinstance(v, int | float | np.number) for v in vectors)
        ):
            vectors = np.asarray(vectors)[None, :]  # one vector
        matrix = embedding_matrix(
            vectors,
            dim=self.dim,
            normalize=self.metric == "cosine",
            allow_zero=True,
            what=what,
        )
        return np.ascontiguousarray(matrix, dtype=np.float32)

    def search(
        self,
        queries: Any,
        k: int = 10,
        *,
        subset: Any = None,
        nprobe: int | None = None,
    ) -> SearchResult:
        """Find the ``k`` most similar assets to each query.

        Parameters
        ----------
        queries : array-like
            ``(n_queries, dim)`` floats, or one ``(dim,)`` vector (read as one query).
        k : int
            Neighbours per query.
        subset : array-like of int or None
            Only return assets whose id is in ``subset`` (e.g. the unlabeled ones); ids not
            in the index are ignored. FAISS filters with an ID selector during the search;
            for IVF kinds nprobe grows with ``len(index) / len(subset)`` (up to nlist) so that
            small subsets keep their recall, and subsets of at most ``SUBSET_EXACT_MAX``
            (20,000) ids are scored exactly from their stored vectors.
        nprobe : int or None
            Override ``nprobe_`` for this call (IVF kinds).

        Returns
        -------
        SearchResult
            ids ``(n_queries, k)`` (-1 padding) and similarities (NaN padding).
        """
        import numpy as np

        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise EmbeddingInputError(f"k must be a positive integer, got {k!r}.")
        if nprobe is not None and (
            isinstance(nprobe, bool) or not isinstance(nprobe, int) or nprobe < 1
        ):
            raise EmbeddingInputError(f"nprobe must be a positive integer or None, got {nprobe!r}.")
        k = int(k)
        matrix = self._as_vectors(queries, what="VectorIndex.search queries")
        empty = SearchResult(
            ids=np.full((len(matrix), k), -1, dtype=np.int64),
            similarities=np.full((len(matrix), k), np.nan, dtype=np.float32),
        )
        with self._lock:
            if self._index is None or not len(self) or not len(matrix):
                return empty
            probe = nprobe if nprobe is not None else self.nprobe_
            selector_ids = None
            if subset is not None:
                wanted = np.unique(_as_ids(subset, what="VectorIndex.search subset"))
                selector_ids = np.ascontiguousarray(wanted[self._member(wanted)])
                if not selector_ids.size:
                    return empty
                if self.nlist_ is not None and probe is not None:
                    scale = len(self) / selector_ids.size
                    probe = int(min(self.nlist_, math.ceil(probe * scale)))
            with self._faiss() as faiss:
                if selector_ids is not None and self._exact_subset(selector_ids):
                    exact = self._subset_knn(faiss, matrix, k, selector_ids)
                    if exact is not None:
                        return exact
                selector = None if selector_ids is None else faiss.IDSelectorBatch(selector_ids)
                sims, ids = self._raw_search(faiss, matrix, k, probe, selector)
        return SearchResult(ids=ids, similarities=sims)

    def _exact_subset(self, subset: np.ndarray) -> bool:
        """Small subsets of approximate indexes are searched exactly, by their stored vectors."""
        return self.kind_ != "flat" and subset.size <= SUBSET_EXACT_MAX

    def _subset_knn(
        self, faiss: Any, queries: np.ndarray, k: int, subset: np.ndarray
    ) -> SearchResult | None:
        import numpy as np

        try:
            vectors = self._reconstruct(subset)
        except IndexOperationError:  # a custom type without stored vectors: use the selector
            return None
        width = min(k, subset.size)
        sims, pos = faiss.knn(queries, vectors, width, metric=faiss.METRIC_INNER_PRODUCT)
        ids = np.where(pos >= 0, subset[pos.clip(min=0)], -1).astype(np.int64)
        sims = sims.astype(np.float32)
        if width < k:
            ids = np.pad(ids, ((0, 0), (0, k - width)), constant_values=-1)
            sims = np.pad(sims, ((0, 0), (0, k - width)), constant_values=np.nan)
        sims[ids < 0] = np.nan
        return SearchResult(ids=ids, similarities=sims)

    def get_vectors(self, ids: Any) -> np.ndarray:
        """Stored vectors of asset ids, float32 ``(n, dim)`` (normalized for cosine).

        ``ivf_hnsw_sq8`` returns its fp16 copies (within about 1e-3); custom factory types
        may not support this (:class:`IndexOperationError`).
        """
        id_array = _as_ids(ids, what="VectorIndex.get_vectors ids")
        with self._lock:
            member = self._member(id_array)
            if not member.all():
                raise EmbeddingInputError(
                    f"VectorIndex.get_vectors: id(s) not in the index: {_show(id_array[~member])}."
                )
            return self._reconstruct(id_array)

    def _reconstruct(self, ids: np.ndarray) -> np.ndarray:
        import numpy as np

        if not ids.size:
            return np.zeros((0, self.dim), dtype=np.float32)
        store = self._refine if self._refine is not None else self._index
        with self._faiss():
            try:
                return np.asarray(
                    store.reconstruct_batch(np.ascontiguousarray(ids, dtype=np.int64)),
                    dtype=np.float32,
                )
            except RuntimeError as exc:
                raise IndexOperationError(
                    f"a {self.factory_!r} index cannot return stored vectors "
                    f"({_faiss_message(exc)})."
                ) from exc

    def tune(
        self, *, target_recall: float | None = None, n_queries: int = _TUNE_QUERIES
    ) -> dict[int, float]:
        """Choose ``nprobe_``: the smallest nprobe reaching ``target_recall`` recall@10.

        Queries are ``n_queries`` vectors sampled from the index (each query's own id is
        left out of both result lists); exact neighbours come from an exhaustive search.
        Returns the measured recall for each nprobe tried ({} for exact indexes). Run after
        the collection has changed a lot; the first ``add`` tunes when ``nprobe="auto"``.
        """
        target = self.target_recall if target_recall is None else target_recall
        if isinstance(target, bool) or not (isinstance(target, int | float) and 0 < target <= 1):
            raise EmbeddingInputError(f"target_recall must be in (0, 1], got {target!r}.")
        if isinstance(n_queries, bool) or not isinstance(n_queries, int) or n_queries < 1:
            raise EmbeddingInputError(f"n_queries must be a positive integer, got {n_queries!r}.")
        return self._tune(float(target), n_queries, database=None, db_ids=None)

    def _tune(
        self,
        target: float,
        n_queries: int,
        *,
        database: np.ndarray | None,
        db_ids: np.ndarray | None,
    ) -> dict[int, float]:
        import numpy as np

        with self._lock:
            if self.nlist_ is None or not len(self):
                return {}
            q = min(n_queries, len(self))
            if database is not None and db_ids is not None:
                pick = np.sort(self._rng.choice(len(database), q, replace=False))
                queries, query_ids = database[pick], db_ids[pick]
            else:
                query_ids = np.sort(self._rng.choice(self._ids, q, replace=False))
                queries = self._reconstruct(query_ids)
            k = min(_TUNE_K, len(self) - 1)
            if k < 1:
                self.nprobe_ = 1
                return {}
            with self._faiss() as faiss:
                if database is not None:
                    _, pos = faiss.knn(queries, database, k + 1, metric=faiss.METRIC_INNER_PRODUCT)
                    truth = np.where(pos >= 0, db_ids[pos.clip(min=0)], -1)
                else:
                    _, truth = self._raw_search(faiss, queries, k + 1, self.nlist_, None)
                truth = _drop_self(truth, query_ids, k)
                recalls: dict[int, float] = {}
                probe = 1
                while True:
                    _, found = self._raw_search(faiss, queries, k + 1, probe, None)
                    found = _drop_self(found, query_ids, k)
                    hits = sum(
                        len(set(found[i][found[i] >= 0]) & set(truth[i][truth[i] >= 0]))
                        for i in range(q)
                    )
                    denominator = int((truth >= 0).sum()) or 1
                    recalls[probe] = hits / denominator
                    if recalls[probe] >= target or probe >= self.nlist_:
                        break
                    probe = min(probe * 2, self.nlist_)
            self.nprobe_ = probe
            self.recall_estimate_ = recalls[probe]
            if recalls[probe] < target:
                logger.warning(
                    "VectorIndex: recall@%d %.3f < target %.3f even at nprobe=nlist=%d",
                    k,
                    recalls[probe],
                    target,
                    probe,
                )
            logger.info("VectorIndex: nprobe=%d (recall@%d %.3f)", probe, k, recalls[probe])
            return recalls

    # -- persistence -----------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the index to a folder: ``index.faiss`` (+ ``refine.faiss``) and a JSON sidecar.

        The sidecar (``index.json``, written last) records dim, metric, kind, factory string,
        encoder id, count, nprobe and the sha256 of each FAISS file; :meth:`load` checks
        them. Files are written under temporary names and renamed into place.
        """
        import faiss

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            if self._index is None:
                raise IndexOperationError(
                    "VectorIndex.save: the index is empty (nothing was added yet); add vectors "
                    "before saving."
                )
            files = {INDEX_FILE: self._index}
            if self._refine is not None:
                files[REFINE_FILE] = self._refine
            _remove_stale_temporaries(folder)
            checksums: dict[str, str] = {}
            for name, index in files.items():
                tmp = folder / f".{name}.{os.getpid()}.tmp"
                try:
                    faiss.write_index(index, str(tmp))
                    checksums[name] = _sha256_file(tmp)
                    os.replace(tmp, folder / name)
                except (OSError, RuntimeError) as exc:
                    raise _save_error(folder, exc) from exc
                finally:
                    tmp.unlink(missing_ok=True)
            if REFINE_FILE not in files:
                (folder / REFINE_FILE).unlink(missing_ok=True)
            sidecar = {
                "format": _FORMAT,
                "format_version": _FORMAT_VERSION,
                "dim": self.dim,
                "metric": self.metric,
                "kind": self.kind,
                "resolved_kind": self.kind_,
                "factory": self.factory_,
                "refine_factory": "IDMap2,SQfp16" if self._refine is not None else None,
                "encoder_id": self.encoder_id,
                "count": len(self),
                "nlist": self.nlist_,
                "nprobe": self.nprobe,
                "tuned_nprobe": self.nprobe_,
                "target_recall": self.target_recall,
                "recall_estimate": self.recall_estimate_,
                "checksums": {name: f"sha256:{digest}" for name, digest in checksums.items()},
                "faiss_version": faiss.__version__,
                "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            tmp = folder / f".{SIDECAR_FILE}.{os.getpid()}.tmp"
            try:
                tmp.write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
                os.replace(tmp, folder / SIDECAR_FILE)
            except OSError as exc:
                raise _save_error(folder, exc) from exc
            finally:
                tmp.unlink(missing_ok=True)
        return folder

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        expected_dim: int | None = None,
        expected_encoder_id: str | None = None,
        n_threads: int | None = None,
    ) -> VectorIndex:
        """Read an index written by :meth:`save`, verifying its sidecar and checksums.

        Raises
        ------
        IndexMismatchError
            ``expected_dim`` or ``expected_encoder_id`` differs from the saved index.
        IndexCorruptError
            The sidecar is missing or unreadable, a checksum differs, FAISS cannot read a
            file, or the file disagrees with the sidecar (dimension, count).
        """
        import faiss
        import numpy as np

        folder = Path(path)
        sidecar_path = folder / SIDECAR_FILE
        if not sidecar_path.is_file():
            raise IndexCorruptError(
                f"{str(folder)!r} holds no {SIDECAR_FILE}: it is not a saved VectorIndex (or "
                "the save did not finish); save the index again with VectorIndex.save."
            )
        try:
            meta = json.loads(sidecar_path.read_text(encoding="utf-8"))
            if not isinstance(meta, dict):
                raise ValueError("not a JSON object")
            dim, metric = int(meta["dim"]), str(meta["metric"])
            checksums = dict(meta["checksums"])
            count = int(meta["count"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexCorruptError(
                f"{str(sidecar_path)!r} is not a valid VectorIndex sidecar ({exc}); save the "
                "index again."
            ) from exc
        if meta.get("format") != _FORMAT or meta.get("format_version") != _FORMAT_VERSION:
            raise IndexCorruptError(
                f"{str(sidecar_path)!r} has format {meta.get('format')!r} version "
                f"{meta.get('format_version')!r}; this version reads {_FORMAT!r} version "
                f"{_FORMAT_VERSION}."
            )
        if expected_dim is not None and expected_dim != dim:
            raise IndexMismatchError(
                f"the index at {str(folder)!r} holds {dim}-dimensional vectors, expected "
                f"{expected_dim}; rebuild it with the current encoder or load the right one."
            )
        if expected_encoder_id is not None and expected_encoder_id != meta.get("encoder_id"):
            raise IndexMismatchError(
                f"the index at {str(folder)!r} was built from encoder "
                f"{meta.get('encoder_id')!r}, expected {expected_encoder_id!r}; vectors of "
                "different encoders are not comparable: rebuild the index."
            )
        indexes: dict[str, Any] = {}
        for name in (INDEX_FILE, REFINE_FILE):
            if name not in checksums:
                continue
            file = folder / name
            if not file.is_file():
                raise IndexCorruptError(f"{str(file)!r} is missing; save the index again.")
            actual = f"sha256:{_sha256_file(file)}"
            if actual != checksums[name]:
                raise IndexCorruptError(
                    f"{str(file)!r} does not match the checksum in its sidecar ({actual} vs "
                    f"{checksums[name]}): the file was changed or truncated; save the index "
                    "again from your embeddings."
                )
            try:
                indexes[name] = faiss.read_index(str(file))
            except RuntimeError as exc:
                raise IndexCorruptError(
                    f"FAISS cannot read {str(file)!r} ({_faiss_message(exc)})."
                ) from exc
        if INDEX_FILE not in indexes:
            raise IndexCorruptError(f"{str(sidecar_path)!r} lists no {INDEX_FILE} checksum.")
        main = indexes[INDEX_FILE]
        if main.d != dim or main.ntotal != count:
            raise IndexCorruptError(
                f"{str(folder / INDEX_FILE)!r} holds {main.ntotal} vectors of dim {main.d}, "
                f"its sidecar says {count} of dim {dim}; save the index again."
            )
        nprobe = meta.get("nprobe", "auto")
        self = cls(
            dim,
            kind=meta.get("kind", "auto"),
            metric=metric,  # type: ignore[arg-type]
            encoder_id=meta.get("encoder_id"),
            n_threads=n_threads,
            nprobe=nprobe if nprobe == "auto" else int(nprobe),
            target_recall=float(meta.get("target_recall", 0.95)),
        )
        self._index = main
        self._refine = indexes.get(REFINE_FILE)
        self.kind_ = meta.get("resolved_kind")
        self.factory_ = meta.get("factory")
        self.nlist_ = meta.get("nlist")
        self.nprobe_ = meta.get("tuned_nprobe")
        self.recall_estimate_ = meta.get("recall_estimate")
        store = self._refine if self._refine is not None else main
        ids = _stored_ids(faiss, store)
        if ids is None or len(ids) != count:
            raise IndexCorruptError(
                f"the asset ids in {str(folder)!r} cannot be read back or do not number "
                f"{count}; save the index again."
            )
        self._ids = np.sort(ids)
        return self


# -- helpers -------------------------------------------------------------------------------
def _save_error(folder: Path, exc: BaseException) -> IndexOperationError:
    """The error of a failed save: "no space left on <folder>" when the disk is full."""
    text = str(exc)
    if getattr(exc, "errno", None) == errno.ENOSPC or "No space left" in text:
        error = IndexOperationError(
            f"no space left on {folder}: cannot save the vector index there; free some space "
            "and save (or run) again."
        )
        error.errno = errno.ENOSPC
        return error
    return IndexOperationError(f"cannot save the vector index to {str(folder)!r}: {text}")


def _remove_stale_temporaries(folder: Path) -> None:
    """Delete ``.<file>.<pid>.tmp`` files that a dead process left in ``folder``."""
    for tmp in folder.glob(".*.tmp"):
        pid = tmp.name.rsplit(".", 2)[-2]
        if not pid.isdigit() or int(pid) == os.getpid() or _process_alive(int(pid)):
            continue
        tmp.unlink(missing_ok=True)
        logger.info("removed %s, left behind by a run that died", tmp)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _resolve_rng(random_state: Any) -> np.random.Generator:
    import numpy as np

    if random_state is None or isinstance(random_state, np.random.Generator):
        return np.random.default_rng(random_state)
    if isinstance(random_state, int | np.integer) and not isinstance(random_state, bool):
        return np.random.default_rng(int(random_state))
    raise EmbeddingInputError(
        f"random_state must be None, an int or a numpy Generator, got {random_state!r}."
    )


def _empty_ids() -> np.ndarray:
    import numpy as np

    return np.zeros(0, dtype=np.int64)


def _as_ids(ids: Any, *, what: str) -> np.ndarray:
    import numpy as np

    if isinstance(ids, str | bytes) or np.isscalar(ids):
        raise EmbeddingInputError(f"{what}: expected a sequence of integer ids, got {ids!r}.")
    if hasattr(ids, "to_numpy"):  # polars / pandas
        ids = ids.to_numpy()
    try:
        arr = np.asarray(ids)
    except (TypeError, ValueError) as exc:
        raise EmbeddingInputError(f"{what}: cannot read ids ({exc}).") from exc
    if arr.size == 0:
        return _empty_ids()
    if arr.ndim != 1:
        raise EmbeddingInputError(f"{what}: ids must be 1-D, got shape {arr.shape}.")
    if not np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_:
        raise EmbeddingInputError(
            f"{what}: ids must be integers, got dtype {arr.dtype} (e.g. {arr[0]!r}); map "
            "string asset ids to integers (e.g. their row number) and keep the mapping."
        )
    if arr.dtype == np.uint64 and (arr > np.iinfo(np.int64).max).any():
        raise EmbeddingInputError(f"{what}: ids must fit in int64.")
    arr = arr.astype(np.int64, copy=False)
    if (arr < 0).any():
        raise EmbeddingInputError(
            f"{what}: ids must be >= 0 (-1 marks a missing result), got {_show(arr[arr < 0])}."
        )
    return np.ascontiguousarray(arr)


def _accepts_ids(faiss: Any, index: Any) -> bool:
    """Whether ``index.add_with_ids`` stores the caller's ids (IVF and IDMap types do)."""
    inner = index
    while isinstance(inner, faiss.IndexPreTransform):
        inner = faiss.downcast_index(inner.index)
    return isinstance(inner, faiss.IndexIVF | faiss.IndexIDMap | faiss.IndexIDMap2)


def _stored_ids(faiss: Any, index: Any) -> np.ndarray | None:
    """All ids stored in an IDMap or IVF index (None for other types)."""
    import numpy as np

    inner = faiss.downcast_index(index)
    while isinstance(inner, faiss.IndexPreTransform):
        inner = faiss.downcast_index(inner.index)
    if isinstance(inner, faiss.IndexIDMap | faiss.IndexIDMap2):
        return faiss.vector_to_array(inner.id_map).astype(np.int64)
    ivf = faiss.try_extract_index_ivf(inner)
    if ivf is None:
        return None
    lists = ivf.invlists
    parts = []
    for list_no in range(ivf.nlist):
        size = lists.list_size(list_no)
        if size:
            ptr = lists.get_ids(list_no)
            parts.append(faiss.rev_swig_ptr(ptr, size).astype(np.int64))
            lists.release_ids(list_no, ptr)
    return np.concatenate(parts) if parts else _empty_ids()


def _drop_self(result: np.ndarray, query_ids: np.ndarray, k: int) -> np.ndarray:
    """Remove each query's own id from its row of results and keep the first k."""
    import numpy as np

    out = np.full((len(result), k), -1, dtype=np.int64)
    for i, row in enumerate(result):
        kept = row[row != query_ids[i]][:k]
        out[i, : len(kept)] = kept
    return out


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _faiss_message(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return (lines[-1] if lines else repr(exc))[:300]


def _show(values: np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(str(int(v)) for v in values[:limit])
    return f"{shown}{', ...' if len(values) > limit else ''}"
