"""Apply labeling functions to a multi-label task, and several named tasks at once.

Each LF votes, per label, for (+1), against (-1) or abstains (0). Vectorized LFs keep their
speed (one column call; the declared votes are written where the LF fires), spaCy LFs share
one parse per text and pipeline, row-wise LFs run in worker processes like in
:func:`enrich.apply`. A row-wise LF answers with a label, ``Against(label)``, a tuple / list
/ set of them, a dict ``{label: True | False | None}``, or ``ABSTAIN`` / None.

>>> import polars as pl
>>> from labeling_functions import Against, keyword_lf
>>> from enrich.tasks import Task
>>> data = pl.DataFrame({"text": ["check out my channel http://x.io", "nice song"]})
>>> task = Task.multilabel(["promotion", "link"])
>>> vm = apply_multilabel([keyword_lf("promo", ["check out"], label="promotion"),
...                        keyword_lf("song", ["song"], label=(Against("promotion"),
...                                                            Against("link")))],
...                       data, task=task, progress=False)
>>> vm.votes[:, :, 0].tolist(), vm.votes[:, :, 1].tolist()
([[1, 0], [0, -1]], [[0, 0], [0, -1]])
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from enrich._internal.frames import (
    asset_ids,
    frame_and_id_column,
    require_columns,
    require_unique_ids,
)
from enrich._internal.progress import progress_bar
from enrich.errors import InputError, LFApplicationError, NotAClassError
from enrich.labeling.apply import (
    OnError,
    _apply_vectorized,
    _check_names,
    _ChunkResult,
    _error_table,
    _ErrorLog,
    _lf_list,
    _run_row_job,
    _spacy_firings,
    apply,
    as_labeling_function,
)
from enrich.multilabel_votes import MultiLabelVoteMatrix
from enrich.tasks import Task
from enrich.votes import VoteMatrix
from labeling_functions.core import (
    ABSTAIN,
    Against,
    LabelingFunction,
    Row,
    RowLF,
    label_targets,
)
from labeling_functions.errors import LFDefinitionError
from labeling_functions.spacy_lfs import SpacyLF

__all__ = ["apply_multilabel", "apply_tasks", "lf_targets"]

_ALLOWED_VOTES = "a label of the task, Against(label), a list or dict of them, or ABSTAIN"


def apply_multilabel(
    lfs: Iterable[Any] | Any,
    data: Any,
    *,
    task: Task,
    id_column: str | None = None,
    n_jobs: int = 1,
    on_error: OnError = "raise",
    progress: bool | None = None,
    spacy_batch_size: int = 256,
) -> MultiLabelVoteMatrix:
    """Run labeling functions of a multi-label task over every asset.

    Parameters
    ----------
    lfs, data, id_column, n_jobs, on_error, progress, spacy_batch_size
        as for :func:`enrich.apply`.
    task
        a :class:`~enrich.tasks.Task` of kind ``"multilabel"``: its labels are what LFs may
        vote for or against.

    Returns
    -------
    MultiLabelVoteMatrix
        int8 votes ``(n_assets, n_lfs, n_labels)``: +1 for, -1 against, 0 abstain.

    Raises
    ------
    InputError
        ``task`` is not a multi-label task, an option is invalid or an asset id repeats.
    MissingColumnError
        An LF reads a column the data lacks.
    LFApplicationError
        An LF declares or answers something that is not a label of the task, or raised
        (with ``on_error="raise"``).
    """
    if not isinstance(task, Task) or task.kind != "multilabel":
        raise InputError(
            f"apply_multilabel needs task=Task.multilabel([...]), got {task!r}; for one class "
            "per asset use enrich.apply(lfs, data, classes=[...])."
        )
    if on_error not in ("raise", "abstain"):
        raise InputError(f"on_error must be 'raise' or 'abstain', got {on_error!r}.")
    if not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise InputError(f"n_jobs must be a positive int or -1 (all cores), got {n_jobs!r}.")
    frame, id_column = frame_and_id_column(data, id_column)
    lf_list = [as_labeling_function(lf) for lf in _lf_list(lfs)]
    _check_names(lf_list)
    targets = tuple(_declared_targets(lf, task) for lf in lf_list)
    require_columns(frame, [(c, lf.name) for lf in lf_list for c in lf.columns])
    ids = asset_ids(frame, id_column)
    require_unique_ids(ids, f"the data's id column {id_column or 'asset_id'!r}")
    for lf in lf_list:
        if isinstance(lf, SpacyLF):
            lf.prepare()

    k = task.n_labels
    votes = np.zeros((frame.height, len(lf_list), k), dtype=np.int8)
    errors: dict[str, _ErrorLog] = {}
    to_id = _label_id(task)
    with progress_bar(progress, total=len(lf_list), desc="Applying LFs") as bar:
        _apply_vectorized(
            lf_list,
            frame,
            votes,
            bar,
            alone=lambda lf: lf.label_votes(frame, to_id, k),
            where=lambda lf, fired: lf.label_votes_where(fired, to_id, k),
        )
        _apply_spacy(lf_list, frame, votes, targets, n_jobs, spacy_batch_size, bar)
        _apply_rows(lf_list, frame, ids, votes, task, targets, n_jobs, on_error, errors, bar)
    return MultiLabelVoteMatrix(
        votes=votes,
        lf_names=tuple(lf.name for lf in lf_list),
        label_names=task.labels,
        asset_ids=ids,
        lf_versions=tuple(lf.version for lf in lf_list),
        lf_targets=tuple(None if t is None else tuple(sorted({i for i, _ in t})) for t in targets),
        errors=_error_table(errors),
    )


def apply_tasks(
    tasks: Mapping[Task, Iterable[Any]],
    data: Any,
    *,
    id_column: str | None = None,
    n_jobs: int = 1,
    on_error: OnError = "raise",
    progress: bool | None = None,
) -> dict[str, VoteMatrix | MultiLabelVoteMatrix]:
    """Apply the LFs of several named tasks over the same assets.

    Parameters
    ----------
    tasks
        each :class:`~enrich.tasks.Task` and its LFs; task names must be unique.
    data, id_column, n_jobs, on_error, progress
        as for :func:`enrich.apply`.

    Returns
    -------
    dict
        task name -> its votes: a :class:`~enrich.VoteMatrix` for a multi-class task, a
        :class:`MultiLabelVoteMatrix` for a multi-label one; rows in the same order.

    Raises
    ------
    InputError
        Two tasks share a name, or a key is not a Task.

    Examples
    --------
    >>> import polars as pl
    >>> from labeling_functions import keyword_lf
    >>> data = pl.DataFrame({"text": ["subscribe to my channel", "psy is great"]})
    >>> spam, video = Task.multiclass(["HAM", "SPAM"], name="spam"), Task.multiclass(
    ...     ["Psy", "Shakira"], name="video")
    >>> out = apply_tasks({spam: [keyword_lf("sub", ["subscribe"], label="SPAM")],
    ...                    video: [keyword_lf("psy", ["psy"], label="Psy")]}, data, progress=False)
    >>> out["spam"].votes.tolist(), out["video"].votes.tolist()
    ([[1], [-1]], [[-1], [0]])
    """
    names = [t.name if isinstance(t, Task) else None for t in tasks]
    if None in names:
        raise InputError("apply_tasks takes a mapping of Task -> LFs; every key must be a Task.")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"Task names must be unique; repeated: {repeated}. Pass name=... .")
    frame, id_column = frame_and_id_column(data, id_column)
    options = {"id_column": id_column, "n_jobs": n_jobs, "on_error": on_error}
    out: dict[str, VoteMatrix | MultiLabelVoteMatrix] = {}
    for task, lfs in tasks.items():
        if task.kind == "multilabel":
            out[task.name] = apply_multilabel(lfs, frame, task=task, progress=progress, **options)
        else:
            out[task.name] = apply(
                lfs, frame, classes=list(task.labels), progress=progress, **options
            )
    return out


def lf_targets(lfs: Sequence[LabelingFunction], task: Task) -> tuple[tuple[int, ...] | None, ...]:
    """Per LF, the label ids of ``task`` it declares it votes on (None: any label).

    What :attr:`MultiLabelVoteMatrix.lf_targets` holds after :func:`apply_multilabel`; for
    votes kept elsewhere (a job's table) and put back together.

    Examples
    --------
    >>> from labeling_functions import Against, keyword_lf
    >>> task = Task.multilabel(["promotion", "link"])
    >>> lf_targets([keyword_lf("a", ["x"], label=("link", Against("promotion")))], task)
    ((0, 1),)
    """
    declared = (_declared_targets(lf, task) for lf in lfs)
    return tuple(None if t is None else tuple(sorted({i for i, _ in t})) for t in declared)


def _label_id(task: Task) -> Any:
    def to_id(label: object) -> int:
        return task.to_id(label)

    return to_id


def _declared_targets(lf: LabelingFunction, task: Task) -> tuple[tuple[int, int], ...] | None:
    """The (label id, polarity) pairs an LF declares; None when it may vote on any label."""
    if lf.label is None:
        return None
    try:
        return tuple((task.to_id(label), polarity) for label, polarity in label_targets(lf.label))
    except NotAClassError as exc:
        raise LFApplicationError(f"LF {lf.name!r} votes for {exc}.") from None
    except LFDefinitionError as exc:
        raise LFApplicationError(f"LF {lf.name!r}: {exc}") from None


def _apply_spacy(
    lfs: Sequence[LabelingFunction],
    frame: pl.DataFrame,
    votes: np.ndarray,
    targets: Sequence[tuple[tuple[int, int], ...] | None],
    n_jobs: int,
    batch_size: int,
    bar: Any,
) -> None:
    """Parse each text once per (pipeline, column); cast each spaCy LF's declared votes."""
    for j, _, rows, fired in _spacy_firings(lfs, frame, n_jobs, batch_size, bar):
        for label, polarity in targets[j] or ():
            votes[rows[fired], j, label] = polarity


def answer_votes(answer: object, task: Task) -> list[tuple[int, int]]:
    """Turn a row-wise LF's answer into ``(label id, +1 | -1)`` pairs.

    Parameters
    ----------
    answer
        a label (name or id), ``Against(label)``, a tuple / list / set / frozenset of them,
        a dict ``{label: True (for) | False (against) | None (abstain)}``, or
        ``ABSTAIN`` / None (no vote).
    task
        the multi-label task.

    Returns
    -------
    list of (int, int)

    Raises
    ------
    NotAClassError
        A label that is not one of the task's, or a dict value that is not a bool or None.

    Examples
    --------
    >>> task = Task.multilabel(["even", "closed_loop"])
    >>> answer_votes({"even": True, "closed_loop": False}, task), answer_votes(None, task)
    ([(0, 1), (1, -1)], [])
    """
    if answer is None or (isinstance(answer, int | np.integer) and answer == ABSTAIN):
        return []
    if isinstance(answer, Against):
        return [(task.to_id(answer.label), -1)]
    if isinstance(answer, str) or (
        isinstance(answer, int | np.integer) and not isinstance(answer, bool)
    ):
        return [(task.to_id(int(answer) if isinstance(answer, np.integer) else answer), 1)]
    if isinstance(answer, Mapping):
        pairs = []
        for label, value in answer.items():
            if value is None:
                continue
            if not isinstance(value, bool | np.bool_):
                raise NotAClassError(
                    f"the value for label {label!r} is {value!r}; use True (for), False "
                    "(against) or None (abstain)"
                )
            pairs.append((task.to_id(label), 1 if value else -1))
        return pairs
    if isinstance(answer, tuple | list | set | frozenset):
        return [pair for member in answer for pair in answer_votes(member, task)]
    raise NotAClassError(
        f"{answer!r} is not a multi-label vote; return a label, Against(label), a list of "
        "them, a dict {label: True/False/None}, or ABSTAIN"
    )


def _apply_rows(
    lfs: Sequence[LabelingFunction],
    frame: pl.DataFrame,
    ids: pl.Series,
    votes: np.ndarray,
    task: Task,
    targets: Sequence[tuple[tuple[int, int], ...] | None],
    n_jobs: int,
    on_error: OnError,
    errors: dict[str, _ErrorLog],
    bar: Any,
) -> None:
    """Run row-wise LFs chunk by chunk, serially or in worker processes, in row order."""
    members = [(j, lf) for j, lf in enumerate(lfs) if isinstance(lf, RowLF)]
    if not members or frame.height == 0:
        bar.update(len(members))
        return
    allowed = tuple(
        None if targets[j] is None else frozenset(i for i, _ in targets[j]) for j, _ in members
    )
    job = _MultiLabelRowJob(tuple(lf for _, lf in members), task, allowed)
    _run_row_job(
        job, members, frame, ids, votes, n_jobs, on_error, errors, bar, allowed=_ALLOWED_VOTES
    )


@dataclass(frozen=True)
class _MultiLabelRowJob:
    """The picklable work sent to each worker: row-wise LFs of one multi-label task."""

    lfs: tuple[RowLF, ...]
    task: Task
    allowed: tuple[frozenset[int] | None, ...]

    def run(self, rows: list[dict], ids: list[Any]) -> _ChunkResult:
        votes = np.zeros((len(rows), len(self.lfs), self.task.n_labels), dtype=np.int8)
        failures: list[tuple[int, Any, str, str]] = []
        bad_values: list[tuple[int, Any, str]] = []
        for i, (values, asset_id) in enumerate(zip(rows, ids, strict=True)):
            row = Row(values)
            for k, lf in enumerate(self.lfs):
                try:
                    answer = lf(row)
                except Exception as exc:
                    failures.append(
                        (k, asset_id, f"{type(exc).__name__}: {exc}", traceback.format_exc())
                    )
                    continue
                try:
                    pairs = answer_votes(answer, self.task)
                except NotAClassError as exc:
                    bad_values.append((k, asset_id, str(exc)))
                    continue
                allowed = self.allowed[k]
                outside = [p for p in pairs if allowed is not None and p[0] not in allowed]
                if outside:
                    label = self.task.labels[outside[0][0]]
                    bad_values.append(
                        (k, asset_id, f"{label!r} is not among its declared labels {lf.label!r}")
                    )
                    continue
                for label, polarity in pairs:
                    votes[i, k, label] = polarity
        return _ChunkResult(votes, failures, bad_values)
