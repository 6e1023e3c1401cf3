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

import hashlib
import json
import logging

import numpy as np
import polars as pl

from enrich._internal.frames import arrow_schema_to_polars
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
    read_review,
    review_from_partitions,
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
from enrich.job.plan import schema_changes
from enrich.job.publish import finish_committed
from enrich.job.records import peak_rss_mb, versions
from enrich.job.sources import read_gold_table
from enrich.job.state import STATE_FORMAT, Previous
from enrich.job.worker import (
    RunSettings,
    WriteSettings,
    Written,
    fit_summary,
    vote_partition,
    write_partition,
)
from enrich.models.output import enriched_table
from enrich.votes import VoteMatrix
from labeling_functions.core import is_stable_version

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

    Parameters
    ----------
    run
        The run context, locked, with a :class:`~enrich.labeling.engines.DaskEngine`.

    Returns
    -------
    JobResult
    """
    config, plan, classes, clock = run.config, run.plan, run.classes, run.clock
    client = run.engine.client  # type: ignore[attr-defined]
    # the table's Location carries the job's options ([storage] + output's, ${VAR} expanded
    # when used): every store call gets it, and the workers get the expanded options
    where = run.paths.table
    table = str(where)
    storage = where.delta_options()
    source_options = source_storage_options(config, run.files)
    with clock.phase("read"):
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
        unstable = {lf.name for lf in run.lfs if not is_stable_version(lf_versions[lf.name])}
        changed_lfs = [
            lf
            for lf in run.lfs
            if classes_changed
            or prev_versions.get(lf.name) != lf_versions[lf.name]
            or lf.name in unstable
            or lf.name in run.rerun_lfs
        ]
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
    checkpoint("read")
    settings = RunSettings(
        plan=plan,
        classes=classes,
        lf_payload=("sources", tuple(config.labeling_functions.sources), None),
        lf_names=tuple(lf.name for lf in run.lfs),
        lf_versions=tuple(lf.version for lf in run.lfs),
        changed_lf_names=tuple(lf.name for lf in changed_lfs),
        on_error=config.labeling_functions.on_error,
        all_changed=rehash,
        table=table,
        read_version=version,
        storage_options=storage,
        source_options=source_options,
        reviewed=reviewed,
        use_in_fit=config.gold.use_in_fit,
        embed=embed_settings(run, embedder),
    )
    # sent with each task, not scattered: a worker that dies takes scattered data with it,
    # while tasks are recomputed elsewhere from their arguments
    shared = settings
    with clock.phase("vote"):
        voted = client.map(vote_partition, tasks, settings=shared, pure=False)
        summaries = client.gather(client.map(fit_summary, voted, settings=shared, pure=False))
        infos = client.gather(client.map(counts_of, voted, pure=False))
    if embedder is not None:
        run.warnings.extend(moved_cache_files(run.paths, run.started))
    checkpoint("voted")
    stored = {key: read_summary(table, entry, storage) for key, entry in unchanged.items()}
    with clock.phase("fit"):
        votes_cols = [f"vote_{lf.name}" for lf in run.lfs]
        fit_rows = pl.concat(
            [*summaries, *(as_fit_summary(s, settings) for s in stored.values())],
            how="vertical_relaxed",
        )
        keys = [*votes_cols, "gold", *plan.slices, "_prev_label"]
        fit_rows = fit_rows.group_by(keys).agg(pl.col("count").sum())
        counts = vote_counts(infos)
        n_assets = int(fit_rows.get_column("count").sum())
        if n_assets == 0:
            return empty_result(run, table, version)
        patterns, labelled = pattern_counts(fit_rows, votes_cols)
        n_changed = counts["n_new"] + counts["n_changed"]
        structure, chosen_at = kept_structure(
            record,
            n_assets=n_assets,
            n_changed=n_changed,
            lfs_changed=bool(changed_lfs),
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
        small = enriched_table(
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
    checkpoint("fitted")
    starts = index_starts(tasks, infos, unchanged.values())
    broadcast, end_state, end_metrics, loaded = None, None, None, []
    if config.end_model.enabled:
        # the training sample spans every asset: unchanged partitions are loaded too (their
        # previous rows; nothing is voted), and written only where a row moves
        with clock.phase("end_model"):
            loaded = stored_tasks(unchanged)
            if loaded:
                voted = [*voted, *client.map(vote_partition, loaded, settings=shared, pure=False)]
            broadcast, end_state, end_metrics = end_model_on_workers(
                run, client, voted, shared, small, starts, record, embedder, infos, where
            )
    with clock.phase("enrich"):
        full_refresh = (
            record is None
            or kept is None
            or rehash
            or bool(changed_lfs)
            or set(prev_versions) != set(lf_versions)
        )
        tolerance = config.output.proba_tolerance
        while True:
            rewrite = (
                set()  # every partition is loaded already
                if config.end_model.enabled
                else set(unchanged)
                if full_refresh
                else partitions_to_rewrite(stored, small, votes_cols, classes, tolerance)
            )
            moved = {key: entry for key, entry in unchanged.items() if key in rewrite}
            write = WriteSettings(
                patterns=small,
                full_refresh=full_refresh,
                tolerance=tolerance,
                lf_versions=lf_versions,
                prev_versions=prev_versions,
                run_id=run.run_id,
                review_max=max(config.review.max_items, 0),
                review_columns=(*_REVIEW_COLUMNS, *plan.slices, *(f"proba_{c}" for c in classes)),
                review_below=config.review.below_confidence,
                review_purpose=config.review.purpose,
                review_slices=tuple(config.source.slice_columns),
                index_starts=starts,
                end_model=broadcast,
            )
            reload = stored_tasks(moved)
            more = client.map(vote_partition, reload, settings=shared, pure=False) if reload else []
            gathered: list[Written | None] = client.gather(
                client.map(
                    write_partition, [*voted, *more], settings=shared, write=write, pure=False
                )
            )
            written = [w for w in gathered if w is not None]
            if version is None or full_refresh or not written:
                break
            schema = arrow_schema_to_polars(written[0].schema)
            if schema == table_schema(where):
                break
            # a column's type changed: every row is rewritten (the files just written stay
            # unreferenced, as a killed run's would)
            run.warnings.append("the enriched table's schema changes: every row is rewritten")
            full_refresh = True
        del voted, more
        rewritten = {w.key for w in written}
        untouched = {k: e for k, e in unchanged.items() if k not in rewritten}
    embeddings_entry = None
    if embedder is not None:
        with clock.phase("index"):
            embeddings_entry = update_index_on_worker(
                run, client, embedder, written, untouched, infos
            )
    with clock.phase("enrich"):
        metrics = pattern_metrics(
            fit_rows,
            small,
            patterns=patterns,
            labelled=labelled,
            model=model,
            pattern_proba=pattern_proba,
            classes=classes,
            lf_names=[lf.name for lf in run.lfs],
            previous_record=record,
            slice_columns=config.source.slice_columns,
            min_slice_size=config.gaps.min_slice_size,
        )
        if end_metrics is not None:
            metrics["end_model"] = {
                **end_metrics,
                **model_counts(written, untouched, classes),
                "note": "agreement with gold and the label model (overall, per class, per "
                "slice) is computed by the local engine only",
            }
        metrics["lf_errors"] = lf_errors(infos)
        found = found_gaps(
            fit_rows,
            small,
            lf_names=[lf.name for lf in run.lfs],
            classes=classes,
            slice_columns=config.source.slice_columns,
            settings=config.gaps,
        )
        metrics["gaps"] = gaps_summary(found, config.gaps, has_index=embedder is not None)
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
                [(index_of(w, tasks, [*reload, *loaded]), [w.path]) for w in written]
                + [(int(e["index"]), list(e["files"])) for e in untouched.values()],
                embeddings_entry,
                reviewed,
                write.review_columns,
            )
        candidates = [w.review for w in written] + [
            read_review(table, e, storage) for e in untouched.values()
        ]
        queue = review_from_partitions(candidates, config, metrics, reviewed, gap_picks, gap_rows)
        eligible = [w.n_review_eligible for w in written] + [
            e.get("n_review_eligible") for e in untouched.values()
        ]
        if queue is not None and "review" in metrics and None not in eligible:
            metrics["review"]["n_eligible"] = int(sum(eligible))  # type: ignore[arg-type]
    partitions = partition_state(
        written,
        untouched,
        tasks=tasks,
        reloaded=[*reload, *loaded],
        files=run.files,
        kept=kept,
        vectors=embedder is not None,
    )
    replaced = [
        f for key in (w.key for w in written) for f in (kept or {}).get(key, {}).get("files", [])
    ]
    n_written = sum(w.n_written for w in written)
    out_counts = {
        "n_assets": n_assets,
        "n_new": counts["n_new"],
        "n_changed": counts["n_changed"],
        "n_unchanged": n_assets - counts["n_new"] - counts["n_changed"],
        "n_read": counts["n_read"],
        "n_files": len(run.files),
        "n_files_read": sum(1 for t in tasks if t.source is not None),
        "n_voted": counts["n_voted"],
        "n_revoted": counts["n_revoted"],
        "n_lfs_rerun": len(changed_lfs),
        "n_written": n_written,
        "n_partitions": len(partitions),
        "n_partitions_written": len(written),
    }
    mode = "create" if version is None else ("overwrite" if full_refresh else "partitions")
    structure_since = (record or {}).get("label_model_structure") or {}
    run_record = {
        "state_format": STATE_FORMAT,
        "run_id": run.run_id,
        "started_at": run.started.isoformat(),
        "finished_at": None,
        "duration_s": None,
        "config_hash": config.config_hash(),
        "config": config.model_dump(mode="json"),
        "engine": run.engine.kind,
        "mode": mode,
        "classes": list(classes),
        "lf_versions": lf_versions,
        "lfs_rerun": [lf.name for lf in changed_lfs],
        "model": {
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "version": model_version,
            "random_state": config.label_model.random_state,
            "params": json.loads(text),
        },
        "label_model_structure": {
            "structure": getattr(model, "structure_", None),
            "chosen_at_assets": chosen_at,
            "changed_since": structure_since.get("changed_since", 0) + n_changed
            if structure
            else 0,
            "kept": structure is not None,
        },
        "end_model": end_state or None,
        "hash_scheme": hash_scheme,
        "embeddings": embeddings_entry,
        "source": {
            "files": {f.path: f.fingerprint for f in run.files},
            "schema": plan.schema_record(),
        },
        "partitions": partitions,
        "counts": out_counts,
        "metrics": metrics,
        "timings": clock.timings,
        "peak_rss_mb": peak_rss_mb(),
        "warnings": run.warnings,
        "versions": versions(),
    }
    checkpoint("enriched")
    import datetime as dt

    run_record["finished_at"] = dt.datetime.now(dt.UTC).isoformat()
    run_record["duration_s"] = round(clock.total(), 3)
    checkpoint("before_commit")
    with clock.phase("commit"):
        new_version = commit_files(
            where,
            adds=[{"path": w.path, "size": w.size, "stats": w.stats} for w in written],
            removes=[] if full_refresh else replaced,
            schema=written[0].schema if written else table_arrow_schema(where),
            read_version=version,
            record=run_record,
            overwrite=full_refresh and version is not None,
            storage_options=dict(storage) if storage else None,
        )
    checkpoint("after_commit")
    read = ReadResult(
        previous=None,
        lf_versions=lf_versions,
        prev_versions=prev_versions,
        changed_lfs=changed_lfs,
        hash_scheme=hash_scheme,
        embedder=embedder,
        manifest=run_record["source"]["files"],
        n_files_read=out_counts["n_files_read"],
        state=pl.DataFrame(),
        status=pl.DataFrame(),
        data=None,
    )
    if record is not None:
        read = with_previous(
            read, Previous(version=version or 0, record=record, state=pl.DataFrame())
        )
    out = EnrichResult(rows=pl.DataFrame(), mode=mode, metrics=metrics, queue=queue)
    return finish_committed(run, read, out, run_record, new_version, retain=retain_partitioned)
