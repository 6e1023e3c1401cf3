"""Why an asset is queued for review: each reason with its severity, read off the enriched table.

:func:`enrich.curation.review.review_queue` adds the weighted severities of these reasons.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import polars as pl

from enrich._internal.frames import as_polars, require_columns, require_unique_ids
from enrich.errors import InputError, MissingColumnError

__all__ = [
    "Inputs",
    "agreement_frame",
    "keyed",
    "model_frame",
    "reasons_of",
    "remaining_loss",
    "scores_of",
    "text_like",
]


@dataclass(frozen=True)
class Inputs:
    """Everything the reasons are computed from, validated, keyed by ``asset_id``."""

    table: pl.DataFrame
    base: pl.DataFrame
    has_names: bool
    low_confidence: float
    model: pl.DataFrame | None
    agreement: pl.DataFrame | None
    min_agreement: float
    candidates: pl.DataFrame | None
    suspects: pl.DataFrame | None = None
    #: ``lf_conflict`` severity: ``"against_label"`` (share of the votes against the label)
    #: or ``"split"`` (refit: how evenly the LF votes split, whatever the label; and
    #: ``no_lf_votes`` scored by how evenly the model's probabilities split)
    conflict_severity: str = "against_label"
    #: refit: class counts (one per ``proba_*`` column) of the reviewed labels of assets no
    #: LF voted on (``gold=``); None without them
    unvoted_gold: np.ndarray | None = None

    def restricted_to(self, ids: pl.Series) -> Inputs:
        """Return the inputs of the assets in ``ids`` only."""
        keep = pl.col("asset_id").is_in(ids.implode())

        def cut(frame: pl.DataFrame | None) -> pl.DataFrame | None:
            return None if frame is None else frame.filter(keep)

        return replace(
            self,
            table=self.table.filter(keep),
            base=self.base.filter(keep),
            model=cut(self.model),
            agreement=cut(self.agreement),
            candidates=cut(self.candidates),
            suspects=cut(self.suspects),
        )


def scores_of(inputs: Inputs, weight: Mapping[str, float]) -> pl.DataFrame:
    """``asset_id`` and ``score`` of every asset whose score is positive.

    The reasons read off the enriched table are added up row by row (no grouping by asset
    id, which costs most on large tables); the others are grouped by id and joined.
    """
    table = inputs.table
    score = np.zeros(table.height)
    rows = _row_reasons(
        table,
        inputs.low_confidence,
        details=False,
        conflict_severity=inputs.conflict_severity,
        unvoted_gold=inputs.unvoted_gold,
    )
    for reason, mask, severity, _ in rows:
        sev = _severity(severity).to_numpy()
        if reason in ("lf_conflict", "no_lf_votes") and inputs.conflict_severity == "split":
            # refit: the score is a vote pattern's stratum weight (Neyman allocation), in
            # proportion to how evenly its votes split (for assets without votes: the
            # model's probabilities) -- no floor
            score[mask.to_numpy()] += weight[reason] * sev
        else:
            score[mask.to_numpy()] += _points(weight[reason], sev)
    scored = table.select("asset_id", pl.Series("score", score))
    others = _other_reasons(inputs, details=False)
    if others:
        points = _points(
            pl.col("reason").replace_strict(weight, return_dtype=pl.Float64), pl.col("severity")
        )
        extra = (
            pl.concat(others, how="vertical_relaxed")
            .group_by("asset_id")
            .agg(points.sum().alias("_extra"))
        )
        scored = scored.join(extra, on="asset_id", how="full", coalesce=True).select(
            "asset_id", pl.col("score").fill_null(0.0) + pl.col("_extra").fill_null(0.0)
        )
    return scored.with_columns(pl.col("score").round(9)).filter(pl.col("score") > 0)


def _points(weight: Any, severity: Any) -> Any:
    """Return what a reason adds to an asset's score (arrays or polars expressions alike)."""
    return weight * (0.5 + 0.5 * severity)


def reasons_of(inputs: Inputs, *, details: bool) -> pl.DataFrame:
    """One row per (asset, reason): ``asset_id``, ``reason``, ``severity``, ``detail``.

    ``detail`` (the readable text) is only written when ``details`` is true.
    """
    ids = inputs.table["asset_id"]
    rows = _row_reasons(
        inputs.table,
        inputs.low_confidence,
        details=details,
        conflict_severity=inputs.conflict_severity,
        unvoted_gold=inputs.unvoted_gold,
    )
    parts = [
        _reason(ids.filter(mask), reason, severity, notes) for reason, mask, severity, notes in rows
    ]
    return pl.concat([*parts, *_other_reasons(inputs, details=details)], how="vertical_relaxed")


def _row_reasons(
    table: pl.DataFrame,
    low_confidence: float,
    *,
    details: bool,
    conflict_severity: str,
    unvoted_gold: np.ndarray | None = None,
) -> list[tuple[str, pl.Series, pl.Series, list[str] | None]]:
    """Return the reasons read off the enriched table.

    Each is ``(reason, rows it applies to, severity of those rows, their readable details or
    None)``.
    """
    confidence = table["confidence"].cast(pl.Float64)
    low = (confidence < low_confidence).fill_null(False)  # no label: no_lf_votes, not this
    low_notes = (
        [f"confidence {c:.2f} < {low_confidence:g}" for c in confidence.filter(low)]
        if details
        else None
    )
    out = [("low_confidence", low, 1 - confidence.filter(low) / low_confidence, low_notes)]
    conflict = table["conflict"].fill_null(False)
    severity, notes = _conflict_severity(
        table.filter(conflict), details=details, split=conflict_severity == "split"
    )
    out.append(("lf_conflict", conflict, severity, notes))
    if "all_abstain" in table.columns:
        empty = table["all_abstain"].fill_null(False)
        n_empty = int(empty.sum())
        if conflict_severity == "split":
            severity, notes = _belief_split(table.filter(empty), unvoted_gold, details=details)
        else:
            severity, notes = _ones(n_empty), ["no LF voted"] * n_empty if details else None
        out.append(("no_lf_votes", empty, severity, notes))
    return out


def _belief_split(
    table: pl.DataFrame, gold_counts: np.ndarray | None, *, details: bool
) -> tuple[pl.Series, list[str] | None]:
    """How much is left to learn about the class of assets no LF voted on.

    The share of probability outside the model's likeliest class over its value for an even
    split (``1 - 1/k``): 1 where the model cannot tell the class of such assets (its class
    balance is flat), 0 where it is sure. The counterpart of a conflict's vote split: the
    gold of assets without votes is what tells the label model their class. With reviewed
    labels of such assets (``gold_counts``), that is scaled by :func:`remaining_loss`. Without
    ``proba_*`` columns the split is unknown and counts as 1.
    """
    columns = [c for c in table.columns if c.startswith("proba_")]
    if len(columns) < 2:
        return _ones(table.height), ["no LF voted"] * table.height if details else None
    proba = table.select(columns).to_numpy().astype(np.float64)
    top = proba.max(axis=1) if table.height else np.zeros(0)
    even = 1.0 - 1.0 / len(columns)
    split = np.clip((1.0 - top) / even, 0.0, 1.0)
    left = 1.0
    if gold_counts is not None and gold_counts.sum() > 0 and table.height:
        left = remaining_loss(gold_counts, int(proba.mean(axis=0).argmax()))
        split = np.minimum(1.0, split * left)
    notes = None
    if details:
        reviewed = (
            ""
            if left == 1.0
            else f"; {int(gold_counts.sum())} reviewed leave {left:.0%} of the expected loss"
        )
        notes = [
            f"no LF voted (the model's likeliest class has probability {t:.2f}{reviewed})"
            for t in top
        ]
    return pl.Series(split), notes


def remaining_loss(gold_counts: np.ndarray, current: int, *, draws: int = 16384) -> float:
    """Expected loss of one class for a group of assets, given their reviewed labels.

    The label model gives every asset without votes one class, ``current``. With ``theta``
    the unknown class mix of those assets, labelling them all ``current`` loses
    ``max(theta) - theta[current]`` of them against the best single class. Under a flat
    Dirichlet prior updated by the reviewed labels' class counts (the posterior
    ``Dirichlet(1 + gold_counts)``), the expected loss is divided by its value before any
    review, ``(H_k - 1) / k`` (``H_k`` the k-th harmonic number): the share of the loss
    further labels of the group can still recover (the expected value of perfect
    information, Raiffa & Schlaifer 1961). It falls towards 0 as the reviewed labels settle
    the mix on ``current`` or show it even (a coin flip, whichever class is taken), and
    exceeds 1 while they name another class more often than ``current``.

    >>> even, other = np.array([25, 25]), np.array([5, 20])
    >>> round(remaining_loss(even, 0), 1), round(remaining_loss(other, 0), 1)
    (0.2, 2.2)
    """
    k = gold_counts.size
    rng = np.random.default_rng(0)
    theta = rng.dirichlet(1.0 + np.asarray(gold_counts, dtype=np.float64), size=draws)
    posterior = float((theta.max(axis=1) - theta[:, current]).mean())
    prior = (np.sum(1.0 / np.arange(1, k + 1)) - 1.0) / k
    return float(posterior / prior)


def _other_reasons(inputs: Inputs, *, details: bool) -> list[pl.DataFrame]:
    """The reasons that come with the optional inputs (model, annotators, candidates)."""
    parts = []
    if inputs.model is not None:
        parts.append(_model_reason(inputs.base, inputs.model, details=details))
    if inputs.agreement is not None:
        parts.append(_agreement_reason(inputs.agreement, inputs.min_agreement, details=details))
    if inputs.candidates is not None:
        parts.append(_candidate_reason(inputs.candidates, details=details))
    if inputs.suspects is not None:
        parts.append(_suspect_reason(inputs.suspects, details=details))
    return parts


def _reason(
    ids: pl.Series, reason: str, severity: pl.Series, details: list[str] | None
) -> pl.DataFrame:
    detail = (
        pl.Series("detail", details, dtype=pl.String)
        if details is not None
        else pl.lit(None, dtype=pl.String).alias("detail")
    )
    return pl.DataFrame(
        {"asset_id": ids, "severity": _severity(severity)},
        schema={"asset_id": ids.dtype, "severity": pl.Float64},
    ).select("asset_id", pl.lit(reason, dtype=pl.String).alias("reason"), "severity", detail)


def _severity(severity: pl.Series) -> pl.Series:
    """Severities as floats in [0, 1]; unknown (NaN or null) counts as 1."""
    return severity.cast(pl.Float64).fill_nan(1.0).fill_null(1.0).clip(0, 1)


def _ones(n: int) -> pl.Series:
    return pl.repeat(1.0, n, dtype=pl.Float64, eager=True)


def _conflict_severity(
    table: pl.DataFrame, *, details: bool, split: bool = False
) -> tuple[pl.Series, list[str] | None]:
    """Share of the LF votes against each asset's label (1.0 without vote columns).

    With ``split``, how evenly the votes split instead, whatever the label: the share of the
    votes outside the most voted class over its value for an even split between the classes
    voted for (``1 - 1/c`` with ``c`` of them) -- 1 for a tie, 2/3 for two votes to one.
    """
    vote_columns = [c for c in table.columns if c.startswith("vote_")]
    if not vote_columns:
        return _ones(table.height), ["LFs disagree"] * table.height if details else None
    votes = table.select(vote_columns).to_numpy()
    label = table["label"].fill_null(-1).to_numpy()[:, None]
    voted = votes != -1
    against = (voted & (votes != label)).sum(axis=1)
    n_votes = voted.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(n_votes > 0, against / np.maximum(n_votes, 1), 1.0)
    if split and voted.any():
        classes = np.unique(votes[voted])
        per_class = np.stack([(votes == c).sum(axis=1) for c in classes], axis=1)
        top = per_class.max(axis=1)
        # the largest share outside the top class with these votes: an even split over the
        # classes voted for
        even = 1.0 - 1.0 / np.maximum((per_class > 0).sum(axis=1), 1)
        outside = 1.0 - top / np.maximum(n_votes, 1)
        share = np.where(even > 0, outside / np.where(even > 0, even, 1.0), 1.0)
        notes = (
            [
                f"LFs disagree (votes split {t} to {v - t})"
                for t, v in zip(top.tolist(), n_votes.tolist(), strict=True)
            ]
            if details
            else None
        )
        return pl.Series(share.astype(np.float64)), notes
    notes = (
        [
            f"LFs disagree ({a} of {v} votes against the label)"
            for a, v in zip(against.tolist(), n_votes.tolist(), strict=True)
        ]
        if details
        else None
    )
    return pl.Series(share.astype(np.float64)), notes


def model_frame(predictions: Any, ids_dtype: pl.DataType) -> pl.DataFrame:
    """Return the model predictions keyed by asset id, checked (``label`` or ``label_name``)."""
    frame = keyed(predictions, "model_predictions", ids_dtype)
    if "label" not in frame.columns and "label_name" not in frame.columns:
        raise MissingColumnError(
            "model_predictions needs a 'label' column (class id) or 'label_name'; it has "
            f"{frame.columns}"
        )
    require_unique_ids(frame["asset_id"], "model_predictions")
    if "label" in frame.columns and not frame.schema["label"].is_integer():
        raise InputError(
            f"model_predictions 'label' must hold class ids (integers), got dtype "
            f"{frame.schema['label']}; put class names in a 'label_name' column instead"
        )
    return frame


def _model_reason(base: pl.DataFrame, frame: pl.DataFrame, *, details: bool) -> pl.DataFrame:
    key = "label" if "label" in frame.columns else "label_name"
    if key not in base.columns:
        raise MissingColumnError(
            "model_predictions gives 'label_name' but the enriched table has no 'label_name' "
            "column to compare with; give the model's class ids as 'label'"
        )
    cols = ["asset_id", pl.col(key).alias("_model")]
    has_conf = "confidence" in frame.columns
    if has_conf:
        cols.append(pl.col("confidence").cast(pl.Float64).alias("_model_conf"))
    joined = base.join(frame.select(cols), on="asset_id", how="inner", maintain_order="left")
    differ = joined.filter(
        pl.col("_model").is_not_null() & (pl.col("_model") != pl.col(key)).fill_null(True)
    )
    severity = differ["_model_conf"] if has_conf else _ones(differ.height)
    notes = (
        [
            f"model says {m!r}, label is {o!r}"
            for m, o in zip(differ["_model"].to_list(), differ[key].to_list(), strict=True)
        ]
        if details
        else None
    )
    return _reason(differ["asset_id"], "model_disagreement", severity, notes)


def agreement_frame(frame: Any, ids_dtype: pl.DataType) -> pl.DataFrame:
    """Return the annotators agreement per asset, keyed by asset id and checked."""
    table = keyed(frame, "annotations_agreement", ids_dtype)
    require_columns(table, [("agreement", "annotations_agreement")], what="argument")
    require_unique_ids(table["asset_id"], "annotations_agreement")
    agreement = table["agreement"].cast(pl.Float64)
    bad = (agreement.is_nan() | (agreement < 0) | (agreement > 1)).fill_null(False)
    if bad.any():
        i = int(bad.arg_true()[0])
        raise InputError(
            f"annotations_agreement has agreement {agreement[i]!r} for asset "
            f"{table['asset_id'][i]!r}; agreement must be a share in [0, 1]"
        )
    return table.with_columns(agreement.alias("agreement"))


def _agreement_reason(table: pl.DataFrame, min_agreement: float, *, details: bool) -> pl.DataFrame:
    agreement = table["agreement"]
    low = (agreement < min_agreement).fill_null(False)
    return _reason(
        table["asset_id"].filter(low),
        "annotator_disagreement",
        1 - agreement.filter(low),
        (
            [f"annotator agreement {a:.2f} < {min_agreement:g}" for a in agreement.filter(low)]
            if details
            else None
        ),
    )


def _candidate_reason(table: pl.DataFrame, *, details: bool) -> pl.DataFrame:
    score = (
        pl.col("score").cast(pl.Float64).clip(0, 1).fill_null(1.0).fill_nan(1.0)
        if "score" in table.columns
        else pl.lit(1.0)
    )
    note = pl.col("reason").cast(pl.String) if "reason" in table.columns else pl.lit(None)
    merged = (
        table.select("asset_id", score.alias("severity"), note.cast(pl.String).alias("note"))
        .group_by("asset_id", maintain_order=True)
        .agg(pl.col("severity").max(), pl.col("note").drop_nulls().unique().sort())
    )
    notes = (
        [
            "gap candidate: " + ", ".join(found) if found else "gap candidate"
            for found in merged["note"].to_list()
        ]
        if details
        else None
    )
    return _reason(merged["asset_id"], "gap_candidate", merged["severity"], notes)


def _suspect_reason(table: pl.DataFrame, *, details: bool) -> pl.DataFrame:
    require_unique_ids(table["asset_id"], "suspect_labels")
    quality = (
        table["label_quality"].cast(pl.Float64)
        if "label_quality" in table.columns
        else pl.Series([None] * table.height, dtype=pl.Float64)
    )
    notes = None
    if details:
        key = next(
            (c for c in ("suggested_label_name", "suggested_label") if c in table.columns), None
        )
        suggested = table[key].to_list() if key else [None] * table.height
        notes = [
            "gold label looks wrong"
            + ("" if q is None else f" (label quality {q:.2f})")
            + ("" if s is None else f"; model suggests {s!r}")
            for q, s in zip(quality.to_list(), suggested, strict=True)
        ]
    return _reason(table["asset_id"], "gold_suspect", 1 - quality, notes)


def keyed(frame: Any, what: str, ids_dtype: pl.DataType) -> pl.DataFrame:
    """Return ``frame`` as polars with an ``asset_id`` column of the table id type."""
    table = as_polars(frame)
    require_columns(table, [("asset_id", what)], what="argument")
    given = table.schema["asset_id"]
    if given != ids_dtype:
        if not (text_like(given) and text_like(ids_dtype)) and not (
            given.is_integer() and ids_dtype.is_integer()
        ):
            raise InputError(
                f"{what} asset_id has dtype {given} but the enriched table's is {ids_dtype}, "
                "and ids are not converted between numbers and text; cast one of them"
            )
        try:
            table = table.with_columns(pl.col("asset_id").cast(ids_dtype, strict=True))
        except pl.exceptions.PolarsError as exc:
            raise InputError(
                f"{what} asset_id has dtype {table.schema['asset_id']} but the enriched "
                f"table's is {ids_dtype}, and it cannot be converted ({exc})"
            ) from exc
    if table["asset_id"].null_count():
        raise InputError(f"{what} has {table['asset_id'].null_count()} null asset_id(s)")
    return table


def text_like(dtype: pl.DataType) -> bool:
    """Return whether ``dtype`` holds text (string, categorical or enum)."""
    return dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum)
