"""The nightly job for a multi-label task, and for several named tasks over the same assets.

:func:`enrich.job.run.run_job` hands a job here when ``[labeling_functions]`` says ``task =
"multilabel"`` or names several ``[labeling_functions.tasks.<name>]``. The run is the
single-label run's, step for step and mostly with its own code: the same lock, read
(only new or changed files and assets), vote (only new or changed assets; a changed LF on
every asset), state kept in the output table, one atomic Delta commit whose metadata is
the run record, runs table, retention and reports. What differs is kept here:

- **Votes in the state.** A multi-class task's LF keeps its ``vote_<lf>`` Int32 class id.
  A multi-label task's LF votes +1 / -1 / 0 on every label; the table shows them as a
  ``vote_<lf>`` list (List[Int8], one entry per label) and the run packs them into one
  base-3 number per asset (:func:`encode_votes`) so the shared state code handles them as
  any other vote column.
- **Fit.** A multi-class task is fitted and enriched by the single-label steps
  (:func:`enrich.job.run._fit` / ``_enrich``, with its own gold and previous outputs). A
  multi-label task fits :class:`~enrich.models.multilabel.MultiLabelModel` once per
  distinct vote pattern weighted by its count (the fit of every row, so the probabilities
  of unchanged assets stay put when new ones arrive) and builds its table once per
  pattern (:func:`~enrich.analysis.multilabel.multilabel_table`): ``p_<label>`` per label,
  the predicted set ``labels``, ``n_labels``, ``voted``, ``conflict``,
  ``uncertain_labels`` and ``review`` (a probability within ``review.below_confidence -
  0.5`` of its label's threshold, or LFs voting both ways on a label).
- **Columns.** With several tasks each task's columns start with ``<task>__``
  (``spam__label``, ``spam__proba_SPAM``, ``topics__p_link``, ``topics__labels``); LF vote
  columns (LF names are unique across tasks) and lineage columns are shared.
- **Gold.** ``gold.column`` (one task) or ``tasks.<name>.gold_column``: class names or ids
  for a multi-class task; for a multi-label task a list of the labels present (null =
  unknown). The table keeps it as ``gold`` / ``<task>__gold`` (Int32 class id; List[Int8]
  of 1 present / 0 absent / -1 unknown per label).
- **Record.** ``task_kind`` and, per task, ``tasks.<name>``: its kind, names, model and
  metrics (per label: coverage, positives, threshold; F1 against gold; the LF summary per
  label); the HTML report has a section per task.

Unchanged assets are rewritten only when a label (set) or review flag flips or a
probability moves by more than ``output.proba_tolerance``. The review queue holds each
task's picks (``task``; a multi-label task's per label, ``for_label``). With ``[end_model]``
a multi-class task gets the single-label end model's columns and a multi-label task
``model_p_<label>``, ``model_labels`` and ``label_source``
(:mod:`enrich.job.multilabel_end_model`), each task retrained or kept on its own by the
single-label rule. With ``[embeddings]``, similar unsure assets are proposed for each
label's gaps (:func:`~enrich.fill_gaps_per_label`; in the metrics and in the label's
review queue). Not yet for these jobs: a reviewed gold table (the config refuses it) and Dask
workers reading their own partitions (the driver reads the rows and the workers vote; a
warning says so).

>>> encode_votes(np.array([[1, 0, -1], [0, 0, 0]], dtype=np.int8)).tolist()
[19, 0]
>>> decode_votes(np.array([19, 0]), 3).tolist()
[[1, 0, -1], [0, 0, 0]]
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl

from enrich._internal.progress import progress_policy
from enrich._internal.vote_arrays import compress_votes
from enrich.analysis.multilabel import multilabel_lf_summary, multilabel_scores, multilabel_table
from enrich.errors import InputError, MissingColumnError
from enrich.io.store import (
    table_schema,
)
from enrich.job._faults import checkpoint
from enrich.job.config import JobConfig, LabelingFunctionsConfig
from enrich.job.context import (
    EnrichResult,
    JobResult,
    ReadResult,
    RunContext,
    VoteResult,
    job_paths,
)
from enrich.job.end_model_step import end_model_step
from enrich.job.fit import model_json, source_gold
from enrich.job.multilabel_end_model import (
    MultiLabelEnded,
    end_model_metrics,
    multilabel_end_model_step,
)
from enrich.job.plan import plan_columns
from enrich.job.records import Clock
from enrich.job.sources import list_source_files
from enrich.labeling.apply import as_labeling_function
from enrich.labeling.engines import DaskEngine, Engine, merge_errors
from enrich.labeling.multilabel import lf_targets
from enrich.labeling.sources import load_lfs
from enrich.models.output import new_run_id
from enrich.multilabel_votes import MultiLabelVoteMatrix
from enrich.tasks import Task

__all__ = ["JobTask", "decode_votes", "encode_votes", "job_tasks", "run_tasks_job"]

logger = logging.getLogger(__name__)

_LINEAGE = ("run_id", "model_version", "lf_versions", "created_at")
_MULTILABEL_OUTPUTS = ("labels", "n_labels", "voted", "conflict", "uncertain_labels", "review")


# -- the tasks of a job --------------------------------------------------------------------
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


# -- votes of a multi-label LF as one Int32 per asset ----------------------------------------
def encode_votes(votes: np.ndarray) -> np.ndarray:
    """Pack one LF's votes ``(n, n_labels)`` of +1 / -1 / 0 into one int32 per asset.

    Label ``t`` is base-3 digit ``t``: 0 abstain, 1 for, 2 against (0 = no vote at all).
    """
    digits = np.where(votes > 0, 1, np.where(votes < 0, 2, 0)).astype(np.int64)
    return (digits @ (3 ** np.arange(votes.shape[1], dtype=np.int64))).astype(np.int32)


def decode_votes(codes: np.ndarray, n_labels: int) -> np.ndarray:
    """The votes ``(n, n_labels)`` int8 that :func:`encode_votes` packed (negative: none).

    Each distinct code is decoded once (an LF has few): a look-up table of every code for
    up to 8 labels, else the distinct codes of the column.
    """
    codes = np.maximum(np.asarray(codes, dtype=np.int64), 0)
    if n_labels <= 8:
        return _digits(np.arange(3**n_labels, dtype=np.int64), n_labels)[codes]
    distinct, inverse = np.unique(codes, return_inverse=True)
    return _digits(distinct, n_labels)[inverse.reshape(-1)]


def _digits(codes: np.ndarray, n_labels: int) -> np.ndarray:
    digits = (codes[:, None] // (3 ** np.arange(n_labels, dtype=np.int64))) % 3
    return np.where(digits == 1, 1, np.where(digits == 2, -1, 0)).astype(np.int8)


def _lists_to_array(column: pl.Series, width: int, *, missing: int) -> np.ndarray:
    """A list column as an int8 array ``(n, width)``; null or other-length rows are ``missing``."""
    out = np.full((column.len(), width), missing, dtype=np.int8)
    whole = (column.list.len() == width).fill_null(False).to_numpy()
    if whole.any():
        values = column.filter(pl.Series(whole)).explode().fill_null(missing).to_numpy()
        out[whole] = values.reshape(-1, width).astype(np.int8)
    return out


@dataclass(frozen=True)
class _PackedVotes:
    """What the vote phase reads of a vote matrix: the votes, LF names and errors."""

    votes: np.ndarray
    lf_names: tuple[str, ...]
    errors: pl.DataFrame


class _TaskEngine(Engine):
    """The job's engine, applying each task's LFs for its task; multi-label votes packed."""

    def __init__(self, inner: Engine, tasks: Sequence[JobTask]) -> None:
        self.inner = inner
        self.kind = inner.kind
        self.tasks = list(tasks)
        self._task_of = {lf.name: task for task in tasks for lf in task.lfs}

    def apply(self, lfs: Sequence[Any], data: pl.DataFrame, **options: Any) -> Any:  # type: ignore[override]
        """Each task's LFs among ``lfs`` applied with its own names, sources and ``on_error``."""
        names = [lf.name for lf in lfs]
        columns: dict[str, np.ndarray] = {}
        errors = []
        for task in self.tasks:
            members = [lf for lf in lfs if self._task_of[lf.name] is task]
            if not members:
                continue
            votes = self.inner.apply(
                members,
                data,
                classes=task.names,
                on_error=task.on_error,
                progress=options.get("progress", False),
                lf_sources=task.sources,
                **({"task": task.task} if task.kind == "multilabel" else {}),
            )
            errors.append(votes.errors)
            for j, name in enumerate(votes.lf_names):
                column = votes.votes[:, j]
                columns[name] = encode_votes(column) if column.ndim == 2 else column
        packed = np.zeros((data.height, len(names)), dtype=np.int32)
        for j, name in enumerate(names):
            packed[:, j] = columns[name]
        return _PackedVotes(votes=packed, lf_names=tuple(names), errors=merge_errors(errors))

    def encode(self, spec: Any, items: Any, **options: Any) -> np.ndarray:  # type: ignore[override]
        """The wrapped engine's encoding."""
        return self.inner.encode(spec, items, **options)


# -- the run context -----------------------------------------------------------------------
@dataclass
class TasksRunContext(RunContext):
    """A run of a multi-label or several-task job: the run context plus its tasks."""

    tasks: list[JobTask] = field(default_factory=list)

    @property
    def classes(self) -> tuple[str, ...]:
        """Every task's class or label names (``<task>.<name>`` with several tasks)."""
        return tuple(name for task in self.tasks for name in task.signature())


@dataclass(frozen=True)
class _TaskResult:
    """One task's output: its columns (prefixed), what rewrites compare, metrics, record."""

    task: JobTask
    columns: pl.DataFrame
    compare: dict[str, list[str]]
    metrics: dict[str, Any]
    record: dict[str, Any]
    model_version: str
    queue: pl.DataFrame | None = None


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
        run.engine = _TaskEngine(inner, run.tasks)
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
        _check_lf_names(tasks)
        lfs = [lf for task in tasks for lf in task.lfs]
        forced = single._forced_reruns(lfs, rerun_lfs)
        files = list_source_files(config)
        plan = _plan(config, files, lfs, tasks)
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


def _check_lf_names(tasks: Sequence[JobTask]) -> None:
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


def _plan(config: JobConfig, files: Sequence[Any], lfs: Sequence[Any], tasks: Sequence[JobTask]):
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


# -- the phases ----------------------------------------------------------------------------
def _run_phases(run: TasksRunContext) -> JobResult:
    """The phases of a locked run: the single-label run's, each task fitted on its own."""
    from enrich.job import run as single

    clock = run.clock
    with clock.phase("read"):
        read = single._read(run)
        _check_kinds(run, read)
        read.data = _with_gold(read.take_data(), run.tasks)
        read.state = _packed_state(read.state, run.tasks)
    checkpoint("read")
    if read.n_total == 0:
        return single._empty_result(run)
    with clock.phase("vote"):
        voted = single._vote(run, read)
    checkpoint("voted")
    with clock.phase("fit"):
        results = [
            _multiclass(run, read, voted, task)
            if task.kind == "multiclass"
            else _multilabel(run, read, voted, task)
            for task in run.tasks
        ]
    checkpoint("fitted")
    with clock.phase("enrich"):
        out = _enrich(run, read, voted, results)
    checkpoint("enriched")
    record = _record(run, read, voted, results, out)
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


def _with_gold(data: pl.DataFrame, tasks: Sequence[JobTask]) -> pl.DataFrame:
    """Each task's gold as the table keeps it (``gold`` / ``<task>__gold``)."""
    columns = []
    for task in tasks:
        if task.gold_column is None:
            continue
        if task.kind == "multiclass":
            columns.append(source_gold(data, task.gold_column, task.names).alias(task.gold_state))
        else:
            columns.append(_label_set_gold(data, task).alias(task.gold_state))
    return data.with_columns(columns) if columns else data


def _label_set_gold(data: pl.DataFrame, task: JobTask) -> pl.Series:
    """A multi-label gold column (lists of the labels present) as 1 / 0 / -1 per label."""
    key = "gold.column" if not task.prefix else f"tasks.{task.name}.gold_column"
    raw = data.get_column(str(task.gold_column))
    if raw.dtype == pl.Null:
        raw = raw.cast(pl.List(pl.String))
    if not isinstance(raw.dtype, pl.List) or raw.dtype.inner not in (
        pl.String,
        pl.Categorical,
        pl.Null,
    ):
        raise InputError(
            f"{key} {task.gold_column!r} is {raw.dtype}; a multi-label task's gold is a list of "
            f"the labels present per asset (e.g. ['{task.names[0]}']), null where unknown"
        )
    names = raw.cast(pl.List(pl.String))
    unknown = names.explode().drop_nulls().unique().sort()
    unknown = unknown.filter(~unknown.is_in(list(task.names)))
    if unknown.len():
        raise InputError(
            f"{key} {task.gold_column!r} holds {unknown.head(3).to_list()}, which are not labels "
            f"{list(task.names)}; list only the task's labels (null = unknown)"
        )
    frame = names.to_frame("g").select(
        pl.concat_list(
            [
                pl.when(pl.col("g").is_null())
                .then(pl.lit(-1, dtype=pl.Int8))
                .otherwise(pl.col("g").list.contains(name).cast(pl.Int8))
                for name in task.names
            ]
        ).alias("g")
    )
    return frame.get_column("g").cast(pl.List(pl.Int8))


def _packed_state(state: pl.DataFrame, tasks: Sequence[JobTask]) -> pl.DataFrame:
    """The table's multi-label vote lists packed into Int32 (:func:`encode_votes`)."""
    columns = []
    for task in tasks:
        if task.kind != "multilabel":
            continue
        for lf in task.lfs:
            name = f"vote_{lf.name}"
            if name in state.columns and isinstance(state.schema[name], pl.List):
                votes = _lists_to_array(state.get_column(name), len(task.names), missing=0)
                columns.append(pl.Series(name, encode_votes(votes), dtype=pl.Int32))
    return state.with_columns(columns) if columns else state


# -- one multi-class task: the single-label steps ---------------------------------------------
def _multiclass(
    run: TasksRunContext, read: ReadResult, voted: VoteResult, task: JobTask
) -> _TaskResult:
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
    full = _with_previous(full, read, {f"{task.prefix}{c}": f"_prev_{c}" for c in outputs})
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
    return _TaskResult(
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
            "model": _model_record(fitted.model, fitted.model_version, fitted.model_json, config),
            "label_model_structure": fitted.structure_record,
            "end_model": ended.state if ended is not None and ended.state else None,
        },
        model_version=fitted.model_version,
        queue=queue,
    )


def _with_previous(full: pl.DataFrame, read: ReadResult, names: dict[str, str]) -> pl.DataFrame:
    """``full`` with the previous run's ``names`` columns (table name -> new name) joined."""
    state = read.state
    wanted = {k: v for k, v in names.items() if k in state.columns}
    if not wanted or read.previous is None:
        return full
    previous = state.select("asset_id", *(pl.col(k).alias(v) for k, v in wanted.items()))
    return full.join(previous, on="asset_id", how="left", maintain_order="left")


def _model_record(model: Any, version: str, text: str, config: JobConfig) -> dict[str, Any]:
    return {
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "version": version,
        "random_state": config.label_model.random_state,
        "params": json.loads(text),
    }


# -- one multi-label task --------------------------------------------------------------------
def _multilabel(
    run: TasksRunContext, read: ReadResult, voted: VoteResult, task: JobTask
) -> _TaskResult:
    """Fit :class:`MultiLabelModel` once per distinct vote pattern; the task's columns."""
    config, full = run.config, voted.full
    k, lf_names = len(task.names), tuple(lf.name for lf in task.lfs)
    n, m = full.height, len(lf_names)
    votes = np.zeros((n, m, k), dtype=np.int8)
    for j, name in enumerate(lf_names):
        votes[:, j, :] = decode_votes(full.get_column(f"vote_{name}").to_numpy(), k)
    targets = lf_targets(task.lfs, task.task)
    lf_versions = tuple(lf.version for lf in task.lfs)
    gold = None
    if task.gold_column is not None:
        gold = _lists_to_array(full.get_column(task.gold_state), k, missing=-1).astype(np.int64)
        gold = gold if (gold >= 0).any() else None
    flat = votes.reshape(n, m * k).astype(np.int32)
    patterns = compress_votes(flat)
    use_gold = config.gold.use_in_fit and gold is not None
    fit_rows = compress_votes(np.column_stack([flat, gold])) if use_gold else patterns
    model = _multilabel_model(config)
    fit_votes = fit_rows.patterns[:, : m * k].reshape(-1, m, k).astype(np.int8)
    model.fit(
        _matrix(fit_votes, lf_names, task, lf_versions, targets),
        fit_rows.patterns[:, m * k :] if use_gold else None,
        sample_weight=fit_rows.counts,
    )
    text = model_json(model)
    version = hashlib.sha256(text.encode()).hexdigest()[:16]
    distinct = _matrix(
        patterns.patterns.reshape(-1, m, k).astype(np.int8), lf_names, task, lf_versions, targets
    )
    pattern_proba = np.asarray(model.predict_proba(distinct), dtype=np.float64)
    margin = max(0.0, config.review.below_confidence - 0.5)
    small = multilabel_table(
        distinct, pattern_proba, thresholds=model.thresholds_, review_margin=margin
    )
    table = small.drop("asset_id").select(pl.all().gather(patterns.inverse))
    columns = table.select(pl.col(c).alias(f"{task.prefix}{c}") for c in table.columns)
    proba = pattern_proba[patterns.inverse]
    matrix = _matrix(votes, lf_names, task, lf_versions, targets, ids=full.get_column("asset_id"))
    metrics = _multilabel_metrics(matrix, proba, model, columns, gold, task, read, patterns)
    metrics["lf_errors"] = voted.errors.filter(pl.col("lf").is_in(list(lf_names))).to_dicts()
    table = table.insert_column(0, matrix.asset_ids.alias("asset_id"))  # label_view's input
    silent = [r for r in metrics["per_label"] if r["coverage"] == 0]
    if silent and n:
        where = f" of task {task.name!r}" if task.prefix else ""
        priors = ", ".join(f"{r['label']} {r['prior']:.2f}" for r in silent)
        run.warnings.append(
            f"no LF votes on label(s) {[r['label'] for r in silent]}{where}: every asset gets "
            f"the label's prior as its probability ({priors}); add LFs for them, or set "
            "label_model.params label_prior"
        )
    views = _label_views(run, small, distinct, patterns.inverse, full)
    index = read.embedder.index if read.embedder is not None else None
    metrics["gaps"], candidates = _multilabel_gaps(
        run, task, table, matrix, full, gold, views, index=index
    )
    settled = (gold >= 0).any(axis=1) if gold is not None and config.gold.use_in_fit else None
    queue = _multilabel_queue(run, task, table, matrix, settled, views, candidates=candidates)
    metrics["n_queued"] = queue.height if queue is not None else 0
    compare = {
        "label": [f"{task.prefix}labels", f"{task.prefix}uncertain_labels"],
        "review": [f"{task.prefix}review"],
        "proba": [f"{task.prefix}p_{name}" for name in task.names],
    }
    end_state = None
    if config.end_model.enabled:
        ended = _multilabel_end_model(run, read, full, task, proba, votes, gold, model)
        columns = columns.hstack(
            ended.columns.select(pl.all().name.prefix(task.prefix)).get_columns()
        )
        compare["label"].append(f"{task.prefix}model_labels")
        compare["proba"] += [f"{task.prefix}model_p_{name}" for name in task.names]
        metrics["end_model"] = end_model_metrics(
            ended, proba, model.thresholds_, gold, names=task.names
        )
        end_state = ended.state
        run.warnings.extend(ended.warnings)
    return _TaskResult(
        task=task,
        columns=columns,
        compare=compare,
        metrics=metrics,
        record={
            "kind": "multilabel",
            "names": list(task.names),
            "prefix": task.prefix,
            "model": _model_record(model, version, text, config),
            "end_model": end_state,
        },
        model_version=version,
        queue=queue,
    )


def _multilabel_end_model(
    run: TasksRunContext,
    read: ReadResult,
    full: pl.DataFrame,
    task: JobTask,
    proba: np.ndarray,
    votes: np.ndarray,
    gold: np.ndarray | None,
    model: Any,
) -> MultiLabelEnded:
    """The task's end model (:mod:`enrich.job.multilabel_end_model`): retrained or kept."""
    config = run.config
    wanted = ["voted", *(f"p_{n}" for n in task.names), *(f"model_p_{n}" for n in task.names)]
    mapping = {f"{task.prefix}{c}": c for c in wanted}
    previous = None
    if read.previous is not None and set(mapping) <= set(read.state.columns):
        previous = _with_previous(full.select("asset_id"), read, mapping)
    stored = None
    if read.previous is not None:
        mine = (read.previous.record.get("tasks") or {}).get(task.name) or {}
        stored = mine.get("end_model")
    names = {lf.name for lf in task.lfs}
    before = {k for k in read.prev_versions if k in names}
    changed = any(lf.name in names for lf in read.changed_lfs) or before != {
        k for k in read.lf_versions if k in names
    }
    fresh = read.status.filter(pl.col("_new") | pl.col("_changed")).get_column("asset_id")
    index = None
    if config.end_model_uses_embeddings and read.embedder is not None:
        index = read.embedder.index
    return multilabel_end_model_step(
        full,
        settings=config.end_model,
        names=task.names,
        proba=proba,
        votes=votes,
        gold=gold,
        thresholds=np.asarray(model.thresholds_, dtype=np.float64),
        previous=previous,
        stored=stored,
        fresh=full.select(pl.col("asset_id").is_in(fresh.implode())).to_series().to_numpy(),
        lfs_changed=changed,
        index=index,
        run_id=run.run_id,
    )


def _label_views(
    run: TasksRunContext,
    small: pl.DataFrame,
    distinct: MultiLabelVoteMatrix,
    inverse: np.ndarray,
    full: pl.DataFrame,
) -> dict[str, pl.DataFrame] | None:
    """Each label's :func:`~enrich.label_view` with the slices, for the gaps and the queue.

    A view's row is a function of the asset's vote pattern: each is made once per distinct
    pattern (``small``, ``distinct``) and spread to the assets (``inverse``). Their
    ``asset_id`` is the row number: the gaps and a ``purpose = "correct"`` queue are the
    same by row as by id (the queue's ids are mapped back), without hashing, joining and
    sorting the ids once a label.
    """
    config = run.config
    wanted = config.gaps.enabled or (config.review.enabled and config.review.max_items > 0)
    if not wanted or not len(inverse):
        return None
    from enrich.curation.multilabel import label_view

    slices = full.select(config.source.slice_columns).get_columns()
    rows = pl.Series("asset_id", np.arange(len(inverse), dtype=np.int64))
    views = {}
    for label in distinct.label_names:
        view = label_view(small, distinct, label).drop("asset_id")[inverse]
        views[label] = view.insert_column(0, rows).hstack(slices)
    return views


def _multilabel_gaps(
    run: TasksRunContext,
    task: JobTask,
    table: pl.DataFrame,
    votes: MultiLabelVoteMatrix,
    full: pl.DataFrame,
    gold: np.ndarray | None,
    views: dict[str, pl.DataFrame] | None,
    *,
    index: Any = None,
) -> tuple[dict[str, Any], pl.DataFrame | None]:
    """Each label's gaps for the metrics (:func:`~enrich.find_gaps_per_label`, ``[gaps]``).

    With the run's index (``[embeddings]``), similar assets flagged for review (no gold)
    are proposed for them by :func:`~enrich.fill_gaps_per_label`, ``gaps.candidates_per_gap``
    per gap, one budget for all labels: ``candidates`` (``label``, ``asset_id``, ``gap``,
    ``score``, ``reason``) and ``allocation`` in the metrics; the same picks, with their row
    number (``_row``), go to each label's review queue.
    """
    settings, slices = run.config.gaps, list(run.config.source.slice_columns)
    if not settings.enabled or not len(votes):
        return {"enabled": False}, None
    from enrich.curation.multilabel import find_gaps_per_label

    ids = votes.asset_ids.alias("asset_id")
    if views is not None:  # rows numbered (_label_views)
        ids = pl.Series("asset_id", np.arange(len(votes), dtype=np.int64))
    gold_frame = None
    if gold is not None:
        gold_frame = pl.DataFrame(
            [ids, *(pl.Series(name, gold[:, t]) for t, name in enumerate(task.names))]
        )
    found = find_gaps_per_label(
        table,
        votes,
        data=full.select("asset_id", *slices) if slices else None,
        slices=slices,
        gold=gold_frame,
        views=views,
        confident_above=settings.confident_above,
        min_confident=settings.min_confident,
        min_quality=settings.weak_below,
        min_size=settings.min_slice_size,
    )
    rows = [
        {"label": label, **row}
        for label, gaps in found.items()
        for row in gaps.table.select(
            "gap", "kind", "metric", "value_measured", "target", "deficit", "reason"
        ).to_dicts()
    ]
    summary: dict[str, Any] = {"enabled": True, "gaps": rows, "n_candidates": None}
    n_gaps = sum(len(gaps.gap_ids) for gaps in found.values())
    budget = settings.candidates_per_gap * n_gaps
    if index is None or "index_id" not in full.columns or not n_gaps or budget == 0:
        summary["candidates_note"] = (
            "no embedding index to search ([embeddings] is off)"
            if index is None or "index_id" not in full.columns
            else "no gap to fill"
            if not n_gaps
            else "gaps.candidates_per_gap is 0"
        )
        return summary, None
    found_candidates, picks = _multilabel_candidates(
        table, votes, full, gold, found, index, ids, budget
    )
    summary.update(found_candidates)
    return summary, picks


def _multilabel_candidates(
    table: pl.DataFrame,
    votes: MultiLabelVoteMatrix,
    full: pl.DataFrame,
    gold: np.ndarray | None,
    found: dict[str, Any],
    index: Any,
    ids: pl.Series,
    budget: int,
) -> tuple[dict[str, Any], pl.DataFrame | None]:
    """Similar unsure assets for each label's gaps (:func:`~enrich.fill_gaps_per_label`).

    ``ids`` are the ids the gaps were found under (the row numbers when the label views
    were made by row): the table and votes are searched under them, the picks mapped back.
    Returns the metrics' part and the picks (``label``, ``asset_id``, ``_row``, ``reason``,
    ``score``) or None.
    """
    from enrich.curation.multilabel import fill_gaps_per_label

    unsure = table.get_column("review").to_numpy().copy()
    if gold is not None:
        unsure &= ~(gold >= 0).any(axis=1)
    keyed = table.with_columns(ids.alias("asset_id"))
    matrix = dataclasses.replace(votes, asset_ids=ids)
    pool = pl.DataFrame({"asset_id": ids, "index_id": full.get_column("index_id")}).filter(
        pl.Series(unsure)
    )
    out: dict[str, Any] = {"n_searched": pool.height, "candidates_note": None}
    if pool.height == 0:
        out["n_candidates"] = 0
        out["candidates_note"] = "no unlabeled assets to search: none is flagged for review"
        return out, None
    picked = fill_gaps_per_label(keyed, matrix, index, pool, budget, gaps=found, random_state=0)
    rows = pl.DataFrame(
        {"asset_id": ids, "_id": votes.asset_ids, "_row": np.arange(len(votes), dtype=np.int64)}
    ).join(picked.table, on="asset_id", how="inner", maintain_order="right")
    out["n_candidates"] = len(picked)
    if not len(picked):
        out["candidates_note"] = (
            f"none of the {pool.height:,} unsure assets searched is near a gap's examples"
        )
    out["allocation"] = picked.allocation.to_dicts()
    out["candidates"] = rows.select(
        "label", pl.col("_id").alias("asset_id"), "gap", "score", "reason"
    ).to_dicts()
    picks = rows.select("label", pl.col("_id").alias("asset_id"), "_row", "reason", "score")
    return out, picks if picks.height else None


def _multilabel_queue(
    run: TasksRunContext,
    task: JobTask,
    table: pl.DataFrame,
    votes: MultiLabelVoteMatrix,
    settled: np.ndarray | None,
    views: dict[str, pl.DataFrame] | None,
    *,
    candidates: pl.DataFrame | None = None,
) -> pl.DataFrame | None:
    """Each label's review queue (:func:`~enrich.review_queue_per_label`), ``for_label`` named.

    ``candidates`` are the label's gap candidates (``label``, ``asset_id``, ``_row``...),
    queued as :func:`~enrich.review_queue`'s ``candidates``.

    ``review.max_items`` is shared evenly by the labels; settled gold is never queued. With
    ``purpose = "correct"`` the queues rank the assets by row number (their ids mapped back
    after): the same picks in the same order, without hashing and sorting the ids once a label.
    """
    settings = run.config.review
    if not settings.enabled or settings.max_items == 0 or not len(votes):
        return None
    from enrich.curation.multilabel import review_queue_per_label

    ids = votes.asset_ids
    by_row = views is not None and settings.purpose == "correct"
    if by_row:  # the views' rows are numbered (_label_views)
        ids = pl.Series("asset_id", np.arange(len(votes), dtype=np.int64))
    else:
        views = None  # "refit" reads the ids: the views by id, made by review_queue_per_label
    exclude = ids.filter(pl.Series(settled)) if settled is not None else None
    if candidates is not None:
        key = "_row" if by_row else "asset_id"
        candidates = candidates.select("label", pl.col(key).alias("asset_id"), "reason", "score")
    queues = review_queue_per_label(
        table,
        votes,
        batch_size=max(1, settings.max_items // len(task.names)),
        views=views,
        candidates=candidates,
        low_confidence=settings.below_confidence,
        exclude=exclude if exclude is not None and exclude.len() else None,
        purpose=settings.purpose,
    )
    frames = [
        q.table.with_columns(
            *([votes.asset_ids.gather(q.table["asset_id"]).alias("asset_id")] if by_row else []),
            pl.lit(task.name).alias("task"),
            pl.lit(label).alias("for_label"),
        )
        for label, q in queues.items()
        if q.table.height
    ]
    return pl.concat(frames, how="diagonal_relaxed") if frames else None


def _multilabel_model(config: JobConfig) -> Any:
    from enrich.models.multilabel import MultiLabelModel

    params = dict(config.label_model.params)
    try:
        return MultiLabelModel(random_state=config.label_model.random_state, **params)
    except TypeError as exc:
        raise InputError(
            f"label_model.params {params} are not options of MultiLabelModel ({exc}); see "
            "help(enrich.MultiLabelModel)"
        ) from exc


def _matrix(
    votes: np.ndarray,
    lf_names: tuple[str, ...],
    task: JobTask,
    lf_versions: tuple[str, ...],
    targets: tuple[tuple[int, ...] | None, ...],
    *,
    ids: pl.Series | None = None,
) -> MultiLabelVoteMatrix:
    return MultiLabelVoteMatrix(
        votes=votes,
        lf_names=lf_names,
        label_names=task.names,
        asset_ids=ids if ids is not None else pl.Series("asset_id", np.arange(votes.shape[0])),
        lf_versions=lf_versions,
        lf_targets=targets,
    )


def _multilabel_metrics(
    votes: MultiLabelVoteMatrix,
    proba: np.ndarray,
    model: Any,
    columns: pl.DataFrame,
    gold: np.ndarray | None,
    task: JobTask,
    read: ReadResult,
    patterns: Any,
) -> dict[str, Any]:
    """Per label: coverage, positives, threshold; gold scores; the LF summary per label.

    The vote counts are read off the distinct vote ``patterns`` and their counts.
    """
    n = len(votes)
    predicted = proba >= model.thresholds_
    v = votes.votes
    pv = patterns.patterns.reshape(-1, v.shape[1], v.shape[2])
    counts = np.asarray(patterns.counts, dtype=np.int64)

    def assets(rows: np.ndarray) -> int:
        return int(counts[rows].sum())

    per_label = []
    for t, name in enumerate(task.names):
        on_label = pv[:, :, t]
        per_label.append(
            {
                "label": name,
                "coverage": assets((on_label != 0).any(axis=1)) / n if n else 0.0,
                "n_voted_for": assets((on_label > 0).any(axis=1)),
                "n_voted_against": assets((on_label < 0).any(axis=1)),
                "n_positive": int(predicted[:, t].sum()),
                "positive_share": float(predicted[:, t].mean()) if n else 0.0,
                "mean_proba": float(proba[:, t].mean()) if n else 0.0,
                "threshold": float(model.thresholds_[t]),
                "prior": float(model.label_prior_[t]),
            }
        )
    review = columns.get_column(f"{task.prefix}review")
    metrics: dict[str, Any] = {
        "kind": "multilabel",
        "n_assets": n,
        "labels": list(task.names),
        "per_label": per_label,
        "coverage": assets((pv != 0).any(axis=(1, 2))) / n if n else 0.0,
        "conflict": float(columns.get_column(f"{task.prefix}conflict").mean() or 0.0),
        "mean_labels": float(predicted.sum(axis=1).mean()) if n else 0.0,
        "n_needs_review": int(review.sum()),
        "lfs": multilabel_lf_summary(votes, gold).to_dicts(),
        "gold": None,
    }
    if gold is not None:
        scores = multilabel_scores(gold, predicted.astype(np.int64), label_names=task.names)
        metrics["gold"] = {
            "n_assets": scores.n_assets,
            "micro_f1": scores.micro_f1,
            "macro_f1": scores.macro_f1,
            "subset_accuracy": scores.subset_accuracy,
            "per_label": scores.per_label.to_dicts(),
        }
    if read.previous is not None:
        before = ((read.previous.record.get("tasks") or {}).get(task.name) or {}).get("metrics")
        shares = {r["label"]: r["positive_share"] for r in (before or {}).get("per_label", [])}
        metrics["drift"] = {
            "previous_run_id": read.previous.record.get("run_id"),
            "positive_share_change": {
                r["label"]: (r["positive_share"] - shares[r["label"]])
                if r["label"] in shares
                else None
                for r in per_label
            },
        }
    return metrics


# -- the combined table, what to write, and the record ------------------------------------------
def _enrich(
    run: TasksRunContext, read: ReadResult, voted: VoteResult, results: Sequence[_TaskResult]
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
    full_refresh = (
        previous is None
        or bool(read.changed_lfs)
        or set(read.prev_versions) != set(read.lf_versions)
        or prev_schema != dict(enriched.schema)
    )
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


def _model_version(results: Sequence[_TaskResult]) -> str:
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
    results: Sequence[_TaskResult],
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
    run: TasksRunContext, enriched: pl.DataFrame, results: Sequence[_TaskResult], voted: VoteResult
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


def _record(
    run: TasksRunContext,
    read: ReadResult,
    voted: VoteResult,
    results: Sequence[_TaskResult],
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
