"""A run on a Dask cluster whose workers read their own partitions (the driver holds no rows).

The driver plans one partition per source file (:func:`plan_tasks`) and ships paths; each
worker reads its file and the rows the table holds for it, hashes, votes and keeps the result
(:mod:`enrich.job.worker`). The driver gathers only each partition's vote-pattern counts,
fits the label model on them (the fit the local engine makes: once per distinct pattern,
weighted by its count), computes the outputs of each distinct pattern and broadcasts that
small table; the workers write their partitions' rows as Parquet files in the table's
folder, and the driver commits all of them in one Delta transaction with the run record.

Incremental state is kept per partition in the run record (``partitions``: each file's
fingerprint, the data file holding its rows and a summary of its vote patterns and stored
outputs): a run reads only the files that changed, and rewrites an unchanged partition only
when the refitted model flips a label or review flag, or moves a probability past
``output.proba_tolerance``, for a pattern it holds.

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
deltas): the driver never holds the index.

With ``[end_model]`` the driver trains on the sample the local engine would pick, gathered
from the partitions (at most ``4 * max_train_rows`` rows held at once), by the local step's
retrain rule, and the workers predict every asset with the broadcast model
(:mod:`enrich.job.partition_model`): the output equals the local engine's, and so do the
metrics ``n_train``, ``n_labeled_by_model`` and ``class_counts``. The sample spans every
asset, so each run loads every partition's previous rows (nothing unchanged is voted again,
and a partition is written only where a row moves). The end model's agreement figures
(with gold and the label model) and the gold suspects of the review queue are the local
engine's only.

What this path does not do (the run then uses the driver path, and says why in a warning):
the first run of the offline image encoder (it is fitted once, on the driver, on the first
images).

Gaps (``metrics.gaps``) are the local engine's: an asset's label and confidence are its vote
pattern's, so the distinct (votes, gold, slice values) counts the fit gathers decide them
(:func:`~enrich.curation.gaps.find_gaps_from_counts`). With an index, similar unsure assets to
fill them are proposed from samples (:mod:`enrich.job.partition_gaps`): each partition sends a
seeded random sample of each gap's examples (confident or gold assets of its class or slice) and
of its unsure assets (flagged for review, not confident, not gold), capped per partition; the
driver merges them under caps of its own (what it holds does not grow with the assets), and one
task on a worker loads the index and runs :func:`~enrich.curation.gap_filling.fill_gaps` with
the job's ``[gaps]`` settings. The picks join the review queue as gap candidates, as on the
local path, but they are not the local engine's picks (a sample is searched; index ids differ);
``metrics.gaps.candidates_sampling`` says how many were sampled and searched.

The review queue is the best of every asset by the local engine's scores: each partition
sends its own queue of ``review.max_items`` (settled assets left out first) and the driver
queues from their union; assets of equal score are picked at random within each partition
first, so ties may be broken otherwise than on the local engine (``purpose = "refit"``
spreads its picks over every vote pattern: there each partition sends its least-confident
flagged assets). A partition is one file (a Delta source is one partition): row groups of a
big file are not split yet. Ids are checked for copies within each file only: an asset id
that moves to another file, or appears in two, is not caught on this path (the local engine
refuses such copies).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from enrich._internal.frames import arrow_schema_to_polars
from enrich._internal.uri import Location, expand_options, is_remote, join
from enrich._internal.vote_arrays import VotePatterns, compress_votes
from enrich.errors import InputError
from enrich.io.store import (
    commit_files,
    compact_and_vacuum,
    delta_table,
    latest_run,
    prune_reports,
    run_records,
    table_schema,
    table_version,
)
from enrich.job._faults import checkpoint
from enrich.job.config import GapsConfig, JobConfig
from enrich.job.context import EnrichResult, JobResult, ReadResult, RunContext, job_paths
from enrich.job.fit import fit_predict, kept_structure, model_json
from enrich.job.followups import queue_for_review
from enrich.job.index import Embedder, moved_cache_files, read_vectors, update_from_files
from enrich.job.metrics import pattern_metrics
from enrich.job.plan import schema_changes
from enrich.job.publish import finish_committed
from enrich.job.records import peak_rss_mb, versions
from enrich.job.sources import read_gold_table
from enrich.job.state import STATE_FORMAT, Previous
from enrich.job.worker import (
    SUMMARY_DIR,
    EmbedSettings,
    EndModelWork,
    PartitionTask,
    RunSettings,
    Voted,
    WriteSettings,
    Written,
    fit_summary,
    vote_partition,
    write_partition,
)
from enrich.models.output import enriched_table
from enrich.votes import VoteMatrix
from labeling_functions.core import is_stable_version

__all__ = ["partitioned_unsupported", "retain_partitioned", "run_partitioned"]

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
    source_options = _source_options(config, run.files)
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
        kept = _usable_partitions(where, version, record)
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
            gone=_gone_sources(where, version, run.files, kept),
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
        embed=_embed_settings(run, embedder),
    )
    # sent with each task, not scattered: a worker that dies takes scattered data with it,
    # while tasks are recomputed elsewhere from their arguments
    shared = settings
    with clock.phase("vote"):
        voted = client.map(vote_partition, tasks, settings=shared, pure=False)
        summaries = client.gather(client.map(fit_summary, voted, settings=shared, pure=False))
        infos = client.gather(client.map(_counts_of, voted, pure=False))
    if embedder is not None:
        run.warnings.extend(moved_cache_files(run.paths, run.started))
    checkpoint("voted")
    stored = {key: _read_summary(table, entry, storage) for key, entry in unchanged.items()}
    with clock.phase("fit"):
        votes_cols = [f"vote_{lf.name}" for lf in run.lfs]
        fit_rows = pl.concat(
            [*summaries, *(_as_fit_summary(s, settings) for s in stored.values())],
            how="vertical_relaxed",
        )
        keys = [*votes_cols, "gold", *plan.slices, "_prev_label"]
        fit_rows = fit_rows.group_by(keys).agg(pl.col("count").sum())
        counts = _vote_counts(infos)
        n_assets = int(fit_rows.get_column("count").sum())
        if n_assets == 0:
            return _empty(run, table, version)
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
            loaded = _stored_tasks(unchanged)
            if loaded:
                voted = [*voted, *client.map(vote_partition, loaded, settings=shared, pure=False)]
            broadcast, end_state, end_metrics = _end_model(
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
                else _to_rewrite(stored, small, votes_cols, classes, tolerance)
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
            reload = _stored_tasks(moved)
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
            embeddings_entry = _update_index(run, client, embedder, written, untouched, infos)
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
                **_model_counts(written, untouched, classes),
                "note": "agreement with gold and the label model (overall, per class, per "
                "slice) is computed by the local engine only",
            }
        errors = [e for e in (i["errors"] for i in infos) if e.height]
        if errors:
            from enrich.labeling.engines import merge_errors

            metrics["lf_errors"] = merge_errors(errors).to_dicts()
        else:
            metrics["lf_errors"] = []
        found = _found_gaps(
            fit_rows,
            small,
            lf_names=[lf.name for lf in run.lfs],
            classes=classes,
            slice_columns=config.source.slice_columns,
            settings=config.gaps,
        )
        metrics["gaps"] = _gaps_summary(found, config.gaps, has_index=embedder is not None)
        gap_picks, gap_rows = None, None
        if (
            found is not None
            and embeddings_entry is not None
            and metrics["gaps"]["candidates_note"] is None  # gaps to fill, with a budget
        ):
            gap_picks, gap_rows = _fill_gaps(
                run,
                client,
                found,
                metrics["gaps"],
                [(_index_of(w, tasks, [*reload, *loaded]), [w.path]) for w in written]
                + [(int(e["index"]), list(e["files"])) for e in untouched.values()],
                embeddings_entry,
                reviewed,
                write.review_columns,
            )
        candidates = [w.review for w in written] + [
            _read_review(table, e, storage) for e in untouched.values()
        ]
        queue = _review(candidates, config, metrics, reviewed, gap_picks, gap_rows)
        eligible = [w.n_review_eligible for w in written] + [
            e.get("n_review_eligible") for e in untouched.values()
        ]
        if queue is not None and "review" in metrics and None not in eligible:
            metrics["review"]["n_eligible"] = int(sum(eligible))  # type: ignore[arg-type]
    partitions = {
        w.key: {
            "index": _index_of(w, tasks, [*reload, *loaded]),
            "fingerprint": _fingerprint(run.files, w.key, kept),
            "files": [w.path],
            "summary": w.summary_path,
            "n_rows": w.n_rows,
            "n_review_eligible": w.n_review_eligible,
            **({"model_counts": w.model_counts} if w.model_counts is not None else {}),
            **(_vector_state(w) if embedder is not None else {}),
        }
        for w in written
    } | untouched
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
            schema=written[0].schema if written else _table_arrow_schema(where),
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
        read = _with_previous(
            read, Previous(version=version or 0, record=record, state=pl.DataFrame())
        )
    out = EnrichResult(rows=pl.DataFrame(), mode=mode, metrics=metrics, queue=queue)
    return finish_committed(run, read, out, run_record, new_version, retain=retain_partitioned)


def retain_partitioned(run: RunContext) -> None:
    """``[retention]`` for a table the workers write: vacuum, but never compact it.

    Its files are already one per partition, and compacting would merge them and lose the
    partition state (the next run would read every file again). The runs table is compacted
    as usual; partition summaries no run record names any more are removed.
    """
    settings = run.config.retention
    if not settings.enabled:
        return
    table = run.paths.table
    records = run_records(table)
    keep = [str(r.get("run_id")) for _, r in records[-settings.keep_reports :]]
    prune_reports(run.paths.reports, [*keep, run.run_id])
    if not records or len(records) % settings.compact_every:
        return
    days = settings.vacuum_after_days
    compact_and_vacuum(table, vacuum_after_days=days, compact=False)
    compact_and_vacuum(run.paths.runs, vacuum_after_days=days)
    named = {
        Path(entry["summary"]).parts[1]
        for _, record in records
        for entry in (record.get("partitions") or {}).values()
    }
    folder = Path(table) / SUMMARY_DIR
    if folder.is_dir():
        for child in folder.iterdir():
            if child.is_dir() and child.name not in named and child.name != run.run_id:
                shutil.rmtree(child, ignore_errors=True)
    _remove_unnamed_vectors(run, records)


def _remove_unnamed_vectors(run: RunContext, records: Sequence[tuple[int, Any]]) -> None:
    """Remove the partitions' vector files no kept run record names.

    Files a later run wrote (their name holds its run id, which starts with its start
    time) are left alone: on an object store, where runs are not locked out of each other,
    they may belong to a run still working.
    """
    named = {
        str(entry.get("vectors")).rsplit("/", 1)[-1]
        for _, record in records
        for entry in (record.get("partitions") or {}).values()
        if entry.get("vectors")
    }
    for file in (run.paths.embeddings / "vectors").iterdir():  # nothing when there is none
        parts = file.name.split("-")
        run_id = "-".join(parts[2:-1])  # part-<index>-<run id>-<random>.parquet
        if file.name in named or run_id >= run.run_id:
            continue
        file.unlink()


# -- planning ------------------------------------------------------------------------------
def plan_tasks(
    files: Sequence[Any],
    kept: Mapping[str, Mapping[str, Any]] | None,
    *,
    full_read: bool,
    has_table: bool,
    gone: Sequence[str] = (),
) -> tuple[list[PartitionTask], dict[str, dict[str, Any]]]:
    """The partitions to read this run, and the unchanged ones (their kept state).

    Parameters
    ----------
    files
        The source files (:class:`~enrich.job.sources.SourceFile`), one partition each.
    kept
        The previous run's partition state (None: none usable).
    full_read
        Read every file (first run, changed LFs or hash scheme, reviewed gold).
    has_table
        Whether the table exists (its rows are then looked up per partition).
    gone
        Sources the table holds rows for that are no longer in the source (their rows are
        read from the table, and kept).

    Returns
    -------
    (list of PartitionTask, dict)

    Examples
    --------
    >>> from enrich.job.sources import SourceFile
    >>> files = [SourceFile("a.parquet", "parquet", [1, 2], {}),
    ...          SourceFile("b.parquet", "parquet", [3, 4], {})]
    >>> kept = {"a.parquet": {"index": 0, "fingerprint": [1, 2], "files": ["p0"]}}
    >>> tasks, unchanged = plan_tasks(files, kept, full_read=False, has_table=True)
    >>> [t.key for t in tasks], list(unchanged)
    (['b.parquet'], ['a.parquet'])
    """
    kept = dict(kept or {})
    has_state = bool(kept)
    used = {int(e["index"]) for e in kept.values()}
    counter = iter(i for i in range(len(used) + len(files) + len(gone) + 1) if i not in used)
    tasks: list[PartitionTask] = []
    unchanged: dict[str, dict[str, Any]] = {}
    for file in files:
        entry = kept.pop(file.path, None)
        if (
            entry is not None
            and not full_read
            and list(entry["fingerprint"]) == list(file.fingerprint)
        ):
            unchanged[file.path] = dict(entry)
            continue
        index = int(entry["index"]) if entry is not None else next(counter)
        tasks.append(
            PartitionTask(
                key=file.path,
                index=index,
                source=file,
                previous_files=tuple(entry["files"]) if entry is not None else (),
                previous_by_filter=has_table and entry is None and not has_state,
                previous_vectors=entry.get("vectors") if entry is not None else None,
            )
        )
    for key, entry in kept.items():  # gone from the source: the table keeps their rows
        if full_read:
            tasks.append(
                PartitionTask(
                    key=key,
                    index=int(entry["index"]),
                    source=None,
                    previous_files=tuple(entry["files"]),
                    previous_vectors=entry.get("vectors"),
                )
            )
        else:
            unchanged[key] = dict(entry)
    for key in gone:
        tasks.append(
            PartitionTask(key=key, index=next(counter), source=None, previous_by_filter=True)
        )
    return tasks, unchanged


def pattern_counts(
    rows: pl.DataFrame, vote_columns: Sequence[str]
) -> tuple[VotePatterns, VotePatterns | None]:
    """The distinct vote rows with their counts, and the distinct (votes, gold) rows.

    The same patterns, in the same order and with the same counts, as
    :func:`~enrich._internal.vote_arrays.compress_votes` gives on every asset's votes
    (``inverse`` maps the rows of ``rows``).

    >>> rows = pl.DataFrame({"vote_a": [0, 1, 0], "gold": [-1, 1, 0], "count": [5, 2, 1]})
    >>> p, g = pattern_counts(rows, ["vote_a"])
    >>> p.patterns.tolist(), p.counts.tolist(), g.patterns.tolist(), g.counts.tolist()
    ([[0], [1]], [6, 2], [[0, -1], [0, 0], [1, 1]], [5, 1, 2])
    """
    counts = rows.get_column("count").to_numpy().astype(np.int64)
    votes = rows.select(vote_columns).to_numpy().astype(np.int32).reshape(rows.height, -1)
    distinct = compress_votes(votes)
    patterns = VotePatterns(
        distinct.patterns,
        np.bincount(distinct.inverse, weights=counts, minlength=distinct.n_patterns).astype(
            np.int64
        ),
        distinct.inverse,
    )
    gold = rows.get_column("gold").to_numpy().astype(np.int64)
    if not (gold >= 0).any():
        return patterns, None
    with_gold = compress_votes(np.column_stack([votes.astype(np.int64), gold]))
    labelled = VotePatterns(
        with_gold.patterns,
        np.bincount(with_gold.inverse, weights=counts, minlength=with_gold.n_patterns).astype(
            np.int64
        ),
        with_gold.inverse,
    )
    return patterns, labelled


def _found_gaps(
    rows: pl.DataFrame,
    outputs: pl.DataFrame,
    *,
    lf_names: Sequence[str],
    classes: Sequence[str],
    slice_columns: Sequence[str],
    settings: GapsConfig,
) -> Any:
    """The gaps the local engine finds, from the partitions' counts (None: gaps are off).

    An asset's label and confidence are its vote pattern's, so the counts of distinct
    (votes, gold, slice values) rows the fit already gathers (``rows``, with their
    ``count``; ``outputs``: the enriched table of each distinct vote pattern) are the
    counts of (label, confidence, gold, slice values) that
    :func:`~enrich.curation.gaps.find_gaps_from_counts` decides the gaps from.
    """
    from enrich.curation.gaps import find_gaps_from_counts

    if not settings.enabled or rows.height == 0:
        return None
    vote_cols = [f"vote_{n}" for n in lf_names]
    joined = (
        rows.join(outputs.select(vote_cols).with_row_index("_pattern"), on=vote_cols, how="left")
        if vote_cols
        else rows.with_columns(pl.lit(0, dtype=pl.UInt32).alias("_pattern"))
    )
    pattern = joined.get_column("_pattern")
    gold = joined.get_column("gold").fill_null(-1).cast(pl.Int64)
    counts = joined.select(*slice_columns, "count").with_columns(
        outputs.get_column("label").gather(pattern).alias("label"),
        outputs.get_column("confidence").gather(pattern).alias("confidence"),
    )
    if bool(((gold >= 0) & (joined.get_column("count") > 0)).any()):
        # as the local engine: gold scores the labels only when some asset has gold
        counts = counts.with_columns(gold.alias("gold"))
    return find_gaps_from_counts(
        counts,
        slices=list(slice_columns),
        classes=list(classes),
        confident_above=settings.confident_above,
        min_confident=settings.min_confident,
        min_quality=settings.weak_below,
        min_size=settings.min_slice_size,
    )


def _gaps_summary(found: Any, settings: GapsConfig, *, has_index: bool) -> dict[str, Any]:
    """``metrics.gaps`` before any candidate is proposed (the note says why none would be)."""
    if found is None:
        return {"enabled": False}
    budget = settings.candidates_per_gap * len(found.gap_ids)
    return {
        "enabled": True,
        "gaps": found.table.select(
            "gap", "kind", "metric", "value_measured", "target", "deficit", "reason"
        ).to_dicts(),
        "n_candidates": None,
        "candidates_note": "no embedding index to search ([embeddings] is off)"
        if not has_index
        else "no gap to fill"
        if not len(found)
        else "gaps.candidates_per_gap is 0"
        if budget == 0
        else None,
    }


def _fill_gaps(
    run: RunContext,
    client: Any,
    found: Any,
    summary: dict[str, Any],
    partition_files: Sequence[tuple[int, Sequence[str]]],
    entry: Mapping[str, Any],
    reviewed: pl.DataFrame | None,
    review_columns: Sequence[str],
) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
    """Similar unsure assets for the gaps, from the partitions' samples (on the workers).

    Each partition samples its gaps' examples and its unsure assets
    (:func:`~enrich.job.partition_gaps.sample_partition`), the driver merges the samples
    under caps, and one worker task loads the index and runs ``fill_gaps`` on them
    (:func:`~enrich.job.partition_gaps.fill_on_worker`). Fills ``summary`` (``metrics.gaps``)
    and returns the picks (``asset_id``, ``reason``, ``score``) and their review rows.
    """
    from enrich.job.partition_gaps import (
        EXAMPLES_PER_GAP,
        MAX_EXAMPLES_PER_GAP,
        MAX_POOL,
        POOL_PER_PARTITION,
        GapSample,
        fill_on_worker,
        gap_regions,
        merge_samples,
        sample_partition,
    )

    config = run.config
    budget = config.gaps.candidates_per_gap * len(found.gap_ids)
    # what the driver gathers stays within about twice the merged caps, however many
    # partitions (and assets) there are
    n_parts = max(len(partition_files), 1)
    per_gap = max(1, min(EXAMPLES_PER_GAP, -(-2 * MAX_EXAMPLES_PER_GAP // n_parts)))
    per_pool = max(1, min(POOL_PER_PARTITION, -(-2 * MAX_POOL // n_parts)))
    sample = GapSample(
        table=str(run.paths.table),
        storage_options=run.paths.table.delta_options(),
        regions=gap_regions(found),
        classes=tuple(run.classes),
        confident_above=config.gaps.confident_above,
        reviewed=reviewed,
        columns=tuple(review_columns),
        examples_per_gap=per_gap,
        pool_size=per_pool,
    )
    samples = client.gather(
        [
            client.submit(sample_partition, tuple(files), index, sample, pure=False)
            for index, files in partition_files
        ]
    )
    examples, pool, n_unsure = merge_samples(samples)
    summary["n_searched"] = pool.height
    summary["candidates_sampling"] = {
        "n_unsure": n_unsure,
        "n_searched": pool.height,
        "n_examples": examples.height,
        "examples_per_gap_per_partition": per_gap,
        "unsure_per_partition": per_pool,
        "max_examples_per_gap": MAX_EXAMPLES_PER_GAP,
        "max_searched": MAX_POOL,
        "how": "each partition sends a seeded random sample of each gap's examples "
        "(confident or gold assets of its class or slice) and of its unsure assets "
        "(flagged for review, not confident, not gold); fill_gaps searches the merged, "
        "capped samples in the job's index on a worker",
    }
    if pool.height == 0:
        summary["n_candidates"] = 0
        summary["candidates_note"] = (
            "no unlabeled assets to search: every indexed asset not flagged for review "
            "already has a confident or a gold label"
        )
        return None, None
    options = expand_options(run.paths.embeddings.storage_options) or None
    picks, allocation = client.submit(
        fill_on_worker,
        dict(entry),
        options,
        found,
        examples,
        pool,
        budget,
        slices=tuple(config.source.slice_columns),
        pure=False,
    ).result()
    summary["n_candidates"] = picks.height
    summary["allocation"] = allocation
    if not picks.height:
        summary["candidates_note"] = (
            f"none of the {pool.height:,} unsure assets searched is near a gap's examples"
        )
        return None, None
    rows = pool.filter(pl.col("asset_id").is_in(picks.get_column("asset_id").implode()))
    return picks, rows.select([c for c in review_columns if c in rows.columns])


def index_starts(
    tasks: Sequence[PartitionTask],
    infos: Sequence[Mapping[str, Any]],
    unchanged: Any,
) -> dict[str, int]:
    """The first index id of each voted partition's new assets: one block per partition.

    Blocks follow the partitions' order (their index), after the largest id any partition
    holds, so every asset keeps a distinct id without the driver seeing the assets.

    >>> tasks = [PartitionTask("b", 1, None), PartitionTask("a", 0, None)]
    >>> infos = [{"n_unindexed": 2, "max_index_id": -1}, {"n_unindexed": 3, "max_index_id": 4}]
    >>> index_starts(tasks, infos, [{"max_index_id": 9}])
    {'a': 10, 'b': 13}
    """
    top = max(
        [-1]
        + [int(i.get("max_index_id", -1)) for i in infos]
        + [int(e.get("max_index_id", -1)) for e in unchanged]
    )
    starts, cursor = {}, top + 1
    for task, info in sorted(zip(tasks, infos, strict=True), key=lambda pair: pair[0].index):
        starts[task.key] = cursor
        cursor += int(info.get("n_unindexed", 0))
    return starts


# -- helpers -------------------------------------------------------------------------------
def _embed_settings(run: RunContext, embedder: Embedder | None) -> EmbedSettings | None:
    """What the workers need to embed (None: embeddings are off)."""
    if embedder is None:
        return None
    config, paths = run.config, run.paths
    column = config.embedding_input_column
    assert column is not None  # embeddings are on
    cache_options = expand_options(paths.embeddings.storage_options) or None
    vectors = paths.embeddings / "vectors"
    return EmbedSettings(
        spec=embedder.spec,
        input_column=column,
        output_column=config.embeddings.output_column,
        attach=embedder.attach,
        rebuild=embedder.rebuild,
        batch_size=config.embeddings.batch_size,
        cache=Location.of(str(paths.embeddings), cache_options),
        vectors=str(vectors),
        options=cache_options,
    )


def _end_model(
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


def _update_index(
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


def _model_counts(
    written: Sequence[Written], untouched: Mapping[str, Mapping[str, Any]], classes: Sequence[str]
) -> dict[str, Any]:
    """The end model's counts over every partition (none when a partition lacks them)."""
    parts = [w.model_counts for w in written] + [e.get("model_counts") for e in untouched.values()]
    if any(p is None for p in parts):
        return {}
    return {
        "n_labeled_by_model": sum(int(p["n_labeled_by_model"]) for p in parts),  # type: ignore[index]
        "class_counts": {
            c: sum(int(p["class_counts"].get(c, 0)) for p in parts)  # type: ignore[index]
            for c in classes
        },
    }


def _vector_state(w: Written) -> dict[str, Any]:
    """A partition's vectors in its state: the file, its rows, its largest index id."""
    return {"vectors": w.vectors_path, "n_vectors": w.n_vectors, "max_index_id": w.max_index_id}


def _file_dim(files: Sequence[str], options: Mapping[str, str] | None) -> int:
    for path in files:
        _, vectors = read_vectors(path, storage_options=dict(options) if options else None)
        if vectors.shape[1]:
            return int(vectors.shape[1])
    return 0


def _source_options(config: JobConfig, files: Sequence[Any]) -> dict[str, str] | None:
    """The source's storage options, ``${NAME}`` read here (workers may lack the variables)."""
    if not any(is_remote(f.path) for f in files):
        return None
    return expand_options(config.storage_options_for("source")) or None


def _usable_partitions(
    table: Location, version: int | None, record: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The previous run's partition state, if every file it names is still in the table."""
    if record is None or version is None:
        return None
    parts = record.get("partitions")
    if not parts:
        return None
    actions = delta_table(table, version=version).get_add_actions(flatten=True)
    files = {str(p) for p in actions.column("path").to_pylist()}
    named = {f for entry in parts.values() for f in entry["files"]}
    return dict(parts) if named <= files else None


def _gone_sources(
    table: Location, version: int | None, files: Sequence[Any], kept: Mapping[str, Any] | None
) -> list[str]:
    """Sources the table holds rows for but the source no longer has (no partition state)."""
    if version is None or kept is not None:
        return []
    present = {f.path for f in files}
    held = (
        pl.scan_delta(str(table), version=version, storage_options=table.delta_options())
        .select("source_file")
        .unique()
        .collect(engine="streaming")  # one column, streamed: the driver holds no rows
        .get_column("source_file")
        .to_list()
    )
    return sorted(s for s in held if s is not None and s not in present)


def _counts_of(voted: Voted) -> dict[str, Any]:
    return {**voted.counts, "errors": voted.errors}


def _vote_counts(infos: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    keys = ("n_read", "n_new", "n_changed", "n_voted", "n_revoted", "n_stale")
    return {k: int(sum(i[k] for i in infos)) for k in keys}


def _stored_tasks(entries: Mapping[str, Mapping[str, Any]]) -> list[PartitionTask]:
    """Tasks that load unchanged partitions' stored rows (and vectors); nothing is read anew."""
    return [
        PartitionTask(
            key=key,
            index=entry["index"],
            source=None,
            previous_files=tuple(entry["files"]),
            previous_vectors=entry.get("vectors"),
        )
        for key, entry in entries.items()
    ]


def _read_summary(table: str, entry: Mapping[str, Any], storage: Any) -> pl.DataFrame:
    return pl.read_parquet(join(table, entry["summary"]), storage_options=storage)


def _read_review(table: str, entry: Mapping[str, Any], storage: Any) -> pl.DataFrame:
    from enrich.job.worker import review_path

    path = join(table, review_path(entry["summary"]))
    return pl.read_parquet(path, storage_options=storage)


def _as_fit_summary(stored: pl.DataFrame, settings: RunSettings) -> pl.DataFrame:
    """A stored partition summary as the fit sees it: votes, gold, slices, stored label."""
    votes = [f"vote_{n}" for n in settings.lf_names]
    return (
        stored.select(
            *votes,
            pl.col("gold").cast(pl.Int64),
            *settings.plan.slices,
            pl.col("label").cast(pl.Int64).alias("_prev_label"),
            "count",
        )
        .group_by([*votes, "gold", *settings.plan.slices, "_prev_label"])
        .agg(pl.col("count").sum())
    )


def _to_rewrite(
    stored: Mapping[str, pl.DataFrame],
    small: pl.DataFrame,
    votes: Sequence[str],
    classes: Sequence[str],
    tolerance: float,
) -> set[str]:
    """The unchanged partitions where the refitted model moves a row past the tolerance.

    A row moves when its label or review flag flips, or a probability moves by more than
    ``tolerance``, against what the partition's file holds (its stored summary).
    """
    if not stored:
        return set()
    proba = [f"proba_{c}" for c in classes]
    new = small.select(
        *votes,
        pl.col("label").alias("_new_label"),
        pl.col("needs_review").alias("_new_review"),
        *(pl.col(c).alias(f"_new_{c}") for c in proba),
    )
    frames = [
        frame.select(*votes, "label", "needs_review", *proba).with_columns(
            pl.lit(key).alias("_partition")
        )
        for key, frame in stored.items()
    ]
    joined = pl.concat(frames, how="vertical_relaxed").join(new, on=list(votes), how="left")
    moved = pl.max_horizontal([(pl.col(c) - pl.col(f"_new_{c}")).abs() for c in proba])
    flags = joined.select(
        "_partition",
        (
            pl.col("label").cast(pl.Int64).ne_missing(pl.col("_new_label").cast(pl.Int64))
            | (pl.col("needs_review") != pl.col("_new_review"))
            | ((moved > tolerance) if tolerance > 0 else (moved > 0))
        )
        .fill_null(True)
        .alias("_moves"),
    )
    return set(flags.filter(pl.col("_moves")).get_column("_partition").unique().to_list())


def _review(
    candidates: Sequence[pl.DataFrame],
    config: JobConfig,
    metrics: dict[str, Any],
    reviewed: pl.DataFrame | None,
    gap_picks: pl.DataFrame | None = None,
    gap_rows: pl.DataFrame | None = None,
) -> Any:
    """The review queue, chosen among the partitions' own queues (the best of each by score).

    Settled assets are left out, as on the local path: reviewed gold (``gold.path``), and
    source gold when the model learns from it (the partitions left them out already).
    The gap candidates (``gap_picks``, their rows ``gap_rows``) join it as on the local path.
    """
    frames = [c for c in [*candidates, gap_rows] if c is not None and c.height] or list(
        candidates[:1]
    )  # may be empty
    if not frames:
        return None
    pool = (
        pl.concat(frames, how="vertical_relaxed")
        .unique("asset_id", keep="first", maintain_order=True)
        .sort("asset_id")
    )
    settings = config.review
    if pool.height == 0 and settings.enabled and settings.max_items:
        # nothing eligible anywhere: an empty queue, as the local engine writes it
        from enrich.curation.review import review_queue

        queue = review_queue(pool, batch_size=settings.max_items)
        metrics["review"] = {"n_queued": 0, "n_eligible": 0, "reason_counts": {}}
        return queue
    settled = np.zeros(pool.height, dtype=bool)
    if "gold" in pool.columns and config.gold.use_in_fit:
        settled |= (pool.get_column("gold").fill_null(-1) >= 0).to_numpy()
    if reviewed is not None and "asset_id" in reviewed.columns:
        ids = reviewed.get_column("asset_id").cast(pool.schema["asset_id"], strict=False)
        settled |= pool.get_column("asset_id").is_in(ids.implode()).to_numpy()
    return queue_for_review(
        pool,
        settled if settled.any() else None,
        gap_picks,
        metrics,
        settings=config.review,
        slice_columns=config.source.slice_columns,
    )


def _index_of(w: Written, tasks: Sequence[PartitionTask], reload: Sequence[PartitionTask]) -> int:
    for task in [*tasks, *reload]:
        if task.key == w.key:
            return task.index
    raise KeyError(w.key)


def _fingerprint(files: Sequence[Any], key: str, kept: Mapping[str, Any] | None) -> Any:
    for file in files:
        if file.path == key:
            return list(file.fingerprint)
    return (kept or {}).get(key, {}).get("fingerprint")


def _table_arrow_schema(table: Location) -> Any:
    import pyarrow as pa

    return pa.schema(delta_table(table).schema().to_arrow())


def _with_previous(read: ReadResult, previous: Any) -> ReadResult:
    read.previous = previous
    return read


def _empty(run: RunContext, table: str, version: int | None) -> JobResult:
    message = (
        f"the source ({len(run.files)} file(s)) holds no assets and the table has none; "
        "nothing to do, nothing written"
    )
    return JobResult(
        status="empty",
        run_id=run.run_id,
        message=message,
        table_path=run.paths.table,
        table_version=version,
        counts={"n_assets": 0, "n_files": len(run.files)},
    )
