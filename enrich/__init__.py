"""enrich: apply labeling functions fast, learn how far to trust them, and enrich data with labels.

Public names load on first use, so ``import enrich`` (and ``enrich --help``) stays quick:
``_PUBLIC`` maps each name to the module that defines it; a test keeps ``__all__`` in step.

>>> import enrich
>>> callable(enrich.apply), enrich.LabelModel.__name__
(True, 'LabelModel')
"""

from __future__ import annotations

import importlib
from typing import Any

from enrich import errors
from enrich._internal import deprecation
from enrich.labeling.apply import apply

deprecation.install()

# public name -> the module of enrich that defines it ("" for a public module)
_PUBLIC: dict[str, str] = {
    # every exception of the package (enrich.errors is small and imported above)
    **dict.fromkeys(errors.__all__, "errors"),
    "apply": "labeling.apply",
    "VoteMatrix": "votes",
    "datasets": "",
    # multi-label and multi-task
    "Task": "tasks",
    "MultiLabelVoteMatrix": "multilabel_votes",
    "apply_tasks": "labeling.multilabel",
    "MultiLabelModel": "models.multilabel",
    "MultiLabelEndModel": "models.multilabel_end_model",
    "fill_gaps_per_label": "curation.multilabel",
    "find_gaps_per_label": "curation.multilabel",
    "review_queue_per_label": "curation.multilabel",
    "slice_report_per_label": "curation.multilabel",
    "MultiLabelScores": "analysis.multilabel",
    "multilabel_lf_summary": "analysis.multilabel",
    "multilabel_scores": "analysis.multilabel",
    "multilabel_table": "analysis.multilabel",
    "import_label_studio_multilabel": "io.label_studio_multilabel",
    "multilabel_label_studio_config": "io.label_studio_multilabel",
    "to_label_studio_multilabel": "io.label_studio_multilabel",
    # labeling
    "DaskEngine": "labeling.engines",
    "LocalEngine": "labeling.engines",
    # models
    "LabelModel": "models.label_model",
    "MajorityVote": "models.majority_vote",
    "SnorkelLabelModel": "models.snorkel",
    "enriched_table": "models.output",
    "EndModel": "models.end_model",
    "filter_unlabeled": "models.end_model",
    "label_table": "models.output",
    # analysis
    "LFSummary": "analysis.summary",
    "lf_summary": "analysis.summary",
    "GoldBenchmark": "analysis.gold",
    "benchmark": "analysis.gold",
    "gold_vector": "analysis.gold",
    "SliceReport": "analysis.slices",
    "slice_report": "analysis.slices",
    "AnnotationMatrix": "analysis.agreement",
    "Consensus": "analysis.consensus",
    "annotation_matrix": "analysis.agreement",
    "combine_votes": "analysis.consensus",
    "consensus": "analysis.consensus",
    "LabelErrors": "analysis.label_errors",
    "find_label_errors": "analysis.label_errors",
    "ModelComparison": "analysis.model_comparison",
    "compare_models": "analysis.model_comparison",
    # curation
    "Gaps": "curation.gaps",
    "find_gaps": "curation.gaps",
    "Candidates": "curation.gap_filling",
    "fill_gaps": "curation.gap_filling",
    "with_index_ids": "curation.gap_filling",
    "ReviewQueue": "curation.review",
    "review_queue": "curation.review",
    "queue_from_votes": "curation.review",
    # io
    "GoldImport": "io.label_studio",
    "import_label_studio": "io.label_studio",
    "label_studio_config": "io.label_studio",
    "to_label_studio": "io.label_studio",
    "write_label_studio_tasks": "io.label_studio",
    "AssetHistory": "io.lineage",
    "RunDiff": "io.lineage",
    "RunList": "io.lineage",
    "diff": "io.lineage",
    "history": "io.lineage",
    "runs": "io.lineage",
    # job
    "JobConfig": "job.config",
    "example_job_toml": "job.config",
    "load_job_config": "job.config",
    "JobResult": "job.run",
    "run_job": "job.run",
}

__all__ = [
    "AnnotationMatrix",
    "AssetHistory",
    "Candidates",
    "ConcurrentRunError",
    "Consensus",
    "CorruptStateError",
    "DaskEngine",
    "DiskFullError",
    "DuplicateAnnotationError",
    "EndModel",
    "EnrichError",
    "Gaps",
    "GoldBenchmark",
    "GoldImport",
    "InputError",
    "JobConfig",
    "JobConfigError",
    "JobResult",
    "LFApplicationError",
    "LFSourceError",
    "LFSummary",
    "LabelErrors",
    "LabelModel",
    "LabelModelFileError",
    "LabelStudioImportError",
    "LocalEngine",
    "MajorityVote",
    "MissingColumnError",
    "ModelComparison",
    "MultiLabelEndModel",
    "MultiLabelModel",
    "MultiLabelScores",
    "MultiLabelVoteMatrix",
    "NotAClassError",
    "NotFittedError",
    "ReviewQueue",
    "RunDiff",
    "RunList",
    "RunLockedError",
    "SliceReport",
    "SnorkelLabelModel",
    "SnorkelNumericalError",
    "SourceSchemaError",
    "TableHistoryError",
    "Task",
    "UnknownLabelError",
    "VoteMatrix",
    "VoteValueError",
    "annotation_matrix",
    "apply",
    "apply_tasks",
    "benchmark",
    "combine_votes",
    "compare_models",
    "consensus",
    "datasets",
    "diff",
    "enriched_table",
    "example_job_toml",
    "fill_gaps",
    "fill_gaps_per_label",
    "filter_unlabeled",
    "find_gaps",
    "find_gaps_per_label",
    "find_label_errors",
    "gold_vector",
    "history",
    "import_label_studio",
    "import_label_studio_multilabel",
    "label_studio_config",
    "label_table",
    "lf_summary",
    "load_job_config",
    "multilabel_label_studio_config",
    "multilabel_lf_summary",
    "multilabel_scores",
    "multilabel_table",
    "queue_from_votes",
    "review_queue",
    "review_queue_per_label",
    "run_job",
    "runs",
    "slice_report",
    "slice_report_per_label",
    "to_label_studio",
    "to_label_studio_multilabel",
    "with_index_ids",
    "write_label_studio_tasks",
]


def __getattr__(name: str) -> Any:
    module_name = _PUBLIC.get(name)
    if module_name is None:
        raise AttributeError(f"module 'enrich' has no attribute {name!r}")
    if not module_name:
        return importlib.import_module(f"enrich.{name}")
    module = importlib.import_module(f"enrich.{module_name}")
    # Bind every public name the module defines, so each module is imported once.
    for public, owner in _PUBLIC.items():
        if owner == module_name:
            globals()[public] = getattr(module, public)
    return globals()[name]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
