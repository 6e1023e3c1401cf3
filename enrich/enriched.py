"""The enriched output: one row per asset with its label, probabilities, votes and lineage.

>>> import numpy as np, polars as pl
>>> from enrich.votes import VoteMatrix
>>> vm = VoteMatrix(votes=np.array([[1, 1], [0, 1], [-1, -1]], dtype=np.int32),
...                 lf_names=("a", "b"), asset_ids=pl.Series(["x", "y", "z"]),
...                 class_names=("HAM", "SPAM"))
>>> proba = np.array([[0.1, 0.9], [0.5, 0.5], [0.6, 0.4]])
>>> table = enriched_table(vm, proba, run_id="r1", model_version="m1")
>>> table.select("asset_id", "label_name", "conflict", "needs_review", "vote_a").rows()
[('x', 'SPAM', False, False, 1), ('y', 'HAM', True, True, 0), ('z', 'HAM', False, True, -1)]
"""

from __future__ import annotations

import datetime as dt
import json
import secrets

import numpy as np
import polars as pl

from enrich.errors import InputError
from enrich.label_output import label_table
from enrich.votes import VoteMatrix

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
) -> pl.DataFrame:
    """Join labels, probabilities, flags, each LF's vote and run lineage, one row per asset.

    Columns: ``asset_id``; the label columns of :func:`enrich.label_output.label_table`
    (``label``, ``label_name``, ``proba_<class>``, ``confidence``, ``entropy``, ``n_votes``,
    ``conflict``, ``all_abstain``); ``needs_review`` (conflict, all-abstain or confidence
    below ``review_below``); ``vote_<lf>`` per LF (-1 = abstain); ``run_id``,
    ``model_version``, ``lf_versions`` (JSON object name -> version) and ``created_at`` (UTC).
    """
    proba = np.asarray(proba, dtype=np.float64)
    if proba.shape[0] != len(votes):
        raise InputError(
            f"proba has {proba.shape[0]} rows but the vote matrix has {len(votes)} assets; "
            "predict on the same vote matrix you enrich."
        )
    labels = label_table(votes.votes, proba, class_names=votes.class_names)
    flags = labels.select(
        (pl.col("conflict") | pl.col("all_abstain") | (pl.col("confidence") < review_below)).alias(
            "needs_review"
        )
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
    return pl.concat([ids, labels, flags, lf_votes, lineage], how="horizontal")
