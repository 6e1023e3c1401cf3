"""End model on MiniLM features vs the label model and vs Snorkel LabelModel + the same classifier.

For each set the label model is fitted on the train votes, the end model
(:class:`enrich.models.end_model.EndModel`, LogisticRegression on the bundled MiniLM vectors)
is trained on its probabilities over the rows some LF voted on, and both are scored on gold:

* youtube, trec: the WRENCH train split trains, the test split scores (accuracy);
* sms: only its train split is usable (``../shared/data/README.md``), so it is scored on train
  with the end model's out-of-fold predictions (cross-fitting), spam F1;
* UCI sentiment (amazon, imdb, yelp; 3000 sentences): LFs written here as a new user would
  (keywords and regexes, :func:`sentiment_lfs`), a seeded 2/3 train - 1/3 test split.

The peer is the Snorkel tutorial pipeline: Snorkel 0.10 ``LabelModel`` (defaults), rows with no
vote filtered out, hard labels, and the same ``LogisticRegression`` on the same vectors.
"coverage" is the share of scored rows with at least one LF vote; the end model labels all.

Then cleanlab is asked to find planted label errors: 5% of the train gold of youtube and trec
is flipped to another class at random (one draw per seed), the end model is trained with that
gold (and the label model's labels elsewhere), and
:func:`enrich.analysis.label_errors.find_label_errors` flags rows from its out-of-fold
probabilities with each rule of :data:`FILTERS`; precision and recall against the flips.

Texts are encoded once and cached (``--cache``, an :class:`embeddings.EmbeddingCache`).

Run: ``.venv/bin/python -m benchmarks.end_model --cache /tmp/enrich-embeddings``

``--drift`` only measures what the nightly job's ``retrain_after`` costs: a model kept while
its training sample drifts by a share d, against one retrained on the drifted sample
(:func:`kept_vs_retrained`).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass

import numpy as np
import polars as pl

from benchmarks._data import data_root

SEEDS = (0, 1, 2)
FLIP_SHARE = 0.05


@dataclass(frozen=True)
class TextSet:
    """Texts, vote matrix and gold of one split."""

    texts: list[str]
    votes: np.ndarray
    gold: np.ndarray
    class_names: tuple[str, ...]
    source: list[str] | None = None


def load_wrench_texts(name: str, split: str) -> TextSet:
    """One WRENCH split with its texts (``wrench/<name>/<split>.json``)."""
    folder = data_root() / "wrench" / name
    labels = json.loads((folder / "label.json").read_text(encoding="utf-8"))
    records = json.loads((folder / f"{split}.json").read_text(encoding="utf-8"))
    rows = [records[key] for key in sorted(records, key=int)]
    return TextSet(
        texts=[r["data"]["text"] for r in rows],
        votes=np.array([r["weak_labels"] for r in rows], dtype=np.int64),
        gold=np.array([r["label"] for r in rows], dtype=np.int64),
        class_names=tuple(labels[str(i)] for i in range(len(labels))),
    )


def sentiment_lfs() -> list:
    """Labeling functions for UCI sentiment, written as a new user would: words and phrases."""
    from labeling_functions import keyword_lf, regex_lf

    neg, pos = "NEG", "POS"
    return [
        keyword_lf("great", ["great", "excellent", "amazing", "awesome", "fantastic"], label=pos),
        keyword_lf("love", ["love", "loved", "loves"], label=pos),
        keyword_lf("good", ["good", "nice", "fine", "pleased", "happy"], label=pos),
        keyword_lf("best", ["best", "perfect", "wonderful", "superb", "outstanding"], label=pos),
        keyword_lf("recommend", ["recommend", "recommended", "must see", "worth"], label=pos),
        keyword_lf("tasty", ["delicious", "tasty", "friendly", "fresh", "beautiful"], label=pos),
        keyword_lf("enjoy", ["enjoy", "enjoyed", "fun", "impressed", "glad", "easy"], label=pos),
        keyword_lf("bad", ["bad", "worst", "terrible", "awful", "horrible", "poor"], label=neg),
        keyword_lf(
            "waste", ["waste", "wasted", "boring", "disappointed", "disappointing"], label=neg
        ),
        keyword_lf("broke", ["broke", "broken", "junk", "useless", "failed", "stopped"], label=neg),
        keyword_lf("hate", ["hate", "hated", "stupid", "crap", "sucks", "sucked"], label=neg),
        keyword_lf("rude", ["rude", "cold", "slow", "bland", "dirty", "overpriced"], label=neg),
        keyword_lf(
            "problem", ["problem", "problems", "unfortunately", "mediocre", "worse"], label=neg
        ),
        regex_lf(
            "never_again", r"(?i)\b(never|won't|will not)\b.*\b(again|back|return)", label=neg
        ),
        regex_lf("not_good", r"(?i)\bnot\b( \w+)? (good|great|worth|recommend)", label=neg),
        regex_lf("dont_buy", r"(?i)\b(don't|do not|avoid)\b.*\b(buy|waste|bother)", label=neg),
    ]


def load_sentiment() -> TextSet:
    """The 3000 UCI sentiment sentences with the votes of :func:`sentiment_lfs`."""
    from enrich.labeling.apply import apply

    folder = data_root() / "uci_sentiment_labelled_sentences"
    frames = [
        pl.read_csv(path).with_columns(pl.lit(path.stem.split("_")[0]).alias("source"))
        for path in sorted(folder.glob("*_labelled.csv"))
    ]
    frame = pl.concat(frames)
    votes = apply(sentiment_lfs(), frame, classes=["NEG", "POS"], progress=False)
    return TextSet(
        texts=frame["text"].to_list(),
        votes=np.asarray(votes.votes, dtype=np.int64),
        gold=frame["label"].to_numpy().astype(np.int64),
        class_names=("NEG", "POS"),
        source=frame["source"].to_list(),
    )


def encoder(cache_dir: str):
    """The bundled MiniLM behind an on-disk embedding cache (texts are encoded once)."""
    from embeddings import EmbeddingCache, TextEncoder

    return EmbeddingCache(cache_dir).wrap(TextEncoder(missing="zero"))


@dataclass(frozen=True)
class Task:
    """Train and scored rows of one set; ``scored`` is None when the train rows are scored."""

    name: str
    metric: str
    train: TextSet
    X_train: np.ndarray
    scored: TextSet | None
    X_scored: np.ndarray | None


def wrench_tasks(vec) -> list[Task]:
    """youtube, sms and trec as train / scored splits with MiniLM vectors (``vec(texts)``)."""
    out = []
    for name in ("youtube", "sms", "trec"):
        train = load_wrench_texts(name, "train")
        if name == "sms":
            out.append(
                Task(name, "spam F1 (train, out-of-fold)", train, vec(train.texts), None, None)
            )
            continue
        test = load_wrench_texts(name, "test")
        out.append(Task(name, "accuracy (test)", train, vec(train.texts), test, vec(test.texts)))
    return out


def sentiment_task(vec, *, seed: int) -> Task:
    """UCI sentiment split 2/3 train, 1/3 test by ``seed``."""
    data = load_sentiment()
    X = vec(data.texts)
    order = np.random.default_rng(seed).permutation(len(data.texts))
    cut = 2 * len(order) // 3

    def part(rows: np.ndarray) -> TextSet:
        return TextSet(
            [data.texts[i] for i in rows],
            data.votes[rows],
            data.gold[rows],
            data.class_names,
            [data.source[i] for i in rows] if data.source else None,
        )

    return Task(
        f"sentiment (seed {seed})",
        "accuracy (test)",
        part(order[:cut]),
        X[order[:cut]],
        part(order[cut:]),
        X[order[cut:]],
    )


def _score(task: Task, predicted: np.ndarray) -> float:
    gold = task.train.gold if task.scored is None else task.scored.gold
    if task.scored is None:  # sms: spam F1
        spam = predicted == 1
        true = gold == 1
        tp = float((spam & true).sum())
        return 2 * tp / max(float(spam.sum() + true.sum()), 1.0)
    return float((predicted == gold).mean())


def _classifier():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0, max_iter=1000)


def peer(task: Task, *, seed: int) -> tuple[float, float]:
    """Snorkel's tutorial pipeline: Snorkel LabelModel, unlabeled rows filtered out, hard
    labels, the same LogisticRegression. Returns (Snorkel label model, pipeline) scores;
    on sms the pipeline's train predictions are out-of-fold (5 folds) like the end model's."""
    from sklearn.model_selection import cross_val_predict

    from enrich.models.end_model import filter_unlabeled
    from enrich.models.snorkel import SnorkelLabelModel

    k = len(task.train.class_names)
    snorkel = SnorkelLabelModel(cardinality=k, random_state=seed).fit(task.train.votes)
    proba = snorkel.predict_proba(task.train.votes)
    X, p = filter_unlabeled(task.X_train, proba, task.train.votes)
    hard = p.argmax(axis=1)
    model = _classifier().fit(X, hard)
    if task.scored is None:
        lm_score = _score(task, proba.argmax(axis=1))
        predicted = model.predict(task.X_train)
        voted = (task.train.votes >= 0).any(axis=1)
        predicted[voted] = cross_val_predict(_classifier(), X, hard, cv=5)
        return lm_score, _score(task, predicted)
    lm_score = _score(task, snorkel.predict(task.scored.votes))
    return lm_score, _score(task, model.predict(task.X_scored))


def ours(task: Task, *, seed: int) -> dict[str, float]:
    """enrich LabelModel, then EndModel on its probabilities (rows with a vote)."""
    from enrich.models.end_model import EndModel
    from enrich.models.label_model import LabelModel

    k = len(task.train.class_names)
    label_model = LabelModel(cardinality=k, random_state=seed).fit(task.train.votes)
    proba = label_model.predict_proba(task.train.votes)
    start = time.perf_counter()
    end = EndModel(random_state=seed).fit(task.X_train, proba, votes=task.train.votes)
    seconds = time.perf_counter() - start
    if task.scored is None:
        votes, lm_pred, em_proba = task.train.votes, proba.argmax(axis=1), end.oof_proba_
    else:
        votes = task.scored.votes
        lm_pred = label_model.predict(votes)
        em_proba = end.predict_proba(task.X_scored)
    em_pred = em_proba.argmax(axis=1)
    variants = {}
    for targets in ("soft", "hard"):  # the other training targets, for the record
        other = EndModel(targets=targets, cv=5 if task.scored is None else None, random_state=seed)
        other.fit(task.X_train, proba, votes=task.train.votes)
        if task.scored is None:
            variants[f"end model ({targets})"] = _score(task, other.oof_proba_.argmax(axis=1))
        else:
            variants[f"end model ({targets})"] = _score(task, other.predict(task.X_scored))
    voted = (votes >= 0).any(axis=1)
    gold = task.train.gold if task.scored is None else task.scored.gold
    return {
        "coverage": float(voted.mean()),
        "label model": _score(task, lm_pred),
        "end model": _score(task, em_pred),
        **variants,
        "lfs, else end model": _score(task, np.where(voted, lm_pred, em_pred)),
        "lm acc no-vote rows": float((lm_pred == gold)[~voted].mean()) if (~voted).any() else None,
        "em acc no-vote rows": float((em_pred == gold)[~voted].mean()) if (~voted).any() else None,
        "ece": _ece(em_proba, gold),
        "ece, temperature fitted to label model": _ece(_tempered(end, proba, em_proba), gold),
        "fit seconds": seconds,
    }


def _tempered(end, proba: np.ndarray, em_proba: np.ndarray) -> np.ndarray:
    """``em_proba`` under the temperature ``calibration="temperature"`` would fit: the one
    that best matches the out-of-fold predictions of the training rows to the label model's
    probabilities (the default, without gold, keeps the classifier's own)."""
    from enrich.models.end_model import _fit_temperature, _softmax

    rows = end.train_mask_
    temperature = _fit_temperature(np.log(np.maximum(end.oof_proba_[rows], 1e-300)), proba[rows])
    return _softmax(np.log(np.maximum(em_proba, 1e-300)) / temperature)


def _ece(proba: np.ndarray, gold: np.ndarray, n_bins: int = 10) -> float:
    from enrich.analysis.gold import benchmark

    return float(benchmark(gold, proba=proba, n_bins=n_bins).ece)


FILTERS = ("low_self_confidence", "prune_by_noise_rate", "both", "predicted_neq_given")


def planted_errors(task: Task, *, seed: int) -> list[dict[str, float]]:
    """Flip ``FLIP_SHARE`` of the train gold; how well cleanlab on the end model's
    out-of-fold probabilities finds the flips, with each rule of :data:`FILTERS`."""
    from enrich.analysis.label_errors import find_label_errors
    from enrich.models.end_model import EndModel
    from enrich.models.label_model import LabelModel

    rng = np.random.default_rng(seed)
    gold = task.train.gold.copy()
    k = len(task.train.class_names)
    flipped = rng.choice(gold.size, round(FLIP_SHARE * gold.size), replace=False)
    gold[flipped] = (gold[flipped] + rng.integers(1, k, flipped.size)) % k
    label_model = LabelModel(cardinality=k, random_state=seed).fit(task.train.votes)
    proba = label_model.predict_proba(task.train.votes)
    end = EndModel(random_state=seed).fit(task.X_train, proba, votes=task.train.votes, gold=gold)
    out = []
    for filter_by in FILTERS:
        errors = find_label_errors(gold, end.oof_proba_, filter_by=filter_by)
        found = set(errors.table["asset_id"].to_list())
        hits = len(found & set(flipped.tolist()))
        out.append(
            {
                "filter_by": filter_by,
                "flipped": int(flipped.size),
                "flagged": len(found),
                "precision": hits / max(len(found), 1),
                "recall": hits / flipped.size,
            }
        )
    return out


DRIFTS = (0.01, 0.05, 0.10, 0.20)


def kept_vs_retrained(task: Task, *, seed: int) -> list[dict[str, float]]:
    """What keeping a model costs when its training sample has drifted by a share ``d``.

    The nightly job keeps its end model until the training sample moved past
    ``retrain_after``. Here the kept model trains on a random 80% of the voted train rows; the
    retrained one on that sample with a share ``d`` of its rows replaced by voted rows outside
    it. Both are scored on the test split, with the share of test labels they agree on.
    """
    from enrich.models.end_model import EndModel
    from enrich.models.label_model import LabelModel

    k = len(task.train.class_names)
    votes = task.train.votes
    proba = LabelModel(cardinality=k, random_state=0).fit(votes).predict_proba(votes)
    voted = np.flatnonzero((votes >= 0).any(axis=1))
    order = np.random.default_rng(seed).permutation(voted)
    n_kept = int(0.8 * order.size)
    sample, pool = order[:n_kept], order[n_kept:]

    def fit(rows: np.ndarray):
        return EndModel(cv=None, random_state=seed).fit(task.X_train[rows], proba[rows])

    kept = fit(sample).predict_proba(task.X_scored)
    out = []
    for drift in DRIFTS:
        m = round(drift * n_kept)
        if m > pool.size:
            continue
        retrained = fit(np.concatenate([sample[m:], pool[:m]])).predict_proba(task.X_scored)
        out.append(
            {
                "set": task.name.split(" ")[0],
                "seed": seed,
                "drift": drift,
                "kept": _score(task, kept.argmax(axis=1)),
                "retrained": _score(task, retrained.argmax(axis=1)),
                "same label": float((kept.argmax(axis=1) == retrained.argmax(axis=1)).mean()),
                "max proba move": float(np.abs(kept - retrained).max()),
            }
        )
    return out


def drift_main(vec, seeds) -> None:
    """``--drift``: kept vs retrained end model on youtube, trec and sentiment."""
    tasks = [t for t in wrench_tasks(vec) if t.scored is not None]
    rows = []
    for seed in seeds:
        for task in [*tasks, sentiment_task(vec, seed=0)]:
            rows += kept_vs_retrained(task, seed=seed)
            print(rows[-1], flush=True)
    table = (
        pl.DataFrame(rows)
        .group_by("set", "drift", maintain_order=True)
        .agg(pl.col("kept", "retrained", "same label").mean(), pl.col("max proba move").max())
    )
    with pl.Config(tbl_rows=50, float_precision=3):
        print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=".cache/embeddings", help="embedding cache folder")
    parser.add_argument("--seeds", type=int, default=len(SEEDS), help="seeds for sms, sentiment")
    parser.add_argument(
        "--drift", action="store_true", help="only: kept vs retrained model as the sample drifts"
    )
    args = parser.parse_args()
    embed = encoder(args.cache)

    def vec(texts: list[str]) -> np.ndarray:
        return np.asarray(embed.encode(texts, progress=False), dtype=np.float64)

    if args.drift:
        drift_main(vec, SEEDS[: args.seeds])
        return
    seeds = SEEDS[: args.seeds]
    rows = []
    base = wrench_tasks(vec)
    # youtube and trec: the test accuracy does not depend on the seed (it only moves folds)
    runs = [(t, seeds[0]) for t in base if t.name in ("youtube", "trec")]
    runs += [(t, s) for t in base if t.name == "sms" for s in seeds]
    runs += [(sentiment_task(vec, seed=s), s) for s in seeds]
    for task, seed in runs:
        result = ours(task, seed=seed)
        result["snorkel label model"], result["snorkel + same classifier"] = peer(task, seed=seed)
        rows.append({"set": task.name.split(" ")[0], "seed": seed, "metric": task.metric, **result})
        print(rows[-1], flush=True)
    table = (
        pl.DataFrame(rows)
        .group_by("set", "metric", maintain_order=True)
        .agg(pl.len().alias("seeds"), pl.exclude("seed", "set", "metric").mean())
    )
    with pl.Config(tbl_rows=20, tbl_cols=20, float_precision=3, tbl_width_chars=200):
        print(table)
        print(
            table.select(
                pl.col(
                    "label model",
                    "end model",
                    "end model (soft)",
                    "end model (hard)",
                    "snorkel + same classifier",
                ).mean()
            )
        )
    planted = [
        {"set": task.name, "seed": seed, **row}
        for task in base
        if task.name in ("youtube", "trec")
        for seed in seeds
        for row in planted_errors(task, seed=seed)
    ]
    summary = (
        pl.DataFrame(planted)
        .group_by("set", "filter_by", maintain_order=True)
        .agg(
            pl.len().alias("seeds"),
            pl.col("flipped", "flagged").mean(),
            pl.col("precision").mean(),
            pl.col("precision").std().alias("precision sd"),
            pl.col("recall").mean(),
            pl.col("recall").std().alias("recall sd"),
        )
    )
    with pl.Config(tbl_rows=20, tbl_cols=20, float_precision=3, tbl_width_chars=200):
        print(summary)


if __name__ == "__main__":
    main()
