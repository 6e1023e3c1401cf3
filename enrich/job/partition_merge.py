"""What the driver makes of the partitions' results: counts, vote patterns, errors.

The driver gathers only each partition's vote-pattern counts (:func:`counts_of`,
:func:`vote_counts`, and the stored summary of each unchanged partition,
:func:`read_summary`, :func:`as_fit_summary`) and merges them into the distinct vote
patterns the label model is fitted on (:func:`pattern_counts`: the fit the local engine
makes, once per distinct pattern, weighted by its count). The LF errors
(:func:`lf_errors`) and the end model's counts (:func:`model_counts`) are summed over the
partitions the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from enrich._internal.uri import join
from enrich._internal.vote_arrays import VotePatterns, compress_votes
from enrich.job.worker import RunSettings, Voted, Written

__all__ = [
    "as_fit_summary",
    "counts_of",
    "lf_errors",
    "model_counts",
    "pattern_counts",
    "read_summary",
    "vote_counts",
]


def pattern_counts(
    rows: pl.DataFrame, vote_columns: Sequence[str]
) -> tuple[VotePatterns, VotePatterns | None]:
    """The distinct vote rows with their counts, and the distinct (votes, gold) rows.

    The same patterns, in the same order and with the same counts, as
    :func:`~enrich._internal.vote_arrays.compress_votes` gives on every asset's votes
    (``inverse`` maps the rows of ``rows``).

    >>> rows = pl.DataFrame({"vote_a": [0, 1, 0], "gold": [-1, 1, 0], "count": [5, 2, 1]})
    >>> p, g = pattern_counts(rows, ["vote_a"])
    >>> p.patterns.tolist(), p.counts.tolist(), g.patterns.tolist(), g.counts.tolist()
    ([[0], [1]], [6, 2], [[0, -1], [0, 0], [1, 1]], [5, 1, 2])
    """
    counts = rows.get_column("count").to_numpy().astype(np.int64)
    votes = rows.select(vote_columns).to_numpy().astype(np.int32).reshape(rows.height, -1)
    distinct = compress_votes(votes)
    patterns = VotePatterns(
        distinct.patterns,
        np.bincount(distinct.inverse, weights=counts, minlength=distinct.n_patterns).astype(
            np.int64
        ),
        distinct.inverse,
    )
    gold = rows.get_column("gold").to_numpy().astype(np.int64)
    if not (gold >= 0).any():
        return patterns, None
    with_gold = compress_votes(np.column_stack([votes.astype(np.int64), gold]))
    labelled = VotePatterns(
        with_gold.patterns,
        np.bincount(with_gold.inverse, weights=counts, minlength=with_gold.n_patterns).astype(
            np.int64
        ),
        with_gold.inverse,
    )
    return patterns, labelled


def counts_of(voted: Voted) -> dict[str, Any]:
    """A voted partition's counts and LF errors (what the driver gathers of it)."""
    return {**voted.counts, "errors": voted.errors}


def vote_counts(infos: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """The partitions' read and vote counts, summed."""
    keys = ("n_read", "n_new", "n_changed", "n_voted", "n_revoted", "n_stale")
    return {k: int(sum(i[k] for i in infos)) for k in keys}


def read_summary(table: str, entry: Mapping[str, Any], storage: Any) -> pl.DataFrame:
    """An unchanged partition's stored summary (its vote patterns and outputs)."""
    return pl.read_parquet(join(table, entry["summary"]), storage_options=storage)


def as_fit_summary(stored: pl.DataFrame, settings: RunSettings) -> pl.DataFrame:
    """A stored partition summary as the fit sees it: votes, gold, slices, stored label."""
    votes = [f"vote_{n}" for n in settings.lf_names]
    return (
        stored.select(
            *votes,
            pl.col("gold").cast(pl.Int64),
            *settings.plan.slices,
            pl.col("label").cast(pl.Int64).alias("_prev_label"),
            "count",
        )
        .group_by([*votes, "gold", *settings.plan.slices, "_prev_label"])
        .agg(pl.col("count").sum())
    )


def model_counts(
    written: Sequence[Written], untouched: Mapping[str, Mapping[str, Any]], classes: Sequence[str]
) -> dict[str, Any]:
    """The end model's counts over every partition (none when a partition lacks them)."""
    parts = [w.model_counts for w in written] + [e.get("model_counts") for e in untouched.values()]
    if any(p is None for p in parts):
        return {}
    return {
        "n_labeled_by_model": sum(int(p["n_labeled_by_model"]) for p in parts),  # type: ignore[index]
        "class_counts": {
            c: sum(int(p["class_counts"].get(c, 0)) for p in parts)  # type: ignore[index]
            for c in classes
        },
    }


def lf_errors(infos: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The LF errors of every partition, merged (``metrics.lf_errors``)."""
    errors = [e for e in (i["errors"] for i in infos) if e.height]
    if errors:
        from enrich.labeling.engines import merge_errors

        return merge_errors(errors).to_dicts()
    return []
