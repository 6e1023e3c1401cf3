"""Saved label models: old files still load, hostile files are refused with a clear error."""

from __future__ import annotations

import json

import numpy as np
import pytest

from enrich.errors import LabelModelFileError
from enrich.models.label_model import LabelModel
from enrich.models.majority_vote import MajorityVote

VOTES = np.array([[0, 0, -1], [1, 1, 1], [0, -1, 0], [1, -1, 1], [0, 0, 0], [-1, 1, 1]] * 5)


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "model.json"
    LabelModel(cardinality=2, random_state=0).fit(VOTES).save(path)
    return path, json.loads(path.read_text())


def test_round_trip_keeps_the_structure(saved, tmp_path):
    path, _ = saved
    model = LabelModel.load(path)
    fitted = LabelModel(cardinality=2, random_state=0).fit(VOTES)
    assert model.structure_ == fitted.structure_
    assert np.allclose(model.predict_proba(VOTES), fitted.predict_proba(VOTES))


def test_format_version_1_files_still_load(saved, tmp_path):
    _, payload = saved
    payload["format_version"] = 1
    del payload["fitted"]["structure"]
    del payload["params"]["structure"]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(payload))
    model = LabelModel.load(old)
    assert model.structure_ == "em"
    assert np.allclose(model.predict_proba(VOTES).sum(axis=1), 1.0)


def _hostile(payload):
    """(name, change) pairs: each change makes the saved payload invalid in one way."""

    def with_param(key, value):
        def change(p):
            p["params"][key] = value

        return change

    def with_fitted(key, value):
        def change(p):
            p["fitted"][key] = value

        return change

    return {
        "huge cardinality": with_param("cardinality", 10**12),
        "cardinality as text": with_param("cardinality", "2"),
        "unknown parameter": with_param("temperature", 3),
        "NaN in log_lr": with_fitted("log_lr", [[[float("nan"), 0.0], [0.0, 0.0]]] * 3),
        "log_lr of the wrong shape": with_fitted("log_lr", [[0.0, 1.0]] * 3),
        "class balance of the wrong length": with_fitted("class_balance", [0.2, 0.3, 0.5]),
        "negative class balance": with_fitted("class_balance", [1.5, -0.5]),
        "n_lfs as a list": with_fitted("n_lfs", [3]),
        "text in coverage": with_fitted("lf_coverage", ["a", "b", "c"]),
        "unknown role": with_fitted("lf_role", ["detector", "oracle", "detector"]),
        "missing fitted key": lambda p: p["fitted"].pop("confusion"),
        "fitted is a list": lambda p: p.__setitem__("fitted", [1, 2]),
        "infinite confusion": with_fitted("confusion", [[[float("inf")] * 3] * 2] * 3),
    }


@pytest.mark.parametrize("case", list(_hostile({})))
def test_hostile_files_are_refused_naming_the_file(saved, tmp_path, case):
    _, payload = saved
    _hostile(payload)[case](payload)
    bad = tmp_path / "hostile.json"
    bad.write_text(json.dumps(payload))
    with pytest.raises(LabelModelFileError, match=r"hostile\.json"):
        LabelModel.load(bad)


@pytest.mark.parametrize(
    "text", ['{"format": "enrich.LabelModel", "format_version": 2, "params": {', "[" * 100_000]
)
def test_truncated_or_absurd_json_is_refused(tmp_path, text):
    bad = tmp_path / "broken.json"
    bad.write_text(text)
    with pytest.raises(LabelModelFileError, match=r"broken\.json"):
        LabelModel.load(bad)


def test_majority_vote_load_validates_too(tmp_path):
    path = tmp_path / "mv.json"
    MajorityVote(cardinality=2).fit(VOTES).save(path)
    payload = json.loads(path.read_text())
    payload["params"]["cardinality"] = 10**12
    path.write_text(json.dumps(payload))
    with pytest.raises(LabelModelFileError, match=r"mv\.json.*cardinality"):
        MajorityVote.load(path)
