"""The embedder and FAISS index life cycle of a job run.

:class:`Embedder` embeds new and changed assets (through the content-hash cache of the
engine), keeps the FAISS index over every asset's vector in step with the table (one snapshot
per run, named in the run record) and removes the snapshots of dead or old runs.

The embeddings folder may be an object-store URI: FAISS reads and writes local files, so a
snapshot is written to a local temporary folder and uploaded file by file (it is named in
the run record only after every file is there), and read back by downloading it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from enrich._internal.uri import Location
from enrich.errors import InputError
from enrich.io.store import JobPaths
from enrich.job.config import JobConfig
from enrich.job.state import Previous
from enrich.labeling.engines import EncoderSpec, Engine, get_encoder

__all__ = [
    "Embedder",
    "index_from_files",
    "index_ids",
    "load_run_index",
    "read_vectors",
    "rows_vectors",
    "update_from_files",
]

logger = logging.getLogger(__name__)

_HOG_FIT_SAMPLE = 2000


class Embedder:
    """Embeds new and changed assets (through the content-hash cache) and keeps the index.

    The FAISS index over every asset's vector lives beside the table, one snapshot per run
    (``<table>_embeddings/index/<run_id>``), written before the commit and named in the run
    record; a run that dies leaves an unreferenced snapshot, removed by a later run. Each
    asset keeps its ``index_id`` (int64) in the table.
    """

    def __init__(
        self,
        config: JobConfig,
        paths: JobPaths,
        spec: EncoderSpec | None,
        encoder_id: str | None,
        previous_index: Location | None,
        attach: bool,
    ) -> None:
        self.config = config
        self.paths = paths
        self.spec = spec
        self.encoder_id = encoder_id
        self.previous_index = previous_index
        self.rebuild = previous_index is None
        self.attach = attach
        self.index: Any = None
        self.loaded: Any = None  # the previous snapshot, checked by for_job
        self.deltas: list[dict[str, Any]] = []  # vectors added since the snapshot, per run
        self._added: tuple[np.ndarray, np.ndarray] | None = None
        self.notes: list[str] = []  # derived data found damaged and rebuilt (for the report)
        self.added = 0
        self.stats: dict[str, Any] = {}

    @classmethod
    def for_job(
        cls,
        config: JobConfig,
        paths: JobPaths,
        previous: Previous | None,
        lfs: Sequence[Any],
        changed_lfs: Sequence[Any],
        *,
        load: bool = True,
    ) -> Embedder | None:
        """The embedder ``[embeddings]`` asks for (None when embeddings are off).

        It reuses the previous run's index when the encoder is the same, and rebuilds it
        when an LF that reads the vectors changed. ``load=False`` leaves the previous
        snapshot unread (whoever updates the index loads it, see :func:`update_from_files`).
        """
        kind = config.encoder_kind
        if kind is None:
            return None
        spec = _encoder_spec(config, paths)
        encoder_id = None if spec is None else _encoder_id(spec)
        if kind == "precomputed":
            encoder_id = f"precomputed:{config.embedding_input_column}"
        before = (previous.record.get("embeddings") or {}) if previous else {}
        index_path = before.get("index_path")
        snapshot = None if index_path is None else _located(index_path, paths)
        usable = (
            snapshot is not None
            and before.get("encoder_id") == encoder_id
            and encoder_id is not None
            and (snapshot / "index.json").is_file()
        )
        output = config.embeddings.output_column
        reads = [lf for lf in lfs if output in lf.columns]
        attach = bool(reads) and output != config.embedding_input_column
        snapshot = snapshot if usable else None
        deltas = list(before.get("index_deltas") or []) if usable else []
        rebuild = any(output in lf.columns for lf in changed_lfs)
        loaded, notes = None, []
        if snapshot is not None and not rebuild and load:
            loaded, notes = _load_snapshot(snapshot, deltas, encoder_id, paths)
            snapshot = snapshot if loaded is not None else None
        embedder = cls(config, paths, spec, encoder_id, snapshot, attach)
        embedder.loaded, embedder.notes = loaded, notes
        embedder.deltas = deltas if snapshot is not None else []
        if rebuild:
            embedder.rebuild = True  # re-run LFs read every asset's vector
        return embedder

    def embed(
        self,
        data: pl.DataFrame,
        fresh: pl.DataFrame,
        state: pl.DataFrame,
        engine: Engine,
        *,
        progress: bool | None,
    ) -> pl.DataFrame:
        """Give the read rows their index ids (and vectors, for LFs that read them)."""
        from embeddings.index import VectorIndex

        ids = index_ids(data, state)
        data = data.with_columns(ids)
        wanted = (
            data
            if self.rebuild
            else data.filter(pl.col("asset_id").is_in(fresh.get_column("asset_id").implode()))
        )
        vectors = self._vectors(wanted, engine, progress=progress)
        if self.rebuild or self.previous_index is None:
            self.index = VectorIndex(vectors.shape[1], encoder_id=self.encoder_id)
        elif self.loaded is not None:
            self.index, self.loaded = self.loaded, None
        else:
            self.index = _with_deltas(
                _load_index(self.previous_index, self.encoder_id),
                self.previous_index,
                self.deltas,
            )
        if len(wanted):
            added_ids = wanted.get_column("index_id").to_numpy()
            self.index.add(added_ids, vectors, on_duplicate="replace")
            self._added = (added_ids, vectors)
        self.added = len(wanted)
        self.stats.update(n_embedded=len(wanted), n_indexed=len(self.index), dim=vectors.shape[1])
        if self.attach:
            column = pl.Series(self.config.embeddings.output_column, vectors)
            attached = wanted.select("asset_id").with_columns(column)
            data = data.join(attached, on="asset_id", how="left", maintain_order="left")
        return data

    def _vectors(self, rows: pl.DataFrame, engine: Engine, *, progress: bool | None) -> np.ndarray:
        column = self.config.embedding_input_column
        assert column is not None  # embeddings are on
        if self.spec is not None and self.encoder_id is None:
            # the offline image encoder, fitted on the first images
            self._fit_image_encoder(rows.get_column(column).to_list())
        return rows_vectors(
            rows,
            spec=self.spec,
            column=column,
            batch_size=self.config.embeddings.batch_size,
            cache=self.paths.embeddings,
            engine=engine,
            progress=progress,
        )

    def _fit_image_encoder(self, items: list[Any]) -> None:
        from embeddings.image import HogPcaImageEncoder

        assert self.spec is not None and self.spec.model is not None  # set by _encoder_spec
        sample = items[:_HOG_FIT_SAMPLE]
        if not sample:
            raise InputError("no image to fit the offline image encoder on; add images first")
        encoder = HogPcaImageEncoder().fit(sample, progress=False)
        model = Location.of(self.spec.model, self.paths.embeddings.storage_options or None)
        if model.is_remote:
            with tempfile.TemporaryDirectory(prefix="enrich-hog-") as tmp:
                model.write_bytes(encoder.save(Path(tmp) / model.name).read_bytes())
        else:
            encoder.save(model.path)
        self.encoder_id = get_encoder(self.spec).id
        logger.info("fitted the offline image encoder on %d images", len(sample))

    def save(self, run_id: str) -> dict[str, Any]:
        """Write what this run added to the index; the run record's entry that names it.

        Incremental: the vectors added by a run go to a small delta file inside the last full
        snapshot (``<snapshot>/deltas/<run_id>.npz``, named with its sha256 in the record);
        a full snapshot is written on the first run, on a rebuild, and when the deltas reach
        :data:`MAX_DELTAS` files or a quarter of the index. Nothing added: nothing written.
        """
        deltas = list(self.deltas)
        if self.index is None or not len(self.index):
            path, deltas = None, []
        elif self.added == 0 and not self.rebuild and self.previous_index is not None:
            path = self.previous_index  # unchanged: no copy of a possibly large index
        elif self._incremental(deltas):
            path = self.previous_index
            deltas.append(_write_delta(path, run_id, *self._added))  # type: ignore[arg-type, misc]
        else:
            path, deltas = self.paths.embeddings / "index" / run_id, []
            path.upload_folder(self.index.save)
        return {
            "encoder_id": self.encoder_id,
            "index_path": str(path) if path else None,
            "index_deltas": deltas,
            **self.stats,
        }

    def _incremental(self, deltas: list[dict[str, Any]]) -> bool:
        if self.rebuild or self.previous_index is None or self._added is None:
            return False
        pending = sum(int(d.get("rows", 0)) for d in deltas) + len(self._added[0])
        return len(deltas) < MAX_DELTAS and pending <= len(self.index) // 4

    def cleanup(self, keep: Sequence[str | None], *, newest: str | None = None) -> None:
        """Remove the index snapshots that no kept record names (those of dead or old runs).

        Snapshots named after a run id that sorts after ``newest`` (run ids start with their
        start time) are left alone: on an object store, where runs are not locked out of
        each other, they may belong to a run still working.
        """
        folder = self.paths.embeddings / "index"
        wanted = {Location.of(p).name for p in keep if p}
        for snapshot in folder.iterdir():  # nothing when there is no folder
            if snapshot.name in wanted or (newest is not None and snapshot.name > newest):
                continue
            snapshot.rmtree()


MAX_DELTAS = 20
"""Delta files on one index snapshot before the next run writes a full snapshot again."""


def _write_delta(snapshot: Location, run_id: str, ids: np.ndarray, vectors: np.ndarray) -> dict:
    """Write one run's added vectors beside the snapshot; its entry in the run record."""
    buffer = io.BytesIO()
    np.savez(buffer, ids=np.asarray(ids, dtype=np.int64), vectors=np.asarray(vectors, "<f4"))
    payload = buffer.getvalue()
    name = f"{run_id}.npz"
    (snapshot / "deltas" / name).write_bytes(payload)
    return {
        "file": name,
        "rows": len(ids),
        "sha256": hashlib.sha256(payload).hexdigest(),
    }


def _with_deltas(index: Any, snapshot: Location, deltas: Sequence[dict[str, Any]]) -> Any:
    """``index`` with the vectors of each delta file added in order (checksums verified)."""
    from embeddings.index import IndexCorruptError

    for delta in deltas:
        file = snapshot / "deltas" / str(delta["file"])
        try:
            payload = file.read_bytes()
        except OSError as exc:
            raise IndexCorruptError(f"the index delta {file} cannot be read ({exc})") from exc
        if hashlib.sha256(payload).hexdigest() != delta.get("sha256"):
            raise IndexCorruptError(f"the index delta {file} does not match its checksum")
        with np.load(io.BytesIO(payload), allow_pickle=False) as arrays:
            index.add(arrays["ids"], arrays["vectors"], on_duplicate="replace")
    return index


def load_run_index(entry: dict[str, Any], *, storage_options: dict[str, Any] | None = None) -> Any:
    """The FAISS index a run record's ``embeddings`` entry names: its snapshot plus deltas.

    Use it (not ``VectorIndex.load(entry["index_path"])`` alone) to get every vector the
    run indexed. ``storage_options`` reach a snapshot on an object store.
    """
    snapshot = Location.of(entry["index_path"], storage_options)
    index = _load_index(snapshot, entry.get("encoder_id"))
    return _with_deltas(index, snapshot, entry.get("index_deltas") or [])


def _located(path: str, paths: JobPaths) -> Location:
    """A path a run record names, with the storage options of the job's embeddings folder."""
    return Location.of(path, paths.embeddings.storage_options or None)


def _load_index(snapshot: Location, encoder_id: str | None) -> Any:
    """Load a snapshot folder (downloaded first when it is on an object store)."""
    from embeddings.index import VectorIndex

    if not snapshot.is_remote:
        return VectorIndex.load(snapshot.path, expected_encoder_id=encoder_id)
    with tempfile.TemporaryDirectory(prefix="enrich-index-") as tmp:
        local = snapshot.download_folder(Path(tmp) / snapshot.name)
        return VectorIndex.load(local, expected_encoder_id=encoder_id)


def _load_snapshot(
    snapshot: Location, deltas: Sequence[dict[str, Any]], encoder_id: str | None, paths: JobPaths
) -> tuple[Any, list[str]]:
    """The previous run's index, or (None, a note) when it cannot be read.

    The damaged snapshot is moved to ``<embeddings>/corrupt/`` and the index is rebuilt from
    every asset's vector (served by the embedding cache).
    """
    try:
        index = _load_index(snapshot, encoder_id)
        return _with_deltas(index, snapshot, deltas), []
    except (OSError, RuntimeError, ValueError) as exc:  # IndexCorruptError is an OSError
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        aside = paths.embeddings / "corrupt" / f"{snapshot.name}-{stamp}"
        try:
            snapshot.rename(aside)
            where = f"moved it to {aside}"
        except OSError as move_error:
            where = f"could not move it aside ({move_error})"
        note = (
            f"the FAISS index snapshot {snapshot} could not be read ({exc}); {where} and "
            "rebuilt the index from every asset's vector (the embedding cache)"
        )
        logger.warning(note)
        return None, [note]


def moved_cache_files(paths: JobPaths, since: dt.datetime) -> list[str]:
    """Embedding cache files found unreadable (and moved aside) since ``since``: notes.

    Only the local (SQLite) cache moves files aside; the shard cache of an object store
    skips an unreadable shard (and logs it).
    """
    if paths.embeddings.is_remote:
        return []
    local = paths.embeddings.path
    folder = local if local.is_dir() else local.parent
    if not folder.is_dir():
        return []
    notes = []
    stamp = since.strftime("%Y%m%dT%H%M%S")
    for file in sorted(folder.glob("*.corrupt-*")):
        if file.name.endswith(("-wal", "-shm", "-journal")):
            continue
        if file.name.split(".corrupt-")[-1] >= stamp:  # moved aside during this run
            notes.append(
                f"the embedding cache was unreadable; moved it aside to {file} and encoded the "
                "vectors it held again"
            )
    return notes


def index_ids(data: pl.DataFrame, state: pl.DataFrame) -> pl.Series:
    """Each read asset's index id: kept from the table, new ones numbered after the largest."""
    if "index_id" in state.columns:
        known = state.select("asset_id", "index_id")
        start = int(state.get_column("index_id").max() or -1) + 1
    else:
        known = pl.DataFrame(schema={"asset_id": data.schema["asset_id"], "index_id": pl.Int64})
        start = 0
    joined = data.select("asset_id").join(known, on="asset_id", how="left", maintain_order="left")
    missing = joined.get_column("index_id").is_null()
    order = joined.with_columns(missing.alias("_missing")).with_row_index("_row")
    new_rows = order.filter(pl.col("_missing")).sort("asset_id").get_column("_row")
    ids = joined.get_column("index_id").to_numpy(allow_copy=True).astype(np.float64)
    ids[new_rows.to_numpy()] = np.arange(start, start + new_rows.len())
    return pl.Series("index_id", ids.astype(np.int64))


def _encoder_spec(config: JobConfig, paths: JobPaths) -> EncoderSpec | None:
    kind = config.encoder_kind
    if kind == "precomputed":
        return None
    model = config.embeddings.model
    if kind == "image" and model is None:
        model = str(paths.embeddings / "hog_pca.npz")  # fitted on the first run's images
    emb = config.embeddings
    return EncoderSpec(
        kind,
        model,
        backend=emb.backend,
        precision=emb.precision,
        device=emb.device,
        workers=emb.workers,
    )


def _encoder_id(spec: EncoderSpec) -> str | None:
    """The encoder's id, or None while a HOG-PCA image encoder is not fitted yet."""
    unfitted = spec.kind == "image" and spec.model and spec.model.endswith(".npz")
    if unfitted and not Location.of(spec.model).is_file():
        return None
    return get_encoder(spec).id


# -- shared with the partitioned path (the Dask workers and the driver) ----------------------
def rows_vectors(
    rows: pl.DataFrame,
    *,
    spec: EncoderSpec | None,
    column: str,
    batch_size: int,
    cache: Location | None,
    engine: Engine | None = None,
    progress: bool | None = False,
) -> np.ndarray:
    """The vectors of ``rows``: their source column (``spec`` None) or encoded through the cache.

    The encoder is ``spec``'s (built once per process); ``cache`` is the content-hash
    embedding cache (:func:`embeddings.cache.open_cache`: SQLite for a local folder, Parquet
    shards that many hosts share for an object-store URI), so an item encoded before by any
    run or worker is read, not encoded. ``engine`` encodes (default: this process).

    >>> vectors = rows_vectors(pl.DataFrame({"v": [[3.0, 4.0]]}), spec=None, column="v",
    ...                        batch_size=8, cache=None)
    >>> vectors.astype(float).round(2).tolist()       # a source column: made unit length
    [[0.6, 0.8]]
    """
    from embeddings.precomputed import embedding_matrix

    if spec is None:  # precomputed: the source column
        return embedding_matrix(rows.get_column(column), what=f"source column {column!r}")
    from enrich.labeling.engines import LocalEngine

    return (engine or LocalEngine()).encode(
        spec,
        rows.get_column(column).to_list(),
        batch_size=batch_size,
        cache_path=cache,
        progress=progress,
    )


def read_vectors(
    path: str, *, storage_options: dict[str, str] | None = None, run_id: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``(index ids (n,), vectors (n, dim) float32)`` of a partition's vector file.

    A vector file (written by a Dask worker, :func:`enrich.job.worker.write_partition`) has
    the columns ``index_id``, ``vector`` and ``run_id`` (the run that embedded the row);
    ``run_id`` keeps only that run's rows.
    """
    frame = pl.scan_parquet(path, storage_options=storage_options)
    if run_id is not None:
        frame = frame.filter(pl.col("run_id") == run_id)
    table = frame.select("index_id", "vector").collect()
    ids = table.get_column("index_id").to_numpy().astype(np.int64)
    if not table.height:
        width = getattr(table.schema["vector"], "size", 0)
        return ids, np.zeros((0, width), dtype=np.float32)
    return ids, np.ascontiguousarray(table.get_column("vector").to_numpy(), dtype=np.float32)


TRAIN_SAMPLE = 131_072
"""Vectors an approximate index built from vector files is trained on (a seeded sample)."""


def index_from_files(
    files: Sequence[str],
    *,
    n_vectors: int,
    dim: int,
    encoder_id: str | None,
    storage_options: dict[str, str] | None = None,
    random_state: int = 0,
    train_sample: int = TRAIN_SAMPLE,
) -> Any:
    """A :class:`~embeddings.index.VectorIndex` over the vectors of ``files``, one file at a time.

    The index type is the one ``kind="auto"`` picks for ``n_vectors`` (exact below
    :data:`~embeddings.index.AUTO_FLAT_MAX`: then the index equals one built from every
    vector at once). An approximate index is trained on a seeded sample of about
    ``train_sample`` vectors drawn from every file (its lists number about
    ``2 * sqrt(sample)``), then the other vectors are added file by file: the memory
    beyond the index itself is one file's vectors.

    Parameters
    ----------
    files
        Vector files (:func:`read_vectors`): paths or URIs.
    n_vectors, dim
        How many vectors the files hold in all, and their width.
    encoder_id
        The encoder's id (kept in the index's sidecar).
    storage_options
        Object-store options of the files.
    random_state
        Seeds the training sample (and the index's k-means).
    train_sample
        About how many vectors an approximate index is trained on.

    Returns
    -------
    VectorIndex
    """
    from embeddings.index import AUTO_FLAT_MAX, AUTO_IVF_MAX, VectorIndex

    if n_vectors < AUTO_FLAT_MAX:
        index = VectorIndex(dim, encoder_id=encoder_id, random_state=random_state)
        for path in files:
            index.add(*read_vectors(path, storage_options=storage_options))
        return index
    kind = "ivf" if n_vectors < AUTO_IVF_MAX else "ivf_hnsw_sq8"
    index = VectorIndex(dim, kind=kind, encoder_id=encoder_id, random_state=random_state)
    rng = np.random.default_rng(random_state)
    share = min(1.0, train_sample / n_vectors)
    sample: list[tuple[np.ndarray, np.ndarray]] = []
    for path in files:
        ids, vectors = read_vectors(path, storage_options=storage_options)
        pick = rng.random(ids.size) < share
        sample.append((ids[pick], vectors[pick]))
    trained = np.concatenate([ids for ids, _ in sample])
    index.add(trained, np.concatenate([v for _, v in sample if v.size] or [np.zeros((0, dim))]))
    del sample
    for path in files:
        ids, vectors = read_vectors(path, storage_options=storage_options)
        rest = ~np.isin(ids, trained)
        index.add(ids[rest], vectors[rest])
    return index


def update_from_files(
    embedder: Embedder,
    files: Sequence[str],
    *,
    fresh_files: Sequence[str],
    n_vectors: int,
    dim: int,
    n_embedded: int,
    run_id: str,
) -> tuple[dict[str, Any], list[str]]:
    """Bring the job's index up to date from the partitions' vector files, and save it.

    Runs wherever the files can be read (a Dask worker: the driver never holds the index).
    A new index (``embedder.rebuild``, or no usable previous one) is built from every file
    (:func:`index_from_files`); otherwise the previous snapshot and its deltas are loaded
    and get only the vectors ``run_id`` embedded (in ``fresh_files``, the files this run
    wrote). A previous snapshot that cannot be read is
    moved aside and the index rebuilt from the files (which hold every asset's vector).
    Saved as :meth:`Embedder.save` saves it.

    Returns
    -------
    (dict, list of str)
        The run record's ``embeddings`` entry, and notes on damaged data rebuilt.
    """
    options = embedder.paths.embeddings.storage_options or None
    notes: list[str] = []
    index = None
    if not embedder.rebuild and embedder.previous_index is not None:
        index, notes = _load_snapshot(
            embedder.previous_index, embedder.deltas, embedder.encoder_id, embedder.paths
        )
        if index is None:
            embedder.rebuild = True
    if index is None:
        if dim:
            index = index_from_files(
                files,
                n_vectors=n_vectors,
                dim=dim,
                encoder_id=embedder.encoder_id,
                storage_options=options,
            )
        embedder.rebuild = True  # a full snapshot
    else:
        added = [read_vectors(path, storage_options=options, run_id=run_id) for path in fresh_files]
        added = [(ids, vectors) for ids, vectors in added if ids.size]
        if added:
            ids = np.concatenate([a[0] for a in added])
            vectors = np.concatenate([a[1] for a in added])
            index.add(ids, vectors, on_duplicate="replace")
            embedder._added = (ids, vectors)
    embedder.index = index
    embedder.added = n_embedded
    if index is not None:
        embedder.stats.update(n_embedded=n_embedded, n_indexed=len(index), dim=index.dim)
    entry = embedder.save(run_id)
    embedder.index = None  # what travels back is the entry, not the index
    return entry, notes
