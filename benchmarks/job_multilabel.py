"""The nightly job of a multi-label task and of two tasks: a full run, then 1% new assets.

Builds ``--assets`` assets (default 195,300: the bundled YouTube comments 100 times, new asset
ids) in ``--files`` Parquet files, with the video as a slice column. Three jobs over the same
data, side by side in one process (so the machine's load falls on all of them alike):

- ``multiclass``: spam or not (2 classes, 4 keyword / regex LFs), the single-label job;
- ``multilabel``: topics (promotion, link, music; 4 LFs voting for and against labels);
- ``tasks``: both as two named tasks of one job.

Each job runs once over every file but the last, then once more after the last file
(``--new-fraction`` of the assets, default 1%) arrives. The figures are the seconds
``run_job`` takes for each run (and the CPU seconds of the process, threads included: steadier
than wall time on a loaded machine) and the +new run's share of the full one, with the phases
of the +new run (the run record's ``timings``). ``--repeat`` repeats each pair on fresh tables and
keeps the medians, after one round that warms the process up (imports) and is not counted.

``--end-model`` adds ``[embeddings]`` (a precomputed vector per asset: counts of a few
patterns in its text) and ``[end_model]`` with its defaults: the +new run keeps the stored
model(s) unless the training sample moved past ``retrain_after`` (the JSON says whether each
task's retrained).

Run from the repository root::

    .venv/bin/python -m benchmarks.job_multilabel                    # ~195k assets
    .venv/bin/python -m benchmarks.job_multilabel --assets 20000     # quick check
    .venv/bin/python -m benchmarks.job_multilabel --end-model        # with the end model
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

SPAM_LFS = """
from labeling_functions import ABSTAIN, Against, keyword_lf, labeling_function, regex_lf

check_out = keyword_lf("check_out", ["check out", "my channel", "subscribe"], label="SPAM")
nice = keyword_lf("nice", ["song", "love this", "best"], label="HAM")
url = regex_lf("url", r"https?://|www\\.", label="SPAM", ignore_case=True)
pls = keyword_lf("pls", ["please", "plz"], label="SPAM")
promo = keyword_lf("promo", ["check out", "subscribe", "my channel", "please"], label="promotion")
link = regex_lf("link", r"https?://|www\\.", label="link", ignore_case=True)
music = keyword_lf("music", ["song", "music", "dance"], label=("music", Against("promotion")))

@labeling_function(label=("promotion", "link"))
def short(x):
    return {"promotion": False, "link": False} if len(x.text or "") < 20 else ABSTAIN

SPAM = [check_out, nice, url, pls]
TOPICS = [promo, link, music, short]
"""

HEAD = """
[source]
path = "data/*.parquet"
text_column = "text"
slice_columns = ["video"]
"""

JOBS = {
    "multiclass": """
[labeling_functions]
sources = ["lfs.py:SPAM"]
classes = ["HAM", "SPAM"]
""",
    "multilabel": """
[labeling_functions]
sources = ["lfs.py:TOPICS"]
task = "multilabel"
labels = ["promotion", "link", "music"]
""",
    "tasks": """
[labeling_functions.tasks.spam]
sources = ["lfs.py:SPAM"]
classes = ["HAM", "SPAM"]

[labeling_functions.tasks.topics]
sources = ["lfs.py:TOPICS"]
task = "multilabel"
labels = ["promotion", "link", "music"]
""",
}

TAIL = """
[output]
path = "out/enriched"
"""

END_MODEL = """
[embeddings]
enabled = true
encoder = "precomputed"

[end_model]
enabled = true
"""

#: What the vectors of ``--end-model`` count in each text (plus a constant 1: never all zero).
_PATTERNS = [
    r"(?i)check", r"(?i)channel", r"(?i)subscribe", r"(?i)http", r"(?i)song", r"(?i)love",
    r"(?i)video", r"!", r"\?", r"\d", r"[A-Z]", r"(?i)please", r"(?i)music", r"(?i)like",
    r"(?i)best", r" ",
]  # fmt: skip


def make_data(
    root: Path, n_assets: int, n_files: int, new_fraction: float, *, vectors: bool = False
) -> list[Path]:
    """The YouTube comments repeated to ``n_assets`` rows; the files, the new one last.

    ``vectors``: a ``vector`` column too, the counts of a few patterns in the text.
    """
    from enrich.datasets import load_youtube_spam

    base = load_youtube_spam().select("text", "video")
    if vectors:
        counts = [pl.col("text").str.count_matches(p).cast(pl.Float32) for p in _PATTERNS]
        base = base.with_columns(
            pl.concat_list([*counts, pl.lit(1.0, dtype=pl.Float32)]).alias("vector")
        )
    reps = -(-n_assets // base.height)
    data = pl.concat([base] * reps).head(n_assets)
    data = data.with_columns(pl.format("a{}", pl.int_range(pl.len())).alias("asset_id"))
    n_new = max(1, round(n_assets * new_fraction))
    old, new = data.head(n_assets - n_new), data.tail(n_new)
    folder = root / "data_all"
    folder.mkdir(parents=True)
    size = -(-old.height // n_files)
    files = []
    for i in range(n_files):
        path = folder / f"part-{i:03d}.parquet"
        old.slice(i * size, size).write_parquet(path)
        files.append(path)
    path = folder / "part-new.parquet"
    new.write_parquet(path)
    return [*files, path]


def run_pair(
    root: Path, kind: str, files: list[Path], *, end_model: bool = False
) -> dict[str, Any]:
    """A full run over every file but the last, then a run after the last arrives."""
    from enrich.job.config import load_job_config
    from enrich.job.run import run_job

    if root.exists():
        shutil.rmtree(root)
    (root / "data").mkdir(parents=True)
    for path in files[:-1]:
        (root / "data" / path.name).symlink_to(path)
    (root / "lfs.py").write_text(SPAM_LFS)
    head = HEAD + 'embedding_column = "vector"\n' if end_model else HEAD
    (root / "job.toml").write_text(head + JOBS[kind] + (END_MODEL if end_model else "") + TAIL)
    config = load_job_config(root / "job.toml")
    cpu = time.process_time()
    full = run_job(config, progress=False)
    full_cpu = time.process_time() - cpu
    (root / "data" / files[-1].name).symlink_to(files[-1])
    cpu = time.process_time()
    more = run_job(config, progress=False)
    new_cpu = time.process_time() - cpu
    return {
        "full_s": full.record["duration_s"],
        "new_s": more.record["duration_s"],
        "full_cpu_s": full_cpu,
        "new_cpu_s": new_cpu,
        "new_timings": more.record["timings"],
        "n_assets": more.counts["n_assets"],
        "n_new": more.counts["n_new"],
        "n_written": more.counts["n_written"],
        "end_model_retrained": _retrained(more.record) if end_model else None,
    }


def _retrained(record: dict[str, Any]) -> dict[str, bool]:
    """Whether each task's end model retrained in the run (``job`` for a single-label job)."""
    if not record.get("tasks"):
        return {"job": bool((record.get("end_model") or {}).get("retrain", {}).get("retrained"))}
    return {
        name: bool(((task.get("end_model") or {}).get("retrain") or {}).get("retrained"))
        for name, task in record["tasks"].items()
    }


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print a JSON summary and a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--assets", type=int, default=195_300)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--new-fraction", type=float, default=0.01)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--jobs", nargs="+", default=list(JOBS), choices=list(JOBS))
    parser.add_argument(
        "--end-model",
        action="store_true",
        help="[end_model] on the job's precomputed vectors (pattern counts of the text)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="enrich-job-multilabel-") as tmp:
        root = Path(tmp)
        files = make_data(root, args.assets, args.files, args.new_fraction, vectors=args.end_model)
        runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in args.jobs}
        for i in range(args.repeat + 1):  # the first round warms up (imports), not counted
            for kind in args.jobs:  # interleaved: the load falls on every job alike
                pair = run_pair(root / kind, kind, files, end_model=args.end_model)
                if i:
                    runs[kind].append(pair)
    summary = {}
    for kind, pairs in runs.items():
        full = statistics.median(p["full_s"] for p in pairs)
        new = statistics.median(p["new_s"] for p in pairs)
        full_cpu = statistics.median(p["full_cpu_s"] for p in pairs)
        new_cpu = statistics.median(p["new_cpu_s"] for p in pairs)
        summary[kind] = {
            "full_s": round(full, 3),
            "new_s": round(new, 3),
            "new_share": round(new / full, 3),
            "full_cpu_s": round(full_cpu, 3),
            "new_cpu_s": round(new_cpu, 3),
            "new_cpu_share": round(new_cpu / full_cpu, 3),
            "n_assets": pairs[0]["n_assets"],
            "n_new": pairs[0]["n_new"],
            "n_written": pairs[0]["n_written"],
            "end_model_retrained": pairs[0]["end_model_retrained"],
            "new_timings": {k: round(v, 3) for k, v in pairs[-1]["new_timings"].items()},
        }
    print(json.dumps(summary, indent=2))
    print(
        "\n| job | assets | full run (s) | +new run (s) | +new / full | full run CPU (s) "
        "| +new run CPU (s) | +new / full (CPU) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for kind, row in summary.items():
        print(
            f"| {kind} | {row['n_assets']:,} (+{row['n_new']:,}) | {row['full_s']:.2f} | "
            f"{row['new_s']:.2f} | {row['new_share']:.0%} | {row['full_cpu_s']:.2f} | "
            f"{row['new_cpu_s']:.2f} | {row['new_cpu_share']:.0%} |"
        )


if __name__ == "__main__":
    main()
