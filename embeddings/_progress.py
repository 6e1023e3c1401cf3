"""Progress bars for long work: ``tqdm.auto`` (notebook- and terminal-aware), off on request."""

from __future__ import annotations

from typing import Any

#: ``progress=None`` shows a bar only when a call has at least this many items.
AUTO_PROGRESS_MIN_ITEMS = 5_000


def show_progress(progress: bool | None, n_items: int) -> bool:
    """Resolve a ``progress`` argument: True/False as given, None = only for long work.

    >>> show_progress(None, 10), show_progress(None, 100_000), show_progress(False, 100_000)
    (False, True, False)
    """
    if progress is None:
        return n_items >= AUTO_PROGRESS_MIN_ITEMS
    return bool(progress)


def progress_bar(*, total: int, desc: str, enabled: bool) -> Any:
    """A ``tqdm.auto`` bar (a disabled one when ``enabled`` is False); use as a context manager."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, unit="item", leave=False)
