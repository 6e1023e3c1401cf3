"""Reading Label Studio exports: every task and annotation checked, hostile values refused.

Used by :func:`enrich.io.label_studio.import_label_studio`; each problem names its task.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import polars as pl

from enrich._internal.classes import did_you_mean
from enrich._internal.frames import as_polars, require_columns
from enrich.errors import InputError, LabelStudioImportError

__all__ = [
    "INT64",
    "MAX_LISTED_PROBLEMS",
    "MAX_QUOTED",
    "OUT_OF_RANGE",
    "Annotation",
    "id_problem",
    "import_error",
    "known_ids",
    "load_export",
    "parse_annotation",
    "parse_task",
    "parse_task_fields",
    "parse_timestamp",
    "quote",
    "reviewer_name",
    "task_ref",
]

MAX_LISTED_PROBLEMS = 20


INT64 = (-(2**63), 2**63 - 1)  # Label Studio's ids are 64-bit database integers


MAX_QUOTED = 60  # characters of a user value quoted in a problem


@dataclass(frozen=True)
class Annotation:
    """One reviewer's answer for one asset, as read from an export."""

    asset_id: Any
    label_name: str
    reviewer: str
    reviewed_at: dt.datetime
    ground_truth: bool
    annotation_id: Any
    task_id: Any


def load_export(export: Any) -> list[Any]:
    """Return the tasks of an export: a path to its JSON file, JSON text, or parsed tasks."""
    if isinstance(export, str | os.PathLike):
        path = Path(export)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read the Label Studio export {str(path)!r}: {exc}") from exc
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{str(path)!r} is not UTF-8 text (byte {exc.start} is {raw[exc.start]:#04x}); "
                "Label Studio writes its JSON export in UTF-8: export it again rather than "
                "re-saving it in another encoding"
            ) from exc
        try:
            export = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{str(path)!r} is not valid JSON ({exc}); export the project from Label "
                "Studio in the 'JSON' format"
            ) from exc
        except RecursionError as exc:
            raise InputError(
                f"{str(path)!r} nests JSON arrays or objects too deeply to read; a Label "
                "Studio export nests a few levels: export the project again"
            ) from exc
        except ValueError as exc:  # e.g. an integer with thousands of digits
            raise InputError(
                f"{str(path)!r} cannot be read as a Label Studio export ({exc}); export the "
                "project again"
            ) from exc
    if (
        isinstance(export, Mapping)
        or not isinstance(export, Sequence)
        or isinstance(export, str | bytes)
    ):
        raise InputError(
            f"a Label Studio JSON export is a list of tasks; got {type(export).__name__}. "
            "Export the project in the 'JSON' format (not JSON_MIN or CSV)"
        )
    return list(export)


def quote(value: Any, limit: int = MAX_QUOTED) -> str:
    """``repr`` of a user value, cut to ``limit`` characters.

    Never raises: deep nesting, integers with more digits than Python prints, odd objects.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        digits = int(value.bit_length() * 0.30103) + 1
        return f"<{'-' if value < 0 else ''}integer of about {digits} digits>"
    try:
        text = repr(value)
    except (RecursionError, ValueError, TypeError, OverflowError):
        return f"<{type(value).__name__} that cannot be printed>"
    except Exception:  # a hostile __repr__ of an object passed in directly
        return f"<{type(value).__name__}>"
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def id_problem(value: Any, what: str) -> str | None:
    """Why ``value`` cannot be an id (text or a 64-bit integer), or None."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not INT64[0] <= value <= INT64[1]:
            return (
                f"has {what} {quote(value)}, outside the 64-bit integer range Label Studio ids use"
            )
        return None
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return (
                f"has {what} {quote(value)}, which is not valid Unicode text (it holds a lone "
                "surrogate)"
            )
        return None
    if isinstance(value, list | dict | tuple | set | Mapping):
        return f"has {what} {quote(value)}; ids must be text or integers"
    return None


def task_ref(task: Any, position: int) -> str:
    """Return how to name a task in a problem: its id, else its position."""
    if isinstance(task, Mapping) and task.get("id") is not None:
        task_id = task["id"]
        if id_problem(task_id, "id") is None:
            return f"task {quote(task_id)}"
        return f"task #{position} (id {quote(task_id)})"
    return f"task #{position} (no id)"


def parse_task(
    task: Any,
    position: int,
    names: tuple[str, ...],
    known: frozenset[Any] | None,
    from_name: str | None,
) -> tuple[list[Annotation], list[tuple[str, str]]]:
    """Return a task's annotations, or the problem that makes it unusable."""
    ref = task_ref(task, position)
    try:
        return parse_task_fields(task, ref, names, known, from_name)
    except (RecursionError, ValueError, TypeError, OverflowError, UnicodeError) as exc:
        # a value no check above foresaw: still a clean problem naming the task
        return [], [(ref, f"cannot be read ({type(exc).__name__}: {quote(str(exc), 120)})")]


def parse_task_fields(
    task: Any,
    ref: str,
    names: tuple[str, ...],
    known: frozenset[Any] | None,
    from_name: str | None,
) -> tuple[list[Annotation], list[tuple[str, str]]]:
    """Check a task's ``data`` and asset id; return its annotations or a problem."""
    if not isinstance(task, Mapping):
        return [], [(ref, f"is a {type(task).__name__}, not a task object")]
    problems: list[str] = []
    if task.get("id") is not None and (bad_id := id_problem(task["id"], "id")):
        problems.append(bad_id)
    data = task.get("data")
    asset_id = None
    if not isinstance(data, Mapping):
        problems.append("has no 'data' object")
    elif "asset_id" not in data:
        problems.append(
            f"has no 'asset_id' in its data (fields: {sorted(data)}); export tasks made by "
            "to_label_studio"
        )
    else:
        asset_id = data["asset_id"]
        if isinstance(asset_id, bool) or not isinstance(asset_id, str | int) or asset_id == "":
            problems.append(
                f"has asset_id {quote(asset_id)}; ids must be non-empty text or integers"
            )
            asset_id = None
        elif bad_id := id_problem(asset_id, "asset_id"):
            problems.append(bad_id)
            asset_id = None
        elif known is not None and asset_id not in known:
            problems.append(f"has asset_id {quote(asset_id)}, which is not a known asset")
    raw = task.get("annotations")
    if "annotations" not in task:
        problems.append(
            "has no 'annotations' field; export in Label Studio's 'JSON' format (JSON_MIN "
            "and CSV drop it)"
        )
        raw = []
    elif not isinstance(raw, list):
        problems.append(f"has 'annotations' of type {type(raw).__name__}, expected a list")
        raw = []
    parsed: list[Annotation] = []
    for index, annotation in enumerate(raw):
        where = f"annotation {index}"
        if not isinstance(annotation, Mapping):
            problems.append(f"{where} is a {type(annotation).__name__}, not an object")
            continue
        if annotation.get("id") is not None:
            if bad_id := id_problem(annotation["id"], "id"):
                problems.append(f"{where} {bad_id}")
                continue
            where = f"annotation {quote(annotation['id'])}"
        if annotation.get("was_cancelled") is True:
            continue
        found = parse_annotation(annotation, where, names, from_name)
        if isinstance(found, str):
            problems.append(found)
            continue
        label_name, reviewer, reviewed_at = found
        if asset_id is not None:
            parsed.append(
                Annotation(
                    asset_id=asset_id,
                    label_name=label_name,
                    reviewer=reviewer,
                    reviewed_at=reviewed_at,
                    ground_truth=annotation.get("ground_truth") is True,
                    annotation_id=annotation.get("id"),
                    task_id=task.get("id"),
                )
            )
    return (parsed if not problems else []), [(ref, p) for p in problems]


def parse_annotation(
    annotation: Mapping[str, Any], where: str, names: tuple[str, ...], from_name: str | None
) -> tuple[str, str, dt.datetime] | str:
    """Return (label name, reviewer, time) or a problem description."""
    result = annotation.get("result")
    if "result" not in annotation:
        return f"{where} has no 'result'"
    if not isinstance(result, list):
        return f"{where} has 'result' of type {type(result).__name__}, expected a list"
    choices = [
        item
        for item in result
        if isinstance(item, Mapping)
        and item.get("type") == "choices"
        and (from_name is None or item.get("from_name") == from_name)
    ]
    control = f"'choices' result from {from_name!r}" if from_name else "'choices' result"
    if not choices:
        return f"{where} has no {control}; label the task or skip it in Label Studio"
    controls = sorted({str(item.get("from_name")) for item in choices})
    if len(choices) > 1:
        hint = "; pass from_name= to pick one" if len(controls) > 1 and not from_name else ""
        return f"{where} has {len(choices)} {control}s (controls {controls}){hint}"
    value = choices[0].get("value")
    picked = value.get("choices") if isinstance(value, Mapping) else None
    if not isinstance(picked, list) or len(picked) != 1 or not isinstance(picked[0], str):
        return (
            f"{where} has choices {quote(picked)}; exactly one class must be chosen (use "
            'choice="single" in the labeling config)'
        )
    label_name = picked[0]
    if label_name not in names:
        return (
            f"{where} chose label {quote(label_name)}, which is not a class; classes are "
            f"{list(names)}{did_you_mean(label_name, names)}"
        )
    if "completed_by" not in annotation or annotation["completed_by"] is None:
        return f"{where} has no 'completed_by' (the reviewer)"
    reviewer = reviewer_name(annotation["completed_by"])
    if reviewer is None:
        return (
            f"{where} has 'completed_by' {quote(annotation['completed_by'])}, which names no "
            "reviewer (expected a user id, or an object with 'email', 'username' or 'id')"
        )
    stamp = annotation.get("updated_at") or annotation.get("created_at")
    if stamp is None:
        return f"{where} has neither 'updated_at' nor 'created_at'"
    reviewed_at = parse_timestamp(stamp)
    if reviewed_at is None:
        return f"{where} has timestamp {quote(stamp)}, which is not ISO 8601"
    if reviewed_at is OUT_OF_RANGE:
        return f"{where} has timestamp {quote(stamp)}, which is outside the years 1-9999 in UTC"
    return label_name, reviewer, reviewed_at


def reviewer_name(completed_by: Any) -> str | None:
    """The reviewer as text, or None when ``completed_by`` cannot name one.

    None for a nested or huge value, or text that is not valid Unicode.
    """
    if isinstance(completed_by, Mapping):
        for key in ("email", "username", "id"):
            if completed_by.get(key) not in (None, ""):
                return reviewer_name(completed_by[key])
        try:
            text = json.dumps(completed_by, sort_keys=True, default=str)
        except (RecursionError, ValueError, TypeError):
            return None
        return text if len(text) <= 1_000 and id_problem(text, "") is None else None
    if isinstance(completed_by, list | tuple | set) or id_problem(completed_by, "") is not None:
        return None
    try:
        text = str(completed_by)
    except (RecursionError, ValueError, TypeError):
        return None
    return text if len(text) <= 1_000 and id_problem(text, "") is None else None


OUT_OF_RANGE: Final = dt.datetime.min.replace(tzinfo=dt.UTC)  # a marker, never returned as a time


def parse_timestamp(value: Any) -> dt.datetime | None:
    """The time in UTC; None if not ISO 8601, ``OUT_OF_RANGE`` if it has no UTC time."""
    if not isinstance(value, str) or len(value) > 100:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    try:
        return stamp.astimezone(dt.UTC)
    except OverflowError:  # e.g. year 1 east of UTC or year 9999 west of it
        return OUT_OF_RANGE


def import_error(problems: list[tuple[str, str]], n_tasks: int) -> LabelStudioImportError:
    """Return the error listing the problems found (the first few), naming each task."""
    tasks = {ref for ref, _ in problems}
    lines = [f"  {ref} {problem}" for ref, problem in problems[:MAX_LISTED_PROBLEMS]]
    more = len(problems) - MAX_LISTED_PROBLEMS
    if more > 0:
        lines.append(f"  ... and {more} more problem(s)")
    return LabelStudioImportError(
        f"the Label Studio export has {len(problems)} problem(s) in {len(tasks)} of "
        f"{n_tasks} task(s); nothing was imported. Fix these and import again:\n"
        + "\n".join(lines),
        problems,
    )


def known_ids(known: Any) -> frozenset[Any] | None:
    """Return the asset ids an import may name as a set, or None to accept any."""
    if known is None:
        return None
    if isinstance(known, pl.DataFrame) or hasattr(known, "columns"):
        table = as_polars(known)
        require_columns(table, [("asset_id", "known_asset_ids")], what="argument")
        return frozenset(table["asset_id"].to_list())
    if isinstance(known, pl.Series):
        return frozenset(known.to_list())
    if isinstance(known, str):
        raise InputError(f"known_asset_ids must be a collection of ids, not the string {known!r}")
    return frozenset(getattr(known, "asset_ids", known))
