"""What a run hands to people: gaps, gap-filling candidates and the review queue.

Gaps are the classes and slices short of confident or right labels; with an index, the
candidates are similar unsure assets to label for each; the review queue takes them with the
low-confidence and conflicting assets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from enrich.curation.gaps import find_gaps
from enrich.curation.review import ReviewQueue, review_queue
from enrich.job.config import GapsConfig, ReviewConfig

__all__ = ["gap_candidates", "gold_suspects", "queue_for_review"]


def gap_candidates(
    enriched: pl.DataFrame,
    gold: np.ndarray | None,
    *,
    classes: Sequence[str],
    slice_columns: Sequence[str],
    settings: GapsConfig,
    index: Any = None,
) -> tuple[dict[str, Any], pl.DataFrame | None]:
    """Classes and slices short of confident or right labels, and candidates to fill them.

    With an index, the candidates are similar unsure assets to label for each gap (the
    review queue's gap candidates).

    Parameters
    ----------
    enriched
        The enriched table of every asset (``index_id`` when the run keeps an index).
    gold
        int gold ids per asset (-1 unknown), or None.
    classes, slice_columns
        The class names and ``source.slice_columns``.
    settings
        ``[gaps]``.
    index
        The run's :class:`~embeddings.index.VectorIndex` (None: no candidates).

    Returns
    -------
    (dict, pl.DataFrame or None)
        The gaps' summary for the metrics, and the candidates (``asset_id``, ``reason``,
        ``score``) or None.
    """
    if not settings.enabled or enriched.height == 0:
        return {"enabled": False}, None
    columns = ["asset_id", "label_name", "confidence", *slice_columns]
    columns += ["index_id"] if "index_id" in enriched.columns else []
    gold_table = None
    if gold is not None and (gold >= 0).any():
        known = pl.Series(gold >= 0)
        gold_table = pl.DataFrame(
            {
                "asset_id": enriched.get_column("asset_id").filter(known),
                "label": pl.Series(gold[gold >= 0], dtype=pl.Int64),
            }
        )
    # Every label is measured as it is (one accuracy per slice, as in the report's Slices;
    # rows no LF voted on are unknown, not wrong); only confident labels count towards the
    # confident-label targets, and gaps are filled from the confident ones.
    labels = enriched.select(columns)
    found = find_gaps(
        labels,
        slices=list(slice_columns),
        classes=list(classes),
        gold=gold_table,
        confident_above=settings.confident_above,
        min_confident=settings.min_confident,
        min_quality=settings.weak_below,
        min_size=settings.min_slice_size,
    )
    summary: dict[str, Any] = {
        "enabled": True,
        "gaps": found.table.select(
            "gap", "kind", "metric", "value_measured", "target", "deficit", "reason"
        ).to_dicts(),
        "n_candidates": None,
        # why no similar asset was proposed, when none was (the report says it)
        "candidates_note": None,
    }
    budget = settings.candidates_per_gap * len(found.gap_ids)
    if index is None or not len(found) or budget == 0:
        summary["candidates_note"] = (
            "no embedding index to search ([embeddings] is off)"
            if index is None
            else "no gap to fill"
            if not len(found)
            else "gaps.candidates_per_gap is 0"
        )
        return summary, None
    from enrich.curation.gap_filling import fill_gaps  # only runs with an index use it

    pool = enriched.filter(pl.col("needs_review")).select(columns)
    # Leave out what fill_gaps would drop anyway: gold, confident labels, examples.
    taken = [found.labeled_ids.alias("asset_id"), found.examples.get_column("asset_id")]
    if gold_table is not None:
        taken.append(gold_table.get_column("asset_id"))
    pool = pool.filter(~pl.col("asset_id").is_in(pl.concat(taken).implode()))
    summary["n_searched"] = pool.height
    if pool.height == 0:
        summary["n_candidates"] = 0
        summary["candidates_note"] = (
            "no unlabeled assets to search: every asset not flagged for review already has "
            "a confident label, a gold label, or is one of a gap's examples"
        )
        return summary, None
    picked = fill_gaps(found, index, pool, budget, random_state=0)
    summary["n_candidates"] = len(picked)
    if not len(picked):
        summary["candidates_note"] = (
            f"none of the {pool.height:,} unsure assets searched is near a gap's examples"
        )
    summary["allocation"] = picked.allocation.to_dicts()
    return summary, picked.table.select("asset_id", "reason", "score")


# -- review queue, one line ----------------------------------------------------------------
def queue_for_review(
    enriched: pl.DataFrame,
    settled: np.ndarray | None,
    candidates: pl.DataFrame | None,
    metrics: dict[str, Any],
    *,
    settings: ReviewConfig,
    slice_columns: Sequence[str] = (),
    suspect_labels: pl.DataFrame | None = None,
    gold: np.ndarray | None = None,
    pattern_counts: pl.DataFrame | None = None,
) -> ReviewQueue | None:
    """The review queue of this run (settled gold excluded); its figures go to ``metrics``.

    With ``purpose = "refit"``, the settled assets' ``gold`` class ids (one per row of
    ``enriched``, -1 for none) go to the queue too: those of assets no LF voted on say how
    much more of them is worth reviewing.

    Ties in score are broken at random (seeded) and taken in turns from each value of the
    ``slice_columns`` present in ``enriched``.

    ``suspect_labels`` (:func:`gold_suspects`) are queued as ``gold_suspect`` although
    their gold settles them. ``pattern_counts`` sizes the vote patterns of a refit queue
    when ``enriched`` holds only candidates (see :func:`~enrich.curation.review.review_queue`).

    None when review is off (``settings.enabled``, ``settings.max_items``) or no asset.
    """
    if not settings.enabled or settings.max_items == 0 or enriched.height == 0:
        return None
    exclude = None
    if settled is not None and settled.any():
        exclude = enriched.get_column("asset_id").filter(pl.Series(settled))
        if suspect_labels is not None:  # gold already: the queue's gold_suspect reason
            exclude = exclude.filter(
                ~exclude.is_in(suspect_labels.get_column("asset_id").implode())
            )
    purpose = settings.purpose
    table = enriched
    if purpose == "correct":
        # Every reason the queue gives (low confidence, conflict, no votes) implies
        # needs_review, so only flagged assets (and gap candidates) can be picked: score those
        # alone. ("refit" spreads picks by vote pattern size, so it needs every asset.)
        keep = pl.col("needs_review")
        if candidates is not None:
            keep = keep | pl.col("asset_id").is_in(candidates.get_column("asset_id").implode())
        if suspect_labels is not None:
            keep = keep | pl.col("asset_id").is_in(suspect_labels.get_column("asset_id").implode())
        table = enriched.filter(keep)
    reviewed = None
    if purpose == "refit" and gold is not None and exclude is not None:
        known = settled & (gold >= 0)
        reviewed = pl.DataFrame(
            {
                "asset_id": enriched.get_column("asset_id").filter(pl.Series(known)),
                "label": gold[known],
            }
        ).filter(pl.col("asset_id").is_in(exclude.implode()))  # suspects stay queueable
    queue = review_queue(
        table,
        gold=reviewed,
        batch_size=settings.max_items,
        low_confidence=settings.below_confidence,
        candidates=candidates,
        exclude=exclude,
        purpose=purpose,
        slices=[c for c in slice_columns if c in table.columns],
        suspect_labels=suspect_labels,
        pattern_counts=pattern_counts if purpose == "refit" else None,
    )
    metrics["review"] = {
        "n_queued": len(queue),
        "n_eligible": queue.n_eligible,
        "reason_counts": queue.reason_counts,
    }
    return queue


def gold_suspects(
    asset_ids: pl.Series,
    gold: np.ndarray | None,
    proba: np.ndarray,
    sampled: np.ndarray,
    *,
    classes: Sequence[str],
) -> pl.DataFrame | None:
    """Gold labels the end model's out-of-fold probabilities say are likely wrong (cleanlab).

    Only gold rows the model trained on are checked (their probabilities are out-of-fold).
    None without gold, or with fewer than two gold classes to check.
    """
    from enrich.analysis.label_errors import find_label_errors

    if gold is None:
        return None
    labels = np.where(sampled, gold, -1).astype(np.int64)
    checked = labels[labels >= 0]
    if np.unique(checked).size < 2:
        return None
    errors = find_label_errors(labels, proba, asset_ids=asset_ids, class_names=list(classes))
    return errors.table
