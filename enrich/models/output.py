"""The per-asset output of a label model: the label table and the enriched table.

:func:`label_table` gives each asset its label, class probabilities and how sure we are;
:func:`enriched_table` adds each LF's vote, the review flag and lineage.

>>> import numpy as np, polars as pl
>>> from enrich.votes import VoteMatrix
>>> vm = VoteMatrix(votes=np.array([[1, 1], [0, 1], [-1, -1]], dtype=np.int32),
...                 lf_names=("a", "b"), asset_ids=pl.Series(["x", "y", "z"]),
...                 class_names=("HAM", "SPAM"))
>>> proba = np.array([[0.1, 0.9], [0.5, 0.5], [0.6, 0.4]])
>>> table = enriched_table(vm, proba, run_id="r1", model_version="m1")
>>> table.select("asset_id", "label_name", "conflict", "needs_review", "vote_a").rows()
[('x', 'SPAM', False, False, 1), ('y', 'HAM', True, True, 0), ('z', None, False, True, -1)]

Asset ``z`` got no LF vote: its label and confidence are null (``all_abstain`` is true);
its ``proba_*`` hold what the label model returns without evidence, the class prior.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from enrich._internal.vote_arrays import validate_votes
from enrich.errors import InputError
from enrich.votes import VoteMatrix

__all__ = ["REVIEW_BELOW_CONFIDENCE", "enriched_table", "label_table", "new_run_id"]


def label_table(L: Any, proba: Any, *, class_names: Sequence[str] | None = None) -> Any:
    """One row per asset with its label, class probabilities and vote metadata.

    Parameters
    ----------
    L
        the vote matrix ``(n_assets, n_lfs)`` the probabilities were computed from
        (classes ``0..k-1``, ``-1`` = abstain).
    proba
        ``(n_assets, k)`` class probabilities, e.g. ``model.predict_proba(L)``; rows
        must be non-negative and sum to 1.
    class_names
        optional ``k`` distinct names, used for ``label_name`` and for the
        probability column names.

    Returns
    -------
    A ``polars.DataFrame`` with columns, in order:

    * ``label`` (Int64): arg-max class; exact ties go to the lowest class id. Null
      where no LF voted (``all_abstain``): the probabilities there are only the
      class prior, which says nothing about the asset.
    * ``label_name`` (String): only when ``class_names`` is given; null with ``label``.
    * ``proba_<class>`` (Float64): one per class, named by ``class_names`` or class id.
      On all-abstain rows, what the label model gives without evidence (its class
      prior), kept so the table shows what the model said.
    * ``confidence`` (Float64): the largest probability; null where no LF voted (a
      prior is not confidence in a label, and there is no label).
    * ``entropy`` (Float64): Shannon entropy of the row, in nats (0 = certain,
      ``log(k)`` = uniform).
    * ``n_votes`` (Int64): number of LFs that did not abstain.
    * ``conflict`` (Boolean): the non-abstain votes do not all agree.
    * ``all_abstain`` (Boolean): every LF abstained.

    Where a label for an all-abstain asset can come from: a reviewer (send them to
    review, e.g. :func:`enrich.curation.review.review_queue`'s ``no_lf_votes`` reason,
    and import the result as gold), a new LF that covers them, or an end model trained
    on the labeled rows (:mod:`enrich.models.end_model`; in the job's table its
    ``model_label``, with ``label_source = "model"``).

    Raises
    ------
    InputError
        shapes disagree, probabilities are invalid, or ``class_names`` has the
        wrong length or duplicates.

    Examples
    --------
    >>> import numpy as np
    >>> L = np.array([[0, 0, -1], [0, 1, -1], [-1, -1, -1]])
    >>> proba = np.array([[0.9, 0.1], [0.5, 0.5], [0.7, 0.3]])
    >>> t = label_table(L, proba, class_names=["ham", "spam"])
    >>> t.columns[:5]
    ['label', 'label_name', 'proba_ham', 'proba_spam', 'confidence']
    >>> t.select("label", "n_votes", "conflict", "all_abstain").rows()
    [(0, 2, False, False), (0, 2, True, False), (None, 0, False, True)]
    >>> t["confidence"].to_list()
    [0.9, 0.5, None]
    """
    import polars as pl

    try:
        probs = np.asarray(proba, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"proba must be a numeric (n_assets, k) array: {exc}") from exc
    if probs.ndim != 2 or probs.shape[1] < 1:
        raise InputError(f"proba must have shape (n_assets, k); got {probs.shape}")
    n, k = probs.shape
    votes = validate_votes(L, cardinality=k)
    if votes.shape[0] != n:
        raise InputError(
            f"L has {votes.shape[0]} rows but proba has {n}; pass the votes the probabilities "
            "were computed from"
        )
    if n and (not np.all(np.isfinite(probs)) or probs.min() < -1e-9):
        bad = int(np.argmax(~np.isfinite(probs).all(axis=1) | (probs < -1e-9).any(axis=1)))
        raise InputError(
            f"proba row {bad} is {probs[bad].tolist()}; probabilities must be finite and >= 0"
        )
    sums = probs.sum(axis=1)
    if n and np.max(np.abs(sums - 1.0)) > 1e-6:
        bad = int(np.argmax(np.abs(sums - 1.0)))
        raise InputError(
            f"proba row {bad} sums to {float(sums[bad])!r}, not 1; pass probabilities such as "
            "model.predict_proba(L)"
        )
    if class_names is not None:
        names = [str(c) for c in class_names]
        if len(names) != k or len(set(names)) != k:
            raise InputError(
                f"class_names must be {k} distinct names (one per class); got {list(class_names)!r}"
            )
    else:
        names = [str(c) for c in range(k)]

    label = np.argmax(probs, axis=1) if n else np.zeros(0, dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(probs > 0, probs * np.log(probs), 0.0)
    entropy = np.maximum(-plogp.sum(axis=1), 0.0)
    fired = votes >= 0
    n_votes = fired.sum(axis=1)
    if votes.shape[1]:
        high = np.where(fired, votes, -1).max(axis=1)
        low = np.where(fired, votes, k).min(axis=1)  # k is above every class id
        conflict = (n_votes > 1) & (high != low)
    else:
        conflict = np.zeros(n, dtype=bool)

    no_votes = n_votes == 0
    # no LF voted: no label and no confidence (the probabilities are only the prior)
    label_series = pl.Series(label.astype(np.int64), dtype=pl.Int64)
    label_series = label_series.set(pl.Series(no_votes), None) if n else label_series
    columns: dict[str, Any] = {"label": label_series}
    if class_names is not None:
        columns["label_name"] = label_series.replace_strict(
            dict(enumerate(names)), return_dtype=pl.String
        )
    for c, name in enumerate(names):
        columns[f"proba_{name}"] = pl.Series(probs[:, c], dtype=pl.Float64)
    confidence = pl.Series(probs.max(axis=1) if n else probs[:, 0], dtype=pl.Float64)
    columns["confidence"] = confidence.set(pl.Series(no_votes), None) if n else confidence
    columns["entropy"] = pl.Series(entropy, dtype=pl.Float64)
    columns["n_votes"] = pl.Series(n_votes.astype(np.int64), dtype=pl.Int64)
    columns["conflict"] = pl.Series(conflict, dtype=pl.Boolean)
    columns["all_abstain"] = pl.Series(no_votes, dtype=pl.Boolean)
    return pl.DataFrame(columns)


REVIEW_BELOW_CONFIDENCE = 0.7
"""Assets whose label confidence is below this are flagged for review by default."""


def new_run_id(now: dt.datetime | None = None) -> str:
    """Return a sortable, unique run id such as ``20261128T020512Z-3fa9c1``."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def enriched_table(
    votes: VoteMatrix,
    proba: np.ndarray,
    *,
    run_id: str,
    model_version: str,
    created_at: dt.datetime | None = None,
    review_below: float = REVIEW_BELOW_CONFIDENCE,
    model_proba: Any = None,
    gold: Any = None,
) -> pl.DataFrame:
    """Join labels, probabilities, flags, each LF's vote and run lineage, one row per asset.

    Columns: ``asset_id``; the label columns of :func:`enrich.models.output.label_table`
    (``label``, ``label_name``, ``proba_<class>``, ``confidence``, ``entropy``, ``n_votes``,
    ``conflict``, ``all_abstain``; ``label``, ``label_name`` and ``confidence`` are null
    where no LF voted); ``needs_review`` (conflict, all-abstain or confidence below
    ``review_below``); ``vote_<lf>`` per LF (-1 = abstain); ``run_id``,
    ``model_version``, ``lf_versions`` (JSON object name -> version) and ``created_at`` (UTC).

    With an end model's probabilities ``model_proba`` (``(n_assets, k)``, e.g.
    :attr:`enrich.models.end_model.EndModel.oof_proba_`), the columns of
    :func:`enrich.models.end_model.model_columns` follow the label columns: ``model_label``,
    ``model_label_name``, ``model_proba_<class>``, ``model_confidence``. With ``model_proba``
    or ``gold`` (class ids ``(n_assets,)``, -1 = unknown), ``label_source`` says where an
    asset's best label comes from: ``"gold"`` where gold is known, else ``"lfs"`` where some
    LF voted (``label``), else ``"model"`` (``model_label``; null without a model).
    """
    proba = np.asarray(proba, dtype=np.float64)
    if proba.shape[0] != len(votes):
        raise InputError(
            f"proba has {proba.shape[0]} rows but the vote matrix has {len(votes)} assets; "
            "predict on the same vote matrix you enrich."
        )
    labels = label_table(votes.votes, proba, class_names=votes.class_names)
    flags = labels.select(
        (
            pl.col("conflict")
            | pl.col("all_abstain")
            | (pl.col("confidence") < review_below).fill_null(False)
        ).alias("needs_review")
    )
    lf_votes = pl.DataFrame(
        {f"vote_{name}": votes.votes[:, j] for j, name in enumerate(votes.lf_names)},
        schema={f"vote_{name}": pl.Int32 for name in votes.lf_names},
    )
    lineage = pl.DataFrame(
        {
            "run_id": [run_id] * len(votes),
            "model_version": [model_version] * len(votes),
            "lf_versions": [json.dumps(dict(zip(votes.lf_names, votes.lf_versions, strict=False)))]
            * len(votes),
            "created_at": [created_at or dt.datetime.now(dt.UTC)] * len(votes),
        },
        schema={
            "run_id": pl.String,
            "model_version": pl.String,
            "lf_versions": pl.String,
            "created_at": pl.Datetime("us", "UTC"),
        },
    )
    ids = pl.DataFrame({"asset_id": votes.asset_ids})
    model = _model_columns(labels, votes, model_proba, gold)
    return pl.concat([ids, labels, *model, flags, lf_votes, lineage], how="horizontal")


def _model_columns(
    labels: pl.DataFrame, votes: VoteMatrix, model_proba: Any, gold: Any
) -> list[pl.DataFrame]:
    """The end model's columns and ``label_source`` (empty without a model and gold)."""
    if model_proba is None and gold is None:
        return []
    from enrich.models.end_model import model_columns

    n = len(votes)
    out = []
    if model_proba is not None:
        probs = np.asarray(model_proba, dtype=np.float64)
        if probs.ndim != 2 or probs.shape[0] != n:
            raise InputError(
                f"model_proba has shape {probs.shape} but the vote matrix has {n} assets; pass "
                "the end model's probabilities of the same assets, (n_assets, k)"
            )
        out.append(model_columns(probs, class_names=votes.class_names))
    voted = ~labels["all_abstain"].to_numpy()
    source = np.where(voted, "lfs", "model" if model_proba is not None else None)
    if gold is not None:
        g = np.asarray(gold.to_numpy() if hasattr(gold, "to_numpy") else gold)
        if g.shape != (n,) or g.dtype.kind not in "iu":
            raise InputError(
                f"gold must be class ids (n_assets,) = ({n},), -1 = unknown; got {g.dtype} of "
                f"shape {g.shape}"
            )
        source = np.where(g >= 0, "gold", source)
    out.append(pl.DataFrame({"label_source": pl.Series(source.tolist(), dtype=pl.String)}))
    return out
