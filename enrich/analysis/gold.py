"""Score labels against a gold set: per-class metrics, calibration and per-LF accuracy.

:func:`benchmark` compares predicted labels (or class probabilities) with gold labels that
may cover only some assets (``-1`` = unknown) and returns a :class:`GoldBenchmark`.
:func:`gold_vector` turns a reviewed gold table (for example the one
:func:`enrich.io.label_studio.import_label_studio` returns) into the ``y`` vector a
semi-supervised label model takes, aligned to a vote matrix's asset ids.

Examples
--------
>>> import numpy as np
>>> from enrich.analysis.gold import benchmark
>>> gold = np.array([0, 0, 1, 1, -1])
>>> result = benchmark(gold, labels=np.array([0, 1, 1, 1, 0]), class_names=["HAM", "SPAM"])
>>> result.accuracy, result.n_gold
(0.75, 4)
>>> result.per_class.rows()
[('HAM', 1.0, 0.5, 0.6666666666666666, 2), ('SPAM', 0.6666666666666666, 1.0, 0.8, 2)]
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import polars as pl

from enrich._internal.classes import did_you_mean
from enrich._internal.display import ColumnFormat, Highlight, TableDisplay
from enrich._internal.frames import as_polars
from enrich.errors import InputError, MissingColumnError

__all__ = ["GoldBenchmark", "benchmark", "gold_vector"]

logger = logging.getLogger(__name__)

UNKNOWN: Final = -1
"""Gold value (and abstain vote / prediction) meaning "no label"."""

#: Column added to the confusion matrix when some gold rows got no prediction (-1).
NO_PREDICTION_COLUMN: Final = "(no prediction)"

_PROBA_TOLERANCE = 1e-6


class GoldBenchmark(TableDisplay):
    """Quality of labels on the gold rows, as returned by :func:`benchmark`.

    Attributes
    ----------
    n_gold : int
        Gold rows scored (gold label known, ``!= -1``).
    n_assets : int
        All rows passed in.
    accuracy : float
        Fraction of gold rows whose prediction equals the gold label; a ``-1`` prediction
        (abstain) counts as wrong.
    per_class : polars.DataFrame
        ``class``, ``precision``, ``recall``, ``f1``, ``support`` (gold rows of the class).
        A ratio whose denominator is zero (no prediction of the class, no gold row of it) is
        null rather than 0.
    macro : dict
        ``precision``, ``recall``, ``f1``: unweighted means over the classes where the value
        is defined (nulls left out).
    confusion : polars.DataFrame
        ``gold`` (class name) then one count column per predicted class, rows = gold
        classes; a ``(no prediction)`` column is added when some gold row got ``-1``.
    reliability : polars.DataFrame or None
        With probabilities: ``bin`` (e.g. ``"0.9-1.0"``), ``lower``, ``upper``, ``count``,
        ``mean_confidence``, ``accuracy``, ``gap`` (accuracy - confidence), one row per
        equal-width bin of the top-class probability; nulls in empty bins.
    ece : float or None
        Expected calibration error: ``sum(count / n_gold * |accuracy - mean_confidence|)``
        over the bins; ``None`` without probabilities.
    lf_accuracy : polars.DataFrame or None
        With a vote matrix: ``lf``, ``coverage`` (fraction of gold rows it voted on),
        ``n_votes``, ``correct``, ``accuracy`` (null when it voted on no gold row).
    class_names : tuple of str
    """

    def __init__(
        self,
        *,
        n_gold: int,
        n_assets: int,
        accuracy: float,
        per_class: pl.DataFrame,
        macro: Mapping[str, float | None],
        confusion: pl.DataFrame,
        class_names: tuple[str, ...],
        reliability: pl.DataFrame | None = None,
        ece: float | None = None,
        lf_accuracy: pl.DataFrame | None = None,
    ) -> None:
        self.n_gold = n_gold
        self.n_assets = n_assets
        self.accuracy = accuracy
        self.per_class = per_class
        self.macro = dict(macro)
        self.confusion = confusion
        self.class_names = class_names
        self.reliability = reliability
        self.ece = ece
        self.lf_accuracy = lf_accuracy

    def to_dict(self) -> dict[str, Any]:
        """Headline figures as plain Python values (for logs and run metadata)."""
        return {
            "n_gold": self.n_gold,
            "n_assets": self.n_assets,
            "accuracy": self.accuracy,
            "macro_precision": self.macro["precision"],
            "macro_recall": self.macro["recall"],
            "macro_f1": self.macro["f1"],
            "ece": self.ece,
        }

    # -- display hooks -------------------------------------------------------------------
    def _display_table(self) -> pl.DataFrame:
        return self.per_class

    def _display_title(self) -> str:
        return (
            f"Gold benchmark: {self.n_gold:,} gold rows of {self.n_assets:,} assets, "
            f"{len(self.class_names)} classes"
        )

    def _display_totals(self) -> Mapping[str, str]:
        totals = {
            "accuracy": _percent(self.accuracy),
            "macro F1": _percent(self.macro["f1"]),
        }
        if self.ece is not None:
            totals["ECE"] = f"{self.ece:.3f}"
        return totals

    def _display_formats(self) -> Mapping[str, ColumnFormat]:
        return {"precision": "percent", "recall": "percent", "f1": "percent", "support": "int"}

    def _display_highlights(self) -> Sequence[Highlight]:
        return (Highlight("f1", lambda v: v < 0.5, "F1 below 50%"),)


def benchmark(
    gold: Any,
    *,
    labels: Any = None,
    proba: Any = None,
    class_names: Sequence[str] | None = None,
    votes: Any = None,
    lf_names: Sequence[str] | None = None,
    n_bins: int = 10,
) -> GoldBenchmark:
    """Score predicted labels or class probabilities against gold labels.

    Pass exactly one of ``labels`` and ``proba``: probabilities also give the calibration
    figures (reliability table and ECE); labels are then their argmax (ties to the lowest
    class). Only rows with a known gold label (``gold != -1``) are scored.

    Parameters
    ----------
    gold
        Gold labels, shape ``(n,)``, ints ``0..k-1`` with ``-1`` where unknown (numpy,
        list, polars or pandas Series).
    labels
        Predicted labels, shape ``(n,)``, ints ``0..k-1``; ``-1`` (abstain) is allowed and
        counts as wrong.
    proba
        Class probabilities, shape ``(n, k)``, rows summing to 1 (e.g. a label model's
        ``predict_proba``).
    class_names
        One name per class; default ``votes.class_names`` if present, else ``"0"``,
        ``"1"``... The number of classes is ``len(class_names)``, else ``proba.shape[1]``,
        else the largest label or gold value + 1.
    votes
        Optional vote matrix ``(n, m)`` (abstain ``-1``), e.g. a
        :class:`~enrich.votes.VoteMatrix`; adds :attr:`GoldBenchmark.lf_accuracy`.
    lf_names
        One name per vote column; default ``votes.lf_names`` if present, else ``lf_0``...
    n_bins
        Number of equal-width confidence bins for the reliability table (>= 1).

    Returns
    -------
    GoldBenchmark

    Raises
    ------
    InputError
        If not exactly one of ``labels`` / ``proba`` is given, shapes disagree, values are
        not classes, probability rows do not sum to 1, or no row has a gold label.

    Notes
    -----
    Precision, recall, F1, support and the confusion matrix come from scikit-learn
    (``precision_recall_fscore_support`` with ``zero_division=nan``, ``confusion_matrix``);
    the top-label reliability table and ECE are computed here, since scikit-learn's
    ``calibration_curve`` covers binary positive-class probabilities only. Bins are
    ``[0, 1/b], (1/b, 2/b], ..., ((b-1)/b, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.7, 0.3]])
    >>> result = benchmark(np.array([0, 0, 1, 1]), proba=proba, n_bins=2)
    >>> result.accuracy, round(result.ece, 3)
    (0.5, 0.25)
    >>> result.reliability.select("bin", "count", "accuracy").rows()
    [('0.0-0.5', 0, None), ('0.5-1.0', 4, 0.5)]
    """
    if (labels is None) == (proba is None):
        raise InputError(
            "pass exactly one of labels= (int predictions, shape (n,)) and proba= "
            "(class probabilities, shape (n, k)); got "
            + ("both" if labels is not None else "neither")
        )
    y = _int_vector(gold, "gold")
    n = y.shape[0]
    if class_names is None:
        class_names = getattr(votes, "class_names", None)
    names = _names(class_names, "class_names") if class_names is not None else None
    probabilities = None
    if proba is not None:
        probabilities = _proba(proba, n)
        k_proba = probabilities.shape[1]
        if names is not None and len(names) != k_proba:
            raise InputError(
                f"proba has {k_proba} columns but class_names has {len(names)} names "
                f"{list(names)}; pass one name per probability column"
            )
        predicted = probabilities.argmax(axis=1)
    else:
        predicted = _int_vector(labels, "labels")
        if predicted.shape[0] != n:
            raise InputError(
                f"labels has {predicted.shape[0]} entries but gold has {n}; pass one "
                "prediction per gold entry"
            )
    if names is None:
        if probabilities is not None:
            k = probabilities.shape[1]
        else:
            k = int(max(y.max(initial=-1), predicted.max(initial=-1))) + 1
        names = tuple(str(c) for c in range(max(k, 1)))
    k = len(names)
    _check_range(y, k, "gold", names)
    _check_range(predicted, k, "labels", names)

    known = y != UNKNOWN
    n_gold = int(known.sum())
    if n_gold == 0:
        raise InputError(
            f"gold has no known label among its {n} entries (all are -1); label some assets "
            "(e.g. through the review queue) before benchmarking"
        )
    y_gold = y[known]
    p_gold = predicted[known]

    per_class, macro = _per_class(y_gold, p_gold, names)
    confusion = _confusion(y_gold, p_gold, names)
    accuracy = float(np.mean(y_gold == p_gold))

    reliability = ece = None
    if probabilities is not None:
        reliability, ece = _reliability(probabilities[known], y_gold, n_bins)

    lf_accuracy = None
    if votes is not None:
        lf_accuracy = _lf_accuracy(votes, lf_names, y, known, k, names)

    logger.debug("benchmark on %d gold rows of %d, %d classes", n_gold, n, k)
    return GoldBenchmark(
        n_gold=n_gold,
        n_assets=n,
        accuracy=accuracy,
        per_class=per_class,
        macro=macro,
        confusion=confusion,
        class_names=names,
        reliability=reliability,
        ece=ece,
        lf_accuracy=lf_accuracy,
    )


def gold_vector(gold_table: Any, asset_ids: Any, classes: Sequence[str] | int) -> np.ndarray:
    """Align a gold table to a vote matrix's asset ids: the ``y`` a label model's ``fit`` takes.

    Parameters
    ----------
    gold_table
        polars/pandas/Arrow table with ``asset_id`` and ``label_name`` (class name) and/or
        ``label`` (class id); e.g. ``import_label_studio(...).gold``. When both columns are
        present they must agree. Each asset appears at most once.
    asset_ids
        The vote matrix's asset ids, in row order: a :class:`~enrich.votes.VoteMatrix`
        (its ``asset_ids``), a polars/pandas Series, or a sequence.
    classes
        Class names (``classes[c]`` names class ``c``) or the number of classes.

    Returns
    -------
    numpy.ndarray
        int64, shape ``(len(asset_ids),)``: the gold class id of each asset, ``-1`` where
        the table has none. Gold rows for assets not in ``asset_ids`` are ignored. When the
        two id columns have different types (int vs str) they are compared as strings.

    Raises
    ------
    InputError
        If a column is missing, an asset repeats, a label is not a class, or ``label`` and
        ``label_name`` disagree.

    Examples
    --------
    >>> import polars as pl
    >>> table = pl.DataFrame({"asset_id": ["b", "z"], "label_name": ["SPAM", "HAM"]})
    >>> gold_vector(table, ["a", "b", "c"], ["HAM", "SPAM"]).tolist()
    [-1, 1, -1]
    """
    table = as_polars(gold_table)
    if isinstance(classes, int | np.integer) and not isinstance(classes, bool):
        if classes < 1:
            raise InputError(f"classes must be >= 1 when given as a count, got {classes}")
        names: tuple[str, ...] | None = None
        k = int(classes)
    else:
        names = _names(classes, "classes")
        k = len(names)
    if "asset_id" not in table.columns:
        raise MissingColumnError(
            f"the gold table has no 'asset_id' column (columns: {table.columns}); it needs "
            "asset_id and label_name or label"
        )
    use_names = names is not None and "label_name" in table.columns
    if not use_names and "label" not in table.columns:
        need = "'label_name' or 'label'" if names is not None else "'label' (class ids)"
        raise MissingColumnError(
            f"the gold table needs a {need} column; it has {table.columns}"
            + ("" if names is not None else "; pass class names to read 'label_name'")
        )
    ids = _id_series(asset_ids)
    repeated = table["asset_id"].filter(table["asset_id"].is_duplicated()).unique().sort()
    if repeated.len():
        raise InputError(
            f"the gold table lists asset(s) {repeated.head(5).to_list()} more than once; keep "
            "one gold label per asset (import_label_studio already does)"
        )
    codes = _gold_codes(table, names, k, use_names)
    gold_ids = table["asset_id"]
    if gold_ids.dtype != ids.dtype:
        gold_ids, ids = gold_ids.cast(pl.String), ids.cast(pl.String)
    lookup = pl.DataFrame({"asset_id": gold_ids, "_code": codes})
    joined = pl.DataFrame({"asset_id": ids}).join(
        lookup, on="asset_id", how="left", maintain_order="left"
    )
    return joined["_code"].fill_null(UNKNOWN).to_numpy().astype(np.int64)


# -- helpers -----------------------------------------------------------------------------
def _gold_codes(
    table: pl.DataFrame, names: tuple[str, ...] | None, k: int, use_names: bool
) -> pl.Series:
    codes = None
    if use_names and names is not None:
        label_names = table["label_name"].cast(pl.String)
        bad = table.filter(~label_names.is_in(list(names)) | label_names.is_null())
        if bad.height:
            raise InputError(
                f"gold label_name {bad['label_name'][0]!r} (asset {bad['asset_id'][0]!r}) is not "
                f"a class{did_you_mean(bad['label_name'][0], names)}; classes are {list(names)} "
                f"({bad.height} such row(s))"
            )
        lookup = {name: i for i, name in enumerate(names)}
        codes = label_names.replace_strict(lookup, return_dtype=pl.Int64)
    if "label" in table.columns:
        label = table["label"]
        if not label.dtype.is_integer() or label.null_count():
            raise InputError(
                f"gold column 'label' must hold class ids 0..{k - 1} without nulls; got dtype "
                f"{label.dtype} with {label.null_count()} null(s)"
            )
        label = label.cast(pl.Int64)
        out = (label < 0) | (label >= k)
        if out.any():
            i = int(out.arg_true()[0])
            raise InputError(
                f"gold label {label[i]} (asset {table['asset_id'][i]!r}) is not a class id "
                f"0..{k - 1}"
            )
        if codes is not None:
            differ = codes != label
            if differ.any():
                i = int(differ.arg_true()[0])
                raise InputError(
                    f"gold columns disagree for asset {table['asset_id'][i]!r}: label "
                    f"{label[i]} but label_name {table['label_name'][i]!r}; fix or drop one"
                )
        else:
            codes = label
    if codes is None:  # the caller checks a label column exists; kept for clarity
        raise MissingColumnError("the gold table needs a 'label_name' or 'label' column")
    return codes


def _id_series(asset_ids: Any) -> pl.Series:
    ids = getattr(asset_ids, "asset_ids", asset_ids)
    if isinstance(ids, pl.Series):
        return ids.alias("asset_id")
    if type(ids).__module__.startswith("pandas"):
        return pl.from_pandas(ids).alias("asset_id")
    if isinstance(ids, str):
        raise InputError(f"asset_ids must be a sequence of ids, not the string {ids!r}")
    try:
        return pl.Series("asset_id", list(ids))
    except (TypeError, ValueError, pl.exceptions.PolarsError) as exc:
        raise InputError(
            f"cannot read asset_ids as one column of ids ({exc}); pass a list or Series of "
            "ids of one type"
        ) from exc


def _names(names: Any, what: str) -> tuple[str, ...]:
    if isinstance(names, str) or not isinstance(names, Sequence | np.ndarray | pl.Series):
        raise InputError(f"{what} must be a sequence of class names, got {names!r}")
    out = tuple(str(name) for name in names)
    if not out:
        raise InputError(f"{what} is empty; pass one name per class, e.g. ('HAM', 'SPAM')")
    if len(set(out)) != len(out):
        raise InputError(f"{what} repeats a name: {list(out)}; class names must be unique")
    return out


def _int_vector(values: Any, what: str) -> np.ndarray:
    if isinstance(values, pl.Series):
        values = values.to_numpy()
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise InputError(f"{what} must be 1-D (one label per asset); got shape {arr.shape}")
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "f" and arr.size:
        whole = np.isfinite(arr) & (arr == np.round(arr))
        if not whole.all():
            i = int(np.argmin(whole))
            raise InputError(
                f"{what} must hold whole class ids (-1 = unknown); found {arr[i].item()!r} "
                f"at index {i}"
            )
        return arr.astype(np.int64)
    if arr.size == 0:
        return arr.astype(np.int64)
    raise InputError(
        f"{what} must hold integer class ids (-1 = unknown); got dtype {arr.dtype} (first "
        f"value {arr.flat[0].item()!r}); map class names to ids first"
    )


def _check_range(values: np.ndarray, k: int, what: str, names: tuple[str, ...]) -> None:
    bad = (values < UNKNOWN) | (values >= k)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(
            f"{what} holds {int(values[i])} at index {i}; allowed are class ids 0..{k - 1} "
            f"({', '.join(f'{c}={name!r}' for c, name in enumerate(names))}) or -1"
        )


def _proba(proba: Any, n: int) -> np.ndarray:
    arr = np.asarray(proba, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise InputError(f"proba must be 2-D (n_assets, n_classes); got shape {arr.shape}")
    if arr.shape[0] != n:
        raise InputError(
            f"proba has {arr.shape[0]} rows but gold has {n}; pass one row per gold entry"
        )
    bad = ~np.isfinite(arr) | (arr < -_PROBA_TOLERANCE) | (arr > 1 + _PROBA_TOLERANCE)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        raise InputError(f"proba[{i}, {j}] = {float(arr[i, j])!r} is not a probability in [0, 1]")
    sums = arr.sum(axis=1)
    off = np.abs(sums - 1) > 1e-4
    if off.any():
        i = int(np.argmax(off))
        raise InputError(
            f"proba row {i} sums to {sums[i]:.6g}, not 1; pass normalised class "
            "probabilities (e.g. predict_proba output)"
        )
    return arr


def _per_class(
    y: np.ndarray, p: np.ndarray, names: tuple[str, ...]
) -> tuple[pl.DataFrame, dict[str, float | None]]:
    k = len(names)
    matrix = _confusion_counts(y, p, k)[:, :k]  # (no prediction) is never a true positive
    tp = np.diag(matrix).astype(np.float64)
    support = _confusion_counts(y, p, k).sum(axis=1)
    predicted = matrix.sum(axis=0).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 -> nan, as zero_division=nan
        precision = tp / predicted
        recall = tp / support
        f1 = 2 * tp / (predicted + support)
    table = pl.DataFrame(
        {
            "class": list(names),
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": support.astype(np.int64),
        }
    ).with_columns(pl.col("precision", "recall", "f1").fill_nan(None))
    macro = {
        key: (float(np.nanmean(values)) if np.isfinite(values).any() else None)
        for key, values in (("precision", precision), ("recall", recall), ("f1", f1))
    }
    return table, macro


def _confusion(y: np.ndarray, p: np.ndarray, names: tuple[str, ...]) -> pl.DataFrame:
    k = len(names)
    has_none = bool((p == UNKNOWN).any())
    matrix = _confusion_counts(y, p, k)
    matrix = matrix if has_none else matrix[:, :k]
    columns = [*names, NO_PREDICTION_COLUMN] if has_none else list(names)
    frame = pl.DataFrame(
        {name: matrix[:, j].astype(np.int64) for j, name in enumerate(columns)},
        schema=dict.fromkeys(columns, pl.Int64),
    )
    return frame.insert_column(0, pl.Series("gold", list(names)))


def _confusion_counts(y: np.ndarray, p: np.ndarray, k: int) -> np.ndarray:
    """Counts ``(k, k + 1)``: gold class by predicted class, the last column no prediction.

    Rows whose gold or prediction is outside ``0..k-1`` (and not :data:`UNKNOWN`) are left out,
    as scikit-learn's ``confusion_matrix(labels=...)`` does (numpy: no scikit-learn import in
    a run).
    """
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.int64)
    column = np.where(p == UNKNOWN, k, p)
    keep = (y >= 0) & (y < k) & (column >= 0) & (column <= k)
    flat = y[keep] * (k + 1) + column[keep]
    return np.bincount(flat, minlength=k * (k + 1)).reshape(k, k + 1)


def _reliability(proba: np.ndarray, y: np.ndarray, n_bins: int) -> tuple[pl.DataFrame, float]:
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise InputError(f"n_bins must be a whole number >= 1, got {n_bins!r}")
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bin i holds (edges[i], edges[i+1]]; a confidence of exactly 0 goes to bin 0.
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    conf_sum = np.bincount(which, weights=confidence, minlength=n_bins)
    correct_sum = np.bincount(which, weights=correct, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(count > 0, conf_sum / np.maximum(count, 1), np.nan)
        accuracy = np.where(count > 0, correct_sum / np.maximum(count, 1), np.nan)
    filled = count > 0
    ece = float(np.sum(count[filled] / y.shape[0] * np.abs(accuracy - mean_conf)[filled]))
    labels = [f"{_edge(edges[i])}-{_edge(edges[i + 1])}" for i in range(n_bins)]
    table = pl.DataFrame(
        {
            "bin": labels,
            "lower": edges[:-1],
            "upper": edges[1:],
            "count": count.astype(np.int64),
            "mean_confidence": mean_conf,
            "accuracy": accuracy,
        }
    ).with_columns(
        pl.col("mean_confidence", "accuracy").fill_nan(None),
    )
    table = table.with_columns((pl.col("accuracy") - pl.col("mean_confidence")).alias("gap"))
    return table, ece


def _lf_accuracy(
    votes: Any,
    lf_names: Sequence[str] | None,
    y: np.ndarray,
    known: np.ndarray,
    k: int,
    names: tuple[str, ...],
) -> pl.DataFrame:
    matrix = np.asarray(getattr(votes, "votes", votes))
    if matrix.ndim != 2:
        raise InputError(f"votes must be 2-D (n_assets, n_lfs); got shape {matrix.shape}")
    if matrix.shape[0] != y.shape[0]:
        raise InputError(
            f"votes has {matrix.shape[0]} rows but gold has {y.shape[0]}; pass the vote "
            "matrix of the same assets"
        )
    if matrix.dtype.kind not in "iu":
        raise InputError(f"votes must hold integer class ids (-1 = abstain); got {matrix.dtype}")
    m = matrix.shape[1]
    if lf_names is None:
        lf_names = getattr(votes, "lf_names", None)
    lfs = [str(x) for x in lf_names] if lf_names is not None else [f"lf_{j}" for j in range(m)]
    if len(lfs) != m:
        raise InputError(
            f"lf_names has {len(lfs)} names but votes has {m} columns; pass one name per LF"
        )
    bad = (matrix < UNKNOWN) | (matrix >= k)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        raise InputError(
            f"votes holds {int(matrix[i, j])} at row {i}, column {j} (LF {lfs[j]!r}); votes "
            f"must be class ids 0..{k - 1} ({list(names)}) or -1 for abstain"
        )
    on_gold = matrix[known]
    y_gold = y[known]
    voted = on_gold != UNKNOWN
    n_votes = voted.sum(axis=0).astype(np.int64)
    correct = ((on_gold == y_gold[:, None]) & voted).sum(axis=0).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(n_votes > 0, correct / np.maximum(n_votes, 1), np.nan)
    return pl.DataFrame(
        {
            "lf": lfs,
            "coverage": n_votes / max(int(known.sum()), 1),
            "n_votes": n_votes,
            "correct": correct,
            "accuracy": accuracy,
        }
    ).with_columns(pl.col("accuracy").fill_nan(None))


def _edge(value: float) -> str:
    text = f"{value:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"
