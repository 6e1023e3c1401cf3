"""Several models scored side by side against one reference: overall, per class, per slice.

:func:`compare_models` runs :func:`enrich.analysis.gold.benchmark` and
:func:`enrich.analysis.slices.slice_report` on each model's predictions (e.g. the label
model's and the end model's) against the same reference labels, and stacks the figures with
their confidence intervals so the models read side by side.

The reference is usually gold. With the label model's labels as the reference (``-1`` where no
LF voted), the same call measures how far the end model agrees with the label model, per
class and per slice, when there is no gold at all.

Examples
--------
>>> import numpy as np, polars as pl
>>> gold = np.array([0, 0, 1, 1, 1, 0, -1, 1])
>>> label_model = np.array([0, 1, 1, 1, 0, 0, 0, 1])
>>> end_model = np.array([0, 0, 1, 1, 1, 0, 1, 1])
>>> frame = pl.DataFrame({"video": ["a", "a", "a", "a", "b", "b", "b", "b"]})
>>> result = compare_models(gold, {"label model": label_model, "end model": end_model},
...                         class_names=["HAM", "SPAM"], frame=frame, slices=["video"],
...                         min_size=1)
>>> result.overall.select("model", "n", "accuracy").rows()
[('label model', 7, 0.7142857142857143), ('end model', 7, 1.0)]
>>> result.slices.filter(pl.col("slice") == "video=b").select("model", "n", "metric").rows()
[('label model', 3, 0.6666666666666666), ('end model', 3, 1.0)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from enrich._internal.display import ColumnFormat, TableDisplay
from enrich._internal.frames import as_polars
from enrich.analysis.gold import GoldBenchmark, benchmark
from enrich.analysis.slices import SliceReport, SliceSpec, _wilson, _z, slice_report
from enrich.errors import InputError

__all__ = ["ModelComparison", "compare_models"]


class ModelComparison(TableDisplay):
    """Models scored against one reference, as returned by :func:`compare_models`.

    Attributes
    ----------
    overall : polars.DataFrame
        One row per model: ``model``, ``n`` (rows with a reference label), ``accuracy``,
        ``ci_low``, ``ci_high`` (Wilson interval), ``macro_f1``, ``ece`` (null for labels).
    per_class : polars.DataFrame
        One row per (model, class): ``model``, ``class``, ``precision``, ``recall``, ``f1``,
        ``support``, ``recall_ci_low``, ``recall_ci_high`` (Wilson interval of the recall:
        the accuracy on the reference rows of that class).
    slices : polars.DataFrame or None
        With ``slices``: one row per (model, slice) of :attr:`SliceReport.table`, with
        ``model`` first; sorted by slice then model.
    benchmarks : dict of str to GoldBenchmark
    slice_reports : dict of str to SliceReport
    """

    def __init__(
        self,
        *,
        overall: pl.DataFrame,
        per_class: pl.DataFrame,
        slices: pl.DataFrame | None,
        benchmarks: Mapping[str, GoldBenchmark],
        slice_reports: Mapping[str, SliceReport],
        confidence: float,
    ) -> None:
        self.overall = overall
        self.per_class = per_class
        self.slices = slices
        self.benchmarks = dict(benchmarks)
        self.slice_reports = dict(slice_reports)
        self.confidence = confidence

    def _display_table(self) -> pl.DataFrame:
        return self.overall

    def _display_title(self) -> str:
        return f"Model comparison: {self.overall.height} models on {self.overall['n'][0]:,} rows"

    def _display_caption(self) -> str:
        return (
            f"{self.confidence:.0%} Wilson intervals; per class in .per_class, per slice in .slices"
        )

    def _display_formats(self) -> Mapping[str, ColumnFormat]:
        return {
            "accuracy": "percent",
            "ci_low": "percent",
            "ci_high": "percent",
            "macro_f1": "percent",
            "n": "int",
        }


def compare_models(
    reference: Any,
    models: Mapping[str, Any],
    *,
    class_names: Sequence[str] | None = None,
    frame: Any = None,
    slices: Sequence[SliceSpec] | None = None,
    min_size: int = 30,
    confidence: float = 0.95,
) -> ModelComparison:
    """Score each model against ``reference`` overall, per class and per slice.

    Parameters
    ----------
    reference
        Reference class ids ``(n,)`` -- gold, or another model's labels -- with ``-1``
        where unknown (those rows are not scored).
    models
        Model name -> its predictions for the same ``n`` rows: class probabilities
        ``(n, k)`` (e.g. ``label_model.predict_proba(L)``, ``end_model.oof_proba_``) or
        class ids ``(n,)``.
    class_names
        One name per class.
    frame
        Table with one row per asset in the same order, holding the slice columns.
    slices
        Slices as :func:`~enrich.analysis.slices.slice_report` takes them (column names,
        ``(name, expression)``...); needs ``frame``.
    min_size, confidence
        As in :func:`~enrich.analysis.slices.slice_report`; ``confidence`` is also the
        level of the overall and per-class intervals.

    Returns
    -------
    ModelComparison

    Raises
    ------
    InputError
        No model, a model with the wrong number of rows, ``slices`` without ``frame`` (or a
        frame of another length), plus whatever ``benchmark`` / ``slice_report`` refuse.
    """
    if not isinstance(models, Mapping) or not models:
        raise InputError(
            "models must be a non-empty mapping of name -> predictions, e.g. "
            "{'label model': label_model.predict_proba(L), 'end model': end.oof_proba_}"
        )
    if slices is not None and frame is None:
        raise InputError(
            "slices need frame=: the table holding the slice columns, one row per asset"
        )
    ref = np.asarray(reference.to_numpy() if hasattr(reference, "to_numpy") else reference)
    table = None if frame is None else as_polars(frame)
    if table is not None and table.height != ref.shape[0]:
        raise InputError(
            f"frame has {table.height} rows but reference has {ref.shape[0]}; pass one row "
            "per asset"
        )
    z = _z(confidence)
    overall_rows, per_class, slice_tables = [], [], []
    benchmarks: dict[str, GoldBenchmark] = {}
    reports: dict[str, SliceReport] = {}
    for name, predictions in models.items():
        pred = np.asarray(predictions)
        if pred.shape[:1] != ref.shape[:1]:
            raise InputError(
                f"model {name!r} gives {pred.shape[0] if pred.ndim else 0} rows but reference "
                f"has {ref.shape[0]}; predict the same assets in the same order"
            )
        is_proba = pred.ndim == 2
        result = benchmark(
            ref,
            labels=None if is_proba else pred,
            proba=pred if is_proba else None,
            class_names=class_names,
        )
        benchmarks[name] = result
        correct = round(result.accuracy * result.n_gold)
        low, high = _wilson(np.array([correct], float), np.array([result.n_gold]), z)
        overall_rows.append(
            (
                name,
                result.n_gold,
                result.accuracy,
                float(low[0]),
                float(high[0]),
                result.macro["f1"],
                result.ece,
            )
        )
        support = result.per_class["support"].to_numpy()
        recall = result.per_class["recall"].fill_null(np.nan).to_numpy()
        r_low, r_high = _wilson(np.round(np.nan_to_num(recall) * support), support, z)
        per_class.append(
            result.per_class.with_columns(
                pl.Series("recall_ci_low", r_low).fill_nan(None),
                pl.Series("recall_ci_high", r_high).fill_nan(None),
            ).insert_column(0, pl.Series("model", [name] * result.per_class.height))
        )
        if slices is not None and table is not None:
            labels = pred.argmax(axis=1) if is_proba else pred.astype(np.int64)
            known = ref >= 0
            correct_col = pl.Series("_correct", labels == ref).set(pl.Series(~known), None)
            report = slice_report(
                table.with_columns(correct_col),
                correct="_correct",
                slices=slices,
                min_size=min_size,
                confidence=confidence,
            )
            reports[name] = report
            slice_tables.append(
                report.table.insert_column(0, pl.Series("model", [name] * report.table.height))
            )
    overall = pl.DataFrame(
        overall_rows,
        schema={
            "model": pl.String,
            "n": pl.Int64,
            "accuracy": pl.Float64,
            "ci_low": pl.Float64,
            "ci_high": pl.Float64,
            "macro_f1": pl.Float64,
            "ece": pl.Float64,
        },
        orient="row",
    )
    order = {name: i for i, name in enumerate(models)}
    sliced = None
    if slice_tables:
        sliced = (
            pl.concat(slice_tables)
            .with_columns(pl.col("model").replace_strict(order, return_dtype=pl.Int64).alias("_o"))
            .sort("slice", "_o")
            .drop("_o")
        )
    return ModelComparison(
        overall=overall,
        per_class=pl.concat(per_class),
        slices=sliced,
        benchmarks=benchmarks,
        slice_reports=reports,
        confidence=float(confidence),
    )
