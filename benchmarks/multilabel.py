"""Multi-label and multi-task label models against majority vote and Snorkel, per label.

Data with real gold labels, each split in two: the label models are fitted on the votes of
the *fit* part and scored on the *held-out* part (never seen while fitting).

- ``mnist``: the attributes of handwritten digits -- ``even``, ``at_least_five`` and
  ``closed_loop`` (0, 4, 6, 8, 9) -- from the MNIST test set's gold digits. LFs over pixels
  (enclosed holes found by flood fill, ink and shape features, as polars expressions) and over
  embeddings (``HogPcaImageEncoder``): "looks like digit d" prototype LFs that vote for and
  against each attribute of d, and nearest-neighbour LFs over a few labeled references with
  label sets. Three datasets: the 2,000 digits bundled with enrich, 6,000 other MNIST test
  digits (``/work/shared/data/mnist_t10k``, the bundled rows left out) and scikit-learn's
  1,797 8x8 digits (upscaled to 28x28). Several seeds draw the references and the split.
- ``youtube``: two named tasks over the 1,953 UCI YouTube comments -- spam (HAM/SPAM, the
  ``youtube_spam`` LF pack) and which of the five videos a comment belongs to (keyword LFs
  naming each artist and song) -- scored per task (F1 of SPAM; macro F1 over the videos).

Peers in the same run: majority vote per label (a label is present where more LFs vote for
it than against; ties and no votes: absent), Snorkel 0.10's ``LabelModel`` fitted one label
at a time (as a binary task over the same per-label vote matrix), and enrich's
``MultiLabelModel`` (per-label ``LabelModel``).

Run from the repository root::

    .venv/bin/python -m benchmarks.multilabel            # all sets, 3 seeds
    .venv/bin/python -m benchmarks.multilabel --quick    # bundled digits + youtube, 1 seed
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

import enrich
from benchmarks._data import data_root
from enrich.analysis.multilabel import multilabel_scores
from enrich.models.multilabel import MultiLabelModel
from enrich.multilabel_votes import MultiLabelVoteMatrix
from enrich.tasks import Task
from labeling_functions import (
    Against,
    expression_lf,
    keyword_lf,
    nearest_neighbor_lf,
    prototype_lf,
)

DIGIT_ATTRIBUTES = ("even", "at_least_five", "closed_loop")
CLOSED_LOOP_DIGITS = frozenset({0, 4, 6, 8, 9})
DIGIT_TASK = Task.multilabel(DIGIT_ATTRIBUTES, name="digit")


def digit_attributes(digits: np.ndarray) -> np.ndarray:
    """Gold label sets of digits as an int8 array (n, 3): even, at_least_five, closed_loop."""
    digits = np.asarray(digits).astype(int)
    return np.stack(
        [digits % 2 == 0, digits >= 5, np.isin(digits, sorted(CLOSED_LOOP_DIGITS))], axis=1
    ).astype(np.int8)


def attribute_set(digit: int) -> tuple[str, ...]:
    """The attribute names a digit has."""
    row = digit_attributes(np.array([digit]))[0]
    return tuple(name for name, has in zip(DIGIT_ATTRIBUTES, row, strict=True) if has)


def attribute_votes(digit: int) -> tuple[Any, ...]:
    """What "this looks like ``digit``" says about each attribute: for or Against."""
    have = set(attribute_set(digit))
    return tuple(name if name in have else Against(name) for name in DIGIT_ATTRIBUTES)


def pixel_features(images: np.ndarray) -> pl.DataFrame:
    """Shape features of 28x28 uint8 digit images, as table columns for expression LFs.

    ``holes``: background regions (flood fill, 4-connected, of pixels under half ink) that do
    not touch the border, at least 4 pixels; ``hole_row``: the mean row of the largest hole
    (0 top .. 1 bottom; -1 without hole); ``ink``: share of inked pixels; ``top_ink``: share
    of the ink in the top half; ``width``/``height``: the bounding box of the ink.
    """
    from scipy import ndimage

    ink = images >= 128
    n = len(images)
    holes = np.zeros(n, dtype=np.int64)
    hole_row = np.full(n, -1.0)
    width = np.zeros(n, dtype=np.int64)
    height = np.zeros(n, dtype=np.int64)
    for i in range(n):
        regions, count = ndimage.label(~ink[i])
        border = set(np.unique(np.concatenate([regions[0], regions[-1], regions[:, 0],
                                               regions[:, -1]])).tolist())  # fmt: skip
        sizes = ndimage.sum_labels(np.ones_like(regions), regions, range(count + 1))
        inner = [r for r in range(1, count + 1) if r not in border and sizes[r] >= 4]
        holes[i] = len(inner)
        if inner:
            largest = max(inner, key=lambda r: sizes[r])
            hole_row[i] = np.nonzero(regions == largest)[0].mean() / 27.0
        rows, cols = np.nonzero(ink[i])
        if len(rows):
            height[i] = rows.max() - rows.min() + 1
            width[i] = cols.max() - cols.min() + 1
    total = ink.sum(axis=(1, 2))
    top = ink[:, :14].sum(axis=(1, 2))
    return pl.DataFrame(
        {
            "holes": holes,
            "hole_row": hole_row,
            "ink": total / (28 * 28),
            "top_ink": top / np.maximum(total, 1),
            "width": width,
            "height": height,
        }
    )


def digit_lfs(
    vectors: np.ndarray,
    digits: np.ndarray,
    references: np.ndarray,
    *,
    prototype_threshold: float = 0.75,
) -> list[Any]:
    """The digit-attribute LFs: pixel expressions, digit prototypes and nearest neighbours.

    ``references`` are the positions of the few labeled digits (their gold digit is used by
    the prototype and nearest-neighbour LFs only; they are scored like every other row).
    """
    col = pl.col
    lfs: list[Any] = [
        expression_lf("has_hole", col("holes") >= 1, label="closed_loop"),
        expression_lf("no_hole", col("holes") == 0, label=Against("closed_loop")),
        expression_lf("two_holes", col("holes") >= 2, label=("even", "at_least_five")),
        expression_lf(
            "low_hole", (col("holes") == 1) & (col("hole_row") > 0.55), label="closed_loop"
        ),
        expression_lf("thin", col("width") <= 8, label=(Against("even"), Against("at_least_five"))),
        expression_lf("top_heavy", col("top_ink") > 0.62, label="at_least_five"),
    ]
    for d in range(10):
        examples = vectors[references[digits[references] == d]]
        if len(examples):
            lfs.append(
                prototype_lf(
                    f"looks_like_{d}",
                    examples,
                    label=attribute_votes(d),
                    threshold=prototype_threshold,
                )
            )
    reference_sets = [attribute_set(int(d)) for d in digits[references]]
    lfs.append(
        nearest_neighbor_lf(
            "knn_5",
            vectors[references],
            reference_sets,
            reference_ids=references.tolist(),
            id_column="asset_id",
            k=5,
            min_agreement=0.8,
        )
    )
    return lfs


@dataclass(frozen=True)
class DigitSet:
    """Digit images with gold digits."""

    name: str
    images: np.ndarray
    digits: np.ndarray


def load_digit_sets(names: Sequence[str]) -> list[DigitSet]:
    """The digit datasets by name: ``bundled``, ``mnist_other``, ``sklearn8x8``."""
    out = []
    for name in names:
        if name == "bundled":
            sample = enrich.datasets.load_mnist_sample()
            out.append(DigitSet(name, sample.images, sample.labels.astype(int)))
        elif name == "mnist_other":
            root = data_root() / "mnist_t10k"
            images = np.load(root / "X_test_28x28_uint8.npy")
            digits = np.load(root / "y_test.npy").astype(int)
            bundled = set(enrich.datasets.load_mnist_sample().rows.tolist())
            keep = np.array([i for i in range(len(images)) if i not in bundled])[:6000]
            out.append(DigitSet(name, images[keep], digits[keep]))
        elif name == "sklearn8x8":
            from scipy import ndimage
            from sklearn.datasets import load_digits

            raw = load_digits()
            small = raw.images / 16.0
            big = np.stack([ndimage.zoom(im, 28 / 8, order=1) for im in small])
            images = np.clip(big * 255, 0, 255).astype(np.uint8)
            out.append(DigitSet(name, images, raw.target.astype(int)))
        else:
            raise SystemExit(f"unknown digit set {name!r}; use bundled, mnist_other, sklearn8x8")
    return out


_ENCODED: dict[str, pl.DataFrame] = {}


def _encoded(digit_set: DigitSet) -> pl.DataFrame:
    """Pixel features and HOG-PCA embeddings of a digit set (computed once per set)."""
    from embeddings import HogPcaImageEncoder

    if digit_set.name not in _ENCODED:
        vectors = HogPcaImageEncoder().fit(digit_set.images).encode(digit_set.images)
        _ENCODED[digit_set.name] = pixel_features(digit_set.images).with_columns(
            pl.Series("asset_id", np.arange(len(digit_set.digits))),
            pl.Series("embedding", vectors),
        )
    return _ENCODED[digit_set.name]


def digit_votes(
    digit_set: DigitSet, seed: int, *, n_references: int = 10
) -> tuple[MultiLabelVoteMatrix, np.ndarray]:
    """Apply the digit LFs (``n_references`` labeled digits per class); votes and gold sets."""
    rng = np.random.default_rng(seed)
    digits = digit_set.digits
    references = np.concatenate(
        [rng.choice(np.flatnonzero(digits == d), n_references, replace=False) for d in range(10)]
    )
    frame = _encoded(digit_set)
    vectors = frame["embedding"].to_numpy()
    lfs = digit_lfs(vectors, digits, references)
    votes = enrich.apply(lfs, frame, task=DIGIT_TASK, progress=False)
    return votes, digit_attributes(digits)


# ---------------------------------------------------------------- YouTube: two named tasks
VIDEO_TASK = Task.multiclass(["Psy", "KatyPerry", "LMFAO", "Eminem", "Shakira"], name="video")
SPAM_TASK = Task.multiclass(["HAM", "SPAM"], name="spam")
VIDEO_KEYWORDS = {
    "Psy": ["psy", "gangnam", "oppa", "korea", "korean", "billion", "2 billion"],
    "KatyPerry": ["katy", "perry", "roar", "tiger", "katycats", "eye of the tiger"],
    "LMFAO": ["lmfao", "party rock", "shuffle", "sexy and i know it", "redfoo", "party"],
    "Eminem": ["eminem", "rihanna", "love the way you lie", "marshall", "slim shady", "rap"],
    "Shakira": ["shakira", "waka", "africa", "world cup", "football", "soccer", "2010"],
}


def youtube_votes() -> tuple[pl.DataFrame, dict[str, Any]]:
    """The YouTube comments and the votes of both tasks (spam pack; video keywords)."""
    from labeling_functions.packs import youtube_spam

    data = enrich.datasets.load_youtube_spam()
    video_lfs = [
        keyword_lf(f"video_{video}", words, label=video) for video, words in VIDEO_KEYWORDS.items()
    ]
    votes = enrich.apply_tasks(
        {SPAM_TASK: list(youtube_spam.LFS), VIDEO_TASK: video_lfs}, data, progress=False
    )
    return data, votes


# ---------------------------------------------------------------- the three models
def majority_per_label(binary: np.ndarray) -> np.ndarray:
    """Present where more LFs vote for the label than against it (ties, no votes: absent)."""
    return ((binary == 1).sum(axis=1) > (binary == 0).sum(axis=1)).astype(np.int8)


def snorkel_per_label(
    votes: MultiLabelVoteMatrix, fit: np.ndarray, test: np.ndarray, seed: int
) -> np.ndarray:
    """Snorkel's LabelModel fitted on each label's binary votes, one label at a time."""
    from enrich import SnorkelLabelModel

    out = np.zeros((len(test), len(votes.label_names)), dtype=np.int8)
    for t in range(len(votes.label_names)):
        binary = votes.for_label(t).votes
        model = SnorkelLabelModel(cardinality=2, random_state=seed).fit(binary[fit])
        out[:, t] = model.predict_proba(binary[test])[:, 1] >= 0.5
    return out


@dataclass
class Row:
    """One scored (dataset, seed, model)."""

    dataset: str
    seed: int
    model: str
    per_label: dict[str, float]
    macro_f1: float
    micro_f1: float
    subset_accuracy: float
    seconds: float


def score_digits(digit_set: DigitSet, seed: int) -> list[Row]:
    """Fit on half of the digits (seeded split), score the other half, for each model."""
    votes, gold = digit_votes(digit_set, seed)
    n = len(gold)
    order = np.random.default_rng(seed + 1000).permutation(n)
    fit, test = np.sort(order[: n // 2]), np.sort(order[n // 2 :])
    rows = []

    def record(model: str, predicted: np.ndarray, seconds: float) -> None:
        scores = multilabel_scores(gold[test], predicted, label_names=DIGIT_ATTRIBUTES)
        rows.append(
            Row(
                digit_set.name,
                seed,
                model,
                dict(zip(DIGIT_ATTRIBUTES, scores.per_label["f1"].to_list(), strict=True)),
                scores.macro_f1,
                scores.micro_f1,
                scores.subset_accuracy,
                seconds,
            )
        )

    start = time.perf_counter()
    majority = np.stack(
        [majority_per_label(votes.for_label(t).votes[test]) for t in DIGIT_ATTRIBUTES], axis=1
    )
    record("majority vote per label", majority, time.perf_counter() - start)
    start = time.perf_counter()
    snorkel = snorkel_per_label(votes, fit, test, seed)
    record("Snorkel per label", snorkel, time.perf_counter() - start)
    start = time.perf_counter()
    model = MultiLabelModel(random_state=seed).fit(votes.take(fit))
    record("enrich MultiLabelModel", model.predict(votes.take(test)), time.perf_counter() - start)
    for label, options in [
        ("expected-F1 thresholds", {"thresholds": "f1"}),
        ("labels independent", {"cooccurrence": False}),
        ("independent, expected-F1 thresholds", {"cooccurrence": False, "thresholds": "f1"}),
    ]:
        start = time.perf_counter()
        variant = MultiLabelModel(random_state=seed, **options).fit(votes.take(fit))
        record(
            f"enrich MultiLabelModel, {label}",
            variant.predict(votes.take(test)),
            time.perf_counter() - start,
        )
    return rows


def score_youtube(seed: int) -> list[Row]:
    """Both YouTube tasks: fit on half of the comments, score the other half."""
    from sklearn.metrics import f1_score

    from enrich import LabelModel, MajorityVote, SnorkelLabelModel

    data, votes = youtube_votes()
    n = data.height
    order = np.random.default_rng(seed + 1000).permutation(n)
    fit, test = np.sort(order[: n // 2]), np.sort(order[n // 2 :])
    gold = {
        "spam": data["label"].to_numpy().astype(int),
        "video": np.array([VIDEO_TASK.to_id(v) for v in data["video"].to_list()]),
    }
    models: dict[str, Callable[[int], Any]] = {
        "majority vote per label": lambda k: MajorityVote(cardinality=k),
        "Snorkel per label": lambda k: SnorkelLabelModel(cardinality=k, random_state=seed),
        "enrich LabelModel per task": lambda k: LabelModel(cardinality=k, random_state=seed),
    }
    rows = []
    for model_name, make in models.items():
        start = time.perf_counter()
        scores = {}
        for task in (SPAM_TASK, VIDEO_TASK):
            L = np.asarray(votes[task.name])
            k = task.n_labels
            predicted = make(k).fit(L[fit]).predict(L[test])
            y = gold[task.name][test]
            if k == 2:
                scores[task.name] = float(f1_score(y, predicted, pos_label=1))
            else:
                scores[task.name] = float(f1_score(y, predicted, average="macro"))
        seconds = time.perf_counter() - start
        macro = float(np.mean(list(scores.values())))
        rows.append(Row("youtube", seed, model_name, scores, macro, np.nan, np.nan, seconds))
    return rows


def apply_speed(n_rows: int, *, repeats: int = 3) -> str:
    """Time the same keyword/regex LFs applied as a single-label and a multi-label task."""
    from labeling_functions.packs import youtube_spam

    texts = enrich.datasets.load_youtube_spam()["text"]
    rng = np.random.default_rng(0)
    data = pl.DataFrame({"text": texts.gather(rng.integers(0, len(texts), n_rows))})
    lfs = [
        lf
        for lf in youtube_spam.LFS
        if type(lf).__name__ in ("KeywordLF", "RegexLF", "ExpressionLF")
    ]
    task = Task.multilabel(["HAM", "SPAM"], name="spam")

    def best(run: Callable[[], Any]) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        return min(times)

    single = best(lambda: enrich.apply(lfs, data, classes=["HAM", "SPAM"], progress=False))
    multi = best(lambda: enrich.apply(lfs, data, task=task, progress=False))
    single_votes = enrich.apply(lfs, data, classes=["HAM", "SPAM"], progress=False).votes
    multi_votes = enrich.apply(lfs, data, task=task, progress=False).votes
    same = bool(
        np.array_equal(single_votes == 1, multi_votes[:, :, 1] == 1)
        and np.array_equal(single_votes == 0, multi_votes[:, :, 0] == 1)
    )
    return (
        f"| {n_rows:,} rows x {len(lfs)} vectorized LFs | {single:.3f} s | {multi:.3f} s | "
        f"{multi / single:.2f}x | {'identical' if same else 'DIFFER'} |"
    )


def markdown(rows: list[Row]) -> str:
    """Mean over seeds per dataset and model, plus the mean over datasets."""
    lines = [
        "| dataset | model | per-label F1 | macro F1 | micro F1 | subset acc. | seeds |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    datasets = list(dict.fromkeys(r.dataset for r in rows))
    models = list(dict.fromkeys(r.model for r in rows if r.dataset != "youtube"))
    for dataset in datasets:
        for model in dict.fromkeys(r.model for r in rows if r.dataset == dataset):
            chosen = [r for r in rows if r.dataset == dataset and r.model == model]
            labels = chosen[0].per_label
            per_label = ", ".join(
                f"{name} {np.mean([r.per_label[name] for r in chosen]):.3f}" for name in labels
            )
            lines.append(
                f"| {dataset} | {model} | {per_label} | "
                f"{np.mean([r.macro_f1 for r in chosen]):.3f} | "
                f"{_fmt(np.mean([r.micro_f1 for r in chosen]))} | "
                f"{_fmt(np.mean([r.subset_accuracy for r in chosen]))} | {len(chosen)} |"
            )
    digit_sets = [d for d in datasets if d != "youtube"]
    if digit_sets:
        lines.append("")
        lines.append("Mean macro F1 over the digit sets and seeds:")
        for model in models:
            chosen = [r.macro_f1 for r in rows if r.dataset in digit_sets and r.model == model]
            lines.append(f"- {model}: {np.mean(chosen):.3f}")
    return "\n".join(lines)


def _fmt(value: float) -> str:
    return "-" if np.isnan(value) else f"{value:.3f}"


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--digit-sets", default="bundled,mnist_other,sklearn8x8", help="comma-separated"
    )
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (0, 1, ...)")
    parser.add_argument("--quick", action="store_true", help="bundled digits + youtube, 1 seed")
    parser.add_argument(
        "--speed-rows", type=int, default=200_000, help="rows of the apply-speed check (0: skip)"
    )
    args = parser.parse_args(argv)
    if args.speed_rows:
        print("| apply | single-label | multi-label | ratio | fired votes |")
        print("|---|---:|---:|---:|---|")
        print(apply_speed(args.speed_rows), flush=True)
    names = ["bundled"] if args.quick else args.digit_sets.split(",")
    seeds = range(1 if args.quick else args.seeds)
    rows: list[Row] = []
    for digit_set in load_digit_sets(names):
        for seed in seeds:
            rows.extend(score_digits(digit_set, seed))
            print(f"[{digit_set.name} seed {seed}] done", flush=True)
    for seed in seeds:
        rows.extend(score_youtube(seed))
    print(markdown(rows))
    print(
        f"\nFit on one half of each set (seeded split), scored on the held-out half; "
        f"Python {platform.python_version()}."
    )


if __name__ == "__main__":
    main()
