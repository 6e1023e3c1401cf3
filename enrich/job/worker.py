"""What a Dask worker does with one partition of a job: read, hash, vote, and write its rows.

A partition is one source file (or Delta table) and the rows the output table holds for it.
The driver ships a :class:`PartitionTask` (paths, never rows) and one :class:`RunSettings`
per run; the worker reads the file and the partition's previous rows itself, and keeps the
voted state in its memory (a Dask future) until the driver, having fitted the label model
on every partition's vote-pattern counts, asks it to :func:`write_partition`: the worker
then writes the partition's complete rows as one Parquet file in the table's folder and a
small summary beside it, and hands back only the file's add action and small summaries.
Nothing here commits: the driver commits every partition's file in one Delta transaction.

With ``[embeddings]`` (:class:`EmbedSettings`) the worker also encodes the partition's new and
changed assets through the content-hash embedding cache (shared by every worker and run),
attaches the vectors for the LFs that read them, and, once the driver has handed it the first
index id of its new assets, writes the partition's vectors (``index_id``, ``vector``,
``run_id``) as one Parquet file in ``<embeddings>/vectors``: the driver builds the job's
FAISS index from those files, and never holds a partition's rows.

>>> summary_columns(["a", "b"], ("video",), ("HAM", "SPAM"))[:3]
['vote_a', 'vote_b', 'gold']
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from enrich._internal.uri import fsspec_filesystem, join
from enrich.job.fit import source_gold, with_extras
from enrich.job.plan import ColumnPlan, content_hash
from enrich.job.sources import SourceFile, read_sources
from enrich.job.state import (
    assemble,
    asset_status,
    compare_previous,
    empty_state,
    model_rewrite_mask,
    rewrite_mask,
)

__all__ = [
    "SUMMARY_DIR",
    "EmbedSettings",
    "EndModelWork",
    "ModelBroadcast",
    "PartitionTask",
    "RunSettings",
    "Voted",
    "WriteSettings",
    "Written",
    "fit_summary",
    "model_candidates",
    "model_training_rows",
    "review_path",
    "summary_columns",
    "vote_partition",
    "write_partition",
]

SUMMARY_DIR = "_enrich_partitions"
"""Folder of the output table holding each written partition's summary (Delta ignores it)."""


@dataclass(frozen=True)
class PartitionTask:
    """One partition for a worker: the source file to read and the table files of its rows.

    ``source`` is None when only the previous rows are needed (the file is unchanged or
    gone, and the label model moved some of its rows).
    """

    key: str
    index: int
    source: SourceFile | None
    previous_files: tuple[str, ...] = ()
    previous_by_filter: bool = False
    previous_vectors: str | None = None


@dataclass(frozen=True)
class EmbedSettings:
    """``[embeddings]`` on the workers: the encoder, the cache, and where vectors go.

    ``spec`` None: the vectors are the source column ``input_column`` (precomputed).
    ``rebuild``: every asset read is embedded (a new index); else only new and changed ones.
    ``attach``: LFs read the vectors (column ``output_column``). ``cache`` is the embedding
    cache's :class:`~enrich._internal.uri.Location` (its options expanded on the driver);
    ``vectors`` the folder of the partitions' vector files (``options``: its storage options).
    """

    spec: Any
    input_column: str
    output_column: str
    attach: bool
    rebuild: bool
    batch_size: int
    cache: Any
    vectors: str
    options: Mapping[str, str] | None = None


@dataclass(frozen=True)
class RunSettings:
    """What every partition of one run shares (sent to the workers once)."""

    plan: ColumnPlan
    classes: tuple[str, ...]
    lf_payload: Any
    lf_names: tuple[str, ...]
    lf_versions: tuple[str, ...]
    changed_lf_names: tuple[str, ...]
    on_error: str
    all_changed: bool
    table: str
    read_version: int | None
    storage_options: Mapping[str, str] | None = None
    source_options: Mapping[str, str] | None = None
    reviewed: pl.DataFrame | None = None
    use_in_fit: bool = False
    embed: EmbedSettings | None = None


@dataclass(frozen=True)
class EndModelWork:
    """``[end_model]`` on the workers: the settings and what the label model gives each pattern.

    ``patterns`` holds the votes and ``proba_<class>`` of each distinct vote pattern;
    ``index_starts`` the first index id of each partition's new assets (vectors are looked
    up by index id, as in the job's index); ``embeddings``: the model reads the vectors.
    """

    settings: Any
    columns: tuple[str, ...]
    embeddings: bool
    patterns: pl.DataFrame
    index_starts: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelBroadcast:
    """The end model every partition predicts with (sent with each write).

    ``state``: a linear model's coefficients (:func:`~enrich.job.end_model_step.end_model_state`),
    or empty with ``model`` the fitted model itself. ``retrained``: every asset is
    predicted, the training rows get their out-of-fold probabilities (``oof``: ``asset_id``
    and ``model_proba_<class>``); else only new and changed assets, and assets without
    model columns yet, are predicted.
    """

    work: EndModelWork
    state: Mapping[str, Any]
    model: Any
    retrained: bool
    oof: pl.DataFrame | None = None


@dataclass(frozen=True)
class WriteSettings:
    """What every partition's write shares: the model's output per vote pattern and more."""

    patterns: pl.DataFrame
    full_refresh: bool
    tolerance: float
    lf_versions: Mapping[str, str]
    prev_versions: Mapping[str, str]
    run_id: str
    review_max: int
    review_columns: tuple[str, ...] = field(default_factory=tuple)
    review_below: float = 0.7
    review_purpose: str = "correct"
    review_slices: tuple[str, ...] = ()
    index_starts: Mapping[str, int] = field(default_factory=dict)
    end_model: ModelBroadcast | None = None
    #: partitions written even when no row moves: their stored review candidates lack the
    #: columns this run's queue needs (the votes, after a switch to ``purpose = "refit"``)
    stale_review: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Voted:
    """A partition after voting (kept on the worker): every asset's state and its prior rows."""

    key: str
    index: int
    full: pl.DataFrame
    previous: pl.DataFrame | None
    touched: pl.DataFrame
    errors: pl.DataFrame
    counts: dict[str, Any]
    vectors: tuple[pl.Series, np.ndarray] | None = None
    previous_vectors: str | None = None


@dataclass(frozen=True)
class Written:
    """What a partition's write hands back to the driver: its file and its summaries."""

    key: str
    path: str
    size: int
    stats: str
    n_rows: int
    n_written: int
    schema: Any
    summary_path: str
    summary: pl.DataFrame
    review: pl.DataFrame
    vectors_path: str | None = None
    n_vectors: int = 0
    max_index_id: int = -1
    n_review_eligible: int | None = None
    model_counts: dict[str, Any] | None = None


def summary_columns(
    lf_names: Sequence[str], slices: Sequence[str], classes: Sequence[str]
) -> list[str]:
    """The columns a partition summary groups by (votes, gold, slices, stored outputs)."""
    return [
        *(f"vote_{n}" for n in lf_names),
        "gold",
        *slices,
        "label",
        "needs_review",
        *(f"proba_{c}" for c in classes),
    ]


# -- vote ----------------------------------------------------------------------------------
def vote_partition(task: PartitionTask, settings: RunSettings) -> Voted:
    """Read ``task``'s file and previous rows, hash, and vote what is new or changed.

    Unchanged assets keep their votes; LFs in ``settings.changed_lf_names`` are re-run on
    them. Rows the table holds for assets no longer in the file are kept (as the local
    engine keeps them).

    Parameters
    ----------
    task
        The partition.
    settings
        The run's shared settings.

    Returns
    -------
    Voted
    """
    from enrich.labeling.apply import apply

    plan, classes = settings.plan, settings.classes
    previous = _previous_rows(task, settings)
    if task.source is not None:
        data = read_sources([task.source], plan, storage_options=settings.source_options)
    else:
        schema = {c: plan.dtypes[c] for c in plan.read} | {"source_file": pl.String}
        data = pl.DataFrame(schema=schema)
        if plan.id_column != "asset_id":
            data = data.with_columns(pl.col(plan.id_column).alias("asset_id"))
    if previous is not None:
        data = data.with_columns(pl.col("asset_id").cast(previous.schema["asset_id"]))
    data = data.with_columns(content_hash(data, plan.hash_columns))
    if plan.gold_column:
        data = data.with_columns(source_gold(data, plan.gold_column, classes))
    state = previous if previous is not None else empty_state(data)
    status = asset_status(data, state, set(), all_changed=settings.all_changed)
    lfs = _lfs(settings.lf_payload, settings.lf_names)
    fresh_mask = status.get_column("_new") | status.get_column("_changed")
    vectors = None
    if settings.embed is not None:
        data = data.with_columns(_kept_index_ids(data, previous))
        data, vectors = _embed(data, fresh_mask, settings.embed)
    fresh_rows = data.filter(fresh_mask)
    kept_rows = data.filter(~fresh_mask)
    options = {"classes": list(classes), "id_column": "asset_id", "progress": False}
    if fresh_rows.height:
        fresh_votes = apply(lfs, fresh_rows, on_error=settings.on_error, **options)  # type: ignore[arg-type]
    else:
        from enrich.job.fit import no_votes

        fresh_votes = no_votes(lfs, fresh_rows, classes)
    changed = [lf for lf in lfs if lf.name in settings.changed_lf_names]
    revotes = (
        apply(changed, kept_rows, on_error=settings.on_error, **options)  # type: ignore[arg-type]
        if changed and kept_rows.height
        else None
    )
    full, stale = assemble(
        state,
        data=data,
        fresh_rows=fresh_rows,
        fresh_votes=fresh_votes,
        revote_rows=kept_rows,
        revotes=revotes,
        lf_names=settings.lf_names,
        lfs_changed=bool(settings.changed_lf_names),
        plan=plan,
    )
    touched = status.filter(pl.col("_new") | pl.col("_changed") | pl.col("_moved"))
    errors = [fresh_votes.errors] + ([revotes.errors] if revotes is not None else [])
    from enrich.labeling.engines import merge_errors

    indexed = full.get_column("index_id") if "index_id" in full.columns else None
    return Voted(
        key=task.key,
        index=task.index,
        full=full,
        previous=previous,
        touched=touched.select("asset_id", "_new", "_changed", "_moved"),
        errors=merge_errors(errors),
        counts={
            "n_read": data.height,
            "n_new": int(status.get_column("_new").sum()),
            "n_changed": int(status.get_column("_changed").sum()),
            "n_voted": fresh_rows.height,
            "n_revoted": kept_rows.height if revotes is not None else 0,
            "n_stale": stale,
            "n_embedded": 0 if vectors is None else int(vectors[1].shape[0]),
            "dim": None if vectors is None or not vectors[1].size else int(vectors[1].shape[1]),
            "n_unindexed": 0 if indexed is None else indexed.null_count(),
            "max_index_id": _max_id(indexed),
        },
        vectors=vectors,
        previous_vectors=task.previous_vectors,
    )


def fit_summary(voted: Voted, settings: RunSettings) -> pl.DataFrame:
    """The partition's vote patterns with counts: what the label model and the metrics need.

    Grouped by the votes, the gold label the model learns from (source gold, overridden by
    reviewed gold), the slice values and the label the table held (for drift).
    """
    full = voted.full
    gold = pl.Series("gold", _gold(full, settings))
    prev_label = (
        full.get_column("_prev_label").cast(pl.Int64)
        if "_prev_label" in full.columns
        else pl.Series("_prev_label", [None] * full.height, dtype=pl.Int64)
    )
    votes = [f"vote_{n}" for n in settings.lf_names]
    frame = full.select(*votes, *settings.plan.slices).with_columns(
        gold.alias("gold"), prev_label.alias("_prev_label")
    )
    keys = [*votes, "gold", *settings.plan.slices, "_prev_label"]
    return frame.group_by(keys).agg(pl.len().cast(pl.Int64).alias("count"))


def _gold(full: pl.DataFrame, settings: RunSettings) -> np.ndarray:
    """Each asset's gold class (-1: none): the source's, overridden by reviewed gold."""
    gold = (
        full.get_column("gold").cast(pl.Int64).to_numpy()
        if "gold" in full.columns
        else np.full(full.height, -1, dtype=np.int64)
    )
    if settings.reviewed is not None:
        from enrich.analysis.gold import gold_vector

        by_review = gold_vector(
            settings.reviewed, full.get_column("asset_id"), list(settings.classes)
        )
        gold = np.where(by_review >= 0, by_review, gold)
    return gold.astype(np.int64)


# -- end model -----------------------------------------------------------------------------
def model_candidates(voted: Voted, settings: RunSettings, work: EndModelWork) -> pl.DataFrame:
    """The partition's assets that may be in the end model's training sample, now or before.

    The partition's own sample by the job's rule (:func:`~enrich.job.end_model_step.
    training_sample`: gold first, then the lowest asset-id hashes), this run's and the one
    the previous outputs give: the job's sample is within the union of every partition's,
    so the driver picks it, and measures its drift, from these rows alone (at most
    ``4 * max_train_rows`` per partition).

    Returns
    -------
    pl.DataFrame
        ``asset_id``, ``_priority``, ``_gold``, ``_voted``, ``_fresh``, the previous
        outputs (``_prev_needs_review``, ``_prev_label``, ``_prev_proba_<class>``) and this
        run's label-model ``proba_<class>``.
    """
    from enrich.job.end_model_step import SAMPLE_SEED, training_sample

    full, classes = voted.full, settings.classes
    max_rows = work.settings.max_train_rows
    votes = full.select(f"vote_{n}" for n in settings.lf_names).to_numpy()
    voted_now = (votes >= 0).any(axis=1) if votes.shape[1] else np.zeros(full.height, bool)
    gold = _gold(full, settings)
    has_gold = gold >= 0
    prev = _previous_columns(full, classes)
    in_table = prev.get_column("_prev_needs_review").is_not_null().to_numpy()
    voted_before = prev.get_column("_prev_label").is_not_null().to_numpy() & in_table
    priority = full.get_column("asset_id").hash(seed=SAMPLE_SEED).to_numpy()
    keep = training_sample(voted_now, has_gold, priority, max_rows=max_rows) | training_sample(
        voted_before, has_gold & in_table, priority, max_rows=max_rows
    )
    fresh = full.get_column("asset_id").is_in(
        voted.touched.filter(pl.col("_new") | pl.col("_changed")).get_column("asset_id").implode()
    )
    frame = pl.concat(
        [
            full.select("asset_id"),
            pl.DataFrame(
                {"_priority": priority, "_gold": gold, "_voted": voted_now, "_fresh": fresh}
            ),
            prev,
            _label_proba(full, settings, work),
        ],
        how="horizontal",
    )
    return frame.filter(pl.Series(keep))


def model_training_rows(
    voted: Voted, ids: pl.Series, settings: RunSettings, work: EndModelWork
) -> pl.DataFrame:
    """The training rows ``ids`` of this partition: features, votes, gold, label-model proba.

    ``_vector`` holds the unit vectors and ``_tab`` the raw numeric columns, as
    :func:`~enrich.job.end_model_step.raw_features` reads them from the job's index.
    """
    from enrich.job.end_model_step import raw_features

    full = _numbered_for(voted, settings, work.index_starts)
    rows = np.flatnonzero(full.get_column("asset_id").is_in(ids.implode()).to_numpy())
    index = _PartitionVectors(voted, full, settings.embed) if work.embeddings else None
    vectors, tab = raw_features(full, rows, index=index, columns=work.columns)
    part = full[rows]
    frame = part.select("asset_id", *(f"vote_{n}" for n in settings.lf_names)).with_columns(
        pl.Series("_gold", _gold(full, settings)[rows])
    )
    frame = pl.concat([frame, _label_proba(part, settings, work)], how="horizontal")
    if vectors is not None:
        frame = frame.with_columns(pl.Series("_vector", vectors))
    if tab is not None:
        frame = frame.with_columns(pl.Series("_tab", tab))
    return frame


def _model_proba(
    voted: Voted, full: pl.DataFrame, settings: RunSettings, broadcast: ModelBroadcast
) -> np.ndarray:
    """Every asset's end-model probabilities ``(n, k)``, as the local engine's step gives them."""
    from enrich.job.end_model_step import predict_rows

    work, classes = broadcast.work, settings.classes
    index = _PartitionVectors(voted, full, settings.embed) if work.embeddings else None
    columns = work.columns
    if broadcast.retrained:
        rows = np.arange(full.height)
        proba = predict_rows(
            broadcast.state, broadcast.model, full, rows, index=index, columns=columns
        )
        oof = broadcast.oof
        if oof is not None and oof.height:
            joined = full.select("asset_id").join(
                oof, on="asset_id", how="left", maintain_order="left"
            )
            trained = joined.get_column(f"model_proba_{classes[0]}").is_not_null().to_numpy()
            cols = [f"model_proba_{c}" for c in classes]
            proba[trained] = joined.filter(pl.Series(trained)).select(cols).to_numpy()
        return proba
    wanted = {
        "_prev_model_label": pl.Int64,
        **{f"_prev_model_proba_{c}": pl.Float64 for c in classes},
    }
    prev = _columns_or_null(full, wanted)  # a partition new to the table has none
    proba = prev.select(f"_prev_model_proba_{c}" for c in classes).to_numpy()
    proba = np.ascontiguousarray(proba, dtype=np.float64)
    fresh = full.get_column("asset_id").is_in(
        voted.touched.filter(pl.col("_new") | pl.col("_changed")).get_column("asset_id").implode()
    )
    todo = (fresh | prev.get_column("_prev_model_label").is_null()).to_numpy()
    rows = np.flatnonzero(todo)
    if rows.size:
        proba[rows] = predict_rows(broadcast.state, None, full, rows, index=index, columns=columns)
    return proba


def _previous_columns(full: pl.DataFrame, classes: Sequence[str]) -> pl.DataFrame:
    """The previous outputs the sample's drift reads (nulls where the table had none)."""
    wanted = {
        "_prev_needs_review": pl.Boolean,
        "_prev_label": pl.Int64,
        **{f"_prev_proba_{c}": pl.Float64 for c in classes},
    }
    return _columns_or_null(full, wanted)


def _columns_or_null(frame: pl.DataFrame, wanted: Mapping[str, Any]) -> pl.DataFrame:
    """The ``wanted`` columns of ``frame`` cast to their types (all null where it has none)."""
    return frame.with_columns(
        pl.col(c).cast(t) if c in frame.columns else pl.lit(None, dtype=t).alias(c)
        for c, t in wanted.items()
    ).select(list(wanted))


def _label_proba(full: pl.DataFrame, settings: RunSettings, work: EndModelWork) -> pl.DataFrame:
    """The label model's ``proba_<class>`` of each asset (from its vote pattern)."""
    votes = [f"vote_{n}" for n in settings.lf_names]
    cols = [f"proba_{c}" for c in settings.classes]
    joined = full.select(votes).join(
        work.patterns.select(*votes, *cols), on=votes, how="left", maintain_order="left"
    )
    return joined.select(cols)


def _numbered_for(voted: Voted, settings: RunSettings, starts: Mapping[str, int]) -> pl.DataFrame:
    """The partition's assets with their index ids (new assets numbered from their block)."""
    if settings.embed is None or "index_id" not in voted.full.columns:
        return voted.full
    return _numbered(voted.full, starts.get(voted.key, 0))


class _PartitionVectors:
    """The partition's vectors by index id, stored as the job's index stores them.

    The previous vector file, with this run's vectors replacing theirs; unit length in
    float32 (the index's cosine normalization), so features equal the local engine's.
    """

    def __init__(self, voted: Voted, full: pl.DataFrame, embed: EmbedSettings | None) -> None:
        from embeddings.precomputed import embedding_matrix

        ids: list[np.ndarray] = []
        vectors: list[np.ndarray] = []
        options = dict(embed.options) if embed is not None and embed.options else None
        if voted.previous_vectors is not None and not (embed is not None and embed.rebuild):
            from enrich.job.index import read_vectors

            old_ids, old = read_vectors(voted.previous_vectors, storage_options=options)
            ids.append(old_ids)
            vectors.append(old)
        if voted.vectors is not None and voted.vectors[0].len():
            asset_ids, fresh = voted.vectors
            index_ids = (
                pl.DataFrame([asset_ids])
                .join(
                    full.select("asset_id", "index_id"),
                    on="asset_id",
                    how="left",
                    maintain_order="left",
                )
                .get_column("index_id")
                .to_numpy()
            )
            ids.append(index_ids.astype(np.int64))
            vectors.append(np.asarray(fresh, dtype=np.float32))
        pairs = [(i, v) for i, v in zip(ids, vectors, strict=True) if v.size]
        all_ids = np.concatenate([i for i, _ in pairs]) if pairs else np.zeros(0, np.int64)
        matrix = np.concatenate([v for _, v in pairs]) if pairs else np.zeros((0, 0), np.float32)
        # the last copy of an id wins (this run's vectors come last)
        last = len(all_ids) - 1 - np.unique(all_ids[::-1], return_index=True)[1]
        self._ids = all_ids[last]
        self._matrix = (
            np.ascontiguousarray(
                embedding_matrix(matrix[last], normalize=True, allow_zero=True),
                dtype=np.float32,
            )
            if matrix.size
            else matrix
        )

    def get_vectors(self, ids: np.ndarray) -> np.ndarray:
        """The vectors of index ids ``ids`` (zeros for an id without one)."""
        ids = np.asarray(ids, dtype=np.int64)
        if not self._ids.size:
            return np.zeros((ids.size, 0), dtype=np.float32)
        pos = np.clip(np.searchsorted(self._ids, ids), 0, self._ids.size - 1)
        found = self._ids[pos] == ids
        out = np.zeros((ids.size, self._matrix.shape[1]), dtype=np.float32)
        out[found] = self._matrix[pos[found]]
        return out


# -- write ---------------------------------------------------------------------------------
def write_partition(voted: Voted, settings: RunSettings, write: WriteSettings) -> Written | None:
    """Give every asset of the partition its outputs and write the rows as one Parquet file.

    An incremental run rewrites only the rows whose label or review flag flips or whose
    probabilities move past ``write.tolerance`` (and new, changed or moved assets); the
    other rows are copied from the previous file as they were (their run id, model version
    and time included), so the table equals the one the local engine leaves.

    Parameters
    ----------
    voted
        The partition after :func:`vote_partition`.
    settings, write
        The run's shared settings, and what its write shares.

    Returns
    -------
    Written or None
        None when the partition was only loaded (its source unchanged or gone) and no row
        of it moves: its file stands.
    """
    full = voted.full
    vectors_path, n_vectors = None, 0
    if settings.embed is not None:
        full = _numbered(full, write.index_starts.get(voted.key, 0))
        vectors_path, n_vectors = _write_vectors(voted, full, settings.embed, write.run_id)
    votes = [f"vote_{n}" for n in settings.lf_names]
    outputs = write.patterns
    gathered = full.select("asset_id", *votes).join(
        outputs, on=votes, how="left", maintain_order="left"
    )
    enriched = gathered.select("asset_id", *outputs.columns)  # enriched_table's order
    enriched = with_extras(
        enriched,
        full,
        plan=settings.plan,
        lf_versions=write.lf_versions,
        prev_versions=write.prev_versions,
    )
    if write.end_model is not None:
        from enrich.job.context import EndModelResult
        from enrich.job.end_model_step import with_end_model

        proba = _model_proba(voted, full, settings, write.end_model)
        ended = EndModelResult(model=None, proba=proba, sampled=np.zeros(0, dtype=bool))
        enriched = with_end_model(enriched, ended, _gold(full, settings), settings.classes)
    if write.full_refresh or voted.previous is None:
        rows, n_written = enriched, enriched.height
    else:
        compared = compare_previous(enriched, full, settings.classes)
        mask = rewrite_mask(enriched, compared, voted.touched, write.tolerance)
        if write.end_model is not None:
            mask = mask | model_rewrite_mask(enriched, full, settings.classes, write.tolerance)
        n_written = int(mask.sum())
        if n_written == 0 and voted.counts["n_read"] == 0 and voted.key not in write.stale_review:
            return None  # only loaded, and nothing moves: the partition's file stands
        if n_written == enriched.height:
            rows = enriched
        else:
            kept_ids = enriched.get_column("asset_id").filter(~mask)
            old = voted.previous.filter(pl.col("asset_id").is_in(kept_ids.implode()))
            old = old.select(
                pl.col(c).cast(t) if c in old.columns else pl.lit(None, dtype=t).alias(c)
                for c, t in enriched.schema.items()
            )
            rows = pl.concat([enriched.filter(mask), old], how="vertical").sort("asset_id")
    path, size = _write_rows(rows, settings, write.run_id, voted.index)
    summary = rows.group_by(
        summary_columns(settings.lf_names, settings.plan.slices, settings.classes)
        if "gold" in rows.columns
        else [
            c
            for c in summary_columns(settings.lf_names, settings.plan.slices, settings.classes)
            if c != "gold"
        ]
    ).agg(pl.len().cast(pl.Int64).alias("count"))
    if "gold" not in summary.columns:
        summary = summary.with_columns(pl.lit(-1, dtype=pl.Int32).alias("gold"))
    summary_path = join(SUMMARY_DIR, write.run_id, f"{voted.index:05d}.parquet")
    _write_frame(summary, join(settings.table, summary_path), settings.storage_options)
    review, n_eligible = _review_candidates(rows, settings, write)
    _write_frame(review, join(settings.table, review_path(summary_path)), settings.storage_options)
    return Written(
        key=voted.key,
        path=path,
        size=size,
        stats=_stats(rows),
        n_rows=rows.height,
        n_written=n_written,
        schema=rows.head(0).to_arrow(compat_level=pl.CompatLevel.oldest()).schema,
        summary_path=summary_path,
        summary=summary,
        review=review,
        vectors_path=vectors_path,
        n_vectors=n_vectors,
        n_review_eligible=n_eligible,
        model_counts=_model_counts(enriched, settings.classes)
        if write.end_model is not None
        else None,
        max_index_id=_max_id(full.get_column("index_id") if "index_id" in full.columns else None),
    )


def _review_candidates(
    rows: pl.DataFrame, settings: RunSettings, write: WriteSettings
) -> tuple[pl.DataFrame, int | None]:
    """The partition's best review candidates (its own queue), and how many were eligible.

    Settled assets are left out first (reviewed gold; source gold when the model learns
    from it), as on the local engine; then the partition's queue by the local engine's
    scores (:func:`~enrich.curation.review.review_queue`, ``review.max_items`` of them):
    the job's queue, the best of every asset by score, lies within the union of these.
    With ``purpose = "refit"`` (picks spread over every vote pattern) the partition sends,
    of each vote pattern, up to ``review.max_items`` assets with a refit reason (an LF
    conflict or no vote), chosen at random by id hash: the driver allocates the batch
    over the whole table's pattern counts, and no pattern can take more picks than that.
    """
    flagged = rows.filter(pl.col("needs_review"))
    settled = pl.lit(False)
    if settings.use_in_fit and "gold" in flagged.columns:
        settled = settled | (pl.col("gold").fill_null(-1) >= 0)
    reviewed = settings.reviewed
    if reviewed is not None and "asset_id" in reviewed.columns:
        ids = reviewed.get_column("asset_id").cast(flagged.schema["asset_id"], strict=False)
        settled = settled | pl.col("asset_id").is_in(ids.implode())
    eligible = flagged.filter(~settled)
    columns = [c for c in write.review_columns if c in rows.columns]
    if write.review_purpose == "refit" and write.review_max and eligible.height:
        votes = [c for c in columns if c.startswith("vote_")]
        rank = pl.col("asset_id").hash(seed=0).rank("ordinal").over(votes)
        picked = eligible.filter(pl.col("conflict") | pl.col("all_abstain")).filter(
            rank <= write.review_max
        )
        return picked.sort("asset_id").select(columns), None
    if write.review_purpose != "correct" or write.review_max == 0 or not eligible.height:
        order = eligible.sort("confidence", "asset_id", nulls_last=False)
        return order.head(write.review_max).select(columns), None
    from enrich.curation.review import review_queue

    queue = review_queue(
        eligible.select(columns),
        batch_size=write.review_max,
        low_confidence=write.review_below,
        slices=[c for c in write.review_slices if c in columns],
    )
    picked = eligible.filter(pl.col("asset_id").is_in(queue.asset_ids.implode()))
    return picked.sort("confidence", "asset_id", nulls_last=False).select(columns), queue.n_eligible


def _model_counts(enriched: pl.DataFrame, classes: Sequence[str]) -> dict[str, Any]:
    """The partition's end-model figures that add up over partitions (as the local metrics)."""
    labels = enriched.get_column("model_label").to_numpy()
    counts = np.bincount(labels[labels >= 0].astype(np.int64), minlength=len(classes))
    return {
        "n_labeled_by_model": int(enriched.get_column("label").is_null().sum()),
        "class_counts": {c: int(n) for c, n in zip(classes, counts, strict=True)},
    }


def review_path(summary_path: str) -> str:
    """Where a partition's review candidates lie, beside its summary."""
    return summary_path.removesuffix(".parquet") + ".review.parquet"


# -- embeddings ----------------------------------------------------------------------------
def _kept_index_ids(data: pl.DataFrame, previous: pl.DataFrame | None) -> pl.Series:
    """Each read asset's index id from the table (null for an asset the index lacks)."""
    if previous is None or "index_id" not in previous.columns:
        return pl.Series("index_id", [None] * data.height, dtype=pl.Int64)
    known = previous.select("asset_id", pl.col("index_id").cast(pl.Int64))
    joined = data.select("asset_id").join(known, on="asset_id", how="left", maintain_order="left")
    return joined.get_column("index_id")


def _embed(
    data: pl.DataFrame, fresh: pl.Series, embed: EmbedSettings
) -> tuple[pl.DataFrame, tuple[pl.Series, np.ndarray]]:
    """Embed the new and changed rows (every row on a rebuild); attach them for the LFs."""
    from enrich.job.index import rows_vectors

    wanted = data if embed.rebuild else data.filter(fresh)
    vectors = rows_vectors(
        wanted,
        spec=embed.spec,
        column=embed.input_column,
        batch_size=embed.batch_size,
        cache=embed.cache,
    )
    ids = wanted.get_column("asset_id")
    if embed.attach:
        column = pl.Series(embed.output_column, vectors)
        attached = pl.DataFrame([ids]).with_columns(column)
        data = data.join(attached, on="asset_id", how="left", maintain_order="left")
    return data, (ids, vectors)


def _max_id(ids: pl.Series | None) -> int:
    """The largest index id of a partition (-1: none)."""
    top = None if ids is None else ids.max()
    return -1 if top is None else int(top)  # type: ignore[arg-type]


def _numbered(full: pl.DataFrame, start: int) -> pl.DataFrame:
    """``full`` (sorted by asset id) with index ids from ``start`` where it has none."""
    missing = pl.col("index_id").is_null()
    fresh = start + missing.cast(pl.Int64).cum_sum() - 1
    return full.with_columns(
        pl.when(missing).then(fresh).otherwise(pl.col("index_id")).alias("index_id")
    )


def _write_vectors(
    voted: Voted, full: pl.DataFrame, embed: EmbedSettings, run_id: str
) -> tuple[str | None, int]:
    """Write the partition's vectors (the previous file's, with this run's replacing theirs).

    Nothing embedded: the previous file stands. Returns the file's path and its row count.
    """
    options = dict(embed.options) if embed.options else None
    if voted.vectors is None or not voted.vectors[0].len():
        path = voted.previous_vectors
        if path is None:
            return None, 0
        count = pl.scan_parquet(path, storage_options=options).select(pl.len()).collect()
        return path, int(count.item())
    ids, matrix = voted.vectors
    index_ids = (
        pl.DataFrame([ids])
        .join(full.select("asset_id", "index_id"), on="asset_id", how="left", maintain_order="left")
        .get_column("index_id")
    )
    rows = pl.DataFrame(
        [
            index_ids,
            pl.Series("vector", np.asarray(matrix, dtype=np.float32)),
            pl.Series("run_id", [run_id] * ids.len(), dtype=pl.String),
        ]
    )
    if voted.previous_vectors is not None and not embed.rebuild:
        old = pl.read_parquet(voted.previous_vectors, storage_options=options)
        old = old.filter(~pl.col("index_id").is_in(index_ids.implode()))
        rows = pl.concat([old, rows], how="vertical_relaxed")
    name = f"part-{voted.index:05d}-{run_id}-{uuid.uuid4().hex[:8]}.parquet"
    path = join(embed.vectors, name)
    _write_frame(rows.sort("index_id"), path, options)
    return path, rows.height


# -- helpers -------------------------------------------------------------------------------
def _lfs(payload: Any, names: Sequence[str]) -> list[Any]:
    """The LFs of a run: loaded from their sources on this worker, or the objects shipped."""
    from enrich.labeling.apply import as_labeling_function
    from enrich.labeling.sources import load_lfs

    if isinstance(payload, tuple) and payload and payload[0] == "sources":
        by_name = {lf.name: lf for lf in load_lfs(list(payload[1]))}
        return [as_labeling_function(by_name[name]) for name in names]
    return [as_labeling_function(lf) for lf in payload]


def _previous_rows(task: PartitionTask, settings: RunSettings) -> pl.DataFrame | None:
    """The rows the table holds for this partition (None: none, or no table yet)."""
    if settings.read_version is None:
        return None
    options = dict(settings.storage_options) if settings.storage_options else None
    if task.previous_by_filter:
        frame = (
            pl.scan_delta(settings.table, version=settings.read_version, storage_options=options)
            .filter(pl.col("source_file") == task.key)
            .collect()
        )
    elif task.previous_files:
        frame = pl.read_parquet(
            [join(settings.table, p) for p in task.previous_files], storage_options=options
        )
    else:
        return None
    return frame.sort("asset_id") if frame.height else None


def _write_rows(
    rows: pl.DataFrame, settings: RunSettings, run_id: str, index: int
) -> tuple[str, int]:
    """Write ``rows`` as a new data file of the table; its path (relative) and size."""
    name = f"part-{index:05d}-{run_id}-{uuid.uuid4().hex[:8]}.parquet"
    size = _write_frame(rows, join(settings.table, name), settings.storage_options)
    return name, size


def _write_frame(frame: pl.DataFrame, target: str, options: Mapping[str, str] | None) -> int:
    """Write ``frame`` as Parquet at ``target`` (a path or URI); the file's size in bytes."""
    import pyarrow.parquet as pq
    from pyarrow import fs

    arrow = frame.to_arrow(compat_level=pl.CompatLevel.oldest())
    if "://" in target and options:
        filesystem = fs.PyFileSystem(fs.FSSpecHandler(_fsspec(target, options)))
        path = target.split("://", 1)[1]
    elif "://" in target:  # credentials from the environment, as pyarrow reads them
        filesystem, path = fs.FileSystem.from_uri(target)
    else:
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        filesystem, path = fs.LocalFileSystem(), os.path.abspath(target)
    pq.write_table(arrow, path, filesystem=filesystem, compression="snappy")
    return int(filesystem.get_file_info(path).size)


def _fsspec(target: str, options: Mapping[str, str]) -> Any:
    # object_store keys (aws_access_key_id, aws_endpoint_url...) as the s3fs/gcsfs/adlfs kwargs
    return fsspec_filesystem(target, options)


def _stats(rows: pl.DataFrame) -> str:
    """Delta file statistics of ``rows``: row count; min, max and nulls of the key columns."""
    keys = [c for c in ("asset_id", "source_file", "content_hash") if c in rows.columns]
    mins = rows.select(pl.col(keys).min()).row(0, named=True) if rows.height else {}
    maxs = rows.select(pl.col(keys).max()).row(0, named=True) if rows.height else {}
    nulls = rows.select(pl.col(keys).null_count()).row(0, named=True)
    return json.dumps(
        {
            "numRecords": rows.height,
            "minValues": {k: v for k, v in mins.items() if v is not None},
            "maxValues": {k: v for k, v in maxs.items() if v is not None},
            "nullCount": {k: int(v) for k, v in nulls.items()},
        }
    )
