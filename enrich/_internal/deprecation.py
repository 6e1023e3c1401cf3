"""Old module paths of the flat 0.1 layout: importable for one release, with a warning.

``import enrich.label_model`` still works and gives :mod:`enrich.models.label_model` itself
(same classes, so ``isinstance`` checks hold), after a :class:`DeprecationWarning` that
names the new path. :data:`MOVED` is the whole table; :func:`install` is called once by
``enrich/__init__.py``.

>>> import importlib, sys, warnings
>>> _ = sys.modules.pop("enrich.gaps", None)
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     old = importlib.import_module("enrich.gaps")
>>> old is importlib.import_module("enrich.curation.gaps"), caught[0].category.__name__
(True, 'DeprecationWarning')
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
import warnings
from collections.abc import Sequence
from typing import Any, Final

__all__ = ["MOVED", "install"]

MOVED: Final[dict[str, str]] = {
    "enrich._votes": "enrich._internal.vote_arrays",
    "enrich.agreement": "enrich.analysis.consensus",
    "enrich.apply": "enrich.labeling.apply",
    "enrich.charts": "enrich.io.charts",
    "enrich.classes": "enrich._internal.classes",
    "enrich.config": "enrich.job.config",
    "enrich.display": "enrich._internal.display",
    "enrich.engines": "enrich.labeling.engines",
    "enrich.enriched": "enrich.models.output",
    "enrich.estimator": "enrich._internal.estimator",
    "enrich.files": "enrich._internal.files",
    "enrich.frames": "enrich._internal.frames",
    "enrich.gap_filling": "enrich.curation.gap_filling",
    "enrich.gaps": "enrich.curation.gaps",
    "enrich.gold": "enrich.analysis.gold",
    "enrich.label_model": "enrich.models.label_model",
    "enrich.label_output": "enrich.models.output",
    "enrich.label_studio": "enrich.io.label_studio",
    "enrich.lineage": "enrich.io.lineage",
    "enrich.majority_vote": "enrich.models.majority_vote",
    "enrich.report": "enrich.io.report",
    "enrich.review": "enrich.curation.review",
    "enrich.slices": "enrich.analysis.slices",
    "enrich.snorkel_backend": "enrich.models.snorkel",
    "enrich.store": "enrich.io.store",
    "enrich.summary": "enrich.analysis.summary",
}
"""Old module path -> the module that now holds its code."""

# Old paths that are also a function of the package: the alias stays callable, because
# ``import enrich.apply`` rebinds the attribute ``enrich.apply`` to the imported module.
_CALLABLE: Final[dict[str, str]] = {"enrich.apply": "apply"}


class _CallableModule(types.ModuleType):
    """The moved module that also calls one of its functions."""

    def __init__(self, name: str, target: types.ModuleType, function: str) -> None:
        super().__init__(name, target.__doc__)
        self._target = target
        self._function = function

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(self._target, self._function)(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old paths of :data:`MOVED` and loads the module at the new path."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        new = MOVED[spec.name]
        warnings.warn(
            f"{spec.name} moved to {new}; import from there (or from `enrich`). "
            "The old path goes away in the next release.",
            DeprecationWarning,
            stacklevel=2,
        )
        module = importlib.import_module(new)
        if spec.name in _CALLABLE:
            return _CallableModule(spec.name, module, _CALLABLE[spec.name])
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: the module at the new path is already loaded."""


def install() -> None:
    """Put the finder of old paths on ``sys.meta_path`` (once)."""
    if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(_MovedModules())
