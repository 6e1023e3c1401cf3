"""The end model of a multi-label task in the nightly job: one classifier per label.

A multi-label task's ``[end_model]`` trains :class:`~enrich.MultiLabelEndModel` (one
:class:`~enrich.EndModel` per label, one-vs-rest) on the job's embeddings and / or numeric
``feature_columns``, with the label model's probability of each label as its target, and
predicts every asset: ``model_p_<label>`` per label and ``model_labels``, the labels whose
probability reaches the label model's threshold (``<task>__`` in front with several tasks),
plus ``label_source`` (``gold`` where the asset has gold, ``lfs`` where some LF voted on
some label, ``model`` where only the end model says anything).

The single-label step's rules hold (:mod:`enrich.job.end_model_step`, whose plain functions
do the work): the training sample is every gold asset, then the voted assets of lowest
asset-id hash, up to ``max_train_rows``; a later run retrains only when the sample moved past
``retrain_after`` since the last training (here: the mean over the labels of each label's
moved share of label mass, :func:`~enrich.job.end_model_step.sample_drift`), on
``retrain_every``, or when the task's LFs, labels or the ``[end_model]`` settings change.
Otherwise the linear models the training stored in the run record predict only the new and
changed assets; every other asset keeps its columns. The trained rows get each label's
out-of-fold probability. A label whose training rows hold one value only (every LF says it is
absent, say) gets no classifier: its probability is that value's mean target over the
training rows, for every asset, and the run warns.

>>> stored = {"labels": [{"label": "a", "constant": 0.25}], "n_features": 3,
...           "embedding": True}
>>> decision_view(stored)["coef"]
[[0.0, 0.0, 0.0]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from enrich.job.end_model_step import (
    PREDICT_CHUNK,
    SAMPLE_SEED,
    end_model_features,
    kept_state,
    linear_features,
    linear_proba,
    raw_features,
    retrain_decision,
    sample_drift,
    training_sample,
    unfitted_end_model,
)

__all__ = ["MultiLabelEnded", "decision_view", "multilabel_end_model_step", "predict_labels"]


@dataclass(frozen=True)
class MultiLabelEnded:
    """What the end model of a multi-label task gives a run.

    ``proba`` ``(n, n_labels)`` (out-of-fold for the rows trained on), ``columns`` (the
    table's ``model_p_<label>``, ``model_labels``, ``label_source``, unprefixed), ``state``
    (the run record's ``end_model`` of the task), ``retrained``, ``warnings``.
    """

    proba: np.ndarray
    columns: pl.DataFrame
    state: dict[str, Any]
    retrained: bool
    sampled: np.ndarray
    warnings: tuple[str, ...] = ()


def multilabel_end_model_step(
    full: pl.DataFrame,
    *,
    settings: Any,
    names: Sequence[str],
    proba: np.ndarray,
    votes: np.ndarray,
    gold: np.ndarray | None,
    thresholds: np.ndarray,
    previous: pl.DataFrame | None,
    stored: Mapping[str, Any] | None,
    fresh: np.ndarray,
    lfs_changed: bool,
    index: Any,
    run_id: str,
) -> MultiLabelEnded:
    """Retrain the task's end model, or predict the new and changed assets with the stored one.

    Parameters
    ----------
    full
        Every asset of the run (``asset_id``, ``index_id`` with embeddings, the numeric
        ``feature_columns``).
    settings
        ``[end_model]`` (:class:`~enrich.job.config.EndModelConfig`).
    names
        The task's labels.
    proba, votes, gold
        The label model's probabilities ``(n, n_labels)``, the votes ``(n, n_lfs,
        n_labels)`` of +1 / -1 / 0, the gold ``(n, n_labels)`` of 1 / 0 / -1 (None: none).
    thresholds
        The label model's threshold of each label (the predicted set's).
    previous
        Row-aligned with ``full``: the previous run's ``voted``, ``p_<label>`` and
        ``model_p_<label>`` of each asset (null for new ones; None: no previous run).
    stored
        The end model the previous run recorded for the task (None: none).
    fresh
        Bool ``(n,)``: the assets new or changed this run.
    lfs_changed
        Whether an LF of the task is new, changed or gone.
    index
        The job's vector index (None: no embeddings as features).
    run_id
        This run's id.

    Returns
    -------
    MultiLabelEnded
    """
    n = proba.shape[0]
    names = list(names)
    voted = (votes != 0).any(axis=(1, 2)) if votes.size else np.zeros(n, dtype=bool)
    has_gold = (gold >= 0).any(axis=1) if gold is not None else np.zeros(n, dtype=bool)
    priority = full.get_column("asset_id").hash(seed=SAMPLE_SEED).to_numpy()
    sample = training_sample(voted, has_gold, priority, max_rows=settings.max_train_rows)
    columns = list(settings.feature_columns)
    model_cols = [f"model_p_{name}" for name in names]
    has_model_columns = previous is not None and set(model_cols) <= set(previous.columns)
    kept, reason, drift = retrain_decision(
        decision_view(stored) if stored else None,
        settings=settings,
        classes=names,
        lfs_changed=lfs_changed,
        has_model_columns=has_model_columns,
        dim=index.dim if index is not None else 0,
        drift=lambda: _drift(
            previous,  # type: ignore[arg-type]  # has_model_columns: not None
            proba,
            gold,
            names=names,
            sample=sample,
            priority=priority,
            fresh=fresh,
            stored=stored or {},
            settings=settings,
        ),
    )
    n_gold = int((has_gold & sample).sum())
    warnings: list[str] = []
    if kept is not None and stored is not None and previous is not None:
        state = kept_state(stored, drift=drift, n_gold=n_gold, reason=reason)
        out = previous.select(pl.col(c).cast(pl.Float64) for c in model_cols).to_numpy()
        out = np.ascontiguousarray(out, dtype=np.float64)
        todo = np.flatnonzero(fresh | np.isnan(out).any(axis=1))
        if todo.size:
            out[todo] = predict_labels(state, full, todo, index=index, columns=columns)
        retrained = False
        sampled = np.zeros(n, dtype=bool)
    else:
        out, state, sampled, warnings = _train(
            full,
            settings=settings,
            names=names,
            proba=proba,
            votes=votes,
            gold=gold,
            thresholds=thresholds,
            sample=sample,
            index=index,
            columns=columns,
        )
        state.update(
            settings=settings.model_dump(mode="json"),
            classes=names,
            trained_run=run_id,
            runs_since_training=0,
            drift_since_training=0.0,
            n_gold=n_gold,
            retrain={"retrained": True, "reason": reason, "drift": round(drift, 6)},
        )
        retrained = True
    cut = np.asarray(state["thresholds"], dtype=np.float64)
    table = _columns(out, cut, names=names, voted=voted, has_gold=has_gold)
    return MultiLabelEnded(
        proba=out,
        columns=table,
        state=state,
        retrained=retrained,
        sampled=sampled,
        warnings=tuple(warnings),
    )


def decision_view(stored: Mapping[str, Any]) -> dict[str, Any]:
    """The stored state as :func:`~enrich.job.end_model_step.retrain_decision` reads it.

    The decision checks the width of a linear model's ``coef``: here each label has its
    own, all of the stored ``n_features``.
    """
    width = int(stored.get("n_features", 0))
    return {**stored, "coef": [[0.0] * width]}


def predict_labels(
    state: Mapping[str, Any],
    full: pl.DataFrame,
    rows: np.ndarray,
    *,
    index: Any,
    columns: Sequence[str],
) -> np.ndarray:
    """Each label's probability ``(len(rows), n_labels)`` by the stored per-label models.

    The features of a chunk of rows are read once (from the index and ``full``) for every
    label; each label's linear model (:func:`~enrich.job.end_model_step.linear_proba`)
    gives its probability of "present", a label without a model its constant.
    """
    labels = state["labels"]
    out = np.empty((rows.size, len(labels)), dtype=np.float64)
    for start in range(0, rows.size, PREDICT_CHUNK):
        part = rows[start : start + PREDICT_CHUNK]
        vectors, tab = raw_features(full, part, index=index, columns=columns)
        for t, label in enumerate(labels):
            if "constant" in label:
                out[start : start + part.size, t] = float(label["constant"])
                continue
            features = linear_features(label, vectors, tab)
            out[start : start + part.size, t] = linear_proba(label, features)[:, 1]
    return out


# -- training --------------------------------------------------------------------------------
def _train(
    full: pl.DataFrame,
    *,
    settings: Any,
    names: list[str],
    proba: np.ndarray,
    votes: np.ndarray,
    gold: np.ndarray | None,
    thresholds: np.ndarray,
    sample: np.ndarray,
    index: Any,
    columns: list[str],
) -> tuple[np.ndarray, dict[str, Any], np.ndarray, list[str]]:
    """Train on the sample; every asset's probabilities, the state, trained rows, warnings."""
    from enrich.job.end_model_step import end_model_state
    from enrich.models.multilabel_end_model import MultiLabelEndModel

    n, k = proba.shape
    rows = np.flatnonzero(sample)
    vectors, tab = raw_features(full, rows, index=index, columns=columns)
    width = (vectors.shape[1] if vectors is not None else 0) + len(columns)
    target = proba[rows]
    row_votes = votes[rows]
    row_gold = gold[rows] if gold is not None else None
    trainable, constants = _trainable(target, row_votes, row_gold, settings.min_confidence)
    if not rows.size:  # nothing voted and no gold: each label's mean probability
        constants = proba.mean(axis=0) if n else np.zeros(k)
    warnings = []
    untrained = [names[t] for t in range(k) if not trainable[t]]
    if untrained:
        warnings.append(
            f"end model: label(s) {untrained} get no classifier (their training rows all have "
            "one value: every vote and gold says the same); their model_p_ is that value's "
            "mean probability. Add LFs that vote for and against them, or gold"
        )
    labels: list[dict[str, Any]] = [
        {"label": names[t], "constant": float(constants[t])} for t in range(k)
    ]
    out = np.tile(np.array([float(c["constant"]) for c in labels]), (n, 1))
    sampled = np.zeros(n, dtype=bool)
    chosen = np.flatnonzero(trainable)
    if chosen.size:
        features = end_model_features(vectors, tab, columns)
        template = unfitted_end_model(settings, columns, with_vectors=vectors is not None)
        model = MultiLabelEndModel(end_model=template, thresholds=thresholds[chosen]).fit(
            features,
            target[:, chosen],
            votes=row_votes[:, :, chosen],
            gold=row_gold[:, chosen] if row_gold is not None else None,
            label_names=[names[t] for t in chosen],
        )
        for j, t in enumerate(chosen):
            labels[t] = {"label": names[t], **end_model_state(model.models_[j])}
            sampled[rows[model.models_[j].train_mask_]] = True
        state = {"labels": labels}
        out = predict_labels(state, full, np.arange(n), index=index, columns=columns)
        out[np.ix_(rows, chosen)] = model.oof_proba_
    state = {
        "kind": "multilabel",
        "labels": labels,
        "thresholds": [float(x) for x in thresholds],
        "embedding": vectors is not None,
        "feature_columns": list(columns),
        "n_features": int(width),
        "n_train": int(sampled.sum()),
    }
    return out, state, sampled, warnings


def _trainable(
    target: np.ndarray, votes: np.ndarray, gold: np.ndarray | None, min_confidence: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per label: whether its training rows hold both values (as :class:`EndModel` trains).

    And the mean target of its training rows (a label without a classifier predicts it).
    """
    n, k = target.shape
    trainable = np.zeros(k, dtype=bool)
    constants = target.mean(axis=0) if n else np.zeros(k)
    for t in range(k):
        p = target[:, t].astype(np.float64)
        labeled = (votes[:, :, t] != 0).any(axis=1) if votes.shape[1] else np.zeros(n, bool)
        if min_confidence is not None:
            labeled &= np.maximum(p, 1.0 - p) >= min_confidence
        value = p > 0.5  # EndModel's argmax over (absent, present): ties are absent
        if gold is not None:
            known = gold[:, t] >= 0
            value = np.where(known, gold[:, t] == 1, value)
            p = np.where(known, gold[:, t].astype(np.float64), p)
            labeled |= known
        if labeled.any():
            constants[t] = float(p[labeled].mean())
            trainable[t] = np.unique(value[labeled]).size >= 2
    return trainable, constants


# -- drift -------------------------------------------------------------------------------------
def _drift(
    previous: pl.DataFrame,
    proba: np.ndarray,
    gold: np.ndarray | None,
    *,
    names: list[str],
    sample: np.ndarray,
    priority: np.ndarray,
    fresh: np.ndarray,
    stored: Mapping[str, Any],
    settings: Any,
) -> float:
    """How far the training sample moved this run: the mean over labels of each one's drift.

    The previous sample is rebuilt from the previous outputs (``voted``; ``p_<label>``)
    with the same rule and hash; each label's targets are its value (gold, else the
    probability past 0.5) weighted by the confidence in it (1 for gold). Gold added to
    assets already in the table counts too, as in the single-label step.
    """
    n, k = proba.shape
    has_gold = (gold >= 0).any(axis=1) if gold is not None else np.zeros(n, dtype=bool)
    in_table = previous.get_column("voted").is_not_null().to_numpy()
    voted_before = previous.get_column("voted").fill_null(False).to_numpy() & in_table
    before = training_sample(
        voted_before, has_gold & in_table, priority, max_rows=settings.max_train_rows
    )
    prev_p = previous.select(pl.col(f"p_{c}").fill_null(0.0) for c in names).to_numpy()
    floor = settings.min_confidence

    def targets(p: np.ndarray, mask: np.ndarray, t: int) -> tuple[np.ndarray, ...]:
        known = gold[:, t] >= 0 if gold is not None else np.zeros(n, dtype=bool)
        value = np.where(known, gold[:, t] if gold is not None else 0, p > 0.5)
        weight = np.where(known, 1.0, np.maximum(p, 1.0 - p))
        if floor is not None:
            weight = np.where(known | (weight >= floor), weight, 0.0)
        return mask, value.astype(np.int64), weight

    moved = float(
        np.mean(
            [
                sample_drift(
                    targets(proba[:, t], sample, t), targets(prev_p[:, t], before, t), fresh
                )
                for t in range(k)
            ]
        )
        if k
        else 0.0
    )
    gold_now = int((has_gold & sample).sum())
    explained = int((has_gold & sample & fresh).sum())
    unexplained = max(abs(gold_now - int(stored.get("n_gold", gold_now))) - explained, 0)
    return moved + unexplained / max(int(sample.sum()), 1)


# -- columns and metrics ----------------------------------------------------------------------
def _columns(
    proba: np.ndarray,
    thresholds: np.ndarray,
    *,
    names: list[str],
    voted: np.ndarray,
    has_gold: np.ndarray,
) -> pl.DataFrame:
    """``model_p_<label>``, ``model_labels`` (List[String]) and ``label_source``."""
    present = proba >= thresholds
    columns = {f"model_p_{name}": pl.Series(proba[:, t]) for t, name in enumerate(names)}
    frame = pl.DataFrame(columns)
    sets = frame.select(
        pl.concat_list(
            [
                pl.when(pl.Series(present[:, t])).then(pl.lit(name)).otherwise(None)
                for t, name in enumerate(names)
            ]
        )
        .list.drop_nulls()
        .alias("model_labels")
    )
    source = np.where(has_gold, "gold", np.where(voted, "lfs", "model"))
    return frame.with_columns(
        sets.get_column("model_labels").cast(pl.List(pl.String)),
        pl.Series("label_source", source, dtype=pl.String),
    )


def end_model_metrics(
    ended: MultiLabelEnded,
    label_proba: np.ndarray,
    label_thresholds: np.ndarray,
    gold: np.ndarray | None,
    *,
    names: Sequence[str],
) -> dict[str, Any]:
    """Per label: trained or not, positives, agreement with the label model, gold F1."""
    from enrich.analysis.multilabel import multilabel_scores

    cut = np.asarray(ended.state["thresholds"], dtype=np.float64)
    predicted = ended.proba >= cut
    by_lfs = label_proba >= label_thresholds
    source = ended.columns.get_column("label_source").to_numpy()
    voted = source != "model"
    rows = []
    for t, (name, label) in enumerate(zip(names, ended.state["labels"], strict=True)):
        rows.append(
            {
                "label": name,
                "trained": "constant" not in label,
                "n_positive": int(predicted[:, t].sum()),
                "positive_share": float(predicted[:, t].mean()) if predicted.shape[0] else 0.0,
                "agreement_with_label_model": float(
                    (predicted[voted, t] == by_lfs[voted, t]).mean()
                )
                if voted.any()
                else None,
            }
        )
    metrics: dict[str, Any] = {
        "kind": "multilabel",
        "n_train": int(ended.state.get("n_train", 0)),
        "n_labeled_by_model": int((~voted).sum()),
        "retrained": ended.retrained,
        "retrain": ended.state.get("retrain"),
        "per_label": rows,
        "gold": None,
    }
    if gold is not None and (gold >= 0).any():
        scores = multilabel_scores(gold, predicted.astype(np.int64), label_names=tuple(names))
        f1 = {r["label"]: r["f1"] for r in scores.per_label.to_dicts()}
        for row in rows:
            row["gold_f1"] = f1.get(row["label"])
        metrics["gold"] = {
            "n_assets": scores.n_assets,
            "micro_f1": scores.micro_f1,
            "macro_f1": scores.macro_f1,
            "subset_accuracy": scores.subset_accuracy,
        }
    return metrics
