"""Consensus between human annotators: one label per asset and how far to trust each annotator.

Human annotations arrive in *long form*, one row per answer (``asset_id``, ``annotator``,
``label``, optionally ``time``); :func:`~enrich.analysis.agreement.annotation_matrix` turns
them into an :class:`~enrich.analysis.agreement.AnnotationMatrix`, and :func:`consensus` fits
enrich's :class:`~enrich.LabelModel` on it, treating every annotator as an *annotator*-kind LF
(a Dawid-Skene confusion matrix; a missing annotation is not evidence). The result,
:class:`Consensus`, holds the label of every asset with its confidence and agreement, the
estimated reliability and confusion matrix of every annotator, and the dataset-level agreement
(Krippendorff's alpha, Fleiss' kappa).

Human votes and LF votes go into the same label model: :func:`combine_votes` appends the
annotators' columns to a :class:`~enrich.votes.VoteMatrix`, aligned by asset id.

Examples
--------
>>> import polars as pl
>>> from enrich.analysis.consensus import consensus
>>> answers = pl.DataFrame({
...     "asset_id": ["a", "a", "a", "b", "b", "b", "c", "c", "c"],
...     "annotator": ["ann", "bob", "cy"] * 3,
...     "label": ["cat", "cat", "dog", "dog", "dog", "dog", "cat", "dog", "cat"]})
>>> result = consensus(answers, random_state=0)
>>> result.per_asset.select("asset_id", "label_name", "agreement", "n_annotations").rows()
[('a', 'cat', 0.6666666666666666, 3), ('b', 'dog', 1.0, 3), ('c', 'cat', 0.6666666666666666, 3)]
>>> round(result.alpha, 3), round(result.fleiss_kappa, 3)
(0.2, 0.1)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

import numpy as np
import polars as pl
import scipy.sparse as sp

from enrich._internal.display import ColumnFormat, Highlight, TableDisplay
from enrich._internal.vote_arrays import ABSTAIN, validate_votes
from enrich.analysis.agreement import (
    AnnotationMatrix,
    alpha_and_kappa,
    annotation_matrix,
    value_counts,
)
from enrich.errors import InputError
from enrich.votes import VoteMatrix

__all__ = ["ANNOTATOR_PREFIX", "Consensus", "combine_votes", "consensus"]

logger = logging.getLogger(__name__)

#: Prefix of an annotator's column name in :func:`combine_votes` output.
ANNOTATOR_PREFIX: Final = "annotator:"

_EXAMPLES = 5


# --------------------------------------------------------------------------------------------
# consensus
# --------------------------------------------------------------------------------------------


class Consensus(TableDisplay):
    """Consensus labels, annotator reliability and agreement, as returned by :func:`consensus`.

    Attributes
    ----------
    per_asset : polars.DataFrame
        One row per asset: ``asset_id``, ``label`` (class id), ``label_name``,
        ``confidence`` (the model's probability of that label), ``agreement`` (share of the
        asset's annotators who voted that label; null without annotations) and
        ``n_annotations``. ``review_queue(..., annotations_agreement=per_asset)`` reads it.
    per_annotator : polars.DataFrame
        One row per annotator: ``annotator``, ``n_annotations``, ``reliability`` (estimated
        share of their answers that are right: the model's ``lf_accuracy_`` when it has one,
        else the mean posterior probability of the class they voted; null without answers)
        and ``agreement_with_consensus`` (share of their answers equal to the consensus).
    alpha : float or None
        Krippendorff's alpha (nominal) over all annotations; None when undefined.
    fleiss_kappa : float or None
        Fleiss' kappa; None unless every asset has the same number (>= 2) of annotations.
    notes : dict
        Why ``alpha`` or ``fleiss_kappa`` is None (keys ``"alpha"``, ``"fleiss_kappa"``),
        and, under ``"reliability"``, why the reliabilities cannot rank the annotators (too
        few annotators with enough answers, or a ranking that two halves of the assets do
        not reproduce: split-half rank reliability under 0.5); absent when it is supported.
    proba : numpy.ndarray
        ``(n_assets, k)`` class probabilities, rows in :attr:`per_asset` order.
    model : estimator
        The fitted label model.
    matrix : AnnotationMatrix
        The annotations the model was fitted on.
    class_names : tuple of str
    """

    display_max_rows = 30

    def __init__(
        self,
        *,
        matrix: AnnotationMatrix,
        model: Any,
        proba: np.ndarray,
        per_asset: pl.DataFrame,
        per_annotator: pl.DataFrame,
        confusion_counts: np.ndarray,
        alpha: float | None,
        fleiss_kappa: float | None,
        notes: Mapping[str, str],
    ) -> None:
        self.matrix = matrix
        self.model = model
        self.proba = proba
        self.per_asset = per_asset
        self.per_annotator = per_annotator
        self.alpha = alpha
        self.fleiss_kappa = fleiss_kappa
        self.notes = dict(notes)
        self.class_names = matrix.class_names
        self._confusion_counts = confusion_counts  # [annotator, true class, vote]

    @property
    def labels(self) -> np.ndarray:
        """Consensus class id per asset, ``(n_assets,)`` int64."""
        return self.per_asset["label"].to_numpy()

    def confusion(self, annotator: Any, *, normalize: bool = True) -> pl.DataFrame:
        """One annotator's estimated confusion matrix.

        Rows are the (estimated) true classes, columns the classes the annotator voted:
        ``true_label`` then one column per class name. Counts are soft: each answer adds the
        model's probability of each true class. ``normalize=True`` (default) divides each row
        by its total, giving ``P(vote | true class)`` (null for a class the annotator never
        saw); ``False`` keeps the soft counts.

        Raises
        ------
        InputError
            ``annotator`` is not one of the annotators.
        """
        names = self.matrix.annotators
        hits = (names == annotator).fill_null(False)
        if not hits.any() and not isinstance(annotator, str):
            hits = names.cast(pl.String) == str(annotator)
        if not hits.any():
            raise InputError(
                f"annotator {annotator!r} is not among the {names.len()} annotators (e.g. "
                f"{names.head(_EXAMPLES).to_list()}); see .per_annotator['annotator']"
            )
        counts = self._confusion_counts[int(hits.arg_true()[0])]
        values = counts
        if normalize:
            totals = counts.sum(axis=1, keepdims=True)
            with np.errstate(invalid="ignore", divide="ignore"):
                values = np.where(totals > 0, counts / np.where(totals > 0, totals, 1.0), np.nan)
        frame = pl.DataFrame(
            {name: values[:, v] for v, name in enumerate(self.class_names)},
            schema=dict.fromkeys(self.class_names, pl.Float64),
        ).with_columns(pl.all().fill_nan(None))
        return frame.insert_column(0, pl.Series("true_label", list(self.class_names)))

    def confusion_table(self) -> pl.DataFrame:
        """Every annotator's confusion matrix as one long table.

        ``annotator``, ``true_label``, ``vote`` (class names), ``count`` (soft count of
        answers) and ``rate`` (``P(vote | true_label)``, null when the row total is 0).
        """
        m, k, _ = self._confusion_counts.shape
        counts = self._confusion_counts
        totals = counts.sum(axis=2, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            rates = np.where(totals > 0, counts / np.where(totals > 0, totals, 1.0), np.nan)
        names = np.array(self.class_names, dtype=object)
        annotator_index = np.repeat(np.arange(m), k * k)
        return pl.DataFrame(
            {
                "annotator": self.matrix.annotators.gather(annotator_index),
                "true_label": np.tile(np.repeat(names, k), m).tolist(),
                "vote": np.tile(names, m * k).tolist(),
                "count": counts.reshape(-1),
                "rate": rates.reshape(-1),
            },
            schema_overrides={"true_label": pl.String, "vote": pl.String},
        ).with_columns(pl.col("rate").fill_nan(None))

    # -- display hooks -------------------------------------------------------------------
    def _display_table(self) -> pl.DataFrame:
        return self.per_annotator

    def _display_title(self) -> str:
        n, m = self.matrix.shape
        return f"Consensus of {m:,} annotators on {n:,} assets ({len(self.class_names)} classes)"

    def _display_totals(self) -> Mapping[str, str]:
        agreement = self.per_asset["agreement"].mean()
        return {
            "Krippendorff's alpha": "-" if self.alpha is None else f"{self.alpha:.3f}",
            "Fleiss' kappa": "-" if self.fleiss_kappa is None else f"{self.fleiss_kappa:.3f}",
            "mean agreement per asset": "-" if agreement is None else f"{agreement:.1%}",
        }

    def _display_caption(self) -> str | None:
        notes = "; ".join(f"{key}: {text}" for key, text in self.notes.items())
        base = "labels per asset in .per_asset; confusion matrices via .confusion(annotator)"
        return f"{base}. {notes}" if notes else base

    def _display_formats(self) -> Mapping[str, ColumnFormat]:
        return {
            "n_annotations": "int",
            "reliability": "percent",
            "agreement_with_consensus": "percent",
        }

    def _display_highlights(self) -> Sequence[Highlight]:
        k = len(self.class_names)
        cut = (1.0 + 1.0 / k) / 2.0
        return (
            Highlight(
                "reliability",
                lambda v: v < cut,
                f"reliability below {cut:.0%}: closer to chance (1/{k}) than to always right",
            ),
        )


#: Answers an annotator needs in each half of the assets to take part in the ranking check.
MIN_RANKED_ANSWERS = 5
#: Least split-half reliability (Spearman-Brown corrected) of a ranking by reliability.
MIN_RANKING_RELIABILITY = 0.5


def _ranking_reason(estimator: Any, votes: np.ndarray) -> str | None:
    """Why the reliabilities cannot rank annotators, or None when they can.

    The model is refitted on each half of the assets (a seeded split); the annotators with
    at least :data:`MIN_RANKED_ANSWERS` answers in both halves are ranked by the reliability
    from each half, and the rank correlation of the two, corrected to the full data
    (Spearman-Brown: ``2 r / (1 + r)``), is the reliability of the ranking. Below
    :data:`MIN_RANKING_RELIABILITY`, or with fewer than three such annotators, the ranking
    is mostly noise.
    """
    from scipy.stats import spearmanr
    from sklearn.base import clone

    n, m = votes.shape
    half = np.random.default_rng(0).permutation(n) % 2 == 0
    estimates, answers = [], []
    for part in (half, ~half):
        sub = votes[part]
        model = clone(estimator)
        accuracy = None
        if sub.shape[0] and (sub != ABSTAIN).any():
            model.fit(sub)
            accuracy = getattr(model, "lf_accuracy_", None)
        if accuracy is None or np.shape(accuracy) != (m,):
            return None  # a model without per-annotator accuracies: nothing to check
        estimates.append(np.asarray(accuracy, dtype=np.float64))
        answers.append((sub != ABSTAIN).sum(axis=0))
    usable = (
        (answers[0] >= MIN_RANKED_ANSWERS)
        & (answers[1] >= MIN_RANKED_ANSWERS)
        & np.isfinite(estimates[0])
        & np.isfinite(estimates[1])
    )
    count = int(usable.sum())
    if count < 3:
        return (
            f"only {count} annotator(s) have {MIN_RANKED_ANSWERS}+ answers in each half of the "
            "assets: too few to rank annotators by reliability"
        )
    r = spearmanr(estimates[0][usable], estimates[1][usable]).statistic
    r = 0.0 if not np.isfinite(r) else float(r)
    full = 2 * r / (1 + r) if r > -1 else -1.0
    if full < MIN_RANKING_RELIABILITY:
        return (
            f"the reliabilities rank the {count} annotators with {MIN_RANKED_ANSWERS}+ answers "
            f"in each half of the assets inconsistently (split-half rank reliability "
            f"{full:.2f} < {MIN_RANKING_RELIABILITY}): do not rank annotators by them"
        )
    return None


def consensus(
    annotations: Any,
    *,
    classes: Sequence[str] | int | None = None,
    model: Any = None,
    random_state: Any = None,
) -> Consensus:
    """Consensus label of every asset from several human annotators, with their reliability.

    Parameters
    ----------
    annotations
        Long-form annotations with columns ``asset_id``, ``annotator``, ``label`` and
        optionally ``time`` (see :func:`annotation_matrix`, which also takes other column
        names), or an :class:`AnnotationMatrix`.
    classes
        Class names or the number of classes (see :func:`annotation_matrix`); with an
        AnnotationMatrix it must match its classes if given.
    model
        An unfitted label model with the enrich API (``fit(L)``, ``predict_proba(L)``),
        cloned before fitting, e.g. ``MajorityVote(cardinality=k)``. Default:
        ``LabelModel(cardinality=k, lf_kind="annotator", structure="em")`` -- each
        annotator gets a Dawid-Skene confusion matrix (always learned: on crowd votes it
        beats equal weights in every crowd set measured), and a missing annotation is not
        evidence.
    random_state
        None, an int or a ``numpy.random.Generator``, passed to the model (it overrides the
        given model's own ``random_state``).

    Returns
    -------
    Consensus

    Raises
    ------
    InputError
        Bad annotations (see :func:`annotation_matrix`), fewer than two classes, or a model
        whose ``cardinality`` differs from the number of classes.

    Examples
    --------
    >>> import polars as pl
    >>> answers = pl.DataFrame({"asset_id": [1, 1, 2, 2, 2], "annotator": [7, 8, 7, 8, 9],
    ...                         "label": [0, 0, 1, 0, 1]})
    >>> result = consensus(answers, classes=["no", "yes"])
    >>> result.per_annotator.select("annotator", "n_annotations").rows()
    [(7, 2), (8, 2), (9, 1)]
    >>> result.fleiss_kappa is None, result.notes["fleiss_kappa"].split(";")[0]
    (True, 'assets have between 2 and 3 annotations')
    """
    from sklearn.base import clone

    from enrich.models.label_model import LabelModel

    if isinstance(annotations, AnnotationMatrix):
        matrix = annotations
        if classes is not None:
            expected = (
                tuple(str(c) for c in range(int(classes)))
                if isinstance(classes, int | np.integer) and not isinstance(classes, bool)
                else tuple(str(c) for c in classes)
            )
            if expected != matrix.class_names:
                raise InputError(
                    f"classes {list(expected)} differ from the annotation matrix's classes "
                    f"{list(matrix.class_names)}; leave classes out or rebuild the matrix"
                )
    else:
        matrix = annotation_matrix(annotations, classes=classes)
    k = matrix.cardinality
    n, m = matrix.shape
    if k < 2:
        raise InputError(
            f"the annotations hold a single class {list(matrix.class_names)}; consensus needs "
            "at least two: pass every class with classes=[...]"
        )
    if n == 0 or m == 0:
        raise InputError("there are no annotations; consensus needs at least one")

    if model is None:
        estimator = LabelModel(
            cardinality=k, lf_kind="annotator", structure="em", random_state=random_state
        )
    else:
        if not (hasattr(model, "fit") and hasattr(model, "predict_proba")):
            raise InputError(
                f"model must be a label model with fit(L) and predict_proba(L); got {model!r}"
            )
        estimator = clone(model)
        params = estimator.get_params(deep=False)
        if "cardinality" in params and params["cardinality"] != k:
            raise InputError(
                f"model has cardinality={params['cardinality']!r} but the annotations have {k} "
                f"classes {list(matrix.class_names)}; set cardinality={k}"
            )
        if random_state is not None and "random_state" in params:
            estimator.set_params(random_state=random_state)
    votes = matrix.votes
    estimator.fit(votes)
    proba = np.asarray(estimator.predict_proba(votes), dtype=np.float64)
    label = proba.argmax(axis=1)

    counts = value_counts(votes, k)
    n_annotations = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        agreement = np.where(
            n_annotations > 0, counts[np.arange(n), label] / np.maximum(n_annotations, 1), np.nan
        )
    names = np.array(matrix.class_names, dtype=object)
    per_asset = pl.DataFrame(
        {
            "asset_id": matrix.asset_ids,
            "label": pl.Series(label.astype(np.int64), dtype=pl.Int64),
            "label_name": pl.Series(names[label].tolist(), dtype=pl.String),
            "confidence": pl.Series(proba.max(axis=1), dtype=pl.Float64),
            "agreement": pl.Series(agreement, dtype=pl.Float64).fill_nan(None),
            "n_annotations": pl.Series(n_annotations.astype(np.int64), dtype=pl.Int64),
        }
    )

    answered = votes != ABSTAIN
    per_annotator_n = answered.sum(axis=0)
    design = _one_hot(votes, k)  # (n, m * k)
    confusion_counts = np.asarray(design.T @ proba).reshape(m, k, k).transpose(0, 2, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        posterior_right = np.einsum("jyy->j", confusion_counts) / per_annotator_n
        same = (votes == label[:, None]) & answered
        agrees = same.sum(axis=0) / per_annotator_n
    reliability = posterior_right
    fitted_accuracy = getattr(estimator, "lf_accuracy_", None)
    if fitted_accuracy is not None and np.shape(fitted_accuracy) == (m,):
        reliability = np.asarray(fitted_accuracy, dtype=np.float64)
    reliability = np.where(per_annotator_n > 0, reliability, np.nan)
    per_annotator = pl.DataFrame(
        {
            "annotator": matrix.annotators,
            "n_annotations": pl.Series(per_annotator_n.astype(np.int64), dtype=pl.Int64),
            "reliability": pl.Series(reliability, dtype=pl.Float64).fill_nan(None),
            "agreement_with_consensus": pl.Series(agrees, dtype=pl.Float64).fill_nan(None),
        }
    )

    (alpha, alpha_reason), (kappa, kappa_reason) = alpha_and_kappa(counts)
    notes = {}
    if alpha_reason:
        notes["alpha"] = alpha_reason
    if kappa_reason:
        notes["fleiss_kappa"] = kappa_reason
    ranking_reason = _ranking_reason(estimator, votes)
    if ranking_reason:
        notes["reliability"] = ranking_reason
    logger.debug("consensus: %d assets, %d annotators, alpha=%s, kappa=%s", n, m, alpha, kappa)
    return Consensus(
        matrix=matrix,
        model=estimator,
        proba=proba,
        per_asset=per_asset,
        per_annotator=per_annotator,
        confusion_counts=confusion_counts,
        alpha=alpha,
        fleiss_kappa=kappa,
        notes=notes,
    )


def _one_hot(votes: np.ndarray, k: int) -> sp.csr_matrix:
    """Sparse ``(n, m * k)``: entry ``(i, j * k + v)`` is 1 when annotator j voted v on i."""
    n, m = votes.shape
    rows, cols = np.nonzero(votes != ABSTAIN)
    data = np.ones(rows.shape[0], dtype=np.float64)
    index = cols.astype(np.int64) * k + votes[rows, cols].astype(np.int64)
    return sp.csr_matrix((data, (rows, index)), shape=(n, m * k))


# --------------------------------------------------------------------------------------------
# human votes + LF votes
# --------------------------------------------------------------------------------------------


def combine_votes(
    vote_matrix: VoteMatrix,
    annotations: AnnotationMatrix,
    *,
    unmatched: Literal["error", "drop"] = "error",
) -> VoteMatrix:
    """Put LF votes and human annotations side by side, aligned by asset id, for one label model.

    The result has the vote matrix's rows (same assets, same order), its LF columns first,
    then one column per annotator named ``"annotator:<name>"`` (``-1`` where the annotator
    did not label the asset). Fit a label model on it as on any vote matrix::

        combined = combine_votes(votes, annotation_matrix(answers, classes=CLASSES))
        model = LabelModel(cardinality=len(CLASSES)).fit(combined)

    With ``LabelModel``'s default ``lf_kind="auto"`` an LF that votes one class is a
    *detector* and an annotator who voted several classes gets a Dawid-Skene confusion
    matrix (*annotator*); in either case an abstain or a missing annotation is not evidence.
    ``LabelModel`` chooses the kind per column from its votes, so an annotator whose answers
    are (nearly) all one class is modelled as a detector.

    Parameters
    ----------
    vote_matrix
        LF votes from :func:`enrich.apply` (a :class:`~enrich.votes.VoteMatrix`: votes,
        ``lf_names``, ``asset_ids``).
    annotations
        An :class:`AnnotationMatrix` from :func:`annotation_matrix`.
    unmatched
        What to do with annotated assets that are not in the vote matrix: ``"error"``
        (default) refuses, ``"drop"`` leaves their annotations out.

    Returns
    -------
    VoteMatrix

    Raises
    ------
    InputError
        Class names differ, an LF votes a class the annotations do not have, asset ids are
        repeated in the vote matrix, or annotated assets are missing from it (with
        ``unmatched="error"``).

    Examples
    --------
    >>> import numpy as np, polars as pl
    >>> votes = VoteMatrix(votes=np.array([[1, -1], [-1, 0], [1, 1]], dtype=np.int32),
    ...                    lf_names=("kw", "short"), asset_ids=pl.Series(["a", "b", "c"]),
    ...                    class_names=("HAM", "SPAM"))
    >>> answers = pl.DataFrame({"asset_id": ["c", "a"], "annotator": ["eve", "eve"],
    ...                         "label": ["SPAM", "HAM"]})
    >>> humans = annotation_matrix(answers, classes=["HAM", "SPAM"])
    >>> combined = combine_votes(votes, humans)
    >>> combined.lf_names, combined.votes[:, 2].tolist()
    (('kw', 'short', 'annotator:eve'), [0, -1, 1])
    """
    if unmatched not in ("error", "drop"):
        raise InputError(f"unmatched must be 'error' or 'drop'; got {unmatched!r}")
    if not isinstance(vote_matrix, VoteMatrix):
        raise InputError(
            f"vote_matrix must be an enrich VoteMatrix (from enrich.labeling.apply), got "
            f"{type(vote_matrix).__name__}; wrap an array as VoteMatrix(votes=..., "
            "lf_names=..., asset_ids=...)"
        )
    if not isinstance(annotations, AnnotationMatrix):
        raise InputError(
            f"annotations must be an AnnotationMatrix, got {type(annotations).__name__}; build "
            "it with annotation_matrix(long_form_table, classes=...)"
        )
    k = annotations.cardinality
    if vote_matrix.class_names is not None and tuple(vote_matrix.class_names) != (
        annotations.class_names
    ):
        raise InputError(
            f"the vote matrix's classes {list(vote_matrix.class_names)} differ from the "
            f"annotations' {list(annotations.class_names)}; build the annotation matrix with "
            "classes=vote_matrix.class_names"
        )
    lf_votes = validate_votes(vote_matrix.votes, name="vote_matrix")
    if lf_votes.size and int(lf_votes.max()) >= k:
        raise InputError(
            f"the vote matrix holds class id {int(lf_votes.max())} but the annotations have "
            f"{k} classes {list(annotations.class_names)}; pass classes= with every class"
        )
    ids = vote_matrix.asset_ids.alias("asset_id")
    repeated = ids.filter(ids.is_duplicated()).unique()
    if repeated.len():
        raise InputError(
            f"the vote matrix repeats asset id(s) {repeated.head(_EXAMPLES).to_list()}; ids must "
            "be unique to align annotations"
        )
    theirs = annotations.asset_ids
    if theirs.dtype != ids.dtype:
        ids, theirs = ids.cast(pl.String), theirs.cast(pl.String)
    lookup = pl.DataFrame({"asset_id": theirs, "_j": pl.int_range(theirs.len(), eager=True)})
    target = pl.DataFrame({"asset_id": ids, "_i": pl.int_range(ids.len(), eager=True)})
    matched = lookup.join(target, on="asset_id", how="left", maintain_order="left")
    missing = matched.filter(pl.col("_i").is_null())
    if missing.height and unmatched == "error":
        raise InputError(
            f"{missing.height} annotated asset(s) are not in the vote matrix (e.g. "
            f"{annotations.asset_ids.gather(missing['_j'].head(_EXAMPLES)).to_list()}); apply "
            "the LFs to them too, or pass unmatched='drop'"
        )
    matched = matched.filter(pl.col("_i").is_not_null())
    human = np.full((ids.len(), annotations.shape[1]), ABSTAIN, dtype=np.int32)
    human[matched["_i"].to_numpy()] = annotations.votes[matched["_j"].to_numpy()]
    names = tuple(vote_matrix.lf_names) + tuple(
        f"{ANNOTATOR_PREFIX}{name}" for name in annotations.lf_names
    )
    if len(set(names)) != len(names):
        raise InputError(
            "LF and annotator column names collide; rename the LFs that start with "
            f"{ANNOTATOR_PREFIX!r}"
        )
    versions = tuple(vote_matrix.lf_versions)
    if versions:
        versions = versions + ("human",) * annotations.shape[1]
    if missing.height:
        logger.debug("combine_votes dropped %d annotated assets not in the votes", missing.height)
    return VoteMatrix(
        votes=np.concatenate([lf_votes.astype(np.int32), human], axis=1),
        lf_names=names,
        asset_ids=vote_matrix.asset_ids,
        lf_versions=versions,
        class_names=annotations.class_names,
        errors=vote_matrix.errors,
    )
