"""The nightly job at scale: a full run, then a run with 1% new assets, local and on Dask.

Builds ``--assets`` assets (default 1,000,000) in ``--files`` Parquet files: real YouTube
comment texts (the bundled UCI set, resampled with seed 0), the video as a slice column, and a
precomputed 384-d float32 embedding per asset (random normal, seed 0). The job applies 8
keyword/regex LFs to the text and one embedding prototype LF to the vectors, fits the label
model on every vote and writes the Delta table; then ``--new-fraction`` new assets arrive in
one more file and the job runs again. ``local-lean`` is the same job without gaps, review
queue or slices: what is left is the floor of a run's fixed costs. Each run is its own
process, so its peak RSS is its own; the figures are the time ``run_job`` takes (reading,
voting, fitting, writing the table, runs row and reports) and the wall time of the process.
Each run is repeated ``--repeat`` times (the incremental one from the same table the full run
left) and the median kept; pending disk writes are flushed before each.

``--end-model`` turns on ``[embeddings]`` (the precomputed vectors, in the job's index) and
``[end_model]`` with its defaults: the +new run retrains only when its training sample moved
past ``retrain_after``. It also times a +new run that retrains (``retrain_every = 1``), and
reports how many model labels the kept model and the retrained one agree on.

Run from the repository root::

    .venv/bin/python -m benchmarks.job_incremental                        # 1M assets
    .venv/bin/python -m benchmarks.job_incremental --assets 100000 --files 10   # quick check
    .venv/bin/python -m benchmarks.job_incremental --runs local --end-model    # end model on
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

DIM = 384
LFS = """
import numpy as np
from labeling_functions.builders import keyword_lf, regex_lf
from labeling_functions.embedding_lfs import prototype_lf

check_out = keyword_lf("check_out", ["check out", "check my", "look at my"], label="SPAM")
subscribe = keyword_lf("subscribe", ["subscribe", "sub4sub", "subscribers"], label="SPAM")
my_channel = keyword_lf("my_channel", ["my channel", "my video", "my music"], label="SPAM")
please = keyword_lf("please", ["please", "plz", "pls"], label="SPAM")
link = regex_lf("link", r"https?://|www\\.|\\.com\\b", label="SPAM", ignore_case=True)
money = regex_lf("money", r"\\b(?:free|earn|money|giveaway)\\b", label="SPAM", ignore_case=True)
song = keyword_lf("song", ["song", "love", "beautiful", "voice"], label="HAM")
best = keyword_lf("best", ["best", "lyrics", "dance"], label="HAM")
near_ham = prototype_lf(
    "near_ham",
    np.random.default_rng(1).standard_normal((5, 384)).astype("float32"),
    label="HAM",
    column="embedding",
    threshold=0.12,
)
"""

END_MODEL = """
[embeddings]
enabled = true
encoder = "precomputed"

[end_model]
enabled = true
{retrain}
"""

LEAN = """
[gaps]
enabled = false

[review]
enabled = false
"""

JOB = """
[source]
path = "data/*.parquet"
text_column = "text"
embedding_column = "embedding"
slice_columns = ["video"]

[labeling_functions]
sources = ["lfs.py"]
classes = ["HAM", "SPAM"]

[output]
path = "{table}"
lock_timeout = 5

{extra}
[engine]
kind = "{kind}"
n_workers = 2
threads_per_worker = 1
partition_size = {partition}
"""


def make_data(root: Path, n_assets: int, n_files: int, new_fraction: float) -> Path:
    """Write the base files into ``root/data`` and the new assets to ``root/new.parquet``."""
    from enrich.datasets import load_youtube_spam

    comments = load_youtube_spam().select("text", "video")
    rng = np.random.default_rng(0)
    n_new = max(1, round(n_assets * new_fraction))
    (root / "data").mkdir(parents=True, exist_ok=True)
    per_file = -(-n_assets // n_files)
    start = 0
    chunks = [(f"data/part-{i:03d}.parquet", per_file) for i in range(n_files)]
    chunks.append(("new.parquet", n_new))
    for name, size in chunks:
        size = min(size, n_assets - start) if name != "new.parquet" else size
        if size <= 0:
            continue
        rows = comments[rng.integers(0, comments.height, size)]
        vectors = rng.standard_normal((size, DIM), dtype=np.float32)
        frame = rows.with_columns(
            pl.Series("asset_id", [f"a{i:09d}" for i in range(start, start + size)]),
            pl.Series("embedding", vectors),
        ).select("asset_id", "text", "video", "embedding")
        frame.write_parquet(root / name)
        start += size
    return root / "new.parquet"


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median job time (its own phases and memory), and every time."""
    ordered = sorted(runs, key=lambda r: r["duration_s"])
    return ordered[len(ordered) // 2] | {"all_s": [round(r["duration_s"], 2) for r in runs]}


def run_once(job: Path) -> dict[str, Any]:
    """Run the job in a fresh process; its run record's figures plus the wall time.

    Pending writes of earlier runs are flushed first, so no run pays for another's."""
    code = (
        "import json, sys, time; from enrich.job.config import load_job_config; "
        "from enrich.job.run import run_job; start = time.perf_counter(); "
        f"r = run_job(load_job_config({str(job)!r}), progress=False); "
        "took = time.perf_counter() - start; "
        "print(json.dumps({'duration_s': took, "
        "'peak_rss_mb': r.record['peak_rss_mb'], 'timings': r.record['timings'], "
        "'counts': dict(r.counts), "
        "'retrain': (r.record.get('end_model') or {}).get('retrain')}))"
    )
    env = dict(os.environ)  # import this checkout's packages whatever the working folder
    repo = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, env.get("PYTHONPATH")) if p)
    os.sync()
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=job.parent, env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"job failed ({done.returncode}):\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["wall_s"] = round(wall, 2)
    return figures


def import_seconds() -> dict[str, float]:
    """Seconds a fresh process takes to import what a run imports: ``enrich.job`` itself
    (before ``run_job`` is timed) and the modules ``run_job`` imports when it needs them
    (the label model pulls in SciPy's sparse matrices and special functions)."""
    code = (
        "import json, time; t0 = time.perf_counter(); import enrich.job.run, enrich.job.config; "
        "t1 = time.perf_counter(); import enrich.models.label_model, enrich.analysis.summary, "
        "enrich.curation.gaps, enrich.curation.review, enrich.analysis.slices, enrich.io.report, "
        "deltalake; "
        "t2 = time.perf_counter(); "
        "print(json.dumps({'module': t1 - t0, 'inside_run_job': t2 - t1}))"
    )
    env = dict(os.environ)
    repo = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, env.get("PYTHONPATH")) if p)
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(3)
    ]
    return {key: min(r[key] for r in runs) for key in runs[0]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assets", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--new-fraction", type=float, default=0.01)
    parser.add_argument(
        "--runs",
        default="local,local-lean,dask",
        help="which jobs: local, dask, and/or local-lean (no gaps, review or slices)",
    )
    parser.add_argument("--partition-size", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each kind; median kept")
    parser.add_argument(
        "--end-model",
        action="store_true",
        help="enable [embeddings] (precomputed) and [end_model]; also time a retraining +new run",
    )
    args = parser.parse_args(argv)
    engines = [e for e in args.runs.split(",") if e]

    root = args.workdir or Path(tempfile.mkdtemp(prefix="enrich-job-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        start = time.perf_counter()
        new_file = make_data(root, args.assets, args.files, args.new_fraction)
        took = time.perf_counter() - start
        print(f"data: {args.assets:,} assets in {args.files} files ({took:.0f} s)")
        (root / "lfs.py").write_text(LFS)
        jobs = {}
        for name in engines:
            for variant, retrain in (("", ""), ("-retrain", "retrain_every = 1")):
                if variant and not args.end_model:
                    continue
                text = JOB.format(
                    table=f"out-{name}/enriched",
                    kind=name.split("-")[0],
                    partition=args.partition_size,
                    extra=(LEAN if name.endswith("-lean") else "")
                    + (END_MODEL.format(retrain=retrain) if args.end_model else ""),
                )
                if name.endswith("-lean"):
                    text = text.replace('slice_columns = ["video"]', "slice_columns = []")
                jobs[name + variant] = root / f"{name}{variant}.toml"
                jobs[name + variant].write_text(text)
        agreement: dict[str, float] = {}
        results: dict[str, dict[str, Any]] = {}
        arrived = root / "data" / "part-new.parquet"
        for kind in engines:
            table_dir = root / f"out-{kind}"
            fulls = []
            for _ in range(args.repeat):
                shutil.rmtree(table_dir, ignore_errors=True)
                fulls.append(run_once(jobs[kind]))
            results[f"{kind} full"] = median_run(fulls)
            print(f"{kind} full run: {results[f'{kind} full']}")
            after_full = root / f"out-{kind}-after-full"
            shutil.copytree(table_dir, after_full)
            shutil.move(new_file, arrived)
            variants = [("+new", kind)] + ([("+new retrained", kind + "-retrain")] * args.end_model)
            labels = {}
            for label, job_name in variants:
                incrementals = []
                for _ in range(args.repeat):  # each from the same table the full run left
                    shutil.rmtree(table_dir)
                    shutil.copytree(after_full, table_dir)
                    incrementals.append(run_once(jobs[job_name]))
                results[f"{kind} {label}"] = median_run(incrementals)
                print(f"{kind} {label} run: {results[f'{kind} {label}']}")
                if args.end_model:
                    labels[label] = model_labels(table_dir / "enriched")
            shutil.move(arrived, new_file)
            shutil.rmtree(after_full)
            if len(labels) == 2:
                kept, retrained = labels.values()
                agreement[kind] = float((kept == retrained).mean())
        imports = import_seconds()
        print()
        print(report(results, args, engines, imports, agreement))
    finally:
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)


def model_labels(table: Path) -> np.ndarray:
    """Every asset's ``model_label`` in the Delta table, in asset-id order."""
    from enrich.io.store import read_table

    return read_table(table).sort("asset_id").get_column("model_label").to_numpy()


def report(
    results: dict[str, dict[str, Any]],
    args: argparse.Namespace,
    engines: list[str],
    imports: dict[str, float],
    agreement: dict[str, float] | None = None,
) -> str:
    lines = [
        f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"polars {pl.__version__}; {args.assets:,} assets, {args.files} files, "
        f"{args.new_fraction:.0%} new"
        + ("; [embeddings] (precomputed) and [end_model] on." if args.end_model else "."),
        "",
        f"Median of {args.repeat} runs each (job s of every run in brackets).",
        "",
        "| engine | run | assets voted | rows written | job s | process s | peak RSS MB "
        "| incremental / full (job s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in engines:
        full = results[f"{kind} full"]
        runs = [(n, f) for n, f in results.items() if n.startswith(f"{kind} ")]
        for name, figures in runs:
            label = name[len(kind) + 1 :]
            ratio = "" if label == "full" else f"{figures['duration_s'] / full['duration_s']:.1%}"
            counts = figures["counts"]
            lines.append(
                f"| {kind} | {label} | {counts['n_voted']:,} | {counts['n_written']:,} | "
                f"{figures['duration_s']:.1f} {figures['all_s']} | {figures['wall_s']:.1f} | "
                f"{figures['peak_rss_mb']:,.0f} | {ratio} |"
            )
    lines.append("")
    for name, figures in results.items():
        phases = ", ".join(f"{k} {v:.2f}" for k, v in figures["timings"].items())
        lines.append(f"- {name}: {phases}")
        if figures.get("retrain"):
            retrain = figures["retrain"]
            done = "retrained" if retrain["retrained"] else "kept the model"
            lines.append(f"  end model {done}: {retrain['reason']}")
    for kind, share in (agreement or {}).items():
        lines.append(
            f"- {kind}: the kept model and the retrained one give the same model_label to "
            f"{share:.2%} of the assets after the +new run"
        )
    lines += [
        "",
        f"Imports in a fresh process (best of 3): enrich.job {imports['module']:.2f} s before "
        f"run_job is timed; {imports['inside_run_job']:.2f} s for what run_job imports when "
        "it needs it (SciPy with the label model), paid by every run, full or incremental, "
        "and part of its job s.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
