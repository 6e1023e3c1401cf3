"""Per-slice quality with confidence intervals, and the slices that under-perform.

A *slice* is a subset of assets: every value of a column (``"video"`` gives ``video=Psy``,
``video=KatyPerry``...), a named polars boolean expression, or a Python function of a row.
:func:`slice_report` measures a metric on each slice (accuracy of a correctness column, or
the mean of a numeric column), gives it a confidence interval, and ranks the slices that are
clearly worse than the whole data set, setting aside slices too small to judge.

Examples
--------
>>> import polars as pl
>>> from enrich.analysis.slices import slice_report
>>> frame = pl.DataFrame({"video": ["a"] * 40 + ["b"] * 40 + ["c"] * 5,
...                       "correct": [True] * 38 + [False] * 2 + [True] * 20 + [False] * 20
...                                  + [False] * 5})
>>> report = slice_report(frame, correct="correct", slices=["video"])
>>> for row in report.table.select("slice", "n", "metric", "status").rows():
...     print(row)
('video=b', 40, 0.5, 'under-performing')
('video=a', 40, 0.95, 'ok')
('video=c', 5, 0.0, 'too small to judge')
>>> report.underperforming["slice"].to_list(), report.too_small["slice"].to_list()
(['video=b'], ['video=c'])
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from statistics import NormalDist
from typing import Any, Final, Literal

import numpy as np
import polars as pl

from enrich._internal.display import ColumnFormat, Highlight, TableDisplay
from enrich._internal.frames import as_polars, require_columns
from enrich.errors import InputError

__all__ = ["SliceReport", "slice_report", "wilson_interval"]

logger = logging.getLogger(__name__)

SliceStatus = Literal["under-performing", "ok", "too small to judge"]
UNDERPERFORMING: Final = "under-performing"
OK: Final = "ok"
TOO_SMALL: Final = "too small to judge"

#: A slice: a column name (one slice per value), ``(name, polars boolean expression)``,
#: ``(name, function of a row)``, or a function of a row (named after the function).
SliceSpec = str | tuple[str, "pl.Expr | Callable[[dict[str, Any]], bool]"] | Callable[..., Any]


class SliceReport(TableDisplay):
    """Per-slice metric, confidence interval and verdict, as returned by :func:`slice_report`.

    Attributes
    ----------
    table : polars.DataFrame
        One row per slice: ``slice`` (e.g. ``"video=Psy"``), ``source`` (the column, the
        expression's or the function's name), ``n_assets`` (rows in the slice), ``n`` (rows
        with a metric value, the ones judged), ``metric``, ``ci_low``, ``ci_high``,
        ``delta`` (metric - overall), ``status`` (``"under-performing"``, ``"ok"`` or
        ``"too small to judge"``). Sorted: under-performing slices first in ranking order,
        then the others by metric (worst first), then too-small slices by name.
    underperforming : polars.DataFrame
        The under-performing rows of :attr:`table`, ranked, with ``rank`` (1 = worst).
    too_small : polars.DataFrame
        Slices with fewer than ``min_size`` judged rows: listed, never judged.
    overall : dict
        ``n``, ``metric``, ``ci_low``, ``ci_high`` over every row with a metric value.
    metric_name : str
        ``"accuracy"`` (with ``correct=``) or ``"mean <column>"`` (with ``value=``).
    """

    def __init__(
        self,
        table: pl.DataFrame,
        overall: Mapping[str, Any],
        *,
        metric_name: str,
        min_size: int,
        confidence: float,
        higher_is_better: bool,
    ) -> None:
        self.table = table
        self.overall = dict(overall)
        self.metric_name = metric_name
        self.min_size = min_size
        self.confidence = confidence
        self.higher_is_better = higher_is_better
        under = table.filter(pl.col("status") == UNDERPERFORMING)
        self.underperforming = under.with_row_index("rank", offset=1).with_columns(
            pl.col("rank").cast(pl.Int64)
        )
        self.too_small = table.filter(pl.col("status") == TOO_SMALL)

    def to_pandas(self) -> Any:
        """:attr:`table` as a pandas DataFrame."""
        return self.table.to_pandas()

    # -- display hooks -------------------------------------------------------------------
    def _display_table(self) -> pl.DataFrame:
        return self.table

    def _display_title(self) -> str:
        return (
            f"Slices: {self.metric_name} on {self.table.height:,} slices "
            f"({self.underperforming.height} under-performing, "
            f"{self.too_small.height} too small to judge)"
        )

    def _display_totals(self) -> Mapping[str, str]:
        o = self.overall
        metric = "-" if o["metric"] is None else f"{o['metric']:.3f}"
        return {
            f"overall {self.metric_name}": metric,
            "judged rows": f"{o['n']:,}",
            "min_size": f"{self.min_size:,}",
        }

    def _display_caption(self) -> str:
        side = "upper" if self.higher_is_better else "lower"
        where = "below" if self.higher_is_better else "above"
        return (
            f"under-performing: the {side} bound of the {self.confidence:.0%} interval is "
            f"{where} the overall {self.metric_name}"
        )

    def _display_formats(self) -> Mapping[str, ColumnFormat]:
        return {"n_assets": "int", "n": "int"}

    def _display_highlights(self) -> Sequence[Highlight]:
        return (Highlight("status", lambda v: v == UNDERPERFORMING, "under-performing slice"),)


def wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``successes / n``.

    Better behaved than the normal approximation for small ``n`` and proportions near 0
    or 1 (it never leaves ``[0, 1]``). Returns ``(nan, nan)`` when ``n == 0``.

    >>> [round(x, 4) for x in wilson_interval(8, 10)]
    [0.4902, 0.9433]
    """
    low, high = _wilson(np.array([successes], dtype=np.float64), np.array([n]), _z(confidence))
    return (float(low[0]), float(high[0]))


def _wilson(successes: np.ndarray, n: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised Wilson score bounds; NaN where ``n == 0``."""
    n = n.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = successes / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z / denom * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = np.where(successes <= 0, 0.0, np.maximum(0.0, centre - half))
    high = np.where(successes >= n, 1.0, np.minimum(1.0, centre + half))
    empty = n <= 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def slice_report(
    frame: Any,
    *,
    correct: str | pl.Expr | None = None,
    value: str | pl.Expr | None = None,
    slices: Sequence[SliceSpec],
    min_size: int = 30,
    confidence: float = 0.95,
    higher_is_better: bool = True,
) -> SliceReport:
    """Measure a metric on each slice of ``frame`` and rank the slices that under-perform.

    Parameters
    ----------
    frame
        polars/pandas/Arrow table, one row per asset.
    correct
        Boolean column name or expression: is the asset's label right? The slice metric is
        then accuracy, with a Wilson score interval. Null = unknown (e.g. no gold): the row
        counts in ``n_assets`` but not in ``n``.
    value
        Numeric column name or expression instead of ``correct``: the slice metric is its
        mean (e.g. ``"confidence"``), with a Student-t interval. Nulls are left out.
        Pass exactly one of ``correct`` and ``value``.
    slices
        What to slice by, each one of: a column name (one slice per distinct value, nulls
        included as ``col=null``); ``(name, expr)`` with a polars boolean expression;
        ``(name, func)`` or a bare ``func`` taking a row as a ``dict`` and returning a bool
        (named by ``func.__name__``). Slices may overlap.
    min_size
        Slices with fewer than this many judged rows (``n``) are reported as
        ``"too small to judge"`` and never ranked (>= 1).
    confidence
        Confidence level of the intervals, in (0, 1).
    higher_is_better
        Whether a larger metric is better (accuracy, confidence). With ``False`` (e.g. a
        review-rate column), under-performing means the lower bound is above the overall.

    Returns
    -------
    SliceReport

    Notes
    -----
    Rule: a slice with ``n >= min_size`` is *under-performing* when its whole confidence
    interval lies on the bad side of the overall metric (``ci_high < overall`` when higher
    is better). Under-performing slices are ranked by that margin (``overall - ci_high``),
    largest first, so a slice ranks high when it is both clearly and substantially worse;
    ties go to the smaller metric, then the name. The overall metric is computed once on
    all rows, not averaged over slices. With many slices some are flagged by chance (about
    ``(1 - confidence) / 2`` of slices that are really average); to control that, raise
    ``confidence``, e.g. to ``1 - 0.05 / n_slices`` (Bonferroni).

    Raises
    ------
    InputError
        On a missing column, a non-boolean ``correct``, a non-numeric ``value``, a slice
        expression that is not boolean, a function that fails or does not return a bool,
        repeated slice names, or bad ``min_size`` / ``confidence``.
    """
    data = as_polars(frame)
    if (correct is None) == (value is None):
        raise InputError(
            "pass exactly one of correct= (boolean column: is the label right?) and value= "
            "(numeric column to average); got " + ("both" if correct is not None else "neither")
        )
    if isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 1:
        raise InputError(f"min_size must be a whole number >= 1, got {min_size!r}")
    if not (isinstance(confidence, float | int) and 0 < confidence < 1):
        raise InputError(f"confidence must be in (0, 1), e.g. 0.95; got {confidence!r}")
    if isinstance(slices, str | tuple) or not isinstance(slices, Sequence) or not slices:
        raise InputError(
            "slices must be a non-empty list of column names, (name, expression) pairs or "
            f"functions of a row; got {slices!r}"
        )

    is_rate = correct is not None
    metric_name, metric = _metric(data, correct if is_rate else value, is_rate)
    stats = _slice_stats(data, metric, slices)
    overall_n, overall_mean, overall_std = _moments(metric)
    table = pl.DataFrame(
        {
            "slice": [name for name, *_ in stats] + ["(all)"],
            "source": [source for _, source, *_ in stats] + [""],
            "n_assets": [n_assets for _, _, n_assets, _ in stats] + [data.height],
        },
        schema={"slice": pl.String, "source": pl.String, "n_assets": pl.Int64},
    ).hstack(
        _intervals(
            np.array([m[0] for *_, m in stats] + [overall_n], dtype=np.int64),
            np.array([m[1] for *_, m in stats] + [overall_mean], dtype=np.float64),
            np.array([m[2] for *_, m in stats] + [overall_std], dtype=np.float64),
            is_rate,
            confidence,
        )
    )
    overall = table.tail(1).select("n", "metric", "ci_low", "ci_high").row(0, named=True)
    table = table.head(len(stats))
    table = _judge(table, overall["metric"], min_size, higher_is_better)
    logger.debug("slice_report over %d rows, %d slices", data.height, table.height)
    return SliceReport(
        table,
        overall,
        metric_name=metric_name,
        min_size=min_size,
        confidence=float(confidence),
        higher_is_better=higher_is_better,
    )


# -- helpers -----------------------------------------------------------------------------
def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(1 - (1 - confidence) / 2)


def _expr_or_column(data: pl.DataFrame, spec: str | pl.Expr, what: str) -> pl.Series:
    if isinstance(spec, str):
        require_columns(data, [(spec, what)], what="argument")
        return data.get_column(spec)
    if isinstance(spec, pl.Expr):
        try:
            return data.select(spec.alias("_x")).to_series()
        except pl.exceptions.PolarsError as exc:
            raise InputError(f"cannot evaluate {what} expression {spec}: {exc}") from exc
    raise InputError(f"{what} must be a column name or a polars expression, got {spec!r}")


def _metric(
    data: pl.DataFrame, spec: str | pl.Expr | None, is_rate: bool
) -> tuple[str, np.ndarray]:
    """Return the metric's display name and a float array with NaN where unknown."""
    if spec is None:  # the caller checked one of correct/value is given
        raise InputError("pass correct= or value=")
    what = "correct" if is_rate else "value"
    series = _expr_or_column(data, spec, what)
    label = spec if isinstance(spec, str) else series.name
    if is_rate:
        if series.dtype != pl.Boolean:
            raise InputError(
                f"correct= must be a boolean column or expression (True = label right); "
                f"{label!r} has dtype {series.dtype}; compare it, e.g. "
                "pl.col('label') == pl.col('gold')"
            )
        return "accuracy", series.cast(pl.Float64).fill_null(np.nan).to_numpy()
    if not series.dtype.is_numeric() and series.dtype != pl.Boolean:
        raise InputError(f"value= must be numeric; {label!r} has dtype {series.dtype}")
    values = series.cast(pl.Float64).fill_null(np.nan).to_numpy()
    if np.isinf(values).any():
        raise InputError(f"value= column {label!r} holds infinite values; drop or clip them")
    return f"mean {label}", values


_Moments = tuple[int, float, float]  # judged rows, mean, sample standard deviation


def _slice_stats(
    data: pl.DataFrame, metric: np.ndarray, slices: Sequence[Any]
) -> list[tuple[str, str, int, _Moments]]:
    """(name, source, n_assets, moments of the metric) for every slice, in spec order."""
    out: list[tuple[str, str, int, _Moments]] = []
    for spec in slices:
        if isinstance(spec, str):
            out.extend(_column_stats(data, metric, spec))
        elif isinstance(spec, tuple):
            if len(spec) != 2 or not isinstance(spec[0], str):
                raise InputError(
                    f"a slice tuple must be (name, expression or function); got {spec!r}"
                )
            name, rule = spec
            mask = _rule_mask(data, name, rule)
            out.append((name, name, int(mask.sum()), _moments(metric[mask])))
        elif callable(spec):
            name = getattr(spec, "__name__", None) or repr(spec)
            mask = _rule_mask(data, name, spec)
            out.append((name, name, int(mask.sum()), _moments(metric[mask])))
        else:
            raise InputError(
                f"cannot use {spec!r} as a slice; pass a column name, (name, polars "
                "expression), (name, function) or a function of a row"
            )
    counts = Counter(name for name, *_ in out)
    repeated = sorted(name for name, count in counts.items() if count > 1)
    if repeated:
        raise InputError(f"slice names repeat: {repeated}; give each slice a distinct name")
    return out


def _column_stats(
    data: pl.DataFrame, metric: np.ndarray, column: str
) -> list[tuple[str, str, int, _Moments]]:
    """One slice per distinct value of ``column`` (nulls too), from a single group-by."""
    require_columns(data, [(column, "slices")], what="argument")
    m = pl.col("_m")
    grouped = (
        pl.DataFrame({"_key": data.get_column(column), "_m": metric})
        .with_columns(m.fill_nan(None))
        .group_by("_key", maintain_order=True)
        .agg(
            pl.len().alias("n_assets"),
            m.count().alias("n"),
            m.mean().alias("mean"),
            m.std(ddof=1).alias("std"),
        )
    )
    with contextlib.suppress(pl.exceptions.PolarsError):  # unorderable keys: first seen first
        grouped = grouped.sort("_key", nulls_last=True)
    return [
        (
            f"{column}={'null' if key is None else key}",
            column,
            int(n_assets),
            (int(n), math.nan if mean is None else mean, math.nan if std is None else std),
        )
        for key, n_assets, n, mean, std in grouped.iter_rows()
    ]


def _rule_mask(data: pl.DataFrame, name: str, rule: Any) -> np.ndarray:
    if isinstance(rule, pl.Expr):
        series = _expr_or_column(data, rule, f"slice {name!r}")
        if series.dtype != pl.Boolean:
            raise InputError(
                f"slice {name!r}: the expression must be boolean, got dtype {series.dtype}"
            )
        if series.len() != data.height:
            raise InputError(
                f"slice {name!r}: the expression gave {series.len()} values for "
                f"{data.height} rows; use a row-wise boolean expression"
            )
        return series.fill_null(False).to_numpy()
    if not callable(rule):
        raise InputError(
            f"slice {name!r}: expected a polars expression or a function of a row, got {rule!r}"
        )
    out = np.zeros(data.height, dtype=bool)
    for i, row in enumerate(data.iter_rows(named=True)):
        try:
            hit = rule(row)
        except Exception as exc:
            raise InputError(
                f"slice function {name!r} raised {type(exc).__name__}: {exc} on row {i} "
                f"({_short(row)}); make it handle that row"
            ) from exc
        if not isinstance(hit, bool | np.bool_):
            raise InputError(
                f"slice function {name!r} returned {hit!r} on row {i}; it must return True or False"
            )
        out[i] = bool(hit)
    return out


def _short(row: Mapping[str, Any]) -> str:
    text = repr(dict(row))
    return text if len(text) <= 120 else text[:119] + "…"


def _moments(values: np.ndarray) -> _Moments:
    values = values[~np.isnan(values)]
    n = int(values.size)
    mean = float(values.mean()) if n else math.nan
    std = float(values.std(ddof=1)) if n > 1 else math.nan
    return n, mean, std


def _intervals(
    n: np.ndarray, mean: np.ndarray, std: np.ndarray, is_rate: bool, confidence: float
) -> pl.DataFrame:
    """Return ``n``, ``metric``, ``ci_low``, ``ci_high`` per slice.

    Wilson for a rate, Student t for a mean; null where a slice has no judged rows (or one
    row, for a mean).
    """
    if is_rate:
        low, high = _wilson(np.round(mean * n), n, _z(confidence))
    else:
        from scipy.special import stdtrit  # Student t quantiles, without scipy.stats' import

        with np.errstate(invalid="ignore", divide="ignore"):
            quantile = stdtrit(np.maximum(n - 1, 1), 1 - (1 - confidence) / 2)
            half = np.where(n > 1, quantile * std / np.sqrt(np.maximum(n, 1)), np.nan)
        low, high = mean - half, mean + half
    return pl.DataFrame(
        {"n": n, "metric": mean, "ci_low": low, "ci_high": high},
        schema={"n": pl.Int64, "metric": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64},
    ).with_columns(pl.col("metric", "ci_low", "ci_high").fill_nan(None))


def _judge(
    table: pl.DataFrame, overall: float | None, min_size: int, higher_is_better: bool
) -> pl.DataFrame:
    small = pl.col("n") < min_size
    if overall is None:
        margin = pl.lit(None, dtype=pl.Float64)
        delta = pl.lit(None, dtype=pl.Float64)
    elif higher_is_better:
        margin = pl.lit(overall) - pl.col("ci_high")
        delta = pl.col("metric") - overall
    else:
        margin = pl.col("ci_low") - pl.lit(overall)
        delta = pl.col("metric") - overall
    bad = (~small) & (margin > 0).fill_null(False)
    status = (
        pl.when(small)
        .then(pl.lit(TOO_SMALL))
        .when(bad)
        .then(pl.lit(UNDERPERFORMING))
        .otherwise(pl.lit(OK))
    )
    worst_first = pl.col("metric") if higher_is_better else -pl.col("metric")
    group = pl.when(pl.col("status") == UNDERPERFORMING).then(0)
    group = group.when(pl.col("status") == OK).then(1).otherwise(2)
    return (
        table.with_columns(delta.alias("delta"), status.alias("status"), margin.alias("_margin"))
        .with_columns(
            group.alias("_group"),
            pl.when(pl.col("status") == UNDERPERFORMING)
            .then(-pl.col("_margin"))
            .otherwise(None)
            .alias("_key"),
            pl.when(pl.col("status") == TOO_SMALL)
            .then(None)
            .otherwise(worst_first)
            .alias("_worst"),
        )
        .sort(["_group", "_key", "_worst", "slice"], nulls_last=True)
        .drop("_group", "_key", "_worst", "_margin")
    )
