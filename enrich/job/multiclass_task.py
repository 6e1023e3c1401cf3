"""One multi-class task of a several-task job, fitted and enriched by the single-label steps.

The single-label run's own steps (:mod:`enrich.job.run`'s ``_fit`` and ``_enrich``, and
:func:`~enrich.job.end_model_step.end_model_step`) see a run of the task alone: its LFs and
classes, its gold as ``gold``, its previous outputs and its part of the previous run record
(:func:`fit_multiclass`). Its columns are then prefixed with ``<task>__`` when the job has
several tasks.
"""

from __future__ import annotations

import dataclasses

import polars as pl

from enrich.job.config import LabelingFunctionsConfig
from enrich.job.context import ReadResult, RunContext, VoteResult
from enrich.job.end_model_step import end_model_step
from enrich.job.job_tasks import JobTask, TaskResult, TasksRunContext, model_record
from enrich.job.records import Clock
from enrich.job.task_votes import with_previous

__all__ = ["fit_multiclass"]

_LINEAGE = ("run_id", "model_version", "lf_versions", "created_at")


def fit_multiclass(
    run: TasksRunContext, read: ReadResult, voted: VoteResult, task: JobTask
) -> TaskResult:
    """Fit and enrich a multi-class task with the single-label run's own steps.

    They see a run of this task alone: its LFs and classes, its gold as ``gold``, its
    previous outputs as ``_prev_<column>``, and its part of the previous run record.
    """
    from enrich.job import run as single

    config = run.config
    view_config = config.model_copy(
        update={
            "labeling_functions": LabelingFunctionsConfig(
                sources=list(task.sources), classes=list(task.names), on_error=task.on_error
            ),
            "gold": config.gold.model_copy(update={"column": task.gold_column, "path": None}),
        }
    )
    view_run = RunContext(
        config=view_config,
        paths=run.paths,
        run_id=run.run_id,
        started=run.started,
        clock=Clock(),
        progress=run.progress,
        lfs=list(task.lfs),
        files=run.files,
        plan=run.plan,
        warnings=run.warnings,
        rerun_lfs=run.rerun_lfs,
    )
    full = voted.full
    if task.gold_column is not None:
        full = full.with_columns(pl.col(task.gold_state).fill_null(-1).cast(pl.Int32).alias("gold"))
    outputs = ["label", "needs_review", *(f"proba_{c}" for c in task.names)]
    ended_on = config.end_model.enabled
    if ended_on:
        outputs += ["model_label", *(f"model_proba_{c}" for c in task.names)]
    full = with_previous(full, read, {f"{task.prefix}{c}": f"_prev_{c}" for c in outputs})
    previous = read.previous
    if previous is not None:
        mine = (previous.record.get("tasks") or {}).get(task.name) or {}
        previous = dataclasses.replace(
            previous,
            record={
                "run_id": previous.record.get("run_id"),
                "metrics": mine.get("metrics") or {},
                "label_model_structure": mine.get("label_model_structure"),
                "end_model": mine.get("end_model"),
            },
        )
    names = {lf.name for lf in task.lfs}
    view_read = dataclasses.replace(
        read,
        previous=previous,
        changed_lfs=[lf for lf in read.changed_lfs if lf.name in names],
        lf_versions={k: v for k, v in read.lf_versions.items() if k in names},
        prev_versions={k: v for k, v in read.prev_versions.items() if k in names},
    )
    view_voted = dataclasses.replace(
        voted, full=full, errors=voted.errors.filter(pl.col("lf").is_in(list(names)))
    )
    fitted = single._fit(view_run, view_read, view_voted)
    ended = end_model_step(view_run, view_read, view_voted, fitted) if ended_on else None
    out = single._enrich(view_run, view_read, view_voted, fitted, ended)
    enriched = out.rows  # every asset: the table's schema never equals one task's
    shared = {"asset_id", *_LINEAGE, "content_hash", "source_file", "index_id", *run.plan.slices}
    own = [c for c in enriched.columns if c not in shared and not c.startswith("vote_")]
    columns = enriched.select(pl.col(c).alias(f"{task.prefix}{c}") for c in own)
    queue = None
    if out.queue is not None and out.queue.table.height:
        queue = out.queue.table.with_columns(pl.lit(task.name).alias("task"))
    return TaskResult(
        task=task,
        columns=columns,
        compare={
            "label": [f"{task.prefix}label", *([f"{task.prefix}model_label"] if ended else [])],
            "review": [f"{task.prefix}needs_review"],
            "proba": [
                f"{task.prefix}{kind}_{c}"
                for kind in ("proba", *(["model_proba"] if ended else []))
                for c in task.names
            ],
        },
        metrics={"kind": "multiclass", **out.metrics},
        record={
            "kind": "multiclass",
            "names": list(task.names),
            "prefix": task.prefix,
            "model": model_record(fitted.model, fitted.model_version, fitted.model_json, config),
            "label_model_structure": fitted.structure_record,
            "end_model": ended.state if ended is not None and ended.state else None,
        },
        model_version=fitted.model_version,
        queue=queue,
    )
