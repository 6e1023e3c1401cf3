"""The nightly job.

:mod:`~enrich.job.config` is the typed job file, :mod:`~enrich.job.run` the incremental, atomic
run on a Delta table.

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
