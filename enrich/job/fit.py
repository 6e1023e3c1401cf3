"""The label model of a run: vote matrix, gold, fit and predict, the enriched rows.

Pure functions over arrays and frames. :func:`vote_matrix` reads the votes of the assembled
state; :func:`gold_labels` merges the source's gold column with reviewed gold;
:func:`fit_predict` fits the label model once per distinct (votes, gold) pattern weighted by
its count; :func:`enriched_by_pattern` builds the enriched table once per distinct vote pattern
and gathers it back to the assets; :func:`with_extras` adds the state columns.

>>> from enrich._internal.vote_arrays import compress_votes
>>> patterns = compress_votes(np.array([[0, -1], [0, -1], [1, 1]], dtype=np.int32))
>>> model, proba = fit_predict(patterns, None, cardinality=2, random_state=0, params={})
>>> proba.shape, bool(np.allclose(proba.sum(axis=1), 1.0))
((2, 2), True)
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from enrich._internal.classes import did_you_mean
from enrich._internal.vote_arrays import VotePatterns, compress_votes
from enrich.errors import InputError
from enrich.job.plan import ColumnPlan
from enrich.models.output import enriched_table
from enrich.votes import VoteMatrix

__all__ = [
    "RESTRUCTURE_AFTER",
    "distinct_with_gold",
    "enriched_by_pattern",
    "fit_predict",
    "gold_labels",
    "kept_structure",
    "model_json",
    "no_votes",
    "source_gold",
    "vote_matrix",
    "with_extras",
]


def no_votes(lfs: Sequence[Any], rows: pl.DataFrame, classes: Sequence[str]) -> VoteMatrix:
    """The vote matrix of zero assets."""
    return VoteMatrix(
        votes=np.zeros((0, len(lfs)), dtype=np.int32),
        lf_names=tuple(lf.name for lf in lfs),
        asset_ids=rows.get_column("asset_id"),
        lf_versions=tuple(lf.version for lf in lfs),
        class_names=tuple(classes),
    )


def vote_matrix(full: pl.DataFrame, lfs: Sequence[Any], classes: Sequence[str]) -> VoteMatrix:
    """The votes of every asset of ``full`` (its ``vote_<lf>`` columns), in ``lfs`` order."""
    names = tuple(lf.name for lf in lfs)
    if names:
        votes = full.select([f"vote_{n}" for n in names]).to_numpy().astype(np.int32)
    else:
        votes = np.zeros((full.height, 0), dtype=np.int32)
    return VoteMatrix(
        votes=np.ascontiguousarray(votes),
        lf_names=names,
        asset_ids=full.get_column("asset_id"),
        lf_versions=tuple(lf.version for lf in lfs),
        class_names=tuple(classes),
    )


def gold_labels(
    full: pl.DataFrame,
    *,
    classes: Sequence[str],
    source_column: bool,
    reviewed: pl.DataFrame | None,
    use_in_fit: bool,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Gold class ids per asset (-1 unknown), and which assets are settled.

    The source column gives gold, overridden by the reviewed gold table; settled assets are
    never queued for review.

    Reviewed gold (``gold.path``) settles its assets. Gold in the source settles them only
    when the model learns from it (``gold.use_in_fit``); otherwise it only scores the run,
    and the review queue stays what it would be without it.

    Parameters
    ----------
    full
        Every asset (``asset_id``; ``gold`` Int32 when ``source_column``).
    classes
        The class names, in class-id order.
    source_column
        Whether the source has a gold column (``gold.column``).
    reviewed
        The reviewed gold table (``gold.path``: ``asset_id`` and ``label_name`` or
        ``label``), or None.
    use_in_fit
        ``gold.use_in_fit``.

    Returns
    -------
    (np.ndarray or None, np.ndarray or None)
        int64 gold ids and bool settled flags, shape (n_assets,); both None without gold.
    """
    if not source_column and reviewed is None:
        return None, None
    if source_column:
        gold = full.get_column("gold").to_numpy().astype(np.int64)
    else:
        gold = np.full(full.height, -1, dtype=np.int64)
    settled = (gold >= 0) if use_in_fit else np.zeros(full.height, dtype=bool)
    if reviewed is not None:
        from enrich.analysis.gold import gold_vector  # only runs with gold use it

        by_review = gold_vector(reviewed, full.get_column("asset_id"), list(classes))
        gold = np.where(by_review >= 0, by_review, gold)
        settled |= by_review >= 0
    return gold, settled


def source_gold(data: pl.DataFrame, column: str, classes: Sequence[str]) -> pl.Series:
    """The source's gold column as class ids (``gold``, Int32, -1 = unknown)."""
    raw = data.get_column(column)
    if raw.dtype in (pl.String, pl.Categorical, pl.Enum):
        names = raw.cast(pl.String)
        known = names.is_not_null() & (names != "-1") & (names != "")
        bad = names.filter(known & ~names.is_in(list(classes)))
        if bad.len():
            first = bad.unique().sort()
            raise InputError(
                f"gold.column {column!r} holds {first.head(3).to_list()}, which "
                f"are not classes {list(classes)}{did_you_mean(first[0], classes)}; use class "
                "names or ids (-1/null = unknown)"
            )
        mapping = {name: i for i, name in enumerate(classes)}
        ids = names.replace_strict(mapping, default=-1, return_dtype=pl.Int32)
    elif raw.dtype.is_integer() or raw.dtype == pl.Null:
        ids = raw.cast(pl.Int64)
        bad = ids.filter(ids.is_not_null() & ((ids < -1) | (ids >= len(classes))))
        if bad.len():
            raise InputError(
                f"gold.column {column!r} holds {bad.unique().sort().head(3).to_list()}, outside "
                f"the class ids 0..{len(classes) - 1} (-1/null = unknown)"
            )
        ids = ids.cast(pl.Int32)
    else:
        raise InputError(
            f"gold.column {column!r} is {raw.dtype}; it must hold class names or class ids"
        )
    return ids.fill_null(-1).alias("gold")


def distinct_with_gold(votes: np.ndarray, gold: np.ndarray | None) -> VotePatterns | None:
    """The distinct rows of the votes with the gold label as a last column, with counts.

    A gold label splits a vote pattern. None when no gold label is known.
    """
    if gold is None or not (gold >= 0).any():
        return None
    return compress_votes(np.column_stack([votes, gold]))


#: The share of assets a run may add (or change) before the label model's structure (EM or
#: equal weights) is chosen again; below it, the job keeps the previous run's choice.
RESTRUCTURE_AFTER = 0.10


def kept_structure(
    previous: Mapping[str, Any] | None,
    *,
    n_assets: int,
    n_changed: int,
    lfs_changed: bool,
    params: Mapping[str, Any],
) -> tuple[str | None, int]:
    """Return the label-model structure to keep from the previous run, and when it was chosen.

    ``structure="auto"`` picks EM or equal weights from the data; a batch of 1% more assets
    can tip that choice and move the probabilities of every asset. So the job keeps the
    previous run's choice until the LFs change or more than :data:`RESTRUCTURE_AFTER` of the
    assets are new or changed since the run that made it (then it chooses again). Returns
    ``(None, n_assets)`` when the structure is to be chosen now.

    >>> record = {"label_model_structure": {"structure": "vote", "chosen_at_assets": 1000}}
    >>> kept_structure(record, n_assets=1010, n_changed=10, lfs_changed=False, params={})
    ('vote', 1000)
    >>> kept_structure(record, n_assets=1200, n_changed=200, lfs_changed=False, params={})
    (None, 1200)
    """
    if previous is None or lfs_changed or params.get("structure", "auto") != "auto":
        return None, n_assets
    kept = previous.get("label_model_structure") or {}
    structure, chosen_at = kept.get("structure"), kept.get("chosen_at_assets")
    kinds = ("em", "vote", "vote+em")
    if structure not in kinds or not isinstance(chosen_at, int) or chosen_at <= 0:
        return None, n_assets
    drift = kept.get("changed_since", 0) + n_changed
    if drift > RESTRUCTURE_AFTER * chosen_at:
        return None, n_assets
    return structure, chosen_at


def fit_predict(
    patterns: VotePatterns,
    labelled: VotePatterns | None,
    *,
    cardinality: int,
    random_state: int | None,
    params: Mapping[str, Any],
    structure: str | None = None,
) -> tuple[Any, np.ndarray]:
    """Fit the label model on every vote (and gold); predict each distinct vote pattern.

    The model is fitted once per distinct row weighted by its count: the same fit as on
    every row, exact at any size (no ``max_fit_rows`` sample), so the probabilities of
    unchanged assets stay put when a few new ones arrive.

    Parameters
    ----------
    patterns
        The distinct vote rows of every asset, with their counts.
    labelled
        The distinct (votes, gold) rows, gold as the last column, or None to fit on votes.
    cardinality, random_state, params
        The number of classes, ``label_model.random_state`` and ``label_model.params``.
    structure
        A structure to use instead of choosing one (see :func:`kept_structure`), passed
        to the model as its ``structure``: ``LabelModel(structure=s)`` fits the model
        ``structure="auto"`` fits when it chooses ``s`` (a kept ``"em"`` is EM fitted
        without gold, and rows without votes get the same balance), so the run that
        first keeps the choice moves no asset.

    Returns
    -------
    (LabelModel, np.ndarray)
        The fitted model and float64 probabilities of shape (n_patterns, cardinality).

    Raises
    ------
    InputError
        ``params`` holds an option :class:`~enrich.models.label_model.LabelModel` lacks.
    """
    from enrich.models.label_model import LabelModel  # imports scipy: only when fitting

    try:
        options = dict(params) if structure is None else {**params, "structure": structure}
        model = LabelModel(cardinality=cardinality, random_state=random_state, **options)
    except TypeError as exc:
        raise InputError(
            f"label_model.params {dict(params)} are not options of LabelModel "
            f"({exc}); see help(enrich.models.label_model.LabelModel)"
        ) from exc
    if labelled is not None:
        model.fit(
            labelled.patterns[:, :-1], y=labelled.patterns[:, -1], sample_weight=labelled.counts
        )
    else:
        model.fit(patterns.patterns, sample_weight=patterns.counts)
    return model, np.asarray(model.predict_proba(patterns.patterns), dtype=np.float64)


def model_json(model: Any) -> str:
    """The fitted model as JSON text (its ``to_json``, or what its ``save`` writes)."""
    to_json = getattr(model, "to_json", None)
    if callable(to_json):
        return str(to_json())
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.json"
        model.save(path)
        return path.read_text(encoding="utf-8")


def enriched_by_pattern(
    votes: Any,
    pattern_proba: np.ndarray,
    patterns: VotePatterns,
    *,
    run_id: str,
    model_version: str,
    created_at: Any,
    review_below: float,
) -> pl.DataFrame:
    """:func:`enriched_table` of every asset, computed once per distinct vote pattern.

    Every column it derives (label, probabilities, flags, votes) is a function of the row's
    votes and probabilities, and the lineage columns are the same for all rows; so the
    table of the distinct patterns, gathered back to the assets, is the same table.
    """
    distinct = VoteMatrix(
        votes=patterns.patterns,
        lf_names=votes.lf_names,
        asset_ids=pl.Series("asset_id", np.arange(patterns.n_patterns)),
        lf_versions=votes.lf_versions,
        class_names=votes.class_names,
    )
    small = enriched_table(
        distinct,
        pattern_proba,
        run_id=run_id,
        model_version=model_version,
        created_at=created_at,
        review_below=review_below,
    )
    gathered = small.drop("asset_id").select(pl.all().gather(patterns.inverse))
    return gathered.insert_column(0, votes.asset_ids.alias("asset_id"))


def with_extras(
    enriched: pl.DataFrame,
    full: pl.DataFrame,
    *,
    plan: ColumnPlan,
    lf_versions: Mapping[str, str],
    prev_versions: Mapping[str, str],
) -> pl.DataFrame:
    """Add the state columns; rows whose votes could not be re-run keep their LF versions."""
    extras = ["content_hash", "source_file", *plan.slices]
    extras += ["gold"] if plan.gold_column else []
    extras += ["index_id"] if "index_id" in full.columns else []
    out = enriched.with_columns(full.get_column(c) for c in extras)
    stale = full.get_column("_stale")
    if stale.any():
        kept = {name: prev_versions.get(name, version) for name, version in lf_versions.items()}
        out = out.with_columns(
            pl.when(stale)
            .then(pl.lit(json.dumps(kept)))
            .otherwise(pl.col("lf_versions"))
            .alias("lf_versions")
        )
    return out
