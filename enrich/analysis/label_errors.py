"""Find likely wrong labels -- in gold or annotator labels -- with confident learning (cleanlab).

A model's out-of-fold class probabilities (e.g. :attr:`enrich.models.end_model.EndModel.oof_proba_`)
say what each row looks like to a model that never saw that row's label. Where they strongly
disagree with the given label, more than the model's own per-class error rates explain, the
label is likely wrong. :func:`find_label_errors` asks cleanlab's ``find_label_issues``
(Northcutt et al., JAIR 2021) which rows those are -- by default as many as confident learning
estimates are mislabeled, those the model believes least --, ranks them by cleanlab's
label-quality score (worst first), and returns them as a table the review queue takes
(``review_queue(..., suspect_labels=errors.table)``, reason ``gold_suspect``).

Examples
--------
>>> import numpy as np
>>> labels = np.array([0] * 10 + [1] * 10 + [-1])
>>> labels[3] = 1  # a wrong label
>>> pred_probs = np.array([[0.9, 0.1]] * 10 + [[0.1, 0.9]] * 10 + [[0.5, 0.5]])
>>> errors = find_label_errors(labels, pred_probs, class_names=["HAM", "SPAM"])
>>> errors.table.select("asset_id", "label_name", "suggested_label_name").rows()
[(3, 'SPAM', 'HAM')]
>>> errors.n_checked, int(errors.is_error.sum())
(20, 1)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

import numpy as np
import polars as pl

from enrich._internal.display import ColumnFormat, TableDisplay
from enrich.errors import InputError

__all__ = ["LabelErrors", "find_label_errors"]

logger = logging.getLogger(__name__)

#: cleanlab's rules for which rows are label issues (``cleanlab.filter.find_label_issues``).
FilterBy = Literal[
    "prune_by_noise_rate",
    "prune_by_class",
    "both",
    "confident_learning",
    "predicted_neq_given",
    "low_self_confidence",
    "low_normalized_margin",
]
_FILTERS: Final = (
    "prune_by_noise_rate",
    "prune_by_class",
    "both",
    "confident_learning",
    "predicted_neq_given",
    "low_self_confidence",
    "low_normalized_margin",
)


class LabelErrors(TableDisplay):
    """Rows whose given label is likely wrong, as returned by :func:`find_label_errors`.

    Attributes
    ----------
    table : polars.DataFrame
        The flagged rows, worst first: ``rank``, ``asset_id``, ``label`` (the given class
        id), ``label_name``, ``suggested_label`` (the model's class), ``suggested_label_name``
        (names only with class names), ``label_quality`` (cleanlab's self-confidence: the
        model's probability of the given label; low = likely wrong).
    is_error : numpy.ndarray of bool
        ``(n,)``: flagged or not, for every row passed in (False where the label was -1).
    label_quality : numpy.ndarray
        ``(n,)`` label-quality score of every row (NaN where the label was -1).
    n_checked : int
        Rows with a label.
    """

    def __init__(
        self,
        table: pl.DataFrame,
        *,
        is_error: np.ndarray,
        label_quality: np.ndarray,
        n_checked: int,
    ) -> None:
        self.table = table
        self.is_error = is_error
        self.label_quality = label_quality
        self.n_checked = n_checked

    def __len__(self) -> int:
        return self.table.height

    def _display_table(self) -> pl.DataFrame:
        return self.table

    def _display_title(self) -> str:
        return f"Likely label errors: {self.table.height:,} of {self.n_checked:,} labels"

    def _display_formats(self) -> Mapping[str, ColumnFormat]:
        return {"label_quality": "float", "rank": "int"}


def find_label_errors(
    labels: Any,
    pred_probs: Any,
    *,
    asset_ids: Any = None,
    class_names: Sequence[str] | None = None,
    filter_by: FilterBy = "low_self_confidence",
) -> LabelErrors:
    """Flag the labels that out-of-fold model probabilities say are likely wrong.

    Parameters
    ----------
    labels
        The labels to check, class ids ``(n,)``, ``-1`` where a row has none: gold, an
        annotator's or a consensus of annotators' labels.
    pred_probs
        ``(n, k)`` out-of-fold class probabilities: from a model that did not train on the
        row it predicts (:attr:`EndModel.oof_proba_`). In-sample probabilities hide errors:
        the model has learnt the wrong label.
    asset_ids
        One id per row (a list, Series or :class:`~enrich.votes.VoteMatrix`); default row
        positions.
    class_names
        One name per class, for the ``*_name`` columns.
    filter_by
        cleanlab's rule (``find_label_issues(filter_by=...)``). ``"low_self_confidence"``
        (default) flags as many rows as confident learning estimates are mislabeled
        (``cleanlab.count.num_label_issues``, the estimate cleanlab recommends), those whose
        given label the model believes least; ``"low_normalized_margin"`` ranks by the margin
        to the best other class instead. ``"prune_by_noise_rate"`` (cleanlab's own default)
        flags, per pair of classes, as many rows as the estimated noise rate says: more
        flags, more recall, less precision. ``"predicted_neq_given"`` flags every
        disagreement; ``"confident_learning"`` the off-diagonal of the confident joint;
        ``"prune_by_class"`` and ``"both"`` are variants. On 5% planted gold flips (youtube,
        trec; 3 seeds, ``benchmarks/RESULTS.md``) the default has precision 0.655 / 0.535
        and recall 0.730 / 0.885, ``"prune_by_noise_rate"`` 0.577 / 0.376 and 0.857 / 0.878:
        reviewers see fewer false alarms for a few missed errors.

    Returns
    -------
    LabelErrors

    Raises
    ------
    InputError
        Shapes disagree, probabilities are invalid, a label is not a class, fewer than two
        classes are labeled, or ``filter_by`` is unknown.
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    if filter_by not in _FILTERS:
        raise InputError(f"filter_by must be one of {list(_FILTERS)}, got {filter_by!r}")
    given = np.asarray(labels.to_numpy() if hasattr(labels, "to_numpy") else labels)
    if given.ndim != 1 or (given.size and given.dtype.kind not in "iu"):
        raise InputError(
            f"labels must be class ids (n,) with -1 = none; got {given.dtype} of shape "
            f"{given.shape}"
        )
    given = given.astype(np.int64)
    probs = np.asarray(pred_probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] != given.shape[0] or probs.shape[1] < 2:
        raise InputError(
            f"pred_probs must have shape (n, k) with n = {given.shape[0]} labels and k >= 2; "
            f"got {probs.shape}"
        )
    k = probs.shape[1]
    if (
        not np.isfinite(probs).all()
        or (probs < 0).any()
        or (probs.size and np.abs(probs.sum(axis=1) - 1).max() > 1e-4)
    ):
        raise InputError("pred_probs rows must be finite, >= 0 and sum to 1 (predict_proba output)")
    bad = (given < -1) | (given >= k)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"labels hold {int(given[i])} at row {i}; class ids are 0..{k - 1} or -1")
    names = None if class_names is None else [str(c) for c in class_names]
    if names is not None and len(names) != k:
        raise InputError(f"class_names has {len(names)} names for {k} probability columns")
    ids = _ids(asset_ids, given.shape[0])

    known = np.flatnonzero(given >= 0)
    y = given[known]
    present = np.unique(y)
    if present.size < 2:
        raise InputError(
            f"labels hold {present.size} class(es) among {known.size} labeled rows; finding "
            "label errors needs at least two classes labeled"
        )
    # cleanlab wants every class it is given to be labeled: restrict to the labeled classes
    p = probs[np.ix_(known, present)]
    p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
    y_local = np.searchsorted(present, y)
    flagged = find_label_issues(y_local, p, filter_by=filter_by, n_jobs=1)
    quality = get_label_quality_scores(y_local, p, method="self_confidence")

    is_error = np.zeros(given.shape[0], dtype=bool)
    is_error[known[flagged]] = True
    label_quality = np.full(given.shape[0], np.nan)
    label_quality[known] = quality
    rows = known[flagged]
    order = np.lexsort((rows, label_quality[rows]))
    rows = rows[order]
    suggested = probs[rows].argmax(axis=1)
    columns: dict[str, Any] = {
        "rank": pl.Series(np.arange(1, rows.size + 1), dtype=pl.Int64),
        "asset_id": ids.gather(rows) if rows.size else ids.head(0),
        "label": pl.Series(given[rows], dtype=pl.Int64),
    }
    if names is not None:
        columns["label_name"] = pl.Series([names[c] for c in given[rows]], dtype=pl.String)
    columns["suggested_label"] = pl.Series(suggested, dtype=pl.Int64)
    if names is not None:
        columns["suggested_label_name"] = pl.Series([names[c] for c in suggested], dtype=pl.String)
    columns["label_quality"] = pl.Series(label_quality[rows], dtype=pl.Float64)
    logger.debug("find_label_errors flagged %d of %d labels", rows.size, known.size)
    return LabelErrors(
        pl.DataFrame(columns),
        is_error=is_error,
        label_quality=label_quality,
        n_checked=int(known.size),
    )


def _ids(asset_ids: Any, n: int) -> pl.Series:
    ids = getattr(asset_ids, "asset_ids", asset_ids)
    if ids is None:
        return pl.Series("asset_id", np.arange(n), dtype=pl.Int64)
    if isinstance(ids, pl.Series):
        series = ids.alias("asset_id")
    elif type(ids).__module__.startswith("pandas"):
        series = pl.from_pandas(ids).alias("asset_id")
    else:
        series = pl.Series("asset_id", list(ids))
    if series.len() != n:
        raise InputError(f"asset_ids has {series.len()} ids for {n} labels; pass one id per row")
    return series
