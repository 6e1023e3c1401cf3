"""The exceptions labeling_functions raises; every one derives from :class:`LabelingFunctionError`."""

from __future__ import annotations


class LabelingFunctionError(Exception):
    """Base class of every error raised by labeling_functions."""


class LFDefinitionError(LabelingFunctionError, ValueError):
    """A labeling function was defined with arguments that cannot work (bad regex, no keywords...)."""
