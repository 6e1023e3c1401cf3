"""Does the review loop work? Gold picked by the review queue vs gold picked at random.

An expert is simulated by the true labels of the WRENCH train split (the pool). Starting from
the unsupervised label model (enrich ``LabelModel`` fitted on the pool's LF votes), each of 3
rounds asks the expert for 50 more items and refits ``LabelModel(...).fit(L, y)`` with all gold
so far (``y`` = true label of the reviewed items, ``-1`` elsewhere); the model is scored on the
test split (accuracy of ``predict`` on the test votes; the test items are never reviewed).

- queue: each round, the enriched table of the current model over the pool
  (``enrich.enriched_table``: label, confidence, conflict, all-abstain, each LF's vote)
  goes to ``enrich.review_queue(batch_size=50, exclude=<already reviewed>, ...)``; the 50 items
  it returns are reviewed. The queue settings tried are ``VARIANTS`` (``--variants``): first
  ``purpose="refit"``, the queue's setting for gold that goes back into the label model.
- random: 50 / 100 / 150 items drawn uniformly from the pool (nested), same refit.

Each seed draws fresh random picks and a fresh random permutation of the pool's asset ids, and
is the queue's ``random_state`` (it breaks ties between equal scores at random; the queue is
otherwise deterministic).
the pool accuracy after each round (the label of a reviewed item is its gold label), which is
what an enrichment job would write, and, for reference, the test accuracy of the label model
fitted with every pool item as gold.

``--batch`` and ``--rounds`` change the budget (default 3 rounds of 50) for sensitivity checks.

Run from the repository root (about 20 s on 2 shared cores)::

    .venv/bin/python -m benchmarks.review_loop
    .venv/bin/python -m benchmarks.review_loop --sets youtube --seeds 10 --variants refit,default
    .venv/bin/python -m benchmarks.review_loop --batch 25 --rounds 4 --variants refit
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from benchmarks._data import VoteSet, load_wrench
from enrich.curation.review import queue_from_votes, review_queue
from enrich.models.label_model import LabelModel
from enrich.models.output import enriched_table
from enrich.votes import VoteMatrix

SETS = ("youtube", "trec")
ROUNDS = 3
BATCH = 50

_CONFLICT_ONLY = {"low_confidence": 0.0, "no_lf_votes": 0.0}

#: Queue settings compared with random picks: keyword arguments of ``review_queue``, except
#: ``round_robin`` (done here: one pick per LF vote pattern, in queue order, before repeating).
VARIANTS: Mapping[str, dict[str, Any]] = {
    # THE RECOMMENDATION: conflicts only, the batch spread over vote patterns by Neyman allocation
    "refit": {"purpose": "refit"},
    # the queue's default (purpose="correct"): low confidence, LF conflict, no LF vote, weight 1
    "default": {},
    # refit's weights without the spreading: the top 50 by score (ties: whole patterns)
    "conflict only": {"weights": _CONFLICT_ONLY},
    # refit's spreading with the default weights
    "refit + default weights": {
        "purpose": "refit",
        "weights": {"low_confidence": 1.0, "no_lf_votes": 1.0},
    },
    # plain diversity: refit's weights, one pick per vote pattern before any pattern's second
    "conflict only + one per pattern": {"weights": _CONFLICT_ONLY, "round_robin": True},
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


def pick(
    table: pl.DataFrame, reviewed: list[int], batch: int, settings: dict[str, Any], seed: int
) -> list[int]:
    """The asset ids the queue sends for review this round."""
    options = {k: v for k, v in settings.items() if k != "round_robin"}
    if not settings.get("round_robin"):
        return review_queue(
            table, batch_size=batch, exclude=reviewed, random_state=seed, **options
        ).asset_ids.to_list()
    ranked = review_queue(
        table, batch_size=table.height, exclude=reviewed, random_state=seed, **options
    ).table
    votes = [c for c in table.columns if c.startswith("vote_")]
    order = (
        ranked.select("rank", "asset_id")
        .join(table.select("asset_id", *votes), on="asset_id", how="left")
        .with_columns(pl.int_range(pl.len()).over(votes).alias("_pass"))
        .sort("_pass", "rank")
    )
    return order["asset_id"].head(batch).to_list()


def refit_and_score(
    train: VoteSet,
    test: VoteSet,
    y: np.ndarray,
    seed: int,
    test_curve: list[float],
    pool_curve: list[float],
) -> LabelModel:
    """Refit on the gold so far; append this round's test and pool accuracy to the curves."""
    model = fit(train, y, seed)
    test_accuracy, pool_accuracy = scores(model, train, test, y)
    test_curve.append(test_accuracy)
    pool_curve.append(pool_accuracy)
    return model


def queue_arm(
    train: VoteSet,
    test: VoteSet,
    ids: np.ndarray,
    settings: dict[str, Any],
    seed: int,
    rounds: int,
    batch: int,
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
    for round_no in range(1, rounds + 1):
        table = enriched_table(
            votes,
            model.predict_proba(train.votes),
            run_id=f"review-{round_no}",
            model_version="LabelModel",
        )
        picked = [row_of[int(a)] for a in pick(table, reviewed, batch, settings, seed)]
        if len(picked) < batch:  # the queue ran dry: top up at random, so budgets match
            rng = np.random.default_rng([seed, round_no])
            left = np.setdiff1d(np.flatnonzero(y < 0), picked)
            picked += rng.choice(left, size=batch - len(picked), replace=False).tolist()
        y[picked] = train.gold[picked]
        reviewed += [int(ids[i]) for i in picked]
        model = refit_and_score(train, test, y, seed, test_curve, pool_curve)
    return test_curve, pool_curve


#: The simple strategies the queue must match (issue 16): each round, the ``batch`` unreviewed
#: items first by this key (smallest first), ties at random.
SIMPLE = ("lowest confidence", "most conflicting votes")


def _simple_key(kind: str, votes: np.ndarray, proba: np.ndarray) -> np.ndarray:
    if kind == "lowest confidence":
        return proba.max(axis=1)
    # most conflicting votes: the smallest share of votes for the most voted class first;
    # items no LF voted on last
    k = proba.shape[1]
    counts = np.stack([(votes == c).sum(axis=1) for c in range(k)], axis=1)
    n = counts.sum(axis=1)
    return np.where(n > 0, counts.max(axis=1) / np.maximum(n, 1), 2.0)


def simple_arm(
    kind: str, train: VoteSet, test: VoteSet, seed: int, rounds: int, batch: int
) -> tuple[list[float], list[float]]:
    rng = np.random.default_rng([seed, 2])
    y = np.full(len(train.gold), -1, dtype=np.int64)
    model = fit(train, None, seed)
    test_curve, pool_curve = [], []
    for _ in range(rounds):
        key = _simple_key(kind, train.votes, model.predict_proba(train.votes))
        left = np.flatnonzero(y < 0)
        order = left[np.lexsort((rng.random(left.size), key[left]))]
        picked = order[:batch]
        y[picked] = train.gold[picked]
        model = refit_and_score(train, test, y, seed, test_curve, pool_curve)
    return test_curve, pool_curve


def votes_arm(
    train: VoteSet, test: VoteSet, seed: int, rounds: int, batch: int
) -> tuple[list[float], list[float]]:
    """``queue_from_votes`` (refit): votes and probabilities in, row numbers out."""
    y = np.full(len(train.gold), -1, dtype=np.int64)
    model = fit(train, None, seed)
    test_curve, pool_curve = [], []
    for _ in range(rounds):
        queue = queue_from_votes(
            train.votes,
            model.predict_proba(train.votes),
            batch_size=batch,
            exclude=np.flatnonzero(y >= 0).tolist(),
            random_state=seed,
        )
        picked = queue.asset_ids.to_numpy()
        assert len(picked) == batch, "refit returns the batch it is asked for"
        y[picked] = train.gold[picked]
        model = refit_and_score(train, test, y, seed, test_curve, pool_curve)
    return test_curve, pool_curve


def random_arm(
    train: VoteSet, test: VoteSet, seed: int, rounds: int, batch: int
) -> tuple[list[float], list[float]]:
    rng = np.random.default_rng([seed, 1])
    order = rng.choice(len(train.gold), size=rounds * batch, replace=False)
    test_curve, pool_curve = [], []
    for round_no in range(1, rounds + 1):
        y = np.full(len(train.gold), -1, dtype=np.int64)
        picked = order[: round_no * batch]
        y[picked] = train.gold[picked]
        test_accuracy, pool_accuracy = scores(fit(train, y, seed), train, test, y)
        test_curve.append(test_accuracy)
        pool_curve.append(pool_accuracy)
    return test_curve, pool_curve


def run(name: str, seeds: int, variants: list[str], rounds: int, batch: int) -> dict[str, Curve]:
    train, test = load_wrench(name, "train"), load_wrench(name, "test")
    log(f"wrench/{name}: pool {train.votes.shape}, test {test.votes.shape}")
    curves: dict[str, Curve] = {"start": Curve(), "all gold": Curve(), "random": Curve()}
    curves.update({kind: Curve() for kind in SIMPLE})
    curves.update({f"queue ({v})": Curve() for v in variants})
    curves["queue_from_votes (refit)"] = Curve()
    for seed in range(seeds):
        start = fit(train, None, seed)
        test_accuracy, pool_accuracy = scores(start, train, test, np.full(len(train.gold), -1))
        curves["start"].test.append([test_accuracy] * rounds)
        curves["start"].pool.append([pool_accuracy] * rounds)
        test_accuracy, _ = scores(fit(train, train.gold, seed), train, test, train.gold)
        curves["all gold"].test.append([test_accuracy] * rounds)
        ids = np.random.default_rng([seed, 0]).permutation(len(train.gold)).astype(np.int64)
        for variant in variants:
            t, p = queue_arm(train, test, ids, VARIANTS[variant], seed, rounds, batch)
            curves[f"queue ({variant})"].test.append(t)
            curves[f"queue ({variant})"].pool.append(p)
        t, p = random_arm(train, test, seed, rounds, batch)
        curves["random"].test.append(t)
        curves["random"].pool.append(p)
        for kind in SIMPLE:
            t, p = simple_arm(kind, train, test, seed, rounds, batch)
            curves[kind].test.append(t)
            curves[kind].pool.append(p)
        t, p = votes_arm(train, test, seed, rounds, batch)
        curves["queue_from_votes (refit)"].test.append(t)
        curves["queue_from_votes (refit)"].pool.append(p)
    return curves


def _cell(values: np.ndarray) -> str:
    sd = float(np.std(values, ddof=1)) if values.size > 1 else 0.0
    return f"{values.mean():.4f} ± {sd:.4f}"


def markdown(
    name: str, curves: dict[str, Curve], seeds: int, variants: list[str], rounds: int, batch: int
) -> str:
    header = " | ".join(f"{batch * r} gold (round {r})" for r in range(1, rounds + 1))
    blanks = " |" * (rounds - 1)
    out = [f"### wrench/{name}: test accuracy, mean ± sd over {seeds} seeds", ""]
    out += [f"| arm | {header} |", "|---|" + "---|" * rounds]
    start = np.array(curves["start"].test)[:, 0]
    out.append(f"| unsupervised start (0 gold) | {_cell(start)} |{blanks}")
    every = np.array(curves["all gold"].test)[:, 0]
    out.append(f"| reference: every pool item as gold | {_cell(every)} |{blanks}")
    arms = ["random", *SIMPLE, *(f"queue ({v})" for v in variants), "queue_from_votes (refit)"]
    for arm in arms:
        values = np.array(curves[arm].test)
        cells = " | ".join(_cell(values[:, r]) for r in range(rounds))
        out.append(f"| {arm} | {cells} |")
    simple = ["random", *SIMPLE]
    means = {a: np.array(curves[a].test).mean(axis=0) for a in simple}
    for arm in [*(f"queue ({v})" for v in variants), "queue_from_votes (refit)"]:
        values = np.array(curves[arm].test).mean(axis=0)
        cells = []
        for r in range(rounds):
            best = max(simple, key=lambda a, r=r: means[a][r])
            gap = 100 * (values[r] - means[best][r])
            cells.append(f"{gap:+.1f} vs {best} ({'ok' if gap >= -0.5 else 'BELOW -0.5'})")
        out.append(f"| {arm} - best simple strategy, points | " + " | ".join(cells) + " |")
    random_test = np.array(curves["random"].test)
    for v in variants:
        diff = 100 * (np.array(curves[f"queue ({v})"].test) - random_test)
        cells = " | ".join(
            f"{diff[:, r].mean():+.1f} ± {np.std(diff[:, r], ddof=1) if seeds > 1 else 0:.1f}"
            + f" ({int((diff[:, r] > 0).sum())}/{seeds} seeds ahead)"
            for r in range(rounds)
        )
        out.append(f"| queue ({v}) - random, points | {cells} |")
    out += ["", f"Pool accuracy (reviewed items take their gold label), mean over {seeds} seeds:"]
    out += ["", f"| arm | {header} |", "|---|" + "---|" * rounds]
    pool_start = np.array(curves["start"].pool)[:, 0]
    out.append(f"| unsupervised start (0 gold) | {pool_start.mean():.4f} |{blanks}")
    for arm in arms:
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
        help=f"comma-separated queue settings, from {list(VARIANTS)}",
    )
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="review rounds")
    parser.add_argument("--batch", type=int, default=BATCH, help="items reviewed per round")
    args = parser.parse_args(argv)
    names = [s.strip() for s in args.sets.split(",") if s.strip()]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if sorted(set(names) - set(SETS)):
        parser.error(f"--sets must be among {list(SETS)}")
    if sorted(set(variants) - set(VARIANTS)) or not variants:
        parser.error(f"--variants must be among {list(VARIANTS)}")
    if args.seeds < 2:
        parser.error("--seeds must be >= 2 (a standard deviation needs two)")
    if args.rounds < 1 or args.batch < 1:
        parser.error("--rounds and --batch must be >= 1")
    started = time.perf_counter()
    for name in names:
        curves = run(name, args.seeds, variants, args.rounds, args.batch)
        print(markdown(name, curves, args.seeds, variants, args.rounds, args.batch))
        print()
    print(
        f"Python {platform.python_version()}, polars {pl.__version__}, numpy {np.__version__}; "
        f"{time.perf_counter() - started:.0f} s wall."
    )


if __name__ == "__main__":
    main()
