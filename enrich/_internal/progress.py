"""One progress policy for all of enrich: a bar only for long work, only for a person.

``progress=None`` (the default of every enrich call) shows a bar only where someone can see
it -- stderr is a terminal, or the code runs in a notebook kernel -- and only for long work:
the bar appears after :data:`LONG_WORK_S` seconds, so quick calls print nothing. When stderr
is a file or a pipe (a log), nothing is drawn: no carriage-return bars in logs. ``True``
forces a bar at once, ``False`` never shows one. The CLI's ``--quiet`` passes ``False``.

:func:`progress_policy` resolves the argument once, for calls that hand it on to code with
the same ``None`` convention (``None`` stays ``None`` only where a person is watching);
:func:`progress_bar` is the bar itself.

>>> progress_policy(False), progress_policy(True)
(False, True)
>>> with progress_bar(False, total=3, desc="work") as bar:
...     bar.update(3)
"""

from __future__ import annotations

from typing import Any

from embeddings._progress import interactive

__all__ = ["LONG_WORK_S", "interactive", "progress_bar", "progress_policy"]

LONG_WORK_S = 1.0
"""With ``progress=None``, a bar appears only once the work has run this many seconds."""


def progress_policy(progress: bool | None) -> bool | None:
    """``progress`` resolved for this process: False where nobody watches.

    Parameters
    ----------
    progress
        None (bars for long work, where a person sees them), True (always) or False (never).

    Returns
    -------
    bool or None
        ``True`` and ``False`` as given; ``None`` stays ``None`` in a terminal or notebook
        (each step decides what is long) and becomes ``False`` elsewhere (logs, pipes).
    """
    if progress is None:
        return None if interactive() else False
    return bool(progress)


class _NoBar:
    """A bar that draws nothing (the same methods as tqdm's)."""

    total = 0

    def update(self, n: int = 1) -> None:
        """Do nothing."""

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def progress_bar(progress: bool | None, *, total: int, desc: str, unit: str = "step") -> Any:
    """A progress bar for ``total`` steps under the policy ``progress``; a context manager.

    A ``tqdm.auto`` bar (a widget in a notebook), shown at once with ``progress=True`` and
    after :data:`LONG_WORK_S` seconds with ``None`` where a person watches; otherwise one
    that draws nothing (tqdm is not even imported).
    """
    resolved = progress_policy(progress)
    if resolved is False:
        return _NoBar()
    from tqdm.auto import tqdm

    delay = 0.0 if resolved else LONG_WORK_S
    return tqdm(total=total, desc=desc, unit=unit, delay=delay, leave=False)
