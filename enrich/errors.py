"""The exceptions enrich raises; every one derives from :class:`EnrichError`.

Each also subclasses the builtin that fits (``ValueError``, ``KeyError``...), so code that
catches builtins keeps working. Messages say what was wrong, quote the value, and say what
to do next.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ConcurrentRunError",
    "CorruptStateError",
    "DiskFullError",
    "DuplicateAnnotationError",
    "EnrichError",
    "InputError",
    "JobConfigError",
    "LFApplicationError",
    "LFSourceError",
    "LabelModelFileError",
    "LabelStudioImportError",
    "MissingColumnError",
    "NotAClassError",
    "NotFittedError",
    "RunLockedError",
    "SnorkelNumericalError",
    "SourceSchemaError",
    "TableHistoryError",
    "UnknownLabelError",
    "VoteValueError",
]


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


class VoteValueError(InputError):
    """A vote matrix (or gold vector) holds a value that is not a class id or ``-1``."""


class NotAClassError(InputError):
    """A value is not a class of the task."""


class LFSourceError(InputError):
    """An LF source (``module:attribute`` or a file) cannot be imported or holds no LFs."""


class JobConfigError(InputError):
    """A job configuration is invalid: the message names each key path and what is allowed."""


class SourceSchemaError(InputError):
    """The source's columns changed type between files or since the previous run."""


class LabelModelFileError(InputError):
    """A saved model file cannot be read back (not JSON, another model type, another version)."""


class SnorkelNumericalError(EnrichError, FloatingPointError):
    """Snorkel's LabelModel produced NaN probabilities (a known Snorkel failure)."""


class DuplicateAnnotationError(InputError):
    """An annotator labeled the same asset more than once and the answer to keep is unclear."""


class UnknownLabelError(InputError):
    """An annotation's label is not one of the task's classes."""


class LabelStudioImportError(InputError):
    """A Label Studio export has malformed tasks; ``problems`` lists ``(task, problem)``."""

    def __init__(self, message: str, problems: Sequence[tuple[str, str]]) -> None:
        super().__init__(message)
        self.problems = list(problems)


class RunLockedError(EnrichError, RuntimeError):
    """Another run holds the output's lock for longer than ``output.lock_timeout``."""


class ConcurrentRunError(EnrichError, RuntimeError):
    """Someone committed to the output table while this run was working; nothing was written."""


class TableHistoryError(EnrichError, LookupError):
    """A run, version or asset asked for is not in the table's history."""


class CorruptStateError(TableHistoryError):
    """A file of the job's state (a Delta log file, a run record) cannot be read.

    The message names the file and how to recover (restore it, or go back to the last good
    version).
    """


class DiskFullError(EnrichError, OSError):
    """No space left on the device the job writes to (the message names the path)."""
