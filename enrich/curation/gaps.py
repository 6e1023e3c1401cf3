"""Gaps in the labels: classes and slices with too few confident labels or low measured quality.

:func:`find_gaps` reads a labels table (for example the enriched table joined with the
data, so that slice columns such as ``video`` sit beside ``label`` and ``confidence``) and
returns the :class:`Gaps` worth filling: the classes and slices that hold too few confident
labels, and -- when gold labels or a model's predictions are given -- those whose measured
quality is low. :func:`enrich.curation.gap_filling.fill_gaps` then finds similar unlabeled assets
for each gap.

Examples
--------
>>> import polars as pl
>>> from enrich.curation.gaps import find_gaps
>>> labels = pl.DataFrame({
...     "asset_id": [f"a{i}" for i in range(12)],
...     "label_name": ["HAM"] * 9 + ["SPAM"] * 3,
...     "confidence": [0.95] * 9 + [0.9, 0.6, 0.5],
...     "video": ["Psy"] * 6 + ["Katy"] * 6})
>>> gaps = find_gaps(labels, slices=["video"], min_confident=5)
>>> gaps.table.select("gap", "kind", "value_measured", "target", "deficit").rows()
[('class=SPAM', 'class', 1.0, 5.0, 4), ('video=Katy', 'slice', 4.0, 5.0, 1)]
>>> print(gaps.table["reason"][0])
1 of 3 assets labeled SPAM have confidence >= 0.8; 5 wanted.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

import numpy as np
import polars as pl

from enrich._internal.classes import did_you_mean
from enrich._internal.display import ColumnFormat, TableDisplay
from enrich._internal.frames import as_polars, require_columns, require_unique_ids
from enrich.analysis.slices import wilson_interval
from enrich.errors import InputError, MissingColumnError

__all__ = ["Gaps", "find_gaps", "find_gaps_from_counts", "gap_examples"]

logger = logging.getLogger(__name__)

GapKind = Literal["class", "slice"]
GapStatus = Literal["gap", "ok", "too small to judge"]
GAP: Final = "gap"
OK: Final = "ok"
TOO_SMALL: Final = "too small to judge"
#: Metric name of the "too few confident labels" rule.
COVERAGE_METRIC: Final = "confident labels"
#: ``column`` of class rows; class gaps are named ``class=<name>``.
CLASS_COLUMN: Final = "class"
_INTERVAL_CONFIDENCE: Final = 0.95
_BOOTSTRAP_DRAWS: Final = 1000
_BOOTSTRAP_SEED: Final = 0

_SCHEMA: Final = {
    "gap": pl.String,
    "kind": pl.String,
    "column": pl.String,
    "value": pl.String,
    "size": pl.Int64,
    "metric": pl.String,
    "value_measured": pl.Float64,
    "target": pl.Float64,
    "deficit": pl.Int64,
    "n_judged": pl.Int64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "status": pl.String,
    "reason": pl.String,
}


class Gaps(TableDisplay):
    """The gaps :func:`find_gaps` found, with every group it measured.

    Attributes
    ----------
    table : polars.DataFrame
        One row per gap (a group falling short on one metric), largest ``deficit`` first:
        ``gap`` (id such as ``"class=SPAM"`` or ``"video=Psy"``; a group short on two
        metrics has two rows with the same id), ``kind`` (``"class"`` or ``"slice"``),
        ``column`` (``"class"`` for classes, else the slice column), ``value`` (class name
        or slice value as text, null for a null slice value), ``size`` (assets in the
        group), ``metric``, ``value_measured``, ``target``, ``deficit`` (how many more
        confident labels, or right labels, would close it), ``n_judged`` (assets the metric
        was measured on), ``ci_low`` / ``ci_high`` (95% Wilson interval of accuracies, null
        otherwise), ``reason`` (a sentence).
    measured : polars.DataFrame
        Every (group, metric) measured, same columns plus ``status``: ``"gap"``, ``"ok"``
        or ``"too small to judge"``.
    too_small : polars.DataFrame
        The groups with too few judged assets to measure their quality: listed, not judged.
    examples : polars.DataFrame
        ``gap``, ``asset_id`` (and ``index_id`` when the labels have one): the labeled
        assets of each gap, whose vectors :func:`~enrich.curation.gap_filling.fill_gaps` searches
        from.
    labeled_ids : polars.Series
        Assets that count as labeled (a label with confidence >= ``confident_above``, or a
        gold label); gap filling never proposes them.
    classes : tuple of str
        The classes judged.
    settings : dict
        The thresholds used.
    """

    def __init__(
        self,
        measured: pl.DataFrame,
        *,
        examples: pl.DataFrame,
        labeled_ids: pl.Series,
        classes: Sequence[str],
        settings: Mapping[str, Any],
    ) -> None:
        self.measured = measured
        self.table = (
            measured.filter(pl.col("status") == GAP)
            .drop("status")
            .sort(["deficit", "kind", "gap", "metric"], descending=[True, False, False, False])
        )
        self.too_small = measured.filter(pl.col("status") == TOO_SMALL).drop("status")
        self.examples = examples
        self.labeled_ids = labeled_ids
        self.classes = tuple(classes)
        self.settings = dict(settings)

    def __len__(self) -> int:
        return self.table.height

    @property
    def gap_ids(self) -> list[str]:
        """Distinct gap ids, largest deficit first."""
        return self.table["gap"].unique(maintain_order=True).to_list()

    def to_pandas(self) -> Any:
        """:attr:`table` as a pandas DataFrame."""
        return self.table.to_pandas()

    # -- display hooks -------------------------------------------------------------------
    def _display_table(self) -> pl.DataFrame:
        return self.table.select(
            "gap", "size", "metric", "value_measured", "target", "deficit", "reason"
        )

    def _display_title(self) -> str:
        groups = self.measured.select("gap").n_unique() if self.measured.height else 0
        return f"Gaps: {len(self.gap_ids)} of {groups} classes and slices fall short"

    def _display_totals(self) -> Mapping[str, str]:
        return {
            "total deficit": f"{int(self.table['deficit'].sum()):,}",
            "too small to judge": f"{self.too_small.height:,}",
        }

    def _display_caption(self) -> str | None:
        if not self.too_small.height:
            return None
        shown = ", ".join(self.too_small["gap"].unique(maintain_order=True).head(5).to_list())
        more = " ..." if self.too_small["gap"].n_unique() > 5 else ""
        return f"too small to judge (see .too_small): {shown}{more}"

    def _display_formats(self) -> Mapping[str, ColumnFormat]:
        return {"size": "int", "deficit": "int", "value_measured": _number, "target": _number}


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:.3f}"


def find_gaps(
    labels: Any,
    *,
    slices: Sequence[str] = (),
    classes: Sequence[str] | None = None,
    gold: Any = None,
    predictions: Any = None,
    confident_above: float = 0.8,
    min_confident: int | None = None,
    min_confident_share: float = 0.0,
    min_quality: float = 0.8,
    min_size: int = 20,
    min_model_quality: float | None = None,
) -> Gaps:
    """Find the classes and slices with too few confident labels or low measured quality.

    Parameters
    ----------
    labels
        polars/pandas/Arrow table, one row per asset: ``asset_id`` (unique), the class as
        ``label_name`` (name) and/or ``label`` (name, or class id read through ``classes``;
        ``label_name`` wins when both are there), optionally ``confidence`` in [0, 1]
        (without it every label counts as confident: hand labels, gold), plus the slice
        columns. A null label or ``-1`` marks an unlabeled asset: it counts in its slice's
        ``size`` but never as a label, and its label is unknown, not wrong (quality is
        measured on labeled assets only). The unlabeled pool may sit in this table. An
        ``index_id`` column, when present, is carried into
        :attr:`Gaps.examples` for :func:`~enrich.curation.gap_filling.fill_gaps`.
    slices
        Columns of ``labels`` whose every value is a slice (e.g. ``["video"]``).
    classes
        Class names, ``classes[c]`` naming class id ``c``. Classes listed here but absent
        from the labels are judged too (a class with no label at all is the starkest gap).
        None: the names seen in ``labels``, ``gold`` and ``predictions``.
    gold
        Optional table of true labels: ``asset_id`` and ``label_name`` or ``label``. Rows
        for assets not in ``labels`` are ignored.
    predictions
        Optional predictions of a model trained on the labels: a table like ``gold``, or an
        array aligned with the rows of ``labels`` -- ``(n,)`` class ids (-1 = none) or
        ``(n, k)`` class probabilities (columns in ``classes`` order; the argmax is the
        prediction). The intended source is the end model's out-of-fold probabilities
        (``enrich.EndModel``), so that a model never grades the rows it was fitted on.
    confident_above
        A label is confident when its confidence is at least this, in (0, 1].
    min_confident
        Confident labels every class and slice should hold (>= 0; 0 turns the rule off).
        None (default): scaled to the data, half the median count of confident labels over
        the groups of the same kind (the classes; the values of one slice column), at least
        1 -- a group far below its peers is a gap, whatever the size of the data set.
    min_confident_share
        Share of a group's assets that should be confidently labeled, in [0, 1]; the target
        is the larger of ``min_confident`` and ``ceil(min_confident_share * size)``.
    min_quality
        F1 (classes) or accuracy (slices) below which a group is a quality gap, in (0, 1].
    min_size
        Judged assets (gold or predicted ones) a group needs before its quality is judged
        (>= 1); smaller groups are listed in :attr:`Gaps.too_small`, never judged.
    min_model_quality
        With ``gold`` and ``predictions``: the model's macro F1 (slices) or recall
        (classes) below which a group is a gap, in (0, 1]. None (default): scaled to the
        data -- a slice is a gap when the upper end of its 95% bootstrap interval lies
        below the median over the judged values of its slice column (a model's attainable
        level depends on the task: six question types are harder than spam), and classes
        are measured, not judged (see Notes).

    Returns
    -------
    Gaps

    Notes
    -----
    Rules, each applied to every class and to every value of every slice column:

    - *Too few confident labels* (metric ``"confident labels"``): a class's group is the
      assets labeled with it, a slice's group its assets. With ``c`` confident labels in
      the group and ``target = max(min_confident, ceil(min_confident_share * size))``, the
      group is a gap when ``c < target``; ``deficit = target - c``. Counts need no minimum
      size: a class with 2 labels is a gap, not too small. With ``min_confident=None``
      the target of each kind is ``max(1, ceil(median(c) / 2))`` over its groups.
    - *Low measured quality*: with ``gold``, the labels are scored against it (metrics
      ``"label F1 vs gold"`` per class, ``"label accuracy vs gold"`` per slice). With
      ``predictions`` and no gold, the labels are scored against the model (``"label F1
      vs model"``, ``"label accuracy vs model"``): a proxy that flags where the two
      disagree. Only assets with both a reference label and a label (or prediction) are
      judged: an unlabeled asset is unknown, not wrong, so a label's accuracy here is the
      accuracy of the labels that exist, as in :func:`enrich.analysis.slices.slice_metrics`.
      A class is judged when its reference support is at least ``min_size``, a slice when
      it has at least ``min_size`` judged assets. A judged group is a gap when its metric
      is below ``min_quality``; ``deficit = ceil((min_quality - metric) * max(size,
      n_judged))`` (at least 1): how many of the group's assets would have to turn right,
      at the measured rate, to reach the target -- a rough count used to share a labeling
      budget.
    - *The model, where it matters to its users*: with ``gold`` and ``predictions`` (the
      end model's out-of-fold ones), a slice is judged by the model's macro F1 over the
      classes its gold or predictions hold (``"model macro F1 vs gold"``): a slice where
      the model gets its common class right but confuses the others has a high accuracy
      and a low macro F1, and per-slice macro F1 is what an evaluation of the classifier
      by slice reports (worst-group performance: Sagawa et al., "Distributionally Robust
      Neural Networks", ICLR 2020; slices where a model under-performs: Chung et al.,
      "Slice Finder", ICDE 2019). The value carries a 95% percentile bootstrap interval
      (Efron & Tibshirani, "An Introduction to the Bootstrap", 1993) over the slice's
      judged assets, fixed seed. The threshold is ``min_model_quality``; by default the
      median over the values of the same slice column, and a slice is a gap only when its
      whole interval lies below it (a model's attainable level depends on the task, so a
      weak slice is one clearly behind its peers). ``deficit`` as above, with that
      threshold as the target. A class is measured by the model's recall (``"model recall
      vs gold"``, with the same interval; recall does not depend on how common the class
      is among the gold assets, which the labelers chose, while precision and F1 do) and
      judged only against an explicit ``min_model_quality``: by default a class the model
      confuses is left to the model's own uncertainty, which gap filling already follows
      (:func:`~enrich.curation.gap_filling.fill_gaps`), whereas a slice is invisible to
      the model and has to be named. Measured on ``benchmarks/gap_filling.py``, judging
      classes against their peers named hard classes (TREC's DESC and ENTY, digits' 1 and
      8) beside the starved one and cost up to 5.7 points of worst-class F1.

    Raises
    ------
    InputError
        A missing column, repeated asset ids, a confidence outside [0, 1], a label that is
        not one of ``classes``, or an option out of range.

    Examples
    --------
    >>> gold = pl.DataFrame({"asset_id": ["a", "b", "c", "d"],
    ...                      "label_name": ["HAM", "SPAM", "SPAM", "HAM"]})
    >>> labels = pl.DataFrame({"asset_id": ["a", "b", "c", "d"], "label": [0, 1, 0, 0],
    ...                        "confidence": [0.9, 0.9, 0.9, 0.9]})
    >>> gaps = find_gaps(labels, classes=["HAM", "SPAM"], gold=gold, min_confident=0,
    ...                  min_size=2)
    >>> gaps.table.select("gap", "metric", "value_measured", "deficit").rows()
    [('class=SPAM', 'label F1 vs gold', 0.6666666666666666, 1)]
    >>> gaps.measured.select("gap", "value_measured", "status").rows()
    [('class=HAM', 0.8, 'ok'), ('class=SPAM', 0.6666666666666666, 'gap')]

    The model judged per slice: hand labels (gold) and a model's out-of-fold predictions.
    In topic ``c`` the model calls all 40 assets HAM, 4 of which are SPAM: accuracy 0.9,
    macro F1 0.47, clearly below the other topics' 1.0.

    >>> hand = pl.DataFrame({"asset_id": list(range(120)),
    ...                      "label_name": (["HAM"] * 36 + ["SPAM"] * 4) * 3,
    ...                      "topic": ["a"] * 40 + ["b"] * 40 + ["c"] * 40})
    >>> predicted = [0] * 36 + [1] * 4 + [0] * 36 + [1] * 4 + [0] * 40
    >>> gaps = find_gaps(hand, slices=["topic"], classes=["HAM", "SPAM"], gold=hand,
    ...                  predictions=predicted, min_confident=0)
    >>> gaps.table.select("gap", "metric", pl.col("value_measured").round(3), "target",
    ...                   "deficit").rows()
    [('topic=c', 'model macro F1 vs gold', 0.474, 1.0, 22)]
    """
    _check_options(confident_above, min_confident, min_confident_share, min_quality, min_size)
    _check_model_quality(min_model_quality)
    data = as_polars(labels)
    require_columns(data, [("asset_id", "find_gaps")], what="function")
    if "label" not in data.columns and "label_name" not in data.columns:
        raise MissingColumnError(
            f"the labels table needs a 'label' or 'label_name' column; it has {data.columns}"
        )
    class_names = None if classes is None else _names(classes)
    slice_columns = _slice_columns(data, slices)
    require_unique_ids(data["asset_id"], "the labels table")

    label = _class_column(data, class_names, "labels")
    confidence = (
        _confidence(data) if "confidence" in data.columns else np.ones(data.height, np.float64)
    )
    is_labeled = label.is_not_null().to_numpy()
    confident = is_labeled & (np.nan_to_num(confidence, nan=-1.0) >= confident_above)
    gold_label = None if gold is None else _reference(gold, data, class_names, "gold")
    model_label = None if predictions is None else _predictions(predictions, data, class_names)
    if class_names is None:
        seen: set[str] = set()
        for series in (label, gold_label, model_label):
            if series is not None:
                seen.update(series.drop_nulls().unique().to_list())
        class_names = tuple(sorted(seen))

    label_codes = _codes(label, class_names)
    groups = _groups(data, label_codes, class_names, slice_columns)
    settings = _settings(
        confident_above,
        min_confident,
        min_confident_share,
        min_quality,
        min_size,
        min_model_quality,
    )
    measured = _measure(
        groups, label, confident, gold_label, model_label, class_names, settings, weight=None
    )
    has_gold = gold_label.is_not_null().to_numpy() if gold_label is not None else None
    labeled = confident if has_gold is None else confident | has_gold
    gap_ids = set(measured.filter(pl.col("status") == GAP)["gap"].to_list())
    gold_codes = None if gold_label is None else _codes(gold_label, class_names)
    examples = _examples(data, groups, gap_ids, label_codes, confident, gold_codes)
    logger.debug(
        "find_gaps: %d rows, %d groups, %d gap rows",
        data.height,
        len(groups),
        measured.filter(pl.col("status") == GAP).height,
    )
    return Gaps(
        measured,
        examples=examples,
        labeled_ids=data["asset_id"].filter(pl.Series(labeled)),
        classes=class_names,
        settings=settings,
    )


def find_gaps_from_counts(
    counts: Any,
    *,
    classes: Sequence[str],
    slices: Sequence[str] = (),
    confident_above: float = 0.8,
    min_confident: int | None = None,
    min_confident_share: float = 0.0,
    min_quality: float = 0.8,
    min_size: int = 20,
    min_model_quality: float | None = None,
) -> Gaps:
    """Find gaps from counts of assets: :func:`find_gaps` on a table that was grouped first.

    Each row of ``counts`` stands for ``count`` assets that share a label, a confidence,
    a gold label, a prediction and slice values. Every rule of :func:`find_gaps` is a
    function of the number of assets in each such combination, so the gaps found here are
    those :func:`find_gaps` finds on the assets themselves (same :attr:`Gaps.measured`
    and :attr:`Gaps.table`). Counts from several parts of the data (partitions read by
    different workers) can be concatenated and summed before the call. There are no asset
    ids here: :attr:`Gaps.examples` and :attr:`Gaps.labeled_ids` are empty, so the result
    cannot be passed to :func:`~enrich.curation.gap_filling.fill_gaps`.

    Parameters
    ----------
    counts
        polars/pandas/Arrow table: ``count`` (whole number >= 0: assets in the row), the
        class as ``label_name`` (name) and/or ``label`` (name or class id; -1 or null:
        unlabeled) as in :func:`find_gaps`, optionally ``confidence`` in [0, 1], ``gold``
        (the true class: name or class id, -1 or null unknown; the ``gold`` table of
        :func:`find_gaps` as a column) and ``prediction`` (a model's class, likewise; the
        ``predictions`` of :func:`find_gaps`), plus the slice columns. Rows need not be
        distinct: repeated combinations add up.
    classes
        Class names, ``classes[c]`` naming class id ``c``; every class is judged.
    slices, confident_above, min_confident, min_confident_share
        As in :func:`find_gaps`.
    min_quality, min_size, min_model_quality
        As in :func:`find_gaps` (the model is judged from the ``prediction`` column).

    Returns
    -------
    Gaps

    Raises
    ------
    InputError
        A missing column, a negative or fractional count, a confidence outside [0, 1], a
        label that is not one of ``classes``, or an option out of range.

    Examples
    --------
    >>> counts = pl.DataFrame({
    ...     "label_name": ["HAM", "SPAM", "SPAM", "SPAM"],
    ...     "confidence": [0.95, 0.9, 0.6, 0.5],
    ...     "video": ["Psy", "Katy", "Katy", "Katy"],
    ...     "count": [9, 1, 1, 1]})
    >>> gaps = find_gaps_from_counts(counts, classes=["HAM", "SPAM"], slices=["video"],
    ...                              min_confident=5)
    >>> gaps.table.select("gap", "value_measured", "target", "deficit").rows()
    [('class=SPAM', 1.0, 5.0, 4), ('video=Katy', 1.0, 5.0, 4)]
    """
    _check_options(confident_above, min_confident, min_confident_share, min_quality, min_size)
    _check_model_quality(min_model_quality)
    data = as_polars(counts)
    require_columns(data, [("count", "find_gaps_from_counts")], what="function")
    if "label" not in data.columns and "label_name" not in data.columns:
        raise MissingColumnError(
            f"the counts table needs a 'label' or 'label_name' column; it has {data.columns}"
        )
    class_names = _names(classes)
    slice_columns = _slice_columns(data, slices)
    weight_column = data["count"]
    if not (weight_column.dtype.is_integer() or weight_column.dtype == pl.Null):
        raise InputError(
            f"column 'count' must hold whole numbers of assets; got dtype {weight_column.dtype}"
        )
    weight = weight_column.cast(pl.Int64).fill_null(0).to_numpy().astype(np.int64)
    if weight.size and weight.min() < 0:
        raise InputError(
            f"column 'count' must be >= 0 (assets in each row); got {int(weight.min())}"
        )
    label = _class_column(data, class_names, "counts")
    confidence = (
        _confidence(data) if "confidence" in data.columns else np.ones(data.height, np.float64)
    )
    confident = label.is_not_null().to_numpy() & (
        np.nan_to_num(confidence, nan=-1.0) >= confident_above
    )
    gold_label = _count_column(data, "gold", class_names)
    model_label = _count_column(data, "prediction", class_names)
    kept = weight > 0  # a group of no asset is no group
    if not kept.all():
        keep = pl.Series(kept)
        data, label = data.filter(keep), label.filter(keep)
        gold_label = None if gold_label is None else gold_label.filter(keep)
        model_label = None if model_label is None else model_label.filter(keep)
        weight, confident = weight[kept], confident[kept]
    groups = _groups(data, _codes(label, class_names), class_names, slice_columns)
    settings = _settings(
        confident_above,
        min_confident,
        min_confident_share,
        min_quality,
        min_size,
        min_model_quality,
    )
    measured = _measure(
        groups, label, confident, gold_label, model_label, class_names, settings, weight=weight
    )
    ids = pl.Series("asset_id", [], dtype=pl.String)
    logger.debug("find_gaps_from_counts: %d rows, %d assets", data.height, int(weight.sum()))
    return Gaps(
        measured,
        examples=pl.DataFrame({"gap": pl.Series([], dtype=pl.String), "asset_id": ids}),
        labeled_ids=ids,
        classes=class_names,
        settings=settings,
    )


def _count_column(
    data: pl.DataFrame, column: str, class_names: tuple[str, ...]
) -> pl.Series | None:
    """The ``gold`` or ``prediction`` column of a counts table as class names (or None)."""
    if column not in data.columns:
        return None
    return _class_column(data.select(pl.col(column).alias("label")), class_names, column)


def _settings(
    confident_above: float,
    min_confident: int | None,
    min_confident_share: float,
    min_quality: float,
    min_size: int,
    min_model_quality: float | None = None,
) -> dict[str, Any]:
    return {
        "confident_above": float(confident_above),
        "min_confident": None if min_confident is None else int(min_confident),
        "min_confident_share": float(min_confident_share),
        "min_quality": float(min_quality),
        "min_size": int(min_size),
        "min_model_quality": None if min_model_quality is None else float(min_model_quality),
    }


def _measure(
    groups: Sequence[_Group],
    label: pl.Series,
    confident: np.ndarray,
    gold_label: pl.Series | None,
    model_label: pl.Series | None,
    class_names: Sequence[str],
    settings: Mapping[str, Any],
    *,
    weight: np.ndarray | None,
) -> pl.DataFrame:
    """Every (group, metric) row; ``weight`` counts the assets of each row (None: one)."""
    min_confident = settings["min_confident"]
    rows: list[dict[str, Any]] = []
    if min_confident is None or min_confident > 0 or settings["min_confident_share"] > 0:
        targets = _scaled_targets(groups, confident, min_confident, weight)
        rows.extend(
            _coverage_row(g, confident, settings, targets[g.column], weight) for g in groups
        )
    evaluations: list[tuple[str, pl.Series, pl.Series, str]] = []
    if gold_label is not None:
        evaluations.append(("label", label, gold_label, "gold"))
        if model_label is not None:
            evaluations.append(("model", model_label, gold_label, "gold"))
    elif model_label is not None:
        evaluations.append(("label", label, model_label, "model"))
    for who, predicted, reference, ref_name in evaluations:
        pred, ref = _codes(predicted, class_names), _codes(reference, class_names)
        if who == "model":
            rows.extend(_model_rows(groups, pred, ref, len(class_names), settings, weight))
            continue
        for g in groups:
            rows.append(_quality_row(g, who, pred, ref, ref_name, settings, weight))
    return pl.DataFrame(rows, schema=_SCHEMA, orient="row") if rows else _empty()


def _n(mask: np.ndarray, weight: np.ndarray | None) -> int:
    """Assets in ``mask``: its rows, or the sum of their weights."""
    return int(mask.sum()) if weight is None else int(weight[mask].sum())


# -- groups ------------------------------------------------------------------------------
class _Group:
    """One class or slice value: its id, where it came from and a row mask."""

    __slots__ = ("code", "column", "gap", "kind", "mask", "name", "value")

    def __init__(
        self,
        kind: GapKind,
        column: str,
        value: str | None,
        mask: np.ndarray,
        *,
        code: int = -1,
    ) -> None:
        self.kind = kind
        self.column = column
        self.value = value
        self.mask = mask
        self.code = code  # the class id for class groups
        self.name = "null" if value is None else value
        self.gap = f"{column}={self.name}"


def _groups(
    data: pl.DataFrame,
    label_codes: np.ndarray,
    class_names: Sequence[str],
    slice_columns: Sequence[str],
) -> list[_Group]:
    out = [
        _Group("class", CLASS_COLUMN, name, label_codes == i, code=i)
        for i, name in enumerate(class_names)
    ]
    for column in slice_columns:
        values = data[column]
        as_text = values.cast(pl.String) if values.dtype != pl.String else values
        # number the distinct values 1..m in sorted order; 0 marks null
        distinct = as_text.drop_nulls().unique().sort()
        number = pl.int_range(1, distinct.len() + 1, eager=True)
        codes = as_text.replace_strict(distinct, number, default=0, return_dtype=pl.Int64)
        codes = codes.to_numpy()
        keys = distinct.to_list()
        for i, key in enumerate(keys, start=1):
            out.append(_Group("slice", column, key, codes == i))
        if as_text.null_count():
            out.append(_Group("slice", column, None, codes == 0))
    return out


def _scaled_targets(
    groups: Sequence[_Group],
    confident: np.ndarray,
    min_confident: int | None,
    weight: np.ndarray | None = None,
) -> dict[str, int]:
    """The confident-label target of each kind of group (class, or one slice column)."""
    counts: dict[str, list[int]] = {}
    for g in groups:
        counts.setdefault(g.column, []).append(_n(confident & g.mask, weight))
    if min_confident is not None:
        return dict.fromkeys(counts, int(min_confident))
    return {c: max(1, math.ceil(float(np.median(n)) / 2)) for c, n in counts.items()}


def _coverage_row(
    g: _Group,
    confident: np.ndarray,
    s: Mapping[str, Any],
    min_confident: int,
    weight: np.ndarray | None = None,
) -> dict[str, Any]:
    size = _n(g.mask, weight)
    n_conf = _n(confident & g.mask, weight)
    target = max(min_confident, math.ceil(s["min_confident_share"] * size))
    deficit = max(0, target - n_conf)
    threshold = f"confidence >= {s['confident_above']:g}"
    if g.kind == "class":
        reason = f"{n_conf} of {size} assets labeled {g.name} have {threshold}; {target} wanted."
    else:
        reason = f"{n_conf} of {size} assets in {g.gap} have a label with {threshold}; "
        reason += f"{target} wanted."
    return _row(
        g,
        size=size,
        metric=COVERAGE_METRIC,
        measured=float(n_conf),
        target=float(target),
        deficit=deficit,
        n_judged=size,
        ci=(None, None),
        status=GAP if deficit > 0 else OK,
        reason=reason,
    )


def _quality_row(
    g: _Group,
    who: str,
    predicted: np.ndarray,
    reference: np.ndarray,
    ref_name: str,
    s: Mapping[str, Any],
    weight: np.ndarray | None = None,
) -> dict[str, Any]:
    judged = (reference >= 0) & (predicted >= 0)  # an unlabeled asset is unknown, not wrong
    size = _n(g.mask, weight)
    min_quality, min_size = s["min_quality"], s["min_size"]
    ci: tuple[float | None, float | None] = (None, None)
    if g.kind == "class":
        metric = f"{who} F1 vs {ref_name}"
        is_ref = judged & (reference == g.code)
        is_pred = judged & (predicted == g.code)
        n_judged = _n(is_ref, weight)
        tp = _n(is_ref & is_pred, weight)
        fp = _n(is_pred & ~is_ref, weight)
        fn = n_judged - tp
        value = 2 * tp / (2 * tp + fp + fn) if n_judged else math.nan
        where = f"{n_judged} {ref_name} assets of class {g.name}"
    else:
        metric = f"{who} accuracy vs {ref_name}"
        in_group = judged & g.mask
        n_judged = _n(in_group, weight)
        n_right = _n(in_group & (predicted == reference), weight)
        value = n_right / n_judged if n_judged else math.nan
        if n_judged:
            ci = wilson_interval(n_right, n_judged, confidence=_INTERVAL_CONFIDENCE)
        where = f"{n_judged} {ref_name}-labeled assets in {g.gap}"
    if n_judged < min_size:
        return _row(
            g,
            size=size,
            metric=metric,
            measured=None,
            target=float(min_quality),
            deficit=0,
            n_judged=n_judged,
            ci=(None, None),
            status=TOO_SMALL,
            reason=f"only {where}; {min_size} needed to judge {metric}.",
        )
    is_gap = value < min_quality
    deficit = max(1, math.ceil((min_quality - value) * max(size, n_judged) - 1e-9)) if is_gap else 0
    shown = f"{metric} is {value:.3f} on {where}"
    if ci[0] is not None:
        shown += f" (95% CI {ci[0]:.3f}-{ci[1]:.3f})"
    side = "below" if is_gap else "at or above"
    return _row(
        g,
        size=size,
        metric=metric,
        measured=float(value),
        target=float(min_quality),
        deficit=deficit,
        n_judged=n_judged,
        ci=ci,
        status=GAP if is_gap else OK,
        reason=f"{shown}, {side} {min_quality:g}.",
    )


def _model_rows(
    groups: Sequence[_Group],
    predicted: np.ndarray,
    reference: np.ndarray,
    k: int,
    s: Mapping[str, Any],
    weight: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """The model's quality per class (recall) and per slice (macro F1).

    A class's recall is measured on its gold assets, a slice's macro F1 on its judged
    assets (the mean F1 over the classes its gold or its predictions hold, as
    ``sklearn.metrics.f1_score(average="macro")`` computes it). Each carries a 95%
    percentile bootstrap interval (multinomial resamples of the judged assets' confusion
    matrix, a fixed seed). With ``min_model_quality`` None, a slice is a gap when the upper
    end of its interval lies below the median value of the judged values of its column,
    and a class is not judged; else a group is a gap when its value is below that number.
    """
    judged = (reference >= 0) & (predicted >= 0)  # an unlabeled asset is unknown, not wrong
    w = np.ones(len(reference), np.float64) if weight is None else weight.astype(np.float64)
    rng = np.random.default_rng(_BOOTSTRAP_SEED)
    cells = reference.clip(0) * k + predicted.clip(0)
    measured: list[tuple[_Group, str, float, int, float, float, str]] = []
    for g in groups:
        scope = judged if g.kind == "class" else judged & g.mask
        confusion = np.bincount(cells[scope], weights=w[scope], minlength=k * k)
        confusion = np.rint(confusion).astype(np.int64)
        n_scope = int(confusion.sum())
        if g.kind == "class":
            metric = "model recall vs gold"
            n_judged = _n(judged & (reference == g.code), weight)
            where = f"{n_judged} gold assets of class {g.name}"
        else:
            metric = "model macro F1 vs gold"
            n_judged = n_scope
            where = f"{n_judged} gold-labeled assets in {g.gap}"
        if n_judged < s["min_size"] or n_scope == 0:
            measured.append((g, metric, math.nan, n_judged, math.nan, math.nan, where))
            continue
        draws = rng.multinomial(n_scope, confusion / n_scope, size=_BOOTSTRAP_DRAWS)
        both = np.concatenate([confusion[None], draws]).reshape(-1, k, k)
        values = _class_recall(both, g.code) if g.kind == "class" else _macro_f1(both)
        low, high = (
            np.nanpercentile(values[1:], [2.5, 97.5])
            if np.isfinite(values[1:]).any()
            else (
                math.nan,
                math.nan,
            )
        )
        measured.append((g, metric, float(values[0]), n_judged, float(low), float(high), where))
    fixed = s["min_model_quality"]
    medians: dict[str, list[float]] = {}
    for g, _, value, _, _, _, _ in measured:
        if g.kind == "slice" and math.isfinite(value):
            medians.setdefault(g.column, []).append(value)
    rows = []
    for g, metric, value, n_judged, low, high, where in measured:
        size = _n(g.mask, weight)
        target: float | None = fixed
        if fixed is None and g.column in medians:
            target = float(np.median(medians[g.column]))
        status: GapStatus = OK
        deficit = 0
        if not math.isfinite(value):
            status, reason = TOO_SMALL, f"only {where}; {s['min_size']} needed to judge {metric}."
        else:
            reason = f"{metric} is {value:.3f} on {where} (95% bootstrap CI {low:.3f}-{high:.3f})"
            if target is None:
                # a class the model confuses: its own uncertainty already points gap filling
                # there (the class's errors lie on its boundaries); a slice is invisible to
                # it and has to be named
                reason += "; a class is judged by the model only with min_model_quality."
            else:
                is_gap = value < target if fixed is not None else high < target
                if fixed is not None:
                    side = f"{'below' if is_gap else 'at or above'} {target:g}"
                else:
                    where_median = f"{target:.3f}, the median of the {g.column} slices judged"
                    side = (
                        f"its 95% interval lies below {where_median}"
                        if is_gap
                        else f"not clearly below {where_median}"
                    )
                reason += f", {side}."
                if is_gap:
                    status = GAP
                    deficit = max(1, math.ceil((target - value) * max(size, n_judged) - 1e-9))
        rows.append(
            _row(
                g,
                size=size,
                metric=metric,
                measured=value if math.isfinite(value) else None,
                target=target,
                deficit=deficit,
                n_judged=n_judged,
                ci=(low, high) if math.isfinite(value) else (None, None),
                status=status,
                reason=reason,
            )
        )
    return rows


def _class_recall(confusion: np.ndarray, code: int) -> np.ndarray:
    """Recall of class ``code`` per ``(..., k, k)`` confusion matrix (gold rows); NaN if absent."""
    tp = confusion[..., code, code].astype(np.float64)
    support = confusion[..., code, :].sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, tp / np.where(support > 0, support, 1), math.nan)


def _macro_f1(confusion: np.ndarray) -> np.ndarray:
    """Mean F1 over the classes present in gold or predictions, per confusion matrix."""
    tp = np.diagonal(confusion, axis1=-2, axis2=-1).astype(np.float64)
    denom = confusion.sum(-1) + confusion.sum(-2)
    present = denom > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(present, 2 * tp / np.where(present, denom, 1), 0.0)
        return np.where(present.any(-1), f1.sum(-1) / present.sum(-1), math.nan)


def _row(
    g: _Group,
    *,
    size: int,
    metric: str,
    measured: float | None,
    target: float | None,
    deficit: int,
    n_judged: int,
    ci: tuple[float | None, float | None],
    status: GapStatus,
    reason: str,
) -> dict[str, Any]:
    return {
        "gap": g.gap,
        "kind": g.kind,
        "column": g.column,
        "value": g.value,
        "size": size,
        "metric": metric,
        "value_measured": measured,
        "target": target,
        "deficit": deficit,
        "n_judged": n_judged,
        "ci_low": ci[0],
        "ci_high": ci[1],
        "status": status,
        "reason": reason,
    }


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=_SCHEMA)


def gap_examples(
    kind: str,
    in_group: np.ndarray,
    code: int,
    confident: np.ndarray,
    gold: np.ndarray,
    has_label: np.ndarray,
) -> tuple[np.ndarray, bool]:
    """Which assets show a gap's group: its confident or gold ones, else its labeled ones.

    ``kind`` is ``"class"`` (``code`` the class: its confident assets and those whose gold
    is the class) or ``"slice"`` (the group's confident or gold assets); ``gold`` holds
    class codes, -1 where unknown. Returns the row mask and whether it holds strong ones.

    >>> import numpy as np
    >>> rows, strong = gap_examples(
    ...     "class", np.array([True, True, False]), 0,
    ...     np.array([False, True, False]), np.array([-1, -1, 0]), np.ones(3, bool),
    ... )
    >>> rows.tolist(), strong
    ([False, True, True], True)
    """
    if kind == "class":
        strong = (in_group & confident) | (gold == code)
    else:
        strong = in_group & (confident | (gold >= 0))
    if strong.any():
        return strong, True
    return in_group & has_label, False


def _examples(
    data: pl.DataFrame,
    groups: Sequence[_Group],
    gap_ids: set[str],
    label_codes: np.ndarray,
    confident: np.ndarray,
    gold_codes: np.ndarray | None,
) -> pl.DataFrame:
    """The labeled assets of each gap: confident or gold ones, else any labeled ones."""
    has_label = label_codes >= 0
    gold = np.full(len(label_codes), -1) if gold_codes is None else gold_codes
    parts = []
    for g in groups:
        if g.gap not in gap_ids:
            continue
        rows, _ = gap_examples(g.kind, g.mask, g.code, confident, gold, has_label)
        parts.append(np.column_stack([np.full(int(rows.sum()), len(parts)), np.flatnonzero(rows)]))
    columns = ["asset_id", *(["index_id"] if "index_id" in data.columns else [])]
    gaps_in_order = [g.gap for g in groups if g.gap in gap_ids]
    if not parts:
        return pl.DataFrame({"gap": pl.Series([], dtype=pl.String)}).hstack(
            data.select(columns).clear()
        )
    pairs = np.vstack(parts)
    picked = data.select(columns)[pairs[:, 1]]
    gap_col = pl.Series("gap", [gaps_in_order[i] for i in pairs[:, 0]], dtype=pl.String)
    return picked.insert_column(0, gap_col)


# -- validation and reading --------------------------------------------------------------
def _check_options(
    confident_above: Any,
    min_confident: Any,
    min_confident_share: Any,
    min_quality: Any,
    min_size: Any,
) -> None:
    if not _is_number(confident_above) or not 0 < confident_above <= 1:
        raise InputError(f"confident_above must be in (0, 1], e.g. 0.8; got {confident_above!r}")
    if min_confident is not None and (not _is_whole(min_confident) or min_confident < 0):
        raise InputError(
            f"min_confident must be a whole number >= 0 (0 turns the rule off); "
            f"got {min_confident!r}"
        )
    if not _is_number(min_confident_share) or not 0 <= min_confident_share <= 1:
        raise InputError(f"min_confident_share must be in [0, 1]; got {min_confident_share!r}")
    if not _is_number(min_quality) or not 0 < min_quality <= 1:
        raise InputError(f"min_quality must be in (0, 1], e.g. 0.8; got {min_quality!r}")
    if not _is_whole(min_size) or min_size < 1:
        raise InputError(f"min_size must be a whole number >= 1; got {min_size!r}")


def _check_model_quality(min_model_quality: Any) -> None:
    if min_model_quality is not None and (
        not _is_number(min_model_quality) or not 0 < min_model_quality <= 1
    ):
        raise InputError(
            "min_model_quality must be None (judge the model's groups against their peers) "
            f"or a number in (0, 1], e.g. 0.7; got {min_model_quality!r}"
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_whole(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _names(classes: Any) -> tuple[str, ...]:
    if isinstance(classes, str) or not isinstance(classes, Sequence) or not classes:
        raise InputError(
            f"classes must be a non-empty list of class names, e.g. ['HAM', 'SPAM']; got "
            f"{classes!r}"
        )
    names = tuple(classes)
    bad = [c for c in names if not isinstance(c, str) or not c]
    if bad:
        raise InputError(f"class names must be non-empty strings; got {bad[0]!r}")
    if len(set(names)) != len(names):
        raise InputError(f"class names repeat in {list(names)}; give each class one name")
    return names


def _slice_columns(data: pl.DataFrame, slices: Any) -> tuple[str, ...]:
    if isinstance(slices, str) or not isinstance(slices, Sequence):
        raise InputError(
            f"slices must be a list of column names, e.g. slices=['video']; got {slices!r}"
        )
    columns = tuple(slices)
    bad = [c for c in columns if not isinstance(c, str)]
    if bad:
        raise InputError(f"slices must name columns (strings); got {bad[0]!r}")
    if len(set(columns)) != len(columns):
        raise InputError(f"slice columns repeat in {list(columns)}; name each once")
    if CLASS_COLUMN in columns:
        raise InputError(
            f"a slice column may not be called {CLASS_COLUMN!r} (class gaps are named "
            f"'{CLASS_COLUMN}=<name>'); rename the column"
        )
    require_columns(data, [(c, "slices") for c in columns], what="argument")
    return columns


def _class_column(frame: pl.DataFrame, classes: tuple[str, ...] | None, what: str) -> pl.Series:
    """The class of each row as text: null where unlabeled (null label or id -1)."""
    if "label_name" in frame.columns:
        names = frame["label_name"]
        if names.dtype not in (pl.String, pl.Categorical, pl.Enum, pl.Null):
            raise InputError(
                f"{what} column 'label_name' must hold class names (text); got dtype {names.dtype}"
            )
        out = names.cast(pl.String)
    else:
        label = frame["label"]
        if label.dtype in (pl.String, pl.Categorical, pl.Enum):
            out = label.cast(pl.String)
        elif label.dtype.is_integer() or label.dtype == pl.Null:
            codes = label.cast(pl.Int64)
            codes = codes.set(codes == -1, None) if codes.len() else codes
            if classes is None:
                out = codes.cast(pl.String)
            else:
                bad = codes.filter((codes < 0) | (codes >= len(classes)))
                if bad.len():
                    raise InputError(
                        f"{what} label {bad[0]} is not a class id 0..{len(classes) - 1} "
                        f"(classes {list(classes)}); -1 or null marks an unlabeled asset"
                    )
                out = codes.replace_strict(
                    dict(enumerate(classes)), default=None, return_dtype=pl.String
                )
        else:
            raise InputError(
                f"{what} column 'label' must hold class ids or names; got dtype {label.dtype}"
            )
    if classes is not None:
        unknown = out.drop_nulls().filter(~out.drop_nulls().is_in(list(classes)))
        if unknown.len():
            raise InputError(
                f"{what} label {unknown[0]!r} is not one of the classes {list(classes)}"
                f"{did_you_mean(unknown[0], classes)}; fix "
                "the label or add the class"
            )
    return out.alias("label")


def _confidence(data: pl.DataFrame) -> np.ndarray:
    column = data["confidence"]
    if not (column.dtype.is_numeric() or column.dtype == pl.Null):
        raise InputError(f"column 'confidence' must be numeric in [0, 1]; got {column.dtype}")
    values = column.cast(pl.Float64).fill_nan(None).to_numpy().astype(np.float64)
    known = values[~np.isnan(values)]
    if known.size and (known.min() < 0 or known.max() > 1):
        raise InputError(
            f"column 'confidence' must lie in [0, 1]; got values from {known.min():g} to "
            f"{known.max():g}"
        )
    return values


def _reference(
    table: Any, data: pl.DataFrame, classes: tuple[str, ...] | None, what: str
) -> pl.Series:
    """A gold or predictions table's class per row of ``data`` (null where it has none)."""
    frame = as_polars(table)
    if "asset_id" not in frame.columns:
        raise MissingColumnError(
            f"the {what} table has no 'asset_id' column (columns: {frame.columns}); it needs "
            "asset_id and label_name or label"
        )
    if "label" not in frame.columns and "label_name" not in frame.columns:
        raise MissingColumnError(
            f"the {what} table needs a 'label_name' or 'label' column; it has {frame.columns}"
        )
    require_unique_ids(frame["asset_id"], f"the {what} table")
    names = _class_column(frame, classes, what)
    ids, own = data["asset_id"], frame["asset_id"]
    if ids.dtype != own.dtype:
        ids, own = ids.cast(pl.String), own.cast(pl.String)
    lookup = pl.DataFrame({"asset_id": own, "_ref": names})
    joined = pl.DataFrame({"asset_id": ids}).join(
        lookup, on="asset_id", how="left", maintain_order="left"
    )
    return joined["_ref"].alias(what)


def _predictions(
    predictions: Any, data: pl.DataFrame, classes: tuple[str, ...] | None
) -> pl.Series:
    """A model's predicted class per row of ``data`` (a table, ids or probabilities)."""
    if not isinstance(predictions, np.ndarray | list | tuple):
        return _reference(predictions, data, classes, "predictions")
    values = np.asarray(predictions)
    if values.ndim not in (1, 2) or values.shape[0] != data.height:
        raise InputError(
            f"predictions as an array must have one row per row of the labels table "
            f"({data.height}): (n,) class ids or (n, k) probabilities; got shape {values.shape}"
        )
    if values.ndim == 2:
        if classes is None:
            raise InputError(
                "predictions given as (n, k) probabilities need classes= to name the columns"
            )
        if values.shape[1] != len(classes):
            raise InputError(
                f"predictions has {values.shape[1]} columns but there are {len(classes)} "
                f"classes {list(classes)}; give one probability column per class"
            )
        if not np.isfinite(values).all():
            raise InputError("predictions probabilities must be finite")
        codes = values.argmax(axis=1).astype(np.int64)
    else:
        if not np.issubdtype(values.dtype, np.integer):
            raise InputError(
                f"predictions as a 1-D array must hold class ids (integers, -1 = none); got "
                f"dtype {values.dtype}"
            )
        codes = values.astype(np.int64)
    frame = pl.DataFrame({"label": pl.Series(codes, dtype=pl.Int64)})
    return _class_column(frame, classes, "predictions").alias("predictions")


def _codes(series: pl.Series, class_names: Sequence[str]) -> np.ndarray:
    """Class ids (int64) of class names; -1 for null (unlabeled)."""
    lookup = {name: i for i, name in enumerate(class_names)}
    codes = series.replace_strict(lookup, default=-1, return_dtype=pl.Int64)
    return codes.fill_null(-1).to_numpy()
