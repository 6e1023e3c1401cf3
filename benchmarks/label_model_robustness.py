"""Robustness of the label model on seeded vote matrices with known truth, against its peers.

Run: ``.venv/bin/python -m benchmarks.label_model_robustness --seeds 3 --rows 3000`` (about
10 minutes on 2 shared cores, most of it Snorkel; ``--quick`` runs one seed of each scenario on
fewer rows, ``--no-real`` skips the real sets).

Real sets, after the scenarios: the visible sets of ``../shared/data`` with the protocol of
``benchmarks/label_model_accuracy.py`` (youtube and trec fitted on train and scored on test,
sms spam F1 on train, the crowd sets on every item), and UCI sentiment with the ten regex LFs
of :data:`SENTIMENT_LFS`, written for this check and never tuned. Semi-supervised columns
there: 50 gold labels among the fit rows, and every fit row labeled.

Every scenario is a generator of (votes, truth, k) drawn from its own seed; each model is fitted
on the votes alone (no gold) and scored by accuracy against the truth on every row, rows without
a vote included (they get each model's class prior or its fallback). Peers in the same run:

* majority vote (``enrich.models.majority_vote.MajorityVote``: ties to the lowest class id,
  as the data README's baseline, empty rows to the larger estimated class);
* Snorkel 0.10 ``LabelModel`` (defaults, seed 0; NaN or refusal counts as missing);
* crowd-kit's ``DawidSkene`` (abstains are missing answers; rows with no vote get its most
  frequent label);
* enrich's ``LabelModel`` with its defaults, unsupervised, and semi-supervised with 50 gold
  labels and with every row labeled (scored on all rows: it must never do worse than the
  unsupervised fit by more than 0.5 points).

The scenarios follow the ways label models fail on data they were not developed on
(issue #14): the narrow-detectors-against-a-broad-detector pattern, duplicated and correlated
LFs, LFs worse than random, low coverage, class imbalance up to 1:20, 10 to 50 classes with one
or two LFs per class, one-class and multi-class LFs mixed, and crowd annotators of mixed skill
with a few spammers.
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Generator = Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray, int]]


# --------------------------------------------------------------------------------------------
# building blocks
# --------------------------------------------------------------------------------------------


def _truth(rng: np.random.Generator, n: int, balance: np.ndarray) -> np.ndarray:
    balance = np.asarray(balance, dtype=np.float64)
    return rng.choice(balance.size, size=n, p=balance / balance.sum())


def _detector(
    rng: np.random.Generator, y: np.ndarray, target: int, *, recall: float, false_rate: float
) -> np.ndarray:
    """A one-class LF: fires on class ``target`` with prob ``recall``, elsewhere ``false_rate``."""
    fire = np.where(y == target, rng.random(y.size) < recall, rng.random(y.size) < false_rate)
    return np.where(fire, target, -1)


def _annotator(
    rng: np.random.Generator, y: np.ndarray, k: int, *, coverage: float, accuracy: float
) -> np.ndarray:
    """A multi-class LF: votes on a ``coverage`` share of rows, right with ``accuracy``,
    otherwise a uniformly drawn wrong class."""
    fire = rng.random(y.size) < coverage
    right = rng.random(y.size) < accuracy
    wrong = (y + rng.integers(1, k, y.size)) % k
    return np.where(fire, np.where(right, y, wrong), -1)


def _stack(columns: list[np.ndarray]) -> np.ndarray:
    return np.stack(columns, axis=1).astype(np.int64)


# --------------------------------------------------------------------------------------------
# scenarios
# --------------------------------------------------------------------------------------------


def independent(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Conditionally independent one-class detectors of every class, good to mediocre."""
    k = int(rng.integers(2, 5))
    y = _truth(rng, n, rng.dirichlet(np.full(k, 5.0)))
    cols = []
    for j in range(12):
        cols.append(
            _detector(
                rng,
                y,
                j % k,
                recall=rng.uniform(0.15, 0.6),
                false_rate=rng.uniform(0.01, 0.12),
            )
        )
    return _stack(cols), y, k


def narrow_vs_broad(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Narrow, precise detectors of minority classes against one broad detector of another
    class that fires on about half of all rows (the held-out failure of issue #14)."""
    k = int(rng.integers(4, 10))
    balance = rng.dirichlet(np.full(k, 4.0))
    broad = int(rng.integers(k))
    balance[broad] = max(balance[broad], 0.3)
    y = _truth(rng, n, balance)
    cols = [_detector(rng, y, broad, recall=0.9, false_rate=0.35)]
    cols.append(_detector(rng, y, broad, recall=rng.uniform(0.1, 0.3), false_rate=0.02))
    for c in range(k):
        if c == broad:
            continue
        for _ in range(int(rng.integers(1, 3))):
            cols.append(_detector(rng, y, c, recall=rng.uniform(0.2, 0.5), false_rate=0.005))
    return _stack(cols), y, k


def duplicated(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """A mediocre LF copied four times and a correlated family of three noisy variants of
    another, next to independent good LFs."""
    k = 2
    y = _truth(rng, n, [0.5, 0.5])
    cols = [_annotator(rng, y, k, coverage=0.5, accuracy=rng.uniform(0.7, 0.85)) for _ in range(5)]
    bad = _annotator(rng, y, k, coverage=0.6, accuracy=0.58)
    cols += [bad] * 4
    base = _detector(rng, y, 1, recall=0.5, false_rate=0.25)
    for _ in range(3):
        flip = rng.random(n) < 0.05
        cols.append(np.where(flip, -1, base))
    return _stack(cols), y, k


def worse_than_random(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Good multi-class LFs plus a few that are worse than random (accuracy below 1/k)."""
    k = int(rng.integers(2, 4))
    y = _truth(rng, n, np.full(k, 1.0))
    cols = [_annotator(rng, y, k, coverage=rng.uniform(0.3, 0.7), accuracy=rng.uniform(0.65, 0.85))]
    cols += [
        _annotator(rng, y, k, coverage=rng.uniform(0.3, 0.7), accuracy=rng.uniform(0.6, 0.85))
        for _ in range(6)
    ]
    cols += [
        _annotator(rng, y, k, coverage=rng.uniform(0.2, 0.5), accuracy=0.5 / k) for _ in range(3)
    ]
    return _stack(cols), y, k


def low_coverage(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Sparse detectors: under 30% of rows get any vote; unequal classes."""
    k = int(rng.integers(2, 4))
    y = _truth(rng, n, rng.dirichlet(np.full(k, 3.0)))
    cols = [
        _detector(rng, y, j % k, recall=rng.uniform(0.03, 0.1), false_rate=rng.uniform(0.0, 0.015))
        for j in range(8)
    ]
    return _stack(cols), y, k


def imbalance(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Class imbalance up to 1:20, detectors of both classes."""
    ratio = float(rng.uniform(5, 20))
    y = _truth(rng, n, [ratio, 1.0])
    cols = [
        _detector(rng, y, 0, recall=rng.uniform(0.2, 0.6), false_rate=rng.uniform(0.05, 0.3))
        for _ in range(4)
    ]
    cols += [
        _detector(rng, y, 1, recall=rng.uniform(0.3, 0.7), false_rate=rng.uniform(0.005, 0.05))
        for _ in range(4)
    ]
    return _stack(cols), y, 2


def many_classes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """10 to 50 classes with one or two detectors per class and a few multi-class LFs."""
    k = int(rng.integers(10, 51))
    y = _truth(rng, n, rng.dirichlet(np.full(k, 2.0)))
    cols = []
    for c in range(k):
        for _ in range(int(rng.integers(1, 3))):
            cols.append(
                _detector(
                    rng, y, c, recall=rng.uniform(0.3, 0.8), false_rate=rng.uniform(0.0, 0.01)
                )
            )
    for _ in range(2):
        cols.append(_annotator(rng, y, k, coverage=0.4, accuracy=rng.uniform(0.4, 0.7)))
    return _stack(cols), y, k


def mixed_kinds(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """One-class detectors and multi-class LFs (e.g. a classifier, a heuristic) mixed."""
    k = int(rng.integers(3, 6))
    y = _truth(rng, n, rng.dirichlet(np.full(k, 4.0)))
    cols = [
        _detector(rng, y, j % k, recall=rng.uniform(0.1, 0.4), false_rate=rng.uniform(0.0, 0.05))
        for j in range(2 * k)
    ]
    cols += [
        _annotator(rng, y, k, coverage=rng.uniform(0.5, 0.9), accuracy=rng.uniform(0.45, 0.75))
        for _ in range(3)
    ]
    return _stack(cols), y, k


def crowd(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Crowd annotators of mixed skill (Dawid-Skene confusions) and a few spammers; each
    item is labeled by 3-7 randomly chosen annotators."""
    k = int(rng.integers(2, 5))
    y = _truth(rng, n, rng.dirichlet(np.full(k, 5.0)))
    m = 30
    skill = rng.beta(4, 2, size=m) * 0.6 + 0.35  # accuracy 0.35..0.95
    spammers = rng.choice(m, size=4, replace=False)
    votes = np.full((n, m), -1, dtype=np.int64)
    confusion = np.empty((m, k, k))
    for j in range(m):
        for c in range(k):
            off = rng.dirichlet(np.full(k - 1, 2.0)) * (1 - skill[j])
            confusion[j, c] = np.insert(off, c, skill[j])
        if j in spammers:  # always the same answer, or uniformly random
            confusion[j] = np.full(k, 1.0 / k) if j % 2 else np.eye(k)[int(rng.integers(k))]
    for i in range(n):
        who = rng.choice(m, size=int(rng.integers(3, 8)), replace=False)
        for j in who:
            votes[i, j] = rng.choice(k, p=confusion[j, y[i]])
    return votes, y, k


SCENARIOS: dict[str, Generator] = {
    "independent": independent,
    "narrow_vs_broad": narrow_vs_broad,
    "duplicated": duplicated,
    "worse_than_random": worse_than_random,
    "low_coverage": low_coverage,
    "imbalance": imbalance,
    "many_classes": many_classes,
    "mixed_kinds": mixed_kinds,
    "crowd": crowd,
}


# --------------------------------------------------------------------------------------------
# real sets: the visible ones of ../shared/data, and UCI sentiment with LFs written here
# --------------------------------------------------------------------------------------------

#: Ten keyword/regex LFs over UCI sentiment sentences (class 0 NEG, 1 POS), written once the
#: way a new user would, before any model was run on them; never tuned.
SENTIMENT_LFS: tuple[tuple[str, int], ...] = (
    (r"\b(great|excellent|amazing|awesome|fantastic|wonderful|perfect)\b", 1),
    (r"\b(love|loved|loves)\b", 1),
    (r"\b(good|nice|best)\b", 1),
    (r"\brecommend", 1),
    (r"!", 1),
    (r"\b(bad|terrible|awful|horrible|worst|poor)\b", 0),
    (r"\b(not|never|no)\b|n't\b", 0),
    (r"\b(waste|disappoint\w*|return(ed)?|refund|avoid)\b", 0),
    (r"\b(broke|broken|stopped working)\b", 0),
    (r"\b(boring|slow|rude|bland|cold)\b", 0),
)


@dataclass
class RealSet:
    name: str
    metric: str
    fit_votes: np.ndarray
    fit_gold: np.ndarray
    eval_votes: np.ndarray
    eval_gold: np.ndarray
    k: int

    def score(self, pred: np.ndarray) -> float:
        gold = self.eval_gold
        if self.metric.startswith("spam F1"):
            tp = float(np.sum((pred == 1) & (gold == 1)))
            wrong = float(np.sum(pred != gold))
            return 2 * tp / max(2 * tp + wrong, 1.0)
        return float(np.mean(pred == gold))


def uci_sentiment() -> RealSet:
    """UCI sentiment (3 x 1000 sentences) with :data:`SENTIMENT_LFS`; scored on every row."""
    import re

    import polars as pl

    from benchmarks._data import data_root

    folder = data_root() / "uci_sentiment_labelled_sentences"
    frames = [pl.read_csv(path) for path in sorted(folder.glob("*_labelled.csv"))]
    table = pl.concat(frames)
    texts = [t.lower() for t in table["text"].to_list()]
    gold = table["label"].to_numpy().astype(np.int64)
    votes = np.full((len(texts), len(SENTIMENT_LFS)), -1, dtype=np.int64)
    for j, (pattern, label) in enumerate(SENTIMENT_LFS):
        rx = re.compile(pattern)
        votes[:, j] = [label if rx.search(t) else -1 for t in texts]
    return RealSet("uci_sentiment (10 regex LFs)", "acc", votes, gold, votes, gold, 2)


def real_sets() -> list[RealSet]:
    """The visible sets (protocol of ``benchmarks/label_model_accuracy.py``) and UCI
    sentiment."""
    from benchmarks._data import load_crowd, load_wrench

    out = []
    for name in ("youtube", "trec"):
        train, test = load_wrench(name, "train"), load_wrench(name, "test")
        out.append(
            RealSet(
                f"wrench/{name}",
                "acc (test)",
                train.votes,
                train.gold,
                test.votes,
                test.gold,
                train.cardinality,
            )
        )
    sms = load_wrench("sms", "train")
    out.append(
        RealSet("wrench/sms", "spam F1 (train)", sms.votes, sms.gold, sms.votes, sms.gold, 2)
    )
    for name in ("dog", "product_er"):
        c = load_crowd(name)
        out.append(RealSet(f"crowd/{name}", "acc", c.votes, c.gold, c.votes, c.gold, c.cardinality))
    out.append(uci_sentiment())
    return out


def scenario(name: str, seed: int, n: int = 4000) -> tuple[np.ndarray, np.ndarray, int]:
    """Votes, truth and number of classes of one scenario drawn from ``seed``."""
    rng = np.random.default_rng([seed, sum(map(ord, name))])
    return SCENARIOS[name](rng, n)


# --------------------------------------------------------------------------------------------
# peers
# --------------------------------------------------------------------------------------------


def predict_majority(votes: np.ndarray, k: int) -> np.ndarray:
    from enrich.models.majority_vote import MajorityVote

    return MajorityVote(cardinality=k).fit(votes).predict(votes)


def predict_snorkel(votes: np.ndarray, k: int) -> np.ndarray | None:
    from enrich.errors import EnrichError
    from enrich.models.snorkel import SnorkelLabelModel

    try:
        return SnorkelLabelModel(cardinality=k, random_state=0).fit(votes).predict(votes)
    except (EnrichError, ValueError, RuntimeError):
        return None


def predict_dawid_skene(votes: np.ndarray, k: int) -> np.ndarray:
    import pandas as pd
    from crowdkit.aggregation import DawidSkene

    rows, cols = np.nonzero(votes >= 0)
    frame = pd.DataFrame({"task": rows, "worker": cols, "label": votes[rows, cols]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = DawidSkene(n_iter=100).fit_predict(frame)
    out = np.full(votes.shape[0], -1, dtype=np.int64)
    out[labels.index.to_numpy(dtype=np.int64)] = labels.to_numpy(dtype=np.int64)
    fallback = int(np.bincount(out[out >= 0], minlength=k).argmax()) if (out >= 0).any() else 0
    out[out < 0] = fallback
    return out


def predict_enrich(votes: np.ndarray, k: int, gold: np.ndarray | None = None) -> np.ndarray:
    from enrich.models.label_model import LabelModel

    return LabelModel(cardinality=k, random_state=0).fit(votes, gold).predict(votes)


def gold_subset(y: np.ndarray, n_gold: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    gold = np.full(y.size, -1, dtype=np.int64)
    pick = rng.choice(y.size, size=min(n_gold, y.size), replace=False)
    gold[pick] = y[pick]
    return gold


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------


@dataclass
class Result:
    scenario: str
    seed: int
    k: int
    n_lfs: int
    coverage: float
    scores: dict[str, float]


def evaluate(
    votes: np.ndarray,
    y: np.ndarray,
    k: int,
    *,
    peers: bool = True,
    semi: bool = True,
    model: Callable[..., np.ndarray] = predict_enrich,
) -> dict[str, float]:
    """Accuracy of every model on one vote matrix (NaN where a peer failed)."""

    def acc(pred: np.ndarray | None) -> float:
        return float("nan") if pred is None else float(np.mean(pred == y))

    scores = {"enrich": acc(model(votes, k))}
    if peers:
        scores["majority"] = acc(predict_majority(votes, k))
        scores["snorkel"] = acc(predict_snorkel(votes, k))
        scores["dawid_skene"] = acc(predict_dawid_skene(votes, k))
    if semi:
        scores["gold_50"] = acc(model(votes, k, gold_subset(y, 50, 1)))
        scores["gold_all"] = acc(model(votes, k, y))
    return scores


def evaluate_real(data: RealSet) -> dict[str, float]:
    """Every model on one real set: fitted on its fit votes, scored on its eval rows."""
    from enrich.models.label_model import LabelModel
    from enrich.models.majority_vote import MajorityVote

    k, fit, ev = data.k, data.fit_votes, data.eval_votes
    same = fit is ev

    def lm(gold: np.ndarray | None = None) -> float:
        model = LabelModel(cardinality=k, random_state=0).fit(fit, gold)
        return data.score(model.predict(ev))

    scores = {
        "enrich": lm(),
        "majority": data.score(MajorityVote(cardinality=k).fit(fit).predict(ev)),
    }
    snorkel = predict_snorkel(fit, k) if same else None
    if not same:
        from enrich.errors import EnrichError
        from enrich.models.snorkel import SnorkelLabelModel

        try:
            snorkel = SnorkelLabelModel(cardinality=k, random_state=0).fit(fit).predict(ev)
        except (EnrichError, ValueError, RuntimeError):
            snorkel = None
    scores["snorkel"] = float("nan") if snorkel is None else data.score(snorkel)
    both = fit if same else np.concatenate([fit, ev])
    scores["dawid_skene"] = data.score(predict_dawid_skene(both, k)[len(both) - len(ev) :])
    scores["gold_50"] = lm(gold_subset(data.fit_gold, 50, 1))
    scores["gold_all"] = lm(data.fit_gold)
    return scores


def run(seeds: int, n: int, names: list[str]) -> list[Result]:
    out = []
    for name in names:
        for seed in range(seeds):
            votes, y, k = scenario(name, seed, n)
            coverage = float((votes >= 0).any(axis=1).mean())
            out.append(Result(name, seed, k, votes.shape[1], coverage, evaluate(votes, y, k)))
    return out


MODELS = ("majority", "snorkel", "dawid_skene", "enrich")


def markdown_real(rows: list[tuple[RealSet, dict[str, float]]]) -> str:
    lines = [
        "| set | metric | majority vote | Snorkel | Dawid-Skene (crowd-kit) | **enrich** | "
        "enrich - MV | enrich - best peer | +50 gold | every fit row gold |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for data, s in rows:
        best = np.nanmax([s["majority"], s["snorkel"], s["dawid_skene"]])
        lines.append(
            f"| {data.name} | {data.metric} | {s['majority']:.3f} | {_f(s['snorkel'])} | "
            f"{s['dawid_skene']:.3f} | **{s['enrich']:.3f}** | "
            f"{100 * (s['enrich'] - s['majority']):+.1f} | {100 * (s['enrich'] - best):+.1f} | "
            f"{s['gold_50']:.3f} | {s['gold_all']:.3f} |"
        )
    return "\n".join(lines)


def markdown(results: list[Result]) -> str:
    lines = [
        "| scenario | seed | k | LFs | coverage | majority vote | Snorkel | Dawid-Skene "
        "(crowd-kit) | **enrich** | enrich - MV | enrich - best peer | +50 gold | all gold |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s = r.scores
        best = np.nanmax([s["majority"], s["snorkel"], s["dawid_skene"]])
        lines.append(
            f"| {r.scenario} | {r.seed} | {r.k} | {r.n_lfs} | {r.coverage:.0%} | "
            f"{s['majority']:.3f} | {_f(s['snorkel'])} | {s['dawid_skene']:.3f} | "
            f"**{s['enrich']:.3f}** | {100 * (s['enrich'] - s['majority']):+.1f} | "
            f"{100 * (s['enrich'] - best):+.1f} | {s['gold_50']:.3f} | {s['gold_all']:.3f} |"
        )
    mean = {key: float(np.nanmean([r.scores[key] for r in results])) for key in MODELS}
    worst_mv = min(100 * (r.scores["enrich"] - r.scores["majority"]) for r in results)
    worst_gold = min(
        100 * (r.scores[g] - r.scores["enrich"]) for r in results for g in ("gold_50", "gold_all")
    )
    lines += [
        "",
        "Mean accuracy over every scenario and seed: "
        + ", ".join(f"{key} {value:.3f}" for key, value in mean.items())
        + f". Worst enrich - majority vote: {worst_mv:+.1f} points; worst semi-supervised - "
        f"unsupervised: {worst_gold:+.1f} points.",
    ]
    return "\n".join(lines)


def _f(value: float) -> str:
    return "failed" if np.isnan(value) else f"{value:.3f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--quick", action="store_true", help="one seed, 1500 rows")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--no-real", action="store_true", help="skip the real sets")
    args = parser.parse_args(argv)
    logging.getLogger("enrich").setLevel(logging.ERROR)
    seeds, rows = (1, 1500) if args.quick else (args.seeds, args.rows)
    names = [s for s in args.scenarios.split(",") if s]
    started = time.perf_counter()
    results = run(seeds, rows, names)
    if results:
        print(markdown(results))
    if not args.no_real:
        real = [(data, evaluate_real(data)) for data in real_sets()]
        print("\n" + markdown_real(real))
        all_deltas = [
            r.scores["enrich"]
            - max(r.scores["majority"], np.nan_to_num(r.scores["snorkel"]), r.scores["dawid_skene"])
            for r in results
        ] + [
            s["enrich"] - np.nanmax([s["majority"], s["snorkel"], s["dawid_skene"]])
            for _, s in real
        ]
        print(
            f"\nMean enrich - best peer (per row) over every scenario, seed and real set: "
            f"{100 * float(np.mean(all_deltas)):+.2f} points."
        )
    print(f"\n_{seeds} seed(s) x {rows} rows; {time.perf_counter() - started:.0f} s_")


if __name__ == "__main__":
    main()
