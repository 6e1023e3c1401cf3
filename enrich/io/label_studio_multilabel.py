"""Label Studio round trip for a multi-label task: a multiple-choice control, label sets back.

Out: :func:`multilabel_label_studio_config` writes a labeling config whose ``Choices``
control takes several choices (``choice="multiple"``); :func:`to_label_studio_multilabel`
turns the enriched multi-label table (:func:`enrich.multilabel_table`) into tasks with the
predicted label set as a pre-annotation. In: :func:`import_label_studio_multilabel` reads
Label Studio's JSON export into gold label sets: ``asset_id``, one Int8 column per label (1
present, 0 absent) and ``labels`` -- what :class:`enrich.MultiLabelModel` and
:func:`enrich.multilabel_scores` take as gold. Validation is all-or-nothing: any task with
an unknown label or without an asset id makes it raise, naming every bad task.

>>> import polars as pl
>>> table = pl.DataFrame({"asset_id": [7], "labels": [["even", "closed_loop"]],
...                       "p_even": [0.9], "p_closed_loop": [0.7]})
>>> data = pl.DataFrame({"asset_id": [7], "image": ["/img/7.png"]})
>>> tasks = to_label_studio_multilabel(table, data, label_names=["even", "closed_loop"],
...                                    data_columns=["image"])
>>> tasks[0]["predictions"][0]["result"][0]["value"], tasks[0]["predictions"][0]["score"]
({'choices': ['even', 'closed_loop']}, 0.7)
>>> export = [{"id": 1, "data": tasks[0]["data"], "annotations": [{"id": 2, "result": [
...     {"from_name": "labels", "to_name": "text", "type": "choices",
...      "value": {"choices": ["closed_loop"]}}]}]}]
>>> import_label_studio_multilabel(export, label_names=["even", "closed_loop"]).rows()
[(7, 0, 1, ['closed_loop'])]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np
import polars as pl

from enrich._internal.frames import as_polars, require_columns
from enrich.errors import InputError
from enrich.io.label_studio_tasks import import_error, load_export

__all__ = [
    "import_label_studio_multilabel",
    "multilabel_label_studio_config",
    "to_label_studio_multilabel",
]


def _names(label_names: Sequence[str]) -> tuple[str, ...]:
    names = tuple(label_names) if not isinstance(label_names, str) else ()
    if (
        not names
        or not all(isinstance(n, str) and n for n in names)
        or len(set(names)) != len(names)
    ):
        raise InputError(
            f"label_names must be a list of unique non-empty strings, got {label_names!r}"
        )
    return names


def multilabel_label_studio_config(
    label_names: Sequence[str],
    *,
    from_name: str = "labels",
    to_name: str = "text",
    data_field: str = "text",
    object_tag: str = "Text",
) -> str:
    """Return a Label Studio labeling config with one multiple-choice control over the labels.

    ``object_tag`` is the Label Studio object that shows the asset (``"Text"``,
    ``"Image"``...), reading the ``data_field`` of each task.

    >>> print(multilabel_label_studio_config(["cat", "dog"], object_tag="Image",
    ...                                      to_name="image", data_field="image"))
    <View>
      <Image name="image" value="$image"/>
      <Choices name="labels" toName="image" choice="multiple" showInline="true">
        <Choice value="cat"/>
        <Choice value="dog"/>
      </Choices>
    </View>
    """
    names = _names(label_names)
    for what, value in (
        ("from_name", from_name),
        ("to_name", to_name),
        ("data_field", data_field),
        ("object_tag", object_tag),
    ):
        if not isinstance(value, str) or not value:
            raise InputError(f"{what} must be a non-empty string, got {value!r}")
    if not object_tag.isidentifier():
        raise InputError(f"object_tag must be a tag name such as 'Text', got {object_tag!r}")
    choices = "\n".join(f"    <Choice value={quoteattr(name)}/>" for name in names)
    return (
        "<View>\n"
        f"  <{object_tag} name={quoteattr(to_name)} value={quoteattr('$' + data_field)}/>\n"
        f"  <Choices name={quoteattr(from_name)} toName={quoteattr(to_name)} "
        'choice="multiple" showInline="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        "</View>"
    )


def to_label_studio_multilabel(
    table: Any,
    data: Any,
    *,
    label_names: Sequence[str],
    data_columns: Sequence[str] = ("text",),
    from_name: str = "labels",
    to_name: str = "text",
    model_version: str = "enrich",
) -> list[dict[str, Any]]:
    """Build Label Studio tasks with the predicted label set as a pre-annotation.

    Parameters
    ----------
    table
        the assets to review, in order: ``asset_id`` and ``labels`` (List[String], the
        predicted set), optionally ``p_<label>`` columns (the score is the smallest
        confidence over the labels, ``max(p, 1 - p)``), e.g. :func:`enrich.multilabel_table`
        filtered on ``review``.
    data
        table with ``asset_id`` and the ``data_columns`` to copy into each task's ``data``.
    label_names
        the task's labels, in order.
    data_columns, from_name, to_name, model_version
        what each task shows, and the names of the config's control and object
        (:func:`multilabel_label_studio_config`).

    Returns
    -------
    list of dict
        one task per asset: ``{"data": {"asset_id", ...}, "predictions": [{"model_version",
        "score"?, "result": [{"from_name", "to_name", "type": "choices", "value":
        {"choices": [...]}}]}]}``.

    Raises
    ------
    InputError
        A column is missing, an asset repeats or has no data row, or a predicted label is
        not one of ``label_names``.
    """
    names = _names(label_names)
    queue = as_polars(table)
    frame = as_polars(data)
    require_columns(queue, [("asset_id", "to_label_studio_multilabel"), ("labels", "labels")])
    columns = [c for c in data_columns if c != "asset_id"]
    require_columns(frame, [(c, "data_columns") for c in ["asset_id", *columns]])
    if queue["asset_id"].is_duplicated().any():
        raise InputError("table repeats asset ids; give each asset to review once")
    rows = frame.select("asset_id", *columns).unique("asset_id", keep="first")
    joined = queue.join(rows, on="asset_id", how="left", maintain_order="left")
    missing = queue.join(rows, on="asset_id", how="anti")
    if missing.height:
        raise InputError(
            f"{missing.height} asset(s) to review have no row in data, e.g. "
            f"{missing['asset_id'].head(3).to_list()}; pass the data they come from"
        )
    proba_columns = [f"p_{n}" for n in names if f"p_{n}" in queue.columns]
    tasks = []
    for row in joined.iter_rows(named=True):
        chosen = list(row["labels"] or [])
        unknown = [c for c in chosen if c not in names]
        if unknown:
            raise InputError(
                f"asset {row['asset_id']!r} is predicted {unknown}, not labels of the task "
                f"{list(names)}"
            )
        prediction: dict[str, Any] = {
            "model_version": model_version,
            "result": [
                {
                    "from_name": from_name,
                    "to_name": to_name,
                    "type": "choices",
                    "value": {"choices": chosen},
                }
            ],
        }
        if proba_columns:
            p = np.array([row[c] for c in proba_columns], dtype=float)
            prediction["score"] = round(float(np.maximum(p, 1 - p).min()), 6)
        task_data = {"asset_id": row["asset_id"], **{c: _plain(row[c]) for c in columns}}
        tasks.append({"data": task_data, "predictions": [prediction]})
    return tasks


def import_label_studio_multilabel(
    export: Any, *, label_names: Sequence[str], from_name: str = "labels"
) -> pl.DataFrame:
    """Read a Label Studio JSON export of a multi-label project into gold label sets.

    Each task's latest annotation that was not cancelled counts (by ``updated_at``, then
    ``id``); a task without one is left out. Choices of other controls than ``from_name``
    are ignored; an annotation with no choice for ``from_name`` means "none of the labels".

    Parameters
    ----------
    export
        path of the exported JSON file, its text, or the parsed list of tasks.
    label_names
        the task's labels, in order.
    from_name
        name of the multiple-choice control.

    Returns
    -------
    polars.DataFrame
        ``asset_id``, one Int8 column per label (1 present, 0 absent), ``labels``
        (List[String]).

    Raises
    ------
    LabelStudioImportError
        Tasks without ``data.asset_id``, repeated asset ids, or choices that are not labels
        (every bad task is named).
    """
    names = _names(label_names)
    tasks = load_export(export)
    problems: list[tuple[str, str]] = []
    rows: list[dict[str, Any]] = []
    seen: set[Any] = set()
    for position, task in enumerate(tasks):
        where = f"task {task.get('id', position)!r}" if isinstance(task, Mapping) else ""
        where = where or f"task at position {position}"
        if not isinstance(task, Mapping) or not isinstance(task.get("data"), Mapping):
            problems.append((f"task at position {position}", "has no 'data' object"))
            continue
        asset_id = task["data"].get("asset_id")
        if asset_id is None:
            problems.append((where, "has no data.asset_id"))
            continue
        annotations = [
            a
            for a in task.get("annotations") or []
            if isinstance(a, Mapping) and not a.get("was_cancelled")
        ]
        if not annotations:
            continue
        if asset_id in seen:
            problems.append((where, f"repeats asset {asset_id!r} of an earlier task"))
            continue
        seen.add(asset_id)
        latest = max(annotations, key=lambda a: (str(a.get("updated_at") or ""), a.get("id", 0)))
        chosen: list[str] = []
        for result in latest.get("result") or []:
            if isinstance(result, Mapping) and result.get("from_name") == from_name:
                chosen.extend((result.get("value") or {}).get("choices") or [])
        unknown = sorted({c for c in chosen if c not in names}, key=str)
        if unknown:
            problems.append((where, f"chose {unknown}, not labels of the task {list(names)}"))
            continue
        row = {"asset_id": asset_id}
        row.update({n: int(n in chosen) for n in names})
        row["labels"] = [n for n in names if n in chosen]
        rows.append(row)
    if problems:
        raise import_error(problems, len(tasks))
    if not rows:
        schema = {"asset_id": pl.String, **dict.fromkeys(names, pl.Int8)}
        return pl.DataFrame(schema=schema | {"labels": pl.List(pl.String)})
    frame = pl.DataFrame(rows, infer_schema_length=None)
    return frame.with_columns(pl.col(n).cast(pl.Int8) for n in names).with_columns(
        pl.col("labels").cast(pl.List(pl.String))
    )


def _plain(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
