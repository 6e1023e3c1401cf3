"""The label model: how far to trust each labeling function, and the labels that follow.

:class:`LabelModel` reads a vote matrix (rows = assets, columns = labeling functions (LFs),
values = class ids ``0..k-1`` or ``-1`` for abstain), learns how reliable each LF is without
labels (or with a few gold labels), and returns a probability for each class of each asset.

How it works (see the class docstring for the details):

* Each LF gets one of two vote models, chosen from its own votes. An LF that only ever votes one
  class is a **detector** (a keyword or regex LF): the information is in *when it fires*, and its
  vote is summarised by its precision, ``P(y = c | it votes c)``. An LF that votes several
  classes is an **annotator** (a crowd worker, a classifier): the information is in *which class
  it votes*, summarised by a Dawid-Skene confusion matrix ``P(vote | y)``.
* An abstain is never evidence. Treating abstains as an outcome (as a latent-class model does)
  helps only while LFs are conditionally independent; programmatic LFs are not (keyword LFs
  for one class fire together), and on WRENCH trec and sms the abstain-as-outcome model loses
  to majority vote (``benchmarks/RESULTS.md``). Detectors keep the part of that
  information that is safe: how much likelier their class is when they fire (their
  precision), not what their silence would say.
* Parameters are fitted by expectation-maximisation on the distinct vote patterns weighted by
  their counts, from majority-vote initial labels, in log space, with smoothing priors; the
  class balance is estimated from the votes unless given; gold labels, where given, are clamped.
* The learned model is kept only where it earns it (``structure="auto"``): fitted on one half
  of the rows, it must predict the other half's votes (each left out of its row) better than
  equal weights do, by more than two standard errors; otherwise every LF gets the same weight
  (majority vote, ties going by EM where EM's ties predicted the held-out votes at least as
  well as the balance's, else by the estimated class balance, which also labels rows
  without votes). On data
  it was not developed on, EM can be confidently wrong (a narrow detector that only meets a
  broad one, copies of a weak LF, a drifting class balance); equal weights never lose badly
  to majority vote. Gold labels replace that choice only where they measurably help.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from enrich._internal.vote_arrays import compress_votes, validate_gold, validate_votes
from enrich.errors import InputError, LabelModelFileError
from enrich.models.base import (
    VoteModel,
    check_cardinality,
    check_class_balance,
    check_fitted,
    check_random_state,
    nan_to_none,
    none_to_nan,
    predict_from_proba,
    score_rows,
)
from enrich.models.em import (
    ANNOTATOR,
    CHECK_ROWS,
    DETECTOR,
    MIN_AGREEMENTS,
    ROLE_NAMES,
    SILENT,
    EMState,
    WeightedTranspose,
    agreeing_votes,
    check_class_names,
    class_counts,
    dense_votes,
    equal_weights,
    hash_rows,
    held_out_agreement,
    identical_columns,
    keep_voted_classes,
    majority_proba,
    needs_vote_guard,
    packed_proba,
    posterior,
    proba,
    significant_gain,
    softmax_rows,
    split_weights,
    ties_by_model,
    vote_design,
)

__all__ = [
    "LabelModel",
    "LabelModelFileError",
    "binding_votes",
    "near_duplicates",
    "worse_than_random",
]

logger = logging.getLogger(__name__)

LFKind = Literal["auto", "detector", "annotator"]
Structure = Literal["auto", "vote", "vote+em", "em", "em+gold"]
_STRAY_SHARE = 0.05  # share of votes for other classes a detector may have
#: Pseudo-rows of the majority-vote balance that gold labels of rows without votes are
#: weighed against when they set the class of such rows.
EMPTY_ROW_PRIOR = 20.0


# --------------------------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------------------------


class LabelModel(VoteModel):
    """Weak-supervision label model: learns each LF's reliability and returns class probabilities.

    Parameters
    ----------
    cardinality
        number of classes ``k`` (votes are ``0..k-1``, ``-1`` = abstain).
    class_balance
        fixed class prior, shape ``(k,)`` (normalised). ``None`` (default)
        estimates it from the votes.
    lf_kind
        ``"auto"`` (default) chooses a vote model per LF from its votes in the fit
        data: an LF whose votes are all for one class (allowing at most 5% of them, or a
        single vote, for other classes) is a *detector*, any other LF that voted is an
        *annotator*; except that, next to annotators who agree with each other, a one-class
        LF on whose rows the annotators do not name its class significantly more often than
        on all rows is an annotator (a crowd worker who gives one answer to every item: his
        answer says nothing, as in Dawid-Skene). ``"detector"`` or ``"annotator"`` forces
        one model for every LF.
    detector_prior
        strength, in pseudo-votes, of the prior that pulls a detector's precision towards
        the pooled precision of all detectors (a shared prior). A lone vote says nothing
        about its own LF, so only the rows where a detector's vote meets other votes move it
        away from its peers: about this many such rows weigh as much as the prior. Larger
        trusts sparse agreement evidence less.
    annotator_prior
        Dirichlet pseudo-counts ``(on_diagonal, off_diagonal)`` added to each
        row of an annotator's confusion matrix; the default leans towards annotators being
        right, as Dawid-Skene implementations do.
    min_margin
        a detector's vote always counts as evidence for its class: its precision is kept
        at least ``min_margin`` above the class's base rate and above what a lone vote needs
        to name its class, so a detector never makes a class it did not vote more likely
        than the one it voted.
    max_iter
        maximum EM iterations.
    tol
        convergence threshold on the largest change of any log-likelihood ratio.
    max_fit_rows
        fit on at most this many rows (all gold rows plus a sample of the others);
        ``None`` uses every row. The model has ``O(n_lfs * k**2)`` parameters, which 50k
        rows pin down (raise it for many classes with rare ones); prediction always
        scores every row.
    structure
        ``"auto"`` (default) fits the learned model described below (EM) and
        keeps it only where it predicts held-out votes significantly better than equal
        weights do; otherwise every LF gets the same weight: majority vote, with the
        estimated class balance (not the class order) breaking ties and labelling rows
        without votes. The check: the rows are split in two halves (a seeded hash of each
        distinct row); each structure is fitted on one half, and every vote of a row of
        the other half with two votes or more is predicted from the rest of its row; EM
        is kept when it predicts more of them right per row by over two standard errors.
        When it does not, equal weights break their ties by EM's scores instead of the
        class balance (``"vote+em"``) where that, checked the same way, predicts at least
        as many held-out votes right (a positive mean gain): ties are where majority vote
        has no information, and there the learned model, where not shown worse, knows more
        than the balance (a crowd's ties).
        With gold labels, EM fitted with gold (scored on each half of the gold rows with
        the other half's gold), EM without gold and equal weights are scored on the gold
        rows, and one replaces that choice only when it is right on significantly more of
        them: gold is used where it measurably helps. The gold rows are weighed by vote
        pattern to stand for all rows (post-stratification), so gold picked for review
        (``review_queue(purpose="refit")``: conflicts first) is judged as the pool would
        be. The chosen structure is in
        ``structure_``; the measurements are in ``benchmarks/RESULTS.md``
        (``benchmarks/label_model_robustness.py``). ``"em"`` always keeps the learned
        model fitted without gold labels, ``"em+gold"`` the one fitted with them clamped
        (the same as ``"em"`` without gold); ``"vote"`` takes equal weights in place of
        the check, ``"vote+em"`` equal weights with EM's ties (gold labels may still
        replace them, as above). Rows without votes get
        ``class_balance_`` whichever structure scores the others, so refitting with
        ``structure=model.structure_`` rebuilds the model ``"auto"`` chose.
    random_state
        None, an int or a ``numpy.random.Generator``; it seeds the row sample
        drawn when the data exceeds ``max_fit_rows`` (``None`` takes evenly spaced rows)
        and the split of the structure check (``None`` uses seed 0), so the fit stays
        deterministic. EM itself draws no random numbers, and no global RNG is touched.

    The model. For each asset the class scores are
    ``log pi_y + sum over the LFs that voted of log_lr_[j, vote, y]``, normalised with a softmax:
    abstains add nothing. A *detector* j voting c contributes
    ``log(rho_jc / pi_c)`` to class c and the same ``log((1 - rho_jc) / (1 - pi_c))`` to every
    other class (its wrong votes fall on the other classes by their balance, so a vote never
    favours one unvoted class over another), where ``rho_jc = P(y = c | LF j votes c)`` is its
    precision: a lone vote gives the posterior ``rho_jc`` for class c whatever the class
    balance. Precisions are shrunk towards the pooled precision of all detectors
    (``detector_prior``). An *annotator* contributes
    ``log P(vote | y)`` from its Dawid-Skene confusion matrix. EM alternates the posterior of
    every distinct vote pattern (E) with precisions, confusions and class balance re-estimated
    from the count-weighted posteriors (M), starting from majority vote. Gold labels passed to
    :meth:`fit` replace the posterior of their rows at every step.

    Why two vote models, and why abstains are not evidence: a keyword LF never votes
    anything but its class, so a confusion matrix learns nothing from it (Dawid-Skene with
    abstains as missing scores 0.53 on youtube), while a latent-class model that reads every
    abstain as an outcome over-reads LFs that fire together (keyword LFs of one class do) and
    collapses on sms and trec. Crowd workers vote every class and their abstains mean "not
    asked": the confusion matrix is the right model for them. The choice is made per LF from
    its votes and recorded in ``lf_role_``; the measurements are in
    ``benchmarks/RESULTS.md``.

    The voted-class guard. On a row with votes the label is one of the classes its votes
    name: an annotator's confusion matrix can point away from every vote (two imprecise LFs
    of one class once sent their rows to a rare class). The guard holds on every row with a
    *binding* vote: an annotator's vote for class v binds when its estimated precision for
    v, ``P(y = v | it votes v)``, is significantly above the base rate of v
    (:func:`binding_votes`: by more than two standard errors), that is when the data show
    the vote is evidence for v. A row none of whose votes is shown to be evidence for its
    class (only answers of workers near or below chance) gets the class the model gives it,
    voted or not (a lone answer of an adversarial crowd worker is turned round, as
    Dawid-Skene does). Detector votes always bind (their precision is kept above the base
    rate), so rows of detector votes always keep a voted class.

    Limits. A detector's precision is learned from the rows where its vote meets other votes
    (a lone vote says nothing about its own reliability), so a detector whose class has no
    other detector only ever meets conflicting votes and its precision is underestimated;
    its vote still counts for its class. Identical LF columns share one weight (each counts
    1/copies); near duplicates count fully (they are flagged by :meth:`lf_diagnostics`).

    Fitted attributes:
        classes_: ``arange(k)``.
        n_lfs_: number of LFs (columns) seen at fit time.
        class_balance_: ``(k,)`` class prior of the rows without votes (all-abstain rows get it)
            and of exact ties.
        lf_role_: ``(n_lfs,)`` str, ``"detector"``, ``"annotator"`` or ``"silent"`` (never
            voted in the fit data: ignored).
        lf_precision_: ``(n_lfs, k)`` ``P(y = v | LF votes v)``; NaN for classes it never voted.
        lf_accuracy_: ``(n_lfs,)`` ``P(y = vote | LF votes)``; NaN for silent LFs.
        confusion_: ``(n_lfs, k, k + 1)``: ``confusion_[j, y, 0]`` is ``P(LF j abstains | y)``
            and ``confusion_[j, y, v + 1]`` is ``P(LF j votes v | y)`` (rows sum to 1). It is
            descriptive (abstains are not used as evidence).
        log_lr_: ``(n_lfs, k, k)``: ``log_lr_[j, v, y]`` is what LF j voting v adds to class y's
            score.
        lf_coverage_: ``(n_lfs,)`` share of fit rows where each LF voted.
        n_iter_: EM iterations run. converged_: whether ``tol`` was reached.
        structure_: ``"em"``, ``"vote"`` (equal weights), ``"vote+em"`` (equal weights, ties
            by EM) or ``"em+gold"`` (EM with the gold labels clamped), the structure used for
            prediction.
        score_prior_: ``(k,)`` the prior the chosen structure scores rows with votes with
            (EM's own balance for ``"em"``); rows without votes get ``class_balance_``, the
            balance of the majority-vote labels (with the gold labels of rows without
            votes mixed in), whatever the structure: it stays sound where EM's drifts. The
            per-LF estimates above always come from EM (with gold when ``"em+gold"``).

    Examples
    --------
    >>> import numpy as np
    >>> L = np.array([[0, 0, -1, -1], [1, 1, 1, 1], [0, -1, 0, -1], [1, -1, 1, 1],
    ...               [0, 0, 0, -1], [1, 1, -1, -1], [-1, -1, -1, -1]])
    >>> model = LabelModel(cardinality=2).fit(L)
    >>> model.predict(L[:6]).tolist()
    [0, 1, 0, 1, 0, 1]
    >>> model.lf_role_.tolist()  # the last LF only ever votes class 1
    ['annotator', 'annotator', 'annotator', 'detector']
    >>> proba = model.predict_proba(L)  # the all-abstain row gets the class balance
    >>> np.allclose(proba.sum(axis=1), 1), np.allclose(proba[6], model.class_balance_)
    (True, True)
    """

    def __init__(
        self,
        *,
        cardinality: int = 2,
        class_balance: Any = None,
        lf_kind: LFKind = "auto",
        detector_prior: float = 20.0,
        annotator_prior: tuple[float, float] = (1.0, 0.1),
        min_margin: float = 0.01,
        max_iter: int = 1000,
        tol: float = 1e-4,
        max_fit_rows: int | None = 50_000,
        structure: Structure = "auto",
        random_state: Any = None,
    ) -> None:
        self.cardinality = cardinality
        self.class_balance = class_balance
        self.lf_kind = lf_kind
        self.detector_prior = detector_prior
        self.annotator_prior = annotator_prior
        self.min_margin = min_margin
        self.max_iter = max_iter
        self.tol = tol
        self.max_fit_rows = max_fit_rows
        self.structure = structure
        self.random_state = random_state

    # ------------------------------------------------------------------ validation
    def _validated_hyperparameters(self) -> dict[str, Any]:
        k = check_cardinality(self.cardinality)
        if self.lf_kind not in ("auto", "detector", "annotator"):
            raise InputError(
                f"lf_kind must be 'auto', 'detector' or 'annotator'; got {self.lf_kind!r}"
            )
        try:
            on_diag, off_diag = (float(x) for x in self.annotator_prior)
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"annotator_prior must be a pair (on_diagonal, off_diagonal); got "
                f"{self.annotator_prior!r}"
            ) from exc
        if off_diag <= 0 or on_diag < 0:
            raise InputError(
                f"annotator_prior needs on_diagonal >= 0 and off_diagonal > 0; got "
                f"{self.annotator_prior!r}"
            )
        _check_number("detector_prior", self.detector_prior, low=0.0, low_open=True)
        _check_number("min_margin", self.min_margin, low=0.0, high=1.0 - 1.0 / k)
        if not (
            isinstance(self.max_iter, int | np.integer)
            and not isinstance(self.max_iter, bool)
            and self.max_iter >= 1
        ):
            raise InputError(f"max_iter must be an int >= 1; got {self.max_iter!r}")
        _check_number("tol", self.tol, low=0.0, low_open=True)
        if self.max_fit_rows is not None and not (
            isinstance(self.max_fit_rows, int | np.integer) and self.max_fit_rows >= 1
        ):
            raise InputError(f"max_fit_rows must be None or an int >= 1; got {self.max_fit_rows!r}")
        check_random_state(self.random_state)
        if self.structure not in ("auto", "vote", "vote+em", "em", "em+gold"):
            raise InputError(
                "structure must be 'auto', 'vote', 'vote+em', 'em' or 'em+gold'; got "
                f"{self.structure!r}"
            )
        return {
            "k": k,
            "prior": check_class_balance(self.class_balance, k),
            "on_diag": on_diag,
            "off_diag": off_diag,
        }

    # ------------------------------------------------------------------ fit
    def fit(self, L: Any, y: Any = None, sample_weight: Any = None) -> LabelModel:
        """Learn LF reliabilities and the class balance from the vote matrix ``L``.

        Parameters
        ----------
        L
            vote matrix ``(n_assets, n_lfs)``, classes ``0..k-1``, ``-1`` = abstain.
        y
            optional gold labels ``(n_assets,)``, ``-1`` where unknown; the known ones are
            clamped during fitting and anchor the estimates (they may miss classes).
        sample_weight
            optional ``(n_assets,)`` non-negative weights: a row of weight ``w``
            counts as ``w`` identical rows. Fitting each distinct (votes, gold) row once
            with its count as weight is the same fit as on all the rows, without the
            ``max_fit_rows`` sample (which counts rows of ``L``, not weight).

        Returns
        -------
        self.

        Examples
        --------
        >>> L = np.array([[0, 0], [1, 1], [0, -1]])
        >>> a = LabelModel(cardinality=2).fit(np.repeat(L, [3, 2, 1], axis=0))
        >>> b = LabelModel(cardinality=2).fit(L, sample_weight=[3, 2, 1])
        >>> bool(np.allclose(a.predict_proba(L), b.predict_proba(L)))
        True
        """
        hp = self._validated_hyperparameters()
        k = hp["k"]
        check_class_names(L, k)
        votes = validate_votes(L, cardinality=k)
        n, m = votes.shape
        if n == 0:
            raise InputError("L has no rows; fit needs at least one asset")
        if m == 0:
            raise InputError("L has no columns; fit needs at least one labeling function")
        gold = None if y is None else validate_gold(y, n_assets=n, cardinality=k)
        row_weight = None if sample_weight is None else _check_sample_weight(sample_weight, n)
        rows_used = _fit_rows(n, gold, self.max_fit_rows, self.random_state)
        if rows_used is not None:
            votes = votes[rows_used]
            gold = None if gold is None else gold[rows_used]
            row_weight = None if row_weight is None else row_weight[rows_used]
            n = votes.shape[0]
        votes = votes.astype(np.int8 if k <= 127 else np.int32, copy=False)
        # Compress to distinct (pattern, gold) rows: everything below fits on them with
        # their counts as weights, the same fit as on every row.
        if gold is not None and np.any(gold >= 0):
            packed = compress_votes(
                np.concatenate([votes, gold[:, None].astype(votes.dtype)], axis=1)
            )
            patterns = packed.patterns[:, :m]
            pattern_gold = packed.patterns[:, m].astype(np.int64)
        else:
            packed = compress_votes(votes)
            patterns = packed.patterns
            pattern_gold = None
        if row_weight is None:
            weights = packed.counts.astype(np.float64)
        else:
            weights = np.bincount(packed.inverse, weights=row_weight, minlength=len(packed.counts))
            if not weights.sum() > 0:
                raise InputError(
                    "sample_weight sums to 0 over the rows fitted on; give some rows a positive "
                    "weight"
                )
        return self._fit_structure(patterns, pattern_gold, weights, k, hp["prior"])

    def _fit_em(
        self,
        patterns: np.ndarray,
        pattern_gold: np.ndarray | None,
        weights: np.ndarray,
        hp: dict[str, Any],
        design: sp.csr_matrix | None = None,
        counts: np.ndarray | None = None,
    ) -> LabelModel:
        """Fit EM on distinct vote patterns with their weights (gold, ``-1`` = unknown).

        ``design`` and ``counts``: the patterns' :func:`vote_design` and
        :func:`class_counts`, where the caller has them.
        """
        k = hp["k"]
        n, m = patterns.shape
        if pattern_gold is not None and not np.any(pattern_gold >= 0):
            pattern_gold = None
        n_weighted = float(weights.sum())
        if design is None:
            design = vote_design(patterns, k)
        if counts is None:
            counts = class_counts(design, k)
        # identical LF columns are one piece of evidence: each copy counts 1/copies
        scale = (1.0 / identical_columns(patterns, design))[:, None, None]

        vote_counts = np.asarray(design.T @ weights).reshape(m, k)  # [j, v]
        fired = vote_counts.sum(axis=1)
        roles = np.full(m, SILENT, dtype=np.int8)
        active = fired > 0
        if self.lf_kind == "detector":
            roles[active] = DETECTOR
        elif self.lf_kind == "annotator":
            roles[active] = ANNOTATOR
        else:
            # a detector votes one class only; a few stray votes (<= 5%, or a single one) do
            # not make it an annotator, whose confusion matrix would learn nothing from it;
            # but a one-class LF among annotators whose rows they do not see as rows of its
            # class is a crowd worker with one answer (Dawid-Skene: it says nothing)
            minority = fired - vote_counts.max(axis=1)
            is_det = minority <= np.maximum(1.0, _STRAY_SHARE * fired)
            if (active & is_det).any() and (active & ~is_det).any():
                is_det &= _fires_with_its_class(design, weights, vote_counts, active & ~is_det)
            roles[active & is_det] = DETECTOR
            roles[active & ~is_det] = ANNOTATOR

        fixed_prior = hp["prior"]
        uniform = np.full(k, 1.0 / k)
        q = majority_proba(counts, uniform if fixed_prior is None else fixed_prior)
        clamp = None
        if pattern_gold is not None:
            clamp = pattern_gold >= 0
            q[clamp] = np.eye(k)[pattern_gold[clamp]]

        state = EMState(
            k=k,
            m=m,
            roles=roles,
            vote_counts=vote_counts,
            n_total=n_weighted,
            detector_prior=float(self.detector_prior),
            on_diag=hp["on_diag"],
            off_diag=hp["off_diag"],
            margin=float(self.min_margin),
            fixed_prior=fixed_prior,
            weights=weights,
        )
        weighted_design_t = WeightedTranspose(design, weights)
        log_lr, prior = state.m_step(weighted_design_t, q)
        converged = False
        n_iter = 0
        for n_iter in range(1, int(self.max_iter) + 1):  # noqa: B007
            q = posterior(design, (log_lr * scale).reshape(m * k, k), prior)
            if clamp is not None:
                q[clamp] = np.eye(k)[pattern_gold[clamp]]
            new_log_lr, new_prior = state.m_step(weighted_design_t, q)
            change = max(
                float(np.max(np.abs(new_log_lr - log_lr))),
                float(np.max(np.abs(np.log(new_prior) - np.log(prior)))),
            )
            log_lr, prior = new_log_lr, new_prior
            if change < self.tol:
                converged = True
                break
        if not converged:
            logger.warning(
                "LabelModel EM did not converge in %d iterations (last change %.2g > tol %.2g); "
                "raise max_iter or tol",
                n_iter,
                change,
                self.tol,
            )

        self.classes_ = np.arange(k)
        self.n_lfs_ = m
        self.n_features_in_ = m
        self.n_fit_rows_ = round(n_weighted)
        self.class_balance_ = prior
        self.log_lr_ = log_lr * scale
        self.lf_role_ = np.array([ROLE_NAMES[r] for r in roles], dtype=object)
        self.lf_coverage_ = fired / n_weighted
        self.lf_precision_ = state.precision(weighted_design_t, q)
        with np.errstate(invalid="ignore"):
            share = vote_counts / np.where(fired > 0, fired, 1.0)[:, None]
            self.lf_accuracy_ = np.where(
                active, np.nansum(np.nan_to_num(self.lf_precision_) * share, axis=1), np.nan
            )
        self.confusion_ = state.confusion(log_lr, prior, self.lf_coverage_)
        self.n_iter_ = n_iter
        self.converged_ = converged
        self.structure_ = "em"
        self.score_prior_ = prior
        logger.debug(
            "LabelModel fitted: %d rows, %d patterns, %d detectors, %d annotators, %d iterations",
            n,
            patterns.shape[0],
            int((roles == DETECTOR).sum()),
            int((roles == ANNOTATOR).sum()),
            n_iter,
        )
        return self

    # ------------------------------------------------------------------ structure
    def _fit_structure(
        self,
        patterns: np.ndarray,
        pattern_gold: np.ndarray | None,
        weight: np.ndarray,
        k: int,
        fixed_prior: np.ndarray | None,
    ) -> LabelModel:
        """Choose between learned LF weights (EM) and equal weights; use gold where it helps.

        Gold labels are used only where they measurably help.

        Without gold (``structure="auto"``): the rows are split in two seeded halves; on each,
        both structures are fitted on the other half, and every vote on a row with another
        vote is predicted from the rest of its row (the vote itself left out). EM is kept
        when its mean gain in predicted held-out votes exceeds twice its standard error;
        otherwise every LF gets the same weight (majority vote), with EM breaking ties where
        equal weights with EM's ties, checked the same way against equal weights, have a
        positive mean gain (``"vote+em"``), and the estimated class balance elsewhere (it
        labels rows without votes in every case).

        With gold: the unsupervised choice is the baseline; EM with the gold labels clamped
        (scored on each half of the gold rows after fitting with the other half's gold), EM
        without gold and equal weights are scored on the gold rows, and one replaces the
        baseline only when it is right on significantly more gold rows (a paired difference
        above twice its standard error). The gold rows are post-stratified by vote pattern
        (:func:`post_stratified`), so that gold picked for review (conflicts first) is
        weighed as the pool's rows would be.
        """
        params = self.get_params()
        params.update(structure="em", max_fit_rows=None)
        if self.structure in ("em", "em+gold"):  # given: no check, no gold comparison
            choice = "em+gold" if self.structure == "em+gold" and pattern_gold is not None else "em"
            fitted = _em_model(
                params, patterns, pattern_gold if choice == "em+gold" else None, weight
            )
            _, vote_prior = equal_weights(patterns, None, weight, k, fixed_prior, table=False)
            tables = {choice: (fitted.log_lr_, fitted.class_balance_)}
            return self._keep(fitted, tables, choice, vote_prior, patterns, pattern_gold, weight)
        # everything below works on the distinct (votes, gold) rows with their weights, and
        # splits them by a hash of the row: the same fit as on every row
        design = vote_design(patterns, k)
        counts = class_counts(design, k)
        row_hash = hash_rows(patterns, weight, k, self._seed(), design=design)
        folds = split_weights(row_hash, weight)
        em = _em_model(params, patterns, None, weight, design=design, counts=counts)
        vote_table, vote_prior = equal_weights(
            patterns, None, weight, k, fixed_prior, counts=counts
        )
        # the distinct vote patterns (gold left out): what the check sees and what gold rows
        # are post-stratified by
        by_votes = compress_votes(patterns) if pattern_gold is not None else None
        if self.structure in ("vote", "vote+em"):
            choice = self.structure
        else:
            # the check sees the votes alone, as the fit without gold does: gold labels never
            # change the unsupervised choice they are then weighed against
            seen, seen_weight, seen_design, seen_counts, seen_hash = (
                patterns,
                weight,
                design,
                counts,
                row_hash,
            )
            if by_votes is not None:
                seen = by_votes.patterns
                seen_weight = np.bincount(
                    by_votes.inverse, weights=weight, minlength=len(by_votes.counts)
                )
                seen_design = vote_design(seen, k)
                seen_counts = class_counts(seen_design, k)
                seen_hash = hash_rows(seen, seen_weight, k, self._seed(), design=seen_design)
            check = split_weights(seen_hash, seen_weight, size=CHECK_ROWS)
            choice, gain = _em_or_vote(
                seen, check, k, fixed_prior, params, seen_design, seen_counts
            )
            if choice == "vote" and gain > 0:
                # EM's ties predict held-out votes at least as well as the balance's
                choice = "vote+em"
        fitted = em
        tables = {
            "em": (em.log_lr_, em.class_balance_),
            "vote": (vote_table, vote_prior),
        }
        if choice == "vote+em":
            tables["vote+em"] = ties_by_model(vote_table, em.log_lr_, em.class_balance_)
        if pattern_gold is not None:
            # the structures differ only on rows with votes (a row without votes gets
            # class_balance_ whichever is chosen), so they are compared on those gold rows
            known = (pattern_gold >= 0) & (patterns >= 0).any(axis=1)
            truth = pattern_gold[known]
            # EM with gold, scored on each fold's gold rows after fitting with the other's gold
            hits_gold = np.zeros(int(known.sum()))
            for f in range(2):
                other = folds[1 - f]
                stacked = np.concatenate([patterns, patterns])
                stacked_gold = np.concatenate([pattern_gold, np.full_like(pattern_gold, -1)])
                stacked_weight = np.concatenate([other, folds[f]])
                if not (stacked_weight[: len(other)][known] > 0).any():
                    continue
                model = _em_model(params, stacked, stacked_gold, stacked_weight)
                pred = model.predict(patterns[known])
                hits_gold += folds[f][known] * (pred == truth)
            right = {"em+gold": hits_gold / np.maximum(weight[known], 1e-300)}
            for name, (table, prior) in tables.items():
                scored = proba(table, prior, patterns[known])
                if needs_vote_guard(table, prior):
                    trusted = binding_votes(
                        em.lf_precision_,
                        em.confusion_,
                        em.class_balance_,
                        weight.sum(),
                        detectors=em.lf_role_ == "detector",
                    )
                    keep_voted_classes(scored, _bound_rows(patterns[known], trusted))
                right[name] = (scored.argmax(axis=1) == truth).astype(np.float64)
            # EM's ties were taken without a significant gain: what gold must beat there is
            # equal weights, the choice the check made
            baseline = "vote" if choice == "vote+em" else choice
            best, best_gain = choice, 0.0
            assert by_votes is not None
            stand_for_pool = post_stratified(by_votes.inverse, known, weight)
            for name, hits in right.items():
                if name == baseline:
                    continue
                gain = significant_gain(hits - right[baseline], stand_for_pool)
                if gain > best_gain:
                    best, best_gain = name, gain
            if best == "em+gold":
                fitted = _em_model(params, patterns, pattern_gold, weight)
                tables["em+gold"] = (fitted.log_lr_, fitted.class_balance_)
            choice = best
        return self._keep(fitted, tables, choice, vote_prior, patterns, pattern_gold, weight)

    def _keep(
        self,
        fitted: LabelModel,
        tables: dict[str, tuple[np.ndarray, np.ndarray]],
        choice: str,
        vote_prior: np.ndarray,
        patterns: np.ndarray,
        pattern_gold: np.ndarray | None,
        weight: np.ndarray,
    ) -> LabelModel:
        """Take ``fitted``'s estimates, score voted rows with ``tables[choice]``; return self.

        Rows without a vote get the balance of the majority-vote labels ``vote_prior``,
        whichever structure scores the others: EM's own balance drifts where the abstains
        carry the information (low coverage). Gold labels of rows without votes measure
        that class directly; they move it as far as they are many (EMPTY_ROW_PRIOR
        pseudo-rows of the majority-vote balance against them), and change the class such
        rows get only when significantly more of them are right with it.
        """
        k = vote_prior.size
        self.__dict__.update(
            {key: value for key, value in fitted.__dict__.items() if key.endswith("_")}
        )
        self.n_fit_rows_ = round(float(weight.sum()))
        self.log_lr_, self.score_prior_ = tables[choice]
        self.class_balance_ = vote_prior
        if pattern_gold is not None and self.class_balance is None:
            empty = (pattern_gold >= 0) & ~(patterns >= 0).any(axis=1)
            if empty.any():
                seen = np.bincount(pattern_gold[empty], weights=weight[empty], minlength=k)
                mixed = seen + EMPTY_ROW_PRIOR * vote_prior
                mixed /= mixed.sum()
                old, new = int(np.argmax(vote_prior)), int(np.argmax(mixed))
                # one entry per gold class (rows of a class gain the same): right with the
                # new class minus right with the old one
                gain = (np.arange(k) == new).astype(np.float64) - (np.arange(k) == old)
                if new == old or significant_gain(gain, seen) > 0:
                    self.class_balance_ = mixed
        self.structure_ = choice
        return self

    def _seed(self) -> int:
        state = self.random_state
        if state is None:
            return 0
        if isinstance(state, np.random.Generator):
            return int(state.integers(2**31))
        return int(state)

    # ------------------------------------------------------------------ predict
    def predict_proba(self, L: Any) -> np.ndarray:
        """Class probabilities ``(n_assets, k)``.

        rows sum to 1. All-abstain rows get ``class_balance_``.
        """
        check_fitted(self)
        k = len(self.classes_)
        check_class_names(L, k)
        votes = validate_votes(L, cardinality=k, n_lfs=self.n_lfs_, check_values=False)
        if votes.shape[0] == 0:
            return np.zeros((0, k))
        score_prior = getattr(self, "score_prior_", self.class_balance_)
        guard = needs_vote_guard(self.log_lr_, score_prior)
        # the guard keeps a row to the classes its votes name where one of its votes is
        # shown to be evidence for its class (a binding vote); other rows are left free
        trusted = self._binding_votes() if guard else None
        empty_prior = (
            None if np.array_equal(score_prior, self.class_balance_) else self.class_balance_
        )
        if dense_votes(votes):

            def check(low: int, high: int) -> None:
                if low < -1 or high >= k:  # raises the error that names the bad value
                    validate_votes(L, cardinality=k, n_lfs=self.n_lfs_)

            proba = packed_proba(
                votes,
                self.log_lr_,
                score_prior,
                empty_prior,
                guard=guard,
                check=check,
                trusted=trusted,
            )
            if proba is not None:
                return proba
        votes = validate_votes(votes, cardinality=k, n_lfs=self.n_lfs_)
        table = self.log_lr_.reshape(self.n_lfs_ * k, k)
        proba = softmax_rows(score_rows(votes, table, np.log(score_prior)))
        if guard:
            keep_voted_classes(proba, _bound_rows(votes, trusted))
        if empty_prior is not None:
            proba[~(votes >= 0).any(axis=1)] = empty_prior
        return proba

    def score(self, L: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy of :meth:`predict` against the labels ``y`` (scikit-learn's classifier score).

        Parameters
        ----------
        L : array-like of shape (n_assets, n_lfs)
            Vote matrix.
        y : array-like of shape (n_assets,)
            True classes ``0..k-1``; rows labelled ``-1`` (unknown) are left out.
        sample_weight : array-like of shape (n_assets,), optional
            Non-negative weight of each row.

        Returns
        -------
        float
            The (weighted) share of rows with a known label that are predicted right.

        Raises
        ------
        InputError
            If ``y`` does not hold one class per row or no row has a known label.

        Examples
        --------
        >>> L = np.array([[0, 0], [1, 1], [1, -1], [0, 1]])
        >>> LabelModel(cardinality=2).fit(L).score(L, [0, 1, 1, 0])
        0.75
        """
        check_fitted(self)
        k = len(self.classes_)
        gold = validate_gold(y, n_assets=np.shape(L)[0], cardinality=k)
        known = gold >= 0
        weight = (
            np.ones(gold.size)
            if sample_weight is None
            else _check_sample_weight(sample_weight, gold.size)
        )
        if not (weight[known] > 0).any():
            raise InputError("y has no known label (every value is -1); nothing to score")
        right = self.predict(L) == gold
        return float(weight[known] @ right[known] / weight[known].sum())

    _estimator_type = "classifier"

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's tags of a classifier (only scikit-learn calls this)."""
        from sklearn.utils import ClassifierTags

        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier"
        tags.classifier_tags = ClassifierTags()
        tags.target_tags.required = False  # gold labels are optional
        return tags

    def predict(self, L: Any) -> np.ndarray:
        """Most probable class per asset, ``(n_assets,)`` int.

        exact ties go to the lowest class id (as ``numpy.argmax``).
        """
        return predict_from_proba(self.predict_proba(L))

    # ------------------------------------------------------------------ diagnostics
    def lf_diagnostics(self, L: Any, sample_weight: Any = None) -> Any:
        """Per-LF diagnostics from the fitted model and the votes ``L``, as a polars DataFrame.

        One row per LF in column order, with columns ``lf`` (the LF's name: ``L.lf_names``
        when ``L`` has them, else ``lf_0, lf_1, ...``), ``estimated_accuracy`` (Float64, null
        for LFs that never voted at fit time), ``identifiable`` (Boolean: the LF's vote agrees
        with another LF's vote on at least 3 rows, so its accuracy can be learned from
        agreements; an LF that only ever meets LFs voting other classes cannot be told apart
        from a bad one, and its estimate is a guess), ``worse_than_random`` (Boolean: its
        estimated
        accuracy is significantly below that of a random voter with its vote distribution),
        ``never_fires`` (Boolean: no vote in ``L``) and ``near_duplicate_of`` (Int64: the
        lowest-index earlier LF it agrees with on at least 95% of the rows where either votes,
        null if none). ``sample_weight`` (``(n_assets,)``, >= 0) counts a row that many times,
        as in :meth:`fit`.

        Examples
        --------
        >>> import numpy as np
        >>> L = np.array([[0, 0, -1], [1, 1, -1], [0, 0, -1], [1, 1, -1]])
        >>> diag = LabelModel().fit(L).lf_diagnostics(L)
        >>> diag["near_duplicate_of"].to_list(), diag["never_fires"].to_list()
        ([None, 0, None], [False, False, True])
        """
        import polars as pl

        check_fitted(self)
        k = len(self.classes_)
        votes = validate_votes(L, cardinality=k, n_lfs=self.n_lfs_)
        weight = None
        if sample_weight is not None:
            weight = _check_sample_weight(sample_weight, votes.shape[0])
            votes = votes[weight > 0]
            weight = weight[weight > 0]
        names = getattr(L, "lf_names", None)
        names = (
            [str(name) for name in names]
            if names is not None and len(names) == self.n_lfs_
            else [f"lf_{j}" for j in range(self.n_lfs_)]
        )
        return pl.DataFrame(
            {
                "lf": pl.Series(names, dtype=pl.String),
                "estimated_accuracy": pl.Series(
                    [None if np.isnan(a) else float(a) for a in self.lf_accuracy_],
                    dtype=pl.Float64,
                ),
                "identifiable": pl.Series(
                    agreeing_votes(votes, k, weight) >= MIN_AGREEMENTS, dtype=pl.Boolean
                ),
                "worse_than_random": pl.Series(self._worse_than_random(), dtype=pl.Boolean),
                "never_fires": pl.Series((votes < 0).all(axis=0).tolist(), dtype=pl.Boolean),
                "near_duplicate_of": pl.Series(
                    near_duplicates(votes, k=k, sample_weight=weight), dtype=pl.Int64
                ),
            }
        )

    def _worse_than_random(self) -> list[bool]:
        return worse_than_random(
            self.lf_accuracy_,
            self.confusion_,
            self.class_balance_,
            self.lf_coverage_,
            self._n_fit_rows(),
        ).tolist()

    def _binding_votes(self) -> np.ndarray:
        # the precisions come from EM's posteriors: the base rate is EM's balance where EM
        # scores the rows (with equal weights a voted class always leads: nothing to guard)
        em_scores = getattr(self, "structure_", "em") in ("em", "em+gold")
        return binding_votes(
            self.lf_precision_,
            self.confusion_,
            self.score_prior_ if em_scores else self.class_balance_,
            self._n_fit_rows(),
            detectors=self.lf_role_ == "detector",
        )

    def _n_fit_rows(self) -> float:
        return float(getattr(self, "n_fit_rows_", 1.0))

    # ------------------------------------------------------------------ persistence
    _FORMAT = "enrich.LabelModel"
    _FORMAT_VERSION = 2  # 2 adds "structure"; version 1 files load as structure "em"
    _READS_VERSIONS = (1,)
    _NAN_ALLOWED = ("lf_precision_", "lf_accuracy_")

    def _validate_loaded(self) -> None:
        self._validated_hyperparameters()

    def _fitted_state(self) -> dict[str, Any]:
        return {
            "n_lfs": int(self.n_lfs_),
            "n_fit_rows": int(self.n_fit_rows_),
            "class_balance": self.class_balance_.tolist(),
            "log_lr": self.log_lr_.tolist(),
            "lf_role": [str(r) for r in self.lf_role_],
            "lf_coverage": self.lf_coverage_.tolist(),
            "lf_precision": nan_to_none(self.lf_precision_),
            "lf_accuracy": nan_to_none(self.lf_accuracy_),
            "confusion": self.confusion_.tolist(),
            "n_iter": int(self.n_iter_),
            "converged": bool(self.converged_),
            "structure": str(getattr(self, "structure_", "em")),
            "score_prior": getattr(self, "score_prior_", self.class_balance_).tolist(),
        }

    @classmethod
    def _params_from_json(cls, params: dict[str, Any]) -> dict[str, Any]:
        params = dict(params)
        if params.get("annotator_prior") is not None:
            params["annotator_prior"] = tuple(params["annotator_prior"])
        return params

    def _restore(self, fitted: dict[str, Any]) -> None:
        k = int(self.cardinality)
        self.classes_ = np.arange(k)
        self.n_lfs_ = int(fitted["n_lfs"])
        self.n_features_in_ = self.n_lfs_
        self.n_fit_rows_ = int(fitted["n_fit_rows"])
        self.class_balance_ = np.asarray(fitted["class_balance"], dtype=np.float64)
        self.log_lr_ = np.asarray(fitted["log_lr"], dtype=np.float64).reshape(self.n_lfs_, k, k)
        self.lf_role_ = np.array(fitted["lf_role"], dtype=object)
        self.lf_coverage_ = np.asarray(fitted["lf_coverage"], dtype=np.float64)
        self.lf_precision_ = none_to_nan(fitted["lf_precision"]).reshape(self.n_lfs_, k)
        self.lf_accuracy_ = none_to_nan(fitted["lf_accuracy"]).reshape(self.n_lfs_)
        self.confusion_ = np.asarray(fitted["confusion"], dtype=np.float64).reshape(
            self.n_lfs_, k, k + 1
        )
        self.n_iter_ = int(fitted["n_iter"])
        self.converged_ = bool(fitted["converged"])
        self.structure_ = fitted.get("structure", "em")
        self.score_prior_ = np.asarray(
            fitted.get("score_prior", fitted["class_balance"]), dtype=np.float64
        ).reshape(k)
        if np.any(self.score_prior_ <= 0):
            raise ValueError("score_prior must be positive")
        if self.structure_ not in ("em", "vote", "vote+em", "em+gold"):
            raise ValueError(f"unknown structure {self.structure_!r}")
        for name in ("lf_role_", "lf_coverage_"):
            if getattr(self, name).shape != (self.n_lfs_,):
                raise ValueError(f"{name.rstrip('_')} must hold {self.n_lfs_} entries")
        roles = set(self.lf_role_.tolist())
        if not roles <= set(ROLE_NAMES):
            raise ValueError(f"unknown LF roles {sorted(map(str, roles - set(ROLE_NAMES)))}")


# --------------------------------------------------------------------------------------------
# EM internals
# --------------------------------------------------------------------------------------------


def _em_model(
    params: dict[str, Any],
    patterns: np.ndarray,
    gold: np.ndarray | None,
    weight: np.ndarray,
    *,
    design: sp.csr_matrix | None = None,
    counts: np.ndarray | None = None,
) -> LabelModel:
    """A ``LabelModel(**params)`` fitted by EM on distinct patterns with their weights."""
    model = LabelModel(**params)
    hp = model._validated_hyperparameters()
    return model._fit_em(patterns, gold, weight, hp, design, counts)


def _fires_with_its_class(
    design: sp.csr_matrix, weights: np.ndarray, vote_counts: np.ndarray, annotators: np.ndarray
) -> np.ndarray:
    """Per LF, whether the annotators' votes show it firing where its main class is.

    A one-class LF is a detector when it fires where its class is (a keyword LF); a crowd
    worker who gives the same answer to every item he is asked is not: his rows are the
    crowd's rows, and his answer says nothing about them (Dawid-Skene's view). The
    ``annotators`` (``(m,)`` bool: LFs that vote several classes) tell the two apart where
    they can. Their votes name class c a share ``p_c`` of the time over all rows. They can
    tell rows of c when an annotator vote names c more often where the row's other
    annotator votes name c most, by more than two standard errors. Then an LF whose main
    class is c stays a detector only if, on its rows, the annotators name c more often than
    ``p_c`` by more than two standard errors; otherwise it is an annotator. Where the
    annotators cannot tell (one annotator, or no agreement among them), it stays a detector.
    """
    m, k = vote_counts.shape
    out = np.ones(m, dtype=bool)
    if not annotators.any():
        return out
    keep = np.repeat(annotators, k)[design.indices]  # the annotator votes of the design
    ann = sp.csr_matrix(
        (design.data * keep, design.indices % k, design.indptr), shape=(design.shape[0], k)
    ).toarray()  # [row, c] annotator votes per class
    overall = weights @ ann
    if not overall.sum() > 0:
        return out
    share = overall / overall.sum()  # p_c
    # how often an annotator vote is c where the row's other annotator votes name c most
    agree = np.zeros((k, k))  # [the others' class, vote]
    for v in range(k):
        others = ann.copy()
        others[:, v] -= 1
        has = (ann[:, v] > 0) & (others.sum(axis=1) > 0)
        top = others[has].max(axis=1)
        tied = others[has] == top[:, None]
        unique = tied.sum(axis=1) == 1
        rows = np.flatnonzero(has)[unique]
        np.add.at(agree, (tied[unique].argmax(axis=1), v), weights[rows] * ann[rows, v])
    seen_c = agree.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.diag(agree) / seen_c
    informative = seen_c > 0
    informative[informative] = q[informative] > share[informative] + 2 * np.sqrt(
        share[informative] * (1 - share[informative]) / seen_c[informative]
    )
    main = np.argmax(vote_counts, axis=1)
    mass = np.asarray(design.T @ (ann * weights[:, None])).reshape(m, k, k)  # [j, v, c]
    seen = mass[np.arange(m), main].sum(axis=1)  # annotator votes beside j's main votes
    hits = mass[np.arange(m), main, main]
    p = share[main]
    enriched = hits > seen * (p + 2 * np.sqrt(p * (1 - p) / np.maximum(seen, 1.0)))
    out[informative[main] & (seen > 0) & ~enriched] = False
    return out


def _em_or_vote(
    patterns: np.ndarray,
    folds: np.ndarray,
    k: int,
    fixed_prior: np.ndarray | None,
    params: dict[str, Any],
    design: sp.csr_matrix,
    counts: np.ndarray,
) -> tuple[str, float]:
    """Return ``("em" or "vote", tie_gain)``: the structure that predicts held-out votes better.

    ``"em"`` when EM, fitted on one fold of the rows, predicts the held-out votes of the other
    fold significantly better than equal weights do; else ``"vote"``, with ``tie_gain`` the
    mean gain per row of equal weights whose ties EM breaks (:func:`ties_by_model`) over
    plain equal weights, significant or not (0 with ``"em"`` or when no row could be
    scored). ``design`` and ``counts`` are the patterns' :func:`vote_design` and
    :func:`class_counts`.
    """
    gains, tie_gains, weights = [], [], []
    # a few hundred iterations settle what the check compares (it is a test, not the fit)
    params = {**params, "max_iter": min(int(params["max_iter"]), 200), "tol": 1e-3}
    for f in range(2):
        train, test = folds[1 - f] > 0, folds[f] > 0
        if not train.any() or not test.any():
            continue
        fit_on, fit_weight = patterns[train], folds[1 - f][train]
        fit_design, fit_counts = design[train], counts[train]
        learned = _em_model(params, fit_on, None, fit_weight, design=fit_design, counts=fit_counts)
        table, prior = equal_weights(fit_on, None, fit_weight, k, fixed_prior, counts=fit_counts)
        held_out, weight, test_design = patterns[test], folds[f][test], design[test]
        a, wa = held_out_agreement(
            learned.log_lr_, learned.class_balance_, held_out, weight, design=test_design
        )
        b, _ = held_out_agreement(table, prior, held_out, weight, design=test_design)
        tied_table, tied_prior = ties_by_model(table, learned.log_lr_, learned.class_balance_)
        c, _ = held_out_agreement(tied_table, tied_prior, held_out, weight, design=test_design)
        gains.append(a - b)
        tie_gains.append(c - b)
        weights.append(wa)
    if not gains:
        return "vote", 0.0
    gain, weight = np.concatenate(gains), np.concatenate(weights)
    if significant_gain(gain, weight) > 0:
        return "em", 0.0
    tie_gain = np.concatenate(tie_gains)
    return "vote", float(weight @ tie_gain / weight.sum()) if weight.sum() > 0 else 0.0


# --------------------------------------------------------------------------------------------
# helpers used by several models
# --------------------------------------------------------------------------------------------


def near_duplicates(
    votes: np.ndarray, *, k: int, threshold: float = 0.95, sample_weight: np.ndarray | None = None
) -> list[int | None]:
    """Return, for each LF, the earlier LF it nearly duplicates (or ``None``).

    That is the lowest-index earlier LF whose votes match it on at least ``threshold`` of the
    rows where either of the two votes (``None`` if there is none); a row of
    ``sample_weight`` w counts w times.

    Only pairs that agree often enough to qualify are examined (sparse products), so it
    scales to thousands of LFs.

    Examples
    --------
    >>> near_duplicates(np.array([[0, 0, 1], [1, 1, -1], [-1, -1, 0]]), k=2)
    [None, 0, None]
    """
    n, m = votes.shape
    if m < 2 or n == 0:
        return [None] * m
    fired = votes >= 0
    weight = np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64)
    n_fired = weight @ fired
    agree = sp.csr_matrix((m, m))
    for v in range(k):
        hit = sp.csc_matrix(votes == v, dtype=np.float64)
        if hit.nnz:
            agree = agree + (hit.T @ hit.multiply(weight[:, None]).tocsc())
    agree = sp.triu(agree, k=1).tocoo()  # pairs (earlier, later)
    first, second, same = agree.row, agree.col, agree.data
    # agree / either >= threshold needs agree >= threshold * max(n_first, n_second)
    keep = same >= threshold * np.maximum(n_fired[first], n_fired[second]) - 1e-9
    out: list[int | None] = [None] * m
    for a, b, s in sorted(zip(first[keep], second[keep], same[keep], strict=True)):
        if out[b] is not None:
            continue
        both = float(weight @ (fired[:, a] & fired[:, b]))
        either = n_fired[a] + n_fired[b] - both
        if either > 0 and s / either >= threshold:
            out[b] = int(a)
    return out


def worse_than_random(
    accuracy: np.ndarray,
    confusion: np.ndarray,
    balance: np.ndarray,
    coverage: np.ndarray,
    n_rows: float,
) -> np.ndarray:
    """Return, per LF, whether its estimated accuracy is significantly below a random voter's.

    A random voter with the LF's vote distribution ``P(vote = v)`` (from its ``confusion``
    ``(n_lfs, k, k + 1)`` and the class ``balance``) is right with
    ``sum_v P(v) * balance_v``; the LF is worse than random when its ``accuracy`` is more
    than two standard errors of that rate, over its ``coverage * n_rows`` votes, below it.
    LFs that never voted are not.

    Examples
    --------
    >>> confusion = np.zeros((2, 2, 3))
    >>> confusion[:, :, 0] = 0.5  # half abstains; votes split evenly over the two classes
    >>> confusion[:, :, 1:] = 0.25
    >>> worse_than_random(np.array([0.2, 0.5]), confusion, np.array([0.5, 0.5]),
    ...                   np.array([0.5, 0.5]), 1000).tolist()
    [True, False]
    """
    rates = np.einsum("jyv,y->jv", confusion[:, :, 1:], balance)  # [j, v] P(vote = v)
    total = rates.sum(axis=1)
    share = rates / np.where(total > 0, total, 1.0)[:, None]
    chance = share @ balance
    n_votes = np.maximum(coverage * n_rows, 1.0)
    se = np.sqrt(np.maximum(chance * (1 - chance), 1e-12) / n_votes)
    with np.errstate(invalid="ignore"):
        worse = accuracy < chance - 2 * se
    return worse & (total > 0) & ~np.isnan(accuracy)


def binding_votes(
    precision: np.ndarray,
    confusion: np.ndarray,
    balance: np.ndarray,
    n_rows: float,
    *,
    detectors: np.ndarray | None = None,
) -> np.ndarray:
    """Return ``(n_lfs, k)`` bool: whether LF j's vote for class v keeps its row to voted classes.

    It does when its precision ``P(y = v | j votes v)`` (``precision``, NaN where it never
    voted v) is more than two standard errors (over its estimated votes for v, from
    ``confusion`` ``(n_lfs, k, k + 1)``, the class ``balance`` and ``n_rows``) above the base
    rate ``balance[v]``: the data show the vote is evidence for v. A vote near chance (a
    mediocre crowd worker's) or below it (an adversarial one's) does not bind. The votes of
    ``detectors`` (``(n_lfs,)`` bool; None: none) always bind: their vote model keeps each
    vote evidence for its class.

    Examples
    --------
    >>> confusion = np.zeros((1, 3, 4))
    >>> confusion[0, :, 1:] = 1 / 3  # always votes, each class a third of the time
    >>> balance = np.full(3, 1 / 3)
    >>> binding_votes(np.array([[0.2, 0.34, 0.6]]), confusion, balance, 1000).tolist()
    [[False, False, True]]
    """
    rates = np.einsum("jyv,y->jv", confusion[:, :, 1:], balance)  # [j, v] P(vote = v)
    n_votes = np.maximum(rates * n_rows, 1.0)
    se = np.sqrt(balance * (1 - balance) / n_votes)
    with np.errstate(invalid="ignore"):
        binds = precision > balance[None, :] + 2 * se
    if detectors is not None:
        binds[detectors] = True
    return binds


def _bound_rows(votes: np.ndarray, binding: np.ndarray) -> np.ndarray:
    """A copy of ``votes`` where the rows with no binding vote (``binding[j, v]``) abstain.

    :func:`~enrich.models.em.keep_voted_classes` on it keeps each row with a binding vote to
    the classes its votes name, and leaves the rows whose every vote is evidence against its
    class free.
    """
    rows, cols = np.nonzero(votes >= 0)
    out = votes.astype(np.result_type(votes.dtype, np.int8))  # a signed copy (abstain = -1)
    bound = np.zeros(votes.shape[0], dtype=bool)
    bound[rows[binding[cols, votes[rows, cols]]]] = True
    out[~bound] = -1
    return out


def _check_number(
    name: str, value: Any, *, low: float, high: float | None = None, low_open: bool = False
) -> None:
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if ok:
        ok = np.isfinite(value) and (value > low if low_open else value >= low)
        ok = ok and (high is None or value < high)
    if not ok:
        lower = f"> {low:g}" if low_open else f">= {low:g}"
        upper = "" if high is None else f" and < {high:.3g}"
        raise InputError(f"{name} must be a number {lower}{upper}; got {value!r}")


def post_stratified(pattern_of: np.ndarray, known: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Weights that make the ``known`` (gold) rows stand for every row, by vote pattern.

    Every structure predicts from the votes alone, so its accuracy over all rows is the
    mean of its accuracy per vote pattern, weighted by the pattern's rows. Gold picked for
    review is not a random sample of them (conflicting patterns come first), so each gold
    row weighs ``N_p / g_p`` (its pattern's rows over the pattern's gold rows:
    post-stratification, Holt & Smith 1979). The weights are scaled to sum to Kish's
    effective sample size, so a standard error read from them (``significant_gain``
    counts weights as rows) pays for uneven weights. Gold drawn at random gives about
    equal weights: the comparison is then the plain one.

    ``pattern_of`` numbers the vote pattern of each distinct (votes, gold) row, ``weight``
    counts its rows; returns the weights of the ``known`` ones, in order.

    Pattern ``(0, 1)`` has 100 rows, 2 of them gold; ``(1, 1)`` 2 rows, both gold. The gold
    rows stand for 100 and 2 rows; 4 gold rows this uneven are worth about 2 random ones:

    >>> w = post_stratified(np.array([0, 0, 1]), np.array([True, False, True]),
    ...                     np.array([2.0, 98.0, 2.0]))
    >>> w.round(3).tolist(), round(float(w.sum()), 2)
    ([2.039, 0.041], 2.08)
    """
    rows = np.bincount(pattern_of, weights=weight)
    gold = np.bincount(pattern_of[known], weights=weight[known], minlength=rows.size)
    per_row = rows[pattern_of[known]] / gold[pattern_of[known]]
    count = weight[known]
    total = float(count @ per_row)
    if not total > 0:
        return count
    effective = total**2 / float(count @ per_row**2)
    return count * per_row * (effective / total)


def _fit_rows(
    n: int, gold: np.ndarray | None, max_rows: int | None, random_state: Any
) -> np.ndarray | None:
    """Row indices to fit on when ``n > max_rows`` (every gold row plus a sample), else None."""
    if max_rows is None or n <= max_rows:
        return None
    labelled = np.zeros(n, dtype=bool) if gold is None else gold >= 0
    others = np.flatnonzero(~labelled)
    size = max(int(max_rows) - int(labelled.sum()), 0)
    if size >= others.size:
        return None
    if random_state is None:
        picked = others[(np.arange(size, dtype=np.int64) * others.size) // max(size, 1)]
    else:
        # draws with replacement, duplicates dropped (a few percent fewer rows than ``size``;
        # a draw without replacement permutes every row, slow at millions of rows)
        rng = check_random_state(random_state)
        drawn = np.sort(rng.integers(0, others.size, size=size))
        picked = others[drawn[np.append(True, drawn[1:] != drawn[:-1])]]
    return np.sort(np.concatenate([np.flatnonzero(labelled), picked]))


def _check_sample_weight(sample_weight: Any, n: int) -> np.ndarray:
    """``sample_weight`` as a float array of ``n`` finite, non-negative weights."""
    try:
        weight = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"sample_weight must hold numbers; got {sample_weight!r:.80}") from exc
    if weight.shape != (n,):
        raise InputError(
            f"sample_weight has shape {weight.shape} but L has {n} rows; give one weight per row"
        )
    bad = ~np.isfinite(weight) | (weight < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(
            f"sample_weight holds {float(weight[i])!r} at row {i}; weights must be finite and >= 0"
        )
    return weight
