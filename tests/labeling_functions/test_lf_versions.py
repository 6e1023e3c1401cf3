"""An LF's version covers everything it depends on (issue 13, item 1)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from labeling_functions import ABSTAIN, labeling_function
from labeling_functions.core import is_stable_version, spacy_model_identity
from labeling_functions.spacy_lfs import DEFAULT_MODEL, spacy_entity_lf

LF_FILE = """
import re
import numpy as np
from labeling_functions import ABSTAIN, labeling_function

NEG_WORDS = {neg_words!r}
SCALE = {{"factor": {factor}}}


def _normalise(text):
    return re.sub(r"\\s+", " ", text.lower())


def _is_negative(text):
    return any(word in _normalise(text) for word in NEG_WORDS)


@labeling_function(label=0)
def negative(x):
    return 0 if _is_negative(x.text) and np.log(SCALE["factor"]) >= 0 else ABSTAIN
"""


def _load(tmp_path: Path, name: str, **values: object):
    file = tmp_path / f"{name}.py"
    file.write_text(LF_FILE.format(**values))
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.negative


def test_module_constant_read_by_a_helper_changes_the_version(tmp_path):
    before = _load(tmp_path, "lfs_a", neg_words=["bad", "awful"], factor=2)
    same = _load(tmp_path, "lfs_b", neg_words=["bad", "awful"], factor=2)
    after = _load(tmp_path, "lfs_c", neg_words=["bad", "awful", "slow"], factor=2)
    nested = _load(tmp_path, "lfs_d", neg_words=["bad", "awful"], factor=3)
    assert before.version == same.version and before.version_stable
    assert after.version != before.version
    assert nested.version != before.version


def test_mutating_a_constant_in_place_changes_the_version_of_the_same_object(tmp_path):
    lf = _load(tmp_path, "lfs_m", neg_words=["bad"], factor=2)
    first = lf.version
    lf.func.__globals__["NEG_WORDS"].append("slow")
    assert lf.version != first


def test_closure_defaults_and_resources_are_covered():
    def make(threshold, default=3):
        @labeling_function(name="long", label=0)
        def long_text(x, extra=default, words=()):
            return 0 if len(x.text) > threshold + extra + len(words) else ABSTAIN

        return long_text

    assert make(1).version == make(1).version
    assert make(1).version != make(2).version
    assert make(1).version != make(1, default=4).version

    def with_words(x, words):
        return 0 if set(words) & set(x.text.split()) else ABSTAIN

    one = labeling_function(with_words, name="w", resources={"words": {"bad", "awful"}})
    two = labeling_function(with_words, name="w", resources={"words": {"bad", "slow"}})
    assert one.version != two.version and one.version_stable and two.version_stable


def test_what_cannot_be_hashed_makes_the_version_unstable_with_a_note():
    def uses(x, lock=None):
        return ABSTAIN

    lf = labeling_function(uses, name="locked", resources={"lock": threading.Lock()})
    assert not lf.version_stable
    assert not is_stable_version(lf.version)
    assert lf.version_notes and "lock" in lf.version_notes[0]
    again = labeling_function(uses, name="locked", resources={"lock": threading.Lock()})
    assert again.version != lf.version  # a new LF object never passes as unchanged


def test_library_functions_and_arrays_are_stable():
    table = np.arange(5.0)
    lf = labeling_function(
        lambda x: 0 if np.log1p(table).sum() > len(x.text) else ABSTAIN, name="np_lf"
    )
    assert lf.version_stable, lf.version_notes
    first = lf.version
    table[0] = 10.0
    assert lf.version != first


def test_spacy_lf_version_covers_the_pipeline_name_and_version():
    identity = spacy_model_identity(DEFAULT_MODEL)
    assert identity[0] == "en" and identity[2].count(".") >= 1
    lf = spacy_entity_lf("person", entity_types=["PERSON"], label=0)
    assert lf.version_stable
    assert spacy_model_identity("no_such_pipeline_xyz") == ("missing", "no_such_pipeline_xyz")


def test_version_is_the_same_in_a_fresh_process(tmp_path):
    file = tmp_path / "lfs_fresh.py"
    file.write_text(LF_FILE.format(neg_words=["bad", "awful"], factor=2))
    script = textwrap.dedent(f"""
        import importlib.util
        spec = importlib.util.spec_from_file_location("lfs_fresh", {str(file)!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(module.negative.version)
    """)
    versions = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        versions.add(out.stdout.strip())
    assert len(versions) == 1


@pytest.mark.parametrize("words", [frozenset({"a", "b", "c", "d"}), {"x": {"a", "b"}}])
def test_set_order_does_not_change_the_version(words):
    def f(x, words):
        return ABSTAIN

    one = labeling_function(f, name="s", resources={"words": words})
    assert one.version == labeling_function(f, name="s", resources={"words": words}).version
