"""Does filling gaps help? fill_gaps vs random picks of the same budget, on real data.

Each scenario starts from a small labeled set in which one class or one slice is starved,
adds ``budget`` assets from the unlabeled pool -- chosen by :func:`enrich.fill_gaps` on the
gaps :func:`enrich.find_gaps` reports, or chosen at random -- labels them with their true
labels (an oracle annotator), trains a scikit-learn ``LogisticRegression`` on the embeddings
of the labeled assets and scores it on held-out data: the worst per-class F1 (class
scenarios) or the worst per-slice macro F1 (slice scenarios). Mean and standard deviation
over ``--seeds`` seeds (each seed redraws the held-out split, the labeled set and the random
picks). Issue 4's target: fill_gaps >= 5 points better than random.

Two classifiers are reported: ``LogisticRegression()`` with scikit-learn's defaults, and the
same with ``class_weight="balanced"``, which by itself offsets much of a starved class's
handicap. Also shown: the starting labeled set alone ("start"), and an "unstarved
reference" -- the same recipe with the starved class or slice given as many labels as the
others and nothing added -- which shows how much of the gap there was to close.
``find_gaps`` runs with ``min_confident`` equal to the per-group count, so the starved group
is the only gap; ``fill_gaps`` runs with its defaults.

Data (real, no download):

- YouTube: the bundled UCI YouTube Spam comments (1,953), embedded with the bundled MiniLM
  (``embeddings.text.TextEncoder``); slice ``video``; classes HAM / SPAM.
- MNIST: ``mnist_t10k`` from the shared data folder (10,000 digits), embedded with
  ``embeddings.image.HogPcaImageEncoder`` (64 dims, fitted on the images).

The label model's confidence that ``fill_gaps`` uses for uncertainty is stood in for by the
classifier trained on the starting labeled set (its top class probability on each pool
asset). The shared data folder is ``$ENRICH_SHARED_DATA`` or ``../shared/data`` beside the
repository.

Run from the repository root (about 2-6 minutes on 2 shared cores, most of it MiniLM)::

    .venv/bin/python -m benchmarks.gap_filling
    .venv/bin/python -m benchmarks.gap_filling --seeds 5 --scenarios mnist-digit
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from benchmarks._data import data_root
from embeddings.index import VectorIndex
from enrich.curation.gap_filling import fill_gaps
from enrich.curation.gaps import find_gaps

TARGET_POINTS = 5.0
SCENARIOS = ("youtube-video", "youtube-class", "mnist-digit")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- data --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dataset:
    name: str
    vectors: np.ndarray  # (n, dim) float32, unit rows
    y: np.ndarray  # (n,) int class ids
    classes: tuple[str, ...]
    slices: np.ndarray | None  # (n,) slice value per asset, or None
    slice_column: str | None


def youtube(cache: Path | None) -> Dataset:
    from enrich.datasets import YOUTUBE_SPAM_CLASSES, load_youtube_spam

    data = load_youtube_spam()

    def encode() -> np.ndarray:
        from embeddings.text import TextEncoder

        return TextEncoder().encode(data["text"].to_list(), progress=False)

    vectors = _cached(cache, "youtube-minilm.npy", encode)
    return Dataset(
        "YouTube (MiniLM)",
        vectors,
        data["label"].to_numpy().astype(np.int64),
        YOUTUBE_SPAM_CLASSES,
        data["video"].to_numpy(),
        "video",
    )


def mnist(cache: Path | None) -> Dataset:
    folder = data_root() / "mnist_t10k"
    images = np.load(folder / "X_test_28x28_uint8.npy")
    y = np.load(folder / "y_test.npy").astype(np.int64)

    def encode() -> np.ndarray:
        from embeddings.image import HogPcaImageEncoder

        encoder = HogPcaImageEncoder(n_components=64).fit(images)
        return encoder.encode(images, progress=False)

    vectors = _cached(cache, "mnist-hogpca64.npy", encode)
    return Dataset(
        "MNIST t10k (HOG+PCA 64)", vectors, y, tuple(str(d) for d in range(10)), None, None
    )


def _cached(cache: Path | None, name: str, make: Callable[[], np.ndarray]) -> np.ndarray:
    path = None if cache is None else cache / name
    if path is not None and path.is_file():
        return np.load(path)
    started = time.perf_counter()
    vectors = np.asarray(make(), dtype=np.float32)
    log(f"  embedded {name} in {time.perf_counter() - started:.0f} s")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
    return vectors


# -- one scenario ------------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    key: str
    dataset: Callable[[Path | None], Dataset]
    starve: Literal["class", "slice"]
    starved_value: str
    per_group: int  # labeled assets per class (class scenarios) or per slice
    starved_count: int  # labeled assets kept for the starved class / slice
    budget: int
    test_size: float


def _split(ds: Dataset, rng: np.random.Generator, test_size: float) -> tuple[np.ndarray, ...]:
    """Held-out and training rows, stratified by class (and slice)."""
    strata = ds.y.astype(str) if ds.slices is None else np.char.add(ds.y.astype(str), ds.slices)
    test, train = [], []
    for value in np.unique(strata):
        rows = rng.permutation(np.flatnonzero(strata == value))
        cut = round(len(rows) * test_size)
        test.append(rows[:cut])
        train.append(rows[cut:])
    return np.sort(np.concatenate(test)), np.sort(np.concatenate(train))


def _labeled_set(
    sc: Scenario, ds: Dataset, train: np.ndarray, rng: np.random.Generator, *, starved: int
) -> np.ndarray:
    """``per_group`` training rows of every class (or slice), ``starved`` of the starved one."""
    groups = np.array(ds.classes, dtype=object)[ds.y] if sc.starve == "class" else ds.slices
    if groups is None:
        raise ValueError(f"{sc.key}: a slice scenario needs a data set with slices")
    picked = []
    for value in np.unique(groups[train]):
        rows = train[groups[train] == value]
        n = starved if value == sc.starved_value else sc.per_group
        picked.append(rng.choice(rows, min(n, len(rows)), replace=False))
    return np.sort(np.concatenate(picked))


#: The classifiers compared: scikit-learn's defaults, and the same with balanced class weights
#: (which already offsets part of a starved class's handicap).
CLASSIFIERS: dict[str, str | None] = {"LR": None, "LR balanced": "balanced"}


def _classifier(vectors: np.ndarray, y: np.ndarray, seed: int, class_weight: str | None):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(class_weight=class_weight, max_iter=3000, random_state=seed).fit(
        vectors, y
    )


def _scores(
    sc: Scenario,
    ds: Dataset,
    rows: np.ndarray,
    test: np.ndarray,
    seed: int,
    class_weight: str | None,
) -> dict[str, float]:
    """Worst-class F1, worst-slice macro F1 and the starved group's F1 on the held-out rows."""
    from sklearn.metrics import f1_score

    model = _classifier(ds.vectors[rows], ds.y[rows], seed, class_weight)
    pred = model.predict(ds.vectors[test])
    truth = ds.y[test]
    per_class = f1_score(
        truth, pred, labels=np.arange(len(ds.classes)), average=None, zero_division=0.0
    )
    out = {"worst_class": float(per_class.min())}
    if ds.slices is not None:
        values = ds.slices[test]
        per_slice = {
            v: float(
                f1_score(truth[values == v], pred[values == v], average="macro", zero_division=0.0)
            )
            for v in np.unique(values)
        }
        out["worst_slice"] = min(per_slice.values())
        if sc.starve == "slice":
            out["starved"] = per_slice[sc.starved_value]
    if sc.starve == "class":
        out["starved"] = float(per_class[ds.classes.index(sc.starved_value)])
    return out


def run_seed(
    sc: Scenario, ds: Dataset, seed: int, class_weight: str | None
) -> dict[str, dict[str, float]]:
    """One seed: split, starve, fill (fill_gaps and random), train and score."""
    rng = np.random.default_rng(seed)
    test, train = _split(ds, rng, sc.test_size)
    labeled = _labeled_set(sc, ds, train, rng, starved=sc.starved_count)
    pool_rows = np.setdiff1d(train, labeled)

    # asset ids are the data set's row numbers, and serve as the index ids
    names = np.array(ds.classes, dtype=object)[ds.y]
    labels = pl.DataFrame(
        {
            "asset_id": labeled.astype(np.int64),
            "label_name": names[labeled].astype(str),
            "confidence": np.ones(len(labeled)),  # hand labels
        }
    )
    start_model = _classifier(ds.vectors[labeled], ds.y[labeled], seed, class_weight)
    pool = pl.DataFrame(
        {
            "asset_id": pool_rows.astype(np.int64),
            # stands in for the label model's confidence
            "confidence": start_model.predict_proba(ds.vectors[pool_rows]).max(axis=1),
        }
    )
    if ds.slices is not None and ds.slice_column is not None:
        labels = labels.with_columns(pl.Series(ds.slice_column, ds.slices[labeled].astype(str)))
        pool = pool.with_columns(pl.Series(ds.slice_column, ds.slices[pool_rows].astype(str)))

    index = VectorIndex(ds.vectors.shape[1], kind="flat")
    index.add(train.astype(np.int64), ds.vectors[train])
    slices = [ds.slice_column] if sc.starve == "slice" and ds.slice_column else []
    gaps = find_gaps(labels, slices=slices, classes=ds.classes, min_confident=sc.per_group)
    filled = fill_gaps(gaps, index, pool, sc.budget, random_state=seed).asset_ids.to_numpy()
    random = rng.choice(pool_rows, sc.budget, replace=False)
    unstarved = _labeled_set(sc, ds, train, np.random.default_rng([seed, 1]), starved=sc.per_group)
    return {
        "fill": _scores(sc, ds, np.concatenate([labeled, filled]), test, seed, class_weight),
        "random": _scores(sc, ds, np.concatenate([labeled, random]), test, seed, class_weight),
        "start": _scores(sc, ds, labeled, test, seed, class_weight),
        "unstarved": _scores(sc, ds, unstarved, test, seed, class_weight),
        "share": {"fill": _hit_rate(sc, ds, filled), "random": _hit_rate(sc, ds, random)},
    }


def _hit_rate(sc: Scenario, ds: Dataset, rows: np.ndarray) -> float:
    """Share of the added assets that belong to the starved class or slice."""
    if not len(rows):
        return float("nan")
    if sc.starve == "class" or ds.slices is None:
        return float(np.mean(ds.y[rows] == ds.classes.index(sc.starved_value)))
    return float(np.mean(ds.slices[rows] == sc.starved_value))


def scenarios() -> dict[str, Scenario]:
    """The three scenarios (fixed before measuring; budget 40 each)."""
    return {
        "youtube-video": Scenario("youtube-video", youtube, "slice", "Psy", 30, 3, 40, 0.4),
        "youtube-class": Scenario("youtube-class", youtube, "class", "SPAM", 60, 3, 40, 0.4),
        "mnist-digit": Scenario("mnist-digit", mnist, "class", "8", 20, 2, 40, 0.3),
    }


# -- report ------------------------------------------------------------------------------
def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def _cell(values: Sequence[float]) -> str:
    mean, sd = _mean_sd(values)
    return f"{mean:.3f} ± {sd:.3f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds per scenario (>= 5)")
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help=f"comma-separated, from {SCENARIOS}"
    )
    parser.add_argument(
        "--cache", type=Path, default=None, help="folder to keep the embeddings between runs"
    )
    args = parser.parse_args(argv)
    if args.seeds < 5:
        parser.error(f"--seeds must be at least 5, got {args.seeds}")
    chosen = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    table = scenarios()
    unknown = [s for s in chosen if s not in table]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; choose from {list(SCENARIOS)}")
    started = time.perf_counter()
    datasets: dict[str, Dataset] = {}
    lines = [
        "| dataset | starved | labeled set | budget | classifier | metric | start | "
        "fill_gaps | random | difference (points) | target met? | starved share of picks "
        "(fill / random) | starved group's F1 (fill / random) | unstarved reference |",
        "|---|---|---|---:|---|---|---:|---:|---:|---:|---|---|---|---:|",
    ]
    for key in chosen:
        sc = table[key]
        loader = sc.dataset.__name__
        if loader not in datasets:
            log(f"loading {loader} ...")
            datasets[loader] = sc.dataset(args.cache)
        ds = datasets[loader]
        metric = "worst_slice" if sc.starve == "slice" else "worst_class"
        column = ds.slice_column if sc.starve == "slice" else "class"
        group = "slice" if sc.starve == "slice" else "class"
        for clf_name, class_weight in CLASSIFIERS.items():
            log(f"{key}, {clf_name}: {args.seeds} seeds")
            runs = [run_seed(sc, ds, seed, class_weight) for seed in range(args.seeds)]

            def values(arm: str, name: str, runs=runs) -> list[float]:
                return [r[arm][name] for r in runs]

            fill, rand = values("fill", metric), values("random", metric)
            diff = _mean_sd([100 * (f - r) for f, r in zip(fill, rand, strict=True)])
            lines.append(
                f"| {ds.name} | {column}={sc.starved_value} | {sc.per_group} per {group}, "
                f"{sc.starved_count} for {sc.starved_value} | {sc.budget} | {clf_name} | "
                f"{metric.replace('_', '-')} F1 | {_cell(values('start', metric))} | "
                f"{_cell(fill)} | {_cell(rand)} | "
                f"{diff[0]:+.1f} ± {diff[1]:.1f} | "
                f"{'yes' if diff[0] >= TARGET_POINTS else 'no'} | "
                f"{_mean_sd(values('share', 'fill'))[0]:.0%} / "
                f"{_mean_sd(values('share', 'random'))[0]:.0%} | "
                f"{_mean_sd(values('fill', 'starved'))[0]:.3f} / "
                f"{_mean_sd(values('random', 'starved'))[0]:.3f} | "
                f"{_mean_sd(values('unstarved', metric))[0]:.3f} |"
            )
            log(lines[-1])
    print(
        f"{args.seeds} seeds per row; Python {platform.python_version()}; "
        f"{time.perf_counter() - started:.0f} s\n"
    )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
