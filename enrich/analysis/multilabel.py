"""Multi-label analysis: scores against gold label sets, LF summaries and tables per label.

>>> import numpy as np
>>> scores = multilabel_scores([[1, 0], [1, 1], [0, 0]], [[1, 0], [1, 0], [0, 1]],
...                            label_names=["cat", "dog"])
>>> round(scores.macro_f1, 3), round(scores.micro_f1, 3), round(scores.subset_accuracy, 3)
(0.5, 0.667, 0.333)
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from enrich._internal.display import TableDisplay
from enrich.errors import InputError
from enrich.multilabel_votes import MultiLabelVoteMatrix

__all__ = [
    "MultiLabelScores",
    "multilabel_lf_summary",
    "multilabel_scores",
    "multilabel_table",
]


@dataclass(frozen=True, repr=False)
class MultiLabelScores(TableDisplay):
    """Scores of predicted label sets against gold label sets.

    Attributes
    ----------
    per_label : one row per label: ``label``, ``precision``, ``recall``, ``f1``, ``support``
        (gold positives), ``predicted`` (predicted positives), ``n_scored`` (rows with a
        known gold value of the label).
    micro_f1 : F1 over every (asset, label) decision.
    macro_f1 : mean of the per-label F1.
    subset_accuracy : share of fully known assets whose whole label set is right.
    n_assets : assets with at least one known gold value.
    """

    per_label: pl.DataFrame
    micro_f1: float
    macro_f1: float
    subset_accuracy: float
    n_assets: int

    def _display_table(self) -> pl.DataFrame:
        return self.per_label

    def _display_title(self) -> str:
        return f"Multi-label scores on {self.n_assets:,} assets"

    def _display_totals(self) -> dict[str, str]:
        return {
            "micro F1": f"{self.micro_f1:.3f}",
            "macro F1": f"{self.macro_f1:.3f}",
            "subset accuracy": f"{self.subset_accuracy:.3f}",
        }


def _label_sets(values: Any, name: str, shape: tuple[int, int] | None = None) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 2 or (shape is not None and array.shape != shape):
        want = "(n_assets, n_labels)" if shape is None else str(shape)
        raise InputError(f"{name} must be label sets of shape {want}, got {array.shape}.")
    if array.size and not np.all(np.isin(array, (-1, 0, 1))):
        raise InputError(f"{name} must hold 1 (present), 0 (absent) or -1 (unknown) only.")
    return array.astype(np.int64)


def multilabel_scores(
    y_true: Any, y_pred: Any, *, label_names: Sequence[str] | None = None
) -> MultiLabelScores:
    """Score predicted label sets against gold ones: per label, micro, macro, subset accuracy.

    Parameters
    ----------
    y_true
        gold label sets ``(n, n_labels)``: 1 present, 0 absent, -1 unknown (not scored).
    y_pred
        predicted label sets ``(n, n_labels)`` of 0 / 1 (e.g. ``MultiLabelModel.predict``).
    label_names
        names of the labels (default ``"0"``, ``"1"``, ...).

    Returns
    -------
    MultiLabelScores

    Raises
    ------
    InputError
        Shapes differ, or values other than those allowed.
    """
    gold = _label_sets(y_true, "y_true")
    predicted = _label_sets(y_pred, "y_pred", gold.shape)
    k = gold.shape[1]
    names = [str(i) for i in range(k)] if label_names is None else list(label_names)
    if len(names) != k:
        raise InputError(f"label_names has {len(names)} names for {k} labels.")
    known = gold >= 0
    hit = (predicted == 1) & (gold == 1) & known
    said = (predicted == 1) & known
    real = (gold == 1) & known
    rows = []
    for t, name in enumerate(names):
        tp, p, r = int(hit[:, t].sum()), int(said[:, t].sum()), int(real[:, t].sum())
        rows.append(
            {
                "label": name,
                "precision": tp / p if p else 0.0,
                "recall": tp / r if r else 0.0,
                "f1": 2 * tp / (p + r) if p + r else 0.0,
                "support": r,
                "predicted": p,
                "n_scored": int(known[:, t].sum()),
            }
        )
    per_label = pl.DataFrame(rows)
    all_known = known.all(axis=1)
    exact = (predicted == gold).all(axis=1) & all_known
    denominator = int(said.sum() + real.sum())
    return MultiLabelScores(
        per_label=per_label,
        micro_f1=2 * int(hit.sum()) / denominator if denominator else 0.0,
        macro_f1=float(per_label["f1"].mean()) if k else 0.0,
        subset_accuracy=float(exact.sum() / all_known.sum()) if all_known.any() else 0.0,
        n_assets=int(known.any(axis=1).sum()),
    )


def multilabel_lf_summary(votes: MultiLabelVoteMatrix, gold: Any = None) -> pl.DataFrame:
    """The LF summary of every label: one row per (label, LF that may vote on it).

    Columns: ``label``, ``lf``, ``coverage`` (share of assets it voted on for this label),
    ``for`` / ``against`` (shares voting each way), ``conflicts`` (share of assets where it
    disagrees with another LF on this label) and, with ``gold`` label sets ``(n, n_labels)``
    (-1 unknown), ``accuracy`` of its votes on the rows with known gold (null if none).

    Examples
    --------
    >>> import numpy as np, polars as pl
    >>> vm = MultiLabelVoteMatrix(votes=np.array([[[1], [-1]], [[1], [0]]], dtype=np.int8),
    ...     lf_names=("a", "b"), label_names=("cat",), asset_ids=pl.Series([0, 1]))
    >>> multilabel_lf_summary(vm, gold=[[1], [1]])["accuracy"].to_list()
    [1.0, 0.0]
    """
    n = len(votes)
    gold_sets = None if gold is None else _label_sets(gold, "gold", (n, len(votes.label_names)))
    rows = []
    for t, label in enumerate(votes.label_names):
        columns = votes.lfs_for(t)
        sub = votes.votes[:, columns, t]
        has_for, has_against = (sub > 0).any(axis=1), (sub < 0).any(axis=1)
        disputed = has_for & has_against
        for c, j in enumerate(columns):
            v = sub[:, c]
            row = {
                "label": label,
                "lf": votes.lf_names[j],
                "coverage": float((v != 0).mean()) if n else 0.0,
                "for": float((v > 0).mean()) if n else 0.0,
                "against": float((v < 0).mean()) if n else 0.0,
                "conflicts": float(((v != 0) & disputed).mean()) if n else 0.0,
            }
            if gold_sets is not None:
                scored = (v != 0) & (gold_sets[:, t] >= 0)
                right = (v[scored] > 0) == (gold_sets[scored, t] == 1)
                row["accuracy"] = float(right.mean()) if scored.any() else None
            rows.append(row)
    schema = {
        "label": pl.String,
        "lf": pl.String,
        "coverage": pl.Float64,
        "for": pl.Float64,
        "against": pl.Float64,
        "conflicts": pl.Float64,
    }
    if gold_sets is not None:
        schema["accuracy"] = pl.Float64
    return pl.DataFrame(rows, schema=schema)


def multilabel_table(
    votes: MultiLabelVoteMatrix,
    proba: Any,
    *,
    thresholds: Any = 0.5,
    review_margin: float = 0.1,
    model_proba: Any = None,
    run_id: str | None = None,
    model_version: str | None = None,
    created_at: dt.datetime | None = None,
) -> pl.DataFrame:
    """The enriched table of a multi-label task: a probability column per label plus the set.

    Parameters
    ----------
    votes
        the multi-label votes (for asset ids and label names).
    proba
        ``(n, n_labels)`` probabilities (``MultiLabelModel.predict_proba``).
    thresholds
        one threshold, or one per label (``MultiLabelModel.thresholds_``).
    review_margin
        an asset is flagged for review when a label's probability is within this distance
        of its threshold, or LFs voted both for and against one of its labels.
    model_proba
        optional end-model probabilities ``(n, n_labels)`` (e.g.
        ``MultiLabelEndModel.oof_proba_``): adds ``model_p_<label>`` and ``model_labels``
        (the set at the same thresholds).
    run_id, model_version, created_at
        with ``run_id``, the lineage columns of :func:`enrich.enriched_table` follow: each
        LF's votes as ``vote_<lf>`` (List[Int8], one +1 / -1 / 0 per label), ``run_id``,
        ``model_version``, ``lf_versions`` (JSON object name -> version) and
        ``created_at`` (UTC; now by default).

    Returns
    -------
    polars.DataFrame
        ``asset_id``, ``p_<label>`` (Float64) per label, ``labels`` (List[String], the
        predicted set), ``n_labels``, ``voted`` (bool: some LF voted on some label),
        ``conflict`` (bool), ``uncertain_labels`` (List[String]) and ``review`` (bool);
        then the optional model and lineage columns.

    Examples
    --------
    >>> import numpy as np, polars as pl
    >>> vm = MultiLabelVoteMatrix(votes=np.array([[[1, 0]], [[-1, 1]]], dtype=np.int8),
    ...     lf_names=("a",), label_names=("cat", "dog"), asset_ids=pl.Series(["x", "y"]))
    >>> multilabel_table(vm, [[0.9, 0.2], [0.1, 0.55]])["labels"].to_list()
    [['cat'], ['dog']]
    """
    names = votes.label_names
    p = np.asarray(proba, dtype=float)
    if p.shape != (len(votes), len(names)):
        raise InputError(
            f"proba must have shape (n_assets, n_labels) = {(len(votes), len(names))}, "
            f"got {p.shape}."
        )
    cut = np.broadcast_to(np.asarray(thresholds, dtype=float), (len(names),))
    chosen = p >= cut
    uncertain = np.abs(p - cut) < review_margin
    v = votes.votes
    conflict = ((v > 0).any(axis=1) & (v < 0).any(axis=1)).any(axis=1)
    columns: dict[str, Any] = {"asset_id": votes.asset_ids.alias("asset_id")}
    for t, name in enumerate(names):
        columns[f"p_{name}"] = p[:, t]
    names_array = np.array(names, dtype=object)
    frame = pl.DataFrame(columns).with_columns(
        pl.Series("labels", [list(names_array[row]) for row in chosen], pl.List(pl.String)),
        pl.Series("n_labels", chosen.sum(axis=1).astype(np.int64)),
        pl.Series("voted", (v != 0).any(axis=(1, 2))),
        pl.Series("conflict", conflict),
        pl.Series(
            "uncertain_labels", [list(names_array[row]) for row in uncertain], pl.List(pl.String)
        ),
    )
    frame = frame.with_columns(
        review=pl.col("conflict") | (pl.col("uncertain_labels").list.len() > 0)
    )
    if model_proba is not None:
        q = np.asarray(model_proba, dtype=float)
        if q.shape != p.shape:
            raise InputError(f"model_proba must have shape {p.shape}, got {q.shape}.")
        frame = frame.with_columns(
            *[pl.Series(f"model_p_{name}", q[:, t]) for t, name in enumerate(names)],
            pl.Series(
                "model_labels", [list(names_array[row]) for row in q >= cut], pl.List(pl.String)
            ),
        )
    if run_id is None:
        return frame
    n = len(votes)
    lineage = pl.DataFrame(
        {
            **{
                f"vote_{lf}": pl.Series(votes.votes[:, j, :], dtype=pl.List(pl.Int8))
                for j, lf in enumerate(votes.lf_names)
            },
            "run_id": [run_id] * n,
            "model_version": [model_version or "enrich.MultiLabelModel"] * n,
            "lf_versions": [json.dumps(dict(zip(votes.lf_names, votes.lf_versions, strict=False)))]
            * n,
            "created_at": pl.Series(
                [created_at or dt.datetime.now(dt.UTC)] * n, dtype=pl.Datetime("us", "UTC")
            ),
        }
    )
    return pl.concat([frame, lineage], how="horizontal")
