"""Speed and peak memory of enrich's label models against Snorkel's, in one run.

Run: ``.venv/bin/python -m benchmarks.label_model_speed`` (a few minutes: Snorkel's 50-class
case dominates); ``--repeats 3`` runs every (model, size) three times, interleaved, and reports
the fastest; ``--cases 1000000`` runs only that size. Every (model, size) pair runs in a fresh
subprocess, which builds the same seeded vote matrix, imports its model, then times
``fit(L)`` + ``predict_proba(L)`` (each is also reported alone: a first call in a fresh
process, as a user's script makes it); peak RSS is that process's ``ru_maxrss`` (it includes
the vote matrix, identical for both models; the "added" column is the peak minus the RSS
measured just before fitting). The machine's load average is printed before and after: on a
shared machine only the ratios of one run compare.

The votes are simulated: each LF fires on a share of rows drawn from U(0.1, 0.6), independently
of the class, and is right with a probability drawn from U(0.55, 0.9), otherwise it votes a
uniformly drawn wrong class. Every row is a distinct pattern at these sizes, so nothing is won
by compression; ``LabelModel`` fits on its default ``max_fit_rows=50_000`` sample and scores
every row.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

CASES = [
    # (n rows, n LFs, k classes, models)
    (1_000_000, 20, 2, ("LabelModel", "Snorkel", "MajorityVote", "SnorkelMajority")),
    (100_000, 100, 2, ("LabelModel", "Snorkel")),
    (50_000, 50, 50, ("LabelModel", "Snorkel")),
]


def simulate(n: int, m: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    votes = np.full((n, m), -1, dtype=np.int64)
    for j in range(m):
        fire = rng.random(n) < rng.uniform(0.1, 0.6)
        right = rng.random(n) < rng.uniform(0.55, 0.9)
        wrong = (y + rng.integers(1, k, n)) % k
        votes[:, j] = np.where(fire, np.where(right, y, wrong), -1)
    return votes, y


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def child(model_name: str, n: int, m: int, k: int) -> dict:
    votes, y = simulate(n, m, k)
    if model_name == "LabelModel":
        from enrich.models.label_model import LabelModel

        model = LabelModel(cardinality=k, random_state=0)
    elif model_name == "MajorityVote":
        from enrich.models.majority_vote import MajorityVote

        model = MajorityVote(cardinality=k)
    elif model_name == "Snorkel":
        from snorkel.labeling.model import LabelModel as SnorkelLM

        model = SnorkelLM(cardinality=k, verbose=False)
    else:
        from snorkel.labeling.model import MajorityLabelVoter

        model = MajorityLabelVoter(cardinality=k)
    before = _rss_mib()
    start = time.perf_counter()
    if model_name == "Snorkel":
        model.fit(votes, progress_bar=False, seed=0)
    elif model_name != "SnorkelMajority":
        model.fit(votes)
    fitted = time.perf_counter()
    proba = model.predict_proba(votes)
    seconds = time.perf_counter() - start
    peak = _rss_mib()
    return {
        "seconds": seconds,
        "fit_seconds": fitted - start,
        "predict_seconds": seconds - (fitted - start),
        "peak_mib": peak,
        "added_mib": peak - before,
        "nan_rows": int((~np.isfinite(proba).all(axis=1)).sum()),
        "accuracy": float(np.mean(np.nanargmax(np.nan_to_num(proba, nan=-1.0), axis=1) == y)),
    }


def run_child(model_name: str, n: int, m: int, k: int) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.label_model_speed", "--child", model_name]
    cmd += [str(n), str(m), str(k)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--child", nargs=4, metavar=("MODEL", "N", "M", "K"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="runs of each (model, size), interleaved across models; the fastest is reported "
        "(on a shared machine the minimum is the least disturbed measurement)",
    )
    parser.add_argument(
        "--cases", default="all", help="'all' or comma-separated row counts, e.g. 1000000"
    )
    args = parser.parse_args(argv)
    if args.child:
        name, n, m, k = args.child
        print(json.dumps(child(name, int(n), int(m), int(k))))
        return
    cases = CASES
    if args.cases != "all":
        wanted = {int(x) for x in args.cases.split(",")}
        cases = [case for case in CASES if case[0] in wanted]
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = []
    for n, m, k, names in cases:
        runs: dict[str, list[dict]] = {name: [] for name in names}
        for _ in range(max(1, args.repeats)):
            for name in names:
                runs[name].append(run_child(name, n, m, k))
        results = {name: min(found, key=lambda r: r["seconds"]) for name, found in runs.items()}
        rows.append((n, m, k, results))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print("## Label model speed and memory (fit + predict_proba, fresh process each)\n")
    print(
        "| votes (rows x LFs x classes) | model | seconds | fit s | predict_proba s | "
        "peak RSS MiB | added MiB | NaN rows | accuracy | speed-up vs Snorkel |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n, m, k, results in rows:
        for name, r in results.items():
            peer = "Snorkel" if name in ("LabelModel", "Snorkel") else "SnorkelMajority"
            ratio = results[peer]["seconds"] / r["seconds"]
            label = {
                "LabelModel": "enrich LabelModel",
                "Snorkel": "Snorkel LabelModel",
                "MajorityVote": "enrich MajorityVote",
                "SnorkelMajority": "Snorkel MajorityLabelVoter",
            }[name]
            print(
                f"| {n:,} x {m} x {k} | {label} | {r['seconds']:.3f} | "
                f"{r['fit_seconds']:.3f} | {r['predict_seconds']:.3f} | {r['peak_mib']:.0f} | "
                f"{r['added_mib']:.0f} | {r['nan_rows']} | {r['accuracy']:.3f} | "
                f"{ratio:.1f}x |"
            )


if __name__ == "__main__":
    main()
