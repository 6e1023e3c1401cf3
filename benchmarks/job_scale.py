"""The nightly job on a Dask cluster whose workers read their own partitions, at growing size.

Builds the synthetic assets of :mod:`benchmarks.job_incremental` (real YouTube comment
texts, the video as a slice, a 384-d embedding per asset read by a prototype LF; one Parquet
file per ``--rows-per-file`` assets) at each of ``--assets`` sizes, starts one Dask
``LocalCluster`` of 2 worker processes (1 thread each; OpenMP, BLAS, FAISS and polars
threads set to 1 in the workers) and points the job at it (``engine.address``, as a nightly
job points at a running cluster). For each size it runs the job in a fresh driver process
(its peak RSS is the driver's own; the workers are the cluster's): a full run, then a run
after ``--new-fraction`` new assets arrive in one more file. At ``--local-at`` assets the
local engine runs the same two jobs beside it (same data; the engines take turns, ``--repeat``
rounds, median kept), and the two output tables are compared (every column but the run id and
time, after each run).

With ``--end-model`` the job also has ``[embeddings]`` (the precomputed 384-d column: the
workers write each partition's vectors, the driver builds the FAISS index from them) and
``[end_model]`` (trained on the driver from the sample gathered from the workers, predicted
on the workers); the tables are then compared but for ``index_id`` (numbered per partition
on the workers), and the driver's peak includes the index.

Run from the repository root::

    .venv/bin/python -m benchmarks.job_scale                               # 1M, 3M, 10M
    .venv/bin/python -m benchmarks.job_scale --assets 100000 --local-at 100000   # quick check
    .venv/bin/python -m benchmarks.job_scale --assets 100000 --local-at 100000 --end-model
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

import polars as pl

from benchmarks.job_incremental import END_MODEL, JOB, LFS, make_data, median_run

THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "FAISS_OMP_NUM_THREADS": "1",
    "POLARS_MAX_THREADS": "1",
}


def job_text(table: str, kind: str, address: str | None, *, end_model: bool = False) -> str:
    """The job file: the benchmark job of job_incremental, on a cluster at ``address``."""
    extra = END_MODEL.format(retrain="") if end_model else ""
    text = JOB.format(table=table, kind=kind, partition=50_000, extra=extra)
    if address:
        text = text.replace('kind = "dask"', f'kind = "dask"\naddress = "{address}"')
    return text


DRIVER = (
    "import json, time; from enrich.job.config import load_job_config; "
    "from enrich.job.run import run_job; start = time.perf_counter(); "
    "r = run_job(load_job_config({job!r}), progress=False); "
    "took = time.perf_counter() - start; "
    "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]; "
    "print(json.dumps({{'duration_s': took, 'peak_rss_mb': int(hwm) / 1024, "
    "'timings': r.record['timings'], 'counts': dict(r.counts), "
    "'structure': r.record.get('label_model_structure'), "
    "'end_model': (r.record.get('end_model') or {{}}).get('retrain')}}))"
)


def run_driver(job: Path) -> dict[str, Any]:
    """Run the job in a fresh driver process; its own peak RSS, times and counts.

    The peak is the process's ``VmHWM`` (its own memory's high-water mark): ``ru_maxrss``
    would also count this benchmark process, whose peak a child inherits across exec.
    """
    env = dict(os.environ)
    repo = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, env.get("PYTHONPATH")) if p)
    os.sync()
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", DRIVER.format(job=str(job))],
        cwd=job.parent,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"job failed ({done.returncode}):\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["wall_s"] = round(time.perf_counter() - start, 2)
    return figures


def same_tables(a: Path, b: Path, *, index_ids: bool = True) -> bool:
    """Whether two enriched tables hold the same rows (run id and time aside).

    ``index_ids=False`` leaves ``index_id`` out (the workers number each partition's block).
    """
    from enrich.io.store import read_table

    drop = ["run_id", "created_at"] + ([] if index_ids else ["index_id"])
    left = read_table(a).drop(drop).sort("asset_id")
    right = read_table(b).drop(drop).sort("asset_id")
    return left.columns == right.columns and left.equals(right)


def run_engines(
    root: Path,
    kinds: list[str],
    address: str | None,
    new_file: Path,
    repeat: int,
    *,
    end_model: bool = False,
) -> dict[str, dict[str, Any]]:
    """Full runs, then runs after the new file arrived, of each engine in turn.

    Each full run starts from no table, each incremental one from the table a full run
    left; the engines take turns (``repeat`` rounds), so they share the machine's moods.
    The median run of each kind is kept; the tables are left after the last runs.
    """
    jobs = {}
    for kind in kinds:
        jobs[kind] = root / f"{kind}.toml"
        jobs[kind].write_text(job_text(f"out-{kind}/enriched", kind, address, end_model=end_model))
    fulls: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    for _ in range(repeat):
        for kind in kinds:
            shutil.rmtree(root / f"out-{kind}", ignore_errors=True)
            fulls[kind].append(run_driver(jobs[kind]))
            last = fulls[kind][-1]
            print(
                f"  {kind} full: {last['duration_s']:.1f} s, driver {last['peak_rss_mb']:,.0f} MB"
            )
    for kind in kinds:
        shutil.rmtree(root / f"out-{kind}-after-full", ignore_errors=True)
        shutil.copytree(root / f"out-{kind}", root / f"out-{kind}-after-full")
    arrived = root / "data" / "part-new.parquet"
    shutil.move(new_file, arrived)
    news: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    try:
        for _ in range(repeat):
            for kind in kinds:
                shutil.rmtree(root / f"out-{kind}")
                shutil.copytree(root / f"out-{kind}-after-full", root / f"out-{kind}")
                news[kind].append(run_driver(jobs[kind]))
                last = news[kind][-1]
                took, rss = last["duration_s"], last["peak_rss_mb"]
                kept = (last.get("structure") or {}).get("kept")
                retrain = (last.get("end_model") or {}).get("retrained")
                print(
                    f"  {kind} +new: {took:.1f} s, driver {rss:,.0f} MB, structure kept {kept}"
                    + ("" if retrain is None else f", end model retrained {retrain}")
                )
    finally:
        shutil.move(arrived, new_file)
    return {
        kind: {
            "full": median_run(fulls[kind]),
            "new": median_run(news[kind]),
            "after_full": root / f"out-{kind}-after-full",
        }
        for kind in kinds
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assets", default="1000000,3000000,10000000")
    parser.add_argument("--rows-per-file", type=int, default=50_000)
    parser.add_argument("--new-fraction", type=float, default=0.01)
    parser.add_argument("--local-at", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each kind; median kept")
    parser.add_argument(
        "--end-model", action="store_true", help="with [embeddings] (precomputed) and [end_model]"
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.assets.split(",") if s]

    os.environ.update(THREAD_ENV)  # inherited by the worker processes (and their nannies)
    from dask.distributed import Client, LocalCluster

    base = args.workdir or Path(tempfile.mkdtemp(prefix="enrich-scale-"))
    base.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        env=THREAD_ENV,
    )
    client = Client(cluster)
    cluster_s = time.perf_counter() - start
    try:
        for n in sizes:
            root = base / f"n{n}"
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            t0 = time.perf_counter()
            n_files = max(1, -(-n // args.rows_per_file))
            new_file = make_data(root, n, n_files, args.new_fraction)
            (root / "lfs.py").write_text(LFS)
            print(f"{n:,} assets in {n_files} files ({time.perf_counter() - t0:.0f} s)")
            kinds = ["dask", "local"] if n == args.local_at else ["dask"]
            runs = run_engines(
                root,
                kinds,
                cluster.scheduler_address,
                new_file,
                args.repeat,
                end_model=args.end_model,
            )
            row: dict[str, Any] = {"n": n, "files": n_files, **runs}
            if "local" in runs:
                row["equal_full"] = same_tables(
                    runs["dask"]["after_full"] / "enriched",
                    runs["local"]["after_full"] / "enriched",
                    index_ids=not args.end_model,
                )
                row["equal_new"] = same_tables(
                    root / "out-dask" / "enriched",
                    root / "out-local" / "enriched",
                    index_ids=not args.end_model,
                )
                print(f"  tables equal: full {row['equal_full']}, +new {row['equal_new']}")
            rows.append(row)
            shutil.rmtree(root, ignore_errors=True)  # the next size needs the disk
    finally:
        client.close()
        cluster.close()
        if args.workdir is None:
            shutil.rmtree(base, ignore_errors=True)
    print()
    print(report(rows, args, cluster_s))


def report(rows: list[dict[str, Any]], args: argparse.Namespace, cluster_s: float) -> str:
    """The markdown table of the runs."""
    lines = [
        f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, polars "
        f"{pl.__version__}; Dask LocalCluster of 2 worker processes x 1 thread (started once, "
        f"{cluster_s:.1f} s, not counted); {args.rows_per_file:,} assets per file, one "
        f"partition each; {args.new_fraction:.0%} new in the second run; median of "
        f"{args.repeat} run(s) of each kind, engines taking turns (every run in brackets)"
        + (
            "; with [embeddings] (precomputed 384-d) and [end_model], tables compared but for "
            "index_id."
            if args.end_model
            else "."
        ),
        "",
        "| assets | engine | full run s | +new run s | +new / full | driver peak RSS MB "
        "(full / +new) | files read (+new) | partitions written (+new) | table equals local |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        for kind in ("dask", "local"):
            if kind not in row:
                continue
            full, new = row[kind]["full"], row[kind]["new"]
            written = new["counts"].get("n_partitions_written", "")
            equal = (
                f"full {row['equal_full']}, +new {row['equal_new']}"
                if kind == "dask" and "equal_full" in row
                else ""
            )
            lines.append(
                f"| {row['n']:,} | {kind} | {full['duration_s']:.1f} {full['all_s']} | "
                f"{new['duration_s']:.1f} {new['all_s']} | "
                f"{new['duration_s'] / full['duration_s']:.1%} | {full['peak_rss_mb']:,.0f} / "
                f"{new['peak_rss_mb']:,.0f} | {new['counts']['n_files_read']} | {written} | "
                f"{equal} |"
            )
        if "local" in row:
            ratio = row["dask"]["full"]["duration_s"] / row["local"]["full"]["duration_s"]
            lines.append(f"|  | dask / local (full) | {ratio:.2f}x |  |  |  |  |  |  |")
    lines.append("")
    for row in rows:
        for kind in ("dask", "local"):
            if kind in row:
                chosen = row[kind]["full"].get("structure") or {}
                kept = row[kind]["new"].get("structure") or {}
                lines.append(
                    f"- {row['n']:,} {kind}: label model structure {chosen.get('structure')!r} "
                    f"chosen on the full run, kept on +new: {kept.get('kept')}"
                )
                for run in ("full", "new"):
                    phases = ", ".join(f"{k} {v:.2f}" for k, v in row[kind][run]["timings"].items())
                    lines.append(f"- {row['n']:,} {kind} {run}: {phases}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
