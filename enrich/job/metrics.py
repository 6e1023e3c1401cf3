"""The figures of a run: class balance, confidence, LF statistics, gold, slices and drift.

Pure functions over the enriched table and the vote patterns; every value is plain JSON (the
run record, the JSON summary and the HTML report show them).

>>> psi([10, 10], [10, 10])
0.0
>>> round(psi([10, 10], [15, 5]), 3)
0.275
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from enrich._internal.vote_arrays import VotePatterns
from enrich.analysis.slices import slice_report
from enrich.analysis.summary import lf_summary
from enrich.votes import VoteMatrix

__all__ = [
    "HIST_BINS",
    "drift",
    "end_model_metrics",
    "histogram_shift",
    "pattern_metrics",
    "psi",
    "run_metrics",
    "slice_metrics",
]

HIST_BINS = 20
"""Bins of the confidence histogram (over [0, 1])."""
CONFIDENCE_SCOPE = "labeled"
"""What the label figures count: only assets with a label (some LF voted). Assets no LF
voted on have no label and no confidence; they are counted on their own
(``n_all_abstain``, ``all_abstain_share``), never in the class balance, the confidence
figures or their drift -- their probabilities are only the class prior, which moves with
every refit."""
_LF_METRICS = (
    "lf",
    "coverage",
    "overlaps",
    "conflicts",
    "correct",
    "incorrect",
    "empirical_accuracy",
    "estimated_accuracy",
    "accuracy_mismatch",
)


def run_metrics(
    enriched: pl.DataFrame,
    *,
    votes: VoteMatrix,
    patterns: VotePatterns,
    labelled: VotePatterns | None,
    model: Any,
    proba: np.ndarray,
    gold: np.ndarray | None,
    classes: Sequence[str],
    compared: pl.DataFrame,
    previous_record: Mapping[str, Any] | None,
    slice_columns: Sequence[str],
    min_slice_size: int,
) -> dict[str, Any]:
    """Every figure the summary and the report show; plain JSON values.

    Parameters
    ----------
    enriched
        The enriched table of every asset (``label``, ``confidence``, ``needs_review``,
        ``all_abstain`` and the slice columns).
    votes
        Every asset's votes (LF and class names).
    patterns, labelled
        The distinct vote rows, and the distinct (votes, gold) rows (None without gold).
    model
        The fitted label model (its ``lf_diagnostics``, when it has them, estimate LF
        accuracy).
    proba
        float (n_assets, k) probabilities of every asset.
    gold
        int gold ids per asset (-1 unknown), or None.
    classes
        The class names.
    compared
        :func:`enrich.job.state.compare_previous` of ``enriched``.
    previous_record
        The previous run's record (None on the first run: no drift).
    slice_columns, min_slice_size
        ``source.slice_columns`` and ``gaps.min_slice_size``.

    Returns
    -------
    dict
    """
    n = enriched.height
    k = len(classes)
    labels = enriched.get_column("label").fill_null(-1).to_numpy()
    # only labeled assets: a row no LF voted on has no label and no confidence
    confidence = enriched.get_column("confidence").drop_nulls().to_numpy()
    counts = np.bincount(labels[labels >= 0], minlength=k)[:k]
    n_labeled = int(counts.sum())
    n_all_abstain = int(enriched.get_column("all_abstain").sum())
    hist, edges = np.histogram(confidence, bins=HIST_BINS, range=(0.0, 1.0))
    has_gold = labelled is not None
    diagnose = model if callable(getattr(model, "lf_diagnostics", None)) else None
    # the summary of the distinct (votes, gold) rows with their counts: that of every row
    rows = labelled if labelled is not None else patterns
    summary = lf_summary(
        rows.patterns[:, : votes.votes.shape[1]],
        rows.patterns[:, -1] if has_gold else None,
        lf_names=votes.lf_names,
        class_names=votes.class_names,
        model=diagnose,
        sample_weight=rows.counts,
    )
    lf_columns = [c for c in _LF_METRICS if c in summary.table.columns]
    metrics: dict[str, Any] = {
        "n_assets": n,
        "class_counts": {c: int(v) for c, v in zip(classes, counts, strict=True)},
        "n_labeled": n_labeled,
        "class_balance": {
            c: (int(v) / n_labeled if n_labeled else 0.0)
            for c, v in zip(classes, counts, strict=True)
        },
        "mean_confidence": float(confidence.mean()) if confidence.size else None,
        "confidence_hist": {"edges": edges.round(4).tolist(), "counts": hist.tolist()},
        "confidence_scope": CONFIDENCE_SCOPE,
        "coverage": summary.totals["coverage"],
        "overlap": summary.totals["overlap"],
        "conflict": summary.totals["conflict"],
        "n_needs_review": int(enriched.get_column("needs_review").sum()),
        "n_all_abstain": n_all_abstain,
        "all_abstain_share": n_all_abstain / n if n else None,
        "lfs": summary.table.select(lf_columns).to_dicts(),
        "gold_accuracy": None,
    }
    if has_gold:
        from enrich.analysis.gold import benchmark  # only runs with gold use it

        scored = benchmark(gold, proba=proba, class_names=list(classes))
        metrics["gold"] = scored.to_dict() | {"per_class": scored.per_class.to_dicts()}
        metrics["gold_accuracy"] = scored.accuracy
    metrics["slices"] = slice_metrics(
        enriched, gold, slice_columns=slice_columns, min_size=min_slice_size
    )
    metrics["drift"] = drift(previous_record, enriched, metrics, classes, compared)
    return metrics


def slice_metrics(
    enriched: pl.DataFrame,
    gold: np.ndarray | None,
    *,
    slice_columns: Sequence[str],
    min_size: int,
) -> dict[str, Any] | None:
    """Label accuracy per slice (confidence where fewer than ``min_size`` gold labels are known).

    None without slice columns or assets.
    """
    slices = list(slice_columns)
    if not slices or enriched.height == 0:
        return None
    frame = enriched.select(["label", "confidence", *slices])
    known = gold is not None and int((gold >= 0).sum()) >= min_size
    if known:
        label = frame.get_column("label").fill_null(-1).to_numpy()
        right = pl.Series("correct", label == gold)
        # judged where gold is known and the asset has a label (no LF vote: no label to judge)
        correct = right.set(pl.Series((gold < 0) | (label < 0)), None)
        report = slice_report(
            frame.with_columns(correct),
            correct="correct",
            slices=slices,
            min_size=min_size,
        )
    else:
        report = slice_report(frame, value="confidence", slices=slices, min_size=min_size)
    return {
        "metric": report.metric_name,
        "overall": report.overall,
        "table": report.table.to_dicts(),
    }


def drift(
    previous_record: Mapping[str, Any] | None,
    enriched: pl.DataFrame,
    metrics: Mapping[str, Any],
    classes: Sequence[str],
    compared: pl.DataFrame,
) -> dict[str, Any] | None:
    """How this run's figures moved since the previous run (None on the first run).

    The class balance and confidence figures count labeled assets only (see
    :data:`CONFIDENCE_SCOPE`); the share of assets no LF voted on moves on its own line,
    ``all_abstain_share_change``. Against a previous run that counted them in (older
    records), those figures are not compared (None, with ``note``).
    """
    if previous_record is None:
        return None
    before = previous_record.get("metrics", {})
    labels = enriched.get_column("label").cast(pl.Int64)
    flipped = int((labels != compared.get_column("_prev_label")).fill_null(False).sum())
    old_cov = {row["lf"]: row["coverage"] for row in before.get("lfs", [])}
    comparable = before.get("confidence_scope") == CONFIDENCE_SCOPE
    before_share = (
        before["n_all_abstain"] / before["n_assets"]
        if before.get("n_all_abstain") is not None and before.get("n_assets")
        else None
    )
    share = metrics.get("all_abstain_share")
    return {
        "previous_run_id": previous_record.get("run_id"),
        "comparable": comparable,
        "note": None
        if comparable
        else (
            "the previous run counted assets without LF votes in the class balance and "
            "confidence figures; they are compared again from the next run on"
        ),
        "class_balance_change": {
            c: metrics["class_balance"][c] - before.get("class_balance", {}).get(c, 0.0)
            for c in classes
        }
        if comparable
        else None,
        "mean_confidence_change": (
            metrics["mean_confidence"] - before["mean_confidence"]
            if comparable
            and before.get("mean_confidence") is not None
            and metrics["mean_confidence"] is not None
            else None
        ),
        "confidence_psi": psi(
            before.get("confidence_hist", {}).get("counts"), metrics["confidence_hist"]["counts"]
        )
        if comparable
        else None,
        "confidence_shift": histogram_shift(
            before.get("confidence_hist", {}).get("counts"),
            metrics["confidence_hist"]["counts"],
            metrics["confidence_hist"]["edges"],
        )
        if comparable
        else None,
        "all_abstain_share_change": (
            share - before_share if share is not None and before_share is not None else None
        ),
        "coverage_change": {
            row["lf"]: (row["coverage"] - old_cov[row["lf"]]) if row["lf"] in old_cov else None
            for row in metrics["lfs"]
        },
        "n_assets_before": before.get("n_assets"),
        "n_labels_flipped": flipped,
    }


def histogram_shift(
    before: Sequence[int] | None, after: Sequence[int], edges: Sequence[float]
) -> float | None:
    """How far the values moved between two histograms: the earth mover's distance.

    The area between the two cumulative distributions, in the values' own unit (for
    confidence: how much confidence moved, on average). Unlike the PSI it does not blow up
    when a mass of equal values moves a little across a bin edge, as confidences that sit on
    a few vote patterns do; it can overstate a move by at most one bin width.

    >>> histogram_shift([10, 0, 0, 0], [0, 10, 0, 0], [0.0, 0.25, 0.5, 0.75, 1.0])
    0.25
    >>> histogram_shift([5, 5], [5, 5], [0.0, 0.5, 1.0])
    0.0
    """
    if not before or len(before) != len(after) or not sum(before) or not sum(after):
        return None
    widths = np.diff(np.asarray(edges, dtype=float))
    if widths.size != len(after):
        return None
    p = np.cumsum(np.asarray(before, dtype=float) / sum(before))
    q = np.cumsum(np.asarray(after, dtype=float) / sum(after))
    return float(np.round(np.sum(np.abs(p - q) * widths), 12))


def psi(before: Sequence[int] | None, after: Sequence[int]) -> float | None:
    """Population stability index between two histograms (0 = same shape)."""
    if not before or len(before) != len(after) or not sum(before) or not sum(after):
        return None
    p = np.asarray(before, dtype=float) / sum(before) + 1e-6
    q = np.asarray(after, dtype=float) / sum(after) + 1e-6
    return float(np.sum((q - p) * np.log(q / p)))


def end_model_metrics(
    enriched: pl.DataFrame,
    *,
    model_proba: np.ndarray,
    label_proba: np.ndarray,
    sampled: np.ndarray,
    gold: np.ndarray | None,
    classes: Sequence[str],
    slice_columns: Sequence[str],
    min_slice_size: int,
) -> dict[str, Any]:
    """The end model's figures: coverage, and agreement with gold and the label model.

    Agreement is scored overall, per class and per slice (``compare_models``), on the
    out-of-fold probabilities of the rows the model trained on and the predictions of the
    others; against the label model only where some LF voted.

    >>> enriched = pl.DataFrame({"label": [0, 1, None], "video": ["a", "a", "b"]})
    >>> p = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]])
    >>> m = end_model_metrics(enriched, model_proba=p, label_proba=p, sampled=np.array(
    ...     [True, True, False]), gold=None, classes=["A", "B"], slice_columns=["video"],
    ...     min_slice_size=1)
    >>> m["n_train"], m["n_labeled_by_model"], m["vs_label_model"]["overall"][0]["accuracy"]
    (2, 1, 1.0)
    """
    from enrich.analysis.model_comparison import compare_models

    labels = enriched.get_column("label").fill_null(-1).to_numpy().astype(np.int64)
    slices = [c for c in slice_columns if c in enriched.columns]
    frame = enriched.select(slices) if slices else None

    def compared(reference: np.ndarray, models: Mapping[str, np.ndarray]) -> dict[str, Any]:
        result = compare_models(
            reference,
            models,
            class_names=list(classes),
            frame=frame,
            slices=slices or None,
            min_size=min_slice_size,
        )
        return {
            "overall": _plain(result.overall),
            "per_class": _plain(result.per_class),
            "slices": _plain(result.slices) if result.slices is not None else [],
        }

    out: dict[str, Any] = {
        "n_train": int(sampled.sum()),
        "n_labeled_by_model": int((labels < 0).sum()),
        "class_counts": {
            c: int(v)
            for c, v in zip(
                classes,
                np.bincount(model_proba.argmax(axis=1), minlength=len(classes)),
                strict=True,
            )
        },
    }
    if (labels >= 0).any():
        out["vs_label_model"] = compared(labels, {"end_model": model_proba})
    if gold is not None and (gold >= 0).any():
        out["vs_gold"] = compared(
            gold.astype(np.int64), {"end_model": model_proba, "label_model": label_proba}
        )
    return out


def _plain(table: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows of a small table as JSON values (floats rounded, NaN as null)."""
    rounded = table.with_columns(
        pl.col(c).round(4).fill_nan(None) for c, t in table.schema.items() if t.is_float()
    )
    return rounded.to_dicts()


def pattern_metrics(
    rows: pl.DataFrame,
    outputs: pl.DataFrame,
    *,
    patterns: VotePatterns,
    labelled: VotePatterns | None,
    model: Any,
    pattern_proba: np.ndarray,
    classes: Sequence[str],
    lf_names: Sequence[str],
    previous_record: Mapping[str, Any] | None,
    slice_columns: Sequence[str],
    min_slice_size: int,
) -> dict[str, Any]:
    """The figures of :func:`run_metrics` from counts, with no per-asset frame.

    Used when Dask workers hold the assets: every figure is a function of each asset's
    vote pattern, gold label and slice values, so counts of their distinct combinations
    give the same class balance, confidence histogram, LF statistics, gold scores, slice
    figures and drift (floating-point sums aside).

    Parameters
    ----------
    rows
        Distinct (``vote_<lf>``..., ``gold`` Int64 with -1 unknown, slice columns,
        ``_prev_label``) rows with their ``count``.
    outputs
        The enriched table of each distinct vote pattern (row ``i`` = pattern ``i``).
    patterns, labelled
        The distinct vote rows and the distinct (votes, gold) rows with their counts.
    model
        The fitted label model.
    pattern_proba
        float (n_patterns, k) probabilities of each pattern.
    classes, lf_names
        The class and LF names.
    previous_record
        The previous run's record (None on the first run).
    slice_columns, min_slice_size
        ``source.slice_columns`` and ``gaps.min_slice_size``.

    Returns
    -------
    dict
    """
    k = len(classes)
    vote_cols = [f"vote_{n}" for n in lf_names]
    index = outputs.select(vote_cols).with_row_index("_pattern")
    joined = (
        rows.join(index, on=vote_cols, how="left")
        if vote_cols
        else rows.with_columns(pl.lit(0, dtype=pl.UInt32).alias("_pattern"))
    )
    pat = joined.get_column("_pattern").to_numpy().astype(np.int64)
    weight = joined.get_column("count").to_numpy().astype(np.int64)
    label = outputs.get_column("label").fill_null(-1).to_numpy().astype(np.int64)[pat]
    conf = outputs.get_column("confidence").cast(pl.Float64).fill_null(np.nan).to_numpy()[pat]
    review = outputs.get_column("needs_review").to_numpy()[pat]
    abstain = outputs.get_column("all_abstain").to_numpy()[pat]
    n = int(weight.sum())
    has = label >= 0
    counts = np.bincount(label[has], weights=weight[has], minlength=k)[:k].round().astype(int)
    n_labeled = int(counts.sum())
    known = ~np.isnan(conf)
    hist, edges = np.histogram(conf[known], bins=HIST_BINS, range=(0.0, 1.0), weights=weight[known])
    diagnose = model if callable(getattr(model, "lf_diagnostics", None)) else None
    base = labelled if labelled is not None else patterns
    summary = lf_summary(
        base.patterns[:, : len(lf_names)],
        base.patterns[:, -1] if labelled is not None else None,
        lf_names=tuple(lf_names),
        class_names=tuple(classes),
        model=diagnose,
        sample_weight=base.counts,
    )
    lf_columns = [c for c in _LF_METRICS if c in summary.table.columns]
    n_all_abstain = int(weight[abstain.astype(bool)].sum())
    metrics: dict[str, Any] = {
        "n_assets": n,
        "class_counts": {c: int(v) for c, v in zip(classes, counts, strict=True)},
        "n_labeled": n_labeled,
        "class_balance": {
            c: (int(v) / n_labeled if n_labeled else 0.0)
            for c, v in zip(classes, counts, strict=True)
        },
        "mean_confidence": float(np.average(conf[known], weights=weight[known]))
        if weight[known].sum()
        else None,
        "confidence_hist": {
            "edges": edges.round(4).tolist(),
            "counts": hist.round().astype(int).tolist(),
        },
        "confidence_scope": CONFIDENCE_SCOPE,
        "coverage": summary.totals["coverage"],
        "overlap": summary.totals["overlap"],
        "conflict": summary.totals["conflict"],
        "n_needs_review": int(weight[review.astype(bool)].sum()),
        "n_all_abstain": n_all_abstain,
        "all_abstain_share": n_all_abstain / n if n else None,
        "lfs": summary.table.select(lf_columns).to_dicts(),
        "gold_accuracy": None,
    }
    gold = joined.get_column("gold").fill_null(-1).to_numpy().astype(np.int64)
    if labelled is not None:
        from enrich.analysis.gold import benchmark

        g = gold >= 0
        scored = benchmark(
            np.repeat(gold[g], weight[g]),
            proba=np.repeat(pattern_proba[pat[g]], weight[g], axis=0),
            class_names=list(classes),
        )
        metrics["gold"] = scored.to_dict() | {"per_class": scored.per_class.to_dicts()}
        metrics["gold_accuracy"] = scored.accuracy
    metrics["slices"] = _weighted_slices(
        joined, label, conf, gold, weight, slice_columns=slice_columns, min_size=min_slice_size
    )
    empty = pl.DataFrame({"label": pl.Series([], dtype=pl.Int64)})
    compared = pl.DataFrame({"_prev_label": pl.Series([], dtype=pl.Int64)})
    metrics["drift"] = drift(previous_record, empty, metrics, classes, compared)
    if metrics["drift"] is not None:
        prev = joined.get_column("_prev_label").to_numpy()
        prev_known = ~joined.get_column("_prev_label").is_null().to_numpy()
        new_known = label >= 0
        both = prev_known & new_known
        flipped = both & (np.where(both, prev, -1).astype(np.int64) != label)
        metrics["drift"]["n_labels_flipped"] = int(weight[flipped].sum())
    return metrics


def _weighted_slices(
    rows: pl.DataFrame,
    label: np.ndarray,
    conf: np.ndarray,
    gold: np.ndarray,
    weight: np.ndarray,
    *,
    slice_columns: Sequence[str],
    min_size: int,
) -> dict[str, Any] | None:
    """:func:`slice_metrics` from weighted rows (accuracy with enough gold, else confidence)."""
    from enrich.analysis.slices import _intervals, _judge

    slices = list(slice_columns)
    if not slices or int(weight.sum()) == 0:
        return None
    is_rate = int(weight[gold >= 0].sum()) >= min_size
    if is_rate:
        value = np.where((gold < 0) | (label < 0), np.nan, (label == gold).astype(float))
        name = "accuracy"
    else:
        value = conf
        name = "mean confidence"

    def moments(mask: np.ndarray) -> tuple[int, float, float]:
        ok = mask & ~np.isnan(value)
        w = weight[ok].astype(float)
        total = int(w.sum())
        if total == 0:
            return 0, np.nan, np.nan
        mean = float(np.average(value[ok], weights=w))
        if total < 2:
            return total, mean, np.nan
        var = float(np.sum(w * (value[ok] - mean) ** 2) / (total - 1))
        return total, mean, var**0.5

    names, sources, sizes, stats = [], [], [], []
    for column in slices:
        keys = rows.get_column(column)
        distinct = keys.unique()
        with contextlib.suppress(pl.exceptions.PolarsError):
            distinct = distinct.sort(nulls_last=True)
        for key in distinct.to_list():
            mask = (keys.is_null() if key is None else keys == key).fill_null(False).to_numpy()
            names.append(f"{column}={'null' if key is None else key}")
            sources.append(column)
            sizes.append(int(weight[mask].sum()))
            stats.append(moments(mask))
    stats.append(moments(np.ones(weight.size, dtype=bool)))
    table = pl.DataFrame(
        {
            "slice": [*names, "(all)"],
            "source": [*sources, ""],
            "n_assets": [*sizes, int(weight.sum())],
        },
        schema={"slice": pl.String, "source": pl.String, "n_assets": pl.Int64},
    ).hstack(
        _intervals(
            np.array([m[0] for m in stats], dtype=np.int64),
            np.array([m[1] for m in stats], dtype=np.float64),
            np.array([m[2] for m in stats], dtype=np.float64),
            is_rate,
            0.95,
        )
    )
    overall = table.tail(1).select("n", "metric", "ci_low", "ci_high").row(0, named=True)
    table = _judge(table.head(len(names)), overall["metric"], min_size, True)
    return {"metric": name, "overall": overall, "table": table.to_dicts()}
