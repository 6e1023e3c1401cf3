"""The classes of a labeling task: names and ids, and turning an LF's answer into a class id.

>>> task = TaskClasses.of(["HAM", "SPAM"])
>>> task.to_id("SPAM"), task.to_id(0), task.to_id(None), task.to_id(-1)
(1, 0, -1, -1)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from enrich.errors import InputError, NotAClassError
from labeling_functions.core import ABSTAIN

__all__ = ["ABSTAIN", "TaskClasses", "did_you_mean"]


def did_you_mean(value: object, names: Iterable[str] | None) -> str:
    """A hint naming the class ``value`` was probably meant to be, or ``""``.

    A name that differs only in case wins; otherwise the closest name by
    :func:`difflib.get_close_matches`.

    Examples
    --------
    >>> did_you_mean("SAPM", ["HAM", "SPAM"]), did_you_mean("ham", ["HAM", "SPAM"])
    ("; did you mean 'SPAM'?", "; did you mean 'HAM'?")
    >>> did_you_mean("EGGS", ["HAM", "SPAM"])
    ''
    """
    if not isinstance(value, str) or names is None:
        return ""
    choices = [n for n in names if isinstance(n, str)]
    same_case = [n for n in choices if n.casefold() == value.casefold()]
    close = same_case or difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


@dataclass(frozen=True)
class TaskClasses:
    """Class names (optional) and the number of classes (optional) of one task."""

    names: tuple[str, ...] | None
    cardinality: int | None

    @classmethod
    def of(cls, classes: Sequence[str] | int | None) -> TaskClasses:
        """Build from a list of class names, a number of classes, or None (ids only, unchecked)."""
        if classes is None:
            return cls(None, None)
        if isinstance(classes, int | np.integer) and not isinstance(classes, bool):
            if classes < 1:
                raise InputError(f"classes must be >= 1 when given as a count, got {classes}.")
            return cls(None, int(classes))
        if isinstance(classes, str) or not isinstance(classes, Sequence):
            raise InputError(
                f"classes must be a list of class names or a number of classes, got {classes!r}."
            )
        names = tuple(classes)
        if not names or not all(isinstance(n, str) and n for n in names):
            raise InputError(f"Class names must be non-empty strings, got {list(names)!r}.")
        if len(set(names)) != len(names):
            raise InputError(f"Class names must be unique, got {list(names)!r}.")
        return cls(names, len(names))

    def to_id(self, value: object) -> int:
        """Return the class id of an LF's answer (-1 for ABSTAIN/None) or raise NotAClassError."""
        if value is None:
            return ABSTAIN
        if isinstance(value, bool):
            raise NotAClassError(self._not_a_class(value))
        if isinstance(value, int | np.integer):
            value = int(value)
            if value == ABSTAIN or (
                value >= 0 and (self.cardinality is None or value < self.cardinality)
            ):
                return value
            raise NotAClassError(self._not_a_class(value))
        if isinstance(value, str):
            if self.names is not None and value in self.names:
                return self.names.index(value)
            raise NotAClassError(self._not_a_class(value))
        raise NotAClassError(self._not_a_class(value))

    def allowed(self) -> str:
        """Describe the allowed answers, for error messages."""
        if self.names is not None:
            ids = ", ".join(f"{i}={n!r}" for i, n in enumerate(self.names))
            return f"a class name or id ({ids}) or ABSTAIN (-1)/None"
        if self.cardinality is not None:
            return f"a class id 0..{self.cardinality - 1} or ABSTAIN (-1)/None"
        return "a class id >= 0 or ABSTAIN (-1)/None (pass classes=[names] to use class names)"

    def _not_a_class(self, value: object) -> str:
        hint = did_you_mean(value, self.names)
        return f"{value!r} is not a class of the task{hint}; allowed: {self.allowed()}"
