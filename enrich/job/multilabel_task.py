"""One multi-label task of a job: the label model, its columns, metrics and end model.

:func:`fit_multilabel` fits :class:`~enrich.models.multilabel.MultiLabelModel` once per
distinct vote pattern weighted by its count (the fit of every row, so the probabilities of
unchanged assets stay put when new ones arrive) and builds its table once per pattern
(:func:`~enrich.analysis.multilabel.multilabel_table`): ``p_<label>`` per label, the
predicted set ``labels``, ``n_labels``, ``voted``, ``conflict``, ``uncertain_labels`` and
``review`` (a probability within ``review.below_confidence - 0.5`` of its label's threshold,
or LFs voting both ways on a label). Its metrics are per label: coverage, positives,
threshold; F1 against gold; the LF summary per label. With ``[end_model]`` the task gets
``model_p_<label>``, ``model_labels`` and ``label_source``
(:mod:`enrich.job.multilabel_end_model`); gaps and the review queue are
:mod:`enrich.job.multilabel_followups`'.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import polars as pl

from enrich._internal.vote_arrays import compress_votes
from enrich.analysis.multilabel import multilabel_lf_summary, multilabel_scores, multilabel_table
from enrich.errors import InputError
from enrich.job.config import JobConfig
from enrich.job.context import ReadResult, VoteResult
from enrich.job.fit import model_json
from enrich.job.job_tasks import JobTask, TaskResult, TasksRunContext, model_record
from enrich.job.multilabel_end_model import (
    MultiLabelEnded,
    end_model_metrics,
    multilabel_end_model_step,
)
from enrich.job.multilabel_followups import label_views, multilabel_gaps, multilabel_queue
from enrich.job.task_votes import decode_votes, lists_to_array, with_previous
from enrich.labeling.multilabel import lf_targets
from enrich.multilabel_votes import MultiLabelVoteMatrix

__all__ = ["fit_multilabel"]


def fit_multilabel(
    run: TasksRunContext, read: ReadResult, voted: VoteResult, task: JobTask
) -> TaskResult:
    """Fit :class:`MultiLabelModel` once per distinct vote pattern; the task's columns."""
    config, full = run.config, voted.full
    k, lf_names = len(task.names), tuple(lf.name for lf in task.lfs)
    n, m = full.height, len(lf_names)
    votes = np.zeros((n, m, k), dtype=np.int8)
    for j, name in enumerate(lf_names):
        votes[:, j, :] = decode_votes(full.get_column(f"vote_{name}").to_numpy(), k)
    targets = lf_targets(task.lfs, task.task)
    lf_versions = tuple(lf.version for lf in task.lfs)
    gold = None
    if task.gold_column is not None:
        gold = lists_to_array(full.get_column(task.gold_state), k, missing=-1).astype(np.int64)
        gold = gold if (gold >= 0).any() else None
    flat = votes.reshape(n, m * k).astype(np.int32)
    patterns = compress_votes(flat)
    use_gold = config.gold.use_in_fit and gold is not None
    fit_rows = compress_votes(np.column_stack([flat, gold])) if use_gold else patterns
    model = _multilabel_model(config)
    fit_votes = fit_rows.patterns[:, : m * k].reshape(-1, m, k).astype(np.int8)
    model.fit(
        _matrix(fit_votes, lf_names, task, lf_versions, targets),
        fit_rows.patterns[:, m * k :] if use_gold else None,
        sample_weight=fit_rows.counts,
    )
    text = model_json(model)
    version = hashlib.sha256(text.encode()).hexdigest()[:16]
    distinct = _matrix(
        patterns.patterns.reshape(-1, m, k).astype(np.int8), lf_names, task, lf_versions, targets
    )
    pattern_proba = np.asarray(model.predict_proba(distinct), dtype=np.float64)
    margin = max(0.0, config.review.below_confidence - 0.5)
    small = multilabel_table(
        distinct, pattern_proba, thresholds=model.thresholds_, review_margin=margin
    )
    table = small.drop("asset_id").select(pl.all().gather(patterns.inverse))
    columns = table.select(pl.col(c).alias(f"{task.prefix}{c}") for c in table.columns)
    proba = pattern_proba[patterns.inverse]
    matrix = _matrix(votes, lf_names, task, lf_versions, targets, ids=full.get_column("asset_id"))
    metrics = _multilabel_metrics(matrix, proba, model, columns, gold, task, read, patterns)
    metrics["lf_errors"] = voted.errors.filter(pl.col("lf").is_in(list(lf_names))).to_dicts()
    table = table.insert_column(0, matrix.asset_ids.alias("asset_id"))  # label_view's input
    silent = [r for r in metrics["per_label"] if r["coverage"] == 0]
    if silent and n:
        where = f" of task {task.name!r}" if task.prefix else ""
        priors = ", ".join(f"{r['label']} {r['prior']:.2f}" for r in silent)
        run.warnings.append(
            f"no LF votes on label(s) {[r['label'] for r in silent]}{where}: every asset gets "
            f"the label's prior as its probability ({priors}); add LFs for them, or set "
            "label_model.params label_prior"
        )
    views = label_views(run, small, distinct, patterns.inverse, full)
    index = read.embedder.index if read.embedder is not None else None
    metrics["gaps"], candidates = multilabel_gaps(
        run, task, table, matrix, full, gold, views, index=index
    )
    settled = (gold >= 0).any(axis=1) if gold is not None and config.gold.use_in_fit else None
    queue = multilabel_queue(run, task, table, matrix, settled, views, candidates=candidates)
    metrics["n_queued"] = queue.height if queue is not None else 0
    compare = {
        "label": [f"{task.prefix}labels", f"{task.prefix}uncertain_labels"],
        "review": [f"{task.prefix}review"],
        "proba": [f"{task.prefix}p_{name}" for name in task.names],
    }
    end_state = None
    if config.end_model.enabled:
        ended = _multilabel_end_model(run, read, full, task, proba, votes, gold, model)
        columns = columns.hstack(
            ended.columns.select(pl.all().name.prefix(task.prefix)).get_columns()
        )
        compare["label"].append(f"{task.prefix}model_labels")
        compare["proba"] += [f"{task.prefix}model_p_{name}" for name in task.names]
        metrics["end_model"] = end_model_metrics(
            ended, proba, model.thresholds_, gold, names=task.names
        )
        end_state = ended.state
        run.warnings.extend(ended.warnings)
    return TaskResult(
        task=task,
        columns=columns,
        compare=compare,
        metrics=metrics,
        record={
            "kind": "multilabel",
            "names": list(task.names),
            "prefix": task.prefix,
            "model": model_record(model, version, text, config),
            "end_model": end_state,
        },
        model_version=version,
        queue=queue,
    )


def _multilabel_end_model(
    run: TasksRunContext,
    read: ReadResult,
    full: pl.DataFrame,
    task: JobTask,
    proba: np.ndarray,
    votes: np.ndarray,
    gold: np.ndarray | None,
    model: Any,
) -> MultiLabelEnded:
    """The task's end model (:mod:`enrich.job.multilabel_end_model`): retrained or kept."""
    config = run.config
    wanted = ["voted", *(f"p_{n}" for n in task.names), *(f"model_p_{n}" for n in task.names)]
    mapping = {f"{task.prefix}{c}": c for c in wanted}
    previous = None
    if read.previous is not None and set(mapping) <= set(read.state.columns):
        previous = with_previous(full.select("asset_id"), read, mapping)
    stored = None
    if read.previous is not None:
        mine = (read.previous.record.get("tasks") or {}).get(task.name) or {}
        stored = mine.get("end_model")
    names = {lf.name for lf in task.lfs}
    before = {k for k in read.prev_versions if k in names}
    changed = any(lf.name in names for lf in read.changed_lfs) or before != {
        k for k in read.lf_versions if k in names
    }
    fresh = read.status.filter(pl.col("_new") | pl.col("_changed")).get_column("asset_id")
    index = None
    if config.end_model_uses_embeddings and read.embedder is not None:
        index = read.embedder.index
    return multilabel_end_model_step(
        full,
        settings=config.end_model,
        names=task.names,
        proba=proba,
        votes=votes,
        gold=gold,
        thresholds=np.asarray(model.thresholds_, dtype=np.float64),
        previous=previous,
        stored=stored,
        fresh=full.select(pl.col("asset_id").is_in(fresh.implode())).to_series().to_numpy(),
        lfs_changed=changed,
        index=index,
        run_id=run.run_id,
    )


def _multilabel_model(config: JobConfig) -> Any:
    from enrich.models.multilabel import MultiLabelModel

    params = dict(config.label_model.params)
    try:
        return MultiLabelModel(random_state=config.label_model.random_state, **params)
    except TypeError as exc:
        raise InputError(
            f"label_model.params {params} are not options of MultiLabelModel ({exc}); see "
            "help(enrich.MultiLabelModel)"
        ) from exc


def _matrix(
    votes: np.ndarray,
    lf_names: tuple[str, ...],
    task: JobTask,
    lf_versions: tuple[str, ...],
    targets: tuple[tuple[int, ...] | None, ...],
    *,
    ids: pl.Series | None = None,
) -> MultiLabelVoteMatrix:
    return MultiLabelVoteMatrix(
        votes=votes,
        lf_names=lf_names,
        label_names=task.names,
        asset_ids=ids if ids is not None else pl.Series("asset_id", np.arange(votes.shape[0])),
        lf_versions=lf_versions,
        lf_targets=targets,
    )


def _multilabel_metrics(
    votes: MultiLabelVoteMatrix,
    proba: np.ndarray,
    model: Any,
    columns: pl.DataFrame,
    gold: np.ndarray | None,
    task: JobTask,
    read: ReadResult,
    patterns: Any,
) -> dict[str, Any]:
    """Per label: coverage, positives, threshold; gold scores; the LF summary per label.

    The vote counts are read off the distinct vote ``patterns`` and their counts.
    """
    n = len(votes)
    predicted = proba >= model.thresholds_
    v = votes.votes
    pv = patterns.patterns.reshape(-1, v.shape[1], v.shape[2])
    counts = np.asarray(patterns.counts, dtype=np.int64)

    def assets(rows: np.ndarray) -> int:
        return int(counts[rows].sum())

    per_label = []
    for t, name in enumerate(task.names):
        on_label = pv[:, :, t]
        per_label.append(
            {
                "label": name,
                "coverage": assets((on_label != 0).any(axis=1)) / n if n else 0.0,
                "n_voted_for": assets((on_label > 0).any(axis=1)),
                "n_voted_against": assets((on_label < 0).any(axis=1)),
                "n_positive": int(predicted[:, t].sum()),
                "positive_share": float(predicted[:, t].mean()) if n else 0.0,
                "mean_proba": float(proba[:, t].mean()) if n else 0.0,
                "threshold": float(model.thresholds_[t]),
                "prior": float(model.label_prior_[t]),
            }
        )
    review = columns.get_column(f"{task.prefix}review")
    metrics: dict[str, Any] = {
        "kind": "multilabel",
        "n_assets": n,
        "labels": list(task.names),
        "per_label": per_label,
        "coverage": assets((pv != 0).any(axis=(1, 2))) / n if n else 0.0,
        "conflict": float(columns.get_column(f"{task.prefix}conflict").mean() or 0.0),
        "mean_labels": float(predicted.sum(axis=1).mean()) if n else 0.0,
        "n_needs_review": int(review.sum()),
        "lfs": multilabel_lf_summary(votes, gold).to_dicts(),
        "gold": None,
    }
    if gold is not None:
        scores = multilabel_scores(gold, predicted.astype(np.int64), label_names=task.names)
        metrics["gold"] = {
            "n_assets": scores.n_assets,
            "micro_f1": scores.micro_f1,
            "macro_f1": scores.macro_f1,
            "subset_accuracy": scores.subset_accuracy,
            "per_label": scores.per_label.to_dicts(),
        }
    if read.previous is not None:
        before = ((read.previous.record.get("tasks") or {}).get(task.name) or {}).get("metrics")
        shares = {r["label"]: r["positive_share"] for r in (before or {}).get("per_label", [])}
        metrics["drift"] = {
            "previous_run_id": read.previous.record.get("run_id"),
            "positive_share_change": {
                r["label"]: (r["positive_share"] - shares[r["label"]])
                if r["label"] in shares
                else None
                for r in per_label
            },
        }
    return metrics
