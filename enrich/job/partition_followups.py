"""Gaps, similar assets to fill them, and the review queue of a partitioned run.

Gaps (``metrics.gaps``) are the local engine's: an asset's label and confidence are its vote
pattern's, so the distinct (votes, gold, slice values) counts the fit gathers decide them
(:func:`~enrich.curation.gaps.find_gaps_from_counts`). With an index, similar unsure assets to
fill them are proposed from samples (:mod:`enrich.job.partition_gaps`): each partition sends a
seeded random sample of each gap's examples (confident or gold assets of its class or slice) and
of its unsure assets (flagged for review, not confident, not gold), capped per partition; the
driver merges them under caps of its own (what it holds does not grow with the assets), and one
task on a worker loads the index and runs :func:`~enrich.curation.gap_filling.fill_gaps` with
the job's ``[gaps]`` settings. The picks join the review queue as gap candidates, as on the
local path, but they are not the local engine's picks (a sample is searched; index ids differ);
``metrics.gaps.candidates_sampling`` says how many were sampled and searched.

The review queue is the best of every asset by the local engine's scores: each partition
sends its own queue of ``review.max_items`` (settled assets left out first) and the driver
queues from their union; assets of equal score are picked at random within each partition
first, so ties may be broken otherwise than on the local engine. ``purpose = "refit"``
spreads its picks over the LF vote patterns: each partition sends up to ``review.max_items``
assets of each pattern with a conflict or no vote, with their votes, and the driver
allocates the batch by the whole table's pattern counts (:func:`pattern_sizes`, from the
fit's merged summaries), as the local engine does. A partition whose stored candidates
lack the votes (written under ``purpose = "correct"``) is rewritten once
(:func:`reviews_without`). The reviewed labels of assets without votes weigh those assets
as on the local engine, read from the same counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from enrich._internal.uri import expand_options, join
from enrich.job.config import GapsConfig, JobConfig
from enrich.job.context import RunContext
from enrich.job.followups import queue_for_review

__all__ = [
    "fill_gaps_on_workers",
    "found_gaps",
    "gaps_summary",
    "pattern_sizes",
    "read_review",
    "review_from_partitions",
    "reviews_without",
]


def found_gaps(
    rows: pl.DataFrame,
    outputs: pl.DataFrame,
    *,
    lf_names: Sequence[str],
    classes: Sequence[str],
    slice_columns: Sequence[str],
    settings: GapsConfig,
) -> Any:
    """The gaps the local engine finds, from the partitions' counts (None: gaps are off).

    An asset's label and confidence are its vote pattern's, so the counts of distinct
    (votes, gold, slice values) rows the fit already gathers (``rows``, with their
    ``count``; ``outputs``: the enriched table of each distinct vote pattern) are the
    counts of (label, confidence, gold, slice values) that
    :func:`~enrich.curation.gaps.find_gaps_from_counts` decides the gaps from.
    """
    from enrich.curation.gaps import find_gaps_from_counts

    if not settings.enabled or rows.height == 0:
        return None
    vote_cols = [f"vote_{n}" for n in lf_names]
    joined = (
        rows.join(outputs.select(vote_cols).with_row_index("_pattern"), on=vote_cols, how="left")
        if vote_cols
        else rows.with_columns(pl.lit(0, dtype=pl.UInt32).alias("_pattern"))
    )
    pattern = joined.get_column("_pattern")
    gold = joined.get_column("gold").fill_null(-1).cast(pl.Int64)
    counts = joined.select(*slice_columns, "count").with_columns(
        outputs.get_column("label").gather(pattern).alias("label"),
        outputs.get_column("confidence").gather(pattern).alias("confidence"),
    )
    if bool(((gold >= 0) & (joined.get_column("count") > 0)).any()):
        # as the local engine: gold scores the labels only when some asset has gold
        counts = counts.with_columns(gold.alias("gold"))
    return find_gaps_from_counts(
        counts,
        slices=list(slice_columns),
        classes=list(classes),
        confident_above=settings.confident_above,
        min_confident=settings.min_confident,
        min_quality=settings.weak_below,
        min_size=settings.min_slice_size,
    )


def gaps_summary(found: Any, settings: GapsConfig, *, has_index: bool) -> dict[str, Any]:
    """``metrics.gaps`` before any candidate is proposed (the note says why none would be)."""
    if found is None:
        return {"enabled": False}
    budget = settings.candidates_per_gap * len(found.gap_ids)
    return {
        "enabled": True,
        "gaps": found.table.select(
            "gap", "kind", "metric", "value_measured", "target", "deficit", "reason"
        ).to_dicts(),
        "n_candidates": None,
        "candidates_note": "no embedding index to search ([embeddings] is off)"
        if not has_index
        else "no gap to fill"
        if not len(found)
        else "gaps.candidates_per_gap is 0"
        if budget == 0
        else None,
    }


def fill_gaps_on_workers(
    run: RunContext,
    client: Any,
    found: Any,
    summary: dict[str, Any],
    partition_files: Sequence[tuple[int, Sequence[str]]],
    entry: Mapping[str, Any],
    reviewed: pl.DataFrame | None,
    review_columns: Sequence[str],
) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
    """Similar unsure assets for the gaps, from the partitions' samples (on the workers).

    Each partition samples its gaps' examples and its unsure assets
    (:func:`~enrich.job.partition_gaps.sample_partition`), the driver merges the samples
    under caps, and one worker task loads the index and runs ``fill_gaps`` on them
    (:func:`~enrich.job.partition_gaps.fill_on_worker`). Fills ``summary`` (``metrics.gaps``)
    and returns the picks (``asset_id``, ``reason``, ``score``) and their review rows.
    """
    from enrich.job.partition_gaps import (
        EXAMPLES_PER_GAP,
        MAX_EXAMPLES_PER_GAP,
        MAX_POOL,
        POOL_PER_PARTITION,
        GapSample,
        fill_on_worker,
        gap_regions,
        merge_samples,
        sample_partition,
    )

    config = run.config
    budget = config.gaps.candidates_per_gap * len(found.gap_ids)
    # what the driver gathers stays within about twice the merged caps, however many
    # partitions (and assets) there are
    n_parts = max(len(partition_files), 1)
    per_gap = max(1, min(EXAMPLES_PER_GAP, -(-2 * MAX_EXAMPLES_PER_GAP // n_parts)))
    per_pool = max(1, min(POOL_PER_PARTITION, -(-2 * MAX_POOL // n_parts)))
    sample = GapSample(
        table=str(run.paths.table),
        storage_options=run.paths.table.delta_options(),
        regions=gap_regions(found),
        classes=tuple(run.classes),
        confident_above=config.gaps.confident_above,
        reviewed=reviewed,
        columns=tuple(review_columns),
        examples_per_gap=per_gap,
        pool_size=per_pool,
    )
    samples = client.gather(
        [
            client.submit(sample_partition, tuple(files), index, sample, pure=False)
            for index, files in partition_files
        ]
    )
    examples, pool, n_unsure = merge_samples(samples)
    summary["n_searched"] = pool.height
    summary["candidates_sampling"] = {
        "n_unsure": n_unsure,
        "n_searched": pool.height,
        "n_examples": examples.height,
        "examples_per_gap_per_partition": per_gap,
        "unsure_per_partition": per_pool,
        "max_examples_per_gap": MAX_EXAMPLES_PER_GAP,
        "max_searched": MAX_POOL,
        "how": "each partition sends a seeded random sample of each gap's examples "
        "(confident or gold assets of its class or slice) and of its unsure assets "
        "(flagged for review, not confident, not gold); fill_gaps searches the merged, "
        "capped samples in the job's index on a worker",
    }
    if pool.height == 0:
        summary["n_candidates"] = 0
        summary["candidates_note"] = (
            "no unlabeled assets to search: every indexed asset not flagged for review "
            "already has a confident or a gold label"
        )
        return None, None
    options = expand_options(run.paths.embeddings.storage_options) or None
    picks, allocation = client.submit(
        fill_on_worker,
        dict(entry),
        options,
        found,
        examples,
        pool,
        budget,
        slices=tuple(config.source.slice_columns),
        pure=False,
    ).result()
    summary["n_candidates"] = picks.height
    summary["allocation"] = allocation
    if not picks.height:
        summary["candidates_note"] = (
            f"none of the {pool.height:,} unsure assets searched is near a gap's examples"
        )
        return None, None
    rows = pool.filter(pl.col("asset_id").is_in(picks.get_column("asset_id").implode()))
    return picks, rows.select([c for c in review_columns if c in rows.columns])


def read_review(table: str, entry: Mapping[str, Any], storage: Any) -> pl.DataFrame:
    """An unchanged partition's stored review candidates."""
    from enrich.job.worker import review_path

    path = join(table, review_path(entry["summary"]))
    return pl.read_parquet(path, storage_options=storage)


def reviews_without(
    table: str, unchanged: Mapping[str, Mapping[str, Any]], columns: Sequence[str], storage: Any
) -> set[str]:
    """The unchanged partitions whose stored review candidates lack some of ``columns``.

    A refit queue needs its candidates' votes: a partition written under ``purpose =
    "correct"`` is rewritten once so that its candidates carry them.
    """
    from enrich.job.worker import review_path

    def has_all(entry: Mapping[str, Any]) -> bool:
        path = join(table, review_path(entry["summary"]))
        names = pl.scan_parquet(path, storage_options=storage).collect_schema().names()
        return set(columns) <= set(names)

    return {key for key, entry in unchanged.items() if not has_all(entry)}


def pattern_sizes(
    fit_rows: pl.DataFrame, vote_columns: Sequence[str], config: JobConfig
) -> pl.DataFrame:
    """Each vote pattern's assets over the whole table, and its settled ones, by gold class.

    ``fit_rows`` are the merged fit summaries (counts by votes, gold, ...); the result has
    a row per (pattern, ``label``), ``label`` the gold class id (-1: none), as
    :func:`~enrich.curation.review.review_queue` reads ``pattern_counts``. An asset is
    settled as on the local engine when its gold counts (``gold.use_in_fit``, or reviewed
    gold without a source column); with a source column left out of the fit, its reviewed
    assets are not told apart and count as unsettled.
    """
    gold = config.gold
    settled = pl.col("gold") >= 0 if gold.use_in_fit or gold.column is None else pl.lit(False)
    return fit_rows.group_by(*vote_columns, pl.col("gold").alias("label")).agg(
        pl.col("count").sum().alias("n_assets"),
        pl.col("count").filter(settled).sum().alias("n_reviewed"),
    )


def review_from_partitions(
    candidates: Sequence[pl.DataFrame],
    config: JobConfig,
    metrics: dict[str, Any],
    reviewed: pl.DataFrame | None,
    gap_picks: pl.DataFrame | None = None,
    gap_rows: pl.DataFrame | None = None,
    patterns: pl.DataFrame | None = None,
) -> Any:
    """The review queue, chosen among the partitions' own queues (the best of each by score).

    Settled assets are left out, as on the local path: reviewed gold (``gold.path``), and
    source gold when the model learns from it (the partitions left them out already).
    The gap candidates (``gap_picks``, their rows ``gap_rows``) join it as on the local path.
    ``patterns`` (:func:`pattern_sizes`) sizes the vote patterns of a refit queue.
    """
    frames = [c for c in [*candidates, gap_rows] if c is not None and c.height] or list(
        candidates[:1]
    )  # may be empty
    if not frames:
        return None
    pool = (
        pl.concat(frames, how="vertical_relaxed")
        .unique("asset_id", keep="first", maintain_order=True)
        .sort("asset_id")
    )
    settings = config.review
    if pool.height == 0 and settings.enabled and settings.max_items:
        # nothing eligible anywhere: an empty queue, as the local engine writes it
        from enrich.curation.review import review_queue

        queue = review_queue(pool, batch_size=settings.max_items)
        metrics["review"] = {"n_queued": 0, "n_eligible": 0, "reason_counts": {}}
        return queue
    settled = np.zeros(pool.height, dtype=bool)
    if "gold" in pool.columns and config.gold.use_in_fit:
        settled |= (pool.get_column("gold").fill_null(-1) >= 0).to_numpy()
    if reviewed is not None and "asset_id" in reviewed.columns:
        ids = reviewed.get_column("asset_id").cast(pool.schema["asset_id"], strict=False)
        settled |= pool.get_column("asset_id").is_in(ids.implode()).to_numpy()
    return queue_for_review(
        pool,
        settled if settled.any() else None,
        gap_picks,
        metrics,
        settings=config.review,
        slice_columns=config.source.slice_columns,
        pattern_counts=patterns,
    )
