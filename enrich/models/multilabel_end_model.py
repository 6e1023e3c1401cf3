"""One-vs-rest end model for a multi-label task: one :class:`EndModel` per label.

Each label is a binary task (absent / present) trained on the multi-label model's
probability of that label, over the rows where some LF voted on it (or with gold), so the
end model labels the assets no LF covers and gives out-of-fold probabilities per label.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(200, 4))
>>> proba = np.stack([X[:, 0] > 0, X[:, 1] > 0], axis=1) * 0.8 + 0.1
>>> model = MultiLabelEndModel(end_model=EndModel(cv=2, random_state=0)).fit(X, proba)
>>> model.predict_proba(X[:3]).shape, model.predict(X[:3]).dtype.name
((3, 2), 'int8')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from enrich._internal.estimator import Estimator
from enrich.errors import InputError, NotFittedError
from enrich.models.end_model import EndModel
from enrich.multilabel_votes import MultiLabelVoteMatrix

__all__ = ["MultiLabelEndModel"]


class MultiLabelEndModel(Estimator):
    """A classifier per label, trained on a multi-label model's probabilities (one-vs-rest).

    Parameters
    ----------
    end_model
        the :class:`EndModel` to copy for each label (its parameters are copied; it is never
        fitted itself). None: ``EndModel()`` with its defaults.
    thresholds
        probability from which :meth:`predict` says a label is present: one float or one per
        label (e.g. ``MultiLabelModel.thresholds_``).

    Attributes
    ----------
    models_ : the fitted :class:`EndModel` of each label.
    label_names_ : tuple of str.
    oof_proba_ : ``(n, n_labels)`` out-of-fold probability of each label for ``fit``'s rows.

    Notes
    -----
    Features are computed once per label: pass precomputed embeddings (a numpy matrix or an
    embedding column) rather than an ``encoder`` when there are many labels, or wrap the
    encoder in an ``EmbeddingCache``.
    """

    def __init__(
        self, *, end_model: EndModel | None = None, thresholds: float | Sequence[float] = 0.5
    ) -> None:
        self.end_model = end_model
        self.thresholds = thresholds

    def fit(
        self,
        X: Any,
        proba: Any,
        *,
        votes: Any = None,
        gold: Any = None,
        label_names: Sequence[str] | None = None,
    ) -> MultiLabelEndModel:
        """Train one end model per label; returns self.

        Parameters
        ----------
        X
            the assets' features, as for :meth:`EndModel.fit`.
        proba
            ``(n, n_labels)`` probability of each label (``MultiLabelModel.predict_proba``).
        votes
            optional :class:`~enrich.MultiLabelVoteMatrix` (or int array ``(n, n_lfs,
            n_labels)``): a label's model trains only on rows where some LF voted on it.
        gold
            optional gold label sets ``(n, n_labels)``, -1 unknown.
        label_names
            default: the vote matrix's, else ``"0"``, ``"1"``...

        Raises
        ------
        InputError
            Shapes that do not match, or a label whose training rows hold one class only
            (the message names the label).
        """
        p = np.asarray(proba, dtype=float)
        if p.ndim != 2:
            raise InputError(f"proba must be (n_assets, n_labels), got shape {p.shape}")
        n, k = p.shape
        names = _label_names(label_names, votes, k)
        vote_array = None
        if votes is not None:
            vote_array = np.asarray(
                votes.votes if isinstance(votes, MultiLabelVoteMatrix) else votes
            )
            if vote_array.ndim != 3 or vote_array.shape[0] != n or vote_array.shape[2] != k:
                raise InputError(
                    f"votes must have shape ({n}, n_lfs, {k}) to match proba, got "
                    f"{vote_array.shape}"
                )
        gold_sets = None if gold is None else np.asarray(gold)
        if gold_sets is not None and gold_sets.shape != (n, k):
            raise InputError(f"gold must have shape ({n}, {k}), got {gold_sets.shape}")
        template = self.end_model if self.end_model is not None else EndModel()
        self.thresholds_ = _thresholds(self.thresholds, k)
        self.models_ = []
        oof = np.empty((n, k))
        for t in range(k):
            target = np.stack([1.0 - p[:, t], p[:, t]], axis=1)
            binary = None
            if vote_array is not None:
                column = vote_array[:, :, t]
                binary = np.where(column > 0, 1, np.where(column < 0, 0, -1))
            model = EndModel(**template.get_params())
            try:
                model.fit(
                    X,
                    target,
                    votes=binary,
                    gold=None if gold_sets is None else gold_sets[:, t],
                    class_names=("absent", "present"),
                )
            except InputError as exc:
                raise InputError(f"label {names[t]!r}: {exc}") from exc
            self.models_.append(model)
            oof[:, t] = model.oof_proba_[:, 1]
        self.label_names_ = names
        self.oof_proba_ = oof
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Return ``(n, n_labels)``: each label's calibrated probability for new assets."""
        if not hasattr(self, "models_"):
            raise NotFittedError(
                "this MultiLabelEndModel is not fitted yet; call .fit(X, proba) first"
            )
        return np.stack([m.predict_proba(X)[:, 1] for m in self.models_], axis=1)

    def predict(self, X: Any) -> np.ndarray:
        """Return predicted label sets, int8 ``(n, n_labels)``: 1 where proba >= threshold."""
        return (self.predict_proba(X) >= self.thresholds_).astype(np.int8)


def _label_names(label_names: Any, votes: Any, k: int) -> tuple[str, ...]:
    if label_names is None and isinstance(votes, MultiLabelVoteMatrix):
        label_names = votes.label_names
    names = tuple(str(i) for i in range(k)) if label_names is None else tuple(label_names)
    if len(names) != k:
        raise InputError(f"label_names has {len(names)} names for {k} labels")
    return names


def _thresholds(thresholds: Any, k: int) -> np.ndarray:
    try:
        values = np.broadcast_to(np.asarray(thresholds, dtype=float), (k,)).copy()
    except ValueError:
        values = np.array([np.nan])
    if values.shape != (k,) or not np.all((values > 0) & (values <= 1)):
        raise InputError(
            f"thresholds must be one float in (0, 1] or one per label ({k}), got {thresholds!r}"
        )
    return values
