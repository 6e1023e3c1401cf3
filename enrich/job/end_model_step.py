"""The job's end-model step: train the end model, or predict with the one a run stored.

Training uses a bounded, stable sample of labeled assets; between retrainings
(``[end_model] retrain_every``) the stored model predicts the new and changed assets.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from enrich.job.fit import (
    end_model_features,
    end_model_state,
    fit_end_model,
    predict_stored,
)
from enrich.models.end_model import model_columns

__all__ = ["SAMPLE_SEED", "end_model_step", "with_end_model"]

SAMPLE_SEED = 0x656E64
"""Seed of the asset-id hash that orders the end model's training sample (stable across runs)."""


def end_model_step(
    run: RunContext, read: ReadResult, voted: VoteResult, fitted: FitResult
) -> EndModelResult:
    """Train the end model (``[end_model]``) or predict with the stored one.

    Train on a bounded sample of labelled assets, predict every asset; or, between retrainings,
    predict the new and changed assets with the stored model.
    """
    settings, full = run.config.end_model, voted.full
    index = None
    if run.config.end_model_uses_embeddings and read.embedder is not None:
        index = read.embedder.index
    stored = _stored_end_model(run, read, full)
    if stored is not None:
        fresh = read.status.filter(pl.col("_new") | pl.col("_changed")).get_column("asset_id")
        prev_cols = [f"_prev_model_proba_{c}" for c in run.classes]
        todo = full.select(
            pl.col("asset_id").is_in(fresh.implode()) | pl.col("_prev_model_label").is_null()
        ).to_series()
        proba = full.select(prev_cols).to_numpy().astype(np.float64)
        if todo.any():
            rows = full.filter(todo)
            features = end_model_features(
                rows, feature_columns=settings.feature_columns, index=index
            )
            proba[todo.to_numpy()] = predict_stored(stored, features)
        state = dict(stored, runs_since_training=stored["runs_since_training"] + 1)
        return EndModelResult(
            model=None,
            proba=proba,
            sampled=np.zeros(full.height, dtype=bool),
            state=state,
            retrained=False,
        )
    features = end_model_features(full, feature_columns=settings.feature_columns, index=index)
    model, proba, sampled = fit_end_model(
        features,
        fitted.proba,
        fitted.votes.votes,
        fitted.gold,
        classes=run.classes,
        max_train_rows=settings.max_train_rows,
        min_confidence=settings.min_confidence,
        cv=settings.cv,
        random_state=settings.random_state,
        priority=full.get_column("asset_id").hash(seed=SAMPLE_SEED).to_numpy(),
    )
    state = end_model_state(model)
    if state:
        state.update(
            settings=settings.model_dump(mode="json"),
            classes=list(run.classes),
            trained_run=run.run_id,
            runs_since_training=0,
        )
    return EndModelResult(model=model, proba=proba, sampled=sampled, state=state)


def _stored_end_model(
    run: RunContext, read: ReadResult, full: pl.DataFrame
) -> dict[str, Any] | None:
    """The previous run's end model when this run may predict with it instead of training.

    ``retrain_every`` not reached, same settings, classes and LFs, model columns in the table.
    """
    settings = run.config.end_model
    if settings.retrain_every <= 1 or read.previous is None or read.changed_lfs:
        return None
    stored = read.previous.record.get("end_model")
    if not stored or "_prev_model_label" not in full.columns:
        return None
    if (
        stored.get("settings") != settings.model_dump(mode="json")
        or stored.get("classes") != list(run.classes)
        or stored.get("runs_since_training", 0) + 1 >= settings.retrain_every
        or set(read.prev_versions) != set(read.lf_versions)
    ):
        return None
    return stored


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
