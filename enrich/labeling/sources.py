"""Where a job's LFs come from: ``module:attribute`` names and Python files.

>>> lfs = load_lfs(["labeling_functions.packs.youtube_spam:subscribe"])
>>> [lf.name for lf in lfs]
['subscribe']
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from enrich.errors import LFSourceError
from enrich.labeling.apply import as_labeling_function

if TYPE_CHECKING:
    from labeling_functions.core import LabelingFunction

__all__ = ["load_lfs", "split_lf_source"]

_CACHE_LOCK = threading.Lock()
_LF_CACHE: dict[tuple[Any, ...], tuple[Any, ...]] = {}


def split_lf_source(spec: str) -> tuple[str, str | None, bool]:
    """Split an LF source into (module or file, attribute or None, is_file).

    >>> split_lf_source("labeling_functions.packs.youtube_spam:LFS")
    ('labeling_functions.packs.youtube_spam', 'LFS', False)
    >>> split_lf_source("lfs/spam.py")
    ('lfs/spam.py', None, True)
    """
    target, _, attribute = spec.partition(":")
    is_file = target.endswith(".py") or "/" in target or "\\" in target
    return target, attribute or None, is_file


def load_lfs(sources: Sequence[str]) -> list[LabelingFunction]:
    """Import the LFs named by ``sources``, in order; cached per process and file version.

    Each source is ``"package.module:attribute"`` (an LF, or a list/tuple of LFs),
    ``"path/to/file.py"`` (its ``LFS`` attribute if it has one, else every LF it defines,
    in definition order) or ``"path/to/file.py:attribute"``. Snorkel LFs are accepted.

    Raises
    ------
    LFSourceError
        The module or file cannot be imported, the attribute is missing (the message lists
        the LFs the module has), or it holds something that is not an LF.
    """
    key = tuple((s, _file_stamp(s)) for s in sources)
    with _CACHE_LOCK:
        cached = _LF_CACHE.get(key)
    if cached is None:
        found: list[Any] = []
        for source in sources:
            found.extend(_load_source(source))
        cached = tuple(found)
        with _CACHE_LOCK:
            _LF_CACHE[key] = cached
    return list(cached)


def _file_stamp(source: str) -> tuple[int, int] | None:
    target, _, is_file = split_lf_source(source)
    if not is_file:
        return None
    try:
        stat = os.stat(target)
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


def _load_source(source: str) -> list[LabelingFunction]:
    target, attribute, is_file = split_lf_source(source)
    module = _import_file(target, source) if is_file else _import_module(target, source)
    if attribute is None:
        if not is_file:
            if hasattr(module, "LFS"):
                attribute = "LFS"
            else:
                raise LFSourceError(
                    f"LF source {source!r} names a module without an attribute; write "
                    f"'{target}:NAME' (its LFs: {_lf_names_in(module) or 'none'})"
                )
        elif hasattr(module, "LFS"):
            attribute = "LFS"
    if attribute is None:
        lfs = [value for value in vars(module).values() if _is_lf(value)]
        if not lfs:
            raise LFSourceError(
                f"LF file {target!r} defines no labeling functions; define some with "
                "labeling_functions (@labeling_function, keyword_lf, ...) or an LFS list"
            )
        return lfs
    value: Any = module
    for part in attribute.split("."):
        if not hasattr(value, part):
            raise LFSourceError(
                f"LF source {source!r}: {target!r} has no attribute {attribute!r}; its LFs: "
                f"{_lf_names_in(module) or 'none'}"
            )
        value = getattr(value, part)
    items = list(value) if isinstance(value, list | tuple) else [value]
    bad = [item for item in items if not _is_lf(item)]
    if bad or not items:
        raise LFSourceError(
            f"LF source {source!r} holds {_describe(bad[0]) if bad else 'an empty list'}, "
            "not labeling functions; point it at an LF or a list of LFs"
        )
    return [as_labeling_function(item) for item in items]


def _import_module(name: str, source: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise LFSourceError(
            f"cannot import module {name!r} of LF source {source!r} ({exc}); check the name, "
            "or give a file path (path/to/lfs.py)"
        ) from exc


def _import_file(path: str, source: str) -> Any:
    file = Path(path)
    if not file.is_file():
        raise LFSourceError(f"LF file {path!r} (from LF source {source!r}) does not exist")
    digest = hashlib.sha256(str(file.resolve()).encode()).hexdigest()[:12]
    name = f"_enrich_lfs_{file.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise LFSourceError(f"LF file {path!r} cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise LFSourceError(
            f"LF file {path!r} raised while importing: {type(exc).__name__}: {exc}"
        ) from exc
    except SystemExit as exc:  # exit status 0 would pass for a successful run
        sys.modules.pop(name, None)
        raise LFSourceError(
            f"LF file {path!r} called sys.exit({exc.code!r}) while importing; an LF file "
            "should only define LFs"
        ) from exc
    try:  # worker processes cannot import this module by name: ship its code by value
        import cloudpickle

        cloudpickle.register_pickle_by_value(module)
    except ImportError:  # pragma: no cover - cloudpickle comes with joblib and dask
        pass
    return module


def _is_lf(value: Any) -> bool:
    from labeling_functions.core import LabelingFunction

    if isinstance(value, LabelingFunction):
        return True
    return type(value).__module__.startswith("snorkel.") and hasattr(value, "name")


def _lf_names_in(module: Any) -> str:
    names = [name for name, value in vars(module).items() if _is_lf(value)]
    return ", ".join(names)


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}"
