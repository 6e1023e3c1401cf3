"""What is being labeled: one class per asset (multi-class) or any subset of labels (multi-label).

A :class:`Task` names its labels and says how many an asset may have. Several named tasks over
the same assets (spam or not, *and* which video a comment belongs to) are several tasks, each
with its own LFs: :func:`enrich.apply_tasks` applies them in one call.

>>> spam = Task.multiclass(["HAM", "SPAM"], name="spam")
>>> attributes = Task.multilabel(["even", "at_least_five", "closed_loop"], name="digit")
>>> spam.kind, attributes.kind, attributes.n_labels, attributes.to_id("closed_loop")
('multiclass', 'multilabel', 3, 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from enrich._internal.classes import TaskClasses, did_you_mean
from enrich.errors import InputError, NotAClassError

__all__ = ["Task", "TaskKind"]

TaskKind = Literal["multiclass", "multilabel"]


@dataclass(frozen=True)
class Task:
    """A labeling task: its kind, its label (class) names and a name.

    Parameters
    ----------
    kind
        ``"multiclass"``: each asset has exactly one of ``labels`` (votes are class ids,
        ``-1`` = abstain; :class:`~enrich.VoteMatrix`). ``"multilabel"``: each asset has any
        subset of ``labels``; an LF votes for a label, against it
        (:class:`labeling_functions.Against`) or abstains, per label
        (:class:`~enrich.MultiLabelVoteMatrix`).
    labels
        the class (label) names, unique non-empty strings.
    name
        the task's name, used to prefix its columns when several tasks share one table.

    Raises
    ------
    InputError
        An unknown kind, no labels, repeated or empty label names, or an empty name.

    Examples
    --------
    >>> Task("multilabel", ("cat", "dog")).labels
    ('cat', 'dog')
    """

    kind: TaskKind
    labels: tuple[str, ...]
    name: str = "task"

    def __post_init__(self) -> None:
        if self.kind not in ("multiclass", "multilabel"):
            raise InputError(f"Task kind must be 'multiclass' or 'multilabel', got {self.kind!r}.")
        if isinstance(self.labels, str) or not isinstance(self.labels, Sequence):
            raise InputError(
                f"Task labels must be a list of label names, got {self.labels!r}; "
                "e.g. Task.multilabel(['even', 'closed_loop'])."
            )
        labels = tuple(self.labels)
        TaskClasses.of(list(labels))  # names: non-empty, unique strings
        object.__setattr__(self, "labels", labels)
        if not isinstance(self.name, str) or not self.name.strip():
            raise InputError(f"A task name must be a non-empty string, got {self.name!r}.")

    @classmethod
    def multiclass(cls, classes: Sequence[str], *, name: str = "task") -> Task:
        """One class per asset out of ``classes`` (what ``enrich.apply(classes=...)`` does)."""
        return cls("multiclass", classes, name)  # type: ignore[arg-type]

    @classmethod
    def multilabel(cls, labels: Sequence[str], *, name: str = "task") -> Task:
        """Any subset of ``labels`` per asset; LFs vote for or against each label, or abstain."""
        return cls("multilabel", labels, name)  # type: ignore[arg-type]

    @property
    def n_labels(self) -> int:
        """The number of labels (classes)."""
        return len(self.labels)

    def to_id(self, label: object) -> int:
        """Return the id (position) of a label given by name or id.

        Raises
        ------
        NotAClassError
            ``label`` is neither one of the names nor an id ``0..n_labels-1``.

        Examples
        --------
        >>> Task.multilabel(["cat", "dog"]).to_id("dog"), Task.multilabel(["cat", "dog"]).to_id(0)
        (1, 0)
        """
        if isinstance(label, str) and label in self.labels:
            return self.labels.index(label)
        if isinstance(label, int) and not isinstance(label, bool) and 0 <= label < self.n_labels:
            return int(label)
        ids = ", ".join(f"{i}={n!r}" for i, n in enumerate(self.labels))
        raise NotAClassError(
            f"{label!r} is not a label of task {self.name!r}{did_you_mean(label, self.labels)}; "
            f"allowed: a label name or id ({ids})"
        )
