"""The nightly job.

:mod:`~enrich.job.config` is the typed job file, :mod:`~enrich.job.run` the incremental, atomic
run on a Delta table: a sequence of named phases over the modules that do the work, which
are internal (not API): ``sources`` (all file I/O of the sources), ``plan`` (columns and
content hashing), ``state`` (the previous table, asset status, assembling), ``index`` (the
embedder and FAISS index), ``fit`` (votes, gold, the label model, enriched rows), ``metrics``
(figures, slices, drift), ``followups`` (gaps, gap filling, review queue), ``records``
(the run record's bookkeeping and recovery) and ``context`` (what the phases hand on).

``from enrich.job import run_job`` keeps working; the names load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["JobResult", "SourceSchemaError", "run_job"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("enrich.job.run"), name)
    raise AttributeError(f"module 'enrich.job' has no attribute {name!r}")
