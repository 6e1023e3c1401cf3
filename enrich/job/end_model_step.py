"""The job's end-model step: retrain the end model when its training data changed, else reuse it.

A run trains the end model on a bounded, stable sample of labelled assets (every gold asset,
then the voted assets of lowest asset-id hash, up to ``max_train_rows``), and predicts every
asset. A nightly batch of a few new assets changes that sample little, so the next run does
not retrain: it measures how far the sample moved since the last training (:func:`sample_drift`,
accumulated over the runs in between) and retrains only past ``[end_model] retrain_after``, on
the schedule ``retrain_every``, or when the LFs, classes or settings change. In between, the
model the last training stored in its run record (a linear model: coefficients) predicts the
new and changed assets only; every other asset keeps the columns that model gave it, so the
table holds exactly what predicting every asset with the stored model would give. Each run
records whether it retrained and why (``end_model.retrain`` in the run record).

Predictions read each asset's vector from the job's index in chunks and apply the linear model
with one matrix product per chunk: no per-row Python, no table of vectors in memory.

>>> mask = training_sample(np.array([True, True, True, False]), np.array([False, True, False,
...     False]), np.array([5, 9, 1, 0], dtype=np.uint64), max_rows=2)
>>> mask.tolist()
[False, True, True, False]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from enrich.job.context import (
    EndModelResult,
    FitResult,
    ReadResult,
    RunContext,
    VoteResult,
)
from enrich.models.end_model import model_columns

__all__ = [
    "PREDICT_CHUNK",
    "SAMPLE_SEED",
    "end_model_features",
    "end_model_state",
    "end_model_step",
    "fit_end_model",
    "kept_state",
    "linear_features",
    "linear_proba",
    "predict_rows",
    "raw_features",
    "retrain_decision",
    "sample_drift",
    "sample_drift_of",
    "trained_state",
    "training_sample",
    "unfitted_end_model",
    "with_end_model",
]

SAMPLE_SEED = 0x656E64
"""Seed of the asset-id hash that orders the end model's training sample (stable across runs)."""

PREDICT_CHUNK = 65_536
"""Assets whose vectors are read and predicted at once (bounds the memory of a prediction)."""

#: Settings that say when to retrain, not what the model is: changing them keeps the model.
_TRIGGER_KEYS = ("retrain_after", "retrain_every")


def end_model_step(
    run: RunContext, read: ReadResult, voted: VoteResult, fitted: FitResult
) -> EndModelResult:
    """Retrain the end model (``[end_model]``) or predict the new assets with the stored one.

    Parameters
    ----------
    run, read, voted, fitted
        The run and the results of its read, vote and fit phases.

    Returns
    -------
    EndModelResult
        Every asset's model probabilities ``(n, k)`` (out-of-fold for the rows trained on),
        the current training sample, and the state the run record keeps (the linear model,
        and ``retrain``: whether this run retrained and why).
    """
    settings, full, classes = run.config.end_model, voted.full, list(run.classes)
    index = None
    if run.config.end_model_uses_embeddings and read.embedder is not None:
        index = read.embedder.index
    n = full.height
    votes = fitted.votes.votes
    voted_rows = (votes >= 0).any(axis=1) if votes.shape[1] else np.zeros(n, dtype=bool)
    gold = fitted.gold
    has_gold = gold >= 0 if gold is not None else np.zeros(n, dtype=bool)
    priority = full.get_column("asset_id").hash(seed=SAMPLE_SEED).to_numpy()
    sample = training_sample(voted_rows, has_gold, priority, max_rows=settings.max_train_rows)
    fresh = _fresh_rows(read.status, full)
    stored, reason, drift = _retrain_decision(
        run, read, full, fitted, sample=sample, priority=priority, fresh=fresh
    )
    if stored is not None:
        todo = fresh | full.get_column("_prev_model_label").is_null().to_numpy()
        proba = full.select(f"_prev_model_proba_{c}" for c in classes).to_numpy()
        proba = np.ascontiguousarray(proba, dtype=np.float64)
        rows = np.flatnonzero(todo)
        if rows.size:
            proba[rows] = predict_rows(
                stored, None, full, rows, index=index, columns=settings.feature_columns
            )
        state = kept_state(
            stored, drift=drift, n_gold=int((has_gold & sample).sum()), reason=reason
        )
        return EndModelResult(model=None, proba=proba, sampled=sample, state=state, retrained=False)

    model, proba, sampled = _train(
        run, full, fitted, sample=sample, index=index, columns=settings.feature_columns
    )
    state = trained_state(
        model,
        settings=settings,
        classes=classes,
        run_id=run.run_id,
        n_gold=int((has_gold & sample).sum()),
        reason=reason,
        drift=drift,
    )
    return EndModelResult(model=model, proba=proba, sampled=sampled, state=state)


def kept_state(
    stored: Mapping[str, Any], *, drift: float, n_gold: int, reason: str
) -> dict[str, Any]:
    """The run record's end model when a run keeps the stored one (one more run since)."""
    return dict(
        stored,
        runs_since_training=int(stored.get("runs_since_training", 0)) + 1,
        drift_since_training=drift,
        n_gold=n_gold,
        retrain={"retrained": False, "reason": reason, "drift": round(drift, 6)},
    )


def trained_state(
    model: Any,
    *,
    settings: Any,
    classes: Sequence[str],
    run_id: str,
    n_gold: int,
    reason: str,
    drift: float,
) -> dict[str, Any]:
    """The run record's end model after a training (empty: not a linear model)."""
    state = end_model_state(model)
    if state:
        state.update(
            settings=settings.model_dump(mode="json"),
            classes=list(classes),
            trained_run=run_id,
            runs_since_training=0,
            drift_since_training=0.0,
            n_gold=n_gold,
            retrain={"retrained": True, "reason": reason, "drift": round(drift, 6)},
        )
    return state


def training_sample(
    voted: np.ndarray, has_gold: np.ndarray, priority: np.ndarray, *, max_rows: int
) -> np.ndarray:
    """Which assets the end model trains on: gold first, then voted assets by ``priority``.

    Every gold asset (the first ``max_rows`` of them), then the voted assets of lowest
    ``priority`` (a hash of the asset id: a few new assets change the sample little) up to
    ``max_rows`` in all. Returns a bool mask ``(n,)``.
    """
    n = voted.size
    mask = np.zeros(n, dtype=bool)
    gold_rows = np.flatnonzero(has_gold)[:max_rows]
    mask[gold_rows] = True
    others = np.flatnonzero(voted & ~has_gold)
    room = max(max_rows - gold_rows.size, 0)
    if others.size > room:
        keys = priority[others]
        others = others[np.argpartition(keys, room - 1)[:room]] if room else others[:0]
    mask[others] = True
    return mask


def sample_drift(
    current: tuple[np.ndarray, np.ndarray, np.ndarray],
    previous: tuple[np.ndarray, np.ndarray, np.ndarray],
    replaced: np.ndarray,
) -> float:
    """How far the training sample moved: the share of its label mass that changed, in [0, 1].

    Each sample is ``(in_sample, target_class, weight)`` per asset, the weight being what
    the row teaches (1 for gold, the label model's confidence otherwise). A row that left or
    joined the sample, or whose features changed (``replaced``), counts its whole weight; a
    row whose class flipped counts both weights; a row whose confidence moved counts the
    move. The sum is divided by the two samples' total weight, so replacing ``m`` of ``N``
    equally weighted rows is ``m / N``.

    One of three rows replaced by another:

    >>> ones, classes = np.ones(4), np.array([0, 1, 0, 1])
    >>> now, before = np.array([1, 1, 1, 0], bool), np.array([1, 1, 0, 1], bool)
    >>> round(sample_drift((now, classes, ones), (before, classes, ones), ~now & now), 4)
    0.3333
    """
    in_now, class_now, w_now = current
    in_before, class_before, w_before = previous
    w_now = np.where(in_now, w_now, 0.0)
    w_before = np.where(in_before, w_before, 0.0)
    total = float(w_now.sum() + w_before.sum())
    if total <= 0:
        return 0.0
    same = in_now & in_before & ~replaced & (class_now == class_before)
    moved = np.where(same, np.abs(w_now - w_before), w_now + w_before)
    return float(moved.sum()) / total


def linear_features(
    state: Mapping[str, Any], vectors: np.ndarray | None, tab: np.ndarray | None
) -> np.ndarray:
    """The features a stored linear end model saw: the vectors, then the columns standardized.

    ``state`` is what ``end_model_state`` stored (which inputs the model used, the columns'
    mean and scale); ``vectors`` the assets' unit vectors, ``tab`` their feature columns.
    """
    matrix = []
    if state["embedding"] and vectors is not None:
        matrix.append(vectors)
    if state["feature_columns"] and tab is not None:
        mean = np.asarray(state["feature_mean"], dtype=np.float64)
        matrix.append((tab - mean) / np.asarray(state["feature_scale"], dtype=np.float64))
    return np.hstack(matrix) if len(matrix) > 1 else matrix[0]


def linear_proba(state: Mapping[str, Any], matrix: np.ndarray) -> np.ndarray:
    """Class probabilities ``(n, k)`` of a linear end model stored by ``end_model_state``.

    ``matrix`` holds the features as the model saw them (unit vectors, then the columns
    standardized). The same as the model's ``predict_proba``: the classifier's
    probabilities over the classes it saw, then the temperature.
    """
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


def with_end_model(
    enriched: pl.DataFrame, ended: EndModelResult, gold: Any, classes: Sequence[str]
) -> pl.DataFrame:
    """The end model's columns and ``label_source`` (gold / lfs / model) of every asset."""
    source = pl.when(pl.col("label").is_not_null()).then(pl.lit("lfs")).otherwise(pl.lit("model"))
    if gold is not None:
        source = pl.when(pl.Series(gold >= 0)).then(pl.lit("gold")).otherwise(source)
    return enriched.hstack(model_columns(ended.proba, class_names=classes)).with_columns(
        source.alias("label_source")
    )


# -- the decision --------------------------------------------------------------------------------
def _retrain_decision(
    run: RunContext,
    read: ReadResult,
    full: pl.DataFrame,
    fitted: FitResult,
    *,
    sample: np.ndarray,
    priority: np.ndarray,
    fresh: np.ndarray,
) -> tuple[dict[str, Any] | None, str, float]:
    """The stored model to predict with (None: retrain), the reason, the sample's drift."""
    previous = read.previous
    stored = previous.record.get("end_model") if previous is not None else None
    index = read.embedder.index if read.embedder is not None else None
    return retrain_decision(
        stored,
        settings=run.config.end_model,
        classes=run.classes,
        lfs_changed=read.lfs_changed,
        has_model_columns="_prev_model_label" in full.columns,
        dim=index.dim if index is not None else 0,
        drift=lambda: _run_drift(
            full, fitted, sample=sample, priority=priority, fresh=fresh, stored=stored, run=run
        ),
    )


def retrain_decision(
    stored: Mapping[str, Any] | None,
    *,
    settings: Any,
    classes: Sequence[str],
    lfs_changed: bool,
    has_model_columns: bool,
    dim: int,
    drift: Callable[[], float],
) -> tuple[dict[str, Any] | None, str, float]:
    """Whether to retrain: the stored model to predict with (None: retrain), why, the drift.

    Parameters
    ----------
    stored
        The end model the previous run recorded (None: none).
    settings
        ``[end_model]`` (:class:`~enrich.job.config.EndModelConfig`).
    classes
        This run's classes.
    lfs_changed
        Whether an LF is new, changed or gone.
    has_model_columns
        Whether the table holds the model's columns.
    dim
        The width of the job's vectors (0: none).
    drift
        This run's drift of the training sample (:func:`sample_drift`), computed only when
        no other reason decides.

    Returns
    -------
    (dict or None, str, float)
    """
    if not stored:
        return None, "no model stored by an earlier run", 0.0
    if not has_model_columns:
        return None, "the table has no model columns yet", 0.0
    if lfs_changed:
        return None, "the labeling functions changed", 0.0
    if stored.get("classes") != list(classes):
        return None, "the classes changed", 0.0
    now = settings.model_dump(mode="json")
    before = dict(stored.get("settings") or {})
    if {k: v for k, v in now.items() if k not in _TRIGGER_KEYS} != {
        k: v for k, v in before.items() if k not in _TRIGGER_KEYS
    }:
        return None, "the [end_model] settings changed", 0.0
    width = (dim if stored.get("embedding") else 0) + len(settings.feature_columns)
    if np.asarray(stored.get("coef")).shape[-1] != width:
        return None, "the features changed width", 0.0
    drift_now = float(stored.get("drift_since_training", 0.0)) + drift()
    return _by_schedule(stored, settings, drift_now)


def _by_schedule(
    stored: Mapping[str, Any], settings: Any, drift: float
) -> tuple[dict[str, Any] | None, str, float]:
    """Retrain on ``retrain_every`` or past ``retrain_after``; else keep ``stored``."""
    runs = int(stored.get("runs_since_training", 0)) + 1
    since = f"since run {stored.get('trained_run')}"
    every = settings.retrain_every
    if every is not None and runs >= every:
        return None, f"{runs} runs {since} (retrain_every = {every})", drift
    moved = f"the training sample moved {drift:.2%} {since}"
    if drift > settings.retrain_after:
        return None, f"{moved} (> retrain_after = {settings.retrain_after:.2%})", drift
    return dict(stored), f"{moved} (<= retrain_after = {settings.retrain_after:.2%})", drift


def _run_drift(
    full: pl.DataFrame,
    fitted: FitResult,
    *,
    sample: np.ndarray,
    priority: np.ndarray,
    fresh: np.ndarray,
    stored: Mapping[str, Any],
    run: RunContext,
) -> float:
    """Measure how far this run moved the training sample from the previous run's.

    See :func:`sample_drift`.

    The previous sample is rebuilt from the previous run's outputs kept in ``full``
    (``_prev_label`` null: no LF voted; ``_prev_proba_*``), with the same rule and hash.
    Gold rows added or removed since the training count too.
    """
    return sample_drift_of(
        full,
        fitted.proba,
        fitted.gold,
        sample=sample,
        priority=priority,
        fresh=fresh,
        stored=stored,
        settings=run.config.end_model,
        classes=run.classes,
    )


def sample_drift_of(
    full: pl.DataFrame,
    proba: np.ndarray,
    gold: np.ndarray | None,
    *,
    sample: np.ndarray,
    priority: np.ndarray,
    fresh: np.ndarray,
    stored: Mapping[str, Any],
    settings: Any,
    classes: Sequence[str],
) -> float:
    """The drift of the training sample this run, from the assets' previous and current outputs.

    ``full`` holds ``_prev_needs_review``, ``_prev_label`` and ``_prev_proba_<class>`` per
    asset; ``proba`` the label model's probabilities now, ``gold`` the gold class (-1: none),
    ``sample`` the current sample, ``priority`` the sample's hash, ``fresh`` the new and
    changed assets. Only assets in the current or the previous sample count, so ``full``
    may be any set of rows that holds both samples.
    """
    classes = list(classes)
    has_gold = gold >= 0 if gold is not None else np.zeros(full.height, dtype=bool)
    in_table = full.get_column("_prev_needs_review").is_not_null().to_numpy()
    voted_before = full.get_column("_prev_label").is_not_null().to_numpy() & in_table
    before = training_sample(
        voted_before, has_gold & in_table, priority, max_rows=settings.max_train_rows
    )
    prev_proba = full.select(pl.col(f"_prev_proba_{c}").fill_null(0.0) for c in classes).to_numpy()
    floor = settings.min_confidence

    def targets(probs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, ...]:
        cls = np.where(has_gold, gold if gold is not None else 0, probs.argmax(axis=1))
        weight = np.where(has_gold, 1.0, probs.max(axis=1))
        if floor is not None:
            weight = np.where(has_gold | (weight >= floor), weight, 0.0)
        return mask, cls, weight

    moved = sample_drift(targets(proba, sample), targets(prev_proba, before), fresh)
    # gold given to assets already in the table (reviewed gold) is not in their previous
    # outputs: count the change of the sample's gold that its new assets do not explain
    gold_now = int((has_gold & sample).sum())
    explained = int((has_gold & sample & fresh).sum())
    unexplained = max(abs(gold_now - int(stored.get("n_gold", gold_now))) - explained, 0)
    return moved + unexplained / max(int(sample.sum()), 1)


# -- training and prediction ---------------------------------------------------------------------
def _train(
    run: RunContext,
    full: pl.DataFrame,
    fitted: FitResult,
    *,
    sample: np.ndarray,
    index: Any,
    columns: Sequence[str],
) -> tuple[Any, np.ndarray, np.ndarray]:
    """Train on the sample; every asset's probabilities (out-of-fold for trained rows)."""
    rows = np.flatnonzero(sample)
    vectors, tab = raw_features(full, rows, index=index, columns=columns)
    gold = fitted.gold
    model = fit_end_model(
        vectors,
        tab,
        settings=run.config.end_model,
        columns=columns,
        classes=run.classes,
        proba=fitted.proba[rows],
        votes=fitted.votes.votes[rows],
        gold=gold[rows] if gold is not None else None,
    )
    everyone = np.arange(full.height)
    proba = predict_rows(
        end_model_state(model), model, full, everyone, index=index, columns=columns
    )
    proba[rows] = model.oof_proba_
    sampled = np.zeros(full.height, dtype=bool)
    sampled[rows] = model.train_mask_
    return model, proba, sampled


def fit_end_model(
    vectors: np.ndarray | None,
    tab: np.ndarray | None,
    *,
    settings: Any,
    columns: Sequence[str],
    classes: Sequence[str],
    proba: np.ndarray,
    votes: np.ndarray,
    gold: np.ndarray | None,
) -> Any:
    """Fit the end model on the training rows (their features as :func:`raw_features` gives).

    Parameters
    ----------
    vectors, tab
        The rows' unit vectors ``(n, dim)`` and raw numeric columns ``(n, len(columns))``
        (either may be None).
    settings
        ``[end_model]``.
    columns, classes
        The numeric feature columns' names, and the classes.
    proba, votes, gold
        The rows' label-model probabilities ``(n, k)``, votes ``(n, n_lfs)`` and gold
        classes ``(n,)`` (-1: none; None: no gold).

    Returns
    -------
    EndModel
        Fitted (``oof_proba_`` and ``train_mask_`` follow the rows' order).
    """
    model = unfitted_end_model(settings, columns, with_vectors=vectors is not None)
    features = end_model_features(vectors, tab, columns)
    model.fit(features, proba, votes=votes, gold=gold, class_names=list(classes))
    return model


def end_model_features(
    vectors: np.ndarray | None, tab: np.ndarray | None, columns: Sequence[str]
) -> Any:
    """The end model's features: the vectors, or the feature columns (+ the vectors)."""
    if tab is None:
        return vectors
    features = pl.DataFrame({name: tab[:, i] for i, name in enumerate(columns)})
    if vectors is not None:
        features = features.with_columns(pl.Series(_EMBEDDING, vectors))
    return features


def unfitted_end_model(settings: Any, columns: Sequence[str], *, with_vectors: bool) -> Any:
    """The ``[end_model]`` settings' :class:`~enrich.models.end_model.EndModel`, not fitted."""
    from enrich.models.end_model import EndModel

    rng = np.random.default_rng(settings.random_state)
    return EndModel(
        embedding_column=_EMBEDDING if with_vectors else None,
        feature_columns=list(columns) or None,
        min_confidence=settings.min_confidence,
        cv=settings.cv,
        random_state=int(rng.integers(2**31 - 1)),
    )


def predict_rows(
    state: Mapping[str, Any],
    model: Any,
    full: pl.DataFrame,
    rows: np.ndarray,
    *,
    index: Any,
    columns: Sequence[str],
) -> np.ndarray:
    """Probabilities of the assets at ``rows``, a chunk at a time.

    The stored linear model's (``state``), or ``model.predict_proba`` when it is not linear.
    """
    k = int(state["n_classes"]) if state else int(model.classes_.size)
    out = np.empty((rows.size, k), dtype=np.float64)
    for start in range(0, rows.size, PREDICT_CHUNK):
        part = rows[start : start + PREDICT_CHUNK]
        vectors, tab = raw_features(full, part, index=index, columns=columns)
        if not state:  # not a linear model: the model's own prediction
            if tab is None:
                out[start : start + part.size] = model.predict_proba(vectors)
                continue
            frame = pl.DataFrame({name: tab[:, i] for i, name in enumerate(columns)})
            if vectors is not None:
                frame = frame.with_columns(pl.Series(_EMBEDDING, vectors))
            out[start : start + part.size] = model.predict_proba(frame)
            continue
        out[start : start + part.size] = linear_proba(state, linear_features(state, vectors, tab))
    return out


_EMBEDDING = "_embedding"


def raw_features(
    full: pl.DataFrame, rows: np.ndarray, *, index: Any, columns: Sequence[str]
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Unit vectors (from the index) and raw numeric columns (nulls as 0) of ``rows``."""
    vectors = None
    if index is not None:
        ids = full.get_column("index_id").gather(rows).to_numpy()
        vectors = np.asarray(index.get_vectors(ids), dtype=np.float64)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors /= np.where(norms > 0, norms, 1.0)
    tab = None
    if columns:
        tab = np.column_stack(
            [_numeric_column(full.get_column(name).gather(rows), name) for name in columns]
        )
    return vectors, tab


def _numeric_column(column: pl.Series, name: str) -> np.ndarray:
    from enrich.errors import InputError

    if not (column.dtype.is_numeric() or column.dtype == pl.Boolean):
        raise InputError(
            f"end_model.feature_columns: column {name!r} is {column.dtype}, not numeric; "
            "name numeric or boolean source columns (or derive one in the source)"
        )
    values = column.cast(pl.Float64)
    return values.fill_nan(0.0).fill_null(0.0).to_numpy()


def _fresh_rows(status: pl.DataFrame, full: pl.DataFrame) -> np.ndarray:
    """Which assets of ``full`` are new or changed this run."""
    fresh = status.filter(pl.col("_new") | pl.col("_changed")).get_column("asset_id")
    if fresh.is_empty():
        return np.zeros(full.height, dtype=bool)
    return full.select(pl.col("asset_id").is_in(fresh.implode())).to_series().to_numpy()


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


def _softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)
