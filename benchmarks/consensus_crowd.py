"""Consensus between human annotators on real crowd data: enrich.agreement vs majority vote
and Snorkel's LabelModel, and how well the estimated annotator reliability ranks annotators.

Data (real, no download): ``crowd/dog`` (807 images, 109 workers, 4 dog breeds, 10 answers per
image; Zhou et al., NIPS 2012) and ``crowd/product_er`` (8,315 product pairs, 176 workers, match
or not, 3 answers per pair; CrowdER, Wang et al. 2012) from the shared data folder
(``$ENRICH_SHARED_DATA`` or ``../shared/data`` beside the repository). The long-form answers
(question, worker, answer) go through :func:`enrich.annotation_matrix`; the truth
files are used for scoring only.

Reported per set, all fitted on the same annotation matrix in the same run:

- majority vote accuracy (``enrich.models.majority_vote.MajorityVote``; ties to the lowest class);
- consensus accuracy (``enrich.consensus``: ``LabelModel(lf_kind="annotator")``,
  deterministic: EM draws no random numbers);
- Snorkel 0.10 ``LabelModel`` accuracy (``enrich.models.snorkel.SnorkelLabelModel``, Snorkel's
  defaults), mean ± sd over ``--seeds`` seeds;
- Spearman correlation between each annotator's estimated reliability and their true accuracy
  (annotators with >= 10 answers; ``scipy.stats.spearmanr``), for consensus, for Snorkel
  (accuracy implied by its ``mu`` and class balance) and for the naive estimate "share of
  answers that agree with the majority vote";
- Krippendorff's alpha (nominal) and Fleiss' kappa of the answers.

Run from the repository root (about 10-60 s on 2 shared cores, most of it Snorkel)::

    .venv/bin/python -m benchmarks.consensus_crowd
    .venv/bin/python -m benchmarks.consensus_crowd --sets dog --seeds 5
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.stats import spearmanr

from benchmarks._data import CROWD_SETS, data_root
from enrich.analysis.agreement import AnnotationMatrix, annotation_matrix
from enrich.analysis.consensus import consensus
from enrich.models.majority_vote import MajorityVote
from enrich.models.snorkel import SnorkelLabelModel

MIN_ANSWERS = 10


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Row:
    name: str
    n_assets: int
    n_annotators: int
    n_answers: int
    majority: float
    consensus: float
    consensus_s: float
    snorkel: list[float]
    snorkel_s: float
    rho_consensus: float
    rho_snorkel: float
    rho_majority: float
    n_ranked: int
    alpha: float | None
    kappa: float | None
    ranking_note: str = ""


def load(name: str) -> tuple[AnnotationMatrix, np.ndarray]:
    """The annotation matrix of a crowd set and the true class of each of its assets."""
    folder = data_root() / "crowd" / name
    ids = {"question": pl.String, "worker": pl.String}
    answers = pl.read_csv(folder / "answer.csv", schema_overrides=ids)
    truth = pl.read_csv(folder / "truth.csv", schema_overrides={"question": pl.String})
    k = int(max(answers["answer"].max(), truth["truth"].max())) + 1
    matrix = annotation_matrix(
        answers,
        classes=k,
        asset_column="question",
        annotator_column="worker",
        label_column="answer",
    )
    gold = (
        pl.DataFrame({"question": matrix.asset_ids})
        .join(truth, on="question", how="left", maintain_order="left")["truth"]
        .to_numpy()
    )
    if np.isnan(gold.astype(np.float64)).any():
        raise ValueError(f"crowd/{name}: some annotated questions have no truth")
    return matrix, gold.astype(np.int64)


def true_accuracy(votes: np.ndarray, gold: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    answered = votes >= 0
    n = answered.sum(axis=0)
    right = ((votes == gold[:, None]) & answered).sum(axis=0)
    return right / np.maximum(n, 1), n


def snorkel_reliability(model: SnorkelLabelModel, m: int, k: int) -> np.ndarray:
    """``P(vote correct | votes)`` per LF from Snorkel's ``mu`` (``P(vote v | y)``) and prior."""
    mu = model.mu_.reshape(m, k, k)  # [j, v, y]
    prior = model.class_balance_
    joint = mu * prior[None, None, :]  # P(vote v, y)
    right = np.einsum("jyy->j", joint)
    return right / joint.sum(axis=(1, 2))


def spearman(estimate: np.ndarray, truth: np.ndarray, keep: np.ndarray) -> float:
    return float(spearmanr(estimate[keep], truth[keep]).statistic)


def run(name: str, seeds: int) -> Row:
    matrix, gold = load(name)
    votes = matrix.votes
    k = matrix.cardinality
    n, m = votes.shape
    log(f"crowd/{name}: {n:,} assets x {m} annotators, {int((votes >= 0).sum()):,} answers")
    accuracy, n_answers = true_accuracy(votes, gold)
    keep = n_answers >= MIN_ANSWERS

    majority = MajorityVote(cardinality=k).fit(votes).predict(votes)
    answered = votes >= 0
    agrees_with_majority = ((votes == majority[:, None]) & answered).sum(axis=0) / np.maximum(
        answered.sum(axis=0), 1
    )

    start = time.perf_counter()
    result = consensus(matrix, random_state=0)
    consensus_s = time.perf_counter() - start
    reliability = result.per_annotator["reliability"].to_numpy()

    snorkel_accuracy, snorkel_rho, snorkel_s = [], [], 0.0
    for seed in range(seeds):
        start = time.perf_counter()
        model = SnorkelLabelModel(cardinality=k, random_state=seed).fit(votes)
        predicted = model.predict(votes)
        snorkel_s += time.perf_counter() - start
        snorkel_accuracy.append(float(np.mean(predicted == gold)))
        snorkel_rho.append(spearman(snorkel_reliability(model, m, k), accuracy, keep))
    return Row(
        name=f"crowd/{name}",
        n_assets=n,
        n_annotators=m,
        n_answers=int(answered.sum()),
        majority=float(np.mean(majority == gold)),
        consensus=float(np.mean(result.labels == gold)),
        consensus_s=consensus_s,
        snorkel=snorkel_accuracy,
        snorkel_s=snorkel_s / max(seeds, 1),
        rho_consensus=spearman(reliability, accuracy, keep),
        rho_snorkel=float(np.mean(snorkel_rho)),
        rho_majority=spearman(agrees_with_majority, accuracy, keep),
        n_ranked=int(keep.sum()),
        alpha=result.alpha,
        kappa=result.fleiss_kappa,
        ranking_note=result.notes.get("reliability", ""),
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def markdown(rows: list[Row], seeds: int) -> str:
    out = [
        "| set | assets x annotators (answers) | majority vote | consensus (enrich) | "
        f"Snorkel LabelModel (mean ± sd, {seeds} seeds) | consensus - MV (points) | "
        "alpha | Fleiss' kappa |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        sd = float(np.std(r.snorkel, ddof=1)) if len(r.snorkel) > 1 else 0.0
        out.append(
            f"| {r.name} | {r.n_assets:,} x {r.n_annotators} ({r.n_answers:,}) | "
            f"{r.majority:.4f} | **{r.consensus:.4f}** | {np.mean(r.snorkel):.4f} ± {sd:.4f} | "
            f"{100 * (r.consensus - r.majority):+.1f} | {_fmt(r.alpha)} | {_fmt(r.kappa)} |"
        )
    out += [
        "",
        f"Spearman correlation between estimated reliability and true accuracy, annotators with "
        f">= {MIN_ANSWERS} answers:",
        "",
        "| set | annotators ranked | consensus (enrich) | Snorkel (from mu) | "
        "agreement with majority vote | consensus says |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r.name} | {r.n_ranked} | **{r.rho_consensus:.3f}** | {r.rho_snorkel:.3f} | "
            f"{r.rho_majority:.3f} | {r.ranking_note or 'ranking supported'} |"
        )
    out += [
        "",
        "Fit + predict time, seconds: "
        + ", ".join(
            f"{r.name} consensus {r.consensus_s:.2f}, Snorkel {r.snorkel_s:.2f}" for r in rows
        ),
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(CROWD_SETS), help="comma-separated crowd sets")
    parser.add_argument("--seeds", type=int, default=5, help="Snorkel seeds (>= 1)")
    args = parser.parse_args(argv)
    names = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = sorted(set(names) - set(CROWD_SETS))
    if unknown:
        parser.error(f"unknown set(s) {unknown}; choose from {list(CROWD_SETS)}")
    if args.seeds < 1:
        parser.error("--seeds must be >= 1")
    started = time.perf_counter()
    rows = [run(name, args.seeds) for name in names]
    print(markdown(rows, args.seeds))
    print(
        f"\nPython {platform.python_version()}, polars {pl.__version__}, numpy {np.__version__}; "
        f"{time.perf_counter() - started:.0f} s wall."
    )


if __name__ == "__main__":
    main()
