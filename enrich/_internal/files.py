"""Writing output files so that readers see the old file or the whole new one, never half.

>>> import tempfile
>>> from pathlib import Path
>>> with tempfile.TemporaryDirectory() as d:
...     out = write_atomic(Path(d) / "sub" / "note.txt", lambda p: p.write_text("done"))
...     out.read_text(), sorted(p.name for p in out.parent.iterdir())
('done', ['note.txt'])
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Call ``write(partial)`` on a hidden file beside ``path``, then rename it to ``path``.

    The rename is atomic on one file system; if ``write`` fails the partial file is removed
    and ``path`` is left as it was. Parent folders are created. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path
