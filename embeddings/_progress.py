"""Progress bars for long work, drawn only where a person sees them (``tqdm.auto``).

``progress=None`` shows a bar only for long calls (:data:`AUTO_PROGRESS_MIN_ITEMS` items or
more) and only when stderr is a terminal or the code runs in a notebook kernel: a log or a
pipe never receives carriage-return bars. ``True`` forces a bar, ``False`` never shows one.
enrich's own policy (:mod:`enrich._internal.progress`) uses the same :func:`interactive`.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

#: ``progress=None`` shows a bar only when a call has at least this many items.
AUTO_PROGRESS_MIN_ITEMS = 5_000


def interactive(stream: TextIO | None = None) -> bool:
    """Whether a person sees ``stream`` (default stderr): a terminal, or a notebook kernel.

    >>> import io
    >>> interactive(io.StringIO())
    False
    """
    if stream is None and "ipykernel" in sys.modules:  # Jupyter: tqdm.auto draws a widget
        return True
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def show_progress(progress: bool | None, n_items: int) -> bool:
    """Resolve a ``progress`` argument: True/False as given, None = long work a person sees.

    >>> show_progress(None, 10), show_progress(False, 100_000), show_progress(True, 10)
    (False, False, True)
    """
    if progress is None:
        return n_items >= AUTO_PROGRESS_MIN_ITEMS and interactive()
    return bool(progress)


def progress_bar(*, total: int, desc: str, enabled: bool) -> Any:
    """A ``tqdm.auto`` bar (a disabled one when ``enabled`` is False); use as a context manager."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, unit="item", leave=False)
