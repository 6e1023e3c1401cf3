"""Human annotations as a vote matrix, and how much the annotators agree.

Human annotations arrive in *long form*, one row per answer: ``asset_id``, ``annotator``,
``label`` (a class name or a class id) and optionally ``time``. :func:`annotation_matrix`
turns them into an :class:`AnnotationMatrix` -- a vote matrix with one column per annotator,
``-1`` where an annotator did not label the asset. :func:`krippendorff_alpha` and
:func:`fleiss_kappa` measure the agreement of any such matrix, from their definitions.
:mod:`enrich.analysis.consensus` turns the matrix into one label per asset.

Examples
--------
>>> import polars as pl
>>> answers = pl.DataFrame({
...     "asset_id": ["a", "a", "b", "b"], "annotator": ["ann", "bob"] * 2,
...     "label": ["cat", "cat", "dog", "cat"]})
>>> matrix = annotation_matrix(answers)
>>> matrix.votes.tolist(), round(krippendorff_alpha(matrix), 3)
([[0, 0], [1, 0]], 0.0)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import polars as pl

from enrich._internal.display import TableDisplay
from enrich._internal.frames import as_polars
from enrich._internal.vote_arrays import ABSTAIN, validate_votes
from enrich.errors import (
    DuplicateAnnotationError,
    InputError,
    MissingColumnError,
    UnknownLabelError,
)
from enrich.votes import VotesArray

__all__ = [
    "AnnotationMatrix",
    "alpha_and_kappa",
    "annotation_matrix",
    "fleiss_kappa",
    "krippendorff_alpha",
    "value_counts",
]

logger = logging.getLogger(__name__)

_EXAMPLES = 5


# --------------------------------------------------------------------------------------------
# the annotation matrix
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class AnnotationMatrix(VotesArray, TableDisplay):
    """Human annotations as a vote matrix: one row per asset, one column per annotator.

    Attributes
    ----------
    votes : numpy.ndarray
        int32 ``(n_assets, n_annotators)``: class id ``0..k-1``, ``-1`` where the annotator
        did not label the asset. ``np.asarray(matrix)`` returns it.
    asset_ids : polars.Series
        One id per row (named ``asset_id``), in order of first appearance in the annotations.
    annotators : polars.Series
        One name per column (named ``annotator``, the input's dtype), in order of first
        appearance.
    class_names : tuple of str
        ``class_names[c]`` names class ``c``.
    n_superseded : int
        Annotations dropped because the same annotator labeled the same asset again later.
    """

    display_max_rows: ClassVar[int] = 20
    #: Annotator columns shown before the rest are summarised.
    display_max_annotators: ClassVar[int] = 20

    votes: np.ndarray
    asset_ids: pl.Series
    annotators: pl.Series
    class_names: tuple[str, ...]
    n_superseded: int = 0

    def __post_init__(self) -> None:
        k = len(self.class_names)
        if k < 1:
            raise InputError("class_names is empty; an annotation matrix needs at least one class")
        votes = validate_votes(self.votes, cardinality=k, name="votes")
        n, m = votes.shape
        if self.asset_ids.len() != n or self.annotators.len() != m:
            raise InputError(
                f"votes has shape {votes.shape} but there are {self.asset_ids.len()} asset ids "
                f"and {self.annotators.len()} annotators; give one id per row and one name per "
                "column"
            )
        object.__setattr__(self, "votes", np.ascontiguousarray(votes, dtype=np.int32))
        object.__setattr__(self, "asset_ids", self.asset_ids.alias("asset_id"))
        object.__setattr__(self, "annotators", self.annotators.alias("annotator"))
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))

    @property
    def cardinality(self) -> int:
        """Number of classes ``k``."""
        return len(self.class_names)

    @property
    def lf_names(self) -> tuple[str, ...]:
        """Annotator names as text.

        So the matrix can stand wherever a VoteMatrix's names are read (e.g.
        ``enrich.benchmark(votes=...)``).
        """
        return tuple(str(a) for a in self.annotators.to_list())

    @property
    def n_annotations(self) -> np.ndarray:
        """Annotations per asset, ``(n_assets,)`` int64."""
        return (self.votes != ABSTAIN).sum(axis=1).astype(np.int64)

    def to_polars(self) -> pl.DataFrame:
        """Wide form: ``asset_id`` then one Int32 column per annotator (``-1`` = none)."""
        columns = {name: self.votes[:, j] for j, name in enumerate(self.lf_names)}
        return pl.DataFrame(columns).insert_column(0, self.asset_ids)

    def to_long(self) -> pl.DataFrame:
        """Return the long form: one row per annotation, in matrix order (row by row).

        Columns ``asset_id``, ``annotator``, ``label`` (class id), ``label_name``.
        """
        rows, cols = np.nonzero(self.votes != ABSTAIN)
        codes = self.votes[rows, cols].astype(np.int64)
        names = np.array(self.class_names, dtype=object)
        return pl.DataFrame(
            {
                "asset_id": self.asset_ids.gather(rows),
                "annotator": self.annotators.gather(cols),
                "label": pl.Series(codes, dtype=pl.Int64),
                "label_name": pl.Series(names[codes].tolist(), dtype=pl.String),
            }
        )

    def _display_table(self) -> pl.DataFrame:
        names = pl.Series(["-", *self.class_names])
        shown = self.lf_names[: self.display_max_annotators]
        return self.to_polars().select(
            "asset_id",
            *(
                pl.col(name).cast(pl.Int64).add(1).replace_strict(range(len(names)), names)
                for name in shown
            ),
        )

    def _display_caption(self) -> str | None:
        hidden = self.shape[1] - self.display_max_annotators
        return f"... {hidden:,} more annotator columns" if hidden > 0 else None

    def _display_title(self) -> str:
        n, m = self.shape
        return f"Annotations: {n:,} assets x {m:,} annotators ('-' = not labeled)"

    def _display_totals(self) -> Mapping[str, str]:
        counts = self.n_annotations
        totals = {
            "annotations": f"{int(counts.sum()):,}",
            "per asset": f"{counts.min():,}-{counts.max():,}" if counts.size else "-",
        }
        if self.n_superseded:
            totals["superseded (an earlier answer of the same annotator)"] = (
                f"{self.n_superseded:,}"
            )
        return totals


def annotation_matrix(
    annotations: Any,
    *,
    classes: Sequence[str] | int | None = None,
    asset_column: str = "asset_id",
    annotator_column: str = "annotator",
    label_column: str = "label",
    time_column: str | None = "time",
) -> AnnotationMatrix:
    """Turn long-form annotations (one row per answer) into an :class:`AnnotationMatrix`.

    Parameters
    ----------
    annotations
        polars/pandas/Arrow table with one row per annotation: the asset id, the annotator
        and the label; optionally a time. Ids may be text or integers.
    classes
        Class names (``classes[c]`` names class ``c``) or the number of classes. Labels that
        are text are matched to the names; labels that are integers are class ids
        ``0..k-1``. ``None`` infers them: the sorted distinct text labels, or ids
        ``0..max`` named ``"0"``, ``"1"``...
    asset_column, annotator_column, label_column
        Names of the columns holding the asset id, the annotator and the label.
    time_column
        Column telling when each answer was given (any sortable type: datetime, date,
        number, ISO text). Used only to settle repeated answers; ignored when absent (unless
        named explicitly), never used when ``None``.

    Returns
    -------
    AnnotationMatrix
        Assets and annotators in order of first appearance.

    Raises
    ------
    DuplicateAnnotationError
        An annotator labeled the same asset more than once and there is no time column, the
        times of the repeats are missing, or the latest answers tie with different labels.
        With a time column the latest answer of each (asset, annotator) pair is kept and the
        earlier ones are counted in :attr:`AnnotationMatrix.n_superseded`.
    UnknownLabelError
        A label is not a class (an unknown name, an id outside ``0..k-1``).
    InputError
        Missing columns, nulls in the id, annotator or label column, or a label column that
        is neither text nor integers.

    Examples
    --------
    >>> import polars as pl
    >>> long = pl.DataFrame({"asset_id": [1, 1, 2], "annotator": ["x", "y", "x"],
    ...                      "label": ["SPAM", "HAM", "HAM"]})
    >>> m = annotation_matrix(long, classes=["HAM", "SPAM"])
    >>> m.votes.tolist(), m.asset_ids.to_list(), m.lf_names
    ([[1, 0], [0, -1]], [1, 2], ('x', 'y'))
    """
    table = as_polars(annotations)
    keys = [asset_column, annotator_column]
    missing = [c for c in (*keys, label_column) if c not in table.columns]
    if missing:
        raise MissingColumnError(
            f"the annotations have no column(s) {missing}; they have {table.columns}. Name the "
            "columns with asset_column=, annotator_column=, label_column= (defaults 'asset_id', "
            "'annotator', 'label')"
        )
    if table.height == 0:
        raise InputError("the annotations table has no rows; there is nothing to build from")
    use_time = time_column is not None and time_column in table.columns
    if time_column is not None and not use_time and time_column != "time":
        raise MissingColumnError(
            f"time_column {time_column!r} is not a column of the annotations ({table.columns})"
        )
    for column in (*keys, label_column):
        nulls = table[column].null_count()
        if nulls:
            rows = table[column].is_null().arg_true().head(_EXAMPLES).to_list()
            raise InputError(
                f"annotation column {column!r} has {nulls} null value(s) (rows {rows}); every "
                "annotation needs an asset id, an annotator and a label: drop those rows"
            )
    codes, class_names = _label_codes(table[label_column], classes, label_column)
    frame = table.select(
        pl.col(asset_column).alias("_asset"),
        pl.col(annotator_column).alias("_annotator"),
        *([pl.col(time_column).alias("_time")] if use_time else []),
    ).with_columns(_code=codes, _row=pl.int_range(pl.len(), dtype=pl.Int64))

    assets = frame.select("_asset").unique(maintain_order=True)["_asset"]
    annotators = frame.select("_annotator").unique(maintain_order=True)["_annotator"]
    kept, n_superseded = _settle_repeats(frame, use_time, asset_column, annotator_column)

    rows = _positions(kept["_asset"], assets)
    cols = _positions(kept["_annotator"], annotators)
    votes = np.full((assets.len(), annotators.len()), ABSTAIN, dtype=np.int32)
    votes[rows, cols] = kept["_code"].to_numpy()
    if n_superseded:
        logger.debug(
            "annotation_matrix kept the latest of repeated answers: %d superseded", n_superseded
        )
    return AnnotationMatrix(
        votes=votes,
        asset_ids=assets.alias("asset_id"),
        annotators=annotators.alias("annotator"),
        class_names=class_names,
        n_superseded=n_superseded,
    )


def _label_codes(
    labels: pl.Series, classes: Sequence[str] | int | None, column: str
) -> tuple[pl.Series, tuple[str, ...]]:
    """Class ids (Int64) for the label column, and the class names."""
    dtype = labels.dtype
    names: tuple[str, ...] | None = None
    count: int | None = None
    if isinstance(classes, int | np.integer) and not isinstance(classes, bool):
        if classes < 1:
            raise InputError(f"classes must be >= 1 when given as a count; got {classes}")
        count = int(classes)
    elif classes is not None:
        if isinstance(classes, str) or not isinstance(classes, Sequence | np.ndarray | pl.Series):
            raise InputError(
                f"classes must be a sequence of class names or a count; got {classes!r}"
            )
        names = tuple(str(c) for c in classes)
        if not names or len(set(names)) != len(names):
            raise InputError(f"classes must be distinct names, at least one; got {list(names)}")

    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
        text = labels.cast(pl.String)
        if count is not None:
            raise InputError(
                f"the {column!r} column holds text labels (e.g. {text[0]!r}) but classes is a "
                "count; pass the class names, classes=[...], to map text to class ids"
            )
        if names is None:
            names = tuple(text.unique().sort().to_list())
        known = text.is_in(list(names))
        if not known.all():
            _unknown(text.filter(~known), f"not among the classes {list(names)}", column)
        lookup = {name: i for i, name in enumerate(names)}
        return text.replace_strict(lookup, return_dtype=pl.Int64), names

    if dtype.is_integer():
        ids = labels.cast(pl.Int64)
        if names is not None:
            k = len(names)
        elif count is not None:
            k = count
        else:
            k = max(int(ids.max()) + 1, 1)
        bad = (ids < 0) | (ids >= k)
        if bad.any():
            hint = (
                "; if your labels start at 1, subtract 1"
                if int(ids.max()) == k and int(ids.min()) >= 1
                else ""
            )
            _unknown(ids.filter(bad), f"outside the class ids 0..{k - 1}{hint}", column)
        return ids, names if names is not None else tuple(str(c) for c in range(k))

    raise InputError(
        f"the {column!r} column has dtype {dtype}; labels must be class names (text) or class "
        "ids (integers): cast the column"
    )


def _unknown(bad: pl.Series, why: str, column: str) -> None:
    counts = bad.value_counts(sort=True).head(_EXAMPLES)
    found = ", ".join(
        f"{value!r} ({n}x)" for value, n in zip(counts[bad.name], counts["count"], strict=True)
    )
    raise UnknownLabelError(
        f"{bad.len()} annotation(s) have a {column!r} {why}: {found}. Fix or drop those rows, "
        "or pass classes= with every class"
    )


def _settle_repeats(
    frame: pl.DataFrame, use_time: bool, asset_column: str, annotator_column: str
) -> tuple[pl.DataFrame, int]:
    """Keep one answer per (asset, annotator): the only one, or the latest by time."""
    keys = ["_asset", "_annotator"]
    repeated = frame.select(pl.struct(keys).is_duplicated()).to_series()
    if not repeated.any():
        return frame, 0
    groups = frame.filter(repeated).group_by(keys, maintain_order=True).len()
    first = groups.row(0, named=True)
    example = (
        f"annotator {first['_annotator']!r} labeled asset {first['_asset']!r} {first['len']} times"
    )
    more = f" ({groups.height - 1} more such pair(s))" if groups.height > 1 else ""
    if not use_time:
        raise DuplicateAnnotationError(
            f"{example}{more}; each ({asset_column}, {annotator_column}) pair must appear once. "
            "Drop the repeats, or add a 'time' column (time_column=) so the latest answer is kept"
        )
    dup = frame.filter(repeated)
    if dup["_time"].null_count():
        row = dup.filter(pl.col("_time").is_null()).row(0, named=True)
        raise DuplicateAnnotationError(
            f"annotator {row['_annotator']!r} labeled asset {row['_asset']!r} more than once and "
            f"one of those answers (row {row['_row']}) has no time, so the latest cannot be "
            "told; fill the time or drop the answer"
        )
    is_latest = (pl.col("_time") == pl.col("_time").max().over(keys)).fill_null(False)
    latest = (
        frame.with_columns(_repeated=repeated)
        .filter(~pl.col("_repeated") | is_latest)
        .drop("_repeated")
    )
    ties = latest.group_by(keys, maintain_order=True).agg(
        pl.col("_code").n_unique().alias("n_labels"), pl.col("_time").first()
    )
    ties = ties.filter(pl.col("n_labels") > 1)
    if ties.height:
        row = ties.row(0, named=True)
        raise DuplicateAnnotationError(
            f"annotator {row['_annotator']!r} gave asset {row['_asset']!r} different labels at "
            f"the same latest time {row['_time']!r}; the answer to keep is ambiguous. Fix the "
            "times or drop one answer"
        )
    kept = latest.unique(subset=keys, keep="first", maintain_order=True)
    return kept, frame.height - kept.height


def _positions(values: pl.Series, order: pl.Series) -> np.ndarray:
    """Position of each value within ``order`` (every value is in it)."""
    lookup = pl.DataFrame(
        {"_v": order, "_i": pl.int_range(order.len(), dtype=pl.Int64, eager=True)}
    )
    joined = pl.DataFrame({"_v": values}).join(lookup, on="_v", how="left", maintain_order="left")
    return joined["_i"].to_numpy()


# --------------------------------------------------------------------------------------------
# agreement statistics
# --------------------------------------------------------------------------------------------


def value_counts(votes: np.ndarray, k: int) -> np.ndarray:
    """``(n_units, k)`` float: how many coders gave each value to each unit."""
    n = votes.shape[0]
    rows, cols = np.nonzero(votes != ABSTAIN)
    flat = rows * k + votes[rows, cols].astype(np.int64)
    return np.bincount(flat, minlength=n * k).reshape(n, k).astype(np.float64)


def _alpha(counts: np.ndarray) -> tuple[float | None, str | None]:
    """Nominal Krippendorff's alpha from value counts, or None and the reason."""
    per_unit = counts.sum(axis=1)
    pairable = per_unit >= 2
    if not pairable.any():
        return None, "no asset has two or more annotations, so no pair of answers can be compared"
    c = counts[pairable]
    w = c / (per_unit[pairable] - 1.0)[:, None]
    # coincidence matrix o[v, v'] = sum_u (pairs of values v, v' in u) / (m_u - 1)
    coincidence = w.T @ c - np.diag(w.sum(axis=0))
    n_v = coincidence.sum(axis=1)
    n = float(n_v.sum())
    expected = n * n - float(np.sum(n_v**2))
    if expected <= 0:
        return None, "every compared annotation is the same class, so agreement by chance is total"
    observed = n - float(np.trace(coincidence))
    return float(1.0 - (n - 1.0) * observed / expected), None


def _kappa(counts: np.ndarray) -> tuple[float | None, str | None]:
    """Fleiss' kappa from value counts, or None and the reason."""
    per_unit = counts.sum(axis=1)
    if per_unit.size == 0:
        return None, "there are no assets"
    low, high = int(per_unit.min()), int(per_unit.max())
    if low != high:
        return None, (
            f"assets have between {low} and {high} annotations; Fleiss' kappa needs the same "
            "number on every asset (Krippendorff's alpha does not)"
        )
    r = float(low)
    if r < 2:
        return None, f"every asset has {low} annotation(s); Fleiss' kappa needs at least 2"
    agreement = (np.sum(counts**2, axis=1) - r) / (r * (r - 1.0))
    shares = counts.sum(axis=0) / (counts.shape[0] * r)
    chance = float(np.sum(shares**2))
    if chance >= 1.0:
        return None, "every annotation is the same class, so agreement by chance is total"
    return float((agreement.mean() - chance) / (1.0 - chance)), None


def alpha_and_kappa(
    counts: np.ndarray,
) -> tuple[tuple[float | None, str | None], tuple[float | None, str | None]]:
    """Return Krippendorff's alpha and Fleiss' kappa of ``counts``, each with why it is None.

    ``counts`` is :func:`value_counts`'s ``(n_assets, k)`` table of votes per class.
    """
    return _alpha(counts), _kappa(counts)


def _matrix_counts(votes: Any, cardinality: int | None) -> np.ndarray:
    arr = validate_votes(np.asarray(votes), cardinality=cardinality, name="votes")
    k = cardinality if cardinality is not None else max(int(arr.max(initial=-1)) + 1, 1)
    return value_counts(arr, k)


def krippendorff_alpha(votes: Any, *, cardinality: int | None = None) -> float:
    """Krippendorff's alpha for nominal data.

    ``alpha = 1 - (n - 1) * sum_{v != v'} o[v, v'] / sum_{v != v'} n_v n_v'`` where ``o`` is
    the coincidence matrix (each asset with ``m_u >= 2`` answers adds every ordered pair of
    its answers with weight ``1 / (m_u - 1)``), ``n_v`` its margins and ``n`` the number of
    pairable answers. Missing answers are allowed; assets with one answer are left out.
    1 = perfect agreement, 0 = agreement at chance level.

    Parameters
    ----------
    votes
        ``(n_assets, n_annotators)`` class ids, ``-1`` where an annotator gave no answer
        (an :class:`AnnotationMatrix` works).
    cardinality
        Number of classes (default: largest value + 1); it does not change the value.

    Raises
    ------
    InputError
        When alpha is undefined: no asset has two answers, or every answer is one class.

    Examples
    --------
    Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: four
    observers, twelve units, missing data (transposed: rows are units)::

    >>> import numpy as np
    >>> A = [1, 2, 3, 3, 2, 1, 4, 1, 2, -1, -1, -1]
    >>> B = [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, -1, 3]
    >>> C = [-1, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, -1]
    >>> D = [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, -1]
    >>> round(krippendorff_alpha(np.array([A, B, C, D]).T), 3)
    0.743
    """
    value, reason = _alpha(_matrix_counts(votes, cardinality))
    if value is None:
        raise InputError(f"Krippendorff's alpha is undefined: {reason}")
    return value


def fleiss_kappa(votes: Any, *, cardinality: int | None = None) -> float:
    """Fleiss' kappa: agreement of a fixed number of annotators per asset, beyond chance.

    ``kappa = (P - Pe) / (1 - Pe)`` with ``P`` the mean over assets of the share of agreeing
    annotator pairs and ``Pe = sum_v p_v ** 2`` (``p_v`` = share of all answers that are
    ``v``). Every asset must have the same number ``r >= 2`` of answers (who gave them may
    vary).

    Parameters
    ----------
    votes
        ``(n_assets, n_annotators)`` class ids, ``-1`` where an annotator gave no answer.
    cardinality
        Number of classes (default: largest value + 1); it does not change the value.

    Raises
    ------
    InputError
        Assets have different numbers of answers, fewer than 2, or every answer is one class.

    Examples
    --------
    Four assets, two answers each from three annotators; pairs agree on 3 of 4 assets
    (P = 0.75), answers are 3/8 class 0 and 5/8 class 1 (Pe = 34/64)::

    >>> round(fleiss_kappa([[0, 0, -1], [1, -1, 1], [0, 1, -1], [-1, 1, 1]]), 4)
    0.4667
    """
    value, reason = _kappa(_matrix_counts(votes, cardinality))
    if value is None:
        raise InputError(f"Fleiss' kappa is undefined: {reason}")
    return value
