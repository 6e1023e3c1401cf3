"""The exceptions of labeling_functions; each derives from :class:`LabelingFunctionError`."""

from __future__ import annotations


class LabelingFunctionError(Exception):
    """Base class of every error raised by labeling_functions."""


class LFDefinitionError(LabelingFunctionError, ValueError):
    """An LF was defined with arguments that cannot work (bad regex, no keywords...)."""
