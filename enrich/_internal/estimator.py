"""scikit-learn's estimator conventions, kept without importing scikit-learn.

enrich's label models follow them: every hyperparameter is a keyword argument of
``__init__`` stored unchanged under its own name, and ``get_params``/``set_params`` read and
write them, so ``sklearn.base.clone``, pipelines and parameter searches take the models as
they take scikit-learn's own. :class:`Estimator` implements those methods itself instead of
inheriting ``sklearn.base.BaseEstimator``: importing scikit-learn costs about a second (it
loads pandas and ``scipy.stats``), which every nightly run paid for two small methods. The
tags that only scikit-learn asks for are taken from scikit-learn when it asks.

Example:
    >>> class Smoother(Estimator):
    ...     def __init__(self, *, alpha=1.0, seed=None):
    ...         self.alpha = alpha
    ...         self.seed = seed
    >>> model = Smoother(alpha=0.5)
    >>> model.get_params()
    {'alpha': 0.5, 'seed': None}
    >>> model.set_params(seed=3)
    Smoother(alpha=0.5, seed=3)
"""

from __future__ import annotations

import inspect
from typing import Any, Self

__all__ = ["Estimator"]


class Estimator:
    """Base class of enrich's models: ``get_params``, ``set_params`` and a short ``repr``.

    A subclass takes its hyperparameters as keyword arguments of ``__init__`` and stores each
    unchanged under the same name (no ``*args`` or ``**kwargs``). enrich's models hold no
    nested estimators, so ``deep`` changes nothing.
    """

    @classmethod
    def _init_parameters(cls) -> dict[str, inspect.Parameter]:
        parameters = inspect.signature(cls.__init__).parameters
        return {name: p for name, p in parameters.items() if name != "self"}

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The hyperparameters, by name (``deep`` is accepted for scikit-learn)."""
        return {name: getattr(self, name) for name in sorted(self._init_parameters())}

    def set_params(self, **params: Any) -> Self:
        """Set hyperparameters by name; returns self. Unknown names raise ``ValueError``."""
        valid = self._init_parameters()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"{name!r} is not a parameter of {type(self).__name__}; "
                    f"its parameters are {sorted(valid)}"
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        """The class and the hyperparameters that differ from their defaults."""
        defaults = self._init_parameters()
        changed = [
            f"{name}={value!r}"
            for name, value in self.get_params().items()
            if repr(value) != repr(defaults[name].default)
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's default estimator tags (only scikit-learn calls this)."""
        from sklearn.base import BaseEstimator

        return BaseEstimator.__sklearn_tags__(self)
