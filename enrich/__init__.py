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
from enrich.summary import LFSummary, lf_summary
from enrich.votes import VoteMatrix

__all__ = [
    "EnrichError",
    "InputError",
    "LFApplicationError",
    "LFSummary",
    "MissingColumnError",
    "NotFittedError",
    "VoteMatrix",
    "apply",
    "datasets",
    "lf_summary",
]
