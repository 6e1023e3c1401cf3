"""enrich: apply labeling functions fast, learn how far to trust them, and enrich data with labels.

>>> import enrich
>>> callable(enrich.apply)
True
"""

from enrich.apply import apply
from enrich.errors import (
    EnrichError,
    InputError,
    LFApplicationError,
    MissingColumnError,
    NotFittedError,
)
from enrich.votes import VoteMatrix

__all__ = [
    "EnrichError",
    "InputError",
    "LFApplicationError",
    "MissingColumnError",
    "NotFittedError",
    "VoteMatrix",
    "apply",
]
