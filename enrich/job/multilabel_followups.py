"""Each label's gaps, similar assets to fill them, and its review queue, for a multi-label task.

:func:`label_views` makes each label's :func:`~enrich.label_view` once per distinct vote
pattern; :func:`multilabel_gaps` finds each label's gaps for the metrics
(:func:`~enrich.find_gaps_per_label`) and, with the run's index (``[embeddings]``), proposes
similar unsure assets for them (:func:`~enrich.fill_gaps_per_label`); :func:`multilabel_queue`
queues each label's doubtful assets (:func:`~enrich.review_queue_per_label`), the gap
candidates among them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import polars as pl

from enrich.job.job_tasks import JobTask, TasksRunContext
from enrich.multilabel_votes import MultiLabelVoteMatrix

__all__ = ["label_views", "multilabel_gaps", "multilabel_queue"]


def label_views(
    run: TasksRunContext,
    small: pl.DataFrame,
    distinct: MultiLabelVoteMatrix,
    inverse: np.ndarray,
    full: pl.DataFrame,
) -> dict[str, pl.DataFrame] | None:
    """Each label's :func:`~enrich.label_view` with the slices, for the gaps and the queue.

    A view's row is a function of the asset's vote pattern: each is made once per distinct
    pattern (``small``, ``distinct``) and spread to the assets (``inverse``). Their
    ``asset_id`` is the row number: the gaps and a ``purpose = "correct"`` queue are the
    same by row as by id (the queue's ids are mapped back), without hashing, joining and
    sorting the ids once a label.
    """
    config = run.config
    wanted = config.gaps.enabled or (config.review.enabled and config.review.max_items > 0)
    if not wanted or not len(inverse):
        return None
    from enrich.curation.multilabel import label_view

    slices = full.select(config.source.slice_columns).get_columns()
    rows = pl.Series("asset_id", np.arange(len(inverse), dtype=np.int64))
    views = {}
    for label in distinct.label_names:
        view = label_view(small, distinct, label).drop("asset_id")[inverse]
        views[label] = view.insert_column(0, rows).hstack(slices)
    return views


def multilabel_gaps(
    run: TasksRunContext,
    task: JobTask,
    table: pl.DataFrame,
    votes: MultiLabelVoteMatrix,
    full: pl.DataFrame,
    gold: np.ndarray | None,
    views: dict[str, pl.DataFrame] | None,
    *,
    index: Any = None,
) -> tuple[dict[str, Any], pl.DataFrame | None]:
    """Each label's gaps for the metrics (:func:`~enrich.find_gaps_per_label`, ``[gaps]``).

    With the run's index (``[embeddings]``), similar assets flagged for review (no gold)
    are proposed for them by :func:`~enrich.fill_gaps_per_label`, ``gaps.candidates_per_gap``
    per gap, one budget for all labels: ``candidates`` (``label``, ``asset_id``, ``gap``,
    ``score``, ``reason``) and ``allocation`` in the metrics; the same picks, with their row
    number (``_row``), go to each label's review queue.
    """
    settings, slices = run.config.gaps, list(run.config.source.slice_columns)
    if not settings.enabled or not len(votes):
        return {"enabled": False}, None
    from enrich.curation.multilabel import find_gaps_per_label

    ids = votes.asset_ids.alias("asset_id")
    if views is not None:  # rows numbered (label_views)
        ids = pl.Series("asset_id", np.arange(len(votes), dtype=np.int64))
    gold_frame = None
    if gold is not None:
        gold_frame = pl.DataFrame(
            [ids, *(pl.Series(name, gold[:, t]) for t, name in enumerate(task.names))]
        )
    found = find_gaps_per_label(
        table,
        votes,
        data=full.select("asset_id", *slices) if slices else None,
        slices=slices,
        gold=gold_frame,
        views=views,
        confident_above=settings.confident_above,
        min_confident=settings.min_confident,
        min_quality=settings.weak_below,
        min_size=settings.min_slice_size,
    )
    rows = [
        {"label": label, **row}
        for label, gaps in found.items()
        for row in gaps.table.select(
            "gap", "kind", "metric", "value_measured", "target", "deficit", "reason"
        ).to_dicts()
    ]
    summary: dict[str, Any] = {"enabled": True, "gaps": rows, "n_candidates": None}
    n_gaps = sum(len(gaps.gap_ids) for gaps in found.values())
    budget = settings.candidates_per_gap * n_gaps
    if index is None or "index_id" not in full.columns or not n_gaps or budget == 0:
        summary["candidates_note"] = (
            "no embedding index to search ([embeddings] is off)"
            if index is None or "index_id" not in full.columns
            else "no gap to fill"
            if not n_gaps
            else "gaps.candidates_per_gap is 0"
        )
        return summary, None
    found_candidates, picks = _multilabel_candidates(
        table, votes, full, gold, found, index, ids, budget
    )
    summary.update(found_candidates)
    return summary, picks


def _multilabel_candidates(
    table: pl.DataFrame,
    votes: MultiLabelVoteMatrix,
    full: pl.DataFrame,
    gold: np.ndarray | None,
    found: dict[str, Any],
    index: Any,
    ids: pl.Series,
    budget: int,
) -> tuple[dict[str, Any], pl.DataFrame | None]:
    """Similar unsure assets for each label's gaps (:func:`~enrich.fill_gaps_per_label`).

    ``ids`` are the ids the gaps were found under (the row numbers when the label views
    were made by row): the table and votes are searched under them, the picks mapped back.
    Returns the metrics' part and the picks (``label``, ``asset_id``, ``_row``, ``reason``,
    ``score``) or None.
    """
    from enrich.curation.multilabel import fill_gaps_per_label

    unsure = table.get_column("review").to_numpy().copy()
    if gold is not None:
        unsure &= ~(gold >= 0).any(axis=1)
    keyed = table.with_columns(ids.alias("asset_id"))
    matrix = dataclasses.replace(votes, asset_ids=ids)
    pool = pl.DataFrame({"asset_id": ids, "index_id": full.get_column("index_id")}).filter(
        pl.Series(unsure)
    )
    out: dict[str, Any] = {"n_searched": pool.height, "candidates_note": None}
    if pool.height == 0:
        out["n_candidates"] = 0
        out["candidates_note"] = "no unlabeled assets to search: none is flagged for review"
        return out, None
    picked = fill_gaps_per_label(keyed, matrix, index, pool, budget, gaps=found, random_state=0)
    rows = pl.DataFrame(
        {"asset_id": ids, "_id": votes.asset_ids, "_row": np.arange(len(votes), dtype=np.int64)}
    ).join(picked.table, on="asset_id", how="inner", maintain_order="right")
    out["n_candidates"] = len(picked)
    if not len(picked):
        out["candidates_note"] = (
            f"none of the {pool.height:,} unsure assets searched is near a gap's examples"
        )
    out["allocation"] = picked.allocation.to_dicts()
    out["candidates"] = rows.select(
        "label", pl.col("_id").alias("asset_id"), "gap", "score", "reason"
    ).to_dicts()
    picks = rows.select("label", pl.col("_id").alias("asset_id"), "_row", "reason", "score")
    return out, picks if picks.height else None


def multilabel_queue(
    run: TasksRunContext,
    task: JobTask,
    table: pl.DataFrame,
    votes: MultiLabelVoteMatrix,
    settled: np.ndarray | None,
    views: dict[str, pl.DataFrame] | None,
    *,
    candidates: pl.DataFrame | None = None,
) -> pl.DataFrame | None:
    """Each label's review queue (:func:`~enrich.review_queue_per_label`), ``for_label`` named.

    ``candidates`` are the label's gap candidates (``label``, ``asset_id``, ``_row``...),
    queued as :func:`~enrich.review_queue`'s ``candidates``.

    ``review.max_items`` is shared evenly by the labels; settled gold is never queued. With
    ``purpose = "correct"`` the queues rank the assets by row number (their ids mapped back
    after): the same picks in the same order, without hashing and sorting the ids once a label.
    """
    settings = run.config.review
    if not settings.enabled or settings.max_items == 0 or not len(votes):
        return None
    from enrich.curation.multilabel import review_queue_per_label

    ids = votes.asset_ids
    by_row = views is not None and settings.purpose == "correct"
    if by_row:  # the views' rows are numbered (label_views)
        ids = pl.Series("asset_id", np.arange(len(votes), dtype=np.int64))
    else:
        views = None  # "refit" reads the ids: the views by id, made by review_queue_per_label
    exclude = ids.filter(pl.Series(settled)) if settled is not None else None
    if candidates is not None:
        key = "_row" if by_row else "asset_id"
        candidates = candidates.select("label", pl.col(key).alias("asset_id"), "reason", "score")
    queues = review_queue_per_label(
        table,
        votes,
        batch_size=max(1, settings.max_items // len(task.names)),
        views=views,
        candidates=candidates,
        low_confidence=settings.below_confidence,
        exclude=exclude if exclude is not None and exclude.len() else None,
        purpose=settings.purpose,
    )
    frames = [
        q.table.with_columns(
            *([votes.asset_ids.gather(q.table["asset_id"]).alias("asset_id")] if by_row else []),
            pl.lit(task.name).alias("task"),
            pl.lit(label).alias("for_label"),
        )
        for label, q in queues.items()
        if q.table.height
    ]
    return pl.concat(frames, how="diagonal_relaxed") if frames else None
