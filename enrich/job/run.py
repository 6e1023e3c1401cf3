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
import glob
import hashlib
import json
import logging
import os
import resource
import signal
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from enrich._internal.vote_arrays import VotePatterns, compress_votes
from enrich.errors import InputError, MissingColumnError, SourceSchemaError
from enrich.io.store import (
    JobPaths,
    RunLock,
    append_run,
    commit_enriched,
    latest_run,
    read_table,
    reconcile_runs,
    run_records,
    table_columns,
    table_schema,
    table_version,
)
from enrich.job.config import EngineConfig, JobConfig
from enrich.labeling.apply import as_labeling_function
from enrich.labeling.engines import (
    DaskEngine,
    EncoderSpec,
    Engine,
    LocalEngine,
    get_encoder,
    merge_errors,
)
from enrich.labeling.sources import load_lfs

__all__ = ["JobResult", "SourceSchemaError", "run_job"]

logger = logging.getLogger(__name__)

KILL_AT_ENV = "ENRICH_TEST_KILL_AT"
"""Test hook: a phase name; the job SIGKILLs itself when it reaches that phase."""

STATE_FORMAT = 1
_HASH_SEED = 0x656E72696368
_LINEAGE_COLUMNS = ("run_id", "model_version", "lf_versions", "created_at")
_EXTRA_COLUMNS = ("content_hash", "source_file", "gold")
# Columns of the table the next run recomputes and never reads back.
_DERIVED_COLUMNS = ("label_name", "confidence", "entropy", "n_votes", "conflict", "all_abstain")
_EXTENSIONS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
_HIST_BINS = 20
_LF_METRICS = (
    "lf",
    "coverage",
    "overlaps",
    "conflicts",
    "empirical_accuracy",
    "estimated_accuracy",
)

RunStatus = Literal["succeeded", "empty"]


@dataclass(frozen=True)
class JobResult:
    """What a run did: its status, where it wrote, counts, metrics and a one-line message.

    Attributes
    ----------
    status : ``"succeeded"`` or ``"empty"`` (no asset anywhere: nothing written).
    run_id : the run's id (also in the table's ``run_id`` column and the runs table).
    message : one line for people (the CLI prints it).
    table_path, table_version : the output table and the version this run committed.
    counts : ``n_assets``, ``n_new``, ``n_changed``, ``n_unchanged``, ``n_read``,
        ``n_files``, ``n_files_read``, ``n_voted``, ``n_revoted``, ``n_written``.
    metrics : class balance, confidence, LF coverage and accuracy, gold, slices, drift...
    summary_path, report_path, review_path : the JSON summary, HTML report, review queue.
    warnings : things the run noticed but did not stop for (schema changes, ...).
    record : the run record committed with the table version.
    """

    status: RunStatus
    run_id: str
    message: str
    table_path: Path
    table_version: int | None
    counts: Mapping[str, int] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    summary_path: Path | None = None
    report_path: Path | None = None
    review_path: Path | None = None
    warnings: tuple[str, ...] = ()
    record: Mapping[str, Any] = field(default_factory=dict)


# -- the run -------------------------------------------------------------------------------
def run_job(config: JobConfig, *, progress: bool = True, engine: Engine | None = None) -> JobResult:
    """Run the job ``config`` describes; the table advances by exactly one commit.

    Parameters
    ----------
    config
        A validated job (see :func:`enrich.job.config.load_job_config`); relative paths are
        taken from the working directory.
    progress
        Show progress bars for long steps.
    engine
        An engine to use instead of the one ``[engine]`` describes (e.g. a
        :class:`~enrich.labeling.engines.DaskEngine` on an existing client); not closed here.

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
    started = dt.datetime.now(dt.UTC)
    clock = _Clock()
    from enrich.models.output import new_run_id

    run_id = new_run_id(started)
    paths = JobPaths.for_table(
        config.output.path,
        runs=config.output.runs_path,
        reports=config.output.reports_dir,
        embeddings=config.embeddings.cache_path,
    )
    with clock.phase("load"):
        lfs = [as_labeling_function(lf) for lf in load_lfs(config.labeling_functions.sources)]
        _check_lf_names(lfs)
        files = list_source_files(config)
        plan = _plan_columns(config, lfs, files)
    logger.info("run %s: %d source file(s), %d LF(s)", run_id, len(files), len(lfs))
    with RunLock(
        paths.lock, timeout=config.output.lock_timeout, run_id=run_id, target=str(paths.table)
    ):
        _checkpoint("locked")
        _recover(paths)
        own_engine = engine is None
        engine = engine or make_engine(config.engine)
        try:
            return _run_locked(
                config, paths, lfs, files, plan, run_id, started, clock, engine, progress
            )
        finally:
            if own_engine:
                engine.close()


def _run_locked(
    config: JobConfig,
    paths: JobPaths,
    lfs: list[Any],
    files: list[SourceFile],
    plan: _ColumnPlan,
    run_id: str,
    started: dt.datetime,
    clock: _Clock,
    engine: Engine,
    progress: bool,
) -> JobResult:
    classes = tuple(config.labeling_functions.classes)
    warnings: list[str] = []
    with clock.phase("read"):
        previous = _load_previous(paths.table, classes, plan)
        lf_versions = {lf.name: lf.version for lf in lfs}
        prev_versions: dict[str, str] = previous.record["lf_versions"] if previous else {}
        classes_changed = previous is not None and tuple(previous.record["classes"]) != classes
        changed_lfs = [
            lf for lf in lfs if classes_changed or prev_versions.get(lf.name) != lf.version
        ]
        hash_scheme = plan.hash_scheme()
        if previous is not None:
            warnings.extend(_schema_changes(previous.record, plan))
        embedder = _Embedder.for_job(config, paths, previous, lfs, changed_lfs)
        full_read = (
            previous is None
            or previous.record.get("hash_scheme") != hash_scheme
            or bool(changed_lfs)
            or (embedder is not None and embedder.rebuild)
        )
        manifest = {f.path: f.fingerprint for f in files}
        prev_manifest: dict[str, Any] = previous.record["source"]["files"] if previous else {}
        to_read = [f for f in files if full_read or prev_manifest.get(f.path) != f.fingerprint]
        data = read_sources(to_read, plan)
        data = data.with_columns(_content_hash(data, plan.hash_columns))
        if plan.gold_column:
            data = data.with_columns(_source_gold(data, plan.gold_column, classes))
        state = previous.state if previous else _empty_state(data)
        unread_files = {f.path for f in files} - {f.path for f in to_read}
        rehash = previous is not None and previous.record.get("hash_scheme") != hash_scheme
        status = _asset_status(data, state, unread_files, all_changed=rehash)
    _checkpoint("read")

    n_total = state.height + int(status.get_column("_new").sum())
    if n_total == 0:
        message = (
            f"the source ({len(files)} file(s)) holds no assets and the table has none; "
            "nothing to do, nothing written"
        )
        logger.info(message)
        return JobResult(
            status="empty",
            run_id=run_id,
            message=message,
            table_path=paths.table,
            table_version=table_version(paths.table),
            counts={"n_assets": 0, "n_files": len(files)},
        )

    with clock.phase("vote"):
        fresh = status.filter(pl.col("_new") | pl.col("_changed"))
        kept = status.filter(~(pl.col("_new") | pl.col("_changed")))
        apply_options = {
            "classes": classes,
            "on_error": config.labeling_functions.on_error,
            "progress": progress,
            "lf_sources": config.labeling_functions.sources,
        }
        if embedder is not None:
            with clock.phase("embed"):
                data = embedder.embed(data, fresh, state, engine, progress=progress)
        if fresh.height == data.height:  # everything read is new or changed: no copy
            fresh_rows = data
        else:
            fresh_ids = fresh.get_column("asset_id")
            fresh_rows = data.filter(pl.col("asset_id").is_in(fresh_ids.implode()))
        fresh_votes = (
            engine.apply(lfs, fresh_rows, **apply_options)
            if fresh_rows.height
            else _no_votes(lfs, fresh_rows, classes)  # nothing new: no LF (or model) loads
        )
        revote_rows = data.filter(pl.col("asset_id").is_in(kept.get_column("asset_id").implode()))
        revotes = (
            engine.apply(changed_lfs, revote_rows, **apply_options)
            if changed_lfs and revote_rows.height
            else None
        )
        full, stale = _assemble(
            state, data, fresh_rows, fresh_votes, revote_rows, revotes, lfs, changed_lfs, plan
        )
        n_read, n_voted = data.height, fresh_rows.height
        n_revoted = revote_rows.height if revotes is not None else 0
        del data, fresh_rows, revote_rows  # release the source columns (vectors can be big)
        if stale:
            warnings.append(
                f"{stale:,} asset(s) no longer in the source keep their votes from the previous "
                f"version of LF(s) {sorted(lf.name for lf in changed_lfs)}"
            )
    _checkpoint("voted")

    with clock.phase("fit"):
        votes = _vote_matrix(full, lfs, classes)
        gold, settled = _gold(config, full, classes)
        patterns = compress_votes(votes.votes)
        labelled = _distinct_with_gold(votes.votes, gold)
        fit_gold = labelled if config.gold.use_in_fit else None
        model, pattern_proba = _fit_predict(config, len(classes), patterns, fit_gold)
        proba = pattern_proba[patterns.inverse]
        model_json = _model_json(model)
        model_version = hashlib.sha256(model_json.encode()).hexdigest()[:16]
    _checkpoint("fitted")

    with clock.phase("enrich"):
        enriched = _enriched_by_pattern(
            votes,
            pattern_proba,
            patterns,
            run_id=run_id,
            model_version=model_version,
            created_at=started,
            review_below=config.review.below_confidence,
        )
        enriched = _with_extras(enriched, full, plan, lf_versions, prev_versions)
        prev_schema = table_schema(paths.table) if previous else None
        compared = _compare_previous(enriched, full, classes)
        full_refresh = (
            previous is None
            or bool(changed_lfs)
            or set(prev_versions) != set(lf_versions)
            or prev_schema != _schema_of(enriched)
        )
        if full_refresh:
            rows = enriched
            mode = "create" if previous is None else "overwrite"
        else:
            mask = _rewrite_mask(enriched, compared, status, config.output.proba_tolerance)
            rows = enriched.filter(mask)
            # Rows of assets new to the table match nothing in it: appending them is the same
            # upsert, without the merge's scan of the whole table.
            only_new = compared.get_column("_prev_label").filter(mask).null_count() == rows.height
            mode = "append" if only_new else "merge"
        errors = merge_errors([v.errors for v in (fresh_votes, revotes) if v is not None])
        metrics = _metrics(
            config,
            enriched,
            votes,
            patterns,
            labelled,
            model,
            proba,
            gold,
            previous,
            classes,
            compared,
        )
        metrics["lf_errors"] = errors.to_dicts()
        metrics["gaps"], candidates = _gaps(config, enriched, gold, classes, embedder)
        queue = _review_queue(config, enriched, settled, candidates, metrics)
    _checkpoint("enriched")

    counts = {
        "n_assets": full.height,
        "n_new": int(status.get_column("_new").sum()),
        "n_changed": int(status.get_column("_changed").sum()),
        "n_unchanged": full.height
        - int(status.get_column("_new").sum())
        - int(status.get_column("_changed").sum()),
        "n_read": n_read,
        "n_files": len(files),
        "n_files_read": len(to_read),
        "n_voted": n_voted,
        "n_revoted": n_revoted,
        "n_lfs_rerun": len(changed_lfs),
        "n_written": rows.height,
    }
    finished = dt.datetime.now(dt.UTC)
    record = {
        "state_format": STATE_FORMAT,
        "run_id": run_id,
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        "duration_s": round(clock.total(), 3),
        "config_hash": config.config_hash(),
        "config": config.model_dump(mode="json"),
        "engine": engine.kind,
        "mode": mode,
        "classes": list(classes),
        "lf_versions": lf_versions,
        "lfs_rerun": [lf.name for lf in changed_lfs],
        "model": {
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "version": model_version,
            "random_state": config.label_model.random_state,
            "params": json.loads(model_json),
        },
        "hash_scheme": hash_scheme,
        "embeddings": embedder.save(run_id) if embedder is not None else None,
        "source": {"files": manifest, "schema": plan.schema_record()},
        "counts": counts,
        "metrics": metrics,
        "timings": clock.timings,
        "peak_rss_mb": _peak_rss_mb(),
        "warnings": warnings,
        "versions": _versions(),
    }
    _checkpoint("before_commit")
    with clock.phase("commit"):
        version = commit_enriched(
            paths.table,
            rows,
            mode=mode,
            read_version=previous.version if previous else None,
            record=record,
        )
    _checkpoint("after_commit")
    previous_record = previous.record if previous else {}
    append_run(paths.runs, version, record)
    if embedder is not None:
        kept = [(r.get("embeddings") or {}).get("index_path") for r in (record, previous_record)]
        embedder.cleanup(keep=kept)
    _checkpoint("after_runs")

    from enrich.io.report import write_reports

    review_path = None
    if queue is not None:
        from enrich._internal.files import write_atomic

        review_path = write_atomic(
            paths.reports / f"{run_id}-review.parquet", queue.table.write_parquet
        )
    summary_path, report_path = write_reports(
        record,
        previous.record if previous else None,
        paths.reports,
        table_path=paths.table,
        table_version=version,
        review_path=review_path,
    )
    _checkpoint("done")
    message = _one_line(run_id, counts, metrics, version, summary_path, report_path, classes)
    logger.info(message)
    return JobResult(
        status="succeeded",
        run_id=run_id,
        message=message,
        table_path=paths.table,
        table_version=version,
        counts=counts,
        metrics=metrics,
        summary_path=summary_path,
        report_path=report_path,
        review_path=review_path,
        warnings=tuple(warnings),
        record=record,
    )


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


def _recover(paths: JobPaths) -> None:
    """Finish the bookkeeping of runs that died after their commit: runs rows and reports."""
    reconcile_runs(paths.table, paths.runs)
    records = run_records(paths.table)
    missing = [
        i
        for i, (_, record) in enumerate(records)
        if not (paths.reports / f"{record.get('run_id')}.json").is_file()
        or not (paths.reports / f"{record.get('run_id')}.html").is_file()
    ]
    if paths.reports.is_dir():
        for partial in paths.reports.glob(".*.partial"):  # left by a run killed mid-write
            partial.unlink(missing_ok=True)
    if not missing:
        return
    from enrich.io.report import write_reports

    for i in missing:
        version, record = records[i]
        previous = records[i - 1][1] if i else None
        logger.info("writing the missing reports of run %s", record.get("run_id"))
        write_reports(
            record,
            previous,
            paths.reports,
            table_path=paths.table,
            table_version=version,
            latest=i == len(records) - 1,
        )


# -- the test hook, timing ----------------------------------------------------------------
def _checkpoint(phase: str) -> None:
    """Kill this process at ``phase`` when the test hook asks for it (see KILL_AT_ENV)."""
    if os.environ.get(KILL_AT_ENV) == phase:
        logger.warning("test hook: killing the run at phase %r", phase)
        sys.stdout.flush()
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)


class _Clock:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._start = time.perf_counter()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.timings[name] = round(self.timings.get(name, 0.0) + elapsed, 4)

    def total(self) -> float:
        return time.perf_counter() - self._start


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": sys.version.split()[0]}
    for name in ("enrich", "polars", "deltalake", "numpy"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "unknown"
    return found


# -- source files ----------------------------------------------------------------------------
@dataclass(frozen=True)
class SourceFile:
    """One source file (or Delta table): its format, fingerprint and column types."""

    path: str
    format: Literal["parquet", "csv", "delta"]
    fingerprint: list[Any]
    schema: Mapping[str, pl.DataType]


def list_source_files(config: JobConfig) -> list[SourceFile]:
    """Every file ``[source]`` names, checked readable, with its schema; nothing is read yet.

    Raises
    ------
    InputError
        A path that does not exist, a glob matching nothing, an unknown format, or a file
        that cannot be read (each names the file).
    MissingColumnError
        A file lacks a column the job needs (lists the file's columns).
    SourceSchemaError
        Two files give a needed column different types (names both files).
    """
    source = config.source
    found: list[tuple[str, str]] = []
    for entry in source.paths:
        found.extend(_expand(entry, source.format))
    seen: set[str] = set()
    files = []
    for path, fmt in found:
        if path in seen:
            continue
        seen.add(path)
        files.append(_inspect(path, fmt))
    _check_columns(config, files)
    return files


def _expand(entry: str, fmt: str) -> list[tuple[str, str]]:
    from deltalake import DeltaTable

    if any(ch in entry for ch in "*?["):
        matches = sorted(glob.glob(entry, recursive=True))
        if not matches:
            raise InputError(
                f"source.path {entry!r} matches no file; check the pattern and the folder"
            )
        return [(str(Path(m)), _format_of(m, fmt)) for m in matches if not Path(m).is_dir()]
    path = Path(entry)
    if not path.exists():
        raise InputError(f"source file {entry!r} does not exist; nothing was written")
    if path.is_dir():
        if fmt == "delta" or (fmt == "auto" and DeltaTable.is_deltatable(str(path))):
            return [(str(path), "delta")]
        members = sorted(
            str(p)
            for p in path.rglob("*")
            if p.is_file() and (fmt != "auto" or p.suffix.lower() in _EXTENSIONS)
        )
        if not members:
            raise InputError(
                f"source folder {entry!r} holds no .parquet or .csv file; point source.path "
                "at the files (or set source.format)"
            )
        return [(m, _format_of(m, fmt)) for m in members]
    return [(str(path), _format_of(str(path), fmt))]


def _format_of(path: str, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in _EXTENSIONS:
        raise InputError(
            f"cannot tell the format of source file {path!r} from its extension; name it "
            "*.parquet or *.csv, or set source.format to 'parquet', 'csv' or 'delta'"
        )
    return _EXTENSIONS[suffix]


def _inspect(path: str, fmt: str) -> SourceFile:
    try:
        if fmt == "delta":
            from deltalake import DeltaTable

            table = DeltaTable(path)
            import pyarrow as pa

            arrow = pa.schema(table.schema().to_arrow())
            schema = dict(pl.DataFrame(pl.from_arrow(arrow.empty_table())).schema)
            return SourceFile(path, "delta", ["delta", table.version()], schema)
        stat = os.stat(path)
        if fmt == "parquet":
            schema = dict(pl.read_parquet_schema(path))
        else:
            schema = dict(pl.scan_csv(path).collect_schema())
        return SourceFile(path, fmt, [stat.st_size, stat.st_mtime_ns], schema)  # type: ignore[arg-type]
    except InputError:
        raise
    except Exception as exc:
        raise InputError(
            f"source file {path!r} cannot be read as {fmt}: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}; fix or remove it (nothing was "
            "written)"
        ) from exc


def _check_columns(config: JobConfig, files: Sequence[SourceFile]) -> None:
    source = config.source
    wanted = [(source.id_column, "source.id_column")]
    for key in ("text_column", "image_column", "embedding_column"):
        if getattr(source, key):
            wanted.append((getattr(source, key), f"source.{key}"))
    wanted += [(c, "source.slice_columns") for c in source.slice_columns]
    if config.gold.column:
        wanted.append((config.gold.column, "gold.column"))
    if config.embeddings.column:
        wanted.append((config.embeddings.column, "embeddings.column"))
    for file in files:
        missing = [(c, key) for c, key in wanted if c not in file.schema]
        if missing:
            detail = ", ".join(f"{c!r} ({key})" for c, key in missing)
            raise MissingColumnError(
                f"source file {file.path!r} has no column {detail}; its columns are "
                f"{list(file.schema)}"
            )


# -- columns and hashing -------------------------------------------------------------------
@dataclass(frozen=True)
class _ColumnPlan:
    """Which source columns the job reads, hashes and keeps, with their types."""

    id_column: str
    read: tuple[str, ...]
    hash_columns: tuple[str, ...]
    slices: tuple[str, ...]
    gold_column: str | None
    dtypes: Mapping[str, pl.DataType]

    def hash_scheme(self) -> dict[str, Any]:
        return {
            "columns": {c: str(self.dtypes[c]) for c in self.hash_columns},
            "algorithm": f"polars {pl.__version__} hash_rows",
            "seed": _HASH_SEED,
        }

    def schema_record(self) -> dict[str, str]:
        return {c: str(self.dtypes[c]) for c in self.read}


_RESERVED = {
    "asset_id",
    "label",
    "label_name",
    "confidence",
    "entropy",
    "n_votes",
    "conflict",
    "all_abstain",
    "needs_review",
    *_LINEAGE_COLUMNS,
    *_EXTRA_COLUMNS,
    "index_id",
}


def _plan_columns(
    config: JobConfig, lfs: Sequence[Any], files: Sequence[SourceFile]
) -> _ColumnPlan:
    source = config.source
    dtypes: dict[str, pl.DataType] = {}
    origin: dict[str, str] = {}
    for file in files:
        for name, dtype in file.schema.items():
            if name in dtypes and dtypes[name] != dtype:
                raise SourceSchemaError(
                    f"source column {name!r} is {dtypes[name]} in {origin[name]!r} but {dtype} "
                    f"in {file.path!r}; make the files agree (cast the column) before the run"
                )
            dtypes.setdefault(name, dtype)
            origin.setdefault(name, file.path)
    available = list(dtypes)
    lf_columns: set[str] = set()
    for lf in lfs:
        read = getattr(lf, "columns_read", ()) if hasattr(lf, "columns_read") else lf.columns
        if read is None:  # a row-wise LF that may read anything
            lf_columns.update(available)
        else:
            lf_columns.update(lf.columns)
    embedding_output = config.embeddings.output_column
    missing = sorted(c for c in lf_columns if c not in dtypes and c != embedding_output)
    if missing and files:
        users = [lf.name for lf in lfs if set(lf.columns) & set(missing)]
        raise MissingColumnError(
            f"LF(s) {users} read column(s) {missing} that the source lacks; the source has "
            f"columns {available}"
        )
    for name in source.slice_columns:
        if name in _RESERVED or name.startswith(("vote_", "proba_")):
            raise InputError(
                f"source.slice_columns: {name!r} clashes with a column of the enriched table; "
                "rename it in the source"
            )
    if source.id_column != "asset_id" and "asset_id" in dtypes:
        raise InputError(
            f"the source has a column 'asset_id' but source.id_column is {source.id_column!r}; "
            "set source.id_column = 'asset_id' or rename that column"
        )
    inputs = {c for c in (config.embedding_input_column,) if c}
    keep = set(source.slice_columns) | ({config.gold.column} if config.gold.column else set())
    hashed = (lf_columns & set(dtypes)) | inputs | keep
    hashed.discard(source.id_column)
    read = [source.id_column, *sorted(hashed)]
    return _ColumnPlan(
        id_column=source.id_column,
        read=tuple(read),
        hash_columns=tuple(sorted(hashed)),
        slices=tuple(source.slice_columns),
        gold_column=config.gold.column,
        dtypes={c: dtypes[c] for c in read if c in dtypes},
    )


def read_sources(files: Sequence[SourceFile], plan: _ColumnPlan) -> pl.DataFrame:
    """Read the planned columns of ``files`` into one frame with ``asset_id`` and ``source_file``.

    Raises
    ------
    InputError
        A file cannot be read, has null ids, or two rows share an asset id (names the files).
    """
    frames = []
    for file in files:
        try:
            if file.format == "parquet":
                frame = pl.read_parquet(file.path, columns=list(plan.read))
            elif file.format == "csv":
                frame = pl.read_csv(file.path, columns=list(plan.read))
            else:
                frame = read_table(file.path, columns=list(plan.read))
        except Exception as exc:
            raise InputError(
                f"source file {file.path!r} cannot be read: {type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}; nothing was written"
            ) from exc
        frames.append(frame.with_columns(pl.lit(file.path, dtype=pl.String).alias("source_file")))
    if frames:
        data = pl.concat(frames, how="vertical")
    else:
        schema = {c: plan.dtypes[c] for c in plan.read} | {"source_file": pl.String}
        data = pl.DataFrame(schema=schema)
    if plan.id_column != "asset_id":
        data = data.with_columns(pl.col(plan.id_column).alias("asset_id"))
    ids = data.get_column("asset_id")
    if ids.null_count():
        where = data.filter(pl.col("asset_id").is_null()).get_column("source_file").unique()
        raise InputError(
            f"{ids.null_count()} asset(s) have no id ({plan.id_column!r} is null) in "
            f"{sorted(where.to_list())[:3]}; every asset needs an id"
        )
    if ids.is_duplicated().any():
        twice = data.filter(pl.col("asset_id").is_duplicated()).sort("asset_id")
        sample = twice.head(6).select("asset_id", "source_file").rows()
        raise InputError(
            f"{twice.get_column('asset_id').n_unique():,} asset id(s) appear more than once in "
            f"the source, e.g. {sample}; each asset must appear once (remove the copies)"
        )
    return data


def _content_hash(data: pl.DataFrame, columns: Sequence[str]) -> pl.Series:
    if not columns or data.height == 0:
        return pl.Series("content_hash", [0] * data.height, dtype=pl.Int64)
    hashed = data.select(columns).hash_rows(seed=_HASH_SEED)
    return hashed.reinterpret(signed=True).alias("content_hash")


def _schema_changes(record: Mapping[str, Any], plan: _ColumnPlan) -> list[str]:
    before: Mapping[str, str] = record.get("source", {}).get("schema", {})
    changes = []
    for name, dtype in plan.schema_record().items():
        if name in before and before[name] != dtype:
            if name == plan.id_column:
                raise SourceSchemaError(
                    f"source column {name!r} (the asset id) was {before[name]} in run "
                    f"{record.get('run_id')} and is {dtype} now; cast it back, or write to a "
                    "new output.path"
                )
            changes.append(
                f"source schema changed since run {record.get('run_id')}: column {name!r} "
                f"{before[name]} -> {dtype}; its assets are treated as changed"
            )
    for warning in changes:
        logger.warning(warning)
    return changes


# -- previous state ------------------------------------------------------------------------
@dataclass(frozen=True)
class _Previous:
    version: int
    record: dict[str, Any]
    state: pl.DataFrame


def _load_previous(table: Path, classes: Sequence[str], plan: _ColumnPlan) -> _Previous | None:
    version = table_version(table)
    if version is None:
        return None
    latest = latest_run(table)
    if latest is None:
        raise InputError(
            f"output.path {str(table)!r} is a Delta table that enrich did not write (no run "
            "record in its history); choose a new output.path"
        )
    record = latest[1]
    if record.get("state_format") != STATE_FORMAT:
        raise InputError(
            f"the table {str(table)!r} was written by another enrich state format "
            f"({record.get('state_format')!r}, this is {STATE_FORMAT}); write to a new output.path"
        )
    columns = [
        c for c in table_columns(table) if c not in _LINEAGE_COLUMNS and c not in _DERIVED_COLUMNS
    ]
    state = read_table(table, version=version, columns=columns)
    state_id = state.schema["asset_id"]
    if plan.dtypes.get(plan.id_column) not in (None, state_id):
        raise SourceSchemaError(
            f"asset ids are {state_id} in the output table but the source column "
            f"{plan.id_column!r} is {plan.dtypes[plan.id_column]}; cast it to {state_id}, or "
            "write to a new output.path"
        )
    return _Previous(version=version, record=record, state=state)


def _empty_state(data: pl.DataFrame) -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "asset_id": data.schema["asset_id"],
            "content_hash": pl.Int64,
            "source_file": pl.String,
        }
    )


def _asset_status(
    data: pl.DataFrame, state: pl.DataFrame, unread: set[str], *, all_changed: bool = False
) -> pl.DataFrame:
    """Per asset read: ``_new``, ``_changed`` (content hash differs); refuse cross-file copies.

    ``all_changed``: the hash covers other columns or types than last time, so every known
    asset counts as changed.
    """
    prev = _rows_of(state, data.get_column("asset_id")).select(
        "asset_id",
        pl.col("content_hash").alias("_prev_hash"),
        pl.col("source_file").alias("_prev_file"),
    )
    joined = data.select("asset_id", "content_hash", "source_file").join(
        prev, on="asset_id", how="left", maintain_order="left"
    )
    copies = joined.filter(
        pl.col("_prev_file").is_not_null()
        & (pl.col("_prev_file") != pl.col("source_file"))
        & pl.col("_prev_file").is_in(list(unread))
    )
    if copies.height:
        sample = copies.head(3).select("asset_id", "source_file", "_prev_file").rows()
        raise InputError(
            f"{copies.height:,} asset id(s) appear in a new or changed file and also in an "
            f"unchanged one, e.g. (id, new file, earlier file) {sample}; each asset must "
            "appear once in the source (remove the copies)"
        )
    differs = pl.lit(True) if all_changed else pl.col("_prev_hash") != pl.col("content_hash")
    return joined.select(
        "asset_id",
        pl.col("_prev_hash").is_null().alias("_new"),
        (pl.col("_prev_hash").is_not_null() & differs).alias("_changed"),
    )


# -- embeddings ------------------------------------------------------------------------------
_HOG_FIT_SAMPLE = 2000


class _Embedder:
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
        previous_index: Path | None,
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
        self.added = 0
        self.stats: dict[str, Any] = {}

    @classmethod
    def for_job(
        cls,
        config: JobConfig,
        paths: JobPaths,
        previous: _Previous | None,
        lfs: Sequence[Any],
        changed_lfs: Sequence[Any],
    ) -> _Embedder | None:
        kind = config.encoder_kind
        if kind is None:
            return None
        spec = _encoder_spec(config, paths)
        encoder_id = None if spec is None else _encoder_id(spec)
        if kind == "precomputed":
            encoder_id = f"precomputed:{config.embedding_input_column}"
        before = (previous.record.get("embeddings") or {}) if previous else {}
        index_path = before.get("index_path")
        usable = (
            index_path is not None
            and before.get("encoder_id") == encoder_id
            and (Path(index_path) / "index.json").is_file()
            and encoder_id is not None
        )
        output = config.embeddings.output_column
        reads = [lf for lf in lfs if output in lf.columns]
        attach = bool(reads) and output != config.embedding_input_column
        embedder = cls(
            config, paths, spec, encoder_id, Path(index_path) if usable else None, attach
        )
        if any(output in lf.columns for lf in changed_lfs):
            embedder.rebuild = True  # re-run LFs read every asset's vector
        return embedder

    def embed(
        self,
        data: pl.DataFrame,
        fresh: pl.DataFrame,
        state: pl.DataFrame,
        engine: Engine,
        *,
        progress: bool,
    ) -> pl.DataFrame:
        """Give the read rows their index ids (and vectors, for LFs that read them)."""
        from embeddings.index import VectorIndex

        ids = _index_ids(data, state)
        data = data.with_columns(ids)
        wanted = (
            data
            if self.rebuild
            else data.filter(pl.col("asset_id").is_in(fresh.get_column("asset_id").implode()))
        )
        vectors = self._vectors(wanted, engine, progress=progress)
        if self.rebuild or self.previous_index is None:
            self.index = VectorIndex(vectors.shape[1], encoder_id=self.encoder_id)
        else:
            self.index = VectorIndex.load(self.previous_index, expected_encoder_id=self.encoder_id)
        if len(wanted):
            self.index.add(
                wanted.get_column("index_id").to_numpy(), vectors, on_duplicate="replace"
            )
        self.added = len(wanted)
        self.stats.update(n_embedded=len(wanted), n_indexed=len(self.index), dim=vectors.shape[1])
        if self.attach:
            column = pl.Series(self.config.embeddings.output_column, vectors)
            attached = wanted.select("asset_id").with_columns(column)
            data = data.join(attached, on="asset_id", how="left", maintain_order="left")
        return data

    def _vectors(self, rows: pl.DataFrame, engine: Engine, *, progress: bool) -> np.ndarray:
        from embeddings.precomputed import embedding_matrix

        column = self.config.embedding_input_column
        if self.spec is None:  # precomputed: the source column
            return embedding_matrix(rows.get_column(column), what=f"source column {column!r}")
        items = rows.get_column(column).to_list()
        if self.encoder_id is None:  # the offline image encoder, fitted on the first images
            self._fit_image_encoder(items)
        return engine.encode(
            self.spec,
            items,
            batch_size=self.config.embeddings.batch_size,
            cache_path=self.paths.embeddings,
            progress=progress,
        )

    def _fit_image_encoder(self, items: list[Any]) -> None:
        from embeddings.image import HogPcaImageEncoder

        assert self.spec is not None and self.spec.model is not None  # set by _encoder_spec
        sample = items[:_HOG_FIT_SAMPLE]
        if not sample:
            raise InputError("no image to fit the offline image encoder on; add images first")
        encoder = HogPcaImageEncoder().fit(sample, progress=False)
        encoder.save(self.spec.model)
        self.encoder_id = get_encoder(self.spec).id
        logger.info("fitted the offline image encoder on %d images", len(sample))

    def save(self, run_id: str) -> dict[str, Any]:
        """Write this run's index snapshot (or keep the last one when nothing was added);
        the record entry that names it."""
        if self.index is None or not len(self.index):
            path = None
        elif self.added == 0 and not self.rebuild and self.previous_index is not None:
            path = self.previous_index  # unchanged: no copy of a possibly large index
        else:
            path = self.paths.embeddings / "index" / run_id
            self.index.save(path)
        return {
            "encoder_id": self.encoder_id,
            "index_path": str(path) if path else None,
            **self.stats,
        }

    def cleanup(self, keep: Sequence[str | None]) -> None:
        """Remove the index snapshots that no kept record names (those of dead or old runs)."""
        import shutil

        folder = self.paths.embeddings / "index"
        if not folder.is_dir():
            return
        wanted = {Path(p).name for p in keep if p}
        for snapshot in folder.iterdir():
            if snapshot.name not in wanted:
                shutil.rmtree(snapshot, ignore_errors=True)


def _index_ids(data: pl.DataFrame, state: pl.DataFrame) -> pl.Series:
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
    return EncoderSpec(kind, model)


def _encoder_id(spec: EncoderSpec) -> str | None:
    """The encoder's id, or None while a HOG-PCA image encoder is not fitted yet."""
    unfitted = spec.kind == "image" and spec.model and spec.model.endswith(".npz")
    if unfitted and not Path(spec.model).is_file():
        return None
    return get_encoder(spec).id


# -- votes -------------------------------------------------------------------------------
def _check_lf_names(lfs: Sequence[Any]) -> None:
    names = [lf.name for lf in lfs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(
            f"LF names must be unique across labeling_functions.sources; repeated: {repeated}"
        )


def _assemble(
    state: pl.DataFrame,
    data: pl.DataFrame,
    fresh_rows: pl.DataFrame,
    fresh_votes: Any,
    revote_rows: pl.DataFrame,
    revotes: Any,
    lfs: Sequence[Any],
    changed_lfs: Sequence[Any],
    plan: _ColumnPlan,
) -> tuple[pl.DataFrame, int]:
    """Every asset's state after this run, sorted by asset id; and how many kept stale votes."""
    vote_cols = [f"vote_{lf.name}" for lf in lfs]
    keep_cols = ["asset_id", "content_hash", "source_file", *plan.slices]
    if plan.gold_column:
        keep_cols.append("gold")
    with_index = "index_id" in data.columns
    if with_index:
        keep_cols.append("index_id")

    def from_source(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.select(keep_cols)

    previous = _previous_outputs(state)
    # fresh assets: everything from the source and the new votes (and, for changed ones,
    # the previous outputs)
    fresh = from_source(fresh_rows).with_columns(
        pl.Series(f"vote_{name}", fresh_votes.votes[:, j], dtype=pl.Int32)
        for j, name in enumerate(fresh_votes.lf_names)
    )
    if previous:
        fresh = fresh.join(
            _rows_of(state, fresh.get_column("asset_id")).select("asset_id", *previous),
            on="asset_id",
            how="left",
            maintain_order="left",
        )
    # unchanged assets read this run: source values, old votes, re-run LFs replaced
    read_kept = from_source(revote_rows)
    old_votes = [c for c in vote_cols if c in state.columns]
    read_kept = read_kept.join(
        _rows_of(state, read_kept.get_column("asset_id")).select("asset_id", *old_votes, *previous),
        on="asset_id",
        how="left",
        maintain_order="left",
    )
    if revotes is not None:
        read_kept = read_kept.with_columns(
            pl.Series(f"vote_{name}", revotes.votes[:, j], dtype=pl.Int32)
            for j, name in enumerate(revotes.lf_names)
        )
    # assets not read this run (unchanged files, or gone from the source): all from the table
    read_ids = data.get_column("asset_id").implode()
    unread = state.filter(~pl.col("asset_id").is_in(read_ids)).with_columns(previous)
    stale = unread.height if changed_lfs else 0
    schema = {
        "asset_id": data.schema["asset_id"],
        "content_hash": pl.Int64,
        "source_file": pl.String,
        **{c: plan.dtypes[c] for c in plan.slices},
        **({"gold": pl.Int32} if plan.gold_column else {}),
        **({"index_id": pl.Int64} if with_index else {}),
        **{c: pl.Int32 for c in vote_cols},
        **{e.meta.output_name(): state.schema[e.meta.root_names()[0]] for e in previous},
    }
    parts = [_align(part, schema) for part in (fresh, read_kept, unread)]
    marks = [False, False, bool(changed_lfs)]
    parts = [p.with_columns(pl.lit(m).alias("_stale")) for p, m in zip(parts, marks, strict=True)]
    full = pl.concat(parts, how="vertical").sort("asset_id")
    fills = [pl.col(vote_cols).fill_null(-1)] if vote_cols else []
    if plan.gold_column:
        fills.append(pl.col("gold").fill_null(-1))
    return (full.with_columns(fills) if fills else full), stale


def _rows_of(state: pl.DataFrame, ids: pl.Series) -> pl.DataFrame:
    """The rows of ``state`` for ``ids``: a few new ids are looked up in a hash set of
    them, rather than a hash table built over the whole state by a join."""
    return state.filter(pl.col("asset_id").is_in(ids.implode()))


def _previous_outputs(state: pl.DataFrame) -> list[pl.Expr]:
    """The previous run's label, review flag and probabilities, as ``_prev_<column>``: what
    :func:`_compare_previous` checks this run's output against (null for fresh assets)."""
    kept = [c for c in state.columns if c in ("label", "needs_review") or c.startswith("proba_")]
    return [pl.col(c).alias(f"_prev_{c}") for c in kept]


def _align(part: pl.DataFrame, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    return part.select(
        part.get_column(c).cast(t) if c in part.columns else pl.lit(None, dtype=t).alias(c)
        for c, t in schema.items()
    )


def _no_votes(lfs: Sequence[Any], rows: pl.DataFrame, classes: Sequence[str]) -> Any:
    """The vote matrix of zero assets."""
    from enrich.votes import VoteMatrix

    return VoteMatrix(
        votes=np.zeros((0, len(lfs)), dtype=np.int32),
        lf_names=tuple(lf.name for lf in lfs),
        asset_ids=rows.get_column("asset_id"),
        lf_versions=tuple(lf.version for lf in lfs),
        class_names=tuple(classes),
    )


def _vote_matrix(full: pl.DataFrame, lfs: Sequence[Any], classes: Sequence[str]) -> Any:
    from enrich.votes import VoteMatrix

    names = tuple(lf.name for lf in lfs)
    if names:
        votes = full.select([f"vote_{n}" for n in names]).to_numpy().astype(np.int32)
    else:
        votes = np.zeros((full.height, 0), dtype=np.int32)
    return VoteMatrix(
        votes=np.ascontiguousarray(votes),
        lf_names=names,
        asset_ids=full.get_column("asset_id"),
        lf_versions=tuple(lf.version for lf in lfs),
        class_names=tuple(classes),
    )


# -- gold ----------------------------------------------------------------------------------
def _gold(
    config: JobConfig, full: pl.DataFrame, classes: Sequence[str]
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Gold class ids per asset (-1 unknown): the source column, overridden by the gold table;
    and which assets are settled (never queued for review).

    Reviewed gold (``gold.path``) settles its assets. Gold in the source settles them only
    when the model learns from it (``gold.use_in_fit``); otherwise it only scores the run,
    and the review queue stays what it would be without it.
    """
    if not config.gold.column and not config.gold.path:
        return None, None
    if config.gold.column:
        gold = full.get_column("gold").to_numpy().astype(np.int64)
    else:
        gold = np.full(full.height, -1, dtype=np.int64)
    settled = (gold >= 0) if config.gold.use_in_fit else np.zeros(full.height, dtype=bool)
    if config.gold.path:
        from enrich.analysis.gold import gold_vector

        table = _read_gold_table(config.gold.path)
        reviewed = gold_vector(table, full.get_column("asset_id"), list(classes))
        gold = np.where(reviewed >= 0, reviewed, gold)
        settled |= reviewed >= 0
    return gold, settled


def _source_gold(data: pl.DataFrame, column: str, classes: Sequence[str]) -> pl.Series:
    """The source's gold column as class ids (``gold``, Int32, -1 = unknown)."""
    raw = data.get_column(column)
    if raw.dtype in (pl.String, pl.Categorical, pl.Enum):
        names = raw.cast(pl.String)
        known = names.is_not_null() & (names != "-1") & (names != "")
        bad = names.filter(known & ~names.is_in(list(classes)))
        if bad.len():
            raise InputError(
                f"gold.column {column!r} holds {bad.unique().sort().head(3).to_list()}, which "
                f"are not classes {list(classes)}; use class names or ids (-1/null = unknown)"
            )
        mapping = {name: i for i, name in enumerate(classes)}
        ids = names.replace_strict(mapping, default=-1, return_dtype=pl.Int32)
    elif raw.dtype.is_integer() or raw.dtype == pl.Null:
        ids = raw.cast(pl.Int64)
        bad = ids.filter(ids.is_not_null() & ((ids < -1) | (ids >= len(classes))))
        if bad.len():
            raise InputError(
                f"gold.column {column!r} holds {bad.unique().sort().head(3).to_list()}, outside "
                f"the class ids 0..{len(classes) - 1} (-1/null = unknown)"
            )
        ids = ids.cast(pl.Int32)
    else:
        raise InputError(
            f"gold.column {column!r} is {raw.dtype}; it must hold class names or class ids"
        )
    return ids.fill_null(-1).alias("gold")


def _read_gold_table(path: str) -> pl.DataFrame:
    try:
        if path.endswith(".csv"):
            return pl.read_csv(path)
        if path.endswith(".json"):
            return pl.read_json(path)
        return pl.read_parquet(path)
    except Exception as exc:
        raise InputError(
            f"gold.path {path!r} cannot be read ({type(exc).__name__}: {exc}); give a parquet, "
            "csv or json table with asset_id and label_name (or label)"
        ) from exc


# -- the label model -------------------------------------------------------------------------
def _distinct_with_gold(votes: np.ndarray, gold: np.ndarray | None) -> VotePatterns | None:
    """The distinct rows of the votes with the gold label as a last column (a gold label
    splits a vote pattern), with their counts; None when no gold label is known."""
    if gold is None or not (gold >= 0).any():
        return None
    return compress_votes(np.column_stack([votes, gold]))


def _fit_predict(
    config: JobConfig,
    k: int,
    patterns: VotePatterns,
    labelled: VotePatterns | None,
) -> tuple[Any, np.ndarray]:
    """Fit the label model on every vote (and gold, from ``labelled``); the probabilities of
    each distinct vote pattern.

    The model is fitted once per distinct row weighted by its count: the same fit as on
    every row, exact at any size (no ``max_fit_rows`` sample), so the probabilities of
    unchanged assets stay put when a few new ones arrive.
    """
    from enrich.models.label_model import LabelModel

    try:
        model = LabelModel(
            cardinality=k, random_state=config.label_model.random_state, **config.label_model.params
        )
    except TypeError as exc:
        raise InputError(
            f"label_model.params {config.label_model.params} are not options of LabelModel "
            f"({exc}); see help(enrich.models.label_model.LabelModel)"
        ) from exc
    if labelled is not None:
        model.fit(
            labelled.patterns[:, :-1], y=labelled.patterns[:, -1], sample_weight=labelled.counts
        )
    else:
        model.fit(patterns.patterns, sample_weight=patterns.counts)
    return model, np.asarray(model.predict_proba(patterns.patterns), dtype=np.float64)


def _model_json(model: Any) -> str:
    """The fitted model as JSON text (its ``to_json``, or what its ``save`` writes)."""
    to_json = getattr(model, "to_json", None)
    if callable(to_json):
        return str(to_json())
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.json"
        model.save(path)
        return path.read_text(encoding="utf-8")


def _enriched_by_pattern(
    votes: Any,
    pattern_proba: np.ndarray,
    patterns: VotePatterns,
    *,
    run_id: str,
    model_version: str,
    created_at: Any,
    review_below: float,
) -> pl.DataFrame:
    """:func:`enriched_table` of every asset, computed once per distinct vote pattern.

    Every column it derives (label, probabilities, flags, votes) is a function of the row's
    votes and probabilities, and the lineage columns are the same for all rows; so the
    table of the distinct patterns, gathered back to the assets, is the same table.
    """
    from enrich.models.output import enriched_table
    from enrich.votes import VoteMatrix

    distinct = VoteMatrix(
        votes=patterns.patterns,
        lf_names=votes.lf_names,
        asset_ids=pl.Series("asset_id", np.arange(patterns.n_patterns)),
        lf_versions=votes.lf_versions,
        class_names=votes.class_names,
    )
    small = enriched_table(
        distinct,
        pattern_proba,
        run_id=run_id,
        model_version=model_version,
        created_at=created_at,
        review_below=review_below,
    )
    gathered = small.drop("asset_id").select(pl.all().gather(patterns.inverse))
    return gathered.insert_column(0, votes.asset_ids.alias("asset_id"))


# -- the rows to write ---------------------------------------------------------------------
def _with_extras(
    enriched: pl.DataFrame,
    full: pl.DataFrame,
    plan: _ColumnPlan,
    lf_versions: Mapping[str, str],
    prev_versions: Mapping[str, str],
) -> pl.DataFrame:
    """Add the state columns; rows whose votes could not be re-run keep their LF versions."""
    extras = ["content_hash", "source_file", *plan.slices]
    extras += ["gold"] if plan.gold_column else []
    extras += ["index_id"] if "index_id" in full.columns else []
    out = enriched.with_columns(full.get_column(c) for c in extras)
    stale = full.get_column("_stale")
    if stale.any():
        kept = {name: prev_versions.get(name, version) for name, version in lf_versions.items()}
        out = out.with_columns(
            pl.when(stale)
            .then(pl.lit(json.dumps(kept)))
            .otherwise(pl.col("lf_versions"))
            .alias("lf_versions")
        )
    return out


def _schema_of(frame: pl.DataFrame) -> dict[str, pl.DataType]:
    return dict(frame.schema)


def _compare_previous(
    enriched: pl.DataFrame, full: pl.DataFrame, classes: Sequence[str]
) -> pl.DataFrame:
    """Per enriched row: the previous label and review flag, and how far a probability moved
    (all null for assets new to the table). ``full`` (row-aligned with ``enriched``) carries
    the previous outputs as ``_prev_<column>`` (see :func:`_previous_outputs`)."""
    proba_cols = [f"proba_{c}" for c in classes]
    wanted = [f"_prev_{c}" for c in ("label", "needs_review", *proba_cols)]
    if not set(wanted) <= set(full.columns):
        return pl.DataFrame(
            {
                "_prev_label": pl.Series([None] * enriched.height, dtype=pl.Int64),
                "_prev_review": pl.Series([None] * enriched.height, dtype=pl.Boolean),
                "_moved": pl.Series([None] * enriched.height, dtype=pl.Float64),
            }
        )
    joined = pl.concat([enriched.select(proba_cols), full.select(wanted)], how="horizontal")
    moved = pl.max_horizontal([(pl.col(c) - pl.col(f"_prev_{c}")).abs() for c in proba_cols])
    return joined.select(
        pl.col("_prev_label").cast(pl.Int64),
        pl.col("_prev_needs_review").alias("_prev_review"),
        moved.alias("_moved"),
    )


def _rewrite_mask(
    enriched: pl.DataFrame,
    compared: pl.DataFrame,
    status: pl.DataFrame,
    tolerance: float,
) -> pl.Series:
    """Rows to write: new or changed assets, flipped labels or flags, moved probabilities."""
    touched = status.filter(pl.col("_new") | pl.col("_changed")).get_column("asset_id")
    frame = pl.concat(
        [enriched.select("asset_id", "label", "needs_review"), compared], how="horizontal"
    )
    moved = pl.col("_moved")
    mask = frame.select(
        (
            pl.col("asset_id").is_in(touched.implode())
            | pl.col("_prev_label").is_null()
            | (pl.col("label").cast(pl.Int64) != pl.col("_prev_label"))
            | (pl.col("needs_review") != pl.col("_prev_review"))
            | ((moved > tolerance) if tolerance > 0 else (moved > 0))
        ).alias("_write")
    )
    return mask.get_column("_write").fill_null(True)


# -- metrics -------------------------------------------------------------------------------
def _metrics(
    config: JobConfig,
    enriched: pl.DataFrame,
    votes: Any,
    patterns: VotePatterns,
    labelled: VotePatterns | None,
    model: Any,
    proba: np.ndarray,
    gold: np.ndarray | None,
    previous: _Previous | None,
    classes: Sequence[str],
    compared: pl.DataFrame,
) -> dict[str, Any]:
    """Every figure the summary and the report show; plain JSON values."""
    from enrich.analysis.summary import lf_summary

    n = enriched.height
    k = len(classes)
    labels = enriched.get_column("label").to_numpy()
    confidence = enriched.get_column("confidence").to_numpy()
    counts = np.bincount(labels[labels >= 0], minlength=k)[:k]
    hist, edges = np.histogram(confidence, bins=_HIST_BINS, range=(0.0, 1.0))
    has_gold = labelled is not None
    diagnose = model if callable(getattr(model, "lf_diagnostics", None)) else None
    # the summary of the distinct (votes, gold) rows with their counts: that of every row
    rows = labelled if labelled is not None else patterns
    summary = lf_summary(
        rows.patterns[:, : votes.votes.shape[1]],
        rows.patterns[:, -1] if has_gold else None,
        lf_names=votes.lf_names,
        class_names=votes.class_names,
        model=diagnose,
        sample_weight=rows.counts,
    )
    lf_columns = [c for c in _LF_METRICS if c in summary.table.columns]
    metrics: dict[str, Any] = {
        "n_assets": n,
        "class_counts": {c: int(v) for c, v in zip(classes, counts, strict=True)},
        "class_balance": {
            c: (int(v) / n if n else 0.0) for c, v in zip(classes, counts, strict=True)
        },
        "mean_confidence": float(confidence.mean()) if n else None,
        "confidence_hist": {"edges": edges.round(4).tolist(), "counts": hist.tolist()},
        "coverage": summary.totals["coverage"],
        "overlap": summary.totals["overlap"],
        "conflict": summary.totals["conflict"],
        "n_needs_review": int(enriched.get_column("needs_review").sum()),
        "n_all_abstain": int(enriched.get_column("all_abstain").sum()),
        "lfs": summary.table.select(lf_columns).to_dicts(),
        "gold_accuracy": None,
    }
    if has_gold:
        from enrich.analysis.gold import benchmark

        scored = benchmark(gold, proba=proba, class_names=list(classes))
        metrics["gold"] = scored.to_dict() | {"per_class": scored.per_class.to_dicts()}
        metrics["gold_accuracy"] = scored.accuracy
    metrics["slices"] = _slice_metrics(config, enriched, gold)
    metrics["drift"] = _drift(previous, enriched, metrics, classes, compared)
    return metrics


def _slice_metrics(
    config: JobConfig, enriched: pl.DataFrame, gold: np.ndarray | None
) -> dict[str, Any] | None:
    slices = list(config.source.slice_columns)
    if not slices or enriched.height == 0:
        return None
    from enrich.analysis.slices import slice_report

    frame = enriched.select(["label", "confidence", *slices])
    known = gold is not None and int((gold >= 0).sum()) >= config.gaps.min_slice_size
    if known:
        right = pl.Series("correct", frame.get_column("label").to_numpy() == gold)
        correct = right.set(pl.Series(gold < 0), None)
        report = slice_report(
            frame.with_columns(correct),
            correct="correct",
            slices=slices,
            min_size=config.gaps.min_slice_size,
        )
    else:
        report = slice_report(
            frame, value="confidence", slices=slices, min_size=config.gaps.min_slice_size
        )
    return {
        "metric": report.metric_name,
        "overall": report.overall,
        "table": report.table.to_dicts(),
    }


def _drift(
    previous: _Previous | None,
    enriched: pl.DataFrame,
    metrics: Mapping[str, Any],
    classes: Sequence[str],
    compared: pl.DataFrame,
) -> dict[str, Any] | None:
    if previous is None:
        return None
    before = previous.record.get("metrics", {})
    labels = enriched.get_column("label").cast(pl.Int64)
    flipped = int((labels != compared.get_column("_prev_label")).fill_null(False).sum())
    old_cov = {row["lf"]: row["coverage"] for row in before.get("lfs", [])}
    return {
        "previous_run_id": previous.record.get("run_id"),
        "class_balance_change": {
            c: metrics["class_balance"][c] - before.get("class_balance", {}).get(c, 0.0)
            for c in classes
        },
        "mean_confidence_change": (
            metrics["mean_confidence"] - before["mean_confidence"]
            if before.get("mean_confidence") is not None and metrics["mean_confidence"] is not None
            else None
        ),
        "confidence_psi": _psi(
            before.get("confidence_hist", {}).get("counts"), metrics["confidence_hist"]["counts"]
        ),
        "coverage_change": {
            row["lf"]: (row["coverage"] - old_cov[row["lf"]]) if row["lf"] in old_cov else None
            for row in metrics["lfs"]
        },
        "n_assets_before": before.get("n_assets"),
        "n_labels_flipped": flipped,
    }


def _psi(before: Sequence[int] | None, after: Sequence[int]) -> float | None:
    """Population stability index between two histograms (0 = same shape)."""
    if not before or len(before) != len(after) or not sum(before) or not sum(after):
        return None
    p = np.asarray(before, dtype=float) / sum(before) + 1e-6
    q = np.asarray(after, dtype=float) / sum(after) + 1e-6
    return float(np.sum((q - p) * np.log(q / p)))


def _gaps(
    config: JobConfig,
    enriched: pl.DataFrame,
    gold: np.ndarray | None,
    classes: Sequence[str],
    embedder: _Embedder | None,
) -> tuple[dict[str, Any], pl.DataFrame | None]:
    """Classes and slices short of confident or right labels; with embeddings, similar
    unsure assets to label for each (the review queue's gap candidates)."""
    if not config.gaps.enabled or enriched.height == 0:
        return {"enabled": False}, None
    from enrich.curation.gaps import find_gaps

    settings = config.gaps
    columns = ["asset_id", "label_name", "confidence", *config.source.slice_columns]
    columns += ["index_id"] if "index_id" in enriched.columns else []
    gold_table = None
    if gold is not None and (gold >= 0).any():
        known = pl.Series(gold >= 0)
        gold_table = pl.DataFrame(
            {
                "asset_id": enriched.get_column("asset_id").filter(known),
                "label": pl.Series(gold[gold >= 0], dtype=pl.Int64),
            }
        )
    # A label flagged for review is not a label yet: gaps are filled from the sure ones.
    labels = enriched.select(columns).with_columns(
        pl.when(enriched.get_column("needs_review"))
        .then(None)
        .otherwise(pl.col("label_name"))
        .alias("label_name")
    )
    found = find_gaps(
        labels,
        slices=list(config.source.slice_columns),
        classes=list(classes),
        gold=gold_table,
        confident_above=settings.confident_above,
        min_confident=settings.min_confident,
        min_quality=settings.weak_below,
        min_size=settings.min_slice_size,
    )
    summary: dict[str, Any] = {
        "enabled": True,
        "gaps": found.table.select(
            "gap", "kind", "metric", "value_measured", "target", "deficit", "reason"
        ).to_dicts(),
        "n_candidates": None,
    }
    index = embedder.index if embedder is not None else None
    budget = settings.candidates_per_gap * len(found.gap_ids)
    if index is None or not len(found) or budget == 0:
        return summary, None
    from enrich.curation.gap_filling import fill_gaps

    pool = enriched.filter(pl.col("needs_review")).select(columns)
    # Leave out what fill_gaps would drop anyway: gold, confident labels, examples.
    taken = [found.labeled_ids.alias("asset_id"), found.examples.get_column("asset_id")]
    if gold_table is not None:
        taken.append(gold_table.get_column("asset_id"))
    pool = pool.filter(~pl.col("asset_id").is_in(pl.concat(taken).implode()))
    picked = fill_gaps(found, index, pool, budget, random_state=0)
    summary["n_candidates"] = len(picked)
    summary["allocation"] = picked.allocation.to_dicts()
    return summary, picked.table.select("asset_id", "reason", "score")


# -- review queue, one line ----------------------------------------------------------------
def _review_queue(
    config: JobConfig,
    enriched: pl.DataFrame,
    settled: np.ndarray | None,
    candidates: pl.DataFrame | None,
    metrics: dict[str, Any],
) -> Any:
    """The review queue of this run (settled gold excluded); its figures go to ``metrics``."""
    if not config.review.enabled or config.review.max_items == 0 or enriched.height == 0:
        return None
    from enrich.curation.review import review_queue

    exclude = None
    if settled is not None and settled.any():
        exclude = enriched.get_column("asset_id").filter(pl.Series(settled))
    purpose = config.review.purpose
    table = enriched
    if purpose == "correct":
        # Every reason the queue gives (low confidence, conflict, no votes) implies
        # needs_review, so only flagged assets (and gap candidates) can be picked: score those
        # alone. ("refit" spreads picks by vote pattern size, so it needs every asset.)
        keep = pl.col("needs_review")
        if candidates is not None:
            keep = keep | pl.col("asset_id").is_in(candidates.get_column("asset_id").implode())
        table = enriched.filter(keep)
    queue = review_queue(
        table,
        batch_size=config.review.max_items,
        low_confidence=config.review.below_confidence,
        candidates=candidates,
        exclude=exclude,
        purpose=purpose,
    )
    metrics["review"] = {
        "n_queued": len(queue),
        "n_eligible": queue.n_eligible,
        "reason_counts": queue.reason_counts,
    }
    return queue


def _one_line(
    run_id: str,
    counts: Mapping[str, int],
    metrics: Mapping[str, Any],
    version: int,
    summary_path: Path,
    report_path: Path,
    classes: Sequence[str],
) -> str:
    labels = " / ".join(f"{c} {metrics['class_counts'][c]:,}" for c in classes)
    return (
        f"run {run_id}: {counts['n_assets']:,} assets ({counts['n_new']:,} new, "
        f"{counts['n_changed']:,} changed, {counts['n_unchanged']:,} unchanged); "
        f"{counts['n_written']:,} rows written, table version {version}; labels {labels}; "
        f"{metrics['n_needs_review']:,} need review; summary {summary_path}; report {report_path}"
    )
