"""The nightly job for a multi-label task, and for several named tasks over the same assets.

:func:`enrich.job.run.run_job` hands a job here when ``[labeling_functions]`` says ``task =
"multilabel"`` or names several ``[labeling_functions.tasks.<name>]``. The run is the
single-label run's, step for step and mostly with its own code: the same lock, read
(only new or changed files and assets), vote (only new or changed assets; a changed LF on
every asset), state kept in the output table, one atomic Delta commit whose metadata is
the run record, runs table, retention and reports. What differs is kept in these modules:

- **Tasks** (:mod:`enrich.job.job_tasks`): each task's kind, names, LFs, gold column and
  column prefix. With several tasks each task's columns start with ``<task>__``
  (``spam__label``, ``spam__proba_SPAM``, ``topics__p_link``, ``topics__labels``); LF vote
  columns (LF names are unique across tasks) and lineage columns are shared.
- **Votes and gold in the state** (:mod:`enrich.job.task_votes`): a multi-label task's
  votes packed into one base-3 number per asset; gold as ``gold`` / ``<task>__gold``
  (``gold.column`` or ``tasks.<name>.gold_column``: class names or ids for a multi-class
  task, for a multi-label task a list of the labels present, null = unknown).
- **Fit.** A multi-class task is fitted and enriched by the single-label steps
  (:mod:`enrich.job.multiclass_task`); a multi-label task by
  :class:`~enrich.models.multilabel.MultiLabelModel`, once per distinct vote pattern
  (:mod:`enrich.job.multilabel_task`), its gaps and review queue per label
  (:mod:`enrich.job.multilabel_followups`).
- **Table and record** (:mod:`enrich.job.task_outputs`): every task's columns side by side,
  the rows to write, ``task_kind`` and, per task, ``tasks.<name>``: its kind, names, model
  and metrics; the HTML report has a section per task.

With ``[end_model]`` a multi-class task gets the single-label end model's columns and a
multi-label task ``model_p_<label>``, ``model_labels`` and ``label_source``
(:mod:`enrich.job.multilabel_end_model`), each task retrained or kept on its own by the
single-label rule. With ``[embeddings]``, similar unsure assets are proposed for each
label's gaps (:func:`~enrich.fill_gaps_per_label`; in the metrics and in the label's
review queue). Not yet for these jobs: a reviewed gold table (the config refuses it) and Dask
workers reading their own partitions (the driver reads the rows and the workers vote; a
warning says so).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Literal

from enrich._internal.progress import progress_policy
from enrich.errors import InputError
from enrich.job._faults import checkpoint
from enrich.job.config import JobConfig
from enrich.job.context import JobResult, ReadResult, job_paths
from enrich.job.job_tasks import TasksRunContext, check_lf_names, job_tasks, plan_task_columns
from enrich.job.multiclass_task import fit_multiclass
from enrich.job.multilabel_task import fit_multilabel
from enrich.job.records import Clock
from enrich.job.sources import list_source_files
from enrich.job.task_outputs import enrich_tasks, tasks_record
from enrich.job.task_votes import TaskEngine, packed_state, with_gold
from enrich.labeling.apply import as_labeling_function
from enrich.labeling.engines import DaskEngine, Engine
from enrich.labeling.sources import load_lfs
from enrich.models.output import new_run_id

__all__ = ["run_tasks_job"]

logger = logging.getLogger(__name__)


def run_tasks_job(
    config: JobConfig,
    *,
    progress: bool | None = None,
    engine: Engine | None = None,
    rerun_lfs: Sequence[str] | Literal["all"] | None = None,
) -> JobResult:
    """Run a multi-label or several-task job; the table advances by exactly one commit.

    Parameters and errors are those of :func:`enrich.job.run.run_job`, which calls this
    for a job whose ``config.task_kind`` is ``"multilabel"`` or ``"tasks"``.
    """
    from enrich.job import run as single  # run.py hands such jobs here

    run = _load(config, progress=progress, rerun_lfs=rerun_lfs)
    logger.info("run %s: %d task(s), %d LF(s)", run.run_id, len(run.tasks), len(run.lfs))
    with single.locked_output(run):
        inner = engine or single.make_engine(config.engine)
        run.engine = TaskEngine(inner, run.tasks)
        try:
            if isinstance(inner, DaskEngine):
                run.warnings.append(
                    "the Dask workers do not read their own partitions for multi-label "
                    "tasks or several tasks yet: the driver reads the source and ships the "
                    "rows"
                )
            return _run_phases(run)
        finally:
            if engine is None:
                inner.close()


def _load(
    config: JobConfig,
    *,
    progress: bool | None,
    rerun_lfs: Sequence[str] | Literal["all"] | None,
) -> TasksRunContext:
    """Load each task's LFs, find the source files, plan the columns (before the lock)."""
    from enrich.job import run as single

    started = dt.datetime.now(dt.UTC)
    clock = Clock()
    paths = job_paths(config)
    with clock.phase("load"):
        tasks = [
            dataclasses.replace(
                task, lfs=tuple(as_labeling_function(lf) for lf in load_lfs(list(task.sources)))
            )
            for task in job_tasks(config)
        ]
        check_lf_names(tasks)
        lfs = [lf for task in tasks for lf in task.lfs]
        forced = single._forced_reruns(lfs, rerun_lfs)
        files = list_source_files(config)
        plan = plan_task_columns(config, files, lfs, tasks)
    return TasksRunContext(
        config=config,
        paths=paths,
        run_id=new_run_id(started),
        started=started,
        clock=clock,
        progress=progress_policy(progress),
        lfs=lfs,
        files=files,
        plan=plan,
        rerun_lfs=forced,
        tasks=tasks,
    )


def _run_phases(run: TasksRunContext) -> JobResult:
    """The phases of a locked run: the single-label run's, each task fitted on its own."""
    from enrich.job import run as single

    clock = run.clock
    with clock.phase("read"):
        read = single._read(run)
        _check_kinds(run, read)
        read.data = with_gold(read.take_data(), run.tasks)
        read.state = packed_state(read.state, run.tasks)
    checkpoint("read")
    if read.n_total == 0:
        return single._empty_result(run)
    with clock.phase("vote"):
        voted = single._vote(run, read)
    checkpoint("voted")
    with clock.phase("fit"):
        results = [
            fit_multiclass(run, read, voted, task)
            if task.kind == "multiclass"
            else fit_multilabel(run, read, voted, task)
            for task in run.tasks
        ]
    checkpoint("fitted")
    with clock.phase("enrich"):
        out = enrich_tasks(run, read, voted, results)
    checkpoint("enriched")
    record = tasks_record(run, read, voted, results, out)
    checkpoint("before_commit")
    return single.commit_run(run, read, out, record)


def _check_kinds(run: TasksRunContext, read: ReadResult) -> None:
    """Refuse a table whose last run had another kind of task (its state reads otherwise)."""
    if read.previous is None:
        return
    record = read.previous.record
    before = record.get("task_kind", "multiclass")
    now = run.config.task_kind
    kinds = {name: t.get("kind") for name, t in (record.get("tasks") or {}).items()}
    changed = [t.name for t in run.tasks if t.prefix and kinds.get(t.name, t.kind) != t.kind]
    if before != now or changed:
        what = f"task(s) {changed} changed kind" if changed else f"it was a {before} job"
        raise InputError(
            f"the table {str(run.paths.table)!r} holds the state of another kind of job ({what}; "
            f"this job is {now}); write this job to a new output.path, or rename the task"
        )
