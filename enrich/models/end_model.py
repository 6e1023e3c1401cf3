"""The end model: a classifier trained on the label model's probabilistic labels.

Labeling functions vote on some assets; the label model turns their votes into class
probabilities. :class:`EndModel` trains a scikit-learn classifier on those probabilities,
from features of the assets themselves (an embedding column, the vectors of any encoder of
:mod:`embeddings`, and/or numeric columns), so it labels every asset -- also those no LF
voted on -- and generalises past the LFs' keywords.

How it trains (see :class:`EndModel` for the options):

* **Noise-aware**: each training row teaches its most probable class with that probability as
  ``sample_weight``, so a row the label model is unsure of pulls less (``targets="soft"``
  repeats it once per class, each weighted by its probability; ``"hard"`` weighs all rows 1).
* **Only rows some LF voted on**: a row no LF voted on carries only the class prior, which
  says nothing about that row; pass ``votes=`` and such rows are left out of training
  (:func:`filter_unlabeled` does the same for your own pipelines). ``min_confidence`` also
  leaves out rows the label model is unsure of. Gold rows always train, with their gold class.
* **Cross-fitted**: the training rows are split into ``cv`` folds; each fold is predicted by a
  model trained on the others, so :attr:`EndModel.oof_proba_` is an honest view of every row
  (what cleanlab needs to find wrong labels), and the final model is trained on all rows.
* **Calibrated**: with enough gold rows, one temperature fitted on their out-of-fold
  predictions rescales the classifier's log-probabilities (Guo et al., 2017); it never
  changes which class is predicted. Without gold the classifier's own probabilities are kept
  (``calibration="temperature"`` fits the label model's probabilities instead).

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = np.vstack([rng.normal(-1, 0.5, (40, 3)), rng.normal(1, 0.5, (40, 3))])
>>> proba = np.repeat([[0.9, 0.1], [0.2, 0.8]], 40, axis=0)
>>> votes = np.where(rng.random((80, 1)) < 0.7, proba.argmax(axis=1)[:, None], -1)
>>> model = EndModel(random_state=0).fit(X, proba, votes=votes)
>>> model.n_train_ < 80, model.predict(X[[0, -1]]).tolist()
(True, [0, 1])
>>> model.oof_proba_.shape
(80, 2)
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import Any, Final, Literal

import numpy as np

from enrich._internal.estimator import Estimator
from enrich._internal.frames import as_polars
from enrich.errors import InputError, MissingColumnError, NotFittedError

__all__ = ["MIN_GOLD_FOR_TEMPERATURE", "EndModel", "filter_unlabeled", "model_columns"]

logger = logging.getLogger(__name__)

Calibration = Literal["auto", "temperature", "none"]
_CALIBRATIONS: Final = ("auto", "temperature", "none")
#: Gold training rows ``calibration="auto"`` needs to fit a temperature.
MIN_GOLD_FOR_TEMPERATURE: Final = 30
Targets = Literal["confidence", "soft", "hard"]
_TARGETS: Final = ("confidence", "soft", "hard")
#: Expanded (row, class) pairs whose probability is below this are dropped from training.
_MIN_WEIGHT: Final = 1e-3
_PROBA_TOLERANCE: Final = 1e-4
_LOG_FLOOR: Final = 1e-12


def filter_unlabeled(data: Any, proba: Any, votes: Any) -> tuple[Any, np.ndarray]:
    """Leave out the rows no labeling function voted on (Snorkel's ``filter_unlabeled_dataframe``).

    A row every LF abstained on gets the label model's class prior: that is no information
    about the row, and a classifier trained on it learns the prior's class. Keep such rows
    out of training, and let the trained model label them.

    Parameters
    ----------
    data
        One row per asset: a polars/pandas/Arrow table, or a numpy array ``(n, ...)``.
    proba
        Class probabilities ``(n, k)`` (or labels ``(n,)``) of the same rows.
    votes
        The vote matrix ``(n, n_lfs)`` (``-1`` = abstain), or a
        :class:`~enrich.votes.VoteMatrix`.

    Returns
    -------
    (data, proba)
        The rows with at least one vote, in their order, as the same types that came in
        (polars for a polars table, pandas for pandas, numpy arrays otherwise).

    Raises
    ------
    InputError
        If the three inputs do not have the same number of rows.

    Examples
    --------
    >>> import numpy as np, polars as pl
    >>> frame = pl.DataFrame({"text": ["a", "b", "c"]})
    >>> votes = np.array([[0, -1], [-1, -1], [-1, 1]])
    >>> kept, p = filter_unlabeled(frame, np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]]), votes)
    >>> kept["text"].to_list(), p.tolist()
    (['a', 'c'], [[0.9, 0.1], [0.2, 0.8]])
    """
    matrix = _vote_array(votes)
    labels = np.asarray(proba)
    n = matrix.shape[0]
    rows = _n_rows(data)
    if labels.shape[0] != n or rows != n:
        raise InputError(
            f"filter_unlabeled needs one row per asset in all three inputs; got {rows} data "
            f"rows, {labels.shape[0]} probability rows and {n} vote rows"
        )
    keep = (matrix >= 0).any(axis=1) if matrix.shape[1] else np.zeros(n, dtype=bool)
    return _take_rows(data, keep), labels[keep]


class EndModel(Estimator):
    """A scikit-learn classifier trained on probabilistic labels, for every asset.

    Parameters
    ----------
    estimator : scikit-learn classifier or None
        Any classifier whose ``fit`` takes ``sample_weight`` and which has
        ``predict_proba``; it is cloned, never fitted itself. None (the default) is
        ``LogisticRegression(C=1.0, max_iter=1000)``, which needs no tuning on sentence
        embeddings (see ``benchmarks/end_model.py``).
    embedding_column : str or None
        Column holding one vector per asset (list/array column), used as features. None: no
        embedding features (then give ``feature_columns`` or ``encoder``). Ignored when the
        data passed in is already a numpy matrix.
    feature_columns : sequence of str or None
        Numeric or boolean columns added as features, standardised with the training rows'
        mean and standard deviation.
    encoder : embeddings encoder or None
        Any encoder of :mod:`embeddings` (``TextEncoder()``, ``EmbeddingCache(...).wrap(
        TextEncoder())``, an image encoder...): ``encode_column`` is encoded and used instead
        of ``embedding_column``.
    encode_column : str
        The column the ``encoder`` reads (texts, image paths...).
    min_confidence : float or None
        Leave out of training the rows whose label-model confidence (largest probability) is
        below this, in ``[0, 1)``; gold rows are always kept.
    targets : {"confidence", "soft", "hard"}
        What each training row teaches. ``"confidence"`` (default): its most probable class,
        weighted by that probability, so a row the label model is unsure of pulls less.
        ``"soft"``: every class, each weighted by its probability (the expected loss under
        the label model's belief); best when those probabilities are well calibrated, but a
        label model that leans to one class (a skewed class balance) drags every unsure row
        that way. ``"hard"``: its most probable class, weight 1. On the four sets of
        ``benchmarks/end_model.py`` ``"confidence"`` is the only one at or above the label
        model on every set; ``"soft"`` wins on trec, ``"hard"`` on the binary sets.
    cv : int or None
        Folds of the cross-fitting (>= 2). None trains one model without cross-fitting:
        faster, but :attr:`oof_proba_` is then in-sample and no temperature is fitted.
    calibration : {"auto", "temperature", "none"}
        ``"temperature"`` rescales the log-probabilities by one temperature fitted on the
        out-of-fold predictions (needs ``cv``) against the label model's probabilities, gold
        where known; ``"none"`` keeps the classifier's own. ``"auto"`` (default) fits the
        temperature on the gold training rows alone when there are at least
        :data:`MIN_GOLD_FOR_TEMPERATURE`, else keeps the classifier's own: fitted to the
        label model's probabilities, the temperature inherits their miscalibration (in
        ``benchmarks/end_model.py`` it lowers the expected calibration error on trec and sms
        and raises it on youtube and sentiment).
    random_state : None, int or numpy Generator
        Seeds the fold assignment (and the classifier's own ``random_state`` when it has one
        left at None). Never touches global random state.

    Attributes
    ----------
    classes_ : numpy.ndarray
        ``0..k-1``.
    class_names_ : tuple of str or None
        From ``fit(class_names=...)`` or the vote matrix.
    n_features_in_ : int
        Width of the feature matrix (embedding dims + feature columns).
    embedding_dim_ : int
        Width of the embedding part (0 without one).
    estimator_ : classifier
        The classifier trained on all training rows.
    temperature_ : float
        Fitted temperature (1.0 without calibration). Above 1 softens, below 1 sharpens.
    train_mask_ : numpy.ndarray of bool
        Which rows of ``fit``'s data were trained on.
    n_train_ : int
        Number of training rows.
    oof_proba_ : numpy.ndarray
        ``(n, k)`` calibrated probabilities for every row of ``fit``'s data: out-of-fold for
        the training rows, from the final model for the rows left out (which it never saw).

    Raises
    ------
    InputError
        From ``fit``: no embedding column (or encoder / feature columns), features and labels
        of different lengths, every row unlabeled, one class only among the training targets,
        an estimator without ``sample_weight``; from ``predict``: features of another width.
    """

    def __init__(
        self,
        *,
        estimator: Any = None,
        embedding_column: str | None = "embedding",
        feature_columns: Sequence[str] | None = None,
        encoder: Any = None,
        encode_column: str = "text",
        min_confidence: float | None = None,
        targets: Targets = "confidence",
        cv: int | None = 5,
        calibration: Calibration = "auto",
        random_state: Any = None,
    ) -> None:
        self.estimator = estimator
        self.embedding_column = embedding_column
        self.feature_columns = feature_columns
        self.encoder = encoder
        self.encode_column = encode_column
        self.min_confidence = min_confidence
        self.targets = targets
        self.cv = cv
        self.calibration = calibration
        self.random_state = random_state

    # -- fit ---------------------------------------------------------------------------------
    def fit(
        self,
        X: Any,
        y: Any,
        *,
        votes: Any = None,
        gold: Any = None,
        class_names: Sequence[str] | None = None,
    ) -> EndModel:
        """Train on the label model's probabilities; returns self.

        Parameters
        ----------
        X
            The assets: a polars/pandas/Arrow table with the feature columns, or a numpy
            feature matrix ``(n, d)`` (e.g. embeddings).
        y
            The label model's class probabilities ``(n, k)`` (``predict_proba``), or class
            ids ``(n,)`` with ``-1`` = no label.
        votes
            The vote matrix ``(n, n_lfs)`` or :class:`~enrich.votes.VoteMatrix`: rows where
            every LF abstained are left out of training. Without it every row of ``y``
            trains (filter them yourself with :func:`filter_unlabeled`).
        gold
            Optional gold class ids ``(n,)``, ``-1`` where unknown: gold rows train with
            their gold class, whatever the LFs said.
        class_names
            One name per class (default: the vote matrix's, if any).

        Returns
        -------
        EndModel
        """
        from sklearn.base import clone

        self._check_hyperparameters()
        targets, labeled, k = self._targets(y, class_names=class_names, votes=votes)
        n = targets.shape[0]
        if votes is not None:
            matrix = _vote_array(votes)
            if matrix.shape[0] != n:
                raise InputError(
                    f"votes has {matrix.shape[0]} rows but y has {n}; pass the vote matrix "
                    "the probabilities were computed from"
                )
            labeled &= (matrix >= 0).any(axis=1) if matrix.shape[1] else False
        if self.min_confidence is not None:
            labeled &= targets.max(axis=1) >= self.min_confidence
        beliefs = targets.copy()  # what the temperature is fitted to
        if self.targets != "soft":
            top_class = targets.argmax(axis=1)
            weight = targets.max(axis=1) if self.targets == "confidence" else 1.0
            targets = np.eye(k)[top_class] * np.reshape(weight, (-1, 1))
        if gold is not None:
            g = _gold(gold, n, k)
            known = g >= 0
            targets[known] = beliefs[known] = np.eye(k)[g[known]]
            labeled |= known
        names = class_names if class_names is not None else getattr(votes, "class_names", None)
        self.class_names_ = None if names is None else tuple(str(c) for c in names)
        if self.class_names_ is not None and len(self.class_names_) != k:
            raise InputError(
                f"class_names has {len(self.class_names_)} names but y has {k} classes; pass "
                "one name per class"
            )
        if not labeled.any():
            raise InputError(
                f"every one of the {n} rows is unlabeled (no LF voted, or below "
                f"min_confidence={self.min_confidence}); the end model needs rows with a label: "
                "write LFs that cover some assets, lower min_confidence, or pass gold"
            )
        top = targets[labeled].argmax(axis=1)
        present = np.unique(top)
        if present.size < 2:
            name = self._name(int(present[0]))
            raise InputError(
                f"all {int(labeled.sum())} training rows are labeled {name!r}: a classifier "
                "needs at least two classes to learn from. Write LFs that vote for the other "
                "class(es), or pass gold rows of them"
            )
        features = self._features(X, fitting=True)
        if features.shape[0] != n:
            raise InputError(
                f"X has {features.shape[0]} rows but y has {n}; pass one row of features per "
                "label row, in the same order"
            )
        base = self._base_estimator()
        rng = np.random.default_rng(self.random_state)
        seed = int(rng.integers(2**31 - 1))
        rows = np.flatnonzero(labeled)

        oof_logp = None
        if self.cv is not None:
            folds = _stratified_folds(top, self.cv, rng)
            oof_logp = np.empty((rows.size, k))
            for fold in range(self.cv):
                held = folds == fold
                if not held.any():
                    continue
                model = _seeded(clone(base), seed)
                _fit_expanded(model, features[rows[~held]], targets[rows[~held]])
                oof_logp[held] = _log_proba(model, features[rows[held]], k)
        self.estimator_ = _seeded(clone(base), seed)
        _fit_expanded(self.estimator_, features[rows], targets[rows])
        self.temperature_ = 1.0
        if self.calibration == "temperature" and oof_logp is not None:
            self.temperature_ = _fit_temperature(oof_logp, beliefs[rows])
        elif self.calibration == "auto" and oof_logp is not None and gold is not None:
            on_gold = known[rows]
            if on_gold.sum() >= MIN_GOLD_FOR_TEMPERATURE:
                self.temperature_ = _fit_temperature(oof_logp[on_gold], beliefs[rows][on_gold])

        self.classes_ = np.arange(k)
        self.train_mask_ = labeled
        self.n_train_ = int(rows.size)
        proba = self._proba_from_features(features)
        if oof_logp is not None:
            proba[rows] = _softmax(oof_logp / self.temperature_)
        self.oof_proba_ = proba
        logger.debug(
            "EndModel trained on %d of %d rows, %d features, temperature %.3f",
            rows.size,
            n,
            features.shape[1],
            self.temperature_,
        )
        return self

    # -- predict -----------------------------------------------------------------------------
    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated class probabilities ``(n, k)`` of new assets (rows sum to 1).

        For the rows ``fit`` trained on, prefer :attr:`oof_proba_`: the final model has seen
        their labels, so its view of them is optimistic.
        """
        self._check_fitted()
        return self._proba_from_features(self._features(X, fitting=False))

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class id ``(n,)`` of each asset (ties to the lowest class)."""
        return self.predict_proba(X).argmax(axis=1)

    def prediction_table(self, proba: Any = None, *, X: Any = None) -> Any:
        """The model's columns of the enriched output, one row per asset (polars).

        Pass ``X`` (predicts it) or ``proba`` (e.g. :attr:`oof_proba_`). Columns:
        ``model_label`` (Int64), ``model_label_name`` (with class names),
        ``model_proba_<class>`` and ``model_confidence``.
        """
        self._check_fitted()
        if (proba is None) == (X is None):
            raise InputError("pass exactly one of proba= (e.g. model.oof_proba_) and X=")
        probs = self.predict_proba(X) if X is not None else np.asarray(proba, dtype=np.float64)
        return model_columns(probs, class_names=self.class_names_)

    # -- helpers -----------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "estimator_"):
            raise NotFittedError(
                "this EndModel is not fitted yet; call .fit(X, proba, votes=votes) first"
            )

    def _name(self, c: int) -> str:
        names = getattr(self, "class_names_", None)
        return names[c] if names else str(c)

    def _check_hyperparameters(self) -> None:
        if self.targets not in _TARGETS:
            raise InputError(f"targets must be one of {list(_TARGETS)}, got {self.targets!r}")
        if self.calibration not in _CALIBRATIONS:
            raise InputError(
                f"calibration must be one of {list(_CALIBRATIONS)}, got {self.calibration!r}"
            )
        if self.cv is not None and (
            isinstance(self.cv, bool) or not isinstance(self.cv, int | np.integer) or self.cv < 2
        ):
            raise InputError(f"cv must be a whole number of folds >= 2, or None; got {self.cv!r}")
        if self.min_confidence is not None and not (
            isinstance(self.min_confidence, float | int) and 0 <= self.min_confidence < 1
        ):
            raise InputError(
                f"min_confidence must be in [0, 1) or None; got {self.min_confidence!r}"
            )
        if self.embedding_column is None and not self.feature_columns and self.encoder is None:
            raise InputError(
                "the end model has no features: set embedding_column (a column of vectors), "
                "encoder (with encode_column) or feature_columns"
            )
        if isinstance(self.feature_columns, str):
            raise InputError(
                f"feature_columns must be a list of column names, not the string "
                f"{self.feature_columns!r}; write [{self.feature_columns!r}]"
            )

    def _base_estimator(self) -> Any:
        if self.estimator is None:
            from sklearn.linear_model import LogisticRegression

            return LogisticRegression(C=1.0, max_iter=1000)
        fit = getattr(self.estimator, "fit", None)
        if fit is None or not hasattr(self.estimator, "predict_proba"):
            raise InputError(
                f"estimator {self.estimator!r} must be a scikit-learn classifier with fit and "
                "predict_proba (e.g. LogisticRegression(), SGDClassifier(loss='log_loss'))"
            )
        if "sample_weight" not in inspect.signature(fit).parameters:
            raise InputError(
                f"estimator {type(self.estimator).__name__}.fit takes no sample_weight; the end "
                "model trains on probabilities through sample weights. Use a classifier that "
                "takes them (LogisticRegression, SGDClassifier, HistGradientBoostingClassifier, "
                "RandomForestClassifier...)"
            )
        return self.estimator

    def _targets(
        self, y: Any, *, class_names: Sequence[str] | None, votes: Any
    ) -> tuple[np.ndarray, np.ndarray, int]:
        if hasattr(y, "to_numpy"):
            y = y.to_numpy()
        arr = np.asarray(y)
        if arr.ndim == 2:
            try:
                probs = arr.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise InputError(f"y must hold class probabilities (n, k); {exc}") from exc
            n, k = probs.shape
            if k < 2:
                raise InputError(
                    f"y must have one column per class (k >= 2); got shape {arr.shape}"
                )
            bad = ~np.isfinite(probs).all(axis=1) | (probs < -_PROBA_TOLERANCE).any(axis=1)
            bad |= np.abs(probs.sum(axis=1) - 1) > _PROBA_TOLERANCE
            if bad.any():
                i = int(np.argmax(bad))
                raise InputError(
                    f"y row {i} is {probs[i].tolist()}: class probabilities must be finite, "
                    ">= 0 and sum to 1 (pass label_model.predict_proba(L))"
                )
            return np.clip(probs, 0.0, 1.0), np.ones(n, dtype=bool), k
        if arr.ndim != 1:
            raise InputError(
                f"y must be class probabilities (n, k) or class ids (n,); got shape {arr.shape}"
            )
        names = class_names if class_names is not None else getattr(votes, "class_names", None)
        labels = _int_labels(arr, "y")
        k = len(names) if names is not None else max(int(labels.max(initial=-1)) + 1, 2)
        if labels.size and (labels.max() >= k or labels.min() < -1):
            i = int(np.argmax((labels >= k) | (labels < -1)))
            raise InputError(
                f"y holds {int(labels[i])} at row {i}; class ids are 0..{k - 1} or -1 (no label)"
            )
        labeled = labels >= 0
        targets = np.zeros((labels.size, k))
        targets[labeled, labels[labeled]] = 1.0
        return targets, labeled, k

    def _features(self, X: Any, *, fitting: bool) -> np.ndarray:
        if isinstance(X, np.ndarray):
            if self.feature_columns:
                raise InputError(
                    "feature_columns are set, so X must be a table with those columns, not a "
                    "numpy matrix"
                )
            matrix = self._check_width(_vectors(X, "X"), fitting=fitting)
            if fitting:
                self.n_features_in_ = matrix.shape[1]
            return matrix
        frame = as_polars(X)
        parts = []
        if self.encoder is not None:
            if self.encode_column not in frame.columns:
                raise MissingColumnError(
                    f"the encoder reads column {self.encode_column!r}, which the data lacks "
                    f"(columns: {frame.columns}); set encode_column"
                )
            vectors = self.encoder.encode(frame[self.encode_column].to_list())
            parts.append(_vectors(vectors, f"encoded {self.encode_column!r}"))
        elif self.embedding_column is not None:
            if self.embedding_column not in frame.columns:
                raise MissingColumnError(
                    f"no embedding column {self.embedding_column!r} in the data (columns: "
                    f"{frame.columns}); set embedding_column to the column of vectors, pass "
                    "encoder= to embed a column, or embedding_column=None with feature_columns"
                )
            parts.append(_vectors(frame[self.embedding_column], repr(self.embedding_column)))
        embedding = parts[0] if parts else np.zeros((frame.height, 0))
        embedding = self._check_width(embedding, fitting=fitting)
        columns = list(self.feature_columns or ())
        if columns:
            missing = [c for c in columns if c not in frame.columns]
            if missing:
                raise MissingColumnError(
                    f"feature column(s) {missing} are not in the data (columns: {frame.columns})"
                )
            tab = np.column_stack([_numeric(frame[c], c) for c in columns])
            if fitting:
                self.feature_mean_ = tab.mean(axis=0)
                scale = tab.std(axis=0)
                self.feature_scale_ = np.where(scale > 0, scale, 1.0)
            tab = (tab - self.feature_mean_) / self.feature_scale_
            embedding = np.hstack([embedding, tab])
        if fitting:
            self.n_features_in_ = embedding.shape[1]
        return embedding

    def _check_width(self, matrix: np.ndarray, *, fitting: bool) -> np.ndarray:
        if fitting:
            self.embedding_dim_ = matrix.shape[1]
        elif matrix.shape[1] != self.embedding_dim_:
            raise InputError(
                f"the embeddings have {matrix.shape[1]} dimensions but the end model was "
                f"trained on {self.embedding_dim_}; embed with the same encoder as at fit time"
            )
        return matrix

    def _proba_from_features(self, features: np.ndarray) -> np.ndarray:
        k = self.classes_.size
        if features.shape[0] == 0:
            return np.zeros((0, k))
        return _softmax(_log_proba(self.estimator_, features, k) / self.temperature_)


def model_columns(proba: np.ndarray, *, class_names: Sequence[str] | None = None) -> Any:
    """``model_label`` (+ ``model_label_name``), ``model_proba_<class>``, ``model_confidence``.

    >>> model_columns(np.array([[0.2, 0.8]]), class_names=["HAM", "SPAM"]).row(0)
    (1, 'SPAM', 0.2, 0.8, 0.8)
    """
    import polars as pl

    probs = np.asarray(proba, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise InputError(f"model proba must have shape (n_assets, k >= 2); got {probs.shape}")
    k = probs.shape[1]
    names = [str(c) for c in class_names] if class_names is not None else [str(c) for c in range(k)]
    if len(names) != k:
        raise InputError(f"class_names has {len(names)} names for {k} probability columns")
    label = probs.argmax(axis=1) if probs.shape[0] else np.zeros(0, dtype=np.int64)
    columns: dict[str, pl.Series] = {"model_label": pl.Series(label, dtype=pl.Int64)}
    if class_names is not None:
        columns["model_label_name"] = pl.Series(names, dtype=pl.String).gather(label)
    for c, name in enumerate(names):
        columns[f"model_proba_{name}"] = pl.Series(probs[:, c], dtype=pl.Float64)
    columns["model_confidence"] = pl.Series(
        probs.max(axis=1) if probs.shape[0] else probs[:, 0], dtype=pl.Float64
    )
    return pl.DataFrame(columns)


# -- module helpers ------------------------------------------------------------------------------
def _vote_array(votes: Any) -> np.ndarray:
    matrix = np.asarray(getattr(votes, "votes", votes))
    if matrix.ndim != 2 or matrix.dtype.kind not in "iu":
        raise InputError(
            f"votes must be an int vote matrix (n_assets, n_lfs), -1 = abstain; got "
            f"{matrix.dtype} of shape {matrix.shape}"
        )
    return matrix


def _n_rows(data: Any) -> int:
    if hasattr(data, "height"):
        return int(data.height)
    if hasattr(data, "num_rows"):
        return int(data.num_rows)
    return len(data)


def _take_rows(data: Any, keep: np.ndarray) -> Any:
    import polars as pl

    if isinstance(data, pl.DataFrame):
        return data.filter(pl.Series(keep))
    module = type(data).__module__
    if module.startswith("pandas"):
        return data.iloc[np.flatnonzero(keep)]
    if module.startswith("pyarrow"):
        return data.filter(keep)
    return np.asarray(data)[keep]


def _int_labels(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        return arr.astype(np.int64)
    raise InputError(
        f"{what} must be class probabilities (n, k) or whole class ids (n,) with -1 = no label; "
        f"got dtype {arr.dtype}"
    )


def _gold(gold: Any, n: int, k: int) -> np.ndarray:
    if hasattr(gold, "to_numpy"):
        gold = gold.to_numpy()
    g = _int_labels(np.asarray(gold), "gold")
    if g.shape != (n,):
        raise InputError(f"gold must have one entry per row ({n}); got shape {g.shape}")
    bad = (g < -1) | (g >= k)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"gold holds {int(g[i])} at row {i}; class ids are 0..{k - 1} or -1")
    return g


def _vectors(vectors: Any, what: str) -> np.ndarray:
    from embeddings import EmbeddingInputError, embedding_matrix

    try:
        return embedding_matrix(vectors, normalize=True, allow_zero=True, what=what).astype(
            np.float64
        )
    except EmbeddingInputError as exc:
        raise InputError(f"cannot use {what} as features: {exc}") from exc


def _numeric(series: Any, name: str) -> np.ndarray:
    import polars as pl

    if not (series.dtype.is_numeric() or series.dtype == pl.Boolean):
        raise InputError(
            f"feature column {name!r} has dtype {series.dtype}; feature columns must be numeric "
            "or boolean (encode categories first, or embed text with encoder=)"
        )
    values = series.cast(pl.Float64).to_numpy()
    bad = ~np.isfinite(values)
    if bad.any():
        raise InputError(
            f"feature column {name!r} has {int(bad.sum())} null or non-finite value(s) (first at "
            f"row {int(np.argmax(bad))}); fill or drop them"
        )
    return values


def _stratified_folds(top: np.ndarray, n_folds: int, rng: np.random.Generator) -> np.ndarray:
    """Fold id per training row: each class spread evenly over the folds, in random order."""
    folds = np.empty(top.size, dtype=np.int64)
    offset = 0
    for c in np.unique(top):
        members = rng.permutation(np.flatnonzero(top == c))
        folds[members] = (np.arange(members.size) + offset) % n_folds
        offset += members.size
    return folds


def _seeded(model: Any, seed: int) -> Any:
    params = model.get_params(deep=False)
    if "random_state" in params and params["random_state"] is None:
        model.set_params(random_state=seed)
    return model


def _fit_expanded(model: Any, features: np.ndarray, targets: np.ndarray) -> None:
    """Fit on every (row, class) pair whose probability is not negligible, weighted by it."""
    rows, classes = np.nonzero(targets >= _MIN_WEIGHT)
    model.fit(features[rows], classes, sample_weight=targets[rows, classes])


def _log_proba(model: Any, features: np.ndarray, k: int) -> np.ndarray:
    """Log-probabilities over all ``k`` classes (a class the model never saw gets ~0)."""
    proba = np.asarray(model.predict_proba(features), dtype=np.float64)
    full = np.full((features.shape[0], k), _LOG_FLOOR)
    full[:, np.asarray(model.classes_, dtype=np.int64)] = np.maximum(proba, _LOG_FLOOR)
    return np.log(full / full.sum(axis=1, keepdims=True))


def _softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    return shifted / shifted.sum(axis=1, keepdims=True)


def _fit_temperature(logp: np.ndarray, targets: np.ndarray) -> float:
    """The temperature minimising the cross-entropy of ``softmax(logp / T)`` to ``targets``."""
    from scipy.optimize import minimize_scalar

    def loss(log_t: float) -> float:
        scaled = logp / np.exp(log_t)
        scaled -= scaled.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(scaled).sum(axis=1, keepdims=True))
        return float(-(targets * (scaled - log_norm)).sum(axis=1).mean())

    result = minimize_scalar(loss, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(result.x))
