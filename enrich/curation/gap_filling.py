"""Fill label gaps: which unlabeled assets to label so that a weak class or slice improves most.

:func:`fill_gaps` takes the :class:`~enrich.curation.gaps.Gaps` of
:func:`~enrich.curation.gaps.find_gaps`, a FAISS :class:`~embeddings.index.VectorIndex` over
the assets' embeddings and the unlabeled pool, and proposes up to ``budget`` assets to label,
the budget shared by the size of each gap's deficit. The result feeds
:func:`enrich.curation.review.review_queue` (``candidates=``).

Strategies
----------
``strategy="coverage"`` (the default) covers each gap's region of the embedding space:

- *Region.* A slice gap's region is the pool assets of that slice. A class gap's region is
  the whole pool, each asset weighted by how likely it is to belong to the class: with a
  model's class probabilities (``probabilities=``, ideally the end model's out-of-fold ones),
  ``w = (1 - t) + t * r**a / mean(r**a)``, where ``r`` is the rank share of the asset's
  probability for the class times the model's uncertainty (one minus the margin between its
  two most likely classes: likely the class, and unsure, is where a label teaches most), and
  ``t = (1 - min(1, k * mean probability of the class))**2`` is how far the model
  under-expects the class compared with an even share (with more than two classes, at
  least ``1 - min(1, k * share of the pool predicted as the class)``). The exponent ``a``
  puts 97% of the targeted weight on the top ``1/k`` of the pool (``a`` = 4 for two
  classes, 32 for ten). A model that
  barely predicts the class (a starved class under an unweighted classifier) gets picks
  concentrated where the class most likely is; one that already expects it at its share
  (e.g. a class-balanced classifier) gets nearly representative picks, which is what such a
  classifier gains most from. Without probabilities, the pool's label-model label and
  confidence stand in, else the similarity to the gap's examples.
- *Coverage.* Picks are chosen greedily to cover as much of the region's weight as possible
  with balls of cosine radius ``delta`` around the labeled examples and the picks
  (maximum coverage, as in ProbCover: Yehuda et al., "Active Learning Through a Covering
  Lens", NeurIPS 2022). ``delta`` is set from the budget, so that ``quota + examples`` balls
  about cover the region -- small budgets take the most typical points of large dense
  areas (the low-budget regime of TypiClust: Hacohen et al., "Active Learning on a Budget:
  Opposite Strategies Suit High and Low Budgets", ICML 2022); larger budgets reach into
  smaller clusters. Ties go to the more typical asset (mean cosine to the region). A
  region larger than 3,000 assets is covered on a random sample of it, so in-gap random
  sampling is the floor the greedy step improves on.
- *Labels that even out the classes, first.* A classifier learns a class from its weight
  among the labels, not from its share of the pool, so with class scores each gap first
  spends ``m`` picks on likely members of the class the labels under-weigh
  (class-balanced selection: Aggarwal et al., "Active Learning for Imbalanced Datasets",
  WACV 2020; Bengar et al., "Class-Balanced Active Learning for Image Classification",
  WACV 2022). The weight the model gives class ``j`` per label is read from its
  probabilities, assuming nothing of the pool: ``lambda_j = mean P(j) / (n_j / N)`` (about 1
  for an unweighted model; more where it up-weights a class, e.g.
  ``class_weight="balanced"``); ``m`` evens out the effective counts ``lambda_j * n_j``,
  counting the members the rest of the quota is expected to hold (the class's mean
  probability over the gap's region) -- the search gets only what the other components
  are not expected to yield (see :func:`~enrich.curation.coverage.balance_target`). A class
  gap searches its own class; a slice gap the class that needs the most, when it needs
  more than an even share of the quota, taken anywhere in the pool (the slice's rare class
  is learned from its labels anywhere). The ``m``
  picks are spread by coverage over the ``3 * m`` assets whose membership the model is
  least sure of (``min(P, 1 - P)``: likely members it does not yet call the class). An
  unweighted model with a rare class gets a quota of likely members (measured: 5 of 40
  picks were spam on SMS before, worst-class F1 0.00; nearest neighbours 0.68); a
  class-balanced one, which expects the class in the rest of the quota, few or none.
  Where a class gap's ``m`` is 0 the model already weighs the class at par, counting the
  members a representative rest holds -- the premise of ``m``. With more than two classes
  its region is then weighed evenly rather than towards the class: picks steered there
  serve the class's own boundaries and over-fill it at the expense of whichever class is
  weakest next (measured on TREC questions, six classes, class-balanced classifier: 16 to
  21 of 40 picks on the gap's class, worst-class F1 3.4 to 5.2 points behind random or
  uncertainty picks; with even weights 1.2 to 1.3). With two classes the likely and unsure
  members lie on the one boundary, which serves both classes, and the weights stay (even
  weights there cost SMS spam 1.3 to 1.5 points). A class the model gives no probability
  at all (never trained on it) is not searched for: its scores cannot find it.
  Where the search does take picks (more than two classes), the rest of the quota
  targets the class only as far as the model's doubt is about it
  (:func:`~enrich.curation.coverage.uncertainty_target`): with ``d`` the share of the
  class's likely members (the top ``1 / k`` of the region by its probability) among the
  assets uncertainty sampling would take with the rest and ``a`` their share of the
  region, ``t`` falls to ``min(t, (d - a) / a)`` (at least 0): kept in full where the
  class carries twice its share of the doubt, released where it carries no more than its
  share. A hard class the model keeps confusing (MNIST's 8, ten classes: its likely
  members are 38 to 49% of the uncertain assets, 100 picks, 5 seeds) keeps its targeting;
  an easy one past parity (TREC's HUM, six classes: 13 to 28%) releases picks to the
  boundaries the model doubts next (10 seeds, unweighted classifier, 100 picks: TREC 0.6
  points behind uncertainty sampling, was 4.0; MNIST unchanged). Read as a mixture of
  targeted and representative picks instead, ``f / (1 - f)`` with ``f = (d - a) / (b -
  a)`` (``b`` the members' share of the targeted weights) released MNIST's 8 to about
  half its targeting and cost it 0.4 to 1.0 points.
- *Uncertainty, as far as it pays.* With class scores (``probabilities=``, else the label
  model's), part of each gap's quota goes to the assets of its region the model is least
  sure of (smallest margin between its two likeliest classes: uncertainty sampling, Lewis
  & Gale, SIGIR 1994; Scheffer et al., 2001), and coverage covers the rest around them.
  The share is measured, not fixed. With ``AUC`` the chance that a region asset is denser
  (mean cosine to its 20 nearest) than one of the ``quota`` assets uncertainty sampling
  would pick, ``u = 2 * AUC - 1`` (at least 0) reads as the fraction of those picks that
  lie between clusters, the rest lying in a band through the region like any of its
  assets; uncertainty gets the share ``min(1, u / (1 - u))`` (the ratio of the two: all
  of the quota once at least half of its picks lie between clusters). Where the model's
  boundaries run through sparse places (the cluster assumption holds: handwritten digits,
  with a classifier that already predicts the class) its uncertain assets teach the most,
  and the share is large; where they cut through dense places (sentence embeddings, whose
  neighbourhoods follow topic more than sentiment, or a classifier that barely predicts
  the starved class), its picks are a biased band (Dasgupta & Hsu, ICML 2008), the share
  is about 0 and coverage decides. A region larger than the sample coverage works on
  adds its most uncertain assets to the sample, so uncertainty ranks all of it. Ranking
  by margin alone, or mixing it in at a fixed weight, lost up to 20 points of worst-group
  F1 on the text sets of ``benchmarks/gap_filling.py``; coverage alone lost 2 to 3 points
  to it on MNIST with a class-balanced classifier (``benchmarks/RESULTS.md``).
- *Random draws as the floor.* Covering a region stands for its classes only as far as its
  neighbourhoods follow them (the premise of TypiClust and ProbCover). With class scores,
  that is measured as the chance-corrected agreement (Cohen's kappa) between each region
  asset's predicted class and those of its 10 nearest region assets; the share ``1 - kappa``
  of the quota left after uncertainty is drawn at random in proportion to the region's
  weights, one draw from each of as many k-means strata (stratified sampling: the same
  expected mix as random picks, less often a lopsided one), and coverage takes the rest.
  A model that predicts one class everywhere gives no evidence either way (no draws).

``strategy="neighbours"`` is the earlier rule: the nearest unlabeled neighbours of each
gap's examples, favouring those the label model is unsure of, near-duplicates left out
(see :func:`fill_gaps`, Notes).

Index ids
---------
:class:`~embeddings.index.VectorIndex` keys vectors by non-negative int64 ids, while asset
ids are often strings. enrich reads an asset's index id, in this order, from ``id_map=`` (a
table ``asset_id``, ``index_id``), else from an ``index_id`` column of the table at hand
(the pool, the labels given to ``find_gaps``, the examples), else from the asset id itself
when it is a non-negative integer. :func:`with_index_ids` numbers a table's rows to make
that column before you build the index.

Examples
--------
>>> import numpy as np, polars as pl
>>> from embeddings.index import VectorIndex
>>> from enrich.curation.gaps import find_gaps
>>> from enrich.curation.gap_filling import fill_gaps, with_index_ids
>>> assets = with_index_ids(pl.DataFrame({"asset_id": ["a", "b", "c", "d", "e"]}))
>>> index = VectorIndex(2)
>>> index.add(assets["index_id"], np.array([[1, 0], [0, 1], [0.9, 0.1], [0.1, 0.9], [1, 0.05]]))
>>> labels = assets.head(2).with_columns(label_name=pl.Series(["cat", "dog"]),
...                                      confidence=pl.lit(1.0))
>>> gaps = find_gaps(labels, min_confident=3)
>>> pool = assets.tail(3).with_columns(confidence=pl.Series([0.6, 0.9, 0.7]))
>>> proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]])  # a model's, for the pool rows
>>> picked = fill_gaps(gaps, index, pool, budget=1, probabilities=proba, random_state=0)
>>> picked.table.select("asset_id", "gap", pl.col("similarity").round(3)).rows()
[('c', 'class=cat', 0.994)]
>>> picked.allocation.select("gap", "deficit", "quota", "picked").rows()
[('class=cat', 2, 1, 1), ('class=dog', 2, 0, 0)]

The earlier nearest-neighbour rule, scored by similarity and label-model uncertainty:

>>> near = fill_gaps(gaps, index, pool, budget=2, strategy="neighbours")
>>> for part in near.table["reason"][0].split("; "):
...     print(part)
fills class=cat (confident labels 1 < 3): cosine 0.99 to its nearest example
label-model confidence 0.60
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl

from enrich._internal.display import ColumnFormat, TableDisplay
from enrich._internal.frames import as_polars
from enrich._internal.random import check_random_state
from enrich.curation.coverage import (
    MAX_EXAMPLES,
    MAX_REGION,
    Coverage,
    balance_target,
    class_scores_of_pool,
    class_search_picks,
    coverage_plan,
    greedy_cover,
    random_picks,
    uncertain_picks,
    uncertainty_target,
)
from enrich.curation.gap_search import (
    GapSearch,
    GapSpec,
    Pool,
    example_index_ids,
    gap_specs_of,
    id_map_frame,
    pick_candidates,
    pool_assets,
    split_budget,
    unit_rows,
)
from enrich.curation.gaps import Gaps
from enrich.errors import InputError

if TYPE_CHECKING:
    from embeddings.index import VectorIndex

__all__ = ["Candidates", "FillStrategy", "fill_gaps", "with_index_ids"]

logger = logging.getLogger(__name__)


#: How :func:`fill_gaps` chooses: ``"coverage"`` (default) or ``"neighbours"``.
FillStrategy = Literal["coverage", "neighbours"]
_STRATEGIES: tuple[str, ...] = ("coverage", "neighbours")
_ALLOCATION_SCHEMA: Mapping[str, Any] = {
    "gap": pl.String,
    "kind": pl.String,
    "deficit": pl.Int64,
    "quota": pl.Int64,
    "picked": pl.Int64,
    "examined": pl.Int64,
    "near_duplicates": pl.Int64,
    "note": pl.String,
}


class Candidates(TableDisplay):
    """Assets proposed to fill the gaps, as returned by :func:`fill_gaps`.

    Attributes
    ----------
    table : polars.DataFrame
        One row per proposed asset (never a labeled one, never twice): ``asset_id``,
        ``index_id``, ``gap`` (the gap it fills), ``similarity`` (cosine to the gap's
        nearest example, or to the slice's centroid when the gap had no example),
        ``confidence`` (label-model confidence from the pool, null if unknown), ``score``
        (the ranking score in [0, 1]), ``reason`` (a sentence). Grouped by gap in
        allocation order, best first within a gap.
    allocation : polars.DataFrame
        One row per gap: ``gap``, ``kind``, ``deficit``, ``quota`` (its share of the
        budget), ``picked``, ``examined`` (candidates looked at), ``near_duplicates``
        (skipped for being too similar to an earlier pick), ``note``.
    budget : int
        The budget asked for.
    """

    display_max_rows = 30

    def __init__(self, table: pl.DataFrame, allocation: pl.DataFrame, *, budget: int) -> None:
        self.table = table
        self.allocation = allocation
        self.budget = budget

    def __len__(self) -> int:
        return self.table.height

    @property
    def asset_ids(self) -> pl.Series:
        """The proposed asset ids."""
        return self.table["asset_id"]

    def to_pandas(self) -> Any:
        """:attr:`table` as a pandas DataFrame."""
        return self.table.to_pandas()

    # -- display hooks -------------------------------------------------------------------
    def _display_table(self) -> pl.DataFrame:
        return self.table.drop("index_id")

    def _display_title(self) -> str:
        n_gaps = self.table["gap"].n_unique() if self.table.height else 0
        return (
            f"Candidates: {self.table.height:,} assets for {n_gaps} gap(s) (budget {self.budget:,})"
        )

    def _display_totals(self) -> Mapping[str, str]:
        return {
            str(gap): f"{picked}/{quota}"
            for gap, quota, picked in self.allocation.select("gap", "quota", "picked").iter_rows()
        }

    def _display_caption(self) -> str | None:
        notes = [f"{g}: {n}" for g, n in self.allocation.select("gap", "note").iter_rows() if n]
        return "; ".join(notes) or None

    def _display_formats(self) -> Mapping[str, ColumnFormat]:
        return {"similarity": "float", "confidence": "float", "score": "float"}


def with_index_ids(frame: Any, *, column: str = "index_id", offset: int = 0) -> pl.DataFrame:
    """Add an int64 index id column numbering the rows ``offset, offset + 1, ...``.

    Number the whole asset table once, add its vectors to the index under these ids, then
    split it into labeled assets and pool: both keep the column.

    >>> with_index_ids(pl.DataFrame({"asset_id": ["x", "y"]}))["index_id"].to_list()
    [0, 1]
    """
    data = as_polars(frame)
    if column in data.columns:
        raise InputError(
            f"the table already has a {column!r} column; drop it or choose another column="
        )
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InputError(f"offset must be a whole number >= 0; got {offset!r}")
    ids = pl.int_range(offset, offset + data.height, dtype=pl.Int64, eager=True)
    return data.with_columns(ids.alias(column))


def fill_gaps(
    gaps: Gaps,
    index: VectorIndex,
    pool: Any,
    budget: int,
    *,
    examples: Any = None,
    id_map: Any = None,
    diversity: float = 0.95,
    uncertainty_weight: float = 0.5,
    redundancy: float = 1.0,
    neighbours: int = 100,
    max_queries: int = 128,
    random_state: Any = None,
    strategy: FillStrategy = "coverage",
    probabilities: Any = None,
) -> Candidates:
    """Propose up to ``budget`` unlabeled assets that fill the gaps best.

    Parameters
    ----------
    gaps
        What :func:`enrich.curation.gaps.find_gaps` returned. A gap id with several rows (a group
        short on two metrics) is one gap whose deficit is the largest of its rows.
    index
        A :class:`~embeddings.index.VectorIndex` holding the vectors of the examples and of
        the pool (see "Index ids" in the module docstring).
    pool
        polars/pandas/Arrow table of the unlabeled assets: ``asset_id``; an index id (see
        above); optionally ``confidence`` (the label model's confidence in [0, 1], null =
        unknown) and the slice columns. Assets that count as labeled in ``gaps``
        (``gaps.labeled_ids``) or serve as examples are dropped from it; so are assets whose
        index id is not in ``index`` (logged).
    budget
        Most assets to return in all (>= 0).
    examples
        The labeled examples of each gap, overriding ``gaps.examples``: a table with ``gap``
        and ``asset_id`` columns (and ``index_id`` if needed), or a mapping gap id -> asset
        ids.
    id_map
        Optional table ``asset_id``, ``index_id`` covering the pool and the examples.
    diversity
        A candidate whose cosine similarity to an asset already picked (for any gap) is at
        least this is skipped as a near-duplicate, in (-1, 1]; 1 skips exact copies only.
    uncertainty_weight
        Weight ``w`` in [0, 1] of the label model's uncertainty in the score (below).
    redundancy
        Weight ``r >= 0`` of the penalty for resembling an earlier pick (below); 0 ranks by
        score alone.
    neighbours
        Candidates a gap fetches at first (>= 1): each of its ``m`` example queries fetches
        its ``max(10, ceil(max(neighbours, 10 * quota) / m))`` nearest pool assets, so the
        diversity penalty has room to spread the picks; a gap that runs out fetches 4x more
        per query, up to the whole of its pool.
    max_queries
        Most example vectors searched from per gap (>= 1); larger example sets are sampled.
    random_state
        None, an int or a numpy Generator: seeds the sampling of examples, centroids and
        (``"coverage"``) of large regions.
    strategy
        ``"coverage"`` (default): weighted coverage of each gap's region of the embedding
        space (see the module docstring, "Strategies"); ``diversity``, ``uncertainty_weight``,
        ``redundancy``, ``neighbours`` and ``max_queries`` do not apply. ``"neighbours"``:
        the nearest unlabeled neighbours of each gap's examples, scored and spread as in the
        notes below.
    probabilities
        Optional ``(len(pool), k)`` float array: a model's class probabilities for the pool
        rows, in the pool's row order, columns in ``gaps.classes`` order. The intended
        source is the end model's out-of-fold probabilities (``enrich.EndModel``); any
        classifier trained on the labels will do. ``"coverage"`` weights a class gap's
        region with it; without it the pool's ``label_name`` / ``label`` and
        ``confidence`` columns (the label model's) stand in, else the similarity to the
        gap's examples.

    Returns
    -------
    Candidates

    Notes
    -----
    The notes below describe ``strategy="neighbours"``; ``"coverage"`` shares its budget
    rule (quotas by deficit, unused budget passed on).

    *Candidates of a gap.* Its pool is the unlabeled pool, restricted for a slice gap to
    the pool assets of that slice when the pool has the slice's column. The gap's example
    vectors are its queries; ``index.search(..., subset=<its pool>)`` returns each query's
    nearest pool assets, and a candidate's ``similarity`` is its largest cosine to any
    example. A slice gap without examples searches from the normalized mean vector of its
    pool assets; a class gap without examples cannot be searched and is skipped (noted in
    :attr:`Candidates.allocation`).

    *Score.* ``score = (1 - w) * clip(similarity, 0, 1) + w * (1 - confidence)`` with
    ``w = uncertainty_weight``; a null confidence counts as 0 (fully uncertain), and
    without a ``confidence`` column the score is the clipped similarity. Ties go to the
    smaller index id, so results are deterministic.

    *Diversity.* Picks are made one at a time (greedy). A gap's next pick is its candidate
    with the largest ``score - r * max(0, c)``, where ``c`` is the candidate's largest
    cosine similarity to any asset picked so far (maximal marginal relevance, with
    ``r = redundancy``); a candidate with ``c >= diversity`` is skipped outright. Without the
    penalty, the nearest neighbours of a few examples are near-copies of one another, and
    labeling them teaches a model little (see ``benchmarks/RESULTS.md``).

    *Budget.* Each searchable gap first gets ``floor(budget * deficit / total deficit)``,
    the remainder going one by one to the largest fractional parts (then largest deficit);
    every gap then gets at least 1 while the budget lasts, taken from the largest shares
    (with ``budget`` below the number of gaps, the largest deficits get 1 each). Gaps pick
    in turns, largest deficit first, each taking its best candidate not yet picked and not a
    near-duplicate of any pick, so an asset that fits two gaps goes to one. Budget a gap
    cannot use (its pool runs out) goes on in turns to the gaps that still have candidates:
    deficits set the shares, not a ceiling.

    Raises
    ------
    InputError
        Bad options, missing columns, repeated pool assets, index ids that cannot be found,
        or examples naming a gap that ``gaps`` does not have.
    """
    _check_options(budget, diversity, uncertainty_weight, redundancy, neighbours, max_queries)
    if not isinstance(gaps, Gaps):
        raise InputError(f"gaps must be the Gaps that find_gaps returns, got {type(gaps).__name__}")
    for method in ("search", "get_vectors", "ids"):
        if not hasattr(index, method):
            raise InputError(
                f"index must be an embeddings.index.VectorIndex, got {type(index).__name__}"
            )
    if strategy not in _STRATEGIES:
        raise InputError(f"strategy must be one of {list(_STRATEGIES)}; got {strategy!r}")
    rng = check_random_state(random_state)
    id_lookup = None if id_map is None else id_map_frame(id_map)
    specs = gap_specs_of(gaps)
    example_ids = example_index_ids(gaps, examples, id_lookup, [s.gap for s in specs])
    class_weight = class_scores_of_pool(probabilities, pool, gaps)
    candidates = pool_assets(pool, gaps, example_ids, index, id_lookup, class_weight)
    if strategy == "coverage":
        return _fill_by_coverage(
            specs, example_ids, candidates, index, budget, rng, gaps.classes, _class_counts(gaps)
        )

    searches = [
        GapSearch.build(
            spec,
            example_ids.get(spec.gap, np.empty(0, np.int64)),
            candidates,
            index,
            neighbours=neighbours,
            max_queries=max_queries,
            uncertainty_weight=uncertainty_weight,
            rng=rng,
        )
        for spec in specs
    ]
    searchable = [s for s in searches if s.note_blocks is None]
    quotas = split_budget(budget, [s.spec.deficit for s in searchable])
    for s, quota in zip(searchable, quotas, strict=True):
        s.quota = quota
    picks = pick_candidates(searchable, budget, diversity, redundancy, index.dim)
    table = _table(picks, candidates, searchable)
    allocation = pl.DataFrame(
        [
            {
                "gap": s.spec.gap,
                "kind": s.spec.kind,
                "deficit": s.spec.deficit,
                "quota": s.quota,
                "picked": s.picked,
                "examined": s.examined,
                "near_duplicates": s.near_duplicates,
                "note": s.note_blocks or s.note,
            }
            for s in searches
        ],
        schema=_ALLOCATION_SCHEMA,
    )
    logger.debug("fill_gaps: %d picks for %d gaps", table.height, len(specs))
    return Candidates(table, allocation, budget=budget)


# -- gaps and examples -------------------------------------------------------------------


# -- ids ---------------------------------------------------------------------------------


# -- pool --------------------------------------------------------------------------------


# -- search ------------------------------------------------------------------------------


def _table(
    picks: Sequence[tuple[GapSearch, int, float, float]],
    pool: Pool,
    searches: Sequence[GapSearch],
) -> pl.DataFrame:
    frame = pool.frame
    order = {id(s): i for i, s in enumerate(searches)}
    rows = sorted(
        ((order[id(s)], -score, index_id, s, sim, score) for s, index_id, sim, score in picks),
        key=lambda r: r[:3],
    )
    by_id = dict(zip(frame["_index_id"].to_list(), frame["_row"].to_list(), strict=True))
    positions = [by_id[r[2]] for r in rows]
    picked = frame[positions] if positions else frame.clear()
    confidence = (
        picked["confidence"].cast(pl.Float64)
        if pool.has_confidence
        else pl.Series("confidence", [None] * picked.height, dtype=pl.Float64)
    )
    reasons = []
    for (_, _, _, s, sim, _), conf in zip(rows, confidence.to_list(), strict=True):
        target = "the slice's centroid" if s.from_centroid else "its nearest example"
        known = (
            f"label-model confidence {conf:.2f}"
            if conf is not None
            else "no label-model confidence"
        )
        reasons.append(
            f"fills {s.spec.gap} ({s.spec.summary}): cosine {sim:.2f} to {target}; {known}"
        )
    return pl.DataFrame(
        {
            "asset_id": picked["asset_id"],
            "index_id": picked["_index_id"],
            "gap": pl.Series([r[3].spec.gap for r in rows], dtype=pl.String),
            "similarity": pl.Series([r[4] for r in rows], dtype=pl.Float64),
            "confidence": confidence,
            "score": pl.Series([r[5] for r in rows], dtype=pl.Float64),
            "reason": pl.Series(reasons, dtype=pl.String),
        }
    )


# -- helpers -----------------------------------------------------------------------------


def _check_options(
    budget: Any,
    diversity: Any,
    uncertainty_weight: Any,
    redundancy: Any,
    neighbours: Any,
    max_queries: Any,
) -> None:
    if isinstance(budget, bool) or not isinstance(budget, int | np.integer) or budget < 0:
        raise InputError(f"budget must be a whole number >= 0; got {budget!r}")
    if not _number(diversity) or not -1 < diversity <= 1:
        raise InputError(
            f"diversity must be a cosine similarity in (-1, 1], e.g. 0.95; got {diversity!r}"
        )
    if not _number(uncertainty_weight) or not 0 <= uncertainty_weight <= 1:
        raise InputError(f"uncertainty_weight must be in [0, 1]; got {uncertainty_weight!r}")
    if not _number(redundancy) or redundancy < 0:
        raise InputError(f"redundancy must be a number >= 0, e.g. 1.0; got {redundancy!r}")
    for name, value in (("neighbours", neighbours), ("max_queries", max_queries)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise InputError(f"{name} must be a whole number >= 1; got {value!r}")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# -- strategy "coverage" -----------------------------------------------------------------


def _least_sure(proba: np.ndarray, n: int) -> np.ndarray:
    """Positions of the ``n`` rows with the smallest margin between their two likeliest classes."""
    if proba.ndim != 2 or proba.shape[1] < 2 or n <= 0:
        return np.empty(0, np.int64)
    top = np.sort(proba, axis=1)[:, -2:]
    return np.argsort(top[:, 1] - top[:, 0], kind="stable")[:n]


def _membership_doubt(p: np.ndarray) -> np.ndarray:
    """The chance the model's call on membership is wrong: ``min(p, 1 - p)``."""
    return np.minimum(p, 1.0 - p)


def _class_counts(gaps: Gaps) -> dict[str, int]:
    """Labeled count of every class of ``gaps`` (0 where it has none)."""
    counts = {str(name): 0 for name in gaps.classes}
    measured = gaps.measured
    if measured.height and {"kind", "value", "size"} <= set(measured.columns):
        rows = measured.filter(pl.col("kind") == "class").unique("value", keep="first")
        for value, size in rows.select("value", "size").iter_rows():
            if value in counts and size is not None:
                counts[value] = int(size)
    return counts


def _fill_by_coverage(
    specs: Sequence[GapSpec],
    example_ids: Mapping[str, np.ndarray],
    pool: Pool,
    index: Any,
    budget: int,
    rng: np.random.Generator,
    class_names: Sequence[str],
    class_counts: Mapping[str, int],
) -> Candidates:
    """Strategy ``"coverage"`` (module docstring): weighted greedy coverage per gap."""
    frame = pool.frame
    ids = frame["_index_id"].to_numpy()
    classes = {name: i for i, name in enumerate(class_names)}
    plans = [coverage_plan(s, example_ids, pool, classes, index, rng) for s in specs]
    ready = [p for p in plans if p.note_blocks is None]
    quotas = split_budget(budget, [p.spec.deficit for p in ready])
    for p, quota in zip(ready, quotas, strict=True):
        p.quota = quota
        ex = example_ids.get(p.spec.gap, np.empty(0, np.int64))
        ex = ex[np.isin(ex, index.ids)] if ex.size else ex
        if ex.size > MAX_EXAMPLES:
            ex = np.sort(rng.choice(ex, MAX_EXAMPLES, replace=False))
        examples = (
            unit_rows(index.get_vectors(ex)) if ex.size else np.zeros((0, index.dim), np.float32)
        )
        vectors = unit_rows(index.get_vectors(ids[p.rows]))
        weights = p.weights
        p.similarity = (vectors @ examples.T).max(axis=1) if len(examples) else None
        want = min(len(p.rows), max(2 * quota, quota + 10, 1)) if quota else 0
        searched: list[int] = []
        code = classes.get(p.spec.value or "", -1) if p.spec.kind == "class" else -1
        n_search = 0
        if pool.class_scores is not None and quota and code >= 0:
            n_search = balance_target(
                class_counts, class_names, code, pool.class_scores, quota, region=p.rows
            )
        elif pool.class_scores is not None and quota and len(class_names) > 1:
            # a slice: the class its labels under-weigh most, by the slice's expected yield,
            # searched pool-wide when it needs more than an even share of the quota (less
            # was measured to cost the slice's own picks: SMS short messages, balanced)
            need = [
                balance_target(
                    class_counts, class_names, j, pool.class_scores, quota, region=p.rows
                )
                for j in range(len(class_names))
            ]
            code = int(np.argmax(need))
            n_search = need[code] if need[code] > quota / len(class_names) else 0
        if (
            p.spec.kind == "class"
            and pool.class_scores is not None
            and code >= 0
            and not n_search
            and len(class_names) > 2
        ):
            # the model already weighs the class at par, counting the members a
            # representative rest of the quota holds. With more than two classes, picks
            # steered towards the class serve its boundaries only: they over-fill it at the
            # expense of whichever class is weakest next (TREC: 16 to 21 of 40 picks on the
            # gap's class), so the region is weighed evenly. (With two classes the likely
            # and unsure members lie on the one boundary, which serves both classes.)
            p.weights = weights = np.ones(len(p.rows))
            if p.full_rows is not None:
                p.full_weights = np.ones(len(p.full_rows))
            p.weight_source = "uniform"
        if (
            p.spec.kind == "class"
            and pool.class_scores is not None
            and n_search
            and len(class_names) > 2
            and p.targeted is not None
        ):
            # the labels are evened out by the search: the rest of the quota targets the
            # class as far as the model's doubt holds it (uncertainty_target)
            full = p.full_rows if p.full_rows is not None else p.rows
            full_targeted = p.full_targeted if p.full_targeted is not None else p.targeted
            target = min(
                p.target,
                uncertainty_target(pool.class_scores[full], code, full_targeted, quota - n_search),
            )
            p.weights = weights = (1.0 - target) + target * p.targeted
            if p.full_rows is not None and p.full_targeted is not None:
                p.full_weights = (1.0 - target) + target * p.full_targeted
        if n_search:
            p.searched_class = str(class_names[code])
        if n_search and p.spec.kind == "slice":
            # the slice's under-weighted class is learned from its labels anywhere in the pool
            where = np.arange(frame.height)
            if where.size > MAX_REGION:
                where = np.union1d(np.sort(rng.choice(where, MAX_REGION, replace=False)), p.rows)
            found = where[
                class_search_picks(
                    unit_rows(index.get_vectors(ids[where])),
                    _membership_doubt(pool.class_scores[where, code]),
                    examples,
                    n_search,
                )
            ]
            extra = np.setdiff1d(found, p.rows)
            if extra.size:
                p.rows = np.concatenate([p.rows, extra])
                vectors = np.concatenate([vectors, unit_rows(index.get_vectors(ids[extra]))])
                weights = np.concatenate([weights, np.zeros(extra.size)])
                p.weights = weights
                if p.similarity is not None:
                    p.similarity = (vectors @ examples.T).max(axis=1)
            position = {int(r): i for i, r in enumerate(p.rows)}
            searched = [position[int(r)] for r in found]
            p.searched = set(searched)
        elif n_search:
            searched = class_search_picks(
                vectors, _membership_doubt(pool.class_scores[p.rows, code]), examples, n_search
            )
            p.searched = set(searched)
        unsure: list[int] = []
        if pool.class_scores is not None and quota > len(searched) and p.full_rows is not None:
            # a sampled region: its most uncertain assets join the sample, so uncertainty
            # ranks the whole region, not the sample
            extra = _least_sure(pool.class_scores[p.full_rows], quota - len(searched))
            extra = np.setdiff1d(p.full_rows[extra], p.rows)
            if extra.size:
                at = np.searchsorted(p.full_rows, extra)
                p.rows = np.concatenate([p.rows, extra])
                vectors = np.concatenate([vectors, unit_rows(index.get_vectors(ids[extra]))])
                weights = np.concatenate([weights, p.full_weights[at]])
                p.weights = weights
                if p.similarity is not None:
                    p.similarity = (vectors @ examples.T).max(axis=1)
        if pool.class_scores is not None and quota > len(searched):
            unsure, p.uncertainty_share = uncertain_picks(
                vectors, pool.class_scores[p.rows], quota - len(searched)
            )
            unsure = [i for i in unsure if i not in p.searched]
        drawn: list[int] = []
        if pool.class_scores is not None and quota > len(searched) + len(unsure):
            drawn, p.random_share = random_picks(
                vectors,
                pool.class_scores[p.rows],
                weights if weights is not None else np.ones(len(p.rows)),
                quota - len(searched) - len(unsure),
                [*searched, *unsure],
                rng,
            )
        first = [*searched, *unsure, *drawn]
        if first:
            # the uncertain and the drawn picks cover their balls too: coverage does the rest
            order, gain = greedy_cover(
                vectors,
                np.concatenate([examples, vectors[first]]),
                weights,
                want - len(first),
                quota - len(first),
            )
            p.by_uncertainty, p.at_random = set(unsure), set(drawn)
            chosen = set(first)
            p.order = [*first, *(i for i in order if i not in chosen)]
            gains = [0.0] * len(first)
            if searched:
                gains[: len(searched)] = [
                    float(g) for g in pool.class_scores[p.rows[searched], code]
                ]
            if unsure:
                top_p = np.sort(pool.class_scores[p.rows[unsure]], axis=1)[:, -2:]
                gains[len(searched) : len(searched) + len(unsure)] = [
                    float(g) for g in 1.0 - (top_p[:, 1] - top_p[:, 0])
                ]
            p.gain = gains + [g for i, g in zip(order, gain, strict=True) if i not in chosen]
        else:
            p.order, p.gain = greedy_cover(vectors, examples, weights, want, quota)
    # hand out the picks: quotas first, in deficit order, then what is left in turns
    taken: set[int] = set()
    picks: list[tuple[Coverage, int, float]] = []
    cursor = {id(p): 0 for p in ready}

    def take(p: Coverage) -> bool:
        while cursor[id(p)] < len(p.order):
            j = p.order[cursor[id(p)]]
            gain = p.gain[cursor[id(p)]]
            cursor[id(p)] += 1
            row = int(p.rows[j])
            if row not in taken:
                taken.add(row)
                picks.append((p, j, gain))
                p.picked += 1
                return True
        return False

    for beyond_quota in (False, True):
        progress = True
        while progress and len(picks) < budget:
            progress = False
            for p in ready:
                if len(picks) >= budget:
                    break
                if not beyond_quota and p.picked >= p.quota:
                    continue
                progress = take(p) or progress
    return _coverage_candidates(picks, plans, pool, budget)


def _coverage_candidates(
    picks: Sequence[tuple[Coverage, int, float]],
    plans: Sequence[Coverage],
    pool: Pool,
    budget: int,
) -> Candidates:
    frame = pool.frame
    order = {id(p): i for i, p in enumerate(plans)}
    ranked = sorted(enumerate(picks), key=lambda t: (order[id(t[1][0])], t[0]))
    rows = [int(p.rows[j]) for _, (p, j, _) in ranked]
    picked = frame[rows] if rows else frame.clear()
    confidence = (
        picked["confidence"].cast(pl.Float64)
        if pool.has_confidence
        else pl.Series("confidence", [None] * picked.height, dtype=pl.Float64)
    )
    similarity, scores, reasons, gap_names = [], [], [], []
    for _, (p, j, gain) in ranked:
        sim = None if p.similarity is None else float(p.similarity[j])
        similarity.append(sim)
        scores.append(float(min(1.0, max(0.0, gain))))
        gap_names.append(p.spec.gap)
        near = "no labeled example" if sim is None else f"cosine {sim:.2f} to its nearest example"
        if j in p.searched:
            reasons.append(
                f"fills {p.spec.gap} ({p.spec.summary}): likely of the class "
                f"{p.searched_class!r} (probability {gain:.2f}), which the labels under-weigh; "
                f"spread over its likeliest members so the labeled classes even out; {near}"
            )
        elif j in p.at_random:
            reasons.append(
                f"fills {p.spec.gap} ({p.spec.summary}): drawn at random by its "
                f"{p.weight_source} weight ({p.random_share:.0%} of the quota left after "
                "uncertainty, as the model's classes barely follow the embedding's "
                f"neighbourhoods there); {near}"
            )
        elif j in p.by_uncertainty:
            reasons.append(
                f"fills {p.spec.gap} ({p.spec.summary}): the model is unsure of it (margin "
                f"{1.0 - gain:.2f} between its two likeliest classes; "
                f"{p.uncertainty_share:.0%} of the gap's quota goes by uncertainty, as the "
                f"assets the model is unsure of lie in sparse places); {near}"
            )
        else:
            reasons.append(
                f"fills {p.spec.gap} ({p.spec.summary}): covers {gain:.1%} of its region's "
                f"{p.weight_source}-weighted mass not yet covered; {near}"
            )
    table = pl.DataFrame(
        {
            "asset_id": picked["asset_id"],
            "index_id": picked["_index_id"],
            "gap": pl.Series(gap_names, dtype=pl.String),
            "similarity": pl.Series(similarity, dtype=pl.Float64),
            "confidence": confidence,
            "score": pl.Series(scores, dtype=pl.Float64),
            "reason": pl.Series(reasons, dtype=pl.String),
        }
    )
    allocation = pl.DataFrame(
        [
            {
                "gap": p.spec.gap,
                "kind": p.spec.kind,
                "deficit": p.spec.deficit,
                "quota": p.quota,
                "picked": p.picked,
                "examined": len(p.rows) if p.note_blocks is None else 0,
                "near_duplicates": 0,
                "note": p.note_blocks or p.note,
            }
            for p in plans
        ],
        schema=_ALLOCATION_SCHEMA,
    )
    logger.debug("fill_gaps (coverage): %d picks for %d gaps", table.height, len(plans))
    return Candidates(table, allocation, budget=budget)
