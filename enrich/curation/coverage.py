"""Gap filling by coverage: pick the assets that cover the most of a gap's embedding region.

A greedy max-coverage over balls around the gap's labeled examples and the picks so far, in
the spirit of ProbCover (Yehuda et al., NeurIPS 2022) and TypiClust (Hacohen et al., ICML
2022); class gaps weight the region by an end model's class probabilities (see
:func:`enrich.curation.gap_filling.fill_gaps` for the full description and references).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from enrich._internal.frames import as_polars
from enrich.curation.gap_search import (
    TIE,
    GapSpec,
    Pool,
    unit_rows,
)
from enrich.curation.gaps import Gaps
from enrich.errors import InputError

__all__ = ["MAX_EXAMPLES", "Coverage", "class_scores_of_pool", "coverage_plan", "greedy_cover"]

_MAX_REGION = 3000  # region assets a gap's coverage is computed on (a random sample beyond)


MAX_EXAMPLES = 512  # example vectors that pre-cover a region (a random sample beyond)


_TOP_MASS = 0.97  # share of a class gap's targeted weight on the top 1/k of its pool


def _sharpness(k: int) -> float:
    """Exponent on the rank share that puts ``_TOP_MASS`` of the weight on the top ``1/k``.

    The top ``1/k`` of ``r**a`` holds ``1 - (1 - 1/k)**(a + 1)`` of it: ``a`` = 4.06 for 2
    classes, 32.3 for 10.
    """
    k = max(int(k), 2)
    return math.log(1.0 - _TOP_MASS) / math.log(1.0 - 1.0 / k) - 1.0


def class_scores_of_pool(probabilities: Any, pool: Any, gaps: Gaps) -> np.ndarray | None:
    """Class scores ``(len(pool), k)`` of the pool rows, or None.

    The given probabilities, else the pool's label and confidence as a one-hot guess.
    """
    k = len(gaps.classes)
    frame = as_polars(pool)
    if probabilities is not None:
        proba = np.asarray(probabilities, dtype=np.float64)
        if proba.ndim != 2 or proba.shape != (frame.height, k):
            raise InputError(
                f"probabilities must be a (len(pool), k) = ({frame.height}, {k}) array, one "
                f"column per class of gaps.classes {list(gaps.classes)}; got shape {proba.shape}"
            )
        if not np.isfinite(proba).all() or proba.min() < 0 or proba.max() > 1:
            raise InputError(
                "probabilities must be finite and in [0, 1] (a model's predict_proba); got "
                f"values from {np.nanmin(proba):g} to {np.nanmax(proba):g}"
            )
        return proba
    key = next((c for c in ("label_name", "label") if c in frame.columns), None)
    if key is None or not k:
        return None
    column = frame[key]
    if column.dtype.is_integer():
        codes = column.cast(pl.Int64).fill_null(-1).to_numpy()
        codes = np.where((codes >= 0) & (codes < k), codes, -1)
    else:
        lookup = {name: i for i, name in enumerate(gaps.classes)}
        codes = (
            column.cast(pl.String)
            .replace_strict(lookup, default=-1, return_dtype=pl.Int64)
            .fill_null(-1)
            .to_numpy()
        )
    conf = (
        frame["confidence"].cast(pl.Float64).fill_nan(None).fill_null(1.0 / k).to_numpy()
        if "confidence" in frame.columns and frame["confidence"].dtype.is_numeric()
        else np.ones(frame.height)
    )
    conf = np.clip(conf, 0.0, 1.0)
    rest = (1.0 - conf) / max(k - 1, 1)
    scores = np.repeat(rest[:, None], k, axis=1)
    known = codes >= 0
    scores[np.flatnonzero(known), codes[known]] = conf[known]
    scores[~known] = 1.0 / k
    return scores


def _rank_share(values: np.ndarray) -> np.ndarray:
    """Each value's rank among ``values`` as a share in (0, 1] (ties share their mean rank)."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(1, len(values) + 1)
    sorted_values = values[order]
    # ties: the mean rank of their run
    _, start, counts = np.unique(sorted_values, return_index=True, return_counts=True)
    mean_rank = start + (counts + 1) / 2.0
    ranks[order] = np.repeat(mean_rank, counts)
    return ranks / max(len(values), 1)


@dataclass(eq=False)
class Coverage:
    """One gap's region, its weights, and its picks in greedy order."""

    spec: GapSpec
    rows: np.ndarray  # positions in the pool frame of the region (sampled), or empty
    weight_source: str
    note: str | None
    note_blocks: str | None
    order: list[int] = field(default_factory=list)  # positions in ``rows``, greedy order
    gain: list[float] = field(default_factory=list)  # covered weight share of each pick
    weights: np.ndarray | None = None  # coverage weight of each region row
    similarity: np.ndarray | None = None  # max cosine to the examples, per region row
    quota: int = 0
    picked: int = 0


def coverage_plan(
    spec: GapSpec,
    example_ids: Mapping[str, np.ndarray],
    pool: Pool,
    classes: Mapping[str, int],
    index: Any,
    rng: np.random.Generator,
) -> Coverage:
    """Return what gap ``spec`` covers: its region of the pool, pre-covered by its examples."""
    frame = pool.frame
    rows = np.arange(frame.height)
    notes: list[str] = []
    if spec.kind == "slice":
        if spec.column in frame.columns:
            text = pool.as_text(spec.column)
            mask = text.is_null() if spec.value is None else text == spec.value
            rows = np.flatnonzero(mask.fill_null(False).to_numpy())
        else:
            notes.append(f"pool has no column {spec.column!r}: covered the whole pool")
    if not rows.size:
        where = f" in {spec.gap}" if spec.kind == "slice" else ""
        return Coverage(spec, rows, "", None, f"no unlabeled assets to search{where}")
    if rows.size > _MAX_REGION:
        rows = np.sort(rng.choice(rows, _MAX_REGION, replace=False))
        notes.append(f"covered a random sample of {_MAX_REGION:,} of its pool")
    source = "uniform"
    weights = np.ones(rows.size)
    if spec.kind == "class":
        code = classes.get(spec.value or "", -1)
        target = 1.0  # share of the region's weight that goes by the class score
        if pool.class_scores is not None and code >= 0:
            proba = pool.class_scores[rows]
            top2 = np.sort(proba, axis=1)[:, -2:] if proba.shape[1] > 1 else proba
            unsure = 1.0 - (top2[:, -1] - top2[:, 0]) if proba.shape[1] > 1 else np.ones(len(rows))
            # likely the class, and the model unsure about it: where a label teaches most
            score = proba[:, code] * unsure
            source = "class probability and uncertainty"
            # how far the model already expects the class at an even share (1 / k): there
            # the class needs representative picks more than a search for it
            expected = float(np.mean(proba[:, code]))
            predicted = float(np.mean(proba.argmax(axis=1) == code))
            k = pool.class_scores.shape[1]
            target = (1.0 - min(1.0, expected * k)) ** 2
            if k > 2:  # an even share of k classes is small: judge by what the model predicts
                target = max(target, 1.0 - min(1.0, predicted * k))
        else:
            ex = example_ids.get(spec.gap, np.empty(0, np.int64))
            ex = ex[np.isin(ex, index.ids)] if ex.size else ex
            if not ex.size:
                return Coverage(
                    spec,
                    rows,
                    "",
                    None,
                    "no labeled examples and no class probabilities to find the class by; "
                    "label a few, pass examples= or probabilities=",
                )
            if ex.size > MAX_EXAMPLES:
                ex = np.sort(rng.choice(ex, MAX_EXAMPLES, replace=False))
            vectors = unit_rows(index.get_vectors(frame["_index_id"].to_numpy()[rows]))
            score = (vectors @ unit_rows(index.get_vectors(ex)).T).max(axis=1).astype(np.float64)
            source = "similarity to its examples"
        sharp = _rank_share(score) ** _sharpness(k if pool.class_scores is not None else 2)
        weights = (1.0 - target) + target * sharp / max(float(sharp.mean()), 1e-12)
    plan = Coverage(spec, rows, source, "; ".join(notes) or None, None)
    plan.weights = weights
    return plan


def greedy_cover(
    vectors: np.ndarray, examples: np.ndarray, weights: np.ndarray, want: int, quota: int
) -> tuple[list[int], list[float]]:
    """Greedy weighted max-coverage: ``want`` rows in pick order, each one's covered share.

    The ball radius makes ``quota + len(examples)`` balls about cover the region (ProbCover's
    delta, set from the budget).
    """
    m = len(vectors)
    if want <= 0 or not m:
        return [], []
    sims = vectors @ vectors.T
    k = int(np.clip(round(m / max(quota + len(examples), 1)), 1, max(m - 1, 1)))
    if m > 1:
        kth = -np.partition(-sims, k, axis=1)[:, k]
        tau = float(np.median(kth))
    else:
        tau = 1.0
    ball = sims >= tau - TIE
    np.fill_diagonal(ball, True)
    typicality = sims.mean(axis=1).astype(np.float64)
    covered = (
        (vectors @ examples.T >= tau - TIE).any(axis=1) if len(examples) else np.zeros(m, bool)
    )
    total = float(weights.sum()) or 1.0
    alive = np.ones(m, bool)
    ball_f = ball.astype(np.float32)
    gain = ball_f @ (weights * ~covered).astype(np.float32)
    order: list[int] = []
    shares: list[float] = []
    for _ in range(min(want, m)):
        if float(gain[alive].max()) <= 1e-9:  # the region is covered: start a new sweep
            covered = ~alive
            gain = ball_f @ (weights * ~covered).astype(np.float32)
        value = gain.astype(np.float64) / max(float(gain[alive].max()), 1e-12)
        value += 1e-3 * typicality
        value[~alive] = -np.inf
        i = int(np.argmax(value))
        new = ball[i] & ~covered
        shares.append(float(weights[new].sum()) / total)
        order.append(i)
        alive[i] = False
        if new.any():
            gain -= ball_f[:, new] @ weights[new].astype(np.float32)
            covered |= new
    return order, shares
