"""The context one job run carries from phase to phase, and what each phase hands on.

:class:`RunContext` holds what every phase reads (the job, its paths, LFs, files, column
plan, engine, clock) and collects the run's warnings; :class:`ReadResult`,
:class:`VoteResult`, :class:`FitResult` and :class:`EnrichResult` are the outputs of the
read, vote, fit and enrich phases of :func:`enrich.job.run.run_job`. Internal to the job.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from enrich._internal.vote_arrays import VotePatterns
from enrich.curation.review import ReviewQueue
from enrich.io.store import JobPaths
from enrich.job.config import JobConfig
from enrich.job.index import Embedder
from enrich.job.plan import ColumnPlan
from enrich.job.records import Clock
from enrich.job.sources import SourceFile
from enrich.job.state import Previous
from enrich.labeling.engines import Engine
from enrich.votes import VoteMatrix

__all__ = [
    "EndModelResult",
    "EnrichResult",
    "FitResult",
    "JobResult",
    "ReadResult",
    "RunContext",
    "RunStatus",
    "VoteResult",
    "job_paths",
]


def job_paths(config: JobConfig) -> JobPaths:
    """Where a job keeps its table, runs table, reports and embeddings (``[output]``)."""
    return JobPaths.for_table(
        config.output.path,
        runs=config.output.runs_path,
        reports=config.output.reports_dir,
        embeddings=config.embeddings.cache_path,
        storage_options=config.storage_options_for("output"),
    )


@dataclass
class RunContext:
    """What every phase of one run reads: the job, where it writes, its LFs, files and plan."""

    config: JobConfig
    paths: JobPaths
    run_id: str
    started: dt.datetime
    clock: Clock
    progress: bool | None
    lfs: list[Any]
    files: list[SourceFile]
    plan: ColumnPlan
    engine: Engine = field(init=False)
    warnings: list[str] = field(default_factory=list)
    rerun_lfs: frozenset[str] = frozenset()

    @property
    def classes(self) -> tuple[str, ...]:
        """The class names, in class-id order."""
        return tuple(self.config.labeling_functions.classes)


@dataclass
class ReadResult:
    """The read phase: the previous run, what changed since, and the rows read this run."""

    previous: Previous | None
    lf_versions: dict[str, str]
    prev_versions: dict[str, str]
    changed_lfs: list[Any]
    hash_scheme: dict[str, Any]
    embedder: Embedder | None
    manifest: dict[str, Any]
    n_files_read: int
    state: pl.DataFrame
    status: pl.DataFrame
    data: pl.DataFrame | None

    @property
    def lfs_changed(self) -> bool:
        """Whether an LF's code changed, or an LF was added or removed, since the last run."""
        return bool(self.changed_lfs) or set(self.prev_versions) != set(self.lf_versions)

    @property
    def n_total(self) -> int:
        """Assets in the table or new in the source (0: nothing to do)."""
        return self.state.height + int(self.status.get_column("_new").sum())

    def take_data(self) -> pl.DataFrame:
        """Hand the rows read over to the vote phase and keep no reference.

        Vectors can be big: the vote phase releases them once the votes are assembled.
        """
        data, self.data = self.data, None
        assert data is not None, "the rows read are taken once"
        return data


@dataclass(frozen=True)
class VoteResult:
    """The vote phase: every asset's state after this run, and what was voted."""

    full: pl.DataFrame
    errors: pl.DataFrame
    n_read: int
    n_voted: int
    n_revoted: int


@dataclass(frozen=True)
class FitResult:
    """The fit phase: votes, gold, the fitted model and every asset's probabilities."""

    votes: VoteMatrix
    gold: np.ndarray | None
    settled: np.ndarray | None
    patterns: VotePatterns
    labelled: VotePatterns | None
    model: Any
    pattern_proba: np.ndarray
    proba: np.ndarray
    model_json: str
    model_version: str
    structure_record: dict[str, Any]


@dataclass(frozen=True)
class EndModelResult:
    """The end-model phase: the model, every asset's probabilities and its training sample.

    ``proba`` is out-of-fold for the sampled rows (honest for gold and for cleanlab).
    """

    model: Any
    proba: np.ndarray
    sampled: np.ndarray
    state: dict[str, Any] = field(default_factory=dict)
    retrained: bool = True


@dataclass(frozen=True)
class EnrichResult:
    """The enrich phase: the rows to write and how, the metrics and the review queue."""

    rows: pl.DataFrame
    mode: str
    metrics: dict[str, Any]
    queue: ReviewQueue | None


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
