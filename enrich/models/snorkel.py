"""Snorkel's ``LabelModel`` behind the enrich label-model API, for side-by-side comparisons.

Snorkel is imported only when a model is fitted or loaded.
"""

from __future__ import annotations

import logging
import random
from contextlib import contextmanager
from typing import Any

import numpy as np

from enrich._internal.vote_arrays import validate_gold, validate_votes
from enrich.errors import InputError, SnorkelNumericalError
from enrich.models.base import (
    VoteModel,
    check_cardinality,
    check_class_balance,
    check_fitted,
    check_random_state,
    predict_from_proba,
)

__all__ = ["SnorkelLabelModel", "SnorkelNumericalError"]

logger = logging.getLogger(__name__)


@contextmanager
def _global_rng_preserved() -> Any:
    """Snorkel's ``fit`` reseeds Python's, numpy's and torch's global RNGs; put them back."""
    import torch

    py_state = random.getstate()
    np_state = np.random.get_state()
    torch_state = torch.get_rng_state()
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)


class SnorkelLabelModel(VoteModel):
    """Adapter over ``snorkel.labeling.model.LabelModel`` (snorkel 0.10) with enrich's API.

    ``fit(L, y=None)`` returns self, ``predict_proba``/``predict`` validate their input like
    every enrich label model, ``random_state`` becomes Snorkel's ``seed``, no progress bar or
    log lines are printed, the global RNGs that Snorkel reseeds are restored, and the fitted
    parameters (``mu``, class balance) are saved as JSON.

    What Snorkel cannot do, and what this adapter does about it:

    * fewer than 3 LFs: Snorkel refuses; ``fit`` raises :class:`~enrich.errors.InputError`.
    * class balance: Snorkel takes it from the user (or a fully labelled dev set) and assumes
      uniform otherwise; it is never estimated from the votes. Here ``class_balance`` is passed
      through; gold labels given to ``fit`` only estimate the balance (add-one smoothed), they
      are not clamped as in :class:`enrich.LabelModel`.
    * NaN: with many dense LFs or many classes Snorkel's optimisation can diverge and its
      probabilities become NaN; ``predict_proba`` then raises :class:`SnorkelNumericalError`
      instead of returning them.
    * abstains are ignored at prediction time, and the ``m*k x m*k`` dense matrices it builds
      make it slow and memory hungry for many LFs or classes.

    Parameters (keyword-only): ``cardinality``, ``class_balance`` (``None`` = uniform, as in
    Snorkel), ``n_epochs``, ``lr``, ``l2``, ``optimizer``, ``prec_init`` (Snorkel's defaults),
    ``random_state`` (None, int or Generator).

    Fitted attributes: ``classes_``, ``n_lfs_``, ``class_balance_``, ``mu_`` (``(n_lfs * k,
    k)``, ``mu_[j * k + v, y] = P(LF j votes v | y)``).

    Example:
        >>> import numpy as np
        >>> L = np.array([[0, 0, 0], [1, 1, 1], [0, 0, -1], [1, -1, 1], [0, 1, 0]])
        >>> model = SnorkelLabelModel(cardinality=2, random_state=0).fit(L)
        >>> model.predict(L).tolist()
        [0, 1, 0, 1, 0]
    """

    def __init__(
        self,
        *,
        cardinality: int = 2,
        class_balance: Any = None,
        n_epochs: int = 100,
        lr: float = 0.01,
        l2: float = 0.0,
        optimizer: str = "sgd",
        prec_init: float = 0.7,
        random_state: Any = None,
    ) -> None:
        self.cardinality = cardinality
        self.class_balance = class_balance
        self.n_epochs = n_epochs
        self.lr = lr
        self.l2 = l2
        self.optimizer = optimizer
        self.prec_init = prec_init
        self.random_state = random_state

    def _seed(self) -> int:
        rng = check_random_state(self.random_state)  # validates it too
        if isinstance(self.random_state, int | np.integer):
            return int(self.random_state)  # Snorkel's own seed: the same fit as before
        return int(rng.integers(0, 2**31 - 1))

    def fit(self, L: Any, y: Any = None) -> SnorkelLabelModel:
        """Fit Snorkel's LabelModel on ``L`` and return self.

        Optional gold ``y`` (-1 = unknown) only estimates the class balance.
        """
        k = check_cardinality(self.cardinality)
        prior = check_class_balance(self.class_balance, k)
        if self.optimizer not in ("sgd", "adam", "adamax"):
            raise InputError(f"optimizer must be 'sgd', 'adam' or 'adamax'; got {self.optimizer!r}")
        seed = self._seed()
        votes = validate_votes(L, cardinality=k)
        n, m = votes.shape
        if m < 3:
            raise InputError(
                f"Snorkel's LabelModel needs at least 3 labeling functions; L has {m}. Use "
                "enrich.LabelModel (works with 1 or 2) or add LFs"
            )
        if y is not None:
            gold = validate_gold(y, n_assets=n, cardinality=k)
            known = gold[gold >= 0]
            if prior is None and known.size:
                counts = np.bincount(known, minlength=k) + 1.0
                prior = counts / counts.sum()
        from snorkel.labeling.model import LabelModel as _Snorkel

        model = _Snorkel(cardinality=k, verbose=False)
        with _global_rng_preserved():
            model.fit(
                np.asarray(votes, dtype=np.int64),
                class_balance=None if prior is None else prior.tolist(),
                progress_bar=False,
                n_epochs=int(self.n_epochs),
                lr=float(self.lr),
                l2=float(self.l2),
                optimizer=self.optimizer,
                prec_init=float(self.prec_init),
                seed=seed,
                log_freq=max(int(self.n_epochs), 1),
            )
        self._model = model
        self.classes_ = np.arange(k)
        self.n_lfs_ = m
        self.n_features_in_ = m
        self.class_balance_ = np.asarray(model.p, dtype=np.float64)
        self.mu_ = model.mu.detach().cpu().numpy().astype(np.float64)
        return self

    def predict_proba(self, L: Any) -> np.ndarray:
        """Snorkel's probabilities ``(n_assets, k)``.

        Raises :class:`SnorkelNumericalError` when Snorkel returns NaN.
        """
        check_fitted(self)
        k = len(self.classes_)
        votes = validate_votes(L, cardinality=k, n_lfs=self.n_lfs_)
        if votes.shape[0] == 0:
            return np.zeros((0, k))
        with np.errstate(all="ignore"):
            proba = np.asarray(
                self._snorkel().predict_proba(np.asarray(votes, dtype=np.int64)), dtype=np.float64
            )
        bad = ~np.isfinite(proba).all(axis=1)
        if bad.any():
            raise SnorkelNumericalError(
                f"Snorkel's LabelModel returned NaN probabilities for {int(bad.sum())} of "
                f"{len(bad)} rows (first: row {int(np.argmax(bad))}); this is a known Snorkel "
                "failure with many dense LFs or many classes. Try lr=0.001 or use "
                "enrich.LabelModel"
            )
        return proba

    def predict(self, L: Any) -> np.ndarray:
        """Most probable class; exact ties go to the lowest class id."""
        return predict_from_proba(self.predict_proba(L))

    def _snorkel(self) -> Any:
        model = getattr(self, "_model", None)
        if model is None:  # loaded from JSON: rebuild Snorkel's object from the parameters
            import torch
            from snorkel.labeling.model import LabelModel as _Snorkel

            model = _Snorkel(cardinality=len(self.classes_), verbose=False)
            model.m = self.n_lfs_
            model._create_tree()
            model.mu = torch.nn.Parameter(torch.tensor(self.mu_, dtype=torch.float32))
            model.p = self.class_balance_.copy()
            self._model = model
        return model

    _FORMAT = "enrich.SnorkelLabelModel"
    _FORMAT_VERSION = 1

    def _fitted_state(self) -> dict[str, Any]:
        return {
            "n_lfs": int(self.n_lfs_),
            "class_balance": self.class_balance_.tolist(),
            "mu": self.mu_.tolist(),
        }

    def _restore(self, fitted: dict[str, Any]) -> None:
        """Set the fitted parameters (Snorkel itself is imported on first prediction)."""
        self.classes_ = np.arange(int(self.cardinality))
        self.n_lfs_ = int(fitted["n_lfs"])
        self.n_features_in_ = self.n_lfs_
        self.class_balance_ = np.asarray(fitted["class_balance"], dtype=np.float64)
        self.mu_ = np.asarray(fitted["mu"], dtype=np.float64)
