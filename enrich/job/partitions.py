"""A run on a Dask cluster whose workers read their own partitions (the driver holds no rows).

The driver plans one partition per source file (:func:`~enrich.job.partition_plan.plan_tasks`)
and ships paths; each worker reads its file and the rows the table holds for it, hashes, votes
and keeps the result (:mod:`enrich.job.worker`). The driver gathers only each partition's
vote-pattern counts (:mod:`enrich.job.partition_merge`), fits the label model on them (the fit
the local engine makes: once per distinct pattern, weighted by its count), computes the outputs
of each distinct pattern and broadcasts that small table; the workers write their partitions'
rows as Parquet files in the table's folder, and the driver commits all of them in one Delta
transaction with the run record (:mod:`enrich.job.partition_publish`: the partition state
that lets a run read only the files that changed, and retention).

With ``[embeddings]`` the workers encode and vote, and one task on a worker builds or updates
the job's FAISS index from the partitions' vector files; with ``[end_model]`` the driver
trains on the local engine's sample gathered from the partitions and the workers predict with
the broadcast model (:mod:`enrich.job.partition_steps`, :mod:`enrich.job.partition_model`).
Gaps, similar assets to fill them and the review queue are chosen from the partitions' counts,
samples and queues (:mod:`enrich.job.partition_followups`).

What this path does not do (the run then uses the driver path, and says why in a warning):
the first run of the offline image encoder (it is fitted once, on the driver, on the first
images).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from enrich._internal.frames import arrow_schema_to_polars
from enrich._internal.uri import Location
from enrich._internal.vote_arrays import VotePatterns
from enrich.errors import InputError
from enrich.io.store import commit_files, latest_run, table_schema, table_version
from enrich.job._faults import checkpoint
from enrich.job.config import JobConfig
from enrich.job.context import EnrichResult, JobResult, ReadResult, RunContext, job_paths
from enrich.job.fit import fit_predict, kept_structure, model_json
from enrich.job.index import Embedder, moved_cache_files
from enrich.job.metrics import pattern_metrics
from enrich.job.partition_followups import (
    fill_gaps_on_workers,
    found_gaps,
    gaps_summary,
    pattern_sizes,
    read_review,
    review_from_partitions,
    reviews_without,
)
from enrich.job.partition_merge import (
    as_fit_summary,
    counts_of,
    lf_errors,
    model_counts,
    pattern_counts,
    read_summary,
    vote_counts,
)
from enrich.job.partition_plan import (
    embed_settings,
    gone_sources,
    index_starts,
    partitions_to_rewrite,
    plan_tasks,
    source_storage_options,
    stored_tasks,
    usable_partitions,
)
from enrich.job.partition_publish import (
    empty_result,
    index_of,
    partition_state,
    retain_partitioned,
    table_arrow_schema,
    with_previous,
)
from enrich.job.partition_steps import end_model_on_workers, update_index_on_worker
from enrich.job.plan import lfs_to_rerun, schema_changes, unstable_lf_warnings
from enrich.job.publish import finish_committed
from enrich.job.records import peak_rss_mb, versions
from enrich.job.sources import read_gold_table
from enrich.job.state import STATE_FORMAT, Previous
from enrich.job.worker import (
    PartitionTask,
    RunSettings,
    WriteSettings,
    Written,
    fit_summary,
    vote_partition,
    write_partition,
)
from enrich.models.output import enriched_table
from enrich.votes import VoteMatrix

__all__ = ["partitioned_unsupported", "run_partitioned"]

logger = logging.getLogger(__name__)

# What a partition's summary in the table's folder and the review candidates carry.
_REVIEW_COLUMNS = (
    "asset_id",
    "label",
    "label_name",
    "confidence",
    "entropy",
    "n_votes",
    "conflict",
    "all_abstain",
    "needs_review",
    "gold",
)


def partitioned_unsupported(config: JobConfig) -> str | None:
    """Why this job cannot run with workers reading their own partitions (None: it can)."""
    fitted_encoder = job_paths(config).embeddings / "hog_pca.npz"
    if (
        config.encoder_kind == "image"
        and config.embeddings.model is None
        and not fitted_encoder.is_file()
    ):
        return (
            "the offline image encoder not fitted yet (it is fitted once, on the driver, "
            "on the first run's images)"
        )
    return None


def run_partitioned(run: RunContext) -> JobResult:
    """Run the job with the Dask workers reading and writing their own partitions.

    The phases, in order; each checkpoint is a place the crash tests kill the run.

    Parameters
    ----------
    run
        The run context, locked, with a :class:`~enrich.labeling.engines.DaskEngine`.

    Returns
    -------
    JobResult
    """
    clock = run.clock
    client = run.engine.client  # type: ignore[attr-defined]
    # the table's Location carries the job's options ([storage] + output's, ${VAR} expanded
    # when used): every store call gets it, and the workers get the expanded options
    where = run.paths.table
    storage = where.delta_options()
    source_options = source_storage_options(run.config, run.files)
    with clock.phase("read"):
        planned = _plan(run, where, storage)
    checkpoint("read")
    settings = _run_settings(run, planned, source_options)
    with clock.phase("vote"):
        voted = _vote_on_workers(client, planned, settings)
    if planned.embedder is not None:
        run.warnings.extend(moved_cache_files(run.paths, run.started))
    checkpoint("voted")
    stored = _stored_summaries(planned)
    with clock.phase("fit"):
        merged = _merge(run, settings, voted, stored)
        if merged.n_assets == 0:
            return empty_result(run, planned.table, planned.version)
        fitted = _fit(run, planned, merged)
    checkpoint("fitted")
    starts = index_starts(planned.tasks, voted.infos, planned.unchanged.values())
    ended = _EndModel()
    if run.config.end_model.enabled:
        with clock.phase("end_model"):
            ended = _end_model(run, client, planned, settings, voted, fitted, starts)
    with clock.phase("enrich"):
        writes = _write(
            run, client, planned, settings, voted, stored, merged, fitted, ended, starts
        )
    embeddings_entry = None
    if planned.embedder is not None:
        with clock.phase("index"):
            embeddings_entry = update_index_on_worker(
                run, client, planned.embedder, writes.written, writes.untouched, voted.infos
            )
    with clock.phase("enrich"):
        metrics = _metrics(run, planned, voted, merged, fitted, ended, writes)
        queue = _follow_ups(run, client, planned, merged, fitted, writes, metrics, embeddings_entry)
    record = _run_record(run, planned, merged, fitted, ended, writes, metrics, embeddings_entry)
    checkpoint("enriched")
    record["finished_at"] = dt.datetime.now(dt.UTC).isoformat()
    record["duration_s"] = round(clock.total(), 3)
    checkpoint("before_commit")
    with clock.phase("commit"):
        new_version = _commit(planned, writes, record)
    checkpoint("after_commit")
    return _finish(run, planned, record, metrics, queue, new_version)


# -- what the phases hand on ---------------------------------------------------------------
@dataclass(frozen=True)
class _Plan:
    """The read phase: the previous run, what changed since, and each partition's task."""

    where: Location
    storage: dict[str, str] | None
    version: int | None
    record: dict[str, Any] | None
    lf_versions: dict[str, str]
    prev_versions: dict[str, str]
    changed_lfs: list[Any]
    hash_scheme: dict[str, Any]
    rehash: bool
    embedder: Embedder | None
    kept: dict[str, Any] | None
    reviewed: pl.DataFrame | None
    tasks: list[PartitionTask]
    unchanged: dict[str, dict[str, Any]]

    @property
    def table(self) -> str:
        """The output table's path or URI."""
        return str(self.where)


@dataclass
class _Votes:
    """The vote phase: the voted partitions (futures on the workers), summaries and counts."""

    futures: list[Any]
    summaries: list[pl.DataFrame]
    infos: list[dict[str, Any]]

    def take_futures(self) -> list[Any]:
        """Hand the voted partitions over to the write phase and keep no reference.

        The workers release a partition's rows once no future names it.
        """
        futures, self.futures = self.futures, []
        return futures


@dataclass(frozen=True)
class _Merged:
    """The partitions' vote-pattern counts merged: one row per pattern, with its count."""

    fit_rows: pl.DataFrame
    counts: dict[str, int]
    n_assets: int
    vote_columns: list[str]

    @property
    def n_changed(self) -> int:
        """Assets new or changed since the last run."""
        return self.counts["n_new"] + self.counts["n_changed"]


@dataclass(frozen=True)
class _PatternFit:
    """The fit phase: the label model fitted on the patterns, and each pattern's outputs."""

    patterns: VotePatterns
    labelled: VotePatterns | None
    structure: str | None
    chosen_at: int
    model: Any
    pattern_proba: np.ndarray
    model_json: str
    model_version: str
    by_pattern: pl.DataFrame


@dataclass(frozen=True)
class _EndModel:
    """The end-model phase: the broadcast model, its state and metrics, partitions loaded."""

    broadcast: Any = None
    state: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    loaded: list[PartitionTask] = field(default_factory=list)


@dataclass(frozen=True)
class _Writes:
    """The write phase: the partitions written, those left untouched, and how."""

    written: list[Written]
    untouched: dict[str, dict[str, Any]]
    reloaded: list[PartitionTask]
    full_refresh: bool
    review_columns: tuple[str, ...]


# -- the phases ----------------------------------------------------------------------------
def _plan(run: RunContext, where: Location, storage: dict[str, str] | None) -> _Plan:
    """Compare with the previous run and plan which partitions to read, load or leave."""
    config, plan, classes = run.config, run.plan, run.classes
    table = str(where)
    version = table_version(where)
    latest = latest_run(where) if version is not None else None
    if version is not None and latest is None:
        raise InputError(
            f"output.path {table!r} is a Delta table that enrich did not write (no run "
            "record in its history); choose a new output.path"
        )
    record = latest[1] if latest else None
    if record is not None and record.get("state_format") != STATE_FORMAT:
        raise InputError(
            f"the table {table!r} was written by another enrich state format "
            f"({record.get('state_format')!r}, this is {STATE_FORMAT}); write to a new "
            "output.path"
        )
    lf_versions = {lf.name: lf.version for lf in run.lfs}
    prev_versions: dict[str, str] = record["lf_versions"] if record else {}
    classes_changed = record is not None and tuple(record["classes"]) != classes
    changed_lfs, unstable = lfs_to_rerun(
        run.lfs, prev_versions, classes_changed=classes_changed, rerun=run.rerun_lfs
    )
    run.warnings.extend(unstable_lf_warnings(unstable))
    hash_scheme = plan.hash_scheme()
    if record is not None:
        run.warnings.extend(schema_changes(record, plan))
    rehash = record is not None and record.get("hash_scheme") != hash_scheme
    full_read = record is None or rehash or bool(changed_lfs)
    previous = None if record is None else Previous(version or 0, record, pl.DataFrame())
    embedder = (
        Embedder.for_job(config, run.paths, previous, run.lfs, changed_lfs, load=False)
        if config.embeddings.enabled
        else None
    )
    kept = usable_partitions(where, version, record)
    if embedder is not None:
        run.warnings.extend(embedder.notes)
        if not embedder.rebuild and any(
            not entry.get("vectors") for entry in (kept or {None: {}}).values()
        ):
            # the partitions' vector files are missing (a table the local engine wrote,
            # or embeddings newly on): every asset is embedded again (the cache serves
            # what was encoded before) and the index is rebuilt from the files
            embedder.rebuild = True
        full_read = full_read or embedder.rebuild
    if record is not None and kept is None:
        run.warnings.append(
            "the table has no partition state this engine can use (written by the local "
            "engine, or compacted since): every partition is read and rewritten once"
        )
    reviewed = (
        read_gold_table(config.gold.path, storage_options=config.storage_options_for("source"))
        if config.gold.path
        else None
    )
    tasks, unchanged = plan_tasks(
        run.files,
        kept,
        full_read=full_read or reviewed is not None,
        has_table=version is not None,
        gone=gone_sources(where, version, run.files, kept),
    )
    return _Plan(
        where=where,
        storage=storage,
        version=version,
        record=record,
        lf_versions=lf_versions,
        prev_versions=prev_versions,
        changed_lfs=changed_lfs,
        hash_scheme=hash_scheme,
        rehash=rehash,
        embedder=embedder,
        kept=kept,
        reviewed=reviewed,
        tasks=tasks,
        unchanged=unchanged,
    )


def _run_settings(
    run: RunContext, planned: _Plan, source_options: dict[str, str] | None
) -> RunSettings:
    """What every partition's task shares (sent with each task, not scattered).

    A worker that dies takes scattered data with it, while tasks are recomputed elsewhere
    from their arguments.
    """
    config = run.config
    return RunSettings(
        plan=run.plan,
        classes=run.classes,
        lf_payload=("sources", tuple(config.labeling_functions.sources), None),
        lf_names=tuple(lf.name for lf in run.lfs),
        lf_versions=tuple(lf.version for lf in run.lfs),
        changed_lf_names=tuple(lf.name for lf in planned.changed_lfs),
        on_error=config.labeling_functions.on_error,
        all_changed=planned.rehash,
        table=planned.table,
        read_version=planned.version,
        storage_options=planned.storage,
        source_options=source_options,
        reviewed=planned.reviewed,
        use_in_fit=config.gold.use_in_fit,
        embed=embed_settings(run, planned.embedder),
    )


def _vote_on_workers(client: Any, planned: _Plan, settings: RunSettings) -> _Votes:
    """Vote the partitions to read on the workers; gather their fit summaries and counts."""
    voted = client.map(vote_partition, planned.tasks, settings=settings, pure=False)
    summaries = client.gather(client.map(fit_summary, voted, settings=settings, pure=False))
    infos = client.gather(client.map(counts_of, voted, pure=False))
    return _Votes(futures=voted, summaries=summaries, infos=infos)


def _stored_summaries(planned: _Plan) -> dict[str, pl.DataFrame]:
    """The unchanged partitions' stored summaries, read from the table's folder."""
    return {
        key: read_summary(planned.table, entry, planned.storage)
        for key, entry in planned.unchanged.items()
    }


def _merge(
    run: RunContext, settings: RunSettings, voted: _Votes, stored: dict[str, pl.DataFrame]
) -> _Merged:
    """Merge the voted and stored partitions' summaries into one count per vote pattern."""
    votes_cols = [f"vote_{lf.name}" for lf in run.lfs]
    fit_rows = pl.concat(
        [*voted.summaries, *(as_fit_summary(s, settings) for s in stored.values())],
        how="vertical_relaxed",
    )
    keys = [*votes_cols, "gold", *run.plan.slices, "_prev_label"]
    fit_rows = fit_rows.group_by(keys).agg(pl.col("count").sum())
    counts = vote_counts(voted.infos)
    n_assets = int(fit_rows.get_column("count").sum())
    return _Merged(fit_rows=fit_rows, counts=counts, n_assets=n_assets, vote_columns=votes_cols)


def _fit(run: RunContext, planned: _Plan, merged: _Merged) -> _PatternFit:
    """Fit the label model once per distinct vote pattern and compute each pattern's outputs.

    The model's structure is the previous run's while few assets changed since it was
    chosen (:func:`~enrich.job.fit.kept_structure`).
    """
    config, classes = run.config, run.classes
    patterns, labelled = pattern_counts(merged.fit_rows, merged.vote_columns)
    structure, chosen_at = kept_structure(
        planned.record,
        n_assets=merged.n_assets,
        n_changed=merged.n_changed,
        lfs_changed=bool(planned.changed_lfs),
        params=config.label_model.params,
    )
    model, pattern_proba = fit_predict(
        patterns,
        labelled if config.gold.use_in_fit else None,
        cardinality=len(classes),
        random_state=config.label_model.random_state,
        params=config.label_model.params,
        structure=structure,
    )
    text = model_json(model)
    model_version = hashlib.sha256(text.encode()).hexdigest()[:16]
    by_pattern = enriched_table(
        VoteMatrix(
            votes=patterns.patterns,
            lf_names=tuple(lf.name for lf in run.lfs),
            asset_ids=pl.Series("asset_id", np.arange(patterns.n_patterns)),
            lf_versions=tuple(lf.version for lf in run.lfs),
            class_names=classes,
        ),
        pattern_proba,
        run_id=run.run_id,
        model_version=model_version,
        created_at=run.started,
        review_below=config.review.below_confidence,
    ).drop("asset_id")
    return _PatternFit(
        patterns=patterns,
        labelled=labelled,
        structure=structure,
        chosen_at=chosen_at,
        model=model,
        pattern_proba=pattern_proba,
        model_json=text,
        model_version=model_version,
        by_pattern=by_pattern,
    )


def _end_model(
    run: RunContext,
    client: Any,
    planned: _Plan,
    settings: RunSettings,
    voted: _Votes,
    fitted: _PatternFit,
    starts: dict[str, int],
) -> _EndModel:
    """Train the end model on the driver from the partitions' sample; broadcast it.

    The training sample spans every asset: the unchanged partitions are loaded too (their
    previous rows; nothing is voted) and join ``voted``; they are written only where a row
    moves.
    """
    loaded = stored_tasks(planned.unchanged)
    if loaded:
        more = client.map(vote_partition, loaded, settings=settings, pure=False)
        voted.futures = [*voted.futures, *more]
    broadcast, state, metrics = end_model_on_workers(
        run,
        client,
        voted.futures,
        settings,
        fitted.by_pattern,
        starts,
        planned.record,
        planned.embedder,
        voted.infos,
        planned.where,
    )
    return _EndModel(broadcast=broadcast, state=state, metrics=metrics, loaded=loaded)


def _write(
    run: RunContext,
    client: Any,
    planned: _Plan,
    settings: RunSettings,
    voted: _Votes,
    stored: dict[str, pl.DataFrame],
    merged: _Merged,
    fitted: _PatternFit,
    ended: _EndModel,
    starts: dict[str, int],
) -> _Writes:
    """Write the partitions whose rows change, as Parquet files in the table's folder.

    Unchanged partitions are written only where the refitted model moves a row (every one
    on a full refresh). When a column's type changes, every row is rewritten (the files
    just written stay unreferenced, as a killed run's would).
    """
    config, classes, record = run.config, run.classes, planned.record
    full_refresh = (
        record is None
        or planned.kept is None
        or planned.rehash
        or bool(planned.changed_lfs)
        or set(planned.prev_versions) != set(planned.lf_versions)
    )
    tolerance = config.output.proba_tolerance
    voted_futures = voted.take_futures()
    stale_review = (
        reviews_without(planned.table, planned.unchanged, merged.vote_columns, planned.storage)
        if config.review.purpose == "refit"
        else set()
    )
    while True:
        rewrite = (
            set()  # every partition is loaded already
            if config.end_model.enabled
            else set(planned.unchanged)
            if full_refresh
            else partitions_to_rewrite(
                stored, fitted.by_pattern, merged.vote_columns, classes, tolerance
            )
            | stale_review
        )
        moved = {key: entry for key, entry in planned.unchanged.items() if key in rewrite}
        write = WriteSettings(
            patterns=fitted.by_pattern,
            full_refresh=full_refresh,
            tolerance=tolerance,
            lf_versions=planned.lf_versions,
            prev_versions=planned.prev_versions,
            run_id=run.run_id,
            review_max=max(config.review.max_items, 0),
            review_columns=(
                *_REVIEW_COLUMNS,
                *run.plan.slices,
                *(f"proba_{c}" for c in classes),
                # refit spreads its picks over the LF vote patterns
                *(merged.vote_columns if config.review.purpose == "refit" else ()),
            ),
            review_below=config.review.below_confidence,
            review_purpose=config.review.purpose,
            review_slices=tuple(config.source.slice_columns),
            index_starts=starts,
            end_model=ended.broadcast,
            stale_review=frozenset(stale_review),
        )
        reload = stored_tasks(moved)
        more = client.map(vote_partition, reload, settings=settings, pure=False) if reload else []
        gathered: list[Written | None] = client.gather(
            client.map(
                write_partition,
                [*voted_futures, *more],
                settings=settings,
                write=write,
                pure=False,
            )
        )
        written = [w for w in gathered if w is not None]
        if planned.version is None or full_refresh or not written:
            break
        schema = arrow_schema_to_polars(written[0].schema)
        if schema == table_schema(planned.where):
            break
        # a column's type changed: every row is rewritten (the files just written stay
        # unreferenced, as a killed run's would)
        run.warnings.append("the enriched table's schema changes: every row is rewritten")
        full_refresh = True
    del voted_futures, more
    rewritten = {w.key for w in written}
    untouched = {k: e for k, e in planned.unchanged.items() if k not in rewritten}
    return _Writes(
        written=written,
        untouched=untouched,
        reloaded=[*reload, *ended.loaded],
        full_refresh=full_refresh,
        review_columns=write.review_columns,
    )


def _metrics(
    run: RunContext,
    planned: _Plan,
    voted: _Votes,
    merged: _Merged,
    fitted: _PatternFit,
    ended: _EndModel,
    writes: _Writes,
) -> dict[str, Any]:
    """The run's metrics from the pattern counts, the end model's counts and the LF errors."""
    classes = run.classes
    metrics = pattern_metrics(
        merged.fit_rows,
        fitted.by_pattern,
        patterns=fitted.patterns,
        labelled=fitted.labelled,
        model=fitted.model,
        pattern_proba=fitted.pattern_proba,
        classes=classes,
        lf_names=[lf.name for lf in run.lfs],
        previous_record=planned.record,
        slice_columns=run.config.source.slice_columns,
        min_slice_size=run.config.gaps.min_slice_size,
    )
    if ended.metrics is not None:
        metrics["end_model"] = {
            **ended.metrics,
            **model_counts(writes.written, writes.untouched, classes),
            "note": "agreement with gold and the label model (overall, per class, per "
            "slice) is computed by the local engine only",
        }
    metrics["lf_errors"] = lf_errors(voted.infos)
    return metrics


def _follow_ups(
    run: RunContext,
    client: Any,
    planned: _Plan,
    merged: _Merged,
    fitted: _PatternFit,
    writes: _Writes,
    metrics: dict[str, Any],
    embeddings_entry: dict[str, Any] | None,
) -> Any:
    """Find the gaps, fill them from the index on the workers, and build the review queue.

    Adds the gaps (and the review's eligible count) to ``metrics``; returns the queue.
    """
    config, written, untouched = run.config, writes.written, writes.untouched
    found = found_gaps(
        merged.fit_rows,
        fitted.by_pattern,
        lf_names=[lf.name for lf in run.lfs],
        classes=run.classes,
        slice_columns=config.source.slice_columns,
        settings=config.gaps,
    )
    metrics["gaps"] = gaps_summary(found, config.gaps, has_index=planned.embedder is not None)
    gap_picks, gap_rows = None, None
    if (
        found is not None
        and embeddings_entry is not None
        and metrics["gaps"]["candidates_note"] is None  # gaps to fill, with a budget
    ):
        gap_picks, gap_rows = fill_gaps_on_workers(
            run,
            client,
            found,
            metrics["gaps"],
            [(index_of(w, planned.tasks, writes.reloaded), [w.path]) for w in written]
            + [(int(e["index"]), list(e["files"])) for e in untouched.values()],
            embeddings_entry,
            planned.reviewed,
            writes.review_columns,
        )
    candidates = [w.review for w in written] + [
        read_review(planned.table, e, planned.storage) for e in untouched.values()
    ]
    queue = review_from_partitions(
        candidates,
        config,
        metrics,
        planned.reviewed,
        gap_picks,
        gap_rows,
        pattern_sizes(merged.fit_rows, merged.vote_columns, config),
    )
    eligible = [w.n_review_eligible for w in written] + [
        e.get("n_review_eligible") for e in untouched.values()
    ]
    if queue is not None and "review" in metrics and None not in eligible:
        metrics["review"]["n_eligible"] = int(sum(eligible))  # type: ignore[arg-type]
    return queue


def _run_record(
    run: RunContext,
    planned: _Plan,
    merged: _Merged,
    fitted: _PatternFit,
    ended: _EndModel,
    writes: _Writes,
    metrics: dict[str, Any],
    embeddings_entry: dict[str, Any] | None,
) -> dict[str, Any]:
    """The run record committed with the table version, with the partitions' state.

    ``finished_at`` and ``duration_s`` are set just before the commit.
    """
    config, written, counts, record = run.config, writes.written, merged.counts, planned.record
    partitions = partition_state(
        written,
        writes.untouched,
        tasks=planned.tasks,
        reloaded=writes.reloaded,
        files=run.files,
        kept=planned.kept,
        vectors=planned.embedder is not None,
    )
    n_written = sum(w.n_written for w in written)
    out_counts = {
        "n_assets": merged.n_assets,
        "n_new": counts["n_new"],
        "n_changed": counts["n_changed"],
        "n_unchanged": merged.n_assets - counts["n_new"] - counts["n_changed"],
        "n_read": counts["n_read"],
        "n_files": len(run.files),
        "n_files_read": sum(1 for t in planned.tasks if t.source is not None),
        "n_voted": counts["n_voted"],
        "n_revoted": counts["n_revoted"],
        "n_lfs_rerun": len(planned.changed_lfs),
        "n_written": n_written,
        "n_partitions": len(partitions),
        "n_partitions_written": len(written),
    }
    structure_since = (record or {}).get("label_model_structure") or {}
    model = fitted.model
    return {
        "state_format": STATE_FORMAT,
        "run_id": run.run_id,
        "started_at": run.started.isoformat(),
        "finished_at": None,
        "duration_s": None,
        "config_hash": config.config_hash(),
        "config": config.model_dump(mode="json"),
        "engine": run.engine.kind,
        "mode": _mode(planned, writes),
        "classes": list(run.classes),
        "lf_versions": planned.lf_versions,
        "lfs_rerun": [lf.name for lf in planned.changed_lfs],
        "model": {
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "version": fitted.model_version,
            "random_state": config.label_model.random_state,
            "params": json.loads(fitted.model_json),
        },
        "label_model_structure": {
            "structure": getattr(model, "structure_", None),
            "chosen_at_assets": fitted.chosen_at,
            "changed_since": structure_since.get("changed_since", 0) + merged.n_changed
            if fitted.structure
            else 0,
            "kept": fitted.structure is not None,
        },
        "end_model": ended.state or None,
        "hash_scheme": planned.hash_scheme,
        "embeddings": embeddings_entry,
        "source": {
            "files": {f.path: f.fingerprint for f in run.files},
            "schema": run.plan.schema_record(),
        },
        "partitions": partitions,
        "counts": out_counts,
        "metrics": metrics,
        "timings": run.clock.timings,
        "peak_rss_mb": peak_rss_mb(),
        "warnings": run.warnings,
        "versions": versions(),
    }


def _mode(planned: _Plan, writes: _Writes) -> str:
    """How the commit changes the table: ``create``, ``overwrite`` or ``partitions``."""
    if planned.version is None:
        return "create"
    return "overwrite" if writes.full_refresh else "partitions"


def _commit(planned: _Plan, writes: _Writes, record: dict[str, Any]) -> int:
    """Commit the partitions' new files, the files they replace and the record in one go."""
    written, full_refresh = writes.written, writes.full_refresh
    replaced = [
        f
        for key in (w.key for w in written)
        for f in (planned.kept or {}).get(key, {}).get("files", [])
    ]
    return commit_files(
        planned.where,
        adds=[{"path": w.path, "size": w.size, "stats": w.stats} for w in written],
        removes=[] if full_refresh else replaced,
        schema=written[0].schema if written else table_arrow_schema(planned.where),
        read_version=planned.version,
        record=record,
        overwrite=full_refresh and planned.version is not None,
        storage_options=dict(planned.storage) if planned.storage else None,
    )


def _finish(
    run: RunContext,
    planned: _Plan,
    record: dict[str, Any],
    metrics: dict[str, Any],
    queue: Any,
    new_version: int,
) -> JobResult:
    """Finish the committed run: runs table, retention and reports, as every engine does."""
    read = ReadResult(
        previous=None,
        lf_versions=planned.lf_versions,
        prev_versions=planned.prev_versions,
        changed_lfs=planned.changed_lfs,
        hash_scheme=planned.hash_scheme,
        embedder=planned.embedder,
        manifest=record["source"]["files"],
        n_files_read=record["counts"]["n_files_read"],
        state=pl.DataFrame(),
        status=pl.DataFrame(),
        data=None,
    )
    if planned.record is not None:
        read = with_previous(
            read,
            Previous(version=planned.version or 0, record=planned.record, state=pl.DataFrame()),
        )
    out = EnrichResult(rows=pl.DataFrame(), mode=record["mode"], metrics=metrics, queue=queue)
    return finish_committed(run, read, out, record, new_version, retain=retain_partitioned)
