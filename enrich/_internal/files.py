"""Writing output files so that readers see the old file or the whole new one, never half.

>>> import tempfile
>>> from pathlib import Path
>>> with tempfile.TemporaryDirectory() as d:
...     out = write_atomic(Path(d) / "sub" / "note.txt", lambda p: p.write_text("done"))
...     out.read_text(), sorted(p.name for p in out.parent.iterdir())
('done', ['note.txt'])
"""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Callable
from pathlib import Path

from enrich.errors import DiskFullError

__all__ = ["mount_point", "write_atomic"]


def write_atomic(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Call ``write(partial)`` on a hidden file beside ``path``, then rename it to ``path``.

    The rename is atomic on one file system; if ``write`` fails the partial file is removed
    and ``path`` is left as it was. Parent folders are created. Returns ``path``.

    Raises
    ------
    DiskFullError
        The device is full: "no space left on <mount point>" (the partial file is removed).
    """
    path = Path(path)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(partial)
        os.replace(partial, path)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DiskFullError(
                f"no space left on {mount_point(path)}: cannot write {str(path)!r}; free some "
                "space and run again"
            ) from exc
        raise
    finally:
        partial.unlink(missing_ok=True)
    return path


def mount_point(path: str | os.PathLike[str]) -> Path:
    """The mount point that holds ``path`` (or its nearest existing ancestor).

    >>> str(mount_point("/"))
    '/'
    """
    current = Path(path).absolute()
    while not current.exists() and current != current.parent:
        current = current.parent
    current = current.resolve()
    while not os.path.ismount(current) and current != current.parent:
        current = current.parent
    return current
