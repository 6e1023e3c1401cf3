"""Similar assets to fill the gaps, on the partitioned path, from capped samples.

The gaps are found from the partitions' counts (:mod:`enrich.job.partition_followups`);
filling them needs each gap's examples (its confident or gold assets) and the unsure assets
to search, which sit on the workers. Each partition sends a seeded random sample of both
(:func:`sample_partition`: at most ``examples_per_gap`` examples per gap, and at most
``pool_size`` unsure assets: flagged for review, not confident, not gold, indexed); the
driver merges them under caps of its own (:data:`MAX_EXAMPLES_PER_GAP`, :data:`MAX_POOL`;
with many partitions each sends less, about twice these caps in all), so what it holds does
not grow with the number of assets or partitions, and one task on a worker loads
the job's index and runs :func:`~enrich.curation.gap_filling.fill_gaps` on them with the
job's ``[gaps]`` settings (:func:`fill_on_worker`), as the local engine runs it on every
asset. The picks differ from the local engine's (a sample is searched, and index ids are
numbered per partition), but each is an unsure asset of its gap's region.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from enrich._internal.uri import join
from enrich.curation.gaps import gap_examples

__all__ = [
    "EXAMPLES_PER_GAP",
    "MAX_EXAMPLES_PER_GAP",
    "MAX_POOL",
    "POOL_PER_PARTITION",
    "GapSample",
    "Region",
    "fill_on_worker",
    "gap_regions",
    "merge_samples",
    "sample_partition",
]

#: Most examples of each gap one partition sends (a seeded random sample of them).
EXAMPLES_PER_GAP = 256
#: Most unsure assets one partition sends to search (a seeded random sample of them).
POOL_PER_PARTITION = 2_000
#: Examples of each gap searched from, over all partitions.
MAX_EXAMPLES_PER_GAP = 1_024
#: Unsure assets searched, over all partitions.
MAX_POOL = 20_000


@dataclass(frozen=True)
class Region:
    """A gap's region: its class (``kind="class"``) or its slice value (``kind="slice"``)."""

    gap: str
    kind: str
    column: str
    value: str | None


@dataclass(frozen=True)
class GapSample:
    """What each partition samples for gap filling (sent with the task)."""

    table: str
    storage_options: Mapping[str, str] | None
    regions: tuple[Region, ...]
    classes: tuple[str, ...]
    confident_above: float
    reviewed: pl.DataFrame | None
    columns: tuple[str, ...]
    examples_per_gap: int = EXAMPLES_PER_GAP
    pool_size: int = POOL_PER_PARTITION
    seed: int = 0


def gap_regions(found: Any) -> tuple[Region, ...]:
    """The distinct gaps of a :class:`~enrich.curation.gaps.Gaps`, largest deficit first.

    >>> from enrich.curation.gaps import find_gaps_from_counts
    >>> counts = pl.DataFrame(
    ...     {"label": [0, 1], "confidence": [0.95, 0.5], "count": [200, 200]}
    ... )
    >>> found = find_gaps_from_counts(counts, classes=["A", "B"], min_confident=50)
    >>> [(r.gap, r.kind, r.value) for r in gap_regions(found)]
    [('class=B', 'class', 'B')]
    """
    rows = found.table.select("gap", "kind", "column", "value").unique("gap", maintain_order=True)
    return tuple(Region(**row) for row in rows.to_dicts())


def sample_partition(
    files: Sequence[str], index: int, sample: GapSample
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """A partition's sample of each gap's examples and of its unsure assets (a worker task).

    Parameters
    ----------
    files
        The partition's data files, relative to ``sample.table``.
    index
        The partition's index (seeds its sampling with ``sample.seed``).
    sample
        What to sample, and how much.

    Returns
    -------
    (pl.DataFrame, pl.DataFrame, int)
        The examples (``gap``, ``asset_id``, ``index_id``, ``strong``: confident or gold,
        else only labeled, taken when the partition has no strong one), the pool sample
        (``sample.columns`` present, ``index_id``), and how many unsure assets the
        partition holds.
    """
    frame = pl.read_parquet(
        [join(sample.table, p) for p in files],
        storage_options=dict(sample.storage_options) if sample.storage_options else None,
    )
    frame = frame.filter(pl.col("index_id").is_not_null())
    rng = np.random.default_rng([sample.seed, index])
    gold = _gold(frame, sample)
    has_gold = gold >= 0
    label = frame.get_column("label_name")
    has_label = label.is_not_null().to_numpy()
    confidence = frame.get_column("confidence").fill_null(0.0).to_numpy()
    confident = has_label & (confidence >= sample.confident_above)
    parts = []
    for region in sample.regions:
        code = -2  # a slice gap, or a class this job does not know: no gold names it
        if region.kind == "class":
            mask = (label == region.value).fill_null(False).to_numpy()
            code = sample.classes.index(region.value) if region.value in sample.classes else -2
        else:
            values = frame.get_column(region.column).cast(pl.String)
            mask = (
                (values.is_null() if region.value is None else (values == region.value))
                .fill_null(False)
                .to_numpy()
            )
        shown, strong = gap_examples(region.kind, mask, code, confident, gold, has_label)
        rows = _sampled(np.flatnonzero(shown), sample.examples_per_gap, rng)
        parts.append(
            frame.select("asset_id", "index_id")[rows].with_columns(
                pl.lit(region.gap).alias("gap"), pl.lit(strong).alias("strong")
            )
        )
    examples = pl.concat(parts).select("gap", "asset_id", "index_id", "strong")
    unsure = frame.get_column("needs_review").fill_null(False).to_numpy() & ~confident & ~has_gold
    eligible = np.flatnonzero(unsure)
    columns = [c for c in (*sample.columns, "index_id") if c in frame.columns]
    pool = frame.select(columns)[_sampled(eligible, sample.pool_size, rng)]
    return examples, pool, int(eligible.size)


def merge_samples(
    samples: Sequence[tuple[pl.DataFrame, pl.DataFrame, int]],
    *,
    max_examples: int = MAX_EXAMPLES_PER_GAP,
    max_pool: int = MAX_POOL,
    seed: int = 0,
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """The partitions' samples in one, each part capped (seeded random subsamples).

    A gap with strong examples (confident or gold) anywhere keeps only those. Pool rows are
    drawn weighted by how many unsure assets each stands for in its partition.

    >>> ex = pl.DataFrame({"gap": ["g", "g"], "asset_id": [1, 2], "index_id": [1, 2],
    ...                    "strong": [True, False]})
    >>> pool = pl.DataFrame({"asset_id": [3, 4], "index_id": [3, 4]})
    >>> e, p, n = merge_samples([(ex[:1], pool[:1], 5), (ex[1:], pool[1:], 7)], max_pool=1)
    >>> e["asset_id"].to_list(), p.height, n
    ([1], 1, 12)
    """
    rng = np.random.default_rng(seed)
    examples = pl.concat([s[0] for s in samples], how="vertical_relaxed")
    strong_gaps = examples.filter(pl.col("strong")).get_column("gap").unique().implode()
    examples = examples.filter(pl.col("strong") | ~pl.col("gap").is_in(strong_gaps))
    kept = []
    for (_,), part in examples.group_by(["gap"], maintain_order=True):
        kept.append(part[_sampled(np.arange(part.height), max_examples, rng)])
    examples = pl.concat(kept) if kept else examples
    pool = pl.concat([s[1] for s in samples], how="vertical_relaxed")
    if pool.height > max_pool:
        # each row stands for n_unsure / n_sent assets of its partition: weighted, so the
        # merged sample is near a uniform one of every unsure asset
        weight = np.concatenate(
            [np.full(s[1].height, s[2] / s[1].height) for s in samples if s[1].height]
        )
        rows = rng.choice(pool.height, size=max_pool, replace=False, p=weight / weight.sum())
        pool = pool[np.sort(rows)]
    pool = pool.unique("asset_id", maintain_order=True)  # an id in two files: searched once
    return examples.drop("strong"), pool, int(sum(s[2] for s in samples))


def fill_on_worker(
    entry: Mapping[str, Any],
    storage_options: Mapping[str, Any] | None,
    found: Any,
    examples: pl.DataFrame,
    pool: pl.DataFrame,
    budget: int,
    *,
    slices: Sequence[str],
) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
    """Run :func:`~enrich.curation.gap_filling.fill_gaps` on the samples (a worker task).

    Loads the job's index the run record's ``embeddings`` entry names (the driver never
    holds it); returns the picks (``asset_id``, ``reason``, ``score``) and the allocation.
    """
    from enrich.curation.gap_filling import fill_gaps
    from enrich.job.index import load_run_index

    index = load_run_index(
        dict(entry), storage_options=dict(storage_options) if storage_options else None
    )
    columns = ["asset_id", "index_id", "label_name", "confidence", *slices]
    picked = fill_gaps(
        found,
        index,
        pool.select([c for c in columns if c in pool.columns]),
        budget,
        examples=examples.select("gap", "asset_id", "index_id"),
        random_state=0,
    )
    return picked.table.select("asset_id", "reason", "score"), picked.allocation.to_dicts()


def _gold(frame: pl.DataFrame, sample: GapSample) -> np.ndarray:
    """Each row's gold class (-1: none): the table's, overridden by reviewed gold."""
    gold = (
        frame.get_column("gold").fill_null(-1).cast(pl.Int64).to_numpy()
        if "gold" in frame.columns
        else np.full(frame.height, -1, dtype=np.int64)
    )
    if sample.reviewed is not None:
        from enrich.analysis.gold import gold_vector

        by_review = gold_vector(sample.reviewed, frame.get_column("asset_id"), list(sample.classes))
        gold = np.where(by_review >= 0, by_review, gold)
    return gold.astype(np.int64)


def _sampled(rows: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """``rows``, or a random ``cap`` of them in their order."""
    if rows.size <= cap:
        return rows
    return np.sort(rng.choice(rows, size=cap, replace=False))
