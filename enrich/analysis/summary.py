"""The LF summary: how often each labeling function votes, agrees, disagrees and is right.

:func:`lf_summary` is the view LF authors live in. It reads a vote matrix (int array of shape
``(n_assets, n_lfs)``, classes ``0..k-1``, abstain ``-1``) and returns an :class:`LFSummary`
with one row per LF and a few totals. The statistics are those of snorkel's
``LFAnalysis(L).lf_summary(Y)``, computed in row blocks with vectorised numpy, so a
1,000,000 x 100 matrix takes seconds and memory stays bounded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import polars as pl

from enrich._internal.display import ColumnFormat, Highlight, TableDisplay
from enrich.errors import InputError
from labeling_functions.core import ABSTAIN

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LOW_ACCURACY", "LFSummary", "lf_summary"]

logger = logging.getLogger(__name__)

#: Accuracies below this are highlighted in the rendered summary.
LOW_ACCURACY: Final = 0.5
# Cells processed per block; bounds the temporaries to a few tens of MB.
_BLOCK_CELLS = 1 << 22
# Above this many (LF, class) counters, polarities are found per column instead of counted.
_MAX_CLASS_COUNTERS = 1 << 24
_PERCENT_COLUMNS = ("coverage", "overlaps", "conflicts", "empirical_accuracy")
_MODEL_KEY_COLUMNS = ("lf", "j", "lf_name", "name")


class LFSummary(TableDisplay):
    """Per-LF statistics and totals of a vote matrix, as returned by :func:`lf_summary`.

    Attributes
    ----------
    table : polars.DataFrame
        One row per LF, in the column order of the vote matrix: ``lf`` (name), ``j`` (column
        index), ``polarity`` (sorted classes it voted), ``coverage``, ``overlaps``,
        ``conflicts`` (fractions of all assets); with gold ``correct``, ``incorrect``,
        ``empirical_accuracy``; with a model, the columns of ``model.lf_diagnostics``.
    totals : dict
        ``n_assets``, ``n_lfs``, ``coverage`` (assets with at least one vote), ``overlap``
        (at least two votes), ``conflict`` (two different classes), ``mean_lf_coverage``;
        with gold also ``n_gold`` (assets whose gold label is known).

    Renders as a table in terminals (``print``, rich) and notebooks, with percentages
    formatted and accuracies below :data:`LOW_ACCURACY` highlighted.
    """

    def __init__(self, table: pl.DataFrame, totals: Mapping[str, Any]) -> None:
        self.table = table
        self.totals = dict(totals)

    def to_pandas(self) -> pd.DataFrame:
        """The per-LF table as a pandas DataFrame (``polarity`` holds Python lists)."""
        frame = self.table.to_pandas()
        if "polarity" in frame.columns:
            frame["polarity"] = [list(v) for v in self.table["polarity"].to_list()]
        return frame

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LFSummary):
            return NotImplemented
        return self.totals == other.totals and self.table.equals(other.table)

    __hash__ = None  # type: ignore[assignment]  # mutable container, like a DataFrame

    # -- display hooks -------------------------------------------------------------------
    def _display_table(self) -> pl.DataFrame:
        return self.table

    def _display_title(self) -> str:
        t = self.totals
        gold = f", {t['n_gold']:,} with gold" if "n_gold" in t else ""
        return f"LF summary: {t['n_lfs']:,} LFs on {t['n_assets']:,} assets{gold}"

    def _display_totals(self) -> Mapping[str, str]:
        t = self.totals
        return {
            name: _percent(t[key])
            for name, key in (
                ("coverage", "coverage"),
                ("overlap", "overlap"),
                ("conflict", "conflict"),
                ("mean LF coverage", "mean_lf_coverage"),
            )
        }

    def _display_formats(self) -> Mapping[str, ColumnFormat]:
        formats: dict[str, ColumnFormat] = {c: "percent" for c in _PERCENT_COLUMNS}
        formats.update(correct="int", incorrect="int", estimated_accuracy="percent")
        return formats

    def _display_highlights(self) -> Sequence[Highlight]:
        low = f"accuracy below {LOW_ACCURACY:.0%}"
        return (
            Highlight("coverage", lambda v: v == 0, "never fires"),
            Highlight("empirical_accuracy", lambda v: v < LOW_ACCURACY, f"empirical {low}"),
            Highlight("estimated_accuracy", lambda v: v < LOW_ACCURACY, f"estimated {low}"),
            Highlight("worse_than_random", bool, "worse than random"),
            Highlight(
                "accuracy_mismatch",
                bool,
                "estimated accuracy outside the 95% interval of the gold-measured one",
            ),
            Highlight(
                "identifiable",
                lambda v: not v,
                "accuracy not identifiable (never agrees with another LF): the estimate is a guess",
            ),
            Highlight("never_fires", bool, "never fires"),
        )


def lf_summary(
    L: Any,
    gold: Any = None,
    *,
    lf_names: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    model: Any = None,
    sample_weight: Any = None,
) -> LFSummary:
    """Summarise a vote matrix: coverage, overlaps, conflicts and gold accuracy of each LF.

    Parameters
    ----------
    L
        Vote matrix, shape ``(n_assets, n_lfs)``, integer classes ``0..k-1`` with abstain
        ``-1``; anything ``numpy.asarray`` turns into that (the object ``enrich.apply``
        returns, a list of lists, a float array of whole numbers). Its ``lf_names`` and
        ``class_names`` attributes, if any, are the defaults of those arguments.
    gold
        Optional gold labels, shape ``(n_assets,)`` (or ``(n_assets, 1)``), ``-1`` where the
        label is unknown, so gold may cover only some rows. Class names are accepted too
        (with ``class_names``; ``None`` = unknown). Adds ``correct``, ``incorrect``
        and ``empirical_accuracy`` (= correct / (correct + incorrect), over the gold rows the
        LF voted on; null when it voted on none).
    lf_names
        One name per LF column; default ``L.lf_names`` if present, else ``lf_0, lf_1, ...``.
    class_names
        One name per class (``class_names[c]`` names class ``c``); default
        ``L.class_names`` if present. Polarities are then shown as names, and votes or gold
        outside ``0..len(class_names)-1`` are refused.
    model
        Optional fitted label model with ``lf_diagnostics(L) -> polars.DataFrame`` (one row
        per LF, in order); its columns (``estimated_accuracy``, ``identifiable``,
        ``worse_than_random``...) are appended to the table. With ``sample_weight`` it is
        called as ``lf_diagnostics(L, sample_weight=...)``. With gold too, the column
        ``accuracy_mismatch`` flags an LF whose estimated accuracy lies outside the 95%
        (Wilson) interval of its gold-measured accuracy; the rendered summary highlights it,
        and an LF whose accuracy is not identifiable.
    sample_weight
        Optional ``(n_rows,)`` whole numbers >= 0: how many assets each row of ``L`` (and
        ``gold``) stands for, e.g. the counts of the distinct rows of a large vote matrix
        (:func:`~enrich._internal.vote_arrays.compress_votes`). Every figure is then over
        the assets: the summary of the distinct rows with their counts is the summary of all
        the rows.

    Returns
    -------
    LFSummary
        ``.table`` (polars, one row per LF), ``.totals`` (dict), ``.to_pandas()``.

    Raises
    ------
    InputError
        If ``L`` is not 2-D, holds values that are not whole numbers or are below ``-1``
        (or not below ``len(class_names)``), or if ``gold`` / ``lf_names`` / the model's
        diagnostics do not have one entry per asset / LF.

    Notes
    -----
    ``coverage``, ``overlaps`` and ``conflicts`` are fractions of *all* assets: the assets
    the LF voted on; those where it and at least one other LF voted; those where another LF
    voted a different class. They equal snorkel's ``LFAnalysis(L).lf_summary(Y)``, and so do
    ``correct`` / ``incorrect`` / accuracy when every gold label is known. Two deliberate
    differences: snorkel counts a vote on a row with unknown gold (``-1``) as wrong, and
    reports accuracy 0 for an LF that never voted; here such rows are left out and such an
    accuracy is null.

    Examples
    --------
    >>> import numpy as np
    >>> from enrich.analysis.summary import lf_summary
    >>> L = np.array([[0, 0, -1], [1, 0, -1], [-1, -1, -1], [1, -1, 1]])
    >>> s = lf_summary(L, np.array([0, 1, 1, -1]), lf_names=["a", "b", "c"])
    >>> s.table.select("lf", "coverage", "conflicts", "correct", "empirical_accuracy").rows()
    [('a', 0.75, 0.25, 2, 1.0), ('b', 0.5, 0.25, 1, 0.5), ('c', 0.25, 0.0, 0, None)]
    >>> s.totals["coverage"], s.totals["n_gold"]
    (0.75, 3)
    """
    votes = _vote_matrix(L)
    n, m = votes.shape
    names = _lf_names(lf_names if lf_names is not None else getattr(L, "lf_names", None), m)
    classes = _class_names(
        class_names if class_names is not None else getattr(L, "class_names", None)
    )
    vmin, vmax = (int(votes.min()), int(votes.max())) if votes.size else (ABSTAIN, ABSTAIN)
    if vmin < ABSTAIN:
        _refuse_value(votes, votes < ABSTAIN, names, "below -1 (abstain)")
    if classes is not None and vmax >= len(classes):
        _refuse_value(
            votes, votes >= len(classes), names, f"not a class of class_names {list(classes)}"
        )
    labels = None if gold is None else _gold(gold, n, classes)
    weight = None if sample_weight is None else _counts(sample_weight, n)

    stats = _count(votes, labels, n_classes=vmax + 1, weight=weight)
    if weight is not None:
        n = int(weight.sum())
    table = _table(stats, names, classes, n)
    if model is not None:
        table = _join_model(table, model, votes, weight)
        if labels is not None and "estimated_accuracy" in table.columns:
            table = table.with_columns(accuracy_mismatch=_mismatch(table))
    totals: dict[str, Any] = {
        "n_assets": n,
        "n_lfs": m,
        "coverage": _fraction(stats["covered_rows"], n),
        "overlap": _fraction(stats["overlap_rows"], n),
        "conflict": _fraction(stats["conflict_rows"], n),
        "mean_lf_coverage": float(stats["lf_votes"].mean() / n) if n and m else 0.0,
    }
    if labels is not None:
        totals["n_gold"] = stats["gold_rows"]
    logger.debug("lf_summary over %d assets x %d LFs", n, m)
    return LFSummary(table, totals)


# -- validation --------------------------------------------------------------------------
def _vote_matrix(L: Any) -> np.ndarray:
    try:
        votes = np.asarray(L)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"cannot read the vote matrix as an array ({exc}); pass an int array of shape "
            "(n_assets, n_lfs) with -1 for abstain"
        ) from exc
    if votes.ndim != 2:
        raise InputError(
            f"the vote matrix must be 2-D (n_assets, n_lfs); got {votes.ndim}-D with shape "
            f"{votes.shape}; reshape it, e.g. L.reshape(-1, 1) for a single LF"
        )
    return _whole_numbers(votes, "the vote matrix")


def _whole_numbers(values: np.ndarray, what: str) -> np.ndarray:
    """Return ``values`` as an integer array, refusing anything that is not a whole number."""
    kind = values.dtype.kind
    if kind in "iu":
        return values
    if kind == "f":
        bad = ~np.isfinite(values)
        bad |= np.where(bad, False, values != np.round(values))
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise InputError(
                f"{what} must hold whole numbers (classes 0..k-1, -1 = abstain); found "
                f"{values[where]!r} at index {where}"
            )
        return values.astype(np.int64)
    example = values.flat[0] if values.size else None
    raise InputError(
        f"{what} must hold integers (classes 0..k-1, -1 = abstain); got dtype "
        f"{values.dtype} (first value {example!r}); convert it, e.g. with .astype(int)"
    )


def _refuse_value(votes: np.ndarray, bad: np.ndarray, names: list[str], why: str) -> None:
    row, col = (int(i) for i in np.argwhere(bad)[0])
    raise InputError(
        f"the vote matrix holds {int(votes[row, col])} at row {row}, column {col} "
        f"(LF {names[col]!r}), {why}; votes must be classes 0..k-1 or -1 for abstain "
        f"({int(bad.sum())} such value(s) in all)"
    )


def _lf_names(names: Any, m: int) -> list[str]:
    if names is None:
        return [f"lf_{j}" for j in range(m)]
    if isinstance(names, str):
        raise InputError(f"lf_names must be a sequence of names, not the string {names!r}")
    names = [str(name) for name in names]
    if len(names) != m:
        raise InputError(
            f"lf_names has {len(names)} names but the vote matrix has {m} LF columns; "
            "pass one name per column"
        )
    seen: set[str] = set()
    repeated = sorted({name for name in names if name in seen or seen.add(name)})
    if repeated:
        raise InputError(f"lf_names repeats {repeated}; give every LF a distinct name")
    return names


def _class_names(class_names: Any) -> list[str] | None:
    if class_names is None:
        return None
    if isinstance(class_names, str):
        raise InputError(f"class_names must be a sequence of names, not the string {class_names!r}")
    classes = [str(name) for name in class_names]
    if not classes:
        raise InputError("class_names is empty; pass one name per class, e.g. ('HAM', 'SPAM')")
    return classes


def _gold(gold: Any, n: int, classes: list[str] | None) -> np.ndarray:
    labels = np.asarray(gold)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise InputError(f"gold must be 1-D with one label per asset; got shape {labels.shape}")
    if labels.shape[0] != n:
        raise InputError(
            f"gold has {labels.shape[0]} labels but the vote matrix has {n} rows; pass one "
            "label per asset, with -1 where the label is unknown"
        )
    if labels.dtype.kind in "USO":
        labels = _gold_names(labels, classes)
    labels = _whole_numbers(labels, "gold")
    bad = labels < ABSTAIN
    if classes is not None:
        bad |= labels >= len(classes)
    if bad.any():
        i = int(np.argmax(bad))
        allowed = f"0..{len(classes) - 1}" if classes is not None else "0..k-1"
        raise InputError(
            f"gold holds {int(labels[i])} at index {i}; gold labels must be classes "
            f"{allowed} or -1 for unknown"
        )
    return labels


def _gold_names(labels: np.ndarray, classes: list[str] | None) -> np.ndarray:
    """Class ids for gold given as class names; ``None`` is an unknown label (``-1``)."""
    values = labels.tolist()

    def is_id(value: Any) -> bool:
        return isinstance(value, int | np.integer) and not isinstance(value, bool)

    if all(v is None or is_id(v) for v in values):
        return np.array([-1 if v is None else int(v) for v in values], dtype=np.int64)
    if classes is None:
        example = next(v for v in values if v is not None)
        raise InputError(
            f"gold holds class names (e.g. {example!r}) but the summary has no class names; "
            "pass class_names=[...] in class-id order (or a VoteMatrix that has them), or give "
            "gold as class ids 0..k-1 with -1 for unknown"
        )
    lookup = {name: i for i, name in enumerate(classes)}
    out = np.empty(len(values), dtype=np.int64)
    for i, value in enumerate(values):
        if value is None or (isinstance(value, float) and value != value):
            out[i] = ABSTAIN
        elif is_id(value):
            out[i] = int(value)
        elif str(value) in lookup:
            out[i] = lookup[str(value)]
        else:
            raise InputError(
                f"gold holds {value!r} at index {i}, which is not a class of {classes}; use "
                "those names (None for an unknown label)"
            )
    return out


def _counts(sample_weight: Any, n: int) -> np.ndarray:
    weight = np.asarray(sample_weight)
    if weight.shape != (n,):
        raise InputError(
            f"sample_weight has shape {weight.shape} but the vote matrix has {n} rows; give "
            "one count per row"
        )
    if weight.dtype.kind not in "iuf":
        raise InputError(f"sample_weight must hold counts; got dtype {weight.dtype}")
    bad = ~np.isfinite(weight) | (weight < 0) | (weight != np.round(weight))
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(
            f"sample_weight holds {weight[i].item()!r} at row {i}; counts must be whole "
            "numbers >= 0"
        )
    return weight.astype(np.int64)


# -- counting ----------------------------------------------------------------------------
def _count(
    votes: np.ndarray,
    gold: np.ndarray | None,
    *,
    n_classes: int,
    weight: np.ndarray | None = None,
) -> dict[str, Any]:
    """Count everything the summary needs in one pass over row blocks of ``votes``.

    a row of ``weight`` w counts w times.
    """
    n, m = votes.shape
    n_classes = max(n_classes, 0)
    count_classes = m * (n_classes + 1) <= _MAX_CLASS_COUNTERS
    offsets = np.arange(m, dtype=np.int64) * (n_classes + 1) + 1  # +1 maps abstain to 0
    class_counts = np.zeros(m * (n_classes + 1), dtype=np.int64)
    lf_votes = np.zeros(m, dtype=np.int64)
    lf_overlaps = np.zeros(m, dtype=np.int64)
    lf_conflicts = np.zeros(m, dtype=np.int64)
    lf_correct = np.zeros(m, dtype=np.int64)
    lf_gold_votes = np.zeros(m, dtype=np.int64)
    covered = overlapped = conflicted = gold_rows = 0
    step = max(1, _BLOCK_CELLS // max(m, 1))
    for start in range(0, n, step):
        block = np.ascontiguousarray(votes[start : start + step])
        w = None if weight is None else weight[start : start + step]
        voted = block != ABSTAIN
        n_votes = np.count_nonzero(voted, axis=1)
        lf_votes += _per_column(voted, w)
        covered += _rows(n_votes > 0, w)
        if count_classes:
            codes = block.astype(np.int64) + offsets
            cells = None if w is None else np.repeat(w, m)
            counts = np.bincount(codes.ravel(), weights=cells, minlength=class_counts.size)
            class_counts += counts.astype(np.int64)
        multi = n_votes >= 2
        if multi.any():
            shared = voted[multi]
            rows = block[multi]
            w_multi = None if w is None else w[multi]
            # A row conflicts when some voter differs from the row's highest vote.
            top = rows.max(axis=1, keepdims=True)
            clash = ((rows != top) & shared).any(axis=1)
            overlapped += _total(shared.shape[0], w_multi)
            conflicted += _rows(clash, w_multi)
            lf_overlaps += _per_column(shared, w_multi)
            lf_conflicts += _per_column(shared[clash], None if w is None else w_multi[clash])
        if gold is not None:
            g = gold[start : start + step]
            known = g != ABSTAIN
            if known.any():
                rows = block[known]
                w_known = None if w is None else w[known]
                gold_rows += _total(rows.shape[0], w_known)
                lf_correct += _per_column(rows == g[known][:, None], w_known)
                lf_gold_votes += _per_column(rows != ABSTAIN, w_known)
    if count_classes:
        present = class_counts.reshape(m, n_classes + 1)[:, 1:] > 0
        polarity = [np.flatnonzero(row).tolist() for row in present]
    else:  # very many classes: look at each column's distinct votes instead
        fired = votes if weight is None else votes[weight > 0]
        polarity = [[int(c) for c in np.unique(fired[:, j]) if c != ABSTAIN] for j in range(m)]
    return {
        "polarity": polarity,
        "lf_votes": lf_votes,
        "lf_overlaps": lf_overlaps,
        "lf_conflicts": lf_conflicts,
        "lf_correct": lf_correct,
        "lf_gold_votes": lf_gold_votes,
        "covered_rows": covered,
        "overlap_rows": overlapped,
        "conflict_rows": conflicted,
        "gold_rows": gold_rows,
        "has_gold": gold is not None,
    }


def _per_column(mask: np.ndarray, weight: np.ndarray | None) -> np.ndarray:
    """Rows (or their total weight) where each column of ``mask`` is true."""
    if weight is None:
        return np.count_nonzero(mask, axis=0)
    return weight @ mask.astype(np.int64)


def _rows(mask: np.ndarray, weight: np.ndarray | None) -> int:
    """Rows (or their total weight) where ``mask`` is true."""
    return int(np.count_nonzero(mask)) if weight is None else int(weight[mask].sum())


def _total(n_rows: int, weight: np.ndarray | None) -> int:
    """``n_rows`` rows, or their total weight."""
    return n_rows if weight is None else int(weight.sum())


def _fraction(count: int, n: int) -> float:
    return count / n if n else 0.0


def _percent(value: float) -> str:
    return f"{value:.1%}"


def _table(
    stats: dict[str, Any], names: list[str], classes: list[str] | None, n: int
) -> pl.DataFrame:
    m = len(names)
    denominator = max(n, 1)
    polarity: list[list[Any]] = stats["polarity"]
    if classes is not None:
        polarity = [[classes[c] for c in row] for row in polarity]
    columns: dict[str, pl.Series] = {
        "lf": pl.Series("lf", names, dtype=pl.String),
        "j": pl.Series("j", range(m), dtype=pl.Int64),
        "polarity": pl.Series(
            "polarity", polarity, dtype=pl.List(pl.String if classes else pl.Int64)
        ),
        "coverage": pl.Series("coverage", stats["lf_votes"] / denominator, dtype=pl.Float64),
        "overlaps": pl.Series("overlaps", stats["lf_overlaps"] / denominator, dtype=pl.Float64),
        "conflicts": pl.Series("conflicts", stats["lf_conflicts"] / denominator, dtype=pl.Float64),
    }
    if stats["has_gold"]:
        correct = stats["lf_correct"]
        judged = stats["lf_gold_votes"]
        accuracy = [int(c) / int(v) if v else None for c, v in zip(correct, judged, strict=True)]
        columns["correct"] = pl.Series("correct", correct, dtype=pl.Int64)
        columns["incorrect"] = pl.Series("incorrect", judged - correct, dtype=pl.Int64)
        columns["empirical_accuracy"] = pl.Series("empirical_accuracy", accuracy, dtype=pl.Float64)
    return pl.DataFrame(list(columns.values()))


def _mismatch(table: pl.DataFrame) -> pl.Series:
    """Return whether each LF's estimate lies outside the interval of its measured accuracy.

    The interval is the 95% Wilson interval of its gold-measured accuracy; null without gold
    votes or an estimate.
    """
    correct = table["correct"].to_numpy().astype(np.float64)
    n = correct + table["incorrect"].to_numpy().astype(np.float64)
    estimate = table["estimated_accuracy"].to_numpy(allow_copy=True).astype(np.float64)
    z = 1.959963984540054
    with np.errstate(invalid="ignore", divide="ignore"):
        p = correct / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        outside = (estimate < centre - half) | (estimate > centre + half)
    known = (n > 0) & np.isfinite(estimate)
    return pl.Series(
        "accuracy_mismatch",
        [bool(o) if ok else None for o, ok in zip(outside, known, strict=True)],
        dtype=pl.Boolean,
    )


def _join_model(
    table: pl.DataFrame, model: Any, votes: np.ndarray, weight: np.ndarray | None
) -> pl.DataFrame:
    diagnose = getattr(model, "lf_diagnostics", None)
    if not callable(diagnose):
        raise InputError(
            f"model {type(model).__name__} has no lf_diagnostics(L) method; pass a fitted "
            "enrich label model, or leave model=None"
        )
    diagnostics = diagnose(votes) if weight is None else diagnose(votes, sample_weight=weight)
    if not isinstance(diagnostics, pl.DataFrame):
        raise InputError(
            f"{type(model).__name__}.lf_diagnostics returned {type(diagnostics).__name__}; "
            "expected a polars DataFrame with one row per LF"
        )
    if diagnostics.height != table.height:
        raise InputError(
            f"{type(model).__name__}.lf_diagnostics returned {diagnostics.height} rows for "
            f"{table.height} LFs; was the model fitted on a vote matrix with other LFs?"
        )
    diagnostics = diagnostics.drop([c for c in _MODEL_KEY_COLUMNS if c in diagnostics.columns])
    clash = [c for c in diagnostics.columns if c in table.columns]
    if clash:
        raise InputError(
            f"{type(model).__name__}.lf_diagnostics returned columns {clash} that the summary "
            "already has; rename them in the model's diagnostics"
        )
    return pl.concat([table, diagnostics], how="horizontal")
