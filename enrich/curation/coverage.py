"""Gap filling by coverage: pick the assets that cover the most of a gap's embedding region.

A greedy max-coverage over balls around the gap's labeled examples and the picks so far, in
the spirit of ProbCover (Yehuda et al., NeurIPS 2022) and TypiClust (Hacohen et al., ICML
2022); class gaps weight the region by an end model's class probabilities (see
:func:`enrich.curation.gap_filling.fill_gaps` for the full description and references).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
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

__all__ = [
    "MAX_EXAMPLES",
    "MAX_REGION",
    "Coverage",
    "balance_target",
    "ball_radius",
    "class_scores_of_pool",
    "class_search_picks",
    "coverage_plan",
    "greedy_cover",
    "random_picks",
    "uncertain_picks",
    "uncertainty_target",
]

MAX_REGION = 3000  # region assets a gap's coverage is computed on (a random sample beyond)


MAX_EXAMPLES = 512  # example vectors that pre-cover a region (a random sample beyond)


_TOP_MASS = 0.97  # share of a class gap's targeted weight on the top 1/k of its pool


_DENSITY_NEIGHBOURS = 20  # an asset's density: mean cosine to its 20 nearest (TypiClust's K)


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
    uncertainty_share: float = 0.0  # share of the quota picked by in-gap uncertainty
    by_uncertainty: set[int] = field(default_factory=set)  # rows of ``order`` picked so
    random_share: float = 0.0  # share of the rest of the quota drawn at random
    at_random: set[int] = field(default_factory=set)  # rows of ``order`` drawn at random
    searched: set[int] = field(default_factory=set)  # rows of ``order`` found by class search
    searched_class: str = ""  # the class those rows were searched for
    full_rows: np.ndarray | None = None  # the whole region when ``rows`` is a sample of it
    full_weights: np.ndarray | None = None  # the weights of ``full_rows``
    targeted: np.ndarray | None = None  # class gap: the targeted weight profile of ``rows``
    target: float = 0.0  # class gap: how far its weights follow ``targeted``
    full_targeted: np.ndarray | None = None  # the same for ``full_rows``


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
    code = classes.get(spec.value or "", -1) if spec.kind == "class" else -1
    if spec.kind == "class" and pool.class_scores is not None and code >= 0:
        # weights ranked over the whole region, before a large region is sampled
        proba = pool.class_scores[rows]
        k = proba.shape[1]
        top2 = np.sort(proba, axis=1)[:, -2:] if k > 1 else proba
        unsure = 1.0 - (top2[:, -1] - top2[:, 0]) if k > 1 else np.ones(len(rows))
        # likely the class, and the model unsure about it: where a label teaches most
        score = proba[:, code] * unsure
        source = "class probability and uncertainty"
        # how far the model already expects the class at an even share (1 / k): there
        # the class needs representative picks more than a search for it
        expected = float(np.mean(proba[:, code]))
        predicted = float(np.mean(proba.argmax(axis=1) == code))
        target = (1.0 - min(1.0, expected * k)) ** 2
        if k > 2:  # an even share of k classes is small: judge by what the model predicts
            target = max(target, 1.0 - min(1.0, predicted * k))
        sharp = _rank_share(score) ** _sharpness(k)
        targeted = sharp / max(float(sharp.mean()), 1e-12)
        weights = (1.0 - target) + target * targeted
        full_rows, full_weights, full_targeted = rows, weights, targeted
        if rows.size > MAX_REGION:
            keep = np.sort(rng.choice(rows.size, MAX_REGION, replace=False))
            rows, weights, targeted = rows[keep], weights[keep], targeted[keep]
            notes.append(f"covered a random sample of {MAX_REGION:,} of its pool")
        plan = Coverage(spec, rows, source, "; ".join(notes) or None, None)
        plan.weights, plan.targeted, plan.target = weights, targeted, target
        if full_rows.size > rows.size:
            plan.full_rows, plan.full_weights = full_rows, full_weights
            plan.full_targeted = full_targeted
        return plan
    if rows.size > MAX_REGION:
        rows = np.sort(rng.choice(rows, MAX_REGION, replace=False))
        notes.append(f"covered a random sample of {MAX_REGION:,} of its pool")
    source = "uniform"
    weights = np.ones(rows.size)
    if spec.kind == "class":
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
        sharp = _rank_share(score) ** _sharpness(2)
        weights = sharp / max(float(sharp.mean()), 1e-12)
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
    tau = ball_radius(sims, quota + len(examples))
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


def ball_radius(sims: np.ndarray, n_balls: int) -> float:
    """Cosine radius at which ``n_balls`` balls about cover a region (ProbCover's delta).

    The median over the region of the similarity to each asset's ``m / n_balls``-th nearest.
    """
    m = len(sims)
    if m <= 1:
        return 1.0
    k = int(np.clip(round(m / max(n_balls, 1)), 1, max(m - 1, 1)))
    return float(np.median(-np.partition(-sims, k, axis=1)[:, k]))


def uncertain_picks(vectors: np.ndarray, proba: np.ndarray, quota: int) -> tuple[list[int], float]:
    """The region rows to pick for the model's uncertainty, and the share of the quota.

    ``vectors`` (unit rows) and ``proba`` (class scores) are the region's (a slice's
    assets; for a class gap the pool). An asset's uncertainty is one minus the margin
    between its two most likely classes (Scheffer et al., 2001). Uncertainty sampling pays
    when the model's boundaries run through sparse places (the cluster assumption: the
    assets it is unsure of sit between clusters, and a label there moves a boundary where
    it errs); where a boundary cuts through dense places, its picks are an unrepresentative
    band (the sampling bias of Dasgupta & Hsu, ICML 2008) and coverage does better. So the
    evidence is ``AUC``, the chance that a region asset is denser than one of the ``quota``
    assets uncertainty sampling would pick, density being the mean cosine to the 20 nearest
    region assets (TypiClust's typicality). Read as a mixture, ``u = 2 * AUC - 1`` (at least
    0) is the fraction of those picks that lie between clusters (each sparser than the
    region's assets), the rest lying in the region like any of its assets (a band through
    dense places, which coverage and random draws stand for better). The share of the quota
    that goes by uncertainty is the ratio of the two, ``u / (1 - u)``, capped at 1: all of
    it once at least half of the uncertain picks lie between clusters (``AUC >= 0.75``), in
    proportion below, nothing when they are as dense as the rest. (The share ``u`` itself
    left a class-balanced classifier on MNIST 1.2 points of worst-class F1 behind plain
    uncertainty sampling at 40 picks, ``benchmarks/gap_filling.py``.) The
    ``round(share * quota)`` picks are the most uncertain assets (not spread out: keeping
    them outside one another's coverage radius lost about a point of worst-class F1 on
    MNIST -- uncertain assets close together often lie on different class boundaries).

    For a class gap the uncertain assets are taken anywhere in the pool, not only where the
    class ranks first or second: the class's F1 depends on every boundary its errors cross
    (measured: keeping to the assets that rank it first or second lost about a point of
    worst-class F1 on MNIST with a class-balanced classifier).
    """
    m = len(vectors)
    k = proba.shape[1] if proba.ndim == 2 else 1
    n_low = min(quota, m - 1)
    if m < 3 or n_low < 1 or k < 2:
        return [], 0.0
    top_p = np.sort(proba, axis=1)[:, -2:]
    unsure = 1.0 - (top_p[:, 1] - top_p[:, 0])
    ranked = np.argsort(-unsure, kind="stable")
    low = np.zeros(m, bool)
    low[ranked[:n_low]] = True
    sims = vectors @ vectors.T
    near = min(_DENSITY_NEIGHBOURS, m - 1)
    density = (-np.partition(-sims, near, axis=1)[:, : near + 1]).sum(axis=1) - 1.0
    ranks = _rank_share(density) * m  # 1..m, ties at their mean rank
    n_rest = m - n_low
    auc = (ranks[~low].sum() - n_rest * (n_rest + 1) / 2.0) / (n_rest * n_low)
    u = float(np.clip(2.0 * auc - 1.0, 0.0, 1.0))
    share = min(1.0, u / max(1.0 - u, 1e-12))
    n_pick = min(round(share * quota), m)
    return [int(i) for i in ranked[:n_pick]], share


_AGREEMENT_NEIGHBOURS = 10  # neighbours an asset's predicted class is compared with


def random_picks(
    vectors: np.ndarray,
    proba: np.ndarray,
    weights: np.ndarray,
    n: int,
    taken: Sequence[int],
    rng: np.random.Generator,
) -> tuple[list[int], float]:
    """Rows drawn at random (by weight) instead of covered, and the share of ``n`` drawn.

    Covering a region stands for its classes only as far as its neighbourhoods follow the
    classes (the premise of TypiClust and ProbCover: clusters of a good embedding are
    nearly pure). That is measured as the chance-corrected agreement (Cohen's kappa)
    between each region asset's predicted class and those of its 10 nearest region assets.
    The share ``r = 1 - kappa`` (clipped to [0, 1]) of the ``n`` picks is drawn at random
    with probability in proportion to the region's weights, the unbiased floor; the rest is
    left to coverage. A model that predicts one class everywhere gives no evidence either
    way: ``r = 0``.
    """
    m = len(vectors)
    if n <= 0 or m < 3 or proba.ndim != 2 or proba.shape[1] < 2:
        return [], 0.0
    predicted = proba.argmax(axis=1)
    share = np.bincount(predicted, minlength=proba.shape[1]) / m
    chance = float((share**2).sum())
    if chance >= 1.0 - 1e-9:
        return [], 0.0
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    near = min(_AGREEMENT_NEIGHBOURS, m - 1)
    neighbours = np.argpartition(-sims, near - 1, axis=1)[:, :near]
    agree = float((predicted[neighbours] == predicted[:, None]).mean())
    kappa = (agree - chance) / (1.0 - chance)
    r = float(np.clip(1.0 - kappa, 0.0, 1.0))
    n_draw = min(round(r * n), m - len(taken))
    if n_draw < 1:
        return [], r
    p = np.asarray(weights, dtype=np.float64).clip(min=0.0)
    p[np.asarray(taken, dtype=np.int64)] = 0.0
    if p.sum() <= 0 or np.count_nonzero(p) < n_draw:
        p = np.ones(m)
        p[np.asarray(taken, dtype=np.int64)] = 0.0
    return _stratified_draw(vectors, p, n_draw, rng), r


def _stratified_draw(
    vectors: np.ndarray, p: np.ndarray, n: int, rng: np.random.Generator
) -> list[int]:
    """``n`` rows drawn in proportion to ``p``, one from each of ``n`` k-means strata.

    Stratified sampling: the same expected mix as ``n`` independent draws, with less chance
    of a lopsided one (k-means on the rows with ``p > 0``, weighted by ``p``).
    """
    from sklearn.cluster import KMeans

    alive = np.flatnonzero(p > 0)
    if n >= alive.size:
        return [int(i) for i in alive[:n]]
    seed = int(rng.integers(2**31 - 1))
    strata = KMeans(n_clusters=n, n_init=1, random_state=seed).fit_predict(
        vectors[alive], sample_weight=p[alive]
    )
    drawn = []
    for s in range(n):
        members = alive[strata == s]
        if members.size:
            w = p[members]
            drawn.append(int(rng.choice(members, p=w / w.sum())))
    return drawn


def balance_target(
    counts: Mapping[str, int],
    names: Sequence[str],
    code: int,
    proba: np.ndarray,
    quota: int,
    *,
    region: np.ndarray | None = None,
) -> int:
    """Picks of class ``names[code]`` that even out the classes as the model weighs them.

    A classifier learns a class from its weight among the labels, not from its share of
    the pool (class-balanced selection: Aggarwal et al., "Active Learning for Imbalanced
    Datasets", WACV 2020; Bengar et al., "Class-Balanced Active Learning for Image
    Classification", WACV 2022). The weight the model gives class ``j`` per label is read
    from its probabilities ``proba`` over the pool, with no assumption about the pool:
    ``lambda_j = mean P(j) / (n_j / N)``, its share of the pool's probability mass over its
    share of the ``N`` labels (about 1 for an unweighted model, more where it up-weights a
    class, as ``class_weight="balanced"`` does). The other ``quota - m`` picks (the gap's
    coverage, uncertainty and random draws) are expected to hold the class at its mean
    probability ``s`` over the gap's ``region`` (rows of ``proba``; the whole pool by
    default), the rest spread over the other ``k - 1`` classes; ``m`` evens out the
    effective counts: ``lambda_c * (n_c + m + s * (quota - m)) = mean_o(lambda_o * n_o) +
    mean_o(lambda_o) * (1 - s) * (quota - m) / (k - 1)``, clipped to ``[0, quota]``. A
    class the model gives no probability anywhere (it was not trained on it) gets 0: its
    scores cannot find it (the gap's coverage and random draws still reach it).

    >>> counts = {"ham": 60, "spam": 3}
    >>> balance_target(counts, ["ham", "spam"], 1, np.tile([0.95, 0.05], (100, 1)), 20)
    20
    >>> balance_target(counts, ["ham", "spam"], 1, np.tile([1.0, 0.0], (100, 1)), 20)
    0
    """
    k = len(names)
    if quota <= 0 or k < 2 or proba.ndim != 2 or proba.shape[1] != k or not len(proba):
        return 0
    n = np.array([max(int(counts.get(str(name), 0)), 1) for name in names], dtype=np.float64)
    mass = proba.mean(axis=0)
    if mass[code] <= _NO_MASS:
        # the model gives the class no probability (it was never trained on it): its
        # scores cannot find the class, so there is nothing to search by
        return 0
    share = mass / max(float(mass.sum()), 1e-12)
    lam = share / (n / n.sum())
    where = proba if region is None or not len(region) else proba[region]
    s = float(where[:, code].mean() / max(float(where.mean(axis=0).sum()), 1e-12))
    others = np.arange(k) != code
    effective_o = float(np.mean(lam[others] * n[others]))
    lam_o = float(np.mean(lam[others])) * (1.0 - s) / (k - 1)
    lam_c = float(lam[code])
    # lam_c * (n_c + s * q + (1 - s) * m) = effective_o + lam_o * (q - m)
    m = (effective_o + lam_o * quota - lam_c * (n[code] + s * quota)) / (lam_c * (1.0 - s) + lam_o)
    return int(np.clip(round(m), 0, quota))


def uncertainty_target(proba: np.ndarray, code: int, targeted: np.ndarray, n: int) -> float:
    """How far the rest of a class gap's quota targets its class: as far as the doubt does.

    After the balance search has evened out the labels, the rest of the quota should
    target the class only as far as the model's uncertainty is about it: a hard class (one
    the model keeps confusing) keeps getting picks, an easy one past parity releases them
    to whichever boundaries the model doubts next. The class's likely members are the top
    ``1 / k`` of the region by its probability (ranks, not values: a model trained on a
    few labels of the class gives it small probabilities, in the right order). ``d`` is
    their share among the ``n`` assets with the smallest margin between their two likeliest
    classes (those uncertainty sampling would take with the rest of the quota), ``a`` their
    share of the region (about ``1 / k``). The returned weight of the targeted profile
    ``targeted`` is the class's excess share of the doubt, ``(d - a) / a``, clipped to
    ``[0, 1]``: none when the doubt holds the class at no more than its share of the region,
    all of it once it holds it at twice that share or more.

    >>> proba = np.array([[0.8, 0.1, 0.1], [0.4, 0.4, 0.2], [0.1, 0.45, 0.45], [0.1, 0.1, 0.8],
    ...                   [0.7, 0.2, 0.1], [0.2, 0.2, 0.6]])
    >>> uncertainty_target(proba, 1, np.array([0.0, 3.0, 3.0, 0.0, 0.0, 0.0]), 2)  # in the doubt
    1.0
    >>> uncertainty_target(proba, 0, np.array([3.0, 0.0, 0.0, 0.0, 3.0, 0.0]), 2)  # not
    0.0
    """
    m, k = proba.shape if proba.ndim == 2 else (len(proba), 1)
    if not m or n <= 0 or k < 2:
        return 0.0
    likely = _rank_share(proba[:, code]) > 1.0 - 1.0 / k
    top_p = np.sort(proba, axis=1)[:, -2:]
    unsure = np.argsort(top_p[:, 1] - top_p[:, 0], kind="stable")[: min(n, m)]
    d = float(likely[unsure].mean())
    a = float(likely.mean())
    b = float(targeted[likely].sum() / max(float(targeted.sum()), 1e-12))
    if b - a <= 1e-12:
        return 0.0
    return float(np.clip((d - a) / a, 0.0, 1.0)) if a > 0 else 0.0


_NO_MASS = 1e-12  # a class's mean probability at or below this: the model lacks the class


_CANDIDATES_PER_PICK = 3  # a class search covers the top 3 * picks assets by class score


def class_search_picks(
    vectors: np.ndarray, score: np.ndarray, examples: np.ndarray, n: int
) -> list[int]:
    """``n`` region rows likely of the class, spread out: coverage of its best candidates.

    The ``3 * n`` region rows with the highest class score are the candidates; greedy
    coverage with balls sized for them (ProbCover's delta for ``n + len(examples)`` balls)
    picks ``n`` of them, the gap's examples pre-covering their balls (TypiClust's
    "typical and diverse" inside a class rather than its nearest neighbours).
    """
    m = len(vectors)
    if n <= 0 or not m:
        return []
    size = min(m, _CANDIDATES_PER_PICK * n)
    top = np.argsort(-score, kind="stable")[:size]
    order, _ = greedy_cover(vectors[top], examples, np.ones(size), min(n, size), n)
    return [int(top[i]) for i in order]
