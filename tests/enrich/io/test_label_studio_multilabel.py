"""Label Studio round trip of a multi-label task: multiple choices out, label sets back."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from enrich.errors import InputError, LabelStudioImportError
from enrich.io.label_studio_multilabel import (
    import_label_studio_multilabel,
    multilabel_label_studio_config,
    to_label_studio_multilabel,
)

LABELS = ["promotion", "link", "music"]


def _annotation(choices, *, updated="2026-12-01T10:00:00Z", cancelled=False, id=1):
    return {
        "id": id,
        "was_cancelled": cancelled,
        "updated_at": updated,
        "result": [
            {"from_name": "labels", "to_name": "text", "type": "choices",
             "value": {"choices": choices}},
            {"from_name": "other", "to_name": "text", "type": "choices",
             "value": {"choices": ["ignored"]}},
        ],
    }  # fmt: skip


def test_round_trip_through_an_export_file(tmp_path) -> None:
    table = pl.DataFrame(
        {
            "asset_id": ["a", "b"],
            "p_promotion": [0.9, 0.2],
            "p_link": [0.6, 0.1],
            "p_music": [0.1, 0.95],
            "labels": [["promotion", "link"], ["music"]],
        }
    )
    data = pl.DataFrame({"asset_id": ["b", "a"], "text": ["nice song", "buy http://x"]})
    tasks = to_label_studio_multilabel(table, data, label_names=LABELS)
    assert [t["data"] for t in tasks] == [
        {"asset_id": "a", "text": "buy http://x"},
        {"asset_id": "b", "text": "nice song"},
    ]
    assert tasks[0]["predictions"][0]["result"][0]["value"] == {"choices": ["promotion", "link"]}
    assert tasks[0]["predictions"][0]["score"] == pytest.approx(0.6)
    # the reviewer removes "link" from a and adds "promotion" to b; a later fix wins
    export = [
        {"id": 1, "data": tasks[0]["data"], "annotations": [_annotation(["promotion"])]},
        {
            "id": 2,
            "data": tasks[1]["data"],
            "annotations": [
                _annotation(["music"], id=3),
                _annotation(["music", "promotion"], updated="2026-12-02T00:00:00Z", id=4),
                _annotation([], updated="2026-12-03T00:00:00Z", cancelled=True, id=5),
            ],
        },
        {"id": 3, "data": {"asset_id": "c", "text": "x"}, "annotations": []},
    ]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export), encoding="utf-8")
    gold = import_label_studio_multilabel(path, label_names=LABELS)
    assert gold.columns == ["asset_id", *LABELS, "labels"]
    assert gold.rows() == [
        ("a", 1, 0, 0, ["promotion"]),
        ("b", 1, 0, 1, ["promotion", "music"]),
    ]
    assert np.asarray(gold.select(LABELS)).tolist() == [[1, 0, 0], [1, 0, 1]]


def test_bad_exports_name_every_bad_task() -> None:
    export = [
        {"id": 1, "data": {"asset_id": "a"}, "annotations": [_annotation(["spam"])]},
        {"id": 2, "data": {"text": "no id"}, "annotations": [_annotation([])]},
        {"id": 3, "data": {"asset_id": "b"}, "annotations": [_annotation(["music"])]},
    ]
    with pytest.raises(LabelStudioImportError, match=r"2 of 3 task") as info:
        import_label_studio_multilabel(export, label_names=LABELS)
    assert [ref for ref, _ in info.value.problems] == ["task 1", "task 2"]
    assert "['spam']" in info.value.problems[0][1]
    empty = import_label_studio_multilabel([], label_names=LABELS)
    assert empty.height == 0 and empty.columns == ["asset_id", *LABELS, "labels"]


def test_export_errors_and_config() -> None:
    data = pl.DataFrame({"asset_id": ["a"], "text": ["x"]})
    with pytest.raises(InputError, match="not labels of the task"):
        to_label_studio_multilabel(
            pl.DataFrame({"asset_id": ["a"], "labels": [["spam"]]}), data, label_names=LABELS
        )
    with pytest.raises(InputError, match="no row in data"):
        to_label_studio_multilabel(
            pl.DataFrame({"asset_id": ["z"], "labels": [[]]}), data, label_names=LABELS
        )
    config = multilabel_label_studio_config(LABELS)
    assert 'choice="multiple"' in config and '<Choice value="music"/>' in config
    with pytest.raises(InputError, match="unique"):
        multilabel_label_studio_config(["a", "a"])
