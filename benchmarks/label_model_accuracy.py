"""Accuracy of enrich's label models against majority vote and Snorkel, in one run.

Run: ``.venv/bin/python -m benchmarks.label_model_accuracy`` (about a minute on 2 cores).

Protocol (see ``../shared/data/README.md``):

* youtube, trec: fit unsupervised on the train votes, accuracy on the test split.
* sms: fit on the train votes, spam F1 on the train split (valid/test gold disagree with the
  LF votes).
* dog, product_er: crowd annotators as LFs, fit on all answers, accuracy against the truth.

Every model uses its defaults (Snorkel's LabelModel with seed 0). Semi-supervised rows: for
youtube and trec the valid split's votes and gold labels are added to the fit (gold clamped)
and the test split is scored; for sms, dog and product_er (no usable valid split) a seeded 10%
of the scored rows are given as gold and the other 90% are scored, next to the unsupervised
model scored on the same 90%. sms is also shown with its valid split as gold, to show what
inconsistent gold does.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks._data import load_crowd, load_wrench
from enrich.models.label_model import LabelModel
from enrich.models.majority_vote import MajorityVote
from enrich.models.snorkel import SnorkelLabelModel, SnorkelNumericalError


def accuracy(pred: np.ndarray, gold: np.ndarray) -> float:
    return float(np.mean(pred == gold))


def spam_f1(pred: np.ndarray, gold: np.ndarray) -> float:
    tp = float(np.sum((pred == 1) & (gold == 1)))
    fp = float(np.sum((pred == 1) & (gold == 0)))
    fn = float(np.sum((pred == 0) & (gold == 1)))
    return 2 * tp / max(2 * tp + fp + fn, 1.0)


@dataclass
class Task:
    name: str
    metric: str
    fit_votes: np.ndarray
    eval_votes: np.ndarray
    eval_gold: np.ndarray
    k: int
    score: Callable[[np.ndarray, np.ndarray], float]


def tasks() -> list[Task]:
    out = []
    for name in ("youtube", "trec"):
        train, test = load_wrench(name, "train"), load_wrench(name, "test")
        out.append(
            Task(
                name, "acc (test)", train.votes, test.votes, test.gold, train.cardinality, accuracy
            )
        )
    sms = load_wrench("sms", "train")
    out.append(Task("sms", "spam F1 (train)", sms.votes, sms.votes, sms.gold, 2, spam_f1))
    for name in ("dog", "product_er"):
        crowd = load_crowd(name)
        out.append(
            Task(
                name,
                "acc (truth)",
                crowd.votes,
                crowd.votes,
                crowd.gold,
                crowd.cardinality,
                accuracy,
            )
        )
    return out


def peer_scores(task: Task) -> dict[str, float]:
    scores = {}
    models = {
        "MajorityVote": MajorityVote(cardinality=task.k),
        "Snorkel": SnorkelLabelModel(cardinality=task.k, random_state=0),
        "LabelModel": LabelModel(cardinality=task.k),
    }
    for label, model in models.items():
        try:
            pred = model.fit(task.fit_votes).predict(task.eval_votes)
            scores[label] = task.score(pred, task.eval_gold)
        except SnorkelNumericalError:
            scores[label] = float("nan")
    return scores


def dawid_skene_abstain_as_outcome(votes: np.ndarray, k: int, n_iter: int = 500) -> Any:
    """Reference ablation: Dawid-Skene where the abstain is one more outcome of every LF
    (``P(vote or abstain | y)``), MV-initialised EM with add-0.1 smoothing. Returns a
    function that gives posteriors for a vote matrix."""

    def onehot(L: np.ndarray) -> np.ndarray:
        out = np.zeros((*L.shape, k + 1))
        out[np.arange(L.shape[0])[:, None], np.arange(L.shape[1])[None, :], L + 1] = 1.0
        return out

    x = onehot(votes)
    q = MajorityVote(cardinality=k, class_balance=np.ones(k)).fit(votes).predict_proba(votes)
    prior = np.full(k, 1.0 / k)
    log_theta = np.zeros((votes.shape[1], k, k + 1))
    for _ in range(n_iter):
        prior = (q.sum(axis=0) + 1.0) / (len(q) + k)
        counts = np.einsum("ny,nmv->myv", q, x) + 0.1
        counts[:, np.arange(k), np.arange(k) + 1] += 1.0
        log_theta = np.log(counts / counts.sum(axis=2, keepdims=True))
        scores = np.einsum("nmv,myv->ny", x, log_theta) + np.log(prior)
        new = np.exp(scores - scores.max(axis=1, keepdims=True))
        new /= new.sum(axis=1, keepdims=True)
        done = np.abs(new - q).max() < 1e-6
        q = new
        if done:
            break

    def posterior(L: np.ndarray) -> np.ndarray:
        return np.einsum("nmv,myv->ny", onehot(L), log_theta) + np.log(prior)

    return posterior


def ablation_scores(task: Task) -> dict[str, float]:
    """The two abstain treatments on their own, to show why the default mixes them."""
    scores = {}
    for kind in ("annotator", "detector"):
        model = LabelModel(cardinality=task.k, lf_kind=kind).fit(task.fit_votes)
        scores[kind] = task.score(model.predict(task.eval_votes), task.eval_gold)
    posterior = dawid_skene_abstain_as_outcome(task.fit_votes, task.k)
    scores["outcome"] = task.score(posterior(task.eval_votes).argmax(axis=1), task.eval_gold)
    return scores


def semi_supervised(task: Task, seed: int = 0) -> tuple[str, float, float]:
    """(protocol, unsupervised score, semi-supervised score) on the same scored rows."""
    k = task.k
    if task.name in ("youtube", "trec"):
        train, valid = load_wrench(task.name, "train"), load_wrench(task.name, "valid")
        votes = np.concatenate([train.votes, valid.votes])
        gold = np.concatenate([np.full(len(train.gold), -1), valid.gold])
        semi = LabelModel(cardinality=k).fit(votes, gold).predict(task.eval_votes)
        unsup = LabelModel(cardinality=k).fit(task.fit_votes).predict(task.eval_votes)
        return "valid gold", task.score(unsup, task.eval_gold), task.score(semi, task.eval_gold)
    rng = np.random.default_rng(seed)
    n = len(task.eval_gold)
    labelled = np.zeros(n, dtype=bool)
    labelled[rng.choice(n, size=n // 10, replace=False)] = True
    gold = np.where(labelled, task.eval_gold, -1)
    semi = LabelModel(cardinality=k).fit(task.fit_votes, gold).predict(task.eval_votes)
    unsup = LabelModel(cardinality=k).fit(task.fit_votes).predict(task.eval_votes)
    rest = ~labelled
    return (
        "10% gold, 90% scored",
        task.score(unsup[rest], task.eval_gold[rest]),
        task.score(semi[rest], task.eval_gold[rest]),
    )


def sms_with_valid_gold() -> tuple[float, float]:
    train, valid = load_wrench("sms", "train"), load_wrench("sms", "valid")
    votes = np.concatenate([train.votes, valid.votes])
    gold = np.concatenate([np.full(len(train.gold), -1), valid.gold])
    semi = LabelModel(cardinality=2).fit(votes, gold).predict(train.votes)
    unsup = LabelModel(cardinality=2).fit(train.votes).predict(train.votes)
    return spam_f1(unsup, train.gold), spam_f1(semi, train.gold)


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    started = time.perf_counter()
    rows = []
    semi_rows = []
    ablations = []
    for task in tasks():
        scores = peer_scores(task)
        best_peer = np.nanmax([scores["MajorityVote"], scores["Snorkel"]])
        rows.append((task, scores, scores["LabelModel"] - best_peer))
        semi_rows.append((task, *semi_supervised(task)))
        ablations.append((task, scores["LabelModel"], ablation_scores(task)))

    print("## Label model accuracy (unsupervised, defaults)\n")
    print("| set | metric | MajorityVote | Snorkel LabelModel | enrich LabelModel | vs best peer |")
    print("|---|---|---|---|---|---|")
    for task, scores, delta in rows:
        print(
            f"| {task.name} | {task.metric} | {scores['MajorityVote']:.3f} | "
            f"{scores['Snorkel']:.3f} | **{scores['LabelModel']:.3f}** | {delta:+.3f} |"
        )
    print("\n## Semi-supervised LabelModel (gold rows clamped)\n")
    print("| set | gold given | unsupervised | semi-supervised | gain |")
    print("|---|---|---|---|---|")
    for task, protocol, unsup, semi in semi_rows:
        print(f"| {task.name} | {protocol} | {unsup:.3f} | {semi:.3f} | {semi - unsup:+.3f} |")
    unsup, semi = sms_with_valid_gold()
    print(
        f"| sms | valid gold (inconsistent with the votes, see data README) | {unsup:.3f} | "
        f"{semi:.3f} | {semi - unsup:+.3f} |"
    )
    print("\n## Ablation: one abstain treatment for every LF\n")
    print(
        "| set | default (per-LF choice) | all annotators: Dawid-Skene, abstain = missing | "
        "all detectors | Dawid-Skene, abstain = outcome |"
    )
    print("|---|---|---|---|---|")
    for task, default, ab in ablations:
        print(
            f"| {task.name} | {default:.3f} | {ab['annotator']:.3f} | {ab['detector']:.3f} | "
            f"{ab['outcome']:.3f} |"
        )
    print(f"\n_{time.perf_counter() - started:.0f} s_")


if __name__ == "__main__":
    main()
