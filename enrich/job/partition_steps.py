"""The end model and the FAISS index of a partitioned run: steps the driver hands to workers.

With ``[embeddings]`` each worker encodes its partition's new and changed assets through the
content-hash embedding cache (every worker and run share it: SQLite for a local folder on one
host, Parquet shards for an object-store URI that many hosts share), the embedding LFs vote
on the workers, and each partition's vectors are written as one file in
``<embeddings>/vectors`` (named in the partition state). The driver numbers each partition's
new assets in the index (a block of ids per partition, in partition order: the local engine
numbers them in asset-id order over all partitions, which would need every new id in one
place, so ``index_id`` values differ between engines while every asset keeps the same
vector). One task on a worker then builds the job's FAISS index from the vector files, one
file at a time (trained on a seeded sample when it is approximate), or adds only this run's
vectors to the previous run's index, and saves it as the local engine saves it (snapshot,
deltas): the driver never holds the index (:func:`update_index_on_worker`).

With ``[end_model]`` the driver trains on the sample the local engine would pick, gathered
from the partitions (at most ``4 * max_train_rows`` rows held at once), by the local step's
retrain rule, and the workers predict every asset with the broadcast model
(:func:`end_model_on_workers`, :mod:`enrich.job.partition_model`): the output equals the
local engine's, and so do the metrics ``n_train``, ``n_labeled_by_model`` and
``class_counts``. The sample spans every asset, so each run loads every partition's previous
rows (nothing unchanged is voted again, and a partition is written only where a row moves).
The end model's agreement figures (with gold and the label model) and the gold suspects of
the review queue are the local engine's only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from enrich._internal.uri import Location, expand_options
from enrich.io.store import table_schema
from enrich.job.context import RunContext
from enrich.job.index import Embedder, read_vectors, update_from_files
from enrich.job.worker import EndModelWork, RunSettings, Written

__all__ = ["end_model_on_workers", "update_index_on_worker"]


def end_model_on_workers(
    run: RunContext,
    client: Any,
    voted: Sequence[Any],
    settings: RunSettings,
    patterns: pl.DataFrame,
    starts: Mapping[str, int],
    record: Mapping[str, Any] | None,
    embedder: Embedder | None,
    infos: Sequence[Mapping[str, Any]],
    where: Location,
) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The end model this run predicts with (:mod:`enrich.job.partition_model`)."""
    from enrich.job.partition_model import end_model_partitioned

    config = run.config
    dims = [int(i["dim"]) for i in infos if i.get("dim")]
    before = ((record or {}).get("embeddings") or {}).get("dim") if embedder is not None else 0
    dim = dims[0] if dims else int(before or 0)
    work = EndModelWork(
        settings=config.end_model,
        columns=tuple(config.end_model.feature_columns),
        embeddings=config.end_model_uses_embeddings,
        patterns=patterns,
        index_starts=dict(starts),
    )
    prev_versions = dict(record["lf_versions"]) if record else {}
    lf_versions = {lf.name: lf.version for lf in run.lfs}
    has_model_columns = record is not None and "model_label" in (table_schema(where) or {})
    return end_model_partitioned(
        client,
        voted,
        settings,
        work,
        stored=(record or {}).get("end_model"),
        run_id=run.run_id,
        lfs_changed=bool(settings.changed_lf_names) or set(prev_versions) != set(lf_versions),
        has_model_columns=has_model_columns,
        dim=dim,
        gold_known=bool(run.plan.gold_column) or settings.reviewed is not None,
    )


def update_index_on_worker(
    run: RunContext,
    client: Any,
    embedder: Embedder,
    written: Sequence[Written],
    untouched: Mapping[str, Mapping[str, Any]],
    infos: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """Build or update the job's FAISS index from the workers' vector files, on a worker.

    The driver never holds the index: one task (:func:`~enrich.job.index.update_from_files`)
    builds a new one from every partition's file, or adds this run's vectors to the
    previous run's, and saves it as the local engine does (a full snapshot, or a delta
    file on the previous snapshot). Returns the run record's entry.
    """
    options = expand_options(run.paths.embeddings.storage_options) or None
    files = [w.vectors_path for w in written if w.vectors_path] + [
        e["vectors"] for e in untouched.values() if e.get("vectors")
    ]
    n_vectors = sum(w.n_vectors for w in written) + sum(
        int(e.get("n_vectors", 0)) for e in untouched.values()
    )
    dims = [int(i["dim"]) for i in infos if i.get("dim")]
    dim = dims[0] if dims else (_file_dim(files, options) if embedder.rebuild else 0)
    future = client.submit(
        update_from_files,
        _portable(embedder, options),
        files,
        fresh_files=[w.vectors_path for w in written if w.vectors_path],
        n_vectors=n_vectors,
        dim=dim,
        n_embedded=sum(int(i.get("n_embedded", 0)) for i in infos),
        run_id=run.run_id,
        pure=False,
    )
    entry, notes = future.result()
    run.warnings.extend(notes)
    return entry


def _portable(embedder: Embedder, options: Mapping[str, str] | None) -> Embedder:
    """A copy of ``embedder`` for a worker: its folders' ``${VAR}`` options read here."""
    import copy
    import dataclasses

    shipped = copy.copy(embedder)
    shipped.loaded = None
    shipped.notes, shipped.stats, shipped.deltas = [], {}, list(embedder.deltas)
    shipped.paths = dataclasses.replace(
        embedder.paths, embeddings=Location.of(str(embedder.paths.embeddings), options)
    )
    if embedder.previous_index is not None:
        shipped.previous_index = Location.of(str(embedder.previous_index), options)
    return shipped


def _file_dim(files: Sequence[str], options: Mapping[str, str] | None) -> int:
    for path in files:
        _, vectors = read_vectors(path, storage_options=dict(options) if options else None)
        if vectors.shape[1]:
            return int(vectors.shape[1])
    return 0
