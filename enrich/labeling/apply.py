"""Apply labeling functions to data and build the vote matrix.

Vectorized LFs run column-wise in polars (keyword and regex LFs in one ``select``, which
polars spreads over the cores); spaCy LFs share one parse per text and pipeline;
row-wise LFs run in worker processes (``n_jobs``) with results identical to a serial run.

>>> import polars as pl
>>> from labeling_functions import keyword_lf, labeling_function
>>> @labeling_function(label="HAM")
... def short(x):
...     return "HAM" if len(x.text) < 12 else None
>>> data = pl.DataFrame({"text": ["check out my channel", "nice song"]})
>>> votes = apply([keyword_lf("check", ["check out"], label="SPAM"), short], data,
...               classes=["HAM", "SPAM"], progress=False)
>>> votes.votes.tolist()
[[1, -1], [-1, 0]]
"""

from __future__ import annotations

import functools
import logging
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Literal

import numpy as np
import polars as pl

from enrich._internal.classes import ABSTAIN, TaskClasses
from enrich._internal.frames import (
    asset_ids,
    frame_and_id_column,
    require_columns,
    require_unique_ids,
)
from enrich._internal.progress import progress_bar
from enrich.errors import InputError, LFApplicationError, NotAClassError
from enrich.multilabel_votes import MultiLabelVoteMatrix
from enrich.tasks import Task
from enrich.votes import VoteMatrix
from labeling_functions.builders import KeywordLF, RegexLF
from labeling_functions.core import Against, LabelingFunction, Row, RowLF, VectorizedLF
from labeling_functions.errors import LabelingFunctionError
from labeling_functions.spacy_lfs import SpacyLF, load_pipeline

logger = logging.getLogger(__name__)

__all__ = ["OnError", "apply", "as_labeling_function"]

OnError = Literal["raise", "abstain"]
_ERROR_SAMPLE = 5
_SPACY_CHUNK = 4096


def apply(
    lfs: Iterable[Any] | Any,
    data: Any,
    *,
    classes: Sequence[str] | int | None = None,
    id_column: str | None = None,
    n_jobs: int = 1,
    on_error: OnError = "raise",
    progress: bool | None = None,
    spacy_batch_size: int = 256,
    task: Task | None = None,
) -> VoteMatrix | MultiLabelVoteMatrix:
    """Run labeling functions over every asset and return the vote matrix.

    Parameters
    ----------
    lfs
        enrich LFs (``labeling_functions``) and/or Snorkel ``LabelingFunction`` objects, or
        a single LF.
    data
        polars or pandas DataFrame, a pyarrow Table, or a Hugging Face ``datasets.Dataset``;
        one row per asset.
    classes
        Class names (LFs may then answer with names) or the number of classes. Any answer
        that is not a class is an error naming the LF, the asset and the value.
    id_column
        Column holding asset ids; default ``asset_id`` if present, else a pandas frame's
        named index, else the row position (a warning says so when a pandas frame has an
        unnamed index that is not ``0..n-1``). Ids must be unique and not null.
    n_jobs
        Worker processes for row-wise LFs (and spaCy parsing of large inputs); 1 = serial.
        Results are identical whatever ``n_jobs`` is.
    on_error
        ``"raise"`` stops at the first row-wise LF exception, naming the LF and asset and
        quoting the original traceback. ``"abstain"`` records an abstain instead and counts
        errors per LF in ``VoteMatrix.errors``.
    progress
        None (default): a bar for work that takes more than a second, only in a terminal or
        notebook (never in a log file); True: always a bar; False: never (see
        :mod:`enrich._internal.progress`).
    task
        What is labeled (:class:`~enrich.tasks.Task`); None (default) is one class per asset
        out of ``classes``. ``Task.multiclass(names)`` is the same as ``classes=names``;
        ``Task.multilabel(labels)`` lets each LF vote for, against, or abstain on each label
        and returns a :class:`~enrich.MultiLabelVoteMatrix` (see
        :func:`enrich.labeling.multilabel.apply_multilabel`).

    Returns
    -------
    VoteMatrix
        ``np.asarray(result)`` is the (n_assets, n_lfs) int32 array, -1 = abstain; with
        ``lf_names``, ``asset_ids``, ``lf_versions`` and ``errors``. A multi-label ``task``
        returns a :class:`~enrich.MultiLabelVoteMatrix` (int8 ``(n_assets, n_lfs,
        n_labels)``, +1 for, -1 against, 0 abstain).

    Raises
    ------
    MissingColumnError
        An LF reads a column the data lacks (raised before any work).
    InputError
        An asset id repeats or is null (the message quotes repeated ids), or an option is
        invalid.
    LFApplicationError
        An LF raised (with ``on_error="raise"``) or answered something that is not a class.
    """
    if task is not None:
        classes = _classes_of_task(task, classes)
        if classes is None:  # a multi-label task
            from enrich.labeling.multilabel import apply_multilabel

            return apply_multilabel(
                lfs,
                data,
                task=task,
                id_column=id_column,
                n_jobs=n_jobs,
                on_error=on_error,
                progress=progress,
                spacy_batch_size=spacy_batch_size,
            )
    if on_error not in ("raise", "abstain"):
        raise InputError(f"on_error must be 'raise' or 'abstain', got {on_error!r}.")
    if not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise InputError(f"n_jobs must be a positive int or -1 (all cores), got {n_jobs!r}.")
    frame, id_column = frame_and_id_column(data, id_column)
    task = TaskClasses.of(classes)
    lf_list = [as_labeling_function(lf) for lf in _lf_list(lfs)]
    _check_names(lf_list)
    labels = {lf.name: _declared_label(lf, task) for lf in lf_list}
    require_columns(frame, [(c, lf.name) for lf in lf_list for c in lf.columns])
    ids = asset_ids(frame, id_column)
    # a repeated id would give two rows one identity in every later step (gold, gaps, merge)
    require_unique_ids(ids, f"the data's id column {id_column or 'asset_id'!r}")
    for lf in lf_list:
        if isinstance(lf, SpacyLF):
            lf.prepare()

    votes = np.full((frame.height, len(lf_list)), ABSTAIN, dtype=np.int32)
    errors: dict[str, _ErrorLog] = {}
    with progress_bar(progress, total=len(lf_list), desc="Applying LFs") as bar:
        _apply_vectorized(
            lf_list,
            frame,
            votes,
            bar,
            alone=lambda lf: lf.votes(frame, task.to_id),
            where=lambda lf, fired: lf.votes_where(fired, task.to_id),
        )
        _apply_spacy(lf_list, frame, votes, labels, n_jobs, spacy_batch_size, bar)
        _apply_rows(lf_list, frame, ids, votes, task, labels, n_jobs, on_error, errors, bar)
    return VoteMatrix(
        votes=votes,
        lf_names=tuple(lf.name for lf in lf_list),
        asset_ids=ids,
        lf_versions=tuple(lf.version for lf in lf_list),
        class_names=task.names,
        errors=_error_table(errors),
    )


def _classes_of_task(task: Any, classes: Sequence[str] | int | None) -> list[str] | None:
    """The class names of a multi-class ``task``; None for a multi-label one."""
    if not isinstance(task, Task):
        raise InputError(
            f"task must be an enrich Task (Task.multiclass / Task.multilabel), got {task!r}."
        )
    same = isinstance(classes, Sequence) and list(classes) == list(task.labels)
    if classes is not None and (task.kind == "multilabel" or not same):
        raise InputError(
            f"pass either classes= or task=, not both (got classes={classes!r} and {task!r})."
        )
    return list(task.labels) if task.kind == "multiclass" else None


def _lf_list(lfs: Any) -> list[Any]:
    """``lfs`` as a list; a single LF (enrich or Snorkel) is a list of one."""
    if isinstance(lfs, LabelingFunction) or _is_snorkel_lf(lfs):
        return [lfs]
    if isinstance(lfs, str | bytes) or not isinstance(lfs, Iterable):
        raise InputError(
            f"lfs must be a labeling function or a list of them, got {type(lfs).__name__} {lfs!r}"
        )
    return list(lfs)


def _is_snorkel_lf(lf: Any) -> bool:
    return type(lf).__module__.startswith("snorkel.") and callable(lf) and hasattr(lf, "name")


def as_labeling_function(lf: Any) -> LabelingFunction:
    """Return ``lf`` as an enrich LF; Snorkel ``LabelingFunction`` objects are wrapped."""
    if isinstance(lf, LabelingFunction):
        return lf
    if _is_snorkel_lf(lf):
        return RowLF(name=lf.name, label=None, func=_SnorkelCall(lf))
    raise InputError(
        f"{lf!r} is not a labeling function: build one with labeling_functions "
        "(@labeling_function, keyword_lf, regex_lf, ...) or pass a Snorkel LabelingFunction."
    )


class _SnorkelPoint(SimpleNamespace):
    """The data point a Snorkel LF gets.

    Fields read as attributes (settable, as Snorkel's preprocessors need) and by key
    (``x["text"]``), as with the pandas rows Snorkel's own appliers pass.
    """

    def __getitem__(self, key: str) -> Any:
        try:
            return self.__dict__[key]
        except KeyError:
            raise KeyError(
                f"this asset has no field {key!r}; its fields are {sorted(self.__dict__)}"
            ) from None

    def __contains__(self, key: object) -> bool:
        return key in self.__dict__

    def get(self, key: str, default: Any = None) -> Any:
        """The field ``key``, or ``default`` when the asset has none."""
        return self.__dict__.get(key, default)


class _SnorkelCall:
    """Calls a Snorkel LF on the data point type it expects (attribute access, settable).

    ``__wrapped__`` points at the LF's own function, so its source sets the LF version.
    """

    def __init__(self, lf: Any) -> None:
        self.lf = lf
        self.__wrapped__ = getattr(lf, "_f", lf)

    def __call__(self, x: Row) -> object:
        return self.lf(_SnorkelPoint(**x))


def _check_names(lfs: Sequence[LabelingFunction]) -> None:
    seen: set[str] = set()
    duplicates = sorted({lf.name for lf in lfs if lf.name in seen or seen.add(lf.name)})
    if duplicates:
        raise InputError(
            f"LF names must be unique; repeated: {duplicates}. Rename them (name=...)."
        )


def _declared_label(lf: LabelingFunction, task: TaskClasses) -> int | None:
    if lf.label is None:
        return None
    if isinstance(lf.label, tuple | Against):
        raise LFApplicationError(
            f"LF {lf.name!r} declares the multi-label vote {lf.label!r}; apply it to a "
            "multi-label task: enrich.apply(lfs, data, task=Task.multilabel([...]))."
        )
    try:
        label = task.to_id(lf.label)
    except NotAClassError as exc:
        raise LFApplicationError(f"LF {lf.name!r} votes for {exc}.") from None
    if label == ABSTAIN:
        raise LFApplicationError(f"LF {lf.name!r} declares label=-1; it must be a class.")
    return label


def _apply_vectorized(
    lfs: Sequence[LabelingFunction],
    frame: pl.DataFrame,
    out: np.ndarray,
    bar: Any,
    *,
    alone: Callable[[VectorizedLF], np.ndarray],
    where: Callable[[VectorizedLF, np.ndarray], np.ndarray],
) -> None:
    """Fill ``out[:, j]`` with the votes of each vectorized LF ``j``.

    The keyword and regex LFs polars can run are evaluated together (:func:`_text_masks`) and
    voted by ``where(lf, fired)``; every other vectorized LF by ``alone(lf)``.
    """
    masks = _text_masks(lfs, frame)
    for j, lf in enumerate(lfs):
        if not isinstance(lf, VectorizedLF):
            continue
        if j in masks:
            compute = functools.partial(where, lf, masks[j])
        else:
            compute = functools.partial(alone, lf)
        out[:, j] = _call_vectorized(lf, compute)
        bar.update(1)


def _text_masks(lfs: Sequence[LabelingFunction], frame: pl.DataFrame) -> dict[int, np.ndarray]:
    """Where each keyword or regex LF fires, by its position in ``lfs``, from one ``select``.

    Polars evaluates the expressions of one ``select`` in parallel, one per core, where
    separate calls run one after another (measured in ``benchmarks/lf_apply_speed.py``). An
    LF whose pattern polars cannot run, or whose column is not text, is left out: it runs on
    its own (with the Python ``re`` fallback, or the error that names the column).
    """
    batch = {j: lf for j, lf in enumerate(lfs) if _matches_in_polars(lf, frame)}
    if not batch:
        return {}
    try:
        masks = frame.select([lf.match_expression().alias(str(j)) for j, lf in batch.items()])
    except pl.exceptions.PolarsError:  # each LF then runs alone and names its own error
        return {}
    return {j: masks.get_column(str(j)).to_numpy() for j in batch}


def _matches_in_polars(lf: LabelingFunction, frame: pl.DataFrame) -> bool:
    """Whether ``lf`` is a keyword or regex LF (not a subclass) that polars can run."""
    if type(lf) not in (KeywordLF, RegexLF):
        return False
    if frame.schema.get(lf.column) not in (pl.String, pl.Categorical, pl.Enum, pl.Null):
        return False
    empty = pl.DataFrame({lf.column: pl.Series([], dtype=pl.String)})
    try:
        empty.select(lf.match_expression())
    except pl.exceptions.ComputeError:  # syntax polars' regex engine lacks
        return False
    return True


def _call_vectorized(lf: LabelingFunction, compute: Callable[[], np.ndarray]) -> np.ndarray:
    try:
        return compute()
    except NotAClassError as exc:
        raise LFApplicationError(f"LF {lf.name!r} returned an invalid vote: {exc}.") from None
    except LabelingFunctionError as exc:
        raise LFApplicationError(str(exc)) from exc
    except Exception as exc:
        raise LFApplicationError(
            f"LF {lf.name!r} failed on the whole column: {type(exc).__name__}: {exc}"
        ) from exc


def _apply_spacy(
    lfs: Sequence[LabelingFunction],
    frame: pl.DataFrame,
    votes: np.ndarray,
    labels: dict[str, int | None],
    n_jobs: int,
    batch_size: int,
    bar: Any,
) -> None:
    """Parse each text once per (pipeline, column) and run every spaCy LF on the shared docs."""
    for j, lf, rows, fired in _spacy_firings(lfs, frame, n_jobs, batch_size, bar):
        votes[rows, j] = np.where(fired, labels[lf.name], ABSTAIN)


def _spacy_firings(
    lfs: Sequence[LabelingFunction], frame: pl.DataFrame, n_jobs: int, batch_size: int, bar: Any
) -> Iterator[tuple[int, SpacyLF, np.ndarray, np.ndarray]]:
    """Yield ``(j, lf, rows, fired)`` for every spaCy LF and chunk of texts.

    Each text is parsed once per (pipeline, column) with only the components its LFs need;
    ``fired`` is the LF's boolean result on ``rows`` (False on null texts).
    """
    groups: dict[tuple[str, str], list[tuple[int, SpacyLF]]] = {}
    for j, lf in enumerate(lfs):
        if isinstance(lf, SpacyLF):
            groups.setdefault((lf.model, lf.column), []).append((j, lf))
    for (model, column), members in groups.items():
        nlp = load_pipeline(model)
        wanted = set().union(*(lf.components for _, lf in members))
        enabled = [name for name in nlp.pipe_names if name in wanted]
        texts = frame.get_column(column).cast(pl.String)
        is_null = texts.is_null().to_numpy()
        n_process = _spacy_processes(n_jobs, len(texts))
        with nlp.select_pipes(enable=enabled):
            for start in range(0, len(texts), _SPACY_CHUNK):
                chunk = texts.slice(start, _SPACY_CHUNK).fill_null("").to_list()
                docs = list(nlp.pipe(chunk, batch_size=batch_size, n_process=n_process))
                rows = np.arange(start, start + len(chunk))
                for j, lf in members:
                    mask = _call_vectorized(lf, functools.partial(lf.fires_on_docs, docs))
                    yield j, lf, rows, mask & ~is_null[rows]
        bar.update(len(members))


def _spacy_processes(n_jobs: int, n_texts: int) -> int:
    if n_jobs == 1 or n_texts < 2 * _SPACY_CHUNK:
        return 1  # starting processes costs more than it saves on small inputs
    return n_jobs


@dataclass
class _ErrorLog:
    count: int = 0
    first_message: str = ""
    sample_asset_ids: list[Any] | None = None

    def add(self, message: str, asset_id: Any) -> None:
        if self.count == 0:
            self.first_message = message
            self.sample_asset_ids = []
        self.count += 1
        if len(self.sample_asset_ids) < _ERROR_SAMPLE:
            self.sample_asset_ids.append(asset_id)


def _error_table(errors: dict[str, _ErrorLog]) -> pl.DataFrame:
    rows = [
        {
            "lf": name,
            "n_errors": log.count,
            "first_error": log.first_message,
            "sample_asset_ids": [str(i) for i in log.sample_asset_ids or []],
        }
        for name, log in errors.items()
        if log.count
    ]
    schema = {
        "lf": pl.String,
        "n_errors": pl.Int64,
        "first_error": pl.String,
        "sample_asset_ids": pl.List(pl.String),
    }
    return pl.DataFrame(rows, schema=schema)


def _apply_rows(
    lfs: Sequence[LabelingFunction],
    frame: pl.DataFrame,
    ids: pl.Series,
    votes: np.ndarray,
    task: TaskClasses,
    labels: dict[str, int | None],
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
    job = _RowJob(tuple(lf for _, lf in members), task, tuple(labels[lf.name] for _, lf in members))
    _run_row_job(job, members, frame, ids, votes, n_jobs, on_error, errors, bar)


def _run_row_job(
    job: Any,
    members: Sequence[tuple[int, RowLF]],
    frame: pl.DataFrame,
    ids: pl.Series,
    votes: np.ndarray,
    n_jobs: int,
    on_error: OnError,
    errors: dict[str, _ErrorLog],
    bar: Any,
    *,
    allowed: str = "a class of the task, or ABSTAIN",
) -> None:
    """Run a row job (single- or multi-label) over ``frame`` in chunks; fill ``votes`` columns.

    Only the columns the LFs read travel to the workers; chunks come back in row order.
    """
    known = [lf.columns_read for _, lf in members]
    columns = (
        frame.columns if any(c is None for c in known) else sorted(set().union(*map(set, known)))
    )
    chunk_size = _row_chunk_size(frame.height, n_jobs)
    chunks = _row_chunks(frame.select(columns), ids, chunk_size)
    if n_jobs == 1:
        results: Iterator[Any] = (job.run(rows, chunk_ids) for rows, chunk_ids in chunks)
    else:
        from joblib import Parallel, delayed

        parallel = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator")
        results = parallel(delayed(job.run)(rows, chunk_ids) for rows, chunk_ids in chunks)
    bar.total += -(-frame.height // chunk_size)
    start = 0
    positions = [j for j, _ in members]
    try:
        for result in results:
            block = slice(start, start + len(result.votes))
            votes[block, positions] = result.votes
            start = block.stop
            _raise_or_log(result, job, on_error, errors, allowed=allowed)
            bar.update(1)
    finally:
        with warnings.catch_warnings():  # joblib warns about chunks cancelled after an error
            warnings.simplefilter("ignore", UserWarning)
            results.close()
    bar.update(len(members))


def _row_chunk_size(n_rows: int, n_jobs: int) -> int:
    workers = 1 if n_jobs == 1 else max(n_jobs, 2)
    return max(500, min(20_000, -(-n_rows // (workers * 8))))


def _row_chunks(
    frame: pl.DataFrame, ids: pl.Series, size: int
) -> Iterator[tuple[list[dict], list[Any]]]:
    for start in range(0, len(ids), size):
        chunk_ids = ids.slice(start, size).to_list()
        if frame.width:
            rows = frame.slice(start, size).rows(named=True)
        else:  # the LFs read no column at all
            rows = [{} for _ in chunk_ids]
        yield rows, chunk_ids


@dataclass
class _ChunkResult:
    votes: np.ndarray
    failures: list[tuple[int, Any, str, str]]  # (lf position, asset id, message, traceback)
    bad_values: list[tuple[int, Any, str]]  # (lf position, asset id, message)


@dataclass(frozen=True)
class _RowJob:
    """The picklable work sent to each worker: row-wise LFs and how to read their answers."""

    lfs: tuple[RowLF, ...]
    task: TaskClasses
    declared: tuple[int | None, ...]

    def run(self, rows: list[dict], ids: list[Any]) -> _ChunkResult:
        votes = np.full((len(rows), len(self.lfs)), ABSTAIN, dtype=np.int32)
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
                    vote = self.task.to_id(answer)
                except NotAClassError as exc:
                    bad_values.append((k, asset_id, str(exc)))
                    continue
                if vote != ABSTAIN and self.declared[k] is not None and vote != self.declared[k]:
                    bad_values.append(
                        (k, asset_id, f"{answer!r} differs from its declared label {lf.label!r}")
                    )
                    continue
                votes[i, k] = vote
        return _ChunkResult(votes, failures, bad_values)


def _raise_or_log(
    result: Any,
    job: Any,
    on_error: OnError,
    errors: dict[str, _ErrorLog],
    *,
    allowed: str = "a class of the task, or ABSTAIN",
) -> None:
    """Raise on a chunk's first invalid vote, or LF error with ``on_error="raise"``; log the rest.

    ``result`` is a chunk result and ``job`` a row job of single- or multi-label votes;
    ``allowed`` says what an LF may return.
    """
    if result.bad_values:
        k, asset_id, message = result.bad_values[0]
        raise LFApplicationError(
            f"LF {job.lfs[k].name!r} returned an invalid vote on asset {asset_id!r}: {message}. "
            f"Return {allowed}."
        )
    if result.failures and on_error == "raise":
        k, asset_id, message, trace = result.failures[0]
        raise LFApplicationError(
            f"LF {job.lfs[k].name!r} raised on asset {asset_id!r}: {message}\n"
            f"Original traceback:\n{trace}"
            "Fix the LF, or pass on_error='abstain' to record an abstain and count errors."
        )
    for k, asset_id, message, _ in result.failures:
        errors.setdefault(job.lfs[k].name, _ErrorLog()).add(message, asset_id)
    if result.failures:
        logger.warning("%d LF error(s) recorded as abstains", len(result.failures))
