"""The exceptions enrich raises; every one derives from :class:`EnrichError`.

Each also subclasses the builtin that fits (``ValueError``, ``KeyError``...), so code that
catches builtins keeps working. Messages say what was wrong, quote the value, and say what
to do next.
"""

from __future__ import annotations


class EnrichError(Exception):
    """Base class of every error raised by enrich."""


class InputError(EnrichError, ValueError):
    """The data or arguments handed to enrich cannot be used as given."""


class MissingColumnError(InputError, KeyError):
    """A column that a labeling function or a job needs is not in the data."""

    def __str__(self) -> str:  # KeyError would quote the whole message otherwise
        return str(self.args[0]) if self.args else ""


class LFApplicationError(EnrichError, RuntimeError):
    """A labeling function raised, or returned a value that is not a class of the task."""


class NotFittedError(EnrichError, AttributeError):
    """A model was used before ``fit`` was called."""
