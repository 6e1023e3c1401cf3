"""The enriched table of a multi-label or several-task run, the rows to write, and the record.

:func:`enrich_tasks` puts every task's columns side by side with the shared ones (LF votes,
lineage, source columns) and picks the rows to write: unchanged assets are rewritten only when
a label (set) or review flag flips or a probability moves by more than
``output.proba_tolerance``. The review queue holds each task's picks (``task``; a multi-label
task's per label, ``for_label``). :func:`tasks_record` is the single-label run record plus
``task_kind`` and, per task, ``tasks.<name>``: its kind, names, model and metrics.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from enrich.io.store import table_schema
from enrich.job.context import EnrichResult, ReadResult, VoteResult
from enrich.job.job_tasks import TaskResult, TasksRunContext
from enrich.job.task_votes import decode_votes

__all__ = ["enrich_tasks", "tasks_record"]


def enrich_tasks(
    run: TasksRunContext, read: ReadResult, voted: VoteResult, results: Sequence[TaskResult]
) -> EnrichResult:
    """Every task's columns side by side, the shared columns; the rows to write and how."""
    config, full, previous = run.config, voted.full, read.previous
    model_version = _model_version(results)
    vote_columns = []
    for task in run.tasks:
        for lf in task.lfs:
            raw = full.get_column(f"vote_{lf.name}")
            if task.kind == "multilabel":
                votes = decode_votes(raw.to_numpy(), len(task.names))
                vote_columns.append(pl.Series(f"vote_{lf.name}", votes, dtype=pl.List(pl.Int8)))
            else:
                vote_columns.append(raw.cast(pl.Int32))
    now = json.dumps(read.lf_versions)
    kept = json.dumps({k: read.prev_versions.get(k, v) for k, v in read.lf_versions.items()})
    lineage = full.select(
        pl.lit(run.run_id, dtype=pl.String).alias("run_id"),
        pl.lit(model_version, dtype=pl.String).alias("model_version"),
        # votes not re-run (assets gone from the source) keep their LF versions
        pl.when(pl.col("_stale")).then(pl.lit(kept)).otherwise(pl.lit(now)).alias("lf_versions"),
        pl.lit(run.started, dtype=pl.Datetime("us", "UTC")).alias("created_at"),
    )
    extras = ["content_hash", "source_file", *run.plan.slices]
    extras += ["index_id"] if "index_id" in full.columns else []
    enriched = pl.concat(
        [
            full.select("asset_id"),
            *(r.columns for r in results),
            *([pl.DataFrame(vote_columns)] if vote_columns else []),
            lineage,
            full.select(extras),
        ],
        how="horizontal",
    )
    prev_schema = table_schema(run.paths.table) if previous else None
    full_refresh = previous is None or read.lfs_changed or prev_schema != dict(enriched.schema)
    if full_refresh:
        rows, mode = enriched, "create" if previous is None else "overwrite"
    else:
        mask, only_new = _rewrite_mask(enriched, read, results, config.output.proba_tolerance)
        rows = enriched.filter(mask)
        mode = "append" if only_new else "merge"
    metrics = _overall_metrics(run, enriched, results, voted)
    queues = [r.queue for r in results if r.queue is not None]
    queue = _Queue(pl.concat(queues, how="diagonal_relaxed")) if queues else None
    return EnrichResult(rows=rows, mode=mode, metrics=metrics, queue=queue)  # type: ignore[arg-type]


def _model_version(results: Sequence[TaskResult]) -> str:
    """The model version of the table: the task's, or a hash of every task's."""
    if len(results) == 1:
        return results[0].model_version
    text = json.dumps({r.task.name: r.model_version for r in results}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class _Queue:
    """The review queue written beside the reports: every task's, with ``task``.

    A multi-label task's rows also say ``for_label``: the label whose value is doubtful.
    """

    table: pl.DataFrame


def _rewrite_mask(
    enriched: pl.DataFrame,
    read: ReadResult,
    results: Sequence[TaskResult],
    tolerance: float,
) -> tuple[pl.Series, bool]:
    """Return the rows to write, and whether they are all new to the table.

    New, changed or moved assets; a flipped label, label set or review flag; a probability
    moved by more than ``tolerance``.
    """
    compare = [c for r in results for kind in ("label", "review", "proba") for c in r.compare[kind]]
    probas = [c for r in results for c in r.compare["proba"]]
    state = read.state
    previous = state.select("asset_id", *(pl.col(c).alias(f"_prev_{c}") for c in compare))
    frame = enriched.select("asset_id", *compare).join(
        previous, on="asset_id", how="left", maintain_order="left"
    )
    status = read.status
    touched = status.filter(pl.col("_new") | pl.col("_changed") | pl.col("_moved")).get_column(
        "asset_id"
    )
    labels_or_flags = [c for r in results for c in (*r.compare["label"], *r.compare["review"])]
    new_row = pl.col(f"_prev_{results[0].compare['review'][0]}").is_null()
    flipped = pl.any_horizontal(
        [pl.col(c).ne_missing(pl.col(f"_prev_{c}")) for c in labels_or_flags]
    )
    moved = pl.max_horizontal([(pl.col(c) - pl.col(f"_prev_{c}")).abs() for c in probas])
    write = frame.select(
        (
            pl.col("asset_id").is_in(touched.implode())
            | new_row
            | flipped
            | ((moved > tolerance) if tolerance > 0 else (moved > 0))
        )
        .fill_null(True)
        .alias("_write"),
        new_row.alias("_new_row"),
    )
    mask = write.get_column("_write")
    only_new = bool(write.get_column("_new_row").filter(mask).all())
    return mask, only_new


def _overall_metrics(
    run: TasksRunContext, enriched: pl.DataFrame, results: Sequence[TaskResult], voted: VoteResult
) -> dict[str, Any]:
    """What the one-line message, the runs table and the report read first; tasks below."""
    counts: dict[str, int] = {}
    for r in results:
        names = r.task.signature()
        if r.task.kind == "multiclass":
            for name, c in zip(names, r.task.names, strict=True):
                counts[name] = int(r.metrics.get("class_counts", {}).get(c, 0))
        else:
            for name, row in zip(names, r.metrics["per_label"], strict=True):
                counts[name] = row["n_positive"]
    flags = [pl.col(c) for r in results for c in r.compare["review"]]
    n_review = int(enriched.select(pl.any_horizontal(flags).sum()).item()) if flags else 0
    coverage = [r.metrics.get("coverage") for r in results if r.metrics.get("coverage") is not None]
    metrics: dict[str, Any] = {
        "n_assets": enriched.height,
        "class_counts": counts,
        "n_needs_review": n_review,
        "coverage": min(coverage) if coverage else None,
        "lf_errors": voted.errors.to_dicts(),
    }
    return metrics


def tasks_record(
    run: TasksRunContext,
    read: ReadResult,
    voted: VoteResult,
    results: Sequence[TaskResult],
    out: EnrichResult,
) -> dict[str, Any]:
    """The run record: the single-label record's keys, plus ``task_kind`` and ``tasks``."""
    from enrich.job import run as single

    tasks = {r.task.name: {**r.record, "metrics": r.metrics} for r in results}
    return single.run_record(
        run,
        read,
        voted,
        out,
        task_kind=run.config.task_kind,
        model={"class": "enrich.job.multilabel", "version": _model_version(results)},
        tasks=tasks,
        end_model=None,
    )
