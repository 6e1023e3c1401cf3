"""Label Studio round trip: tasks and config out, JSON exports (real and malformed) back in."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from enrich.analysis.gold import benchmark, gold_vector
from enrich.curation.review import review_queue
from enrich.errors import InputError, MissingColumnError
from enrich.io.label_studio import (
    GoldImport,
    LabelStudioImportError,
    import_label_studio,
    label_studio_config,
    to_label_studio,
    write_label_studio_tasks,
)

REPO = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("ENRICH_SHARED_DATA", REPO.parent / "shared" / "data"))
CLASSES = ["HAM", "SPAM"]

# Exported verbatim (Export -> JSON, all tasks) from Label Studio 1.23.2 after importing three
# tasks made by to_label_studio: task 1 was annotated HAM then SPAM by user 1, task 2 was
# skipped (a cancelled annotation), task 3 was annotated SPAM.
REAL_EXPORT_JSON = """
[
 {
  "id": 1,
  "annotations": [
   {
    "id": 1,
    "completed_by": 1,
    "result": [
     {
      "from_name": "label",
      "to_name": "text",
      "type": "choices",
      "value": {
       "choices": [
        "HAM"
       ]
      }
     }
    ],
    "was_cancelled": false,
    "ground_truth": false,
    "created_at": "2026-11-28T02:19:49.125365Z",
    "updated_at": "2026-11-28T02:19:49.125409Z",
    "draft_created_at": null,
    "lead_time": null,
    "prediction": {
     "id": 1,
     "result": [
      {
       "from_name": "label",
       "to_name": "text",
       "type": "choices",
       "value": {
        "choices": [
         "SPAM"
        ]
       }
      }
     ],
     "model_version": "m1",
     "created_ago": "0\\u00a0minutes",
     "score": 0.6,
     "cluster": null,
     "neighbors": null,
     "mislabeling": 0.0,
     "created_at": "2026-11-28T02:19:48.909272Z",
     "updated_at": "2026-11-28T02:19:48.909302Z",
     "model": null,
     "model_run": null,
     "task": 1,
     "project": 1
    },
    "result_count": 1,
    "unique_id": "22449101-81c6-4158-8a8b-02ade0adcb99",
    "import_id": null,
    "last_action": null,
    "bulk_created": false,
    "task": 1,
    "project": 1,
    "updated_by": 1,
    "parent_prediction": null,
    "parent_annotation": null,
    "last_created_by": null
   },
   {
    "id": 2,
    "completed_by": 1,
    "result": [
     {
      "from_name": "label",
      "to_name": "text",
      "type": "choices",
      "value": {
       "choices": [
        "SPAM"
       ]
      }
     }
    ],
    "was_cancelled": false,
    "ground_truth": false,
    "created_at": "2026-11-28T02:19:57.135897Z",
    "updated_at": "2026-11-28T02:19:57.135938Z",
    "draft_created_at": null,
    "lead_time": null,
    "prediction": {
     "id": 1,
     "result": [
      {
       "from_name": "label",
       "to_name": "text",
       "type": "choices",
       "value": {
        "choices": [
         "SPAM"
        ]
       }
      }
     ],
     "model_version": "m1",
     "created_ago": "0\\u00a0minutes",
     "score": 0.6,
     "cluster": null,
     "neighbors": null,
     "mislabeling": 0.0,
     "created_at": "2026-11-28T02:19:48.909272Z",
     "updated_at": "2026-11-28T02:19:48.909302Z",
     "model": null,
     "model_run": null,
     "task": 1,
     "project": 1
    },
    "result_count": 1,
    "unique_id": "5ecfb7b1-484b-4b8a-9ff6-557c88bf95b6",
    "import_id": null,
    "last_action": null,
    "bulk_created": false,
    "task": 1,
    "project": 1,
    "updated_by": 1,
    "parent_prediction": null,
    "parent_annotation": null,
    "last_created_by": null
   }
  ],
  "drafts": [],
  "predictions": [
   1
  ],
  "data": {
   "asset_id": "a1",
   "text": "check my channel"
  },
  "meta": {},
  "created_at": "2026-11-28T02:19:48.901550Z",
  "updated_at": "2026-11-28T02:19:57.274516Z",
  "allow_skip": true,
  "inner_id": 1,
  "total_annotations": 2,
  "cancelled_annotations": 0,
  "total_predictions": 1,
  "comment_count": 0,
  "unresolved_comment_count": 0,
  "last_comment_updated_at": null,
  "project": 1,
  "updated_by": 1,
  "comment_authors": []
 },
 {
  "id": 2,
  "annotations": [
   {
    "id": 3,
    "completed_by": 1,
    "result": [],
    "was_cancelled": true,
    "ground_truth": false,
    "created_at": "2026-11-28T02:19:57.383611Z",
    "updated_at": "2026-11-28T02:19:57.383645Z",
    "draft_created_at": null,
    "lead_time": null,
    "prediction": {
     "id": 2,
     "result": [
      {
       "from_name": "label",
       "to_name": "text",
       "type": "choices",
       "value": {
        "choices": [
         "HAM"
        ]
       }
      }
     ],
     "model_version": "m1",
     "created_ago": "0\\u00a0minutes",
     "score": 0.55,
     "cluster": null,
     "neighbors": null,
     "mislabeling": 0.0,
     "created_at": "2026-11-28T02:19:48.909324Z",
     "updated_at": "2026-11-28T02:19:48.909331Z",
     "model": null,
     "model_run": null,
     "task": 2,
     "project": 1
    },
    "result_count": 0,
    "unique_id": "84d81bfb-8212-471a-b349-0000eca37f15",
    "import_id": null,
    "last_action": null,
    "bulk_created": false,
    "task": 2,
    "project": 1,
    "updated_by": 1,
    "parent_prediction": null,
    "parent_annotation": null,
    "last_created_by": null
   }
  ],
  "drafts": [],
  "predictions": [
   2
  ],
  "data": {
   "asset_id": "a2",
   "text": "nice song"
  },
  "meta": {},
  "created_at": "2026-11-28T02:19:48.901619Z",
  "updated_at": "2026-11-28T02:19:57.530549Z",
  "allow_skip": true,
  "inner_id": 2,
  "total_annotations": 0,
  "cancelled_annotations": 1,
  "total_predictions": 1,
  "comment_count": 0,
  "unresolved_comment_count": 0,
  "last_comment_updated_at": null,
  "project": 1,
  "updated_by": 1,
  "comment_authors": []
 },
 {
  "id": 3,
  "annotations": [
   {
    "id": 4,
    "completed_by": 1,
    "result": [
     {
      "from_name": "label",
      "to_name": "text",
      "type": "choices",
      "value": {
       "choices": [
        "SPAM"
       ]
      }
     }
    ],
    "was_cancelled": false,
    "ground_truth": false,
    "created_at": "2026-11-28T02:19:57.639489Z",
    "updated_at": "2026-11-28T02:19:57.639524Z",
    "draft_created_at": null,
    "lead_time": null,
    "prediction": {},
    "result_count": 1,
    "unique_id": "db0d8b57-8fcc-4fb6-a7cd-0c199e95f924",
    "import_id": null,
    "last_action": null,
    "bulk_created": false,
    "task": 3,
    "project": 1,
    "updated_by": 1,
    "parent_prediction": null,
    "parent_annotation": null,
    "last_created_by": null
   }
  ],
  "drafts": [],
  "predictions": [],
  "data": {
   "asset_id": "a3",
   "text": "hello"
  },
  "meta": {},
  "created_at": "2026-11-28T02:19:48.901652Z",
  "updated_at": "2026-11-28T02:19:57.794553Z",
  "allow_skip": true,
  "inner_id": 3,
  "total_annotations": 1,
  "cancelled_annotations": 0,
  "total_predictions": 0,
  "comment_count": 0,
  "unresolved_comment_count": 0,
  "last_comment_updated_at": null,
  "project": 1,
  "updated_by": 1,
  "comment_authors": []
 }
]
"""


def real_export() -> list[dict]:
    return json.loads(REAL_EXPORT_JSON)


def ls_task(task_id, asset_id, *annotations, data=None):
    """A task as Label Studio's JSON export writes it (the fields the importer reads)."""
    return {
        "id": task_id,
        "data": {"asset_id": asset_id, "text": "some text"} if data is None else data,
        "annotations": list(annotations),
        "predictions": [],
        "created_at": "2026-11-28T10:00:00.000000Z",
        "updated_at": "2026-11-28T10:00:00.000000Z",
        "project": 1,
    }


def ls_annotation(annotation_id, label, *, by=1, at="2026-11-28T10:05:00.000000Z", **extra):
    annotation = {
        "id": annotation_id,
        "completed_by": by,
        "result": [
            {
                "id": "r1",
                "from_name": "label",
                "to_name": "text",
                "type": "choices",
                "value": {"choices": [label]},
                "origin": "manual",
            }
        ],
        "was_cancelled": False,
        "ground_truth": False,
        "created_at": at,
        "updated_at": at,
        "lead_time": 3.2,
        "task": annotation_id,
        "project": 1,
    }
    annotation.update(extra)
    return annotation


# -- labeling config -------------------------------------------------------------------------
def test_config_is_valid_xml_naming_the_classes_and_controls():
    root = ET.fromstring(label_studio_config(CLASSES, from_name="sentiment", to_name="doc"))
    text = root.find("Text")
    choices = root.find("Choices")
    assert text.attrib == {"name": "doc", "value": "$text"}
    assert choices.attrib["name"] == "sentiment" and choices.attrib["toName"] == "doc"
    assert choices.attrib["choice"] == "single"
    assert [c.attrib["value"] for c in choices.findall("Choice")] == CLASSES


def test_config_escapes_class_names():
    root = ET.fromstring(label_studio_config(['say "hi"', "R&D <x>"]))
    assert [c.attrib["value"] for c in root.iter("Choice")] == ['say "hi"', "R&D <x>"]


# -- tasks out -------------------------------------------------------------------------------
def queue_and_data():
    enriched = pl.DataFrame(
        {
            "asset_id": ["a1", "a2", "a3"],
            "label": [1, 0, 0],
            "label_name": ["SPAM", "HAM", "HAM"],
            "confidence": [0.55, 0.62, 0.99],
            "conflict": [False, True, False],
            "all_abstain": [False, False, False],
        }
    )
    data = pl.DataFrame(
        {
            "asset_id": ["a3", "a2", "a1"],
            "text": ["great song", "nice", "check my channel"],
            "video": ["Psy", "Eminem", "Psy"],
            "published_at": [None, None, dt.datetime(2014, 1, 19)],
        }
    )
    return review_queue(enriched), data


def test_tasks_carry_data_our_label_and_its_score():
    queue, data = queue_and_data()
    tasks = to_label_studio(
        queue,
        data,
        class_names=CLASSES,
        data_columns=["video", "published_at"],
        model_version="lm-7",
    )
    # Queue order: a2 (low confidence and LF conflict) before a1 (low confidence only).
    assert [t["data"]["asset_id"] for t in tasks] == queue.asset_ids.to_list() == ["a2", "a1"]
    first = tasks[1]
    assert first["data"] == {
        "asset_id": "a1",
        "text": "check my channel",
        "video": "Psy",
        "published_at": "2014-01-19T00:00:00",
        "review_reason": "confidence 0.55 < 0.7",
    }
    assert first["predictions"] == [
        {
            "model_version": "lm-7",
            "score": 0.55,
            "result": [
                {
                    "from_name": "label",
                    "to_name": "text",
                    "type": "choices",
                    "value": {"choices": ["SPAM"]},
                }
            ],
        }
    ]
    json.dumps(tasks, allow_nan=False)  # plain JSON


def test_each_task_holds_its_own_asset_data_on_large_shuffled_inputs():
    rng = np.random.default_rng(1)
    n = 20_000
    data = pl.DataFrame(
        {"asset_id": [f"a{i}" for i in range(n)], "text": [f"text {i}" for i in range(n)]}
    )
    picked = rng.choice(n, size=3_000, replace=False)
    queue = pl.DataFrame(
        {
            "asset_id": [f"a{i}" for i in picked],
            "label": (picked % 2).astype(np.int64),
            "confidence": picked / n,
        }
    )
    tasks = to_label_studio(
        queue, data.sample(fraction=1.0, shuffle=True, seed=2), class_names=CLASSES
    )
    for i, task in zip(picked.tolist(), tasks, strict=True):
        assert task["data"] == {"asset_id": f"a{i}", "text": f"text {i}"}
        assert task["predictions"][0]["result"][0]["value"]["choices"] == [CLASSES[i % 2]]
        assert task["predictions"][0]["score"] == i / n


def test_assets_without_a_label_get_no_prediction():
    frame = pl.DataFrame(
        {"asset_id": [1, 2], "label": [None, 1]}, schema_overrides={"label": pl.Int64}
    )
    data = pl.DataFrame({"asset_id": [2, 1], "body": ["x", "y"]})
    tasks = to_label_studio(frame, data, class_names=CLASSES, text_column="body")
    assert tasks[0] == {"data": {"asset_id": 1, "body": "y"}, "predictions": []}
    assert "score" not in tasks[1]["predictions"][0]


@pytest.mark.parametrize(
    ("frame", "data", "error", "match"),
    [
        ({"asset_id": ["a", "zz"]}, None, InputError, r"no row for 1 asset\(s\).*'zz'"),
        ({"asset_id": ["a", "a"]}, None, InputError, r"\['a'\] more than once"),
        ({"asset_id": ["a"], "label": [2]}, None, InputError, "label 2 of asset 'a'"),
        ({"asset_id": ["a"], "label_name": ["EGGS"]}, None, InputError, "'EGGS' is not a class"),
        ({"asset_id": ["a"]}, {"asset_id": ["a"], "body": ["x"]}, MissingColumnError, "'text'"),
        ({"asset_id": [1]}, None, InputError, "dtypes differ"),
    ],
)
def test_bad_task_inputs_are_refused(frame, data, error, match):
    data = data or {"asset_id": ["a", "b"], "text": ["x", "y"]}
    with pytest.raises(error, match=match):
        to_label_studio(pl.DataFrame(frame), pl.DataFrame(data), class_names=CLASSES)


def test_write_tasks_is_atomic_and_refuses_values_json_cannot_hold(tmp_path):
    queue, data = queue_and_data()
    path = write_label_studio_tasks(
        to_label_studio(queue, data, class_names=CLASSES), tmp_path / "t.json"
    )
    before = path.read_text()
    assert json.loads(before)[0]["data"]["asset_id"] == "a2"
    with pytest.raises(InputError, match="nothing was written"):
        write_label_studio_tasks([{"data": {"x": object()}}], path)
    with pytest.raises(InputError, match="nothing was written"):
        write_label_studio_tasks([{"data": {"x": float("nan")}}], path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]  # no partial file left


# -- real export in --------------------------------------------------------------------------
def test_real_export_becomes_gold():
    result = import_label_studio(real_export(), class_names=CLASSES)
    assert isinstance(result, GoldImport)
    gold = result.gold
    assert gold.columns == ["asset_id", "label", "label_name", "reviewer", "reviewed_at"]
    assert gold.schema["reviewed_at"] == pl.Datetime("us", "UTC")
    # a1: HAM at 02:19:49, then SPAM at 02:19:57 -> the later one. a2 was skipped.
    assert gold.select("asset_id", "label", "label_name", "reviewer").rows() == [
        ("a1", 1, "SPAM", "1"),
        ("a3", 1, "SPAM", "1"),
    ]
    assert str(gold["reviewed_at"][0]) == "2026-11-28 02:19:57.135938+00:00"
    assert (result.n_tasks, result.n_skipped, result.n_new) == (3, 1, 2)
    assert result.disagreements.rows() == [("a1", ["HAM", "SPAM"], ["1", "1"])]
    assert result.changes["task_id"].to_list() == ["1", "3"]


def test_reimporting_the_same_export_adds_nothing(tmp_path):
    path = tmp_path / "export.json"
    path.write_text(REAL_EXPORT_JSON)
    first = import_label_studio(path, class_names=CLASSES)
    again = import_label_studio(str(path), class_names=CLASSES, existing_gold=first.gold)
    assert (again.n_new, again.n_updated, again.n_unchanged) == (0, 0, 2)
    assert again.gold.equals(first.gold)


def test_a_newer_annotation_replaces_older_gold_and_an_older_one_does_not():
    first = import_label_studio(real_export(), class_names=CLASSES)
    export = [
        ls_task(10, "a1", ls_annotation(20, "HAM", by=7, at="2026-12-01T08:00:00Z")),
        ls_task(11, "a3", ls_annotation(21, "HAM", by=7, at="2026-01-01T08:00:00Z")),
        ls_task(12, "new-asset", ls_annotation(22, "HAM", by=7)),
    ]
    result = import_label_studio(export, class_names=CLASSES, existing_gold=first.gold)
    assert dict(result.changes.select("asset_id", "status").rows()) == {
        "a1": "updated",
        "a3": "older",
        "new-asset": "new",
    }
    assert result.gold.select("asset_id", "label_name", "reviewer").rows() == [
        ("a1", "HAM", "7"),
        ("a3", "SPAM", "1"),
        ("new-asset", "HAM", "7"),
    ]
    assert (result.n_new, result.n_updated, result.n_older) == (1, 1, 1)


def test_ground_truth_annotation_wins_over_a_later_one():
    export = [
        ls_task(
            1,
            "x",
            ls_annotation(1, "SPAM", at="2026-11-28T10:00:00Z", ground_truth=True),
            ls_annotation(2, "HAM", by=2, at="2026-11-28T11:00:00Z"),
        )
    ]
    result = import_label_studio(export, class_names=CLASSES)
    assert result.gold["label_name"].to_list() == ["SPAM"]
    assert result.disagreements["asset_id"].to_list() == ["x"]


def test_an_export_with_nothing_labeled_changes_nothing():
    first = import_label_studio(real_export(), class_names=CLASSES)
    for export in (
        [],
        [ls_task(1, "a1")],
        [ls_task(2, "a2", dict(ls_annotation(1, "HAM"), was_cancelled=True))],
    ):
        result = import_label_studio(export, class_names=CLASSES, existing_gold=first.gold)
        assert result.gold.equals(first.gold) and result.changes.height == 0
    assert import_label_studio([], class_names=CLASSES).gold.schema["asset_id"] == pl.String


def test_same_asset_in_two_tasks_is_one_gold_row():
    export = [
        ls_task(1, "x", ls_annotation(1, "SPAM", at="2026-11-28T10:00:00Z")),
        ls_task(2, "x", ls_annotation(2, "SPAM", by=2, at="2026-11-28T09:00:00+01:00")),
    ]
    result = import_label_studio(export, class_names=CLASSES)
    assert result.gold.height == 1 and result.gold["reviewer"].item() == "1"  # 10:00Z > 08:00Z
    assert result.disagreements.height == 0


def test_reviewer_object_and_naive_timestamps():
    annotation = ls_annotation(1, "HAM", at="2026-11-28T10:00:00")
    annotation["completed_by"] = {"id": 4, "email": "ana@example.com", "first_name": "Ana"}
    result = import_label_studio([ls_task(1, 5, annotation)], class_names=CLASSES)
    row = result.gold.row(0, named=True)
    assert row["asset_id"] == 5 and row["reviewer"] == "ana@example.com"
    assert str(row["reviewed_at"]) == "2026-11-28 10:00:00+00:00"


def test_from_name_picks_one_control_of_several():
    annotation = ls_annotation(1, "HAM")
    annotation["result"].append(
        {
            "from_name": "topic",
            "to_name": "text",
            "type": "choices",
            "value": {"choices": ["music"]},
        }
    )
    with pytest.raises(LabelStudioImportError, match="pass from_name="):
        import_label_studio([ls_task(1, "x", annotation)], class_names=CLASSES)
    result = import_label_studio(
        [ls_task(1, "x", annotation)], class_names=CLASSES, from_name="label"
    )
    assert result.gold["label_name"].to_list() == ["HAM"]


def test_known_asset_ids_from_a_table_or_list():
    export = [ls_task(1, "a", ls_annotation(1, "HAM"))]
    known = pl.DataFrame({"asset_id": ["a", "b"]})
    assert import_label_studio(export, class_names=CLASSES, known_asset_ids=known).n_new == 1
    with pytest.raises(
        LabelStudioImportError, match="task 1 has asset_id 'a', which is not a known"
    ):
        import_label_studio(export, class_names=CLASSES, known_asset_ids=["b"])


# -- malformed exports: clear errors, nothing imported ---------------------------------------
def malformed_cases():
    good = ls_annotation(1, "HAM")
    no_result = {k: v for k, v in good.items() if k != "result"}
    no_reviewer = {k: v for k, v in good.items() if k != "completed_by"}
    no_time = {k: v for k, v in good.items() if k not in ("created_at", "updated_at")}
    two_choices = copy.deepcopy(good)
    two_choices["result"][0]["value"]["choices"] = ["HAM", "SPAM"]
    empty_result = dict(good, result=[])
    return [
        ("not an object", ["oops"], "task #0 (no id) is a str, not a task object"),
        ("no data", [{"id": 5, "annotations": [good]}], "task 5 has no 'data' object"),
        ("no asset id", [ls_task(6, None, good, data={"text": "x"})], "task 6 has no 'asset_id'"),
        ("bad asset id", [ls_task(6, None, good, data={"asset_id": 1.5})], "asset_id 1.5"),
        ("no annotations", [{"id": 7, "data": {"asset_id": "a"}}], "task 7 has no 'annotations'"),
        ("annotations not a list", [ls_task(8, "a") | {"annotations": {}}], "expected a list"),
        ("no result", [ls_task(9, "a", no_result)], "task 9 annotation 1 has no 'result'"),
        ("no reviewer", [ls_task(10, "a", no_reviewer)], "has no 'completed_by'"),
        ("no time", [ls_task(11, "a", no_time)], "neither 'updated_at' nor 'created_at'"),
        ("bad time", [ls_task(12, "a", dict(good, updated_at="yesterday"))], "'yesterday'"),
        ("two choices", [ls_task(13, "a", two_choices)], "exactly one class must be chosen"),
        ("no choices", [ls_task(14, "a", empty_result)], "has no 'choices' result"),
        (
            "wrong label",
            [ls_task(15, "a", ls_annotation(1, "Spam"))],
            "task 15 annotation 1 chose label 'Spam', which is not a class; classes are "
            "['HAM', 'SPAM']",
        ),
    ]


@pytest.mark.parametrize(("case", "export", "message"), malformed_cases(), ids=lambda v: None)
def test_malformed_tasks_are_named(case, export, message):
    with pytest.raises(LabelStudioImportError) as info:
        import_label_studio(export, class_names=CLASSES)
    assert message in str(info.value), case
    assert "nothing was imported" in str(info.value)


def test_one_bad_task_among_good_ones_imports_nothing_and_all_problems_are_listed():
    first = import_label_studio(real_export(), class_names=CLASSES)
    gold_before = first.gold.clone()
    export = [
        *real_export(),
        ls_task(40, "a9", ls_annotation(1, "EGGS")),
        ls_task(41, "a10", ls_annotation(2, "HAM")),
        ls_task(42, None, ls_annotation(3, "HAM"), data={"text": "no id"}),
    ]
    with pytest.raises(LabelStudioImportError) as info:
        import_label_studio(export, class_names=CLASSES, existing_gold=first.gold)
    error = info.value
    assert isinstance(error, InputError)
    assert [ref for ref, _ in error.problems] == ["task 40", "task 42"]
    assert "2 problem(s) in 2 of 6 task(s)" in str(error)
    assert first.gold.equals(gold_before)


def test_long_problem_lists_are_cut():
    export = [ls_task(i, f"a{i}", ls_annotation(i, "nope")) for i in range(30)]
    with pytest.raises(LabelStudioImportError, match=r"\.\.\. and 10 more problem\(s\)") as info:
        import_label_studio(export, class_names=CLASSES)
    assert len(info.value.problems) == 30


@pytest.mark.parametrize(
    ("export", "match"),
    [
        ({"tasks": []}, "a list of tasks; got dict"),
        ("/no/such/export.json", "cannot read the Label Studio export"),
    ],
)
def test_not_an_export_is_refused(export, match):
    with pytest.raises(InputError, match=match):
        import_label_studio(export, class_names=CLASSES)


def test_invalid_json_file_is_refused(tmp_path):
    path = tmp_path / "export.json"
    path.write_text('[{"id": 1, ')
    with pytest.raises(InputError, match="is not valid JSON"):
        import_label_studio(path, class_names=CLASSES)


def test_mixed_id_types_and_bad_existing_gold_are_refused():
    mixed = [ls_task(1, "a", ls_annotation(1, "HAM")), ls_task(2, 7, ls_annotation(2, "HAM"))]
    with pytest.raises(InputError, match="mix types"):
        import_label_studio(mixed, class_names=CLASSES)
    export = [ls_task(1, "a", ls_annotation(1, "HAM"))]
    with pytest.raises(MissingColumnError, match="reviewed_at"):
        import_label_studio(
            export,
            class_names=CLASSES,
            existing_gold=pl.DataFrame({"asset_id": ["a"], "label_name": ["HAM"]}),
        )
    stale = import_label_studio(export, class_names=CLASSES).gold
    lower = [ls_task(1, "a", ls_annotation(1, "ham"))]
    with pytest.raises(InputError, match="'HAM' for asset 'a', not a class"):
        import_label_studio(lower, class_names=["ham", "spam"], existing_gold=stale)
    with pytest.raises(InputError, match="existing gold's are String; ids are not converted"):
        import_label_studio(
            [ls_task(2, 7, ls_annotation(2, "HAM"))], class_names=CLASSES, existing_gold=stale
        )


def test_renders_the_changes():
    text = str(import_label_studio(real_export(), class_names=CLASSES))
    assert text.startswith("Label Studio import: 3 tasks, 2 labeled assets, gold now 2 assets")
    assert "skipped tasks: 1" in text and "disagreements: 1" in text


# -- the loop: queue -> tasks -> reviewed export -> gold -> label model input ----------------
def test_review_loop_on_wrench_youtube_votes(tmp_path):
    path = SHARED / "wrench" / "youtube" / "train.json"
    if not path.exists():
        pytest.skip(f"shared data not found at {path}")
    records = json.loads(path.read_text())
    ids = list(records)
    L = np.array([r["weak_labels"] for r in records.values()])
    truth = np.array([r["label"] for r in records.values()])
    counts = np.stack([(c == L).sum(axis=1) for c in range(2)], axis=1).astype(float)
    proba = np.where(counts.sum(1, keepdims=True) > 0, counts, 1.0)
    proba /= proba.sum(axis=1, keepdims=True)
    label = proba.argmax(axis=1)
    voted = L != -1
    enriched = pl.DataFrame(
        {
            "asset_id": ids,
            "label": label,
            "label_name": [CLASSES[c] for c in label],
            "confidence": proba.max(axis=1),
            "conflict": ((label[:, None] != L) & voted).any(axis=1),
            "all_abstain": ~voted.any(axis=1),
        }
    )
    data = pl.DataFrame({"asset_id": ids, "text": [r["data"]["text"] for r in records.values()]})
    queue = review_queue(enriched, batch_size=40)
    tasks_path = write_label_studio_tasks(
        to_label_studio(queue, data, class_names=CLASSES), tmp_path / "tasks.json"
    )
    tasks = json.loads(tasks_path.read_text())
    # The reviewer answers with the published gold label, as a Label Studio export holds it.
    position = {asset: i for i, asset in enumerate(ids)}
    export = [
        ls_task(
            n + 1,
            task["data"]["asset_id"],
            ls_annotation(n + 1, CLASSES[truth[position[task["data"]["asset_id"]]]]),
            data=task["data"],
        )
        for n, task in enumerate(tasks)
    ]
    imported = import_label_studio(export, class_names=CLASSES, known_asset_ids=ids)
    assert imported.n_new == 40
    y = gold_vector(imported.gold, ids, CLASSES)
    assert (y != -1).sum() == 40
    assert np.array_equal(y[y != -1], truth[y != -1])
    queued = np.isin(np.array(ids), queue.asset_ids.to_list())
    # The queue found the doubtful assets: the labels are worse there than overall.
    on_queue = benchmark(np.where(queued, truth, -1), labels=label, class_names=CLASSES)
    overall = benchmark(truth, labels=label, class_names=CLASSES)
    assert on_queue.accuracy < overall.accuracy
    again = import_label_studio(export, class_names=CLASSES, existing_gold=imported.gold)
    assert again.n_unchanged == 40 and again.gold.equals(imported.gold)
