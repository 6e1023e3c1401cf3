"""enrich: apply labeling functions fast, learn how far to trust them, and enrich data with labels.

>>> import enrich
>>> callable(enrich.apply)
True
"""

from enrich import datasets
from enrich.apply import apply
from enrich.errors import (
    EnrichError,
    InputError,
    LFApplicationError,
    MissingColumnError,
    NotFittedError,
)
from enrich.gap_filling import Candidates, fill_gaps, with_index_ids
from enrich.gaps import Gaps, find_gaps
from enrich.gold import GoldBenchmark, benchmark, gold_vector
from enrich.label_studio import (
    GoldImport,
    import_label_studio,
    label_studio_config,
    to_label_studio,
    write_label_studio_tasks,
)
from enrich.review import ReviewQueue, review_queue
from enrich.slices import SliceReport, slice_report
from enrich.summary import LFSummary, lf_summary
from enrich.votes import VoteMatrix

__all__ = [
    "Candidates",
    "EnrichError",
    "Gaps",
    "GoldBenchmark",
    "GoldImport",
    "InputError",
    "LFApplicationError",
    "LFSummary",
    "MissingColumnError",
    "NotFittedError",
    "ReviewQueue",
    "SliceReport",
    "VoteMatrix",
    "apply",
    "benchmark",
    "datasets",
    "fill_gaps",
    "find_gaps",
    "gold_vector",
    "import_label_studio",
    "label_studio_config",
    "lf_summary",
    "review_queue",
    "slice_report",
    "to_label_studio",
    "with_index_ids",
    "write_label_studio_tasks",
]
