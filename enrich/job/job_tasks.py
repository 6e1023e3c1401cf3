"""The tasks of a multi-label or several-task job: what the config declares, and each one's result.

:func:`job_tasks` reads the tasks ``config`` declares (:class:`JobTask`: its kind, class or
label names, LF sources, gold column and column prefix); :class:`TasksRunContext` is the run
context with them, :func:`check_lf_names` refuses an LF name two tasks share, and
:func:`plan_task_columns` adds each task's gold column to the single-label column plan. Each
task's fit hands back a :class:`TaskResult` (its columns, what rewrites compare, its metrics
and its part of the run record, with :func:`model_record`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

from enrich.errors import InputError, MissingColumnError
from enrich.job.config import JobConfig
from enrich.job.context import RunContext
from enrich.job.plan import plan_columns
from enrich.tasks import Task

__all__ = [
    "JobTask",
    "TaskResult",
    "TasksRunContext",
    "check_lf_names",
    "job_tasks",
    "model_record",
    "plan_task_columns",
]

_MULTILABEL_OUTPUTS = ("labels", "n_labels", "voted", "conflict", "uncertain_labels", "review")


@dataclass(frozen=True)
class JobTask:
    """One task of a job: its kind, class or label names, LF sources, gold and column prefix."""

    name: str
    kind: Literal["multiclass", "multilabel"]
    names: tuple[str, ...]
    sources: tuple[str, ...]
    on_error: Literal["raise", "abstain"]
    gold_column: str | None
    prefix: str
    lfs: tuple[Any, ...] = ()

    @property
    def task(self) -> Task:
        """The :class:`~enrich.tasks.Task` its LFs are applied for."""
        return Task(self.kind, self.names, self.name)

    @property
    def gold_state(self) -> str:
        """The table column that keeps this task's gold (``gold`` or ``<task>__gold``)."""
        return f"{self.prefix}gold"

    def signature(self) -> list[str]:
        """The task's names as the run record's ``classes`` hold them (a change re-votes)."""
        return [f"{self.name}.{n}" if self.prefix else n for n in self.names]


def job_tasks(config: JobConfig) -> list[JobTask]:
    """The tasks ``config`` declares (LFs not loaded yet).

    >>> config = JobConfig.model_validate({"source": {"path": "x"}, "output": {"path": "y"},
    ...     "labeling_functions": {"sources": ["m:a"], "task": "multilabel",
    ...                            "labels": ["promotion", "link"]}})
    >>> [(t.name, t.kind, t.names, t.prefix) for t in job_tasks(config)]
    [('task', 'multilabel', ('promotion', 'link'), '')]
    """
    lfs = config.labeling_functions
    if lfs.tasks is None:
        return [
            JobTask(
                name="task",
                kind=lfs.task,
                names=tuple(lfs.names),
                sources=tuple(lfs.sources or ()),
                on_error=lfs.on_error,
                gold_column=config.gold.column,
                prefix="",
            )
        ]
    return [
        JobTask(
            name=name,
            kind=task.task,
            names=tuple(task.names),
            sources=tuple(task.sources),
            on_error=task.on_error,
            gold_column=task.gold_column,
            prefix=f"{name}__",
        )
        for name, task in lfs.tasks.items()
    ]


@dataclass
class TasksRunContext(RunContext):
    """A run of a multi-label or several-task job: the run context plus its tasks."""

    tasks: list[JobTask] = field(default_factory=list)

    @property
    def classes(self) -> tuple[str, ...]:
        """Every task's class or label names (``<task>.<name>`` with several tasks)."""
        return tuple(name for task in self.tasks for name in task.signature())


@dataclass(frozen=True)
class TaskResult:
    """One task's output: its columns (prefixed), what rewrites compare, metrics, record."""

    task: JobTask
    columns: pl.DataFrame
    compare: dict[str, list[str]]
    metrics: dict[str, Any]
    record: dict[str, Any]
    model_version: str
    queue: pl.DataFrame | None = None


def check_lf_names(tasks: Sequence[JobTask]) -> None:
    """Refuse an LF name that two tasks (or one task twice) use."""
    seen: dict[str, str] = {}
    for task in tasks:
        for lf in task.lfs:
            if lf.name in seen:
                where = (
                    f"tasks {seen[lf.name]!r} and {task.name!r}"
                    if seen[lf.name] != task.name
                    else f"task {task.name!r}"
                )
                raise InputError(
                    f"LF names must be unique across the job's tasks (each has a vote_<lf> "
                    f"column); {lf.name!r} is in {where}; rename one"
                )
            seen[lf.name] = task.name


def plan_task_columns(
    config: JobConfig, files: Sequence[Any], lfs: Sequence[Any], tasks: Sequence[JobTask]
):
    """The single-label column plan, plus each task's gold column (read, hashed and kept)."""
    from enrich.job import run as single

    plan = plan_columns(
        files,
        lfs,
        id_column=config.source.id_column,
        slice_columns=single._kept_columns(config),  # slices, end model features
        gold_column=None,
        embedding_input=config.embedding_input_column,
        embedding_output=config.embeddings.output_column,
    )
    taken = {"gold"} | {f"p_{n}" for t in tasks for n in t.names} | set(_MULTILABEL_OUTPUTS)
    if config.end_model.enabled:
        taken |= {"model_labels", "label_source"} | {f"model_p_{n}" for t in tasks for n in t.names}
    for name in config.source.slice_columns:
        if any(name.startswith(t.prefix) for t in tasks if t.prefix) or (
            not tasks[0].prefix and name in taken
        ):
            raise InputError(
                f"source.slice_columns: {name!r} clashes with a column of the enriched table; "
                "rename it in the source"
            )
    read, hashed, dtypes = list(plan.read), set(plan.hash_columns), dict(plan.dtypes)
    kept = list(plan.slices)
    for task in tasks:
        column = task.gold_column
        if column is None:
            continue
        if files and column not in dtypes and not any(column in f.schema for f in files):
            key = "gold.column" if not task.prefix else f"tasks.{task.name}.gold_column"
            available = sorted({c for f in files for c in f.schema})
            raise MissingColumnError(
                f"{key} {column!r} is not a column of the source; the source has {available}"
            )
        found = [f.schema[column] for f in files if column in f.schema]
        if column not in dtypes and found:
            dtypes[column] = found[0]
        if column not in read:
            read.append(column)
        if column != plan.id_column:
            hashed.add(column)
        kept.append(task.gold_state)
        dtypes[task.gold_state] = pl.Int32 if task.kind == "multiclass" else pl.List(pl.Int8)
    return dataclasses.replace(
        plan,
        read=(read[0], *sorted(read[1:])),
        hash_columns=tuple(sorted(hashed)),
        slices=tuple(kept),
        dtypes=dtypes,
    )


def model_record(model: Any, version: str, text: str, config: JobConfig) -> dict[str, Any]:
    """A task's label model as the run record keeps it (class, version, params)."""
    return {
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "version": version,
        "random_state": config.label_model.random_state,
        "params": json.loads(text),
    }
