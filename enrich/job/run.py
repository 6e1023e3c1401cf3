"""The nightly batch job: incremental, atomic and recoverable enrichment of a Delta table.

:func:`run_job` reads the assets of ``[source]``, works out which are new or changed (a hash
of the columns the job reads) and which LFs are new or changed (their version), votes only
where something changed, refits the label model on every vote, and writes the result to
the output Delta table in ONE commit whose metadata is the run record. Everything runs
under a lock on the output; a run killed at any moment leaves the previous table version
intact, and the next run finishes the work (the table is keyed by asset id: no duplicates).

What is reused between runs, and why it is safe:

- A source file whose size and modification time are unchanged is not read again: its
  assets keep their content hash, votes and slice/gold values from the table.
- An asset whose content hash is unchanged keeps its votes; an LF whose version changed
  (or a new LF) is re-run on every asset for its column only.
- Rows of unchanged assets are rewritten only when their label or review flag flips or a
  probability moves by more than ``output.proba_tolerance``; their ``run_id`` and
  ``model_version`` then still say which run and model wrote them.
- All of that state lives in the output table itself, so it advances with the same single
  commit as the labels: a run that dies before the commit leaves nothing behind but
  unreferenced data files (and content-keyed embedding cache entries), both harmless.

>>> import tempfile
>>> from importlib import resources
>>> data = str(resources.files("enrich") / "data" / "youtube_spam.parquet")
>>> pack = "labeling_functions.packs.youtube_spam"
>>> with tempfile.TemporaryDirectory() as out:
...     config = JobConfig.model_validate({
...         "source": {"path": data, "text_column": "text"},
...         "labeling_functions": {"sources": [f"{pack}:subscribe", f"{pack}:link"],
...                                "classes": ["HAM", "SPAM"]},
...         "output": {"path": f"{out}/enriched"}})
...     first = run_job(config, progress=False)
...     again = run_job(config, progress=False)        # nothing changed: nothing read again
...     first.counts["n_new"], first.table_version, again.counts["n_read"], again.table_version
(1953, 0, 0, 1)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import polars as pl

from enrich._internal.progress import progress_policy
from enrich._internal.vote_arrays import compress_votes
from enrich.errors import DiskFullError, InputError, SourceSchemaError
from enrich.io.store import (
    RunLock,
    commit_enriched,
    disk_full_error,
    is_disk_full,
    table_schema,
    table_version,
)
from enrich.job._faults import checkpoint
from enrich.job.config import EngineConfig, JobConfig
from enrich.job.context import (
    EndModelResult,
    EnrichResult,
    FitResult,
    JobResult,
    ReadResult,
    RunContext,
    VoteResult,
    job_paths,
)
from enrich.job.end_model_step import end_model_step, with_end_model
from enrich.job.fit import (
    distinct_with_gold,
    enriched_by_pattern,
    fit_predict,
    gold_labels,
    kept_structure,
    model_json,
    no_votes,
    source_gold,
    vote_matrix,
    with_extras,
)
from enrich.job.followups import gap_candidates, gold_suspects, queue_for_review
from enrich.job.index import Embedder, moved_cache_files
from enrich.job.metrics import end_model_metrics, run_metrics
from enrich.job.partitions import partitioned_unsupported, run_partitioned
from enrich.job.plan import (
    check_lf_names,
    content_hash,
    lfs_to_rerun,
    plan_columns,
    schema_changes,
    unstable_lf_warnings,
)
from enrich.job.publish import finish_committed
from enrich.job.records import Clock, peak_rss_mb, recover, versions
from enrich.job.sources import list_source_files, read_gold_table, read_sources
from enrich.job.state import (
    STATE_FORMAT,
    assemble,
    asset_status,
    compare_previous,
    empty_state,
    load_previous,
    model_rewrite_mask,
    rewrite_mask,
)
from enrich.labeling.apply import as_labeling_function
from enrich.labeling.engines import DaskEngine, Engine, LocalEngine, merge_errors
from enrich.labeling.sources import load_lfs
from enrich.models.output import new_run_id

__all__ = ["JobResult", "SourceSchemaError", "run_job"]

logger = logging.getLogger(__name__)


# -- the run: named phases over one run context --------------------------------------------
def run_job(
    config: JobConfig,
    *,
    progress: bool | None = None,
    engine: Engine | None = None,
    rerun_lfs: Sequence[str] | Literal["all"] | None = None,
) -> JobResult:
    """Run the job ``config`` describes; the table advances by exactly one commit.

    Parameters
    ----------
    config
        A validated job (see :func:`enrich.job.config.load_job_config`); relative paths are
        taken from the working directory.
    progress
        None (default): bars for long steps, only in a terminal or notebook (never
        in a log file); True: always; False: never (``enrich run --quiet``).
    engine
        An engine to use instead of the one ``[engine]`` describes (e.g. a
        :class:`~enrich.labeling.engines.DaskEngine` on an existing client); not closed here.
    rerun_lfs
        LF names to re-run on every asset even though their version did not change, or
        ``"all"`` (``enrich run --rerun-lfs``). LFs whose version cannot cover what they
        depend on (see ``LabelingFunction.version_notes``) are re-run on every run anyway.

    Returns
    -------
    JobResult

    Raises
    ------
    InputError
        Bad input, found before anything is written: a missing or unreadable source file
        (named), unknown columns (the message lists the available ones), a schema change,
        duplicate asset ids, an LF source that cannot be loaded.
    RunLockedError
        Another run holds the output for longer than ``output.lock_timeout``.
    ConcurrentRunError
        Someone else committed to the table while this run worked; nothing was written.
    LFApplicationError
        An LF failed (with ``labeling_functions.on_error = "raise"``).
    """
    if config.task_kind != "multiclass":  # a multi-label task, or several tasks
        from enrich.job.multilabel import run_tasks_job

        return run_tasks_job(config, progress=progress, engine=engine, rerun_lfs=rerun_lfs)
    run = _load(config, progress=progress, rerun_lfs=rerun_lfs)
    logger.info("run %s: %d source file(s), %d LF(s)", run.run_id, len(run.files), len(run.lfs))
    with locked_output(run):
        run.engine = engine or make_engine(config.engine)
        try:
            if isinstance(run.engine, DaskEngine):
                reason = partitioned_unsupported(config)
                if reason is None:
                    return run_partitioned(run)
                run.warnings.append(
                    f"the Dask workers do not read their own partitions with {reason}: "
                    "the driver reads the source and ships the rows"
                )
            return _run_phases(run)
        finally:
            if engine is None:
                run.engine.close()


@contextmanager
def locked_output(run: RunContext) -> Iterator[None]:
    """Hold the output's run lock and finish what runs killed after their commit left.

    A full disk met inside is raised as :class:`~enrich.errors.DiskFullError` naming the
    table. Every kind of job runs inside it.
    """
    paths, retention = run.paths, run.config.retention
    try:
        with RunLock(
            paths.lock,
            timeout=run.config.output.lock_timeout,
            run_id=run.run_id,
            target=str(paths.table),
        ):
            checkpoint("locked")
            recover(paths, keep_reports=retention.keep_reports if retention.enabled else None)
            yield
    except Exception as exc:
        if is_disk_full(exc) and not isinstance(exc, DiskFullError):
            raise disk_full_error(paths.table, "the run's output") from exc
        raise


def _run_phases(run: RunContext) -> JobResult:
    """The phases of a locked run, in order; each checkpoint is a place the crash tests kill."""
    clock = run.clock
    with clock.phase("read"):
        read = _read(run)
    checkpoint("read")
    if read.n_total == 0:
        return _empty_result(run)
    with clock.phase("vote"):
        voted = _vote(run, read)
    checkpoint("voted")
    with clock.phase("fit"):
        fitted = _fit(run, read, voted)
    checkpoint("fitted")
    ended = None
    if run.config.end_model.enabled:
        with clock.phase("end_model"):
            ended = end_model_step(run, read, voted, fitted)
    with clock.phase("enrich"):
        out = _enrich(run, read, voted, fitted, ended)
    checkpoint("enriched")
    record = _record(run, read, voted, fitted, out, ended)
    checkpoint("before_commit")
    return commit_run(run, read, out, record)


def commit_run(
    run: RunContext, read: ReadResult, out: EnrichResult, record: dict[str, Any]
) -> JobResult:
    """Commit the run's rows and record in one Delta transaction, then finish the run."""
    with run.clock.phase("commit"):
        version = commit_enriched(
            run.paths.table,
            out.rows,
            mode=out.mode,
            read_version=read.previous.version if read.previous else None,
            record=record,
        )
    checkpoint("after_commit")
    return finish_committed(run, read, out, record, version)


def _load(
    config: JobConfig,
    *,
    progress: bool | None,
    rerun_lfs: Sequence[str] | Literal["all"] | None = None,
) -> RunContext:
    """Load the LFs, find and inspect the source files, plan the columns (before the lock)."""
    started = dt.datetime.now(dt.UTC)
    clock = Clock()
    run_id = new_run_id(started)
    paths = job_paths(config)
    with clock.phase("load"):
        lfs = [as_labeling_function(lf) for lf in load_lfs(config.labeling_functions.sources)]
        check_lf_names(lfs)
        forced = _forced_reruns(lfs, rerun_lfs)
        files = list_source_files(config)
        plan = plan_columns(
            files,
            lfs,
            id_column=config.source.id_column,
            slice_columns=_kept_columns(config),
            gold_column=config.gold.column,
            embedding_input=config.embedding_input_column,
            embedding_output=config.embeddings.output_column,
        )
    return RunContext(
        config=config,
        paths=paths,
        run_id=run_id,
        started=started,
        clock=clock,
        progress=progress_policy(progress),  # resolved once: False in a log
        lfs=lfs,
        files=files,
        plan=plan,
        rerun_lfs=forced,
    )


def _kept_columns(config: JobConfig) -> list[str]:
    """Return the source columns kept in the table.

    The slices, and the end model's feature columns (so an incremental run has every asset's
    features without reading its file again).
    """
    kept = list(config.source.slice_columns)
    if config.end_model.enabled:
        kept += [c for c in config.end_model.feature_columns if c not in kept]
    return kept


def _forced_reruns(lfs: Sequence[Any], names: Sequence[str] | str | None) -> frozenset[str]:
    """The LF names ``rerun_lfs`` asks for, checked against the job's LFs."""
    known = [lf.name for lf in lfs]
    if names is None:
        return frozenset()
    if names == "all":
        return frozenset(known)
    wanted = [names] if isinstance(names, str) else list(names)
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise InputError(
            f"rerun_lfs names {unknown} but the job has no LF of that name; its LFs: "
            f"{sorted(known)} (or pass 'all')"
        )
    return frozenset(wanted)


def _read(run: RunContext) -> ReadResult:
    """Compare with the previous run and read what changed.

    Read the files that changed (all, when a full read is due); hash and classify every asset
    read.
    """
    config, plan, classes = run.config, run.plan, run.classes
    previous = load_previous(
        run.paths.table, id_column=plan.id_column, id_dtype=plan.dtypes.get(plan.id_column)
    )
    if config.task_kind == "multiclass" and previous and previous.record.get("tasks"):
        raise InputError(
            f"the table {str(run.paths.table)!r} holds the state of a multi-label or "
            "several-task job; write this job to a new output.path"
        )
    lf_versions = {lf.name: lf.version for lf in run.lfs}
    prev_versions: dict[str, str] = previous.record["lf_versions"] if previous else {}
    classes_changed = previous is not None and tuple(previous.record["classes"]) != classes
    changed_lfs, unstable = lfs_to_rerun(
        run.lfs, prev_versions, classes_changed=classes_changed, rerun=run.rerun_lfs
    )
    run.warnings.extend(unstable_lf_warnings(unstable))
    hash_scheme = plan.hash_scheme()
    if previous is not None:
        run.warnings.extend(schema_changes(previous.record, plan))
    embedder = Embedder.for_job(config, run.paths, previous, run.lfs, changed_lfs)
    if embedder is not None:
        run.warnings.extend(embedder.notes)  # damaged derived data, moved aside and rebuilt
    full_read = (
        previous is None
        or previous.record.get("hash_scheme") != hash_scheme
        or bool(changed_lfs)
        or (embedder is not None and embedder.rebuild)
    )
    manifest = {f.path: f.fingerprint for f in run.files}
    prev_manifest: dict[str, Any] = previous.record["source"]["files"] if previous else {}
    to_read = [f for f in run.files if full_read or prev_manifest.get(f.path) != f.fingerprint]
    data = read_sources(to_read, plan, storage_options=config.storage_options_for("source"))
    data = data.with_columns(content_hash(data, plan.hash_columns))
    if plan.gold_column:
        data = data.with_columns(source_gold(data, plan.gold_column, classes))
    state = previous.state if previous else empty_state(data)
    unread_files = {f.path for f in run.files} - {f.path for f in to_read}
    rehash = previous is not None and previous.record.get("hash_scheme") != hash_scheme
    status = asset_status(data, state, unread_files, all_changed=rehash)
    return ReadResult(
        previous=previous,
        lf_versions=lf_versions,
        prev_versions=prev_versions,
        changed_lfs=changed_lfs,
        hash_scheme=hash_scheme,
        embedder=embedder,
        manifest=manifest,
        n_files_read=len(to_read),
        state=state,
        status=status,
        data=data,
    )


def _empty_result(run: RunContext) -> JobResult:
    """No asset in the source nor in the table: nothing to do, nothing written."""
    message = (
        f"the source ({len(run.files)} file(s)) holds no assets and the table has none; "
        "nothing to do, nothing written"
    )
    logger.info(message)
    return JobResult(
        status="empty",
        run_id=run.run_id,
        message=message,
        table_path=run.paths.table,
        table_version=table_version(run.paths.table),
        counts={"n_assets": 0, "n_files": len(run.files)},
    )


def _vote(run: RunContext, read: ReadResult) -> VoteResult:
    """Embed and vote the new and changed assets; assemble every asset's state.

    Changed LFs are re-run on the unchanged assets too.
    """
    classes, lfs, changed_lfs = run.classes, run.lfs, read.changed_lfs
    data, state, status = read.take_data(), read.state, read.status
    fresh = status.filter(pl.col("_new") | pl.col("_changed"))
    kept = status.filter(~(pl.col("_new") | pl.col("_changed")))
    apply_options = {
        "classes": classes,
        "on_error": run.config.labeling_functions.on_error,
        "progress": run.progress,
        "lf_sources": run.config.labeling_functions.sources,
    }
    if read.embedder is not None:
        with run.clock.phase("embed"):
            data = read.embedder.embed(data, fresh, state, run.engine, progress=run.progress)
        run.warnings.extend(moved_cache_files(run.paths, run.started))
    if fresh.height == data.height:  # everything read is new or changed: no copy
        fresh_rows = data
    else:
        fresh_ids = fresh.get_column("asset_id")
        fresh_rows = data.filter(pl.col("asset_id").is_in(fresh_ids.implode()))
    fresh_votes = (
        run.engine.apply(lfs, fresh_rows, **apply_options)
        if fresh_rows.height
        else no_votes(lfs, fresh_rows, classes)  # nothing new: no LF (or model) loads
    )
    revote_rows = data.filter(pl.col("asset_id").is_in(kept.get_column("asset_id").implode()))
    revotes = (
        run.engine.apply(changed_lfs, revote_rows, **apply_options)
        if changed_lfs and revote_rows.height
        else None
    )
    full, stale = assemble(
        state,
        data=data,
        fresh_rows=fresh_rows,
        fresh_votes=fresh_votes,
        revote_rows=revote_rows,
        revotes=revotes,
        lf_names=[lf.name for lf in lfs],
        lfs_changed=bool(changed_lfs),
        plan=run.plan,
    )
    n_read, n_voted = data.height, fresh_rows.height
    n_revoted = revote_rows.height if revotes is not None else 0
    del data, fresh_rows, revote_rows  # release the source columns (vectors can be big)
    if stale:
        run.warnings.append(
            f"{stale:,} asset(s) no longer in the source keep their votes from the previous "
            f"version of LF(s) {sorted(lf.name for lf in changed_lfs)}"
        )
    errors = merge_errors([v.errors for v in (fresh_votes, revotes) if v is not None])
    return VoteResult(full=full, errors=errors, n_read=n_read, n_voted=n_voted, n_revoted=n_revoted)


def _fit(run: RunContext, read: ReadResult, voted: VoteResult) -> FitResult:
    """Fit the label model on every vote (and gold) and predict every asset.

    The model's structure (EM or equal weights) is the previous run's while few assets
    changed since it was chosen (:func:`~enrich.job.fit.kept_structure`).
    """
    config, classes, full = run.config, run.classes, voted.full
    n_changed = int(read.status.get_column("_new").sum() + read.status.get_column("_changed").sum())
    structure, chosen_at = kept_structure(
        read.previous.record if read.previous else None,
        n_assets=full.height,
        n_changed=n_changed,
        lfs_changed=bool(read.changed_lfs),
        params=config.label_model.params,
    )
    votes = vote_matrix(full, run.lfs, classes)
    reviewed = (
        read_gold_table(config.gold.path, storage_options=config.storage_options_for("source"))
        if config.gold.path
        else None
    )
    gold, settled = gold_labels(
        full,
        classes=classes,
        source_column=bool(config.gold.column),
        reviewed=reviewed,
        use_in_fit=config.gold.use_in_fit,
    )
    patterns = compress_votes(votes.votes)
    labelled = distinct_with_gold(votes.votes, gold)
    model, pattern_proba = fit_predict(
        patterns,
        labelled if config.gold.use_in_fit else None,
        cardinality=len(classes),
        random_state=config.label_model.random_state,
        params=config.label_model.params,
        structure=structure,
    )
    text = model_json(model)
    previous_choice = read.previous.record.get("label_model_structure") if read.previous else None
    since = (previous_choice or {}).get("changed_since", 0) + n_changed if structure else 0
    structure_record = {
        "structure": getattr(model, "structure_", None),
        "chosen_at_assets": chosen_at,
        "changed_since": since,
        "kept": structure is not None,
    }
    return FitResult(
        votes=votes,
        gold=gold,
        settled=settled,
        patterns=patterns,
        labelled=labelled,
        model=model,
        pattern_proba=pattern_proba,
        proba=pattern_proba[patterns.inverse],
        model_json=text,
        model_version=hashlib.sha256(text.encode()).hexdigest()[:16],
        structure_record=structure_record,
    )


def _enrich(
    run: RunContext,
    read: ReadResult,
    voted: VoteResult,
    fitted: FitResult,
    ended: EndModelResult | None = None,
) -> EnrichResult:
    """The enriched rows, which of them to write (and how), the metrics, gaps and queue."""
    config, classes, full, previous = run.config, run.classes, voted.full, read.previous
    enriched = enriched_by_pattern(
        fitted.votes,
        fitted.pattern_proba,
        fitted.patterns,
        run_id=run.run_id,
        model_version=fitted.model_version,
        created_at=run.started,
        review_below=config.review.below_confidence,
    )
    enriched = with_extras(
        enriched,
        full,
        plan=run.plan,
        lf_versions=read.lf_versions,
        prev_versions=read.prev_versions,
    )
    if ended is not None:
        enriched = with_end_model(enriched, ended, fitted.gold, classes)
    prev_schema = table_schema(run.paths.table) if previous else None
    compared = compare_previous(enriched, full, classes)
    full_refresh = previous is None or read.lfs_changed or prev_schema != dict(enriched.schema)
    if full_refresh:
        rows = enriched
        mode = "create" if previous is None else "overwrite"
    else:
        mask = rewrite_mask(enriched, compared, read.status, config.output.proba_tolerance)
        if ended is not None:
            mask = mask | model_rewrite_mask(enriched, full, classes, config.output.proba_tolerance)
        rows = enriched.filter(mask)
        # Rows of assets new to the table match nothing in it: appending them is the same
        # upsert, without the merge's scan of the whole table.
        # (the previous review flag is null only for them; a label is also null where no
        # LF voted)
        only_new = compared.get_column("_prev_review").filter(mask).null_count() == rows.height
        mode = "append" if only_new else "merge"
    metrics = run_metrics(
        enriched,
        votes=fitted.votes,
        patterns=fitted.patterns,
        labelled=fitted.labelled,
        model=fitted.model,
        proba=fitted.proba,
        gold=fitted.gold,
        classes=classes,
        compared=compared,
        previous_record=previous.record if previous else None,
        slice_columns=config.source.slice_columns,
        min_slice_size=config.gaps.min_slice_size,
    )
    metrics["lf_errors"] = voted.errors.to_dicts()
    suspects = None
    if ended is not None:
        metrics["end_model"] = end_model_metrics(
            enriched,
            model_proba=ended.proba,
            label_proba=fitted.proba,
            sampled=ended.sampled,
            gold=fitted.gold,
            classes=classes,
            slice_columns=config.source.slice_columns,
            min_slice_size=config.gaps.min_slice_size,
        )
        suspects = gold_suspects(
            enriched.get_column("asset_id"),
            fitted.gold,
            ended.proba,
            ended.sampled,
            classes=classes,
        )
        metrics["end_model"]["retrained"] = ended.retrained
        if suspects is not None:
            metrics["end_model"]["n_gold_suspect"] = suspects.height
    metrics["gaps"], candidates = gap_candidates(
        enriched,
        fitted.gold,
        classes=classes,
        slice_columns=config.source.slice_columns,
        settings=config.gaps,
        index=read.embedder.index if read.embedder is not None else None,
    )
    queue = queue_for_review(
        enriched,
        fitted.settled,
        candidates,
        metrics,
        settings=config.review,
        slice_columns=config.source.slice_columns,
        suspect_labels=suspects,
        gold=fitted.gold,
    )
    return EnrichResult(rows=rows, mode=mode, metrics=metrics, queue=queue)


def _counts(
    run: RunContext, read: ReadResult, voted: VoteResult, out: EnrichResult
) -> dict[str, int]:
    n_new = int(read.status.get_column("_new").sum())
    n_changed = int(read.status.get_column("_changed").sum())
    return {
        "n_assets": voted.full.height,
        "n_new": n_new,
        "n_changed": n_changed,
        "n_unchanged": voted.full.height - n_new - n_changed,
        "n_read": voted.n_read,
        "n_files": len(run.files),
        "n_files_read": read.n_files_read,
        "n_voted": voted.n_voted,
        "n_revoted": voted.n_revoted,
        "n_lfs_rerun": len(read.changed_lfs),
        "n_written": out.rows.height,
    }


def _record(
    run: RunContext,
    read: ReadResult,
    voted: VoteResult,
    fitted: FitResult,
    out: EnrichResult,
    ended: EndModelResult | None = None,
) -> dict[str, Any]:
    """The run record committed with the table version (and appended to the runs table)."""
    config, model = run.config, fitted.model
    return run_record(
        run,
        read,
        voted,
        out,
        model={
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "version": fitted.model_version,
            "random_state": config.label_model.random_state,
            "params": json.loads(fitted.model_json),
        },
        label_model_structure=fitted.structure_record,
        end_model=ended.state if ended is not None and ended.state else None,
    )


def run_record(
    run: RunContext, read: ReadResult, voted: VoteResult, out: EnrichResult, **models: Any
) -> dict[str, Any]:
    """What every run records (source, LFs, counts, metrics, timings...), with ``models``.

    ``models`` are the keys that describe the run's fitted models (``model``,
    ``end_model``...); they sit after ``lfs_rerun`` in the record.
    """
    config, embedder = run.config, read.embedder
    return {
        "state_format": STATE_FORMAT,
        "run_id": run.run_id,
        "started_at": run.started.isoformat(),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(),
        "duration_s": round(run.clock.total(), 3),
        "config_hash": config.config_hash(),
        "config": config.model_dump(mode="json"),
        "engine": run.engine.kind,
        "mode": out.mode,
        "classes": list(run.classes),
        "lf_versions": read.lf_versions,
        "lfs_rerun": [lf.name for lf in read.changed_lfs],
        **models,
        "hash_scheme": read.hash_scheme,
        "embeddings": embedder.save(run.run_id) if embedder is not None else None,
        "source": {"files": read.manifest, "schema": run.plan.schema_record()},
        "counts": _counts(run, read, voted, out),
        "metrics": out.metrics,
        "timings": run.clock.timings,
        "peak_rss_mb": peak_rss_mb(),
        "warnings": run.warnings,
        "versions": versions(),
    }


def make_engine(config: EngineConfig) -> Engine:
    """The engine ``[engine]`` asks for."""
    if config.kind == "dask":
        return DaskEngine(
            address=config.address,
            n_workers=config.n_workers,
            threads_per_worker=config.threads_per_worker,
            partition_size=config.partition_size,
        )
    return LocalEngine(n_jobs=config.n_jobs)
