"""Does the review loop work? Gold picked by the review queue vs gold picked at random.

An expert is simulated by the true labels of the WRENCH train split (the pool). Starting from
the unsupervised label model (enrich ``LabelModel`` fitted on the pool's LF votes), each of 3
rounds asks the expert for 50 more items and refits ``LabelModel(...).fit(L, y)`` with all gold
so far (``y`` = true label of the reviewed items, ``-1`` elsewhere); the model is scored on the
test split (accuracy of ``predict`` on the test votes; the test items are never reviewed).

- queue: each round, the enriched table of the current model over the pool
  (``enrich.enriched.enriched_table``: label, confidence, conflict, all-abstain, each LF's vote)
  goes to ``enrich.review_queue(batch_size=50, exclude=<already reviewed>)``; the 50 items it
  ranks first are reviewed. Several weightings of the queue's reasons are tried (``--variants``,
  see ``VARIANTS``): the queue's defaults first.
- random: 50 / 100 / 150 items drawn uniformly from the pool (nested), same refit.

Each seed draws fresh random picks and a fresh random permutation of the pool's asset ids; the
queue breaks score ties by asset id, so the permutation makes its tie-breaking random too (the
queue is otherwise deterministic). Mean ± sd over ``--seeds`` seeds (default 10). Also shown:
the pool accuracy after each round (the label of a reviewed item is its gold label), which is
what an enrichment job would write.

Run from the repository root (about 1 minute on 2 shared cores)::

    .venv/bin/python -m benchmarks.review_loop
    .venv/bin/python -m benchmarks.review_loop --sets youtube --seeds 10 --variants default
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from benchmarks._data import VoteSet, load_wrench
from enrich.enriched import enriched_table
from enrich.label_model import LabelModel
from enrich.review import review_queue
from enrich.votes import VoteMatrix

SETS = ("youtube", "trec")
ROUNDS = 3
BATCH = 50

#: Weightings of the review queue's reasons (reasons not named keep weight 1.0).
VARIANTS: Mapping[str, dict[str, float]] = {
    # the queue as it ships: low confidence, LF conflict and no LF vote, all weight 1
    "default": {},
    # items no LF voted on tell the model nothing about the LFs: leave them out
    "no all-abstain": {"no_lf_votes": 0.0},
    # rank by how unsure the model is, only
    "confidence only": {"lf_conflict": 0.0, "no_lf_votes": 0.0},
    # rank by how strongly the LFs disagree, only
    "conflict only": {"low_confidence": 0.0, "no_lf_votes": 0.0},
    # conflicts first, low confidence as the tie-breaker, no all-abstain items
    "conflict x3 + confidence": {"lf_conflict": 3.0, "no_lf_votes": 0.0},
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Curve:
    """Test (and pool) accuracy after each round, one list per seed."""

    test: list[list[float]] = field(default_factory=list)
    pool: list[list[float]] = field(default_factory=list)


def fit(train: VoteSet, y: np.ndarray | None, seed: int) -> LabelModel:
    return LabelModel(cardinality=train.cardinality, random_state=seed).fit(train.votes, y)


def scores(model: LabelModel, train: VoteSet, test: VoteSet, y: np.ndarray) -> tuple[float, float]:
    test_accuracy = float(np.mean(model.predict(test.votes) == test.gold))
    pool_labels = np.where(y >= 0, y, model.predict(train.votes))
    return test_accuracy, float(np.mean(pool_labels == train.gold))


def queue_arm(
    train: VoteSet, test: VoteSet, ids: np.ndarray, weights: dict[str, float], seed: int
) -> tuple[list[float], list[float]]:
    lf_names = tuple(f"lf{j}" for j in range(train.votes.shape[1]))
    votes = VoteMatrix(
        votes=train.votes.astype(np.int32),
        lf_names=lf_names,
        asset_ids=pl.Series("asset_id", ids),
        class_names=train.class_names,
    )
    row_of = {int(a): i for i, a in enumerate(ids)}
    y = np.full(len(train.gold), -1, dtype=np.int64)
    model = fit(train, None, seed)
    reviewed: list[int] = []
    test_curve, pool_curve = [], []
    for round_no in range(1, ROUNDS + 1):
        table = enriched_table(
            votes,
            model.predict_proba(train.votes),
            run_id=f"review-{round_no}",
            model_version="LabelModel",
        )
        queue = review_queue(table, batch_size=BATCH, exclude=reviewed, weights=weights)
        picked = [row_of[int(a)] for a in queue.asset_ids.to_list()]
        if len(picked) < BATCH:  # the queue ran dry: top up at random, so budgets match
            rng = np.random.default_rng([seed, round_no])
            left = np.setdiff1d(np.flatnonzero(y < 0), picked)
            picked += rng.choice(left, size=BATCH - len(picked), replace=False).tolist()
        y[picked] = train.gold[picked]
        reviewed += [int(ids[i]) for i in picked]
        model = fit(train, y, seed)
        test_accuracy, pool_accuracy = scores(model, train, test, y)
        test_curve.append(test_accuracy)
        pool_curve.append(pool_accuracy)
    return test_curve, pool_curve


def random_arm(train: VoteSet, test: VoteSet, seed: int) -> tuple[list[float], list[float]]:
    rng = np.random.default_rng([seed, 1])
    order = rng.choice(len(train.gold), size=ROUNDS * BATCH, replace=False)
    test_curve, pool_curve = [], []
    for round_no in range(1, ROUNDS + 1):
        y = np.full(len(train.gold), -1, dtype=np.int64)
        picked = order[: round_no * BATCH]
        y[picked] = train.gold[picked]
        test_accuracy, pool_accuracy = scores(fit(train, y, seed), train, test, y)
        test_curve.append(test_accuracy)
        pool_curve.append(pool_accuracy)
    return test_curve, pool_curve


def run(name: str, seeds: int, variants: list[str]) -> dict[str, Curve]:
    train, test = load_wrench(name, "train"), load_wrench(name, "test")
    log(f"wrench/{name}: pool {train.votes.shape}, test {test.votes.shape}")
    curves: dict[str, Curve] = {"start": Curve(), "random": Curve()}
    curves.update({f"queue ({v})": Curve() for v in variants})
    for seed in range(seeds):
        start = fit(train, None, seed)
        test_accuracy, pool_accuracy = scores(start, train, test, np.full(len(train.gold), -1))
        curves["start"].test.append([test_accuracy] * ROUNDS)
        curves["start"].pool.append([pool_accuracy] * ROUNDS)
        ids = np.random.default_rng([seed, 0]).permutation(len(train.gold)).astype(np.int64)
        for variant in variants:
            t, p = queue_arm(train, test, ids, VARIANTS[variant], seed)
            curves[f"queue ({variant})"].test.append(t)
            curves[f"queue ({variant})"].pool.append(p)
        t, p = random_arm(train, test, seed)
        curves["random"].test.append(t)
        curves["random"].pool.append(p)
    return curves


def _cell(values: np.ndarray) -> str:
    sd = float(np.std(values, ddof=1)) if values.size > 1 else 0.0
    return f"{values.mean():.4f} ± {sd:.4f}"


def markdown(name: str, curves: dict[str, Curve], seeds: int, variants: list[str]) -> str:
    header = " | ".join(f"{BATCH * r} gold (round {r})" for r in range(1, ROUNDS + 1))
    out = [f"### wrench/{name}: test accuracy, mean ± sd over {seeds} seeds", ""]
    out += [f"| arm | {header} |", "|---|" + "---|" * ROUNDS]
    start = np.array(curves["start"].test)[:, 0]
    out.append(f"| unsupervised start (0 gold) | {_cell(start)} | | |")
    for arm in ["random", *(f"queue ({v})" for v in variants)]:
        values = np.array(curves[arm].test)
        cells = " | ".join(_cell(values[:, r]) for r in range(ROUNDS))
        out.append(f"| {arm} | {cells} |")
    random_test = np.array(curves["random"].test)
    for v in variants:
        diff = 100 * (np.array(curves[f"queue ({v})"].test) - random_test)
        cells = " | ".join(
            f"{diff[:, r].mean():+.1f} ± {np.std(diff[:, r], ddof=1) if seeds > 1 else 0:.1f}"
            + f" ({int((diff[:, r] > 0).sum())}/{seeds} seeds ahead)"
            for r in range(ROUNDS)
        )
        out.append(f"| queue ({v}) - random, points | {cells} |")
    out += ["", f"Pool accuracy (reviewed items take their gold label), mean over {seeds} seeds:"]
    out += ["", f"| arm | {header} |", "|---|" + "---|" * ROUNDS]
    pool_start = np.array(curves["start"].pool)[:, 0]
    out.append(f"| unsupervised start (0 gold) | {pool_start.mean():.4f} | | |")
    for arm in ["random", *(f"queue ({v})" for v in variants)]:
        values = np.array(curves[arm].pool).mean(axis=0)
        out.append(f"| {arm} | " + " | ".join(f"{v:.4f}" for v in values) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated WRENCH sets")
    parser.add_argument("--seeds", type=int, default=10, help="seeds (>= 5 for the report)")
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated queue weightings, from {list(VARIANTS)}",
    )
    args = parser.parse_args(argv)
    names = [s.strip() for s in args.sets.split(",") if s.strip()]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if sorted(set(names) - set(SETS)):
        parser.error(f"--sets must be among {list(SETS)}")
    if sorted(set(variants) - set(VARIANTS)) or not variants:
        parser.error(f"--variants must be among {list(VARIANTS)}")
    if args.seeds < 2:
        parser.error("--seeds must be >= 2 (a standard deviation needs two)")
    started = time.perf_counter()
    for name in names:
        print(markdown(name, run(name, args.seeds, variants), args.seeds, variants))
        print()
    print(
        f"Python {platform.python_version()}, polars {pl.__version__}, numpy {np.__version__}; "
        f"{time.perf_counter() - started:.0f} s wall."
    )


if __name__ == "__main__":
    main()
