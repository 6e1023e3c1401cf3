"""A label model for multi-label votes: one binary :class:`LabelModel` per label.

Each label is a binary task (absent / present) over the LFs that may vote on it
(:meth:`~enrich.MultiLabelVoteMatrix.for_label`): a vote for the label is a vote for
"present", a vote against it a vote for "absent". Each label's model has the robustness of
the single-label one (detector and annotator LFs, the structure check that falls back to
equal weights, gold where it helps). The result is a calibrated probability per label and a
predicted label set, with a threshold per label.

>>> import numpy as np
>>> votes = np.zeros((6, 3, 2), dtype=np.int8)
>>> votes[:3, 0, 0] = votes[:3, 1, 0] = 1      # assets 0-2: two LFs say label 0
>>> votes[3:, 2, 0] = -1                       # assets 3-5: one LF says not label 0
>>> votes[[0, 3], 2, 1] = 1                    # label 1: a vote for it on assets 0 and 3
>>> model = MultiLabelModel(thresholds=0.5, cooccurrence=False, random_state=0).fit(votes)
>>> model.predict(votes).tolist()
[[1, 1], [1, 0], [1, 0], [0, 1], [0, 0], [0, 0]]
>>> model.predict_proba(votes)[:, 1].round(2).tolist()  # no vote: the label's prior, 2/6
[0.51, 0.33, 0.33, 0.51, 0.33, 0.33]
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np

from enrich._internal.estimator import Estimator
from enrich._internal.files import write_atomic
from enrich.errors import InputError, LabelModelFileError, NotFittedError, VoteValueError
from enrich.models.label_model import LabelModel
from enrich.multilabel_votes import MultiLabelVoteMatrix

__all__ = ["MultiLabelModel", "multilabel_votes_array"]

_FORMAT = "enrich.MultiLabelModel"
_FORMAT_VERSION = 1

Structure = Literal["auto", "em", "vote"]


def multilabel_votes_array(L: Any, *, name: str = "L") -> np.ndarray:
    """Check multi-label votes and return them as an int8 array ``(n, n_lfs, n_labels)``.

    Accepts a :class:`~enrich.MultiLabelVoteMatrix` or any 3-D integer array of +1 (for),
    -1 (against) and 0 (abstain).

    Raises
    ------
    InputError
        Not 3-D.
    VoteValueError
        A value other than -1, 0 or +1 (the message gives its position).

    Examples
    --------
    >>> multilabel_votes_array([[[1, 0]], [[-1, 1]]]).shape
    (2, 1, 2)
    """
    votes = np.asarray(L.votes if isinstance(L, MultiLabelVoteMatrix) else L)
    if votes.ndim != 3:
        raise InputError(
            f"{name} must be multi-label votes of shape (n_assets, n_lfs, n_labels), got shape "
            f"{votes.shape}; build them with enrich.apply(lfs, data, task=Task.multilabel(...))"
        )
    if (
        votes.size
        and not np.issubdtype(votes.dtype, np.integer)
        and not np.all(np.isin(votes, (-1, 0, 1)))
    ):
        raise VoteValueError(f"{name} must hold the integers -1, 0 and +1 only")
    bad = (votes < -1) | (votes > 1)
    if bad.any():
        i, j, k = (int(x) for x in np.argwhere(bad)[0])
        raise VoteValueError(
            f"{name} holds {votes[i, j, k]} at asset {i}, LF {j}, label {k}; multi-label votes "
            "are +1 (for), -1 (against) or 0 (abstain)"
        )
    return votes.astype(np.int8, copy=False)


class MultiLabelModel(Estimator):
    """Per-label weak-supervision label model for multi-label votes.

    Parameters
    ----------
    thresholds
        probability from which a label is predicted present: one float (default 0.5) for
        every label, or one per label. ``"f1"``: per label, the threshold that maximises the
        F1 the model expects on the fit data from its own probabilities (predicting the
        ``m`` likeliest assets present gives the expected F1 ``2 * sum of their p / (m + sum
        of all p)``); it needs no gold and lies below 0.5 where a label's F1 gains from
        recall. :meth:`tune_thresholds` sets them from gold labels instead. (On the
        benchmark digits, ``"f1"`` helps labels scored independently, +0.004 macro F1, and
        changes nothing once ``cooccurrence`` is on; see ``benchmarks/RESULTS.md``.)
    label_prior
        the share of assets that have each label. ``"auto"`` (default) lets each label's
        :class:`LabelModel` estimate it where LFs vote both for and against the label; where
        they only vote for it (or only against it), the estimate would be degenerate, so the
        prior is the share of assets with a vote for the label (or one minus the share with
        a vote against it), clipped to [0.01, 0.99]: an asset no LF voted on then gets that
        share. A float or one float per label fixes it.
    cooccurrence
        use how labels occur together (default True). After the per-label models, each
        label's prior is made conditional on the other labels: the assets are grouped by the
        labels the per-label models predict for the *other* labels (present, absent, or no
        vote), and each group's share of the label is estimated from the assets where LFs
        voted on it or gold is known (smoothed towards the label's prior with 10
        pseudo-assets; gold values, where given to :meth:`fit`, replace the predictions). That
        share
        replaces the prior in the label's posterior -- for an asset no LF voted on, it *is*
        the probability. A digit predicted "at least five" without a closed loop is then
        unlikely to be "even" even where no LF voted on evenness. False keeps the labels
        independent.
    structure, lf_kind, max_fit_rows
        passed to each label's :class:`LabelModel` (see there).
    random_state
        None, an int or a ``numpy.random.Generator``; each label's model gets a seed drawn
        from it (``None``: seed 0), so fits are deterministic.

    Fitted attributes
    -----------------
    n_labels_ : number of labels. label_names_ : their names (``"0"``, ``"1"`` ... for arrays).
    n_lfs_ : number of LFs seen at fit time.
    lf_columns_ : per label, the LF positions its model reads (the LFs that may vote on it).
    models_ : per label, the fitted binary :class:`LabelModel` (None where no LF ever voted
        on the label: its probability is then its prior).
    label_prior_ : ``(n_labels,)`` the prior share of each label used for the fit.
    cooccurrence_ : per label, ``(codes, priors)``: the patterns of the other labels (base-3
        codes of absent 0 / present 1 / no vote 2) seen at fit time and the label's prior in
        each; empty arrays when ``cooccurrence=False``.
    thresholds_ : ``(n_labels,)`` the thresholds :meth:`predict` uses.

    Examples
    --------
    >>> votes = np.array([[[1, -1]], [[1, 0]], [[-1, 1]], [[0, 0]]], dtype=np.int8)
    >>> model = MultiLabelModel(thresholds=[0.5, 0.6], label_prior=0.3).fit(votes)
    >>> model.predict_proba(votes).shape, model.thresholds_.tolist()
    ((4, 2), [0.5, 0.6])
    """

    def __init__(
        self,
        *,
        thresholds: Literal["f1"] | float | Sequence[float] = 0.5,
        label_prior: Literal["auto"] | float | Sequence[float] = "auto",
        cooccurrence: bool = True,
        structure: Structure = "auto",
        lf_kind: Literal["auto", "detector", "annotator"] = "auto",
        max_fit_rows: int | None = 50_000,
        random_state: Any = None,
    ) -> None:
        self.thresholds = thresholds
        self.label_prior = label_prior
        self.cooccurrence = cooccurrence
        self.structure = structure
        self.lf_kind = lf_kind
        self.max_fit_rows = max_fit_rows
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    def fit(self, L: Any, Y: Any = None, *, sample_weight: Any = None) -> MultiLabelModel:
        """Fit one binary label model per label; returns self.

        Parameters
        ----------
        L
            a :class:`~enrich.MultiLabelVoteMatrix` or an int array ``(n, n_lfs, n_labels)``
            of +1 / -1 / 0.
        Y
            optional gold label sets ``(n, n_labels)``: 1 present, 0 absent, -1 unknown;
            passed to each label's model (used where it measurably helps).
        sample_weight
            optional non-negative weight per row ``(n,)``: a row of weight ``w`` counts as
            ``w`` identical rows (fit once per distinct vote pattern, weighted by its count,
            and get the fit of every row).

        Raises
        ------
        InputError
            Bad shapes or hyperparameters.
        VoteValueError
            Votes or gold outside their allowed values.
        """
        votes = multilabel_votes_array(L)
        n, m, k = votes.shape
        thresholds = self._thresholds_array(k)
        priors = self._prior_array(k)
        gold = self._gold(Y, n, k)
        weight = _weights(sample_weight, n)
        self.label_names_ = (
            tuple(L.label_names)
            if isinstance(L, MultiLabelVoteMatrix)
            else tuple(str(i) for i in range(k))
        )
        seeds = _seeds(self.random_state, k)
        self.lf_columns_ = []
        self.models_: list[LabelModel | None] = []
        label_prior = np.zeros(k)
        for t in range(k):
            columns = _columns_for(L, votes, t)
            binary = _binary(votes[:, columns, t])
            voted = binary != -1
            prior = priors[t] if priors is not None else _auto_prior(binary, weight)
            self.lf_columns_.append(np.asarray(columns, dtype=np.int64))
            if not voted.any():
                self.models_.append(None)
                label_prior[t] = 0.5 if prior is None else prior
                continue
            model = LabelModel(
                cardinality=2,
                class_balance=None if prior is None else [1.0 - prior, prior],
                structure=self.structure,
                lf_kind=self.lf_kind,
                max_fit_rows=self.max_fit_rows,
                random_state=seeds[t],
            )
            model.fit(binary, None if gold is None else gold[:, t], sample_weight=sample_weight)
            self.models_.append(model)
            label_prior[t] = float(model.class_balance_[1])
        self.n_labels_ = k
        self.n_lfs_ = m
        self.label_prior_ = label_prior
        self.thresholds_ = np.full(k, 0.5) if thresholds is None else thresholds
        empty = (np.zeros(0, dtype=np.int64), np.zeros(0))
        self.cooccurrence_ = [empty] * k
        if self.cooccurrence and k > 1:
            self.cooccurrence_ = self._fit_cooccurrence(votes, gold, weight)
        if thresholds is None:
            proba = self.predict_proba(votes)
            self.thresholds_ = np.array(
                [_expected_f1_threshold(proba[:, t], weight) for t in range(k)]
            )
        return self

    # ------------------------------------------------------------------ predict
    def predict_proba(self, L: Any) -> np.ndarray:
        """Return ``(n, n_labels)`` float: the probability that each asset has each label.

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        InputError
            Votes of another number of LFs or labels than at fit time.
        """
        votes = self._check_votes(L)
        base, covered = self._independent_proba(votes)
        if not any(len(codes) for codes, _ in self.cooccurrence_):
            return base
        out = base.copy()
        for t, (codes, priors) in enumerate(self.cooccurrence_):
            if not len(codes):
                continue
            pattern = _other_patterns(base, covered, t)
            at = np.clip(np.searchsorted(codes, pattern), 0, len(codes) - 1)
            known = codes[at] == pattern
            conditional = np.where(known, priors[at], self.label_prior_[t])
            model = self.models_[t]
            if model is None:
                out[:, t] = conditional
                continue
            score_prior = float(getattr(model, "score_prior_", model.class_balance_)[1])
            shifted = _logit(base[:, t]) - _logit(score_prior) + _logit(conditional)
            out[:, t] = np.where(covered[:, t], _sigmoid(shifted), conditional)
        return out

    def _independent_proba(self, votes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each label's own model: probabilities (n, k) and where any LF voted on it."""
        n = votes.shape[0]
        out = np.empty((n, self.n_labels_))
        covered = np.zeros((n, self.n_labels_), dtype=bool)
        for t, model in enumerate(self.models_):
            if model is None:
                out[:, t] = self.label_prior_[t]
            else:
                binary = _binary(votes[:, self.lf_columns_[t], t])
                out[:, t] = model.predict_proba(binary)[:, 1]
                covered[:, t] = (binary != -1).any(axis=1)
        return out, covered

    def _fit_cooccurrence(
        self, votes: np.ndarray, gold: np.ndarray | None, weight: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        base, covered = self._independent_proba(votes)
        if gold is not None:  # known gold values replace the model's view of them
            known = gold >= 0
            base = np.where(known, gold, base)
            covered = covered | known
        tables = []
        for t in range(self.n_labels_):
            pattern = _other_patterns(base, covered, t)
            rows = covered[:, t]
            codes, inverse = np.unique(pattern[rows], return_inverse=True)
            w = weight[rows]
            counts = np.bincount(inverse, weights=w, minlength=len(codes))
            sums = np.bincount(inverse, weights=w * base[rows, t], minlength=len(codes))
            prior = self.label_prior_[t]
            smoothed = (sums + _PSEUDO_ASSETS * prior) / (counts + _PSEUDO_ASSETS)
            tables.append((codes.astype(np.int64), np.clip(smoothed, 1e-4, 1 - 1e-4)))
        return tables

    def predict(self, L: Any) -> np.ndarray:
        """Return the predicted label sets, int8 ``(n, n_labels)``: 1 where proba >= threshold."""
        return (self.predict_proba(L) >= self.thresholds_).astype(np.int8)

    def tune_thresholds(self, L: Any, Y: Any) -> Self:
        """Set each label's threshold to the one with the best F1 on gold label sets.

        Only the rows with a known gold value (0 or 1) of a label count; a label without
        both values among them keeps its threshold. Returns self.

        Examples
        --------
        >>> votes = np.array([[[1]], [[1]], [[-1]], [[0]]], dtype=np.int8)
        >>> model = MultiLabelModel(thresholds=0.5).fit(votes)
        >>> model.tune_thresholds(votes, [[1], [1], [0], [0]]).predict(votes).ravel().tolist()
        [1, 1, 0, 0]
        """
        proba = self.predict_proba(L)
        gold = self._gold(Y, proba.shape[0], self.n_labels_)
        thresholds = self.thresholds_.copy()
        for t in range(self.n_labels_):
            known = gold[:, t] >= 0
            y, p = gold[known, t], proba[known, t]
            if not (y == 1).any() or not (y == 0).any():
                continue
            candidates = np.unique(p)
            scores = [_f1(y, p >= c) for c in candidates]
            best = int(np.argmax(scores))
            thresholds[t] = float(candidates[best])
        self.thresholds_ = thresholds
        return self

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | Path) -> None:
        """Write the fitted model to ``path`` as one JSON file (never pickle).

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        """
        self._check_fitted()
        models = []
        with tempfile.TemporaryDirectory() as folder:
            for t, model in enumerate(self.models_):
                if model is None:
                    models.append(None)
                    continue
                file = Path(folder) / f"label{t}.json"
                model.save(file)
                models.append(json.loads(file.read_text(encoding="utf-8")))
        payload = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "params": {
                "thresholds": _jsonable(self.thresholds),
                "label_prior": _jsonable(self.label_prior),
                "cooccurrence": self.cooccurrence,
                "structure": self.structure,
                "lf_kind": self.lf_kind,
                "max_fit_rows": self.max_fit_rows,
                "random_state": self.random_state if isinstance(self.random_state, int) else None,
            },
            "fitted": {
                "label_names": list(self.label_names_),
                "n_lfs": self.n_lfs_,
                "lf_columns": [c.tolist() for c in self.lf_columns_],
                "label_prior": self.label_prior_.tolist(),
                "thresholds": self.thresholds_.tolist(),
                "cooccurrence": [[c.tolist(), p.tolist()] for c, p in self.cooccurrence_],
                "models": models,
            },
        }
        data = json.dumps(payload).encode("utf-8")
        write_atomic(path, lambda partial: partial.write_bytes(data))

    @classmethod
    def load(cls, path: str | Path) -> MultiLabelModel:
        """Read a model written by :meth:`save`.

        Raises
        ------
        LabelModelFileError
            The file is missing, not JSON, of another format, or its content is invalid.
        """
        try:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise LabelModelFileError(
                f"cannot read a MultiLabelModel from {str(path)!r}: {exc}"
            ) from exc
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            raise LabelModelFileError(
                f"{str(path)!r} is not a saved MultiLabelModel (format {_FORMAT!r} expected)"
            )
        if payload.get("version") != _FORMAT_VERSION:
            raise LabelModelFileError(
                f"{str(path)!r} has format version {payload.get('version')!r}; this enrich "
                f"reads version {_FORMAT_VERSION}. Save the model again with this version"
            )
        try:
            params, fitted = payload["params"], payload["fitted"]
            model = cls(**params)
            k = len(fitted["label_names"])
            model.label_names_ = tuple(str(n) for n in fitted["label_names"])
            model.n_labels_ = k
            model.n_lfs_ = int(fitted["n_lfs"])
            model.lf_columns_ = [np.asarray(c, dtype=np.int64) for c in fitted["lf_columns"]]
            model.label_prior_ = np.asarray(fitted["label_prior"], dtype=float)
            model.thresholds_ = np.asarray(fitted["thresholds"], dtype=float)
            model.cooccurrence_ = [
                (np.asarray(c, dtype=np.int64), np.asarray(p, dtype=float))
                for c, p in fitted["cooccurrence"]
            ]
            model.models_ = []
            with tempfile.TemporaryDirectory() as folder:
                for t, saved in enumerate(fitted["models"]):
                    if saved is None:
                        model.models_.append(None)
                        continue
                    file = Path(folder) / f"label{t}.json"
                    file.write_text(json.dumps(saved), encoding="utf-8")
                    model.models_.append(LabelModel.load(file))
            shapes = {
                len(model.lf_columns_),
                len(model.models_),
                len(model.label_prior_),
                len(model.cooccurrence_),
            }
            if any(len(c) != len(p) for c, p in model.cooccurrence_):
                raise ValueError("a co-occurrence table has codes and priors of unequal length")
            if shapes != {k} or model.thresholds_.shape != (k,):
                raise ValueError(f"per-label entries do not all have {k} labels")
            if any(((c < 0) | (c >= model.n_lfs_)).any() for c in model.lf_columns_):
                raise ValueError("an LF column is out of range")
        except LabelModelFileError:
            raise
        except (KeyError, TypeError, ValueError, InputError) as exc:
            raise LabelModelFileError(
                f"{str(path)!r} is not a valid saved MultiLabelModel: {exc}. Save it again"
            ) from exc
        return model

    # ------------------------------------------------------------------ checks
    def _check_fitted(self) -> None:
        if not hasattr(self, "models_"):
            raise NotFittedError(
                "this MultiLabelModel is not fitted yet; call .fit(L) before using it"
            )

    def _check_votes(self, L: Any) -> np.ndarray:
        self._check_fitted()
        votes = multilabel_votes_array(L)
        if votes.shape[1:] != (self.n_lfs_, self.n_labels_):
            raise InputError(
                f"the model was fitted on votes of {self.n_lfs_} LFs x {self.n_labels_} labels, "
                f"got {votes.shape[1]} LFs x {votes.shape[2]} labels; apply the same LFs"
            )
        return votes

    def _thresholds_array(self, k: int) -> np.ndarray | None:
        if isinstance(self.thresholds, str):
            if self.thresholds != "f1":
                raise InputError(
                    f"thresholds must be 'f1', a float in (0, 1] or one per label, got "
                    f"{self.thresholds!r}"
                )
            return None
        values = np.broadcast_to(np.asarray(self.thresholds, dtype=float), (k,)).copy()
        if np.ndim(self.thresholds) not in (0, 1) or not np.all((values > 0) & (values <= 1)):
            raise InputError(
                f"thresholds must be one float in (0, 1] or one per label ({k}), got "
                f"{self.thresholds!r}"
            )
        return values

    def _prior_array(self, k: int) -> np.ndarray | None:
        if isinstance(self.label_prior, str):
            if self.label_prior != "auto":
                raise InputError(
                    f"label_prior must be 'auto', a float or one float per label, got "
                    f"{self.label_prior!r}"
                )
            return None
        try:
            values = np.broadcast_to(np.asarray(self.label_prior, dtype=float), (k,)).copy()
        except ValueError:
            values = np.array([np.nan])
        if values.shape != (k,) or not np.all((values > 0) & (values < 1)):
            raise InputError(
                f"label_prior must be in (0, 1), one value or one per label ({k}), got "
                f"{self.label_prior!r}"
            )
        return values

    @staticmethod
    def _gold(Y: Any, n: int, k: int) -> np.ndarray | None:
        if Y is None:
            return None
        gold = np.asarray(Y)
        if gold.shape != (n, k):
            raise InputError(
                f"Y must be gold label sets of shape (n_assets, n_labels) = ({n}, {k}), got "
                f"{gold.shape}; use 1 (present), 0 (absent), -1 (unknown)"
            )
        if gold.size and not np.all(np.isin(gold, (-1, 0, 1))):
            raise VoteValueError("Y must hold 1 (present), 0 (absent) or -1 (unknown) only")
        return gold.astype(np.int64)


_PSEUDO_ASSETS = 10.0


def _other_patterns(base: np.ndarray, covered: np.ndarray, label: int) -> np.ndarray:
    """Base-3 code per asset of the other labels: 0 absent, 1 present, 2 no vote."""
    state = np.where(covered, (base >= 0.5).astype(np.int64), 2)
    others = np.delete(state, label, axis=1)
    weights = 3 ** np.arange(others.shape[1], dtype=np.int64)
    return others @ weights


def _logit(p: Any) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=float), 1e-9, 1 - 1e-9)
    return np.log(q) - np.log1p(-q)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _seeds(random_state: Any, k: int) -> list[int]:
    from enrich._internal.random import check_random_state

    rng = np.random.default_rng(0) if random_state is None else check_random_state(random_state)
    return [int(s) for s in rng.integers(0, 2**31 - 1, size=k)]


def _columns_for(L: Any, votes: np.ndarray, label: int) -> list[int]:
    if isinstance(L, MultiLabelVoteMatrix):
        return L.lfs_for(label)
    return np.flatnonzero((votes[:, :, label] != 0).any(axis=0)).tolist()


def _binary(votes: np.ndarray) -> np.ndarray:
    """+1/-1/0 votes of one label as a binary vote matrix: 1 present, 0 absent, -1 abstain."""
    return np.where(votes > 0, 1, np.where(votes < 0, 0, -1)).astype(np.int32)


def _weights(sample_weight: Any, n: int) -> np.ndarray:
    """Row weights ``(n,)`` float (ones when None); refuse a wrong shape or negative values."""
    if sample_weight is None:
        return np.ones(n)
    weight = np.asarray(sample_weight, dtype=float)
    if weight.shape != (n,) or not np.all(np.isfinite(weight)) or (weight < 0).any():
        raise InputError(
            f"sample_weight must be {n} finite, non-negative weights (one per asset), got "
            f"shape {weight.shape}"
        )
    return weight


def _auto_prior(binary: np.ndarray, weight: np.ndarray) -> float | None:
    """None where LFs vote both ways (the label model estimates); else the coverage share."""
    has_for, has_against = (binary == 1).any(), (binary == 0).any()
    total = float(weight.sum())
    if (has_for and has_against) or total <= 0:
        return None
    if has_for:
        share = weight[(binary == 1).any(axis=1)].sum() / total
    elif has_against:
        share = 1.0 - weight[(binary == 0).any(axis=1)].sum() / total
    else:
        return None
    return float(np.clip(share, 0.01, 0.99))


def _expected_f1_threshold(proba: np.ndarray, weight: np.ndarray | None = None) -> float:
    """The threshold whose predicted set has the best F1 expected from the probabilities.

    ``weight``: how many assets each row stands for (default one each).

    >>> round(_expected_f1_threshold(np.array([0.9, 0.9, 0.45, 0.45, 0.1])), 2)
    0.45
    """
    if proba.size == 0:
        return 0.5
    weight = np.ones(proba.shape[0]) if weight is None else weight
    values, inverse = np.unique(proba, return_inverse=True)
    counts = np.bincount(inverse, weights=weight, minlength=len(values))
    values, counts = values[::-1], counts[::-1]  # likeliest first
    predicted = np.cumsum(counts)
    expected_hits = np.cumsum(values * counts)
    expected_f1 = 2 * expected_hits / (predicted + float(np.dot(proba, weight)))
    return float(values[int(np.argmax(expected_f1))])


def _f1(y: np.ndarray, predicted: np.ndarray) -> float:
    tp = float(np.sum(predicted & (y == 1)))
    denominator = float(np.sum(predicted)) + float(np.sum(y == 1))
    return 2 * tp / denominator if denominator else 0.0


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    return value
