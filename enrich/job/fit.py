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
    "end_model_features",
    "end_model_state",
    "enriched_by_pattern",
    "fit_end_model",
    "fit_predict",
    "gold_labels",
    "kept_structure",
    "model_json",
    "no_votes",
    "predict_stored",
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
    if structure not in ("em", "vote") or not isinstance(chosen_at, int) or chosen_at <= 0:
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
        A structure to use instead of choosing one (see :func:`kept_structure`). The model
        is the one ``structure="auto"`` fits when it makes that choice: a kept ``"em"`` is
        EM fitted without gold (gold, when given, only weighs in the choice), and rows
        without votes get the balance of the majority-vote labels (gold of such rows mixed
        in), as they do when EM is chosen. ``LabelModel(structure="em")`` alone would give
        them EM's own balance, which can differ by far more than ``output.proba_tolerance``
        and would move every such asset on the run that first keeps the choice.

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
    if labelled is not None and structure != "em":
        model.fit(
            labelled.patterns[:, :-1], y=labelled.patterns[:, -1], sample_weight=labelled.counts
        )
    else:
        model.fit(patterns.patterns, sample_weight=patterns.counts)
    if structure == "em":
        # "auto" choosing EM scores voted rows with EM and gives rows without votes the
        # balance it computes for every structure; the "vote" fit computes the same balance
        voted = LabelModel(
            cardinality=cardinality, random_state=random_state, **{**params, "structure": "vote"}
        )
        if labelled is not None:
            voted.fit(
                labelled.patterns[:, :-1],
                y=labelled.patterns[:, -1],
                sample_weight=labelled.counts,
            )
        else:
            voted.fit(patterns.patterns, sample_weight=patterns.counts)
        model.class_balance_ = voted.class_balance_
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


EMBEDDING = "_embedding"
"""Column of the end model's feature frame holding the job's vectors."""


def end_model_features(
    full: pl.DataFrame, *, feature_columns: Sequence[str], index: Any = None
) -> pl.DataFrame:
    """The end model's features of every asset of ``full``, one row each.

    The job's embeddings come from its vector index (``index_id`` of each asset), so no
    source file is read again, as column ``_embedding``; ``feature_columns`` are kept in the
    table beside the slices (nulls count as 0).
    """
    columns = []
    for name in feature_columns:
        column = full.get_column(name)
        if not (column.dtype.is_numeric() or column.dtype == pl.Boolean):
            raise InputError(
                f"end_model.feature_columns: column {name!r} is {column.dtype}, not numeric; "
                "name numeric or boolean source columns (or derive one in the source)"
            )
        columns.append(column.cast(pl.Float64).fill_nan(0.0).fill_null(0.0))
    frame = pl.DataFrame(columns) if columns else pl.DataFrame(height=full.height)
    if index is not None:
        vectors = np.asarray(index.get_vectors(full.get_column("index_id").to_numpy()))
        frame = frame.with_columns(pl.Series(EMBEDDING, vectors))
    return frame


def fit_end_model(
    features: pl.DataFrame,
    proba: np.ndarray,
    votes: np.ndarray,
    gold: np.ndarray | None,
    *,
    classes: Sequence[str],
    max_train_rows: int,
    min_confidence: float | None,
    cv: int,
    random_state: int | None,
    priority: np.ndarray | None = None,
) -> tuple[Any, np.ndarray, np.ndarray]:
    """Train the end model on a bounded sample of the labelled assets; predict every asset.

    The sample holds every gold asset and, up to ``max_train_rows`` in all, a share of
    the assets some LF voted on: those of lowest ``priority`` (e.g. a hash of the asset id,
    so that a run with a few new assets trains on nearly the same sample and moves few
    probabilities), at random without it. Returns the model, every asset's probabilities
    ``(n, k)`` (out-of-fold for the sampled rows) and which rows were sampled.

    >>> x = pl.DataFrame({"f": [0.0, 0.1, 0.2, 1.0, 1.1, 1.2, 0.5, 0.05, 1.05, 0.9]})
    >>> votes = np.array([[0], [0], [0], [1], [1], [1], [-1], [0], [1], [1]])
    >>> proba = np.where(votes == 0, [0.9, 0.1], [0.1, 0.9]).astype(float)
    >>> model, p, sampled = fit_end_model(x, proba, votes, None, classes=["A", "B"],
    ...     max_train_rows=100, min_confidence=None, cv=2, random_state=0)
    >>> p.shape, int(sampled.sum())
    ((10, 2), 9)
    """
    from enrich.models.end_model import EndModel

    n = features.height
    voted = (votes >= 0).any(axis=1) if votes.shape[1] else np.zeros(n, dtype=bool)
    has_gold = gold >= 0 if gold is not None else np.zeros(n, dtype=bool)
    rng = np.random.default_rng(random_state)
    gold_rows = np.flatnonzero(has_gold)[:max_train_rows]
    others = np.flatnonzero(voted & ~has_gold)
    room = max(max_train_rows - gold_rows.size, 0)
    if others.size > room:
        keys = priority[others] if priority is not None else rng.permutation(others.size)
        others = np.sort(others[np.argsort(keys, kind="stable")[:room]])
    rows = np.sort(np.concatenate([gold_rows, others]))
    sampled = np.zeros(n, dtype=bool)
    tabular = [c for c in features.columns if c != EMBEDDING]
    model = EndModel(
        embedding_column=EMBEDDING if EMBEDDING in features.columns else None,
        feature_columns=tabular or None,
        min_confidence=min_confidence,
        cv=cv,
        random_state=int(rng.integers(2**31 - 1)),
    )
    model.fit(
        features[rows],
        proba[rows],
        votes=votes[rows],
        gold=gold[rows] if gold is not None else None,
        class_names=list(classes),
    )
    out = model.predict_proba(features)
    out[rows] = model.oof_proba_
    sampled[rows] = model.train_mask_
    return model, out, sampled


def end_model_state(model: Any) -> dict[str, Any]:
    """What a later run needs to predict with ``model`` (plain JSON: its coefficients).

    Empty when the classifier is not linear (``coef_``): such a model is retrained each run.
    """
    estimator = model.estimator_
    if not hasattr(estimator, "coef_"):
        return {}
    tabular = list(model.feature_columns or ())
    return {
        "coef": np.asarray(estimator.coef_, dtype=np.float64).tolist(),
        "intercept": np.asarray(estimator.intercept_, dtype=np.float64).tolist(),
        "estimator_classes": [int(c) for c in estimator.classes_],
        "temperature": float(model.temperature_),
        "n_classes": int(model.classes_.size),
        "embedding": model.embedding_column is not None,
        "feature_columns": tabular,
        "feature_mean": np.asarray(model.feature_mean_).tolist() if tabular else [],
        "feature_scale": np.asarray(model.feature_scale_).tolist() if tabular else [],
    }


def predict_stored(state: Mapping[str, Any], features: pl.DataFrame) -> np.ndarray:
    """Class probabilities ``(n, k)`` of a linear end model stored by :func:`end_model_state`.

    The same as the model's ``predict_proba`` (normalized vectors, standardized columns,
    logistic regression, temperature).

    >>> x = pl.DataFrame({"f": [0.0, 0.1, 0.2, 1.0, 1.1, 1.2, 0.05, 1.05]})
    >>> votes = np.array([[0], [0], [0], [1], [1], [1], [0], [1]])
    >>> proba = np.where(votes == 0, [0.9, 0.1], [0.1, 0.9]).astype(float)
    >>> model, _, _ = fit_end_model(x, proba, votes, None, classes=["A", "B"],
    ...     max_train_rows=100, min_confidence=None, cv=2, random_state=0)
    >>> bool(np.allclose(predict_stored(end_model_state(model), x), model.predict_proba(x)))
    True
    """
    parts = []
    if state["embedding"]:
        vectors = np.asarray(features.get_column(EMBEDDING).to_list(), dtype=np.float64)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        parts.append(vectors / np.where(norms > 0, norms, 1.0))
    if state["feature_columns"]:
        tab = features.select(state["feature_columns"]).to_numpy().astype(np.float64)
        mean = np.asarray(state["feature_mean"], dtype=np.float64)
        parts.append((tab - mean) / np.asarray(state["feature_scale"], dtype=np.float64))
    matrix = np.hstack(parts) if len(parts) > 1 else parts[0]
    coef = np.asarray(state["coef"], dtype=np.float64)
    decision = matrix @ coef.T + np.asarray(state["intercept"], dtype=np.float64)
    if coef.shape[0] == 1:  # binary: the second class's log-odds
        positive = 1.0 / (1.0 + np.exp(-decision[:, 0]))
        seen = np.column_stack([1.0 - positive, positive])
    else:
        seen = _softmax(decision)
    floor = 1e-12
    full = np.full((matrix.shape[0], int(state["n_classes"])), floor)
    full[:, np.asarray(state["estimator_classes"], dtype=np.int64)] = np.maximum(seen, floor)
    logp = np.log(full / full.sum(axis=1, keepdims=True))
    return _softmax(logp / float(state["temperature"]))


def _softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)
