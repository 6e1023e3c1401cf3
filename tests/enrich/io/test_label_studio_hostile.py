"""Hostile Label Studio exports: every one is refused with a clean error, never a raw one."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from enrich.errors import InputError
from enrich.io.label_studio import LabelStudioImportError, import_label_studio

CLASSES = ["HAM", "SPAM"]
HUGE = 10**400  # an int64 cannot hold it
GIANT = 7 * 10**5000  # more digits than Python converts to text by default


def _task(**changes: Any) -> dict[str, Any]:
    annotation = {
        "id": 1,
        "completed_by": 3,
        "was_cancelled": False,
        "created_at": "2026-11-28T10:00:00Z",
        "updated_at": "2026-11-28T10:00:05Z",
        "result": [
            {
                "from_name": "label",
                "to_name": "text",
                "type": "choices",
                "value": {"choices": ["HAM"]},
            }
        ],
    }
    task: dict[str, Any] = {
        "id": 7,
        "data": {"asset_id": "a1", "text": "hi"},
        "annotations": [annotation],
    }
    for path, value in changes.items():
        target: Any = task
        keys = path.split("__")
        for key in keys[:-1]:
            target = target[int(key)] if key.isdigit() else target[key]
        last = keys[-1]
        target[int(last) if last.isdigit() else last] = value
    return task


def _nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def _nested_dict(depth: int) -> Any:
    value: Any = {"id": 1}
    for _ in range(depth):
        value = {"id": value}
    return value


# (name, export as Python objects) -- each holds one hostile task after a good one
OBJECT_CASES = [
    ("400-digit asset id", _task(data__asset_id=HUGE)),
    ("negative 400-digit asset id", _task(data__asset_id=-HUGE)),
    ("400-digit task id", _task(id=HUGE)),
    ("400-digit annotation id", _task(annotations__0__id=HUGE)),
    ("5000-digit asset id", _task(data__asset_id=GIANT)),
    ("5000-digit task id", _task(id=GIANT)),
    ("5000-digit annotation id", _task(annotations__0__id=GIANT)),
    ("5000-digit reviewer", _task(annotations__0__completed_by=GIANT)),
    ("5000-digit reviewer in an object", _task(annotations__0__completed_by={"id": GIANT})),
    ("latest timestamp east of UTC", _task(annotations__0__updated_at="0001-01-01T00:00:00+14:00")),
    ("latest timestamp west of UTC", _task(annotations__0__updated_at="9999-12-31T23:59:59-14:00")),
    ("deeply nested asset id", _task(data__asset_id=_nested(50_000))),
    ("deeply nested task id", _task(id=_nested(50_000))),
    ("deeply nested reviewer", _task(annotations__0__completed_by=_nested_dict(50_000))),
    ("deeply nested choice", _task(annotations__0__result__0__value__choices=[_nested(50_000)])),
    ("lone surrogate asset id", _task(data__asset_id="a\ud800b")),
    ("lone surrogate reviewer", _task(annotations__0__completed_by="x\udc80")),
    ("100,000-character timestamp", _task(annotations__0__updated_at="2026-" + "1" * 100_000)),
    ("deeply nested annotation list", _task(annotations=[_nested(50_000, {})])),
]

# (name, raw bytes of the export file)
FILE_CASES = [
    ("deeply nested JSON", b"[" * 200_000 + b"]" * 200_000),
    ("5000-digit integer in JSON", b'[{"id": 1, "data": {"asset_id": ' + b"9" * 5000 + b"}}]"),
    ("latin-1 bytes", '[{"id": 1, "data": {"asset_id": "caf\u00e9"}}]'.encode("latin-1")),
    ("UTF-16 file", json.dumps([_task()]).encode("utf-16")),
    ("lone surrogate escape", b'[{"id": 1, "data": {"asset_id": "\\ud800"}, "annotations": []}]'),
]


@pytest.mark.parametrize(("name", "task"), OBJECT_CASES, ids=[c[0] for c in OBJECT_CASES])
def test_hostile_task_is_refused_naming_it(name: str, task: dict[str, Any]) -> None:
    good = _task(id=1, data__asset_id="good")
    with pytest.raises(LabelStudioImportError) as caught:
        import_label_studio([good, copy.copy(task)], class_names=CLASSES)
    problems = caught.value.problems
    assert len(problems) == 1, problems
    ref, _ = problems[0]
    assert ref.startswith("task"), ref
    assert "task" in str(caught.value)
    assert len(str(caught.value)) < 2_000  # values are quoted short, not in full
    assert "nothing was imported" in str(caught.value)


def test_a_good_export_next_to_the_hostile_cases_still_imports() -> None:
    result = import_label_studio(
        [_task(id=2**63 - 1, data__asset_id=2**63 - 1)], class_names=CLASSES
    )
    assert result.gold.select("asset_id", "label_name").rows() == [(2**63 - 1, "HAM")]


@pytest.mark.parametrize(("name", "raw"), FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_hostile_export_file_is_refused_naming_it(name: str, raw: bytes, tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_bytes(raw)
    with pytest.raises(InputError) as caught:
        import_label_studio(path, class_names=CLASSES)
    message = str(caught.value)
    assert "task" in message or "export.json" in message
    assert len(message) < 2_000
