"""Round trip with Label Studio: review tasks out, reviewed labels back in as gold.

Out: :func:`to_label_studio` turns a review queue (or any table with ``asset_id``) plus the
asset data into Label Studio tasks -- ``data`` fields (always ``asset_id``) and our label as
a pre-annotation (``predictions``) with its confidence as ``score``;
:func:`write_label_studio_tasks` writes them atomically as the JSON file Label Studio
imports; :func:`label_studio_config` writes the matching labeling config (a ``Text`` object
and a single-choice ``Choices`` control).

In: :func:`import_label_studio` reads Label Studio's JSON export (the "JSON" format: a list
of tasks, each with ``data`` and ``annotations``) into a gold table -- ``asset_id``,
``label``, ``label_name``, ``reviewer``, ``reviewed_at`` -- merged with an existing gold
table. Validation is all-or-nothing: any malformed task makes it raise, naming every bad
task, and nothing is returned.

Examples
--------
>>> import polars as pl
>>> from enrich.io.label_studio import import_label_studio, to_label_studio
>>> queue = pl.DataFrame({"asset_id": ["c1"], "label": [1], "confidence": [0.62]})
>>> data = pl.DataFrame({"asset_id": ["c1"], "text": ["check out my channel"]})
>>> tasks = to_label_studio(queue, data, class_names=["HAM", "SPAM"], model_version="lm-1")
>>> tasks[0]["data"], tasks[0]["predictions"][0]["score"]
({'asset_id': 'c1', 'text': 'check out my channel'}, 0.62)
>>> export = [{"id": 7, "data": tasks[0]["data"], "annotations": [{
...     "id": 1, "completed_by": 3, "was_cancelled": False,
...     "created_at": "2026-11-28T10:00:00.000000Z", "updated_at": "2026-11-28T10:00:05Z",
...     "result": [{"from_name": "label", "to_name": "text", "type": "choices",
...                 "value": {"choices": ["HAM"]}}]}]}]
>>> result = import_label_studio(export, class_names=["HAM", "SPAM"])
>>> result.gold.select("asset_id", "label", "label_name", "reviewer").rows()
[('c1', 0, 'HAM', '3')]
>>> import_label_studio(export, class_names=["HAM", "SPAM"], existing_gold=result.gold).n_new
0
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final
from xml.sax.saxutils import quoteattr

import polars as pl

from enrich._internal.classes import did_you_mean
from enrich._internal.display import ColumnFormat, TableDisplay
from enrich._internal.files import write_atomic
from enrich._internal.frames import as_polars, require_columns
from enrich.errors import InputError, LabelStudioImportError
from enrich.io.label_studio_tasks import (
    Annotation,
    import_error,
    known_ids,
    load_export,
    parse_task,
)

__all__ = [
    "GOLD_SCHEMA",
    "GoldImport",
    "LabelStudioImportError",
    "import_label_studio",
    "label_studio_config",
    "to_label_studio",
    "write_label_studio_tasks",
]

logger = logging.getLogger(__name__)

#: Columns and dtypes of a gold table (``asset_id`` keeps the ids' own dtype).
GOLD_SCHEMA: Final[Mapping[str, pl.DataType]] = {
    "label": pl.Int64(),
    "label_name": pl.String(),
    "reviewer": pl.String(),
    "reviewed_at": pl.Datetime("us", "UTC"),
}


# -- out ---------------------------------------------------------------------------------
def label_studio_config(
    class_names: Sequence[str],
    *,
    from_name: str = "label",
    to_name: str = "text",
    text_column: str = "text",
) -> str:
    """Return a Label Studio labeling config: the text and one single-choice class control.

    ``from_name`` / ``to_name`` must be the names :func:`to_label_studio` and
    :func:`import_label_studio` use; ``text_column`` is the ``data`` field shown.

    >>> print(label_studio_config(["HAM", "SPAM"]))
    <View>
      <Text name="text" value="$text"/>
      <Choices name="label" toName="text" choice="single" showInline="true">
        <Choice value="HAM"/>
        <Choice value="SPAM"/>
      </Choices>
    </View>
    """
    names = _class_names(class_names)
    for what, value in (
        ("from_name", from_name),
        ("to_name", to_name),
        ("text_column", text_column),
    ):
        if not isinstance(value, str) or not value:
            raise InputError(f"{what} must be a non-empty string, got {value!r}")
    choices = "\n".join(f"    <Choice value={quoteattr(name)}/>" for name in names)
    return (
        "<View>\n"
        f"  <Text name={quoteattr(to_name)} value={quoteattr('$' + text_column)}/>\n"
        f"  <Choices name={quoteattr(from_name)} toName={quoteattr(to_name)} "
        'choice="single" showInline="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        "</View>"
    )


def to_label_studio(
    queue_or_frame: Any,
    data: Any,
    *,
    class_names: Sequence[str],
    text_column: str = "text",
    data_columns: Sequence[str] = (),
    from_name: str = "label",
    to_name: str = "text",
    model_version: str = "enrich",
) -> list[dict[str, Any]]:
    """Build Label Studio tasks for the assets to review, with our label as a pre-annotation.

    Parameters
    ----------
    queue_or_frame
        A :class:`~enrich.curation.review.ReviewQueue`, or a table with ``asset_id`` and optionally
        ``label`` (class id) or ``label_name``, ``confidence`` and ``why`` (e.g. the
        enriched table). Tasks follow its row order; asset ids must be unique.
    data
        Table with ``asset_id`` and ``text_column`` (plus any ``data_columns``) for at
        least every asset to review.
    class_names
        Class names; ``class_names[c]`` names class ``c``.
    text_column
        The data field the labeling config shows (``$text``).
    data_columns
        More columns of ``data`` to copy into each task's ``data`` (e.g. ``"video"``).
        Datetimes are written as ISO 8601 text.
    from_name, to_name
        Names of the ``Choices`` control and the ``Text`` object in the labeling config
        (see :func:`label_studio_config`).
    model_version
        Written on every prediction; Label Studio shows and filters by it.

    Returns
    -------
    list of dict
        One task per asset: ``{"data": {"asset_id", text_column, ...data_columns,
        "review_reason"?}, "predictions": [{"model_version", "score", "result":
        [{"from_name", "to_name", "type": "choices", "value": {"choices": [name]}}]}]}``;
        ``predictions`` is empty for an asset without a label (a null label, ``-1``, or
        ``all_abstain`` true: no LF voted, so there is nothing to pre-annotate and the
        reviewer labels it from scratch). ``score`` is the label's confidence when known.

    Raises
    ------
    InputError
        If a column is missing, an asset repeats, an asset has no data row, or a label is
        not a class.
    """
    names = _class_names(class_names)
    queue = as_polars(getattr(queue_or_frame, "table", queue_or_frame))
    table = as_polars(data)
    require_columns(queue, [("asset_id", "to_label_studio")], what="function")
    if isinstance(data_columns, str):
        raise InputError(f"data_columns must be a list of column names, not {data_columns!r}")
    extra = [c for c in data_columns if c not in ("asset_id", text_column)]
    require_columns(
        table,
        [("asset_id", "to_label_studio"), (text_column, "text_column")]
        + [(c, "data_columns") for c in extra],
        what="argument",
    )
    _no_repeats(queue["asset_id"], "the review queue")
    if queue.schema["asset_id"] != table.schema["asset_id"]:
        raise InputError(
            f"asset_id dtypes differ: {queue.schema['asset_id']} in the queue, "
            f"{table.schema['asset_id']} in data; cast one to the other"
        )
    table = table.filter(pl.col("asset_id").is_in(queue["asset_id"].implode()))
    _no_repeats(table["asset_id"], "data")
    missing = queue.filter(~pl.col("asset_id").is_in(table["asset_id"].implode()))
    if missing.height:
        raise InputError(
            f"data has no row for {missing.height} asset(s) to review, e.g. "
            f"{missing['asset_id'].head(5).to_list()}; pass the data the labels were made from"
        )
    label_names = _queue_label_names(queue, names)
    if "all_abstain" in queue.columns:
        # no LF voted: the label model's output there is only the class prior, not a label
        no_votes = queue["all_abstain"].fill_null(False).to_list()
        label_names = [
            None if empty else name for name, empty in zip(label_names, no_votes, strict=True)
        ]
    confidence = (
        queue["confidence"].cast(pl.Float64).to_list()
        if "confidence" in queue.columns
        else [None] * queue.height
    )
    why = queue["why"].to_list() if "why" in queue.columns else [None] * queue.height
    rows = queue.select("asset_id").join(
        table.select("asset_id", text_column, *extra),
        on="asset_id",
        how="left",
        maintain_order="left",
    )
    tasks: list[dict[str, Any]] = []
    for record, name, score, reason in zip(
        rows.iter_rows(named=True), label_names, confidence, why, strict=True
    ):
        task_data = {key: _json_value(value) for key, value in record.items()}
        if reason is not None:
            task_data["review_reason"] = reason
        predictions = []
        if name is not None:
            prediction: dict[str, Any] = {"model_version": model_version}
            if score is not None and not math.isnan(score):
                prediction["score"] = float(score)
            prediction["result"] = [
                {
                    "from_name": from_name,
                    "to_name": to_name,
                    "type": "choices",
                    "value": {"choices": [name]},
                }
            ]
            predictions.append(prediction)
        tasks.append({"data": task_data, "predictions": predictions})
    logger.debug("built %d Label Studio tasks", len(tasks))
    return tasks


def write_label_studio_tasks(
    tasks: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]
) -> Path:
    """Write tasks as the JSON file Label Studio imports; readers never see half a file.

    The JSON is built in memory first (a value JSON cannot hold raises
    :class:`~enrich.errors.InputError` and writes nothing), then written to a temporary
    file beside ``path`` and renamed over it.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     out = write_label_studio_tasks([{"data": {"asset_id": "a", "text": "hi"}}],
    ...                                    Path(d) / "tasks.json")
    ...     json.loads(out.read_text())[0]["data"]["asset_id"]
    'a'
    """
    if isinstance(tasks, Mapping) or not isinstance(tasks, Sequence):
        raise InputError(f"tasks must be a list of task dicts, got {type(tasks).__name__}")
    try:
        text = json.dumps(list(tasks), ensure_ascii=False, indent=1, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"the tasks cannot be written as JSON ({exc}); nothing was written"
        ) from exc
    return write_atomic(path, lambda partial: partial.write_text(text, encoding="utf-8"))


# -- in ----------------------------------------------------------------------------------
class GoldImport(TableDisplay):
    """Gold labels read from a Label Studio export, as returned by :func:`import_label_studio`.

    Attributes
    ----------
    gold : polars.DataFrame
        The merged gold table (existing gold plus this export), one row per asset, sorted by
        ``asset_id``: ``asset_id``, ``label``, ``label_name``, ``reviewer`` (Label Studio's
        ``completed_by``: the user id, or the email when the export holds user objects),
        ``reviewed_at`` (UTC).
    changes : polars.DataFrame
        One row per asset labeled in the export: the chosen annotation (``asset_id``,
        ``label``, ``label_name``, ``reviewer``, ``reviewed_at``, ``task_id``) and ``status``
        -- ``"new"`` (not in the existing gold), ``"updated"`` (replaced an older gold row),
        ``"unchanged"`` (the same label, reviewer and time were already there) or ``"older"``
        (the existing gold row is newer and was kept).
    disagreements : polars.DataFrame
        Assets whose (non-cancelled) annotations give different labels: ``asset_id``,
        ``label_names``, ``reviewers`` (all annotations, oldest first).
    n_new, n_updated, n_unchanged, n_older : int
        Counts of :attr:`changes` by status.
    n_tasks : int
        Tasks in the export.
    n_skipped : int
        Tasks with no usable annotation (none, or all cancelled/skipped).
    """

    display_max_rows = 30

    def __init__(
        self,
        gold: pl.DataFrame,
        changes: pl.DataFrame,
        disagreements: pl.DataFrame,
        *,
        n_tasks: int,
        n_skipped: int,
    ) -> None:
        self.gold = gold
        self.changes = changes
        self.disagreements = disagreements
        self.n_tasks = n_tasks
        self.n_skipped = n_skipped
        counts = changes["status"].value_counts()
        found = dict(zip(counts["status"].to_list(), counts["count"].to_list(), strict=True))
        self.n_new = int(found.get("new", 0))
        self.n_updated = int(found.get("updated", 0))
        self.n_unchanged = int(found.get("unchanged", 0))
        self.n_older = int(found.get("older", 0))

    def _display_table(self) -> pl.DataFrame:
        return self.changes

    def _display_title(self) -> str:
        return (
            f"Label Studio import: {self.n_tasks:,} tasks, {self.changes.height:,} labeled "
            f"assets, gold now {self.gold.height:,} assets"
        )

    def _display_totals(self) -> Mapping[str, str]:
        return {
            "new": f"{self.n_new:,}",
            "updated": f"{self.n_updated:,}",
            "unchanged": f"{self.n_unchanged:,}",
            "older than gold": f"{self.n_older:,}",
            "skipped tasks": f"{self.n_skipped:,}",
            "disagreements": f"{self.disagreements.height:,}",
        }

    def _display_formats(self) -> Mapping[str, ColumnFormat]:
        return {"label": "int"}


def import_label_studio(
    export: Any,
    *,
    class_names: Sequence[str],
    existing_gold: Any = None,
    known_asset_ids: Any = None,
    from_name: str | None = None,
) -> GoldImport:
    """Read Label Studio's JSON export into a gold table, merged with the gold you have.

    Parameters
    ----------
    export
        The export: a path to the JSON file (``str`` or ``PathLike``) or the parsed list of
        tasks. Each task needs ``data.asset_id`` and ``annotations`` (a list); each
        annotation needs ``result``, ``completed_by`` and ``updated_at`` or ``created_at``.
        Cancelled (skipped) annotations are ignored.
    class_names
        The class set; a chosen label outside it is an error.
    existing_gold
        Optional gold table to merge into (e.g. the previous import's ``.gold``): at least
        ``asset_id``, ``label_name``, ``reviewed_at``.
    known_asset_ids
        Optional ids of the assets that exist (Series, list, or a table with
        ``asset_id``); a task for any other asset is an error.
    from_name
        Name of the ``Choices`` control to read; default: the only ``choices`` control
        found in each annotation.

    Returns
    -------
    GoldImport

    Raises
    ------
    LabelStudioImportError
        (an :class:`~enrich.errors.InputError`) naming every malformed task and what is
        wrong: not an object, missing ``data`` / ``asset_id`` / ``annotations`` /
        ``result`` / ``completed_by`` / timestamp, an unknown asset id, no or several
        choices, a label not in ``class_names``. Nothing is returned then.
    InputError
        If the file cannot be read as JSON, is not a list, or ``existing_gold`` is invalid.

    Notes
    -----
    Which label an asset gets: among its non-cancelled annotations (over all tasks of the
    export), one marked ``ground_truth`` wins; otherwise the latest (``updated_at``, else
    ``created_at``); equal times fall to the higher annotation id. Merging with
    ``existing_gold``, per asset: the newer ``reviewed_at`` wins; an identical row (same
    label, reviewer and time) adds nothing, so re-importing the same export changes
    nothing; an existing row at the same or a later time is kept. Timestamps without a
    timezone are read as UTC.
    """
    names = _class_names(class_names)
    tasks = load_export(export)
    known = known_ids(known_asset_ids)
    problems: list[tuple[str, str]] = []
    annotations: list[Annotation] = []
    n_skipped = 0
    for position, task in enumerate(tasks):
        parsed, task_problems = parse_task(task, position, names, known, from_name)
        problems.extend(task_problems)
        if not task_problems and not parsed:
            n_skipped += 1
        annotations.extend(parsed)
    if problems:
        raise import_error(problems, len(tasks))

    existing = _existing_gold(existing_gold, names)
    chosen, disagreements = _choose(annotations)
    lookup = {name: i for i, name in enumerate(names)}
    imported = _imported_frame(chosen, lookup, existing)
    gold, changes = _merge(existing, imported)
    result = GoldImport(
        gold,
        changes,
        _disagreement_frame(disagreements, imported.schema["asset_id"]),
        n_tasks=len(tasks),
        n_skipped=n_skipped,
    )
    logger.info(
        "Label Studio import: %d new, %d updated, %d unchanged, %d older than gold",
        result.n_new,
        result.n_updated,
        result.n_unchanged,
        result.n_older,
    )
    return result


# -- parsing -----------------------------------------------------------------------------


# -- choosing and merging ----------------------------------------------------------------
def _sort_key(a: Annotation) -> tuple[Any, ...]:
    ann = a.annotation_id
    numeric = isinstance(ann, int) and not isinstance(ann, bool)
    return (a.ground_truth, a.reviewed_at, numeric, ann if numeric else str(ann))


def _choose(
    annotations: list[Annotation],
) -> tuple[list[Annotation], list[tuple[Any, list[Annotation]]]]:
    by_asset: dict[Any, list[Annotation]] = {}
    for a in annotations:
        by_asset.setdefault(a.asset_id, []).append(a)
    chosen = []
    disagreements = []
    for asset_id, group in by_asset.items():
        chosen.append(max(group, key=_sort_key))
        if len({a.label_name for a in group}) > 1:
            ordered = sorted(group, key=lambda a: (a.reviewed_at, str(a.annotation_id)))
            disagreements.append((asset_id, ordered))
    return chosen, disagreements


def _id_series(values: list[Any], dtype: pl.DataType | None) -> pl.Series:
    try:
        series = pl.Series("asset_id", values, strict=True)
    except (TypeError, pl.exceptions.PolarsError) as exc:
        raise InputError(
            f"the export's asset ids mix types ({sorted({type(v).__name__ for v in values})}); "
            "use one type of id for all assets"
        ) from exc
    if dtype is not None and series.len() and series.dtype != dtype:
        same_kind = (series.dtype.is_integer() and dtype.is_integer()) or (
            series.dtype == pl.String and dtype in (pl.String, pl.Categorical)
        )
        if not same_kind:
            raise InputError(
                f"the export's asset ids are {series.dtype} but the existing gold's are {dtype}; "
                "ids are not converted between numbers and text: cast the gold's asset_id"
            )
        try:
            series = series.cast(dtype, strict=True)
        except pl.exceptions.PolarsError as exc:
            raise InputError(
                f"the export's asset ids are {series.dtype} but the existing gold's are "
                f"{dtype} and cannot be converted ({exc})"
            ) from exc
    return series


def _imported_frame(
    chosen: list[Annotation], lookup: Mapping[str, int], existing: pl.DataFrame | None
) -> pl.DataFrame:
    dtype = existing.schema["asset_id"] if existing is not None else None
    ids = _id_series([a.asset_id for a in chosen], dtype)
    if not chosen:  # an export with nothing labeled: keep the gold's id type
        ids = ids.cast(dtype if dtype is not None else pl.String)
    task_ids = [None if a.task_id is None else str(a.task_id) for a in chosen]
    return pl.DataFrame(
        {
            "asset_id": ids,
            "label": [lookup[a.label_name] for a in chosen],
            "label_name": [a.label_name for a in chosen],
            "reviewer": [a.reviewer for a in chosen],
            "reviewed_at": [a.reviewed_at for a in chosen],
            "task_id": task_ids,
        },
        schema={"asset_id": ids.dtype, **GOLD_SCHEMA, "task_id": pl.String},
    )


def _existing_gold(existing: Any, names: tuple[str, ...]) -> pl.DataFrame | None:
    if existing is None:
        return None
    table = as_polars(existing)
    require_columns(
        table,
        [(c, "existing_gold") for c in ("asset_id", "label_name", "reviewed_at")],
        what="argument",
    )
    bad = table.filter(~pl.col("label_name").is_in(list(names)) | pl.col("label_name").is_null())
    if bad.height:
        raise InputError(
            f"existing_gold has label_name {bad['label_name'][0]!r} for asset "
            f"{bad['asset_id'][0]!r}, not a class of {list(names)}; pass the same class_names "
            "as the gold was made with"
        )
    ids = table["asset_id"]
    _no_repeats(ids, "existing_gold")
    lookup = {name: i for i, name in enumerate(names)}
    reviewed_at = table["reviewed_at"]
    if not isinstance(reviewed_at.dtype, pl.Datetime):
        raise InputError(
            f"existing_gold column 'reviewed_at' must be a datetime, got {reviewed_at.dtype}"
        )
    if reviewed_at.dtype.time_zone is None:
        reviewed_at = reviewed_at.dt.replace_time_zone("UTC")
    reviewer = (
        table["reviewer"].cast(pl.String)
        if "reviewer" in table.columns
        else pl.Series([None] * table.height, dtype=pl.String)
    )
    out = pl.DataFrame(
        {
            "asset_id": ids,
            "label": table["label_name"].replace_strict(lookup, return_dtype=pl.Int64),
            "label_name": table["label_name"].cast(pl.String),
            "reviewer": reviewer,
            "reviewed_at": reviewed_at.dt.convert_time_zone("UTC").cast(GOLD_SCHEMA["reviewed_at"]),
        }
    )
    if "label" in table.columns:
        given = table["label"].cast(pl.Int64, strict=False)
        differ = (given != out["label"]).fill_null(True)
        if differ.any():
            i = int(differ.arg_true()[0])
            raise InputError(
                f"existing_gold disagrees with itself for asset {ids[i]!r}: label "
                f"{table['label'][i]!r} but label_name {out['label_name'][i]!r}"
            )
    return out


def _merge(
    existing: pl.DataFrame | None, imported: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    columns = ["asset_id", *GOLD_SCHEMA]
    if existing is None:
        changes = imported.with_columns(pl.lit("new").alias("status"))
        return imported.select(columns).sort("asset_id"), changes
    old = existing.select(
        "asset_id",
        *(pl.col(c).alias(f"_old_{c}") for c in GOLD_SCHEMA),
    )
    joined = imported.join(old, on="asset_id", how="left", maintain_order="left")
    same = (
        (pl.col("label_name") == pl.col("_old_label_name"))
        & pl.col("reviewer").eq_missing(pl.col("_old_reviewer"))
        & (pl.col("reviewed_at") == pl.col("_old_reviewed_at"))
    )
    newer = (pl.col("reviewed_at") > pl.col("_old_reviewed_at")) | pl.col(
        "_old_reviewed_at"
    ).is_null()
    status = (
        pl.when(pl.col("_old_label_name").is_null())
        .then(pl.lit("new"))
        .when(same)
        .then(pl.lit("unchanged"))
        .when(newer)
        .then(pl.lit("updated"))
        .otherwise(pl.lit("older"))
    )
    changes = joined.with_columns(status.alias("status")).select(*imported.columns, "status")
    replace = changes.filter(pl.col("status").is_in(["new", "updated"])).select(columns)
    kept = existing.filter(~pl.col("asset_id").is_in(replace["asset_id"].implode()))
    gold = pl.concat([kept.select(columns), replace], how="vertical").sort("asset_id")
    return gold, changes


def _disagreement_frame(
    disagreements: list[tuple[Any, list[Annotation]]], dtype: pl.DataType
) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "asset_id": [asset for asset, _ in disagreements],
            "label_names": [[a.label_name for a in group] for _, group in disagreements],
            "reviewers": [[a.reviewer for a in group] for _, group in disagreements],
        },
        schema={
            "asset_id": dtype,
            "label_names": pl.List(pl.String),
            "reviewers": pl.List(pl.String),
        },
    )


# -- small helpers -----------------------------------------------------------------------
def _class_names(class_names: Any) -> tuple[str, ...]:
    if isinstance(class_names, str) or not isinstance(class_names, Sequence):
        raise InputError(f"class_names must be a list of class names, got {class_names!r}")
    names = tuple(class_names)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise InputError(f"class names must be non-empty strings, got {list(names)!r}")
    if len(set(names)) != len(names):
        raise InputError(f"class names must be unique, got {list(names)!r}")
    return names


def _no_repeats(ids: pl.Series, what: str) -> None:
    if ids.null_count():
        raise InputError(f"{what} has {ids.null_count()} null asset_id(s); every row needs one")
    repeated = ids.filter(ids.is_duplicated()).unique().sort()
    if repeated.len():
        raise InputError(
            f"{what} lists asset id(s) {repeated.head(5).to_list()} more than once; keep one "
            "row per asset"
        )


def _queue_label_names(queue: pl.DataFrame, names: tuple[str, ...]) -> list[str | None]:
    if "label_name" in queue.columns:
        values = queue["label_name"].cast(pl.String).to_list()
        bad = [v for v in values if v is not None and v not in names]
        if bad:
            raise InputError(
                f"label_name {bad[0]!r} is not a class{did_you_mean(bad[0], names)}; classes "
                f"are {list(names)} "
                f"({len(bad)} such row(s))"
            )
        return values
    if "label" in queue.columns:
        labels = queue["label"]
        if not (labels.dtype.is_integer() or labels.dtype == pl.Null):
            raise InputError(f"column 'label' must hold class ids, got dtype {labels.dtype}")
        out: list[str | None] = []
        for i, v in enumerate(labels.to_list()):
            if v is None or v == -1:
                out.append(None)
            elif 0 <= v < len(names):
                out.append(names[v])
            else:
                raise InputError(
                    f"label {v} of asset {queue['asset_id'][i]!r} is not a class id "
                    f"0..{len(names) - 1} of {list(names)}"
                )
        return out
    return [None] * queue.height


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
