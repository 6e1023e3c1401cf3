"""Fixtures of the job tests: a job folder (source files, an LF module, the job file).

Each test module states its own settings as module constants, which :func:`make_job` takes
as defaults: ``JOB`` (the job file's text; a ``str.format`` template when the call passes
fields), ``LFS`` (the LF module's source), ``PARTS`` (the source files: a sequence of row
ranges of the YouTube spam data, written as ``part-000.parquet``..., or a mapping of file
name to row range) and ``edit_source(name, frame)`` (a change to a source file's rows
before it is written).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from enrich.datasets import load_youtube_spam

Parts = Sequence[tuple[int, int]] | Mapping[str, tuple[int, int]]

DEFAULT_PARTS: Parts = ((0, 120), (120, 240))


@pytest.fixture(scope="session")
def spam_data() -> pl.DataFrame:
    """The bundled YouTube spam comments, loaded once."""
    return load_youtube_spam()


@pytest.fixture(scope="module")
def make_job(request, spam_data) -> Callable[..., Path]:
    """Write a job folder under ``root``; return the job file's path.

    ``make_job(root, *, parts=PARTS, job=JOB, lfs=LFS, toml="job.toml", **fields)`` writes
    ``root/data/<file>`` for each part, ``root/lfs.py`` and ``root/<toml>`` (``job``
    formatted with ``fields`` when any are given).
    """
    module = request.module

    def make(
        root: Path,
        *,
        parts: Parts | None = None,
        job: str | None = None,
        lfs: str | None = None,
        toml: str = "job.toml",
        **fields: Any,
    ) -> Path:
        parts = parts if parts is not None else getattr(module, "PARTS", DEFAULT_PARTS)
        named = (
            dict(parts)
            if isinstance(parts, Mapping)
            else {f"part-{i:03d}.parquet": part for i, part in enumerate(parts)}
        )
        edit = getattr(module, "edit_source", None)
        (root / "data").mkdir(parents=True, exist_ok=True)
        for name, (start, stop) in named.items():
            rows = spam_data.slice(start, stop - start)
            (edit(name, rows) if edit else rows).write_parquet(root / "data" / name)
        (root / "lfs.py").write_text(lfs if lfs is not None else module.LFS)
        text = job if job is not None else module.JOB
        path = root / toml
        path.write_text(text.format(**fields) if fields else text)
        return path

    return make


@pytest.fixture(scope="module")
def client():
    """A Dask LocalCluster of 2 worker processes (1 thread each) for one test module."""
    from dask.distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c
