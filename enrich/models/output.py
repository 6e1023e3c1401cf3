"""The per-asset output of a label model: label, probabilities and how sure we are."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from enrich._votes import validate_votes
from enrich.errors import InputError

__all__ = ["label_table"]


def label_table(L: Any, proba: Any, *, class_names: Sequence[str] | None = None) -> Any:
    """One row per asset with its label, class probabilities and vote metadata.

    Args:
        L: the vote matrix ``(n_assets, n_lfs)`` the probabilities were computed from
            (classes ``0..k-1``, ``-1`` = abstain).
        proba: ``(n_assets, k)`` class probabilities, e.g. ``model.predict_proba(L)``; rows
            must be non-negative and sum to 1.
        class_names: optional ``k`` distinct names, used for ``label_name`` and for the
            probability column names.

    Returns:
        A ``polars.DataFrame`` with columns, in order:

        * ``label`` (Int64): arg-max class; exact ties go to the lowest class id.
        * ``label_name`` (String): only when ``class_names`` is given.
        * ``proba_<class>`` (Float64): one per class, named by ``class_names`` or class id.
        * ``confidence`` (Float64): the largest probability.
        * ``entropy`` (Float64): Shannon entropy of the row, in nats (0 = certain,
          ``log(k)`` = uniform).
        * ``n_votes`` (Int64): number of LFs that did not abstain.
        * ``conflict`` (Boolean): the non-abstain votes do not all agree.
        * ``all_abstain`` (Boolean): every LF abstained (the row got the class prior).

    Raises:
        InputError: shapes disagree, probabilities are invalid, or ``class_names`` has the
            wrong length or duplicates.

    Example:
        >>> import numpy as np
        >>> L = np.array([[0, 0, -1], [0, 1, -1], [-1, -1, -1]])
        >>> proba = np.array([[0.9, 0.1], [0.5, 0.5], [0.7, 0.3]])
        >>> t = label_table(L, proba, class_names=["ham", "spam"])
        >>> t.columns[:5]
        ['label', 'label_name', 'proba_ham', 'proba_spam', 'confidence']
        >>> t.select("label", "n_votes", "conflict", "all_abstain").rows()
        [(0, 2, False, False), (0, 2, True, False), (0, 0, False, True)]
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

    columns: dict[str, Any] = {"label": pl.Series(label.astype(np.int64), dtype=pl.Int64)}
    if class_names is not None:
        columns["label_name"] = pl.Series([names[i] for i in label], dtype=pl.String)
    for c, name in enumerate(names):
        columns[f"proba_{name}"] = pl.Series(probs[:, c], dtype=pl.Float64)
    columns["confidence"] = pl.Series(probs.max(axis=1) if n else probs[:, 0], dtype=pl.Float64)
    columns["entropy"] = pl.Series(entropy, dtype=pl.Float64)
    columns["n_votes"] = pl.Series(n_votes.astype(np.int64), dtype=pl.Int64)
    columns["conflict"] = pl.Series(conflict, dtype=pl.Boolean)
    columns["all_abstain"] = pl.Series(n_votes == 0, dtype=pl.Boolean)
    return pl.DataFrame(columns)
