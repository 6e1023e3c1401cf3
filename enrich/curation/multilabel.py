"""Gaps and review per label of a multi-label task, through the single-label tools.

Each label is a binary task (absent / present). :func:`label_view` turns the multi-label
enriched table (:func:`enrich.multilabel_table`) into the enriched table of one label --
``label`` (0 absent, 1 present, null where no LF voted on the label), ``confidence``,
``conflict``, ``all_abstain`` -- which :func:`enrich.find_gaps` and :func:`enrich.review_queue`
read; :func:`find_gaps_per_label` and :func:`review_queue_per_label` run them for every label,
and :func:`fill_gaps_per_label` proposes unlabeled assets for every label's gaps.

>>> import numpy as np, polars as pl
>>> from enrich import MultiLabelVoteMatrix, multilabel_table
>>> votes = MultiLabelVoteMatrix(votes=np.array([[[1, 0]], [[-1, 1]]], dtype=np.int8),
...     lf_names=("a",), label_names=("cat", "dog"), asset_ids=pl.Series(["x", "y"]))
>>> table = multilabel_table(votes, [[0.9, 0.4], [0.2, 0.7]])
>>> label_view(table, votes, "dog").select("asset_id", "label", "confidence").rows()
[('x', None, 0.6), ('y', 1, 0.7)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from enrich._internal.frames import as_polars, require_columns
from enrich._internal.random import check_random_state
from enrich.analysis.slices import SliceReport, slice_report
from enrich.curation.gap_filling import Candidates, FillStrategy, fill_gaps
from enrich.curation.gap_search import split_budget
from enrich.curation.gaps import Gaps, find_gaps
from enrich.curation.review import ReviewQueue, review_queue
from enrich.errors import InputError
from enrich.multilabel_votes import PRESENCE_CLASSES, MultiLabelVoteMatrix

if TYPE_CHECKING:
    from embeddings.index import VectorIndex

__all__ = [
    "fill_gaps_per_label",
    "find_gaps_per_label",
    "label_view",
    "review_queue_per_label",
    "slice_report_per_label",
]


def label_view(
    table: Any,
    votes: MultiLabelVoteMatrix,
    label: str,
    *,
    data: Any = None,
    columns: Sequence[str] = (),
    lf_votes: bool = False,
) -> pl.DataFrame:
    """The enriched table of one label, as a binary task (absent / present).

    Parameters
    ----------
    table
        the multi-label enriched table (``asset_id``, ``p_<label>``; thresholds at 0.5 unless
        the table has the ``labels`` set, which then decides), rows in the votes' order.
    votes
        the multi-label votes the table was made from.
    label
        the label's name.
    data, columns
        optional table with ``asset_id`` and the ``columns`` to carry (e.g. slices).
    lf_votes
        add ``vote_<lf>`` for each LF that may vote on the label (Int64: 1 present, 0
        absent, -1 abstain): the vote columns :func:`enrich.review_queue` spreads a
        ``purpose="refit"`` batch over.

    Returns
    -------
    polars.DataFrame
        ``asset_id``, ``label`` (Int64: 1 present, 0 absent, null where no LF voted on it),
        ``label_name``, ``predicted`` (Int64, the predicted value of every asset, voted on
        or not), ``probability`` (of present), ``confidence`` (of the predicted value),
        ``conflict``, ``all_abstain``, the ``vote_<lf>`` columns asked for and the carried
        ``columns``.

    Raises
    ------
    InputError
        An unknown label, a missing column, or a table not aligned with the votes.
    """
    frame = as_polars(table)
    if label not in votes.label_names:
        raise InputError(f"{label!r} is not a label of the votes; labels: {votes.label_names}")
    require_columns(frame, [("asset_id", "label_view"), (f"p_{label}", "label")])
    if frame.height != len(votes) or not _same_ids(frame["asset_id"], votes.asset_ids):
        raise InputError(
            "table and votes must hold the same assets in the same order; build the table "
            "with enrich.multilabel_table(votes, proba)"
        )
    t = votes.label_names.index(label)
    sub = votes.votes[:, votes.lfs_for(t), t]
    voted = (sub != 0).any(axis=1)
    p = frame[f"p_{label}"].to_numpy().astype(float)
    if "labels" in frame.columns:
        present = frame["labels"].list.contains(label).to_numpy()
    else:
        present = p >= 0.5
    value = present.astype(np.int64)
    view = pl.DataFrame(
        {
            "asset_id": frame["asset_id"],
            "label": pl.Series(value, dtype=pl.Int64),
            "predicted": pl.Series(value, dtype=pl.Int64),
            "probability": p,
            "confidence": np.where(present, p, 1.0 - p),
            "conflict": (sub > 0).any(axis=1) & (sub < 0).any(axis=1),
            "all_abstain": ~voted,
        }
    ).with_columns(
        pl.when(pl.col("all_abstain")).then(None).otherwise(pl.col("label")).alias("label")
    )
    view = view.with_columns(
        pl.col("label").replace_strict([0, 1], list(PRESENCE_CLASSES), default=None)
        .alias("label_name")
    ).select("asset_id", "label", "label_name", "predicted", "probability", "confidence",
             "conflict", "all_abstain")  # fmt: skip
    if lf_votes:
        binary = np.where(sub > 0, 1, np.where(sub < 0, 0, -1)).astype(np.int64)
        names = [votes.lf_names[j] for j in votes.lfs_for(t)]
        view = view.hstack(
            [pl.Series(f"vote_{name}", binary[:, c]) for c, name in enumerate(names)]
        )
    if columns:
        if data is None:
            raise InputError("columns needs data= (a table with asset_id and those columns)")
        extra = as_polars(data)
        require_columns(extra, [(c, "columns") for c in ["asset_id", *columns]])
        carried = extra.select("asset_id", *columns)
        ids = carried.get_column("asset_id")
        aligned = not set(columns) & set(view.columns) and _same_ids(ids, view["asset_id"])
        if aligned and ids.n_unique() == ids.len():
            return view.hstack(carried.drop("asset_id").get_columns())  # aligned: the join
        view = view.join(carried, on="asset_id", how="left", maintain_order="left")
    return view


def _same_ids(a: pl.Series, b: pl.Series) -> bool:
    """Whether two id columns hold the same values in the same order (vectorized)."""
    if a.dtype == b.dtype or (a.dtype.is_numeric() and b.dtype.is_numeric()):
        return a.equals(b)
    return a.to_list() == b.to_list()


def find_gaps_per_label(
    table: Any,
    votes: MultiLabelVoteMatrix,
    *,
    data: Any = None,
    slices: Sequence[str] = (),
    gold: Any = None,
    views: Mapping[str, pl.DataFrame] | None = None,
    **options: Any,
) -> dict[str, Gaps]:
    """Run :func:`enrich.find_gaps` on each label seen as a binary task.

    Parameters
    ----------
    table, votes
        the multi-label enriched table and its votes (see :func:`label_view`).
    data, slices
        a table with ``asset_id`` and the slice columns, and their names.
    gold
        optional gold label sets: a table with ``asset_id`` and one 0/1 column per label
        (e.g. :func:`enrich.import_label_studio_multilabel`); null or -1 = unknown.
    views
        optional label name -> :func:`label_view` of the table, with the ``slices`` columns
        (made once when the review queue reads them too); made here when None.
    **options
        passed on to :func:`enrich.find_gaps` (``min_quality``, ``confident_above``...).

    Returns
    -------
    dict
        label name -> its :class:`~enrich.curation.gaps.Gaps` (classes "absent" and
        "present"; a label with too few confident "present" labels is a gap).
    """
    gold_frame = None if gold is None else as_polars(gold)
    out = {}
    for label in votes.label_names:
        view = (
            views[label]
            if views is not None
            else label_view(table, votes, label, data=data, columns=slices)
        )
        label_gold = None
        if gold_frame is not None:
            require_columns(gold_frame, [("asset_id", "gold"), (label, "gold")])
            label_gold = gold_frame.select(
                "asset_id", pl.col(label).cast(pl.Int64).alias("label")
            ).filter(pl.col("label").is_in([0, 1]))
        out[label] = find_gaps(
            view, slices=slices, classes=list(PRESENCE_CLASSES), gold=label_gold, **options
        )
    return out


def slice_report_per_label(
    table: Any,
    votes: MultiLabelVoteMatrix,
    *,
    data: Any,
    slices: Sequence[str],
    gold: Any = None,
    **options: Any,
) -> dict[str, SliceReport]:
    """Run :func:`enrich.slice_report` on each label: accuracy per slice, or confidence.

    With ``gold`` (a table with ``asset_id`` and one 0/1 column per label; null or -1 =
    unknown) the metric is the accuracy of the label's predicted value (absent / present)
    on the assets with gold; without it, the mean confidence of that value. ``slices`` are
    columns of ``data``; ``options`` go to :func:`enrich.slice_report`. Returns label name
    -> its :class:`~enrich.analysis.slices.SliceReport`.
    """
    gold_frame = None if gold is None else as_polars(gold)
    out = {}
    for label in votes.label_names:
        view = label_view(table, votes, label, data=data, columns=slices)
        if gold_frame is None:
            out[label] = slice_report(view, value="confidence", slices=slices, **options)
            continue
        require_columns(gold_frame, [("asset_id", "gold"), (label, "gold")])
        truth = gold_frame.select("asset_id", pl.col(label).cast(pl.Int64).alias("_gold")).filter(
            pl.col("_gold").is_in([0, 1])
        )
        view = view.join(truth, on="asset_id", how="left", maintain_order="left")
        correct = (
            pl.when(pl.col("_gold").is_null())
            .then(None)
            .otherwise(pl.col("predicted") == pl.col("_gold"))
        )
        out[label] = slice_report(view, correct=correct, slices=slices, **options)
    return out


def review_queue_per_label(
    table: Any,
    votes: MultiLabelVoteMatrix,
    *,
    batch_size: int = 50,
    views: Mapping[str, pl.DataFrame] | None = None,
    candidates: Any = None,
    **options: Any,
) -> dict[str, ReviewQueue]:
    """Run :func:`enrich.review_queue` on each label seen as a binary task.

    Each label's queue ranks the assets whose value of that label is doubtful (low
    confidence, LFs disagreeing on it, no LF voting on it...). ``options`` are passed on
    to :func:`enrich.review_queue`; ``views`` are the labels' :func:`label_view` when made
    already (any carried columns are not read; with ``purpose="refit"`` they need the
    ``lf_votes``, which the views made here have). ``candidates`` are gap-filling
    candidates with a ``label`` column (:func:`fill_gaps_per_label`'s table): each label's
    queue gets its own rows as :func:`enrich.review_queue`'s ``candidates``. Returns label
    name -> its :class:`~enrich.curation.review.ReviewQueue`.
    """
    refit = options.get("purpose") == "refit"  # spread over each label's vote patterns
    picks = None
    if candidates is not None:
        picks = as_polars(candidates)
        require_columns(picks, [("asset_id", "candidates"), ("label", "candidates")])
    out = {}
    for label in votes.label_names:
        mine = None
        if picks is not None:
            keep = [c for c in ("asset_id", "reason", "score") if c in picks.columns]
            mine = picks.filter(pl.col("label") == label).select(keep)
            mine = mine if mine.height else None
        out[label] = review_queue(
            views[label] if views is not None else label_view(table, votes, label, lf_votes=refit),
            batch_size=batch_size,
            candidates=mine,
            **options,
        )
    return out


def fill_gaps_per_label(
    table: Any,
    votes: MultiLabelVoteMatrix,
    index: VectorIndex,
    pool: Any,
    budget: int,
    *,
    gaps: Mapping[str, Gaps] | None = None,
    probabilities: Any = None,
    id_map: Any = None,
    strategy: FillStrategy = "coverage",
    random_state: Any = None,
    **gap_options: Any,
) -> Candidates:
    """Propose up to ``budget`` unlabeled assets that fill the gaps of every label.

    Each label is a binary task (see :func:`label_view`): :func:`enrich.fill_gaps` runs on
    the label's gaps (:func:`find_gaps_per_label`) with the shared ``index`` and the pool,
    whose ``confidence`` and ``label_name`` are that label's (the label model's value of
    it, ``"absent"`` or ``"present"``, and its confidence).

    *Budget.* Shared as :func:`enrich.fill_gaps` shares it between gaps: every gap of every
    label gets its share by deficit (largest remainder, at least 1 each while the budget
    lasts); a label's quota is the sum of its gaps' shares, and :func:`enrich.fill_gaps`
    splits it again between them. Labels pick in turns, largest total deficit first; budget
    a label cannot use is passed on to the next. An asset is proposed once, for the first
    label that picks it: an expert who reviews an asset answers every label.

    Parameters
    ----------
    table, votes
        the multi-label enriched table and its votes (see :func:`label_view`).
    index
        a :class:`~embeddings.index.VectorIndex` with the vectors of the pool and of the
        gaps' examples (see "Index ids" in :mod:`enrich.curation.gap_filling`).
    pool
        polars/pandas/Arrow table of the assets that may be proposed: ``asset_id``, an index
        id (``index_id`` or ``id_map``), optionally slice columns; each must be a row of
        ``table``. Its ``confidence`` / ``label_name`` / ``label`` columns, if any, are
        replaced by each label's. Assets with a confident (or gold) value of a label are
        not proposed for that label.
    budget
        most assets to propose in all (>= 0).
    gaps
        label name -> :class:`~enrich.curation.gaps.Gaps`, as :func:`find_gaps_per_label`
        returns; computed with ``gap_options`` when None.
    probabilities
        optional ``(len(pool), n_labels)`` float array: a model's probability that each
        label is present (columns in ``votes.label_names`` order, rows in the pool's order),
        e.g. the multi-label end model's out-of-fold ones; passed on per label as
        :func:`enrich.fill_gaps`'s ``probabilities``.
    id_map, strategy, random_state
        as in :func:`enrich.fill_gaps` (one generator is used by all labels in turn).
    **gap_options
        passed to :func:`find_gaps_per_label` when ``gaps`` is None (``data``, ``slices``,
        ``gold``, ``min_confident``...).

    Returns
    -------
    Candidates
        ``table``: ``label`` then the columns of :func:`enrich.fill_gaps`'s table (``gap``
        is the label's gap, e.g. ``class=present``; ``reason`` starts with the label);
        ``allocation``: ``label``, the per-gap columns of :func:`enrich.fill_gaps`
        (``quota``: the gap's part of its label's share) and ``label_quota`` (the label's
        share, with any budget passed on to it).

    Raises
    ------
    InputError
        A bad budget, ``gaps`` whose labels are not the votes', pool ids not in ``table``,
        repeated pool ids, or ``probabilities`` of the wrong shape; and whatever
        :func:`enrich.fill_gaps` refuses.

    Examples
    --------
    >>> import numpy as np, polars as pl
    >>> from embeddings.index import VectorIndex
    >>> from enrich import MultiLabelVoteMatrix, multilabel_table
    >>> v = np.array([[1, -1]] * 3 + [[-1, 1]] * 3 + [[0, 0]] * 4, dtype=np.int8)[:, None, :]
    >>> votes = MultiLabelVoteMatrix(votes=v, lf_names=("lf",), label_names=("cat", "dog"),
    ...     asset_ids=pl.Series(range(10)))
    >>> table = multilabel_table(votes, np.where(v[:, 0] > 0, 0.9, np.where(v[:, 0] < 0,
    ...     0.1, 0.5)))
    >>> index = VectorIndex(2)
    >>> index.add(np.arange(10), np.array([[1, 0]] * 3 + [[0, 1]] * 3
    ...     + [[1, 0.1], [0.1, 1], [1, 0.2], [0.2, 1]]))
    >>> pool = pl.DataFrame({"asset_id": range(6, 10)})  # asset ids are the index ids
    >>> picked = fill_gaps_per_label(table, votes, index, pool, 4, min_confident=4,
    ...     random_state=0)
    >>> for row in picked.table.select("label", "asset_id", "gap").rows():
    ...     print(row)
    ('cat', 6, 'class=absent')
    ('cat', 9, 'class=present')
    ('dog', 7, 'class=absent')
    ('dog', 8, 'class=present')
    """
    if isinstance(budget, bool) or not isinstance(budget, int | np.integer) or budget < 0:
        raise InputError(f"budget must be a whole number >= 0; got {budget!r}")
    labels = votes.label_names
    if gaps is None:
        gaps = find_gaps_per_label(table, votes, **gap_options)
    elif set(gaps) != set(labels):
        raise InputError(
            f"gaps must hold one Gaps per label of the votes {list(labels)}; got {list(gaps)}"
        )
    frame = as_polars(table)
    require_columns(frame, [("asset_id", "fill_gaps_per_label")])
    pool_frame = as_polars(pool)
    require_columns(pool_frame, [("asset_id", "pool")])
    pool_ids = pool_frame.get_column("asset_id")
    if pool_ids.n_unique() != pool_ids.len():
        raise InputError("pool repeats asset ids; give each asset once")
    rows = pool_frame.select("asset_id").join(
        frame.select("asset_id").with_row_index("_row"), on="asset_id", how="left",
        maintain_order="left",
    )["_row"]  # fmt: skip
    if rows.null_count():
        missing = pool_ids.filter(rows.is_null()).head(5).to_list()
        raise InputError(
            f"{rows.null_count()} pool asset(s) are not rows of the table, e.g. {missing}; "
            "the pool must be drawn from the enriched table's assets"
        )
    proba = None
    if probabilities is not None:
        proba = np.asarray(probabilities, dtype=np.float64)
        if proba.shape != (pool_frame.height, len(labels)):
            raise InputError(
                f"probabilities must have shape (len(pool), n_labels) = "
                f"({pool_frame.height}, {len(labels)}); got {proba.shape}"
            )
    deficits = {
        label: gaps[label].table.group_by("gap").agg(pl.col("deficit").max())["deficit"]
        for label in labels
    }
    flat = [int(d) for label in labels for d in deficits[label].to_list()]
    shares = iter(split_budget(budget, flat))
    quota = {label: sum(next(shares) for _ in deficits[label]) for label in labels}
    order = sorted(labels, key=lambda name: -int(deficits[name].sum()))
    base = pool_frame.drop([c for c in ("confidence", "label_name", "label") if c in pool_frame])
    row_index = rows.to_numpy()
    rng = check_random_state(random_state)
    taken = np.zeros(pool_frame.height, dtype=bool)
    tables, allocations, carry = [], [], 0
    for label in order:
        t = labels.index(label)
        view = label_view(table, votes, label).select("predicted", "confidence")[row_index]
        keep = ~taken
        label_pool = base.with_columns(
            confidence=view["confidence"],
            label_name=view["predicted"].replace_strict([0, 1], list(PRESENCE_CLASSES)),
        ).filter(pl.Series(keep))
        label_proba = None
        if proba is not None:
            present = proba[keep, t]
            label_proba = np.stack([1.0 - present, present], axis=1)
        share = quota[label] + carry
        picked = fill_gaps(
            gaps[label], index, label_pool, share, probabilities=label_proba, id_map=id_map,
            strategy=strategy, random_state=rng,
        )  # fmt: skip
        carry = share - len(picked)
        taken |= pool_ids.is_in(picked.asset_ids.implode()).to_numpy()
        tables.append(
            picked.table.with_columns(
                pl.lit(label).alias("label"),
                (pl.lit(f"label {label}: ") + pl.col("reason")).alias("reason"),
            ).select("label", pl.exclude("label"))
        )
        allocations.append(
            picked.allocation.with_columns(
                pl.lit(label).alias("label"), pl.lit(share, pl.Int64).alias("label_quota")
            ).select("label", pl.exclude("label"))
        )
    return Candidates(pl.concat(tables), pl.concat(allocations), budget=budget)
