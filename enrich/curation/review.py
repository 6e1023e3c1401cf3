"""The review queue: which assets an expert should label next, and why.

:func:`review_queue` scores every asset of an enriched table (see
:func:`enrich.models.output.enriched_table`) on the signals that a label is doubtful -- low
confidence, LFs in conflict, no LF vote, annotators disagreeing, a trained model disagreeing
with the label, a gap-filling candidate -- and returns the top ``batch_size`` as a
:class:`ReviewQueue`, each with every reason that picked it.

Scoring (deterministic)
-----------------------
Each reason ``r`` that applies to an asset has a severity ``s_r`` in ``[0, 1]`` and adds
``weight_r * (0.5 + 0.5 * s_r)`` to the asset's score: having a reason counts for half its
weight, how bad it is for the other half, so an asset with several reasons outranks one with
a single extreme reason of equal weight. Ties are broken at random (seeded by
``random_state``, 0 by default) and, with ``slices=``, taken in turns from each slice, so
that a large tied group (e.g. one score shared by 1,779 assets) is not cut by asset id.

- ``model_disagreement``: the model's label differs from ours; severity = the model's
  ``confidence`` if given, else 1.
- ``annotator_disagreement``: ``agreement < min_agreement``; severity = ``1 - agreement``.
- ``low_confidence``: ``confidence < low_confidence``; severity =
  ``1 - confidence / low_confidence``.
- ``lf_conflict``: ``conflict`` is true; severity = share of LF votes against the label
  (from the ``vote_<lf>`` columns; 1 without them).
- ``no_lf_votes``: ``all_abstain`` is true; severity = 1 (with ``purpose="refit"``, how
  evenly the model's probabilities split: see below).
- ``gap_candidate``: the asset is in ``candidates``; severity = its ``score``, else 1.
- ``gold_suspect``: the asset is in ``suspect_labels`` (its gold or annotator label is likely
  wrong, e.g. :func:`enrich.analysis.label_errors.find_label_errors`); severity =
  ``1 - label_quality`` if given, else 1.

Purpose: correct labels, or refit the label model
-------------------------------------------------
``purpose="correct"`` (the default) ranks as above: the assets whose own label is most
doubtful come first, which is what an expert correcting labels wants.

``purpose="refit"`` picks gold meant to refit the label model (``LabelModel.fit(L, y)``),
which learns how reliable each LF is from the LF vote patterns, each weighted by how many
assets share it. Two things change:

- the reasons' default weights: ``low_confidence`` gets weight 0 (a conflict tells the
  model which LF was wrong, exactly where it cannot tell unaided), other reasons keep 1.
  ``weights`` still overrides any reason.
- a conflict is scored by how evenly the LF votes split, whatever the label (the share of
  votes outside the most voted class over its value for an even split: 1 for a tie, 2/3 for
  two votes to one, 1/2 for three to one), without the ``0.5 +`` floor of the other
  reasons: the gold label of a tie says the most about which LF to trust, that of a
  lopsided split little more than the majority already did. (The share of votes against
  the label, as for ``"correct"``, rated a 2-to-1 split against the label above a tie and
  lost 0.7 to 0.8 points to "most conflicting votes first" after a third round on youtube.)
- an asset no LF voted on is scored by how evenly the model's probabilities split (the
  share outside its likeliest class over ``1 - 1/k``; 1 without ``proba_*`` columns), also
  without the floor: such assets say nothing about the LFs, but their gold is what tells the
  label model which class they have (it labels them all with one class, from the class
  balance, until gold shows another is more common there). They form one vote pattern (no
  votes), allocated like the others. (Weighing them 0, as before, lost 4 to 6 points to
  lowest-confidence picks on the MNIST and 8x8 digits sets with image LFs, where 30 to 35%
  of the assets have no vote and the class balance named a class only 1 to 5% of them had,
  and 12 to 20 points to random picks on a synthetic set with skewed coverage.)
  With the reviewed labels (``gold=``), that score is multiplied by the share of the
  expected loss still to recover there: with the class mix of those assets unknown (a flat
  Dirichlet prior, updated by the reviewed labels of such assets), labelling them all with
  the model's one class loses ``max(mix) - mix[class]`` of them, and its posterior mean over
  its mean before review is that share (:func:`~enrich.curation.review_reasons.remaining_loss`).
  Labels that show an even mix (a coin flip, which no class choice fixes) or confirm the
  model's class release picks to the conflicts; labels that name another class keep them.
  (Before any review the two cannot be told apart: a sentiment set whose unvoted sentences
  are 51% positive and an image set where the class balance names a class only 5% of them
  have look alike.)
- the batch is spread over LF vote patterns (the ``vote_<lf>`` columns) instead of being cut
  from the top of the ranking: assets with one pattern carry the same information about the
  LFs, and without spreading one large pattern can fill the whole batch (its assets tie).
  Each pattern is a stratum and the batch is allocated as in stratified sampling (Neyman
  allocation, computed greedily): the next pick of pattern ``p`` has priority
  ``score * n_p / sqrt((g + 1) * (g + 2))``, where ``n_p`` is the number of assets of the
  enriched table with that pattern and ``g`` the number already picked or reviewed
  (``exclude``) among them. A large doubtful pattern gets several picks, each worth less
  than the one before; a small one gets a pick when its first beats their next. Within a
  pattern the best-scored asset goes first. An asset absent from the enriched table (a gap
  candidate) is a pattern of its own.

``benchmarks/review_loop.py`` compares ``"refit"`` with random, lowest-confidence and
most-conflicting picks (label model refitted after each round, 10 seeds) on WRENCH youtube
and trec and on held-out sets (crowds, text and image LFs, synthetic failure modes).
Figures in ``benchmarks/RESULTS.md``.

Examples
--------
>>> import polars as pl
>>> from enrich.curation.review import review_queue
>>> enriched = pl.DataFrame({
...     "asset_id": ["a", "b", "c", "d"], "label": [1, 0, 1, 0],
...     "confidence": [0.95, 0.55, 0.65, 0.99], "conflict": [False, True, False, False],
...     "all_abstain": [False, False, False, False]})
>>> queue = review_queue(enriched, batch_size=2)
>>> queue.table.select("asset_id", "reasons").rows()
[('b', ['low_confidence', 'lf_conflict']), ('c', ['low_confidence'])]

For refitting, picks are spread over LF vote patterns: ``a*`` share one conflicting
pattern (kw=1, short=0), ``b*`` the other (kw=0, short=1); ``c1`` has no conflict. The
five conflicts tie on score (which of a pattern's assets comes first is random, seeded).

>>> votes = pl.DataFrame({
...     "asset_id": ["a1", "a2", "a3", "b1", "b2", "c1"], "label": [1, 1, 1, 0, 0, 1],
...     "confidence": [0.6] * 6, "conflict": [True] * 5 + [False],
...     "vote_kw": [1, 1, 1, 0, 0, 1], "vote_short": [0, 0, 0, 1, 1, -1]})
>>> refit = review_queue(votes, batch_size=3, purpose="refit")
>>> [asset[0] for asset in refit.asset_ids]
['a', 'b', 'a']

``"refit"`` fills the batch it is asked for: past the five conflicts, ``c1`` tops it up.

>>> refit = review_queue(votes, batch_size=6, purpose="refit")
>>> refit.n_topped_up, refit.asset_ids[-1]
(1, 'c1')
>>> "top-up: no reason left among the unreviewed assets" in refit.table["why"][-1]
True
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Literal

import numpy as np
import polars as pl

from enrich._internal.display import ColumnFormat, TableDisplay
from enrich._internal.frames import as_polars, require_columns, require_unique_ids
from enrich._internal.random import check_random_state
from enrich.analysis.gold import gold_vector
from enrich.curation.review_reasons import (
    Inputs,
    agreement_frame,
    keyed,
    model_frame,
    reasons_of,
    scores_of,
    text_like,
)
from enrich.errors import InputError, MissingColumnError

__all__ = ["REASONS", "ReviewPurpose", "ReviewQueue", "queue_from_votes", "review_queue"]

logger = logging.getLogger(__name__)

#: Every reason the queue can give, in the order reasons are listed for an asset.
REASONS: Final[tuple[str, ...]] = (
    "model_disagreement",
    "annotator_disagreement",
    "low_confidence",
    "lf_conflict",
    "no_lf_votes",
    "gap_candidate",
    "gold_suspect",
)
_DEFAULT_WEIGHTS: Final[Mapping[str, float]] = dict.fromkeys(REASONS, 1.0)

#: What the reviewed gold is for (see the module docstring): ``"correct"`` the queued labels,
#: or ``"refit"`` the label model.
ReviewPurpose = Literal["correct", "refit"]
_PURPOSES: Final[tuple[str, ...]] = ("correct", "refit")
#: Reasons whose default weight a purpose changes (the others keep 1.0).
_PURPOSE_WEIGHTS: Final[Mapping[str, Mapping[str, float]]] = {
    "correct": {},
    "refit": {"low_confidence": 0.0},
}


class ReviewQueue(TableDisplay):
    """Assets chosen for expert review, best first, as returned by :func:`review_queue`.

    Attributes
    ----------
    table : polars.DataFrame
        One row per picked asset, no duplicates: ``rank`` (1 = review first), ``asset_id``,
        ``score``, ``reasons`` (list of reason names), ``why`` (one readable line),
        ``label``, ``label_name`` (when the enriched table has it) and ``confidence`` --
        null for gap candidates not in the enriched table.
    asset_ids : polars.Series
        The picked asset ids, in rank order.
    n_eligible : int
        Assets that had at least one reason, before the batch was cut.
    n_topped_up : int
        Picks without a reason, added by ``purpose="refit"`` to fill the batch.
    reason_counts : dict
        Picked assets per reason.
    """

    display_max_rows = 30

    def __init__(
        self, table: pl.DataFrame, *, n_eligible: int, n_assets: int, n_topped_up: int = 0
    ) -> None:
        self.table = table
        self.n_eligible = n_eligible
        self.n_assets = n_assets
        self.n_topped_up = n_topped_up
        exploded = table.select(pl.col("reasons").explode())["reasons"]
        counts = exploded.drop_nulls().value_counts()
        found = dict(zip(counts["reasons"].to_list(), counts["count"].to_list(), strict=True))
        self.reason_counts = {r: int(found[r]) for r in REASONS if r in found}

    @property
    def asset_ids(self) -> pl.Series:
        """The picked asset ids, in rank order."""
        return self.table["asset_id"]

    def __len__(self) -> int:
        return self.table.height

    def to_pandas(self) -> Any:
        """:attr:`table` as a pandas DataFrame (``reasons`` holds arrays)."""
        return self.table.to_pandas()

    # -- display hooks -------------------------------------------------------------------
    def _display_table(self) -> pl.DataFrame:
        return self.table.drop("reasons")

    def _display_title(self) -> str:
        return (
            f"Review queue: {self.table.height:,} of {self.n_eligible:,} eligible assets "
            f"({self.n_assets:,} assets scored)"
        )

    def _display_totals(self) -> Mapping[str, str]:
        return {reason: f"{count:,}" for reason, count in self.reason_counts.items()}

    def _display_formats(self) -> Mapping[str, ColumnFormat]:
        return {"score": "float", "confidence": "float", "rank": "int"}


def review_queue(
    enriched: Any,
    *,
    batch_size: int = 50,
    low_confidence: float = 0.7,
    model_predictions: Any = None,
    annotations_agreement: Any = None,
    min_agreement: float = 0.8,
    candidates: Any = None,
    suspect_labels: Any = None,
    exclude: Any = None,
    weights: Mapping[str, float] | None = None,
    purpose: ReviewPurpose = "correct",
    slices: Sequence[str] = (),
    random_state: Any = 0,
    gold: Any = None,
    pattern_counts: Any = None,
) -> ReviewQueue:
    """Rank assets for expert review and keep the top ``batch_size``, each with its reasons.

    Parameters
    ----------
    enriched
        The enriched table (polars/pandas/Arrow): ``asset_id``, ``label``, ``confidence``,
        ``conflict``; optionally ``all_abstain`` (for ``no_lf_votes``), ``label_name`` and
        ``vote_<lf>`` columns (for the conflict severity). Asset ids must be unique.
    batch_size
        Most assets to return (>= 1).
    low_confidence
        Confidence below which ``low_confidence`` applies, in (0, 1].
    model_predictions
        Optional table: ``asset_id`` and ``label`` (class id) or ``label_name``, optionally
        ``confidence``: a model trained on the labels. Where it disagrees with the enriched
        label, ``model_disagreement`` applies. One row per asset.
    annotations_agreement
        Optional table: ``asset_id``, ``agreement`` in [0, 1] (share of human annotators
        agreeing). Below ``min_agreement``, ``annotator_disagreement`` applies.
    min_agreement
        Agreement threshold for ``annotator_disagreement``, in (0, 1].
    candidates
        Optional table of gap-filling candidates: ``asset_id``, optionally ``reason``
        (text shown in ``why``) and ``score`` in [0, 1]. An asset listed several times
        (several gaps) is one candidate: reasons joined, highest score kept. Candidates
        missing from ``enriched`` are queued with null label and confidence.
    suspect_labels
        Optional table of likely wrong gold or annotator labels, e.g.
        ``find_label_errors(...).table``: ``asset_id``, optionally ``label_quality`` in
        [0, 1] (low = likely wrong) and ``suggested_label_name`` or ``suggested_label``
        (shown in ``why``). These assets are gold already: do not list them in ``exclude``.
    exclude
        Asset ids never to queue (already reviewed or gold): a table with ``asset_id``, a
        Series, or a sequence.
    weights
        Per-reason weights overriding the purpose's defaults (1.0; with ``"refit"``,
        ``low_confidence`` is 0). Keys from :data:`REASONS`. A weight
        of 0 turns a reason off: it still shows on an asset picked for another reason, but
        an asset whose score is 0 is not queued.
    purpose
        ``"correct"`` (default): the most doubtful labels first, for experts who correct
        them. ``"refit"``: gold to refit the label model with -- conflicts and assets
        without votes by default,
        the batch spread over LF vote patterns (needs the ``vote_<lf>`` columns; ranks then
        follow the allocation, not ``score``, and ``why`` names the pattern's size). Choose
        ``"refit"`` when the reviewed labels go back into ``LabelModel.fit(L, y)``; see the
        module docstring for the rule and the benchmark. ``"refit"`` always returns
        ``batch_size`` assets while unreviewed ones are left: when fewer have a reason, the
        rest is a stratified sample over the vote patterns of the assets left (those some LF
        voted on first), with a ``why`` that says so
        (:attr:`ReviewQueue.n_topped_up` counts them).
    slices
        Columns of ``enriched`` to spread ties over: assets with equal scores are taken in
        turns from each value of these columns (in a random order), so one large slice
        cannot fill the batch by the luck of its ids.
    random_state
        None, an int or a numpy Generator: breaks ties between equal scores at random
        (default 0: the same queue for the same table).
    gold
        Optional reviewed labels: a table with ``asset_id`` and ``label`` (class id: the
        position of its ``proba_*`` column) or ``label_name`` (``proba_<name>``). These
        assets are never queued (as with ``exclude``). With ``"refit"``, the labels of the
        assets no LF voted on also say how much their class is still worth reviewing (see
        the module docstring).
    pattern_counts
        With ``"refit"``, when ``enriched`` holds only some of the assets (a partitioned
        run's candidates): the LF vote patterns over all of them, their ``vote_<lf>``
        columns, ``n_assets`` and ``n_reviewed`` (of those, the reviewed or gold ones). The
        batch is then allocated by these sizes, as on the whole table; a pattern missing
        from it is sized by ``enriched``. An optional ``label`` column (the reviewed class
        id, as for ``gold``; -1 for none) splits each pattern's rows by it: without
        ``gold``, the reviewed labels of the assets no LF voted on are read from there.

    Returns
    -------
    ReviewQueue

    Raises
    ------
    InputError
        On missing columns, repeated asset ids, values out of range, unknown reason names in
        ``weights``, an unknown ``purpose``, no ``vote_<lf>`` column with ``"refit"``, gold
        labels that name no ``proba_*`` column, or a bad ``batch_size``.
    """
    table = as_polars(enriched)
    _check_options(batch_size, low_confidence, min_agreement, purpose)
    weight = _weights(weights, purpose)
    require_columns(
        table,
        [(c, "review_queue") for c in ("asset_id", "label", "confidence", "conflict")],
        what="function",
    )
    require_unique_ids(table["asset_id"], "the enriched table")
    ids_dtype = table.schema["asset_id"]
    has_names = "label_name" in table.columns
    base_columns = ["asset_id", "label", *(["label_name"] if has_names else []), "confidence"]
    base = table.select(base_columns)

    confidence = table["confidence"].cast(pl.Float64)
    # a row without a label (no LF voted) has no confidence either; any other must have one
    stray_nulls = int((confidence.is_null() & table["label"].is_not_null()).sum())
    if stray_nulls or (confidence.is_nan() | (confidence < 0) | (confidence > 1)).any():
        raise InputError(
            "enriched column 'confidence' must hold values in [0, 1] (null only where the "
            f"label is null); got min {confidence.min()!r}, max {confidence.max()!r}, "
            f"{stray_nulls} null(s) beside a label"
        )
    reviewed = None if gold is None else keyed(gold, "gold", ids_dtype)
    if reviewed is not None:
        require_unique_ids(reviewed["asset_id"], "gold")
    counts = (
        _checked_pattern_counts(pattern_counts, table)
        if pattern_counts is not None and purpose == "refit"
        else None
    )
    inputs = Inputs(
        table=table,
        base=base,
        has_names=has_names,
        low_confidence=low_confidence,
        model=None if model_predictions is None else model_frame(model_predictions, ids_dtype),
        agreement=(
            None
            if annotations_agreement is None
            else agreement_frame(annotations_agreement, ids_dtype)
        ),
        min_agreement=min_agreement,
        candidates=None if candidates is None else keyed(candidates, "candidates", ids_dtype),
        suspects=(
            None if suspect_labels is None else keyed(suspect_labels, "suspect_labels", ids_dtype)
        ),
        conflict_severity="split" if purpose == "refit" else "against_label",
        unvoted_gold=(
            _unvoted_gold(table, reviewed)
            if gold is not None
            else _unvoted_gold_counted(table, counts)
            if counts is not None
            else None
        ),
    )
    # Score every asset from the reasons alone; write the readable details for the picks only.
    scored = scores_of(inputs, weight)
    excluded = _excluded(exclude, ids_dtype)
    if gold is not None:
        reviewed_ids = reviewed["asset_id"]
        excluded = reviewed_ids if excluded is None else pl.concat([excluded, reviewed_ids])
    if excluded is not None:
        scored = scored.filter(~pl.col("asset_id").is_in(excluded.implode()))
    n_eligible = scored.height
    scored = _tie_order(scored, table, slices, check_random_state(random_state))
    n_topped_up = 0
    if purpose == "refit":
        sizes = None if counts is None else _pattern_sizes(counts, table)
        top = _spread_over_patterns(table, scored, excluded, batch_size, sizes)
        if top.height < batch_size:
            top, n_topped_up = _top_up(table, top, excluded, batch_size, random_state, sizes)
    else:
        top = scored.sort(["score", "_spread", "_tie"], descending=[True, False, False]).head(
            batch_size
        )

    order = {r: i for i, r in enumerate(REASONS)}
    explained = (
        reasons_of(inputs.restricted_to(top["asset_id"]), details=True)
        .with_columns(pl.col("reason").replace_strict(order, return_dtype=pl.Int64).alias("_o"))
        .sort("asset_id", "_o")
        .group_by("asset_id", maintain_order=True)
        .agg(pl.col("reason").alias("reasons"), pl.col("detail").str.join("; ").alias("why"))
    )
    if "_pattern_note" in top.columns:
        explained = (
            top.select("asset_id", "_pattern_note")
            .join(explained, on="asset_id", how="left")
            .select(
                "asset_id",
                pl.col("reasons").fill_null(pl.lit([], dtype=pl.List(pl.String))),
                pl.concat_str("why", "_pattern_note", separator="; ", ignore_nulls=True),
            )
        )
    picked = (
        top.select("asset_id", "score")
        .join(explained, on="asset_id", how="left", maintain_order="left")
        .join(base, on="asset_id", how="left", maintain_order="left")
        .with_row_index("rank", offset=1)
        .with_columns(pl.col("rank").cast(pl.Int64))
        .select("rank", "asset_id", "score", "reasons", "why", *base_columns[1:])
    )
    logger.debug("review_queue picked %d of %d eligible assets", picked.height, n_eligible)
    return ReviewQueue(
        picked, n_eligible=n_eligible, n_assets=table.height, n_topped_up=n_topped_up
    )


def queue_from_votes(
    votes: Any,
    probabilities: Any,
    *,
    batch_size: int = 50,
    purpose: ReviewPurpose = "refit",
    exclude: Any = None,
    asset_ids: Any = None,
    lf_names: Sequence[str] | None = None,
    random_state: Any = 0,
    gold: Any = None,
    **options: Any,
) -> ReviewQueue:
    """The review queue straight from a vote matrix and a label model's probabilities.

    Builds the table :func:`review_queue` reads (label, confidence, conflict, all-abstain,
    one ``vote_<lf>`` column per LF) and queues from it: no enriched table, run id or id
    mapping needed. With the default ids (row numbers), the queued ``asset_ids`` are the
    rows of ``votes`` to review.

    Parameters
    ----------
    votes
        int array ``(n, m)``, classes ``0..k-1``, abstain ``-1`` (or a
        :class:`~enrich.votes.VoteMatrix`, whose asset ids and LF names are used).
    probabilities
        float array ``(n, k)``: the label model's ``predict_proba(votes)``.
    batch_size, purpose, exclude, random_state
        As in :func:`review_queue`; ``purpose`` defaults to ``"refit"`` here (gold for
        ``LabelModel.fit(L, y)``), and ``exclude`` takes row numbers with the default ids.
    asset_ids
        Optional ids, one per row (default: ``0..n-1``).
    lf_names
        Optional LF names for the ``vote_<lf>`` columns (default ``lf0``, ``lf1``, ...).
    gold
        Optional int array ``(n,)`` of reviewed labels, ``-1`` where none: the ``y`` of
        ``LabelModel.fit(L, y)``. Its rows are never queued; with ``"refit"`` the labels of
        rows without votes also weigh how much more of them to review (see
        :func:`review_queue`).
    **options
        Any other keyword of :func:`review_queue` (``weights``, ``candidates``, ...).

    Returns
    -------
    ReviewQueue

    Raises
    ------
    InputError
        Shapes that do not match, votes outside ``-1..k-1``, probabilities outside [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> L = np.array([[0, 1], [0, 1], [1, 1], [0, -1], [-1, -1]])
    >>> P = np.array([[0.5, 0.5], [0.5, 0.5], [0.1, 0.9], [0.8, 0.2], [0.6, 0.4]])
    >>> queue = queue_from_votes(L, P, batch_size=3)
    >>> sorted(queue.asset_ids.to_list()), queue.n_topped_up
    ([0, 1, 4], 0)

    Rows 0 and 1 split their votes 1 to 1; row 4 has no vote, and the model splits 0.6 to
    0.4 on it (score 0.8).
    """
    if hasattr(votes, "votes") and hasattr(votes, "lf_names"):
        if asset_ids is None:
            asset_ids = votes.asset_ids
        if lf_names is None:
            lf_names = list(votes.lf_names)
        votes = votes.votes
    L = np.asarray(votes)
    P = np.asarray(probabilities, dtype=np.float64)
    if L.ndim != 2 or not np.issubdtype(L.dtype, np.integer):
        raise InputError(f"votes must be an int array (n_assets, n_lfs); got {L.dtype} {L.shape}")
    if P.ndim != 2 or P.shape[0] != L.shape[0] or P.shape[1] < 2:
        raise InputError(
            f"probabilities must be (n_assets, k) = ({L.shape[0]}, k >= 2), one row per row of "
            f"votes; got shape {P.shape}"
        )
    if not np.isfinite(P).all() or P.min() < 0 or P.max() > 1:
        raise InputError("probabilities must be finite and in [0, 1] (a predict_proba output)")
    k = P.shape[1]
    if L.size and (L.min() < -1 or L.max() >= k):
        raise InputError(
            f"votes must be class ids 0..{k - 1} or -1 (abstain); got values from {L.min()} "
            f"to {L.max()}"
        )
    names = [f"lf{j}" for j in range(L.shape[1])] if lf_names is None else list(lf_names)
    if len(names) != L.shape[1] or len(set(names)) != len(names):
        raise InputError(f"lf_names must name each of the {L.shape[1]} LFs once; got {names}")
    ids = (
        pl.Series("asset_id", np.arange(L.shape[0], dtype=np.int64))
        if asset_ids is None
        else pl.Series("asset_id", asset_ids)
    )
    if ids.len() != L.shape[0]:
        raise InputError(f"asset_ids has {ids.len()} ids for {L.shape[0]} rows of votes")
    if gold is not None:
        y = np.asarray(gold)
        if y.shape != (L.shape[0],) or not np.issubdtype(y.dtype, np.integer):
            raise InputError(
                f"gold must be an int array with one label per row of votes ({L.shape[0]}), "
                f"-1 where none; got {y.dtype} {y.shape}"
            )
        if y.size and (y.min() < -1 or y.max() >= k):
            raise InputError(f"gold must be class ids 0..{k - 1} or -1; got {y.min()}..{y.max()}")
        known = y >= 0
        gold = pl.DataFrame({"asset_id": ids.filter(pl.Series(known)), "label": y[known]})
    voted = L >= 0
    any_vote = voted.any(axis=1)
    label = P.argmax(axis=1)
    high = np.where(voted, L, -1).max(axis=1)
    low = np.where(voted, L, k).min(axis=1)
    table = pl.DataFrame(
        {
            "asset_id": ids,
            "label": pl.Series(np.where(any_vote, label, -1), dtype=pl.Int64).replace(-1, None),
            "confidence": pl.Series(np.where(any_vote, P.max(axis=1), np.nan)).fill_nan(None),
            "conflict": pl.Series(any_vote & (high != low), dtype=pl.Boolean),
            "all_abstain": pl.Series(~any_vote, dtype=pl.Boolean),
            **{f"proba_{c}": pl.Series(P[:, c]) for c in range(k)},
            **{f"vote_{n}": pl.Series(L[:, j], dtype=pl.Int64) for j, n in enumerate(names)},
        }
    )
    return review_queue(
        table,
        batch_size=batch_size,
        purpose=purpose,
        exclude=exclude,
        random_state=random_state,
        gold=gold,
        **options,
    )


def _tie_order(
    scored: pl.DataFrame, table: pl.DataFrame, slices: Sequence[str], rng: np.random.Generator
) -> pl.DataFrame:
    """Add ``_tie`` (a random order) and ``_spread`` (an asset's turn among its slice's ties).

    Ties then go in turns over slices, at random within each.
    """
    if isinstance(slices, str):
        raise InputError(f"slices must be a list of column names, e.g. ['video']; got {slices!r}")
    missing = [c for c in slices if c not in table.columns]
    if missing:
        raise MissingColumnError(
            f"slices names column(s) {missing} that the enriched table does not have "
            f"(columns: {table.columns})"
        )
    tie = pl.Series("_tie", rng.permutation(scored.height), dtype=pl.Int64)
    out = scored.with_columns(tie)
    if not slices:
        return out.with_columns(pl.lit(0, dtype=pl.Int64).alias("_spread"))
    keys = table.select(
        "asset_id", *(pl.col(c).cast(pl.String).alias(f"_s{i}") for i, c in enumerate(slices))
    )
    out = out.join(keys, on="asset_id", how="left", maintain_order="left")
    parts = ["score", *(f"_s{i}" for i in range(len(slices)))]
    spread = pl.col("_tie").rank("ordinal").over(parts).cast(pl.Int64).alias("_spread")
    return out.with_columns(spread).drop(f"_s{i}" for i in range(len(slices)))


def _top_up(
    table: pl.DataFrame,
    top: pl.DataFrame,
    excluded: pl.Series | None,
    batch_size: int,
    random_state: Any,
    sizes: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, int]:
    """Fill a short refit batch from the assets left, spread over vote patterns as above.

    A stratified sample over the vote patterns, assets some LF voted on first.
    """
    taken = top["asset_id"] if excluded is None else pl.concat([excluded, top["asset_id"]])
    left = table.filter(~pl.col("asset_id").is_in(taken.implode()))
    if not left.height:
        return top, 0
    vote_columns = [c for c in table.columns if c.startswith("vote_")]
    voted = pl.any_horizontal(pl.col(c).fill_null(-1) >= 0 for c in vote_columns)
    # every voted-on asset gets the same score, so the pattern sizes decide (a stratified
    # sample); the ones no LF voted on come last (they say nothing about the LFs). Ranking
    # the top-up by low confidence instead was measured: it lost 0.8 points on youtube.
    filler = left.select("asset_id", pl.when(voted).then(1.0).otherwise(1e-6).alias("score"))
    filler = _tie_order(filler, table, (), check_random_state(random_state))
    more = _spread_over_patterns(table, filler, taken, batch_size - top.height, sizes)
    more = more.with_columns(
        pl.lit(0.0).alias("score"),
        pl.concat_str(
            pl.lit("top-up: no reason left among the unreviewed assets"),
            pl.col("_pattern_note"),
            separator="; ",
            ignore_nulls=True,
        ).alias("_pattern_note"),
    )
    return pl.concat([top, more], how="vertical_relaxed"), more.height


# -- refit: spread the batch over LF vote patterns ------------------------------------------
def _spread_over_patterns(
    table: pl.DataFrame,
    scored: pl.DataFrame,
    excluded: pl.Series | None,
    batch_size: int,
    sizes: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The ``batch_size`` best picks by Neyman priority over vote patterns (module docstring).

    ``scored`` holds ``asset_id`` and ``score`` of the eligible assets; returns the picks in
    order with ``score`` and ``_pattern_note`` (the text added to ``why``; null for an
    asset absent from the enriched table). ``sizes`` (:func:`_pattern_sizes`) overrides
    the patterns' sizes counted in ``table``.
    """
    vote_columns = [c for c in table.columns if c.startswith("vote_")]
    if not vote_columns:
        raise InputError(
            "purpose='refit' spreads the batch over LF vote patterns, but the enriched table has "
            f"no 'vote_<lf>' column (columns: {table.columns}); pass the table that "
            "enrich.models.output.enriched_table writes, or use purpose='correct'"
        )
    reviewed = pl.lit(False) if excluded is None else pl.col("asset_id").is_in(excluded.implode())
    keys = table.select(
        "asset_id", *(pl.col(c).fill_null(-1) for c in vote_columns), reviewed.alias("_r")
    )
    patterns = (
        keys.group_by(vote_columns, maintain_order=True)
        .agg(pl.len().alias("_n"), pl.col("_r").sum().alias("_reviewed"))
        .with_row_index("_pattern")
    )
    if sizes is not None:
        patterns = patterns.join(
            sizes, on=vote_columns, how="left", suffix="_all", maintain_order="left"
        ).select(
            "_pattern",
            *vote_columns,
            pl.col("_n_all").fill_null(pl.col("_n")).alias("_n"),
            pl.col("_reviewed_all").fill_null(pl.col("_reviewed")).alias("_reviewed"),
        )
    of_asset = keys.join(patterns, on=vote_columns, how="left").select(
        "asset_id", pl.col("_pattern").cast(pl.Int64), pl.col("_n").cast(pl.Int64), "_reviewed"
    )
    # An asset absent from the enriched table (a gap candidate) is a pattern of its own.
    alone = -1 - pl.int_range(pl.len(), dtype=pl.Int64)
    before = pl.col("_reviewed") + pl.int_range(pl.len(), dtype=pl.Int64).over("_pattern")
    priority = (
        pl.col("score") * pl.col("_n") / ((before + 1) * (before + 2)).cast(pl.Float64).sqrt()
    )
    ranked = (
        scored.join(of_asset, on="asset_id", how="left")
        .with_columns(
            pl.col("_pattern").fill_null(alone),
            pl.col("_n").fill_null(1),
            pl.col("_reviewed").cast(pl.Int64).fill_null(0),
        )
        .sort(["score", "_tie"], descending=[True, False])
        .with_columns(before.alias("_before"))
        .with_columns(priority.round(9).alias("_priority"))
        .sort(["_priority", "score", "_tie"], descending=[True, True, False])
        .head(batch_size)
    )
    note = pl.when(pl.col("_pattern") >= 0).then(
        pl.format(
            "pick {} from a vote pattern of {} assets ({} reviewed)",
            pl.col("_before") - pl.col("_reviewed") + 1,
            "_n",
            "_reviewed",
        )
    )
    return ranked.select("asset_id", "score", note.alias("_pattern_note"))


def _checked_pattern_counts(pattern_counts: Any, table: pl.DataFrame) -> pl.DataFrame:
    """``pattern_counts`` as polars, with the vote columns of ``table`` and both counts."""
    counts = as_polars(pattern_counts)
    vote_columns = [c for c in table.columns if c.startswith("vote_")]
    missing = [c for c in (*vote_columns, "n_assets", "n_reviewed") if c not in counts.columns]
    if missing:
        raise MissingColumnError(
            f"pattern_counts lacks {missing}: it needs the enriched table's vote columns "
            f"{vote_columns}, 'n_assets' and 'n_reviewed' (one row per vote pattern)"
        )
    return counts


def _pattern_sizes(counts: pl.DataFrame, table: pl.DataFrame) -> pl.DataFrame:
    """Each vote pattern's ``_n_all`` and ``_reviewed_all`` (checked ``counts`` summed)."""
    vote_columns = [c for c in table.columns if c.startswith("vote_")]
    return counts.group_by(
        *(pl.col(c).fill_null(-1).cast(table.schema[c]) for c in vote_columns)
    ).agg(
        pl.col("n_assets").sum().cast(pl.Int64).alias("_n_all"),
        pl.col("n_reviewed").sum().cast(pl.Int64).alias("_reviewed_all"),
    )


# -- reasons -----------------------------------------------------------------------------


# -- validation --------------------------------------------------------------------------
def _check_options(
    batch_size: int, low_confidence: float, min_agreement: float, purpose: str
) -> None:
    if purpose not in _PURPOSES:
        raise InputError(f"purpose must be one of {list(_PURPOSES)}, got {purpose!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    if not (isinstance(low_confidence, int | float) and 0 < low_confidence <= 1):
        raise InputError(f"low_confidence must be in (0, 1], got {low_confidence!r}")
    if not (isinstance(min_agreement, int | float) and 0 < min_agreement <= 1):
        raise InputError(f"min_agreement must be in (0, 1], got {min_agreement!r}")


def _weights(weights: Mapping[str, float] | None, purpose: str) -> dict[str, float]:
    out = {**_DEFAULT_WEIGHTS, **_PURPOSE_WEIGHTS[purpose]}
    if weights is None:
        return out
    unknown = sorted(set(weights) - set(REASONS))
    if unknown:
        raise InputError(f"weights names unknown reason(s) {unknown}; reasons are {list(REASONS)}")
    for reason, w in weights.items():
        if isinstance(w, bool) or not isinstance(w, int | float) or not w >= 0:
            raise InputError(f"weight of {reason!r} must be a number >= 0, got {w!r}")
        out[reason] = float(w)
    return out


def _unvoted_gold(table: pl.DataFrame, gold: pl.DataFrame) -> np.ndarray | None:
    """Class counts of the reviewed labels of assets no LF voted on (None: none such).

    The classes are the ``proba_*`` columns in order: ``label`` is a position among them,
    ``label_name`` the name after ``proba_`` (read by
    :func:`~enrich.analysis.gold.gold_vector`). Without two such columns the labels cannot
    be read against the model's classes, and the gold only leaves its assets out.
    """
    names = [c.removeprefix("proba_") for c in table.columns if c.startswith("proba_")]
    if "all_abstain" not in table.columns or len(names) < 2:
        return None
    y = gold_vector(gold, table["asset_id"], names)
    unvoted = table["all_abstain"].fill_null(False).to_numpy() & (y >= 0)
    return np.bincount(y[unvoted], minlength=len(names)).astype(np.float64)


def _unvoted_gold_counted(table: pl.DataFrame, counts: pl.DataFrame) -> np.ndarray | None:
    """As :func:`_unvoted_gold`, from checked pattern ``counts`` by reviewed ``label`` (class id).

    None without a ``label`` column or without two ``proba_*`` columns in ``table``.
    """
    k = sum(c.startswith("proba_") for c in table.columns)
    if "label" not in counts.columns or k < 2:
        return None
    votes = [c for c in table.columns if c.startswith("vote_")]
    unvoted = pl.all_horizontal(pl.col(c).fill_null(-1) < 0 for c in votes)
    known = counts.filter(unvoted & (pl.col("label") >= 0) & (pl.col("label") < k))
    return np.bincount(
        known["label"].to_numpy().astype(np.int64),
        weights=known["n_reviewed"].to_numpy().astype(np.float64),
        minlength=k,
    )


def _excluded(exclude: Any, ids_dtype: pl.DataType) -> pl.Series | None:
    if exclude is None:
        return None
    is_frame = isinstance(exclude, pl.DataFrame) or (
        type(exclude).__module__.startswith(("pandas", "pyarrow")) and hasattr(exclude, "columns")
    )
    if is_frame:
        return keyed(exclude, "exclude", ids_dtype)["asset_id"]
    if isinstance(exclude, str):
        raise InputError(f"exclude must be asset ids, not the string {exclude!r}")
    if isinstance(exclude, pl.Series):
        values = exclude
    elif type(exclude).__module__.startswith("pandas"):
        values = pl.from_pandas(exclude)
    elif isinstance(exclude, Iterable):
        values = pl.Series(list(exclude))
    else:
        raise InputError(f"exclude must be a table with asset_id or a list of ids, got {exclude!r}")
    if values.len() and not (
        (text_like(values.dtype) and text_like(ids_dtype))
        or (values.dtype.is_integer() and ids_dtype.is_integer())
        or values.dtype == ids_dtype
    ):
        raise InputError(
            f"exclude ids have dtype {values.dtype} but the enriched table's are {ids_dtype}; "
            "cast them to the same type"
        )
    try:
        return values.cast(ids_dtype, strict=True)
    except pl.exceptions.PolarsError as exc:
        raise InputError(
            f"exclude ids have dtype {values.dtype}, the enriched table's are {ids_dtype}: {exc}"
        ) from exc
