"""VectorIndex speed and recall against exact FAISS search, side by side in one run.

Data: ``--n`` database vectors and ``--queries`` held-out query vectors of dimension 384
(MiniLM's width), drawn from a hierarchical Gaussian mixture (1,000 topics x 100 sub-topics;
sub-topic centre = topic + N(0, 0.7^2/d), point = sub-topic + N(0, 0.8^2/d); then
L2-normalized). Uniform noise would make recall meaningless; real embeddings are clustered
at several scales, which this mimics.

Baseline: exact search, ``faiss.IndexFlatIP`` (BLAS, batched queries), whose top-10 is the
ground truth. Each VectorIndex kind is timed for build (train + add + nprobe tuning),
process memory growth, queries per second on the same query batch, and recall@10 against
the ground truth. A subset search (a random 10% of the ids, e.g. "unlabeled assets") is
compared with exact search over that subset. Issue 4's target: recall@10 >= 0.95 at >= 10x
the exact queries per second, at 1M x 384.

Run from the repository root::

    .venv/bin/python -m benchmarks.vector_index_speed              # 1M x 384, ~5-8 min
    .venv/bin/python -m benchmarks.vector_index_speed --n 200000   # quick check
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from embeddings.index import SUBSET_EXACT_MAX, VectorIndex

DIM = 384
K = 10


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def mixture(n: int, n_queries: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Database and held-out queries from the hierarchical Gaussian mixture (float32, unit)."""
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((1000, DIM), dtype=np.float32) / np.sqrt(DIM)
    subs = np.repeat(topics, 100, axis=0)
    subs += rng.standard_normal(subs.shape, dtype=np.float32) * (0.7 / np.sqrt(DIM))

    def draw(m: int) -> np.ndarray:
        out = np.empty((m, DIM), dtype=np.float32)
        for start in range(0, m, 100_000):
            c = min(100_000, m - start)
            centre = subs[rng.integers(0, len(subs), c)]
            out[start : start + c] = centre + rng.standard_normal((c, DIM), dtype=np.float32) * (
                0.8 / np.sqrt(DIM)
            )
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out

    return draw(n), draw(n_queries)


def rss_bytes() -> int:
    """Resident memory of this process."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f[f >= 0]) & set(t[t >= 0])) for f, t in zip(found, truth, strict=True))
    return hits / max(int((truth >= 0).sum()), 1)


def timed_search(search, queries: np.ndarray, repeats: int) -> tuple[float, np.ndarray]:
    """Best-of-``repeats`` seconds for one batched search, and its result ids."""
    best, ids = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        ids = search(queries)
        best = min(best, time.perf_counter() - t0)
    return best, ids


@dataclass
class Row:
    name: str
    detail: str
    build_s: float
    memory_mb: float
    qps: float
    recall: float
    speedup: float


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="database vectors")
    parser.add_argument("--queries", type=int, default=500, help="held-out query vectors")
    parser.add_argument("--threads", type=int, default=None, help="FAISS threads (default: all)")
    parser.add_argument("--repeats", type=int, default=2, help="best of this many searches")
    parser.add_argument(
        "--kinds", default="auto,ivf", help="comma-separated VectorIndex kinds to measure"
    )
    args = parser.parse_args(argv)

    import faiss

    threads = args.threads or len(os.sched_getaffinity(0))
    faiss.omp_set_num_threads(threads)
    log(f"generating {args.n:,} x {DIM} database + {args.queries} queries")
    t0 = time.perf_counter()
    data, queries = mixture(args.n, args.queries)
    ids = np.arange(args.n, dtype=np.int64)
    log(f"  {time.perf_counter() - t0:.1f}s")

    rows: list[Row] = []
    before = rss_bytes()
    t0 = time.perf_counter()
    flat = faiss.IndexFlatIP(DIM)
    flat.add(data)
    flat_build = time.perf_counter() - t0
    flat_mem = (rss_bytes() - before) / 2**20
    log("exact search (faiss.IndexFlatIP)")
    flat_s, truth = timed_search(lambda q: flat.search(q, K)[1], queries, 1)
    flat_qps = len(queries) / flat_s
    rows.append(Row("exact", "faiss IndexFlatIP", flat_build, flat_mem, flat_qps, 1.0, 1.0))
    log(f"  {flat_qps:.1f} queries/s")
    flat = None  # free its memory before building the others
    gc.collect()

    rng = np.random.default_rng(1)
    subset = np.sort(rng.choice(args.n, args.n // 10, replace=False))
    subset_vectors = data[subset]
    t0 = time.perf_counter()
    subset_pos = faiss.knn(queries, subset_vectors, K, metric=faiss.METRIC_INNER_PRODUCT)[1]
    subset_exact_s = time.perf_counter() - t0
    subset_truth = subset[subset_pos]
    del subset_vectors

    subset_rows: list[Row] = [
        Row(
            "exact on subset",
            f"faiss.knn over {len(subset):,} vectors",
            0.0,
            0.0,
            len(queries) / subset_exact_s,
            1.0,
            1.0,
        )
    ]
    for kind in [k.strip() for k in args.kinds.split(",") if k.strip()]:
        log(f"VectorIndex(kind={kind!r}): building")
        gc.collect()
        before = rss_bytes()
        t0 = time.perf_counter()
        index = VectorIndex(DIM, kind=kind, n_threads=threads, random_state=0)
        index.add(ids, data)
        build = time.perf_counter() - t0
        memory = (rss_bytes() - before) / 2**20
        log(
            f"  built {index.factory_} in {build:.1f}s, nprobe={index.nprobe_} "
            f"(estimated recall {index.recall_estimate_})"
        )
        seconds, found = timed_search(
            lambda q, ix=index: ix.search(q, K).ids, queries, args.repeats
        )
        qps = len(queries) / seconds
        detail = f"{index.factory_}, nprobe={index.nprobe_}"
        if index.kind_ == "ivf_hnsw_sq8":
            detail += ", fp16 re-rank"
        rows.append(
            Row(
                f"VectorIndex {kind}",
                detail,
                build,
                memory,
                qps,
                recall_at_k(found, truth),
                qps / flat_qps,
            )
        )
        log(f"  {qps:.0f} queries/s, recall@10 {rows[-1].recall:.3f}")
        seconds, found = timed_search(
            lambda q, ix=index: ix.search(q, K, subset=subset).ids,
            queries,
            args.repeats,
        )
        subset_rows.append(
            Row(
                f"VectorIndex {kind}, subset",
                "FAISS IDSelectorBatch"
                if len(subset) > SUBSET_EXACT_MAX
                else "exact over the subset's stored vectors",
                0.0,
                0.0,
                len(queries) / seconds,
                recall_at_k(found, subset_truth),
                subset_exact_s / seconds,
            )
        )
        index = None
        gc.collect()

    print(
        f"\nVectorIndex on {args.n:,} x {DIM} (hierarchical Gaussian mixture), "
        f"{len(queries)} held-out queries, k={K}, {threads} FAISS threads, faiss "
        f"{faiss.__version__}, {platform.processor() or platform.machine()}\n"
    )
    print("| index | details | build s | memory MB | queries/s | recall@10 | speed vs exact |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r.name} | {r.detail} | {r.build_s:.1f} | {r.memory_mb:.0f} | {r.qps:.0f} | "
            f"{r.recall:.3f} | {r.speedup:.1f}x |"
        )
    print(f"\nSubset search: {len(subset):,} random ids (10%), same queries\n")
    print("| search | details | queries/s | recall@10 | speed vs exact on subset |")
    print("|---|---|---:|---:|---:|")
    for r in subset_rows:
        print(f"| {r.name} | {r.detail} | {r.qps:.0f} | {r.recall:.3f} | {r.speedup:.1f}x |")
    ok = all(r.recall >= 0.95 and r.speedup >= 10 for r in rows[1:])
    print(
        f"\nTarget (recall@10 >= 0.95 at >= 10x exact queries/s): "
        f"{'met' if ok else 'NOT met'} by every VectorIndex kind measured."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
