"""The end model of a run whose Dask workers read their own partitions.

The local engine's step (:mod:`enrich.job.end_model_step`) holds every asset; here the driver
holds a bounded number of rows, whatever the number of assets:

1. Each partition sends the assets that may be in the training sample by the job's rule
   (:func:`~enrich.job.end_model_step.training_sample`: gold first, then the lowest asset-id
   hashes), for this run's sample and for the one the previous outputs give
   (:func:`~enrich.job.worker.model_candidates`). The job's sample lies within the union of
   the partitions' samples, so the driver merges them as they arrive, keeping only what the
   rule keeps (at most ``2 * max_train_rows`` rows), and picks the same sample as the local
   engine would, with the same drift.
2. The retrain rule is the local step's (:func:`~enrich.job.end_model_step.retrain_decision`,
   :func:`~enrich.job.end_model_step.sample_drift_of`).
3. To retrain, the partitions send only the sample's rows (features, votes, gold, label-model
   probabilities); the driver fits the model on them in asset-id order
   (:func:`~enrich.job.end_model_step.fit_end_model`), exactly as the local step does.
4. The fitted model (a linear model's coefficients, or the model) and the sample's
   out-of-fold probabilities are broadcast with each partition's write, where every asset is
   predicted (:func:`~enrich.job.worker.write_partition`); a kept model predicts only new
   and changed assets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from enrich.job.end_model_step import (
    end_model_state,
    fit_end_model,
    kept_state,
    retrain_decision,
    sample_drift_of,
    trained_state,
    training_sample,
)
from enrich.job.worker import (
    EndModelWork,
    ModelBroadcast,
    RunSettings,
    model_candidates,
    model_training_rows,
)

__all__ = ["end_model_partitioned", "merge_candidates"]


def end_model_partitioned(
    client: Any,
    futures: Sequence[Any],
    settings: RunSettings,
    work: EndModelWork,
    *,
    stored: dict[str, Any] | None,
    run_id: str,
    lfs_changed: bool,
    has_model_columns: bool,
    dim: int,
    gold_known: bool,
) -> tuple[ModelBroadcast, dict[str, Any], dict[str, Any]]:
    """Retrain the end model or keep the stored one; what the writes predict with.

    Parameters
    ----------
    client
        The Dask client.
    futures
        Every partition's :class:`~enrich.job.worker.Voted` (a future on its worker).
    settings, work
        The run's shared settings and the end model's.
    stored
        The end model the previous run recorded (None: none).
    run_id
        This run's id.
    lfs_changed, has_model_columns, dim
        As :func:`~enrich.job.end_model_step.retrain_decision` takes them.
    gold_known
        Whether the job has gold (a gold column or reviewed gold): the model then learns
        from it, as on the local engine.

    Returns
    -------
    (ModelBroadcast, dict, dict)
        What every partition's write predicts with, the run record's ``end_model`` entry,
        and the run's end-model metrics.
    """
    from dask.distributed import as_completed

    end, classes = work.settings, settings.classes
    max_rows = end.max_train_rows
    candidates = client.map(model_candidates, futures, settings=settings, work=work, pure=False)
    frame = None
    for _, result in as_completed(candidates, with_results=True):  # one partition at a time
        parts = [result] if frame is None else [frame, result]
        frame = merge_candidates(pl.concat(parts, how="vertical_relaxed"), max_rows=max_rows)
        del result
    assert frame is not None  # there is at least one partition
    priority = frame.get_column("_priority").to_numpy()
    gold = frame.get_column("_gold").to_numpy()
    has_gold = gold >= 0
    sample = training_sample(
        frame.get_column("_voted").to_numpy(), has_gold, priority, max_rows=max_rows
    )
    proba = frame.select(f"proba_{c}" for c in classes).to_numpy()
    kept, reason, drift = retrain_decision(
        stored,
        settings=end,
        classes=classes,
        lfs_changed=lfs_changed,
        has_model_columns=has_model_columns,
        dim=dim,
        drift=lambda: sample_drift_of(
            frame,
            proba,
            gold if gold_known else None,
            sample=sample,
            priority=priority,
            fresh=frame.get_column("_fresh").to_numpy(),
            stored=stored or {},
            settings=end,
            classes=classes,
        ),
    )
    n_gold = int((has_gold & sample).sum())
    if kept is not None:
        state = kept_state(kept, drift=drift, n_gold=n_gold, reason=reason)
        metrics = {"retrained": False, "n_train": int(sample.sum()), "reason": reason}
        return ModelBroadcast(work, state=kept, model=None, retrained=False), state, metrics
    ids = frame.filter(pl.Series(sample)).get_column("asset_id")
    rows = client.gather(
        client.map(model_training_rows, futures, ids=ids, settings=settings, work=work, pure=False)
    )
    train = pl.concat(rows, how="vertical_relaxed").sort("asset_id")
    vectors = (
        np.asarray(train.get_column("_vector").to_numpy(), dtype=np.float64)
        if "_vector" in train.columns
        else None
    )
    tab = (
        np.asarray(train.get_column("_tab").to_numpy(), dtype=np.float64)
        if "_tab" in train.columns
        else None
    )
    model = fit_end_model(
        vectors,
        tab,
        settings=end,
        columns=work.columns,
        classes=classes,
        proba=train.select(f"proba_{c}" for c in classes).to_numpy(),
        votes=train.select(f"vote_{n}" for n in settings.lf_names).to_numpy(),
        gold=train.get_column("_gold").to_numpy() if gold_known else None,
    )
    state = trained_state(
        model,
        settings=end,
        classes=classes,
        run_id=run_id,
        n_gold=n_gold,
        reason=reason,
        drift=drift,
    )
    oof = pl.DataFrame(
        [train.get_column("asset_id")]
        + [
            pl.Series(f"model_proba_{c}", model.oof_proba_[:, j], dtype=pl.Float64)
            for j, c in enumerate(classes)
        ]
    )
    linear = end_model_state(model)
    broadcast = ModelBroadcast(
        work, state=linear, model=None if linear else model, retrained=True, oof=oof
    )
    metrics = {
        "retrained": True,
        "n_train": int(np.asarray(model.train_mask_).sum()),
        "reason": reason,
    }
    return broadcast, state, metrics


def merge_candidates(frame: pl.DataFrame, *, max_rows: int) -> pl.DataFrame:
    """The rows of ``frame`` the job's training samples (now and before) can still take.

    ``frame`` holds :func:`~enrich.job.worker.model_candidates` rows of some partitions;
    the result, sorted by asset id, is the same set :func:`model_candidates` would give on
    those partitions together (so merging in any order keeps at most ``2 * max_rows`` rows
    and loses none the job's sample needs).

    >>> frame = pl.DataFrame({"asset_id": ["c", "a", "b"], "_priority": [3, 1, 2],
    ...     "_gold": [-1, -1, 0], "_voted": [True, True, False],
    ...     "_prev_needs_review": [None, None, None], "_prev_label": [None, None, None]})
    >>> merge_candidates(frame, max_rows=2).get_column("asset_id").to_list()
    ['a', 'b']
    """
    frame = frame.sort("asset_id")
    gold = frame.get_column("_gold").to_numpy() >= 0
    priority = frame.get_column("_priority").to_numpy()
    in_table = frame.get_column("_prev_needs_review").is_not_null().to_numpy()
    before = frame.get_column("_prev_label").is_not_null().to_numpy() & in_table
    keep = training_sample(
        frame.get_column("_voted").to_numpy(), gold, priority, max_rows=max_rows
    ) | training_sample(before, gold & in_table, priority, max_rows=max_rows)
    return frame.filter(pl.Series(keep))
