"""enrich: apply labeling functions fast, learn how far to trust them, and enrich data with labels.

Public names load on first use, so ``import enrich`` (and ``enrich --help``) stays quick.

>>> import enrich
>>> callable(enrich.apply), enrich.LabelModel.__name__
(True, 'LabelModel')
"""

from __future__ import annotations

import importlib
from typing import Any

from enrich.apply import apply  # bound after its module, so enrich.apply is the function
from enrich.errors import (
    EnrichError,
    InputError,
    LFApplicationError,
    MissingColumnError,
    NotFittedError,
)

# public name -> the module of enrich that defines it ("" for a public module)
_LAZY = {
    "AnnotationMatrix": "agreement",
    "Consensus": "agreement",
    "annotation_matrix": "agreement",
    "combine_votes": "agreement",
    "consensus": "agreement",
    "enriched_table": "enriched",
    "Candidates": "gap_filling",
    "fill_gaps": "gap_filling",
    "with_index_ids": "gap_filling",
    "Gaps": "gaps",
    "find_gaps": "gaps",
    "GoldBenchmark": "gold",
    "benchmark": "gold",
    "gold_vector": "gold",
    "LabelModel": "label_model",
    "label_table": "label_output",
    "GoldImport": "label_studio",
    "import_label_studio": "label_studio",
    "label_studio_config": "label_studio",
    "to_label_studio": "label_studio",
    "write_label_studio_tasks": "label_studio",
    "MajorityVote": "majority_vote",
    "ReviewQueue": "review",
    "review_queue": "review",
    "SliceReport": "slices",
    "slice_report": "slices",
    "SnorkelLabelModel": "snorkel_backend",
    "LFSummary": "summary",
    "lf_summary": "summary",
    "VoteMatrix": "votes",
    "AssetHistory": "lineage",
    "DaskEngine": "engines",
    "JobConfig": "config",
    "JobConfigError": "config",
    "JobResult": "job",
    "LocalEngine": "engines",
    "RunDiff": "lineage",
    "RunList": "lineage",
    "SourceSchemaError": "job",
    "diff": "lineage",
    "example_job_toml": "config",
    "history": "lineage",
    "load_job_config": "config",
    "run_job": "job",
    "runs": "lineage",
    "datasets": "",
}

__all__ = [
    "AnnotationMatrix",
    "AssetHistory",
    "Candidates",
    "Consensus",
    "DaskEngine",
    "EnrichError",
    "Gaps",
    "GoldBenchmark",
    "GoldImport",
    "InputError",
    "JobConfig",
    "JobConfigError",
    "JobResult",
    "LFApplicationError",
    "LFSummary",
    "LabelModel",
    "LocalEngine",
    "MajorityVote",
    "MissingColumnError",
    "NotFittedError",
    "ReviewQueue",
    "RunDiff",
    "RunList",
    "SliceReport",
    "SnorkelLabelModel",
    "SourceSchemaError",
    "VoteMatrix",
    "annotation_matrix",
    "apply",
    "benchmark",
    "combine_votes",
    "consensus",
    "datasets",
    "diff",
    "enriched_table",
    "example_job_toml",
    "fill_gaps",
    "find_gaps",
    "gold_vector",
    "history",
    "import_label_studio",
    "label_studio_config",
    "label_table",
    "lf_summary",
    "load_job_config",
    "review_queue",
    "run_job",
    "runs",
    "slice_report",
    "to_label_studio",
    "with_index_ids",
    "write_label_studio_tasks",
]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'enrich' has no attribute {name!r}")
    if not module_name:
        return importlib.import_module(f"enrich.{name}")
    module = importlib.import_module(f"enrich.{module_name}")
    # Bind every public name the module defines, so each module is imported once.
    for public, owner in _LAZY.items():
        if owner == module_name:
            globals()[public] = getattr(module, public)
    return globals()[name]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
