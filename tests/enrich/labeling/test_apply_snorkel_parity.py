"""enrich.apply gives the same votes as Snorkel 0.10's PandasLFApplier on the real YouTube comments.

Equivalent LFs are built both ways: keyword and regex LFs against Snorkel LFs that call Python
``re.search`` with the same pattern, row-wise functions wrapped by both ``@labeling_function``
decorators, and Snorkel LFs handed straight to ``enrich.apply``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
from snorkel.labeling import LabelingFunction as SnorkelLF
from snorkel.labeling import PandasLFApplier
from snorkel.labeling import labeling_function as snorkel_labeling_function

from enrich.labeling.apply import apply
from labeling_functions.builders import KeywordLF, RegexLF, keyword_lf, regex_lf
from labeling_functions.core import ABSTAIN, labeling_function

REPO = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("ENRICH_SHARED_DATA", REPO.parent / "shared" / "data"))
CLASSES = ["HAM", "SPAM"]
HAM, SPAM = 0, 1
LOOK_BEHIND = r"(?<=check )(?:out|this)"  # polars' engine refuses it: Python `re` fallback


@pytest.fixture(scope="module")
def comments() -> pl.DataFrame:
    paths = sorted((SHARED / "uci_youtube_spam").glob("Youtube0*.csv"))
    frame = pl.concat([pl.read_csv(p, columns=["CONTENT"]) for p in paths])
    return frame.rename({"CONTENT": "text"})


@pytest.fixture(scope="module")
def comments_pandas(comments: pl.DataFrame) -> pd.DataFrame:
    return comments.to_pandas()


def _search(x: Any, compiled: re.Pattern[str], label: int) -> int:
    return label if compiled.search(x.text) is not None else ABSTAIN


def snorkel_twin(lf: KeywordLF | RegexLF) -> SnorkelLF:
    compiled = re.compile(lf.pattern, re.IGNORECASE if lf.ignore_case else 0)
    resources = {"compiled": compiled, "label": CLASSES.index(lf.label)}
    return SnorkelLF(name=lf.name, f=_search, resources=resources)


def pattern_lfs() -> list[KeywordLF | RegexLF]:
    """Every matching path of the builders: regex, Aho-Corasick, case-(in)sensitive, fallback."""
    return [
        keyword_lf("check_out", ["check out", "checkout", "check my"], label="SPAM"),
        keyword_lf("subscribe", ["subscribe", "sub4sub"], label="SPAM"),
        keyword_lf("song", ["song", "music", "love"], label="HAM"),
        keyword_lf("shout", ["PLEASE", "FREE", "CHECK"], label="SPAM", ignore_case=False),
        keyword_lf("site", ["youtube.com", "facebook", ".com/"], label="SPAM", whole_word=False),
        keyword_lf("views", ["views", "Views"], label="SPAM", whole_word=False, ignore_case=False),
        keyword_lf("accents", ["ñ", "é", "♥"], label="HAM", whole_word=False),
        regex_lf("link", r"https?://|www\.", label="SPAM"),
        regex_lf("digits", r"\b\d{4,}\b", label="SPAM"),
        regex_lf("laugh", r"\b(?:ha){2,}\b|\blol\b", label="HAM", ignore_case=True),
        regex_lf("look_behind", LOOK_BEHIND, label="SPAM", ignore_case=True),
    ]


def short_comment(x: Any) -> int:
    return HAM if len(x.text) < 30 else ABSTAIN


def exclamations(x: Any) -> int:
    return SPAM if x.text.count("!") >= 3 else ABSTAIN


def mostly_upper(x: Any) -> int:
    letters = [c for c in x.text if c.isalpha()]
    return (
        SPAM
        if len(letters) >= 10 and sum(c.isupper() for c in letters) > 0.6 * len(letters)
        else ABSTAIN
    )


def asks(x: Any) -> int:
    return HAM if x.text.rstrip().endswith("?") else ABSTAIN


ROW_FUNCTIONS = {short_comment: "HAM", exclamations: "SPAM", mostly_upper: "SPAM", asks: "HAM"}


def snorkel_votes(lfs: list[Any], frame: pd.DataFrame) -> np.ndarray:
    return PandasLFApplier(lfs).apply(frame, progress_bar=False)


def assert_same_votes(ours: np.ndarray, theirs: np.ndarray, names: list[str]) -> None:
    assert ours.shape == theirs.shape
    differ = sorted({names[j] for j in np.nonzero(ours != theirs)[1]})
    assert not differ, f"enrich and Snorkel disagree for LFs {differ}"


def test_the_look_behind_rule_takes_the_python_re_fallback() -> None:
    with pytest.raises(pl.exceptions.ComputeError):
        pl.Series(["check out"]).str.contains(LOOK_BEHIND)


def test_keyword_and_regex_lfs_vote_like_snorkel_re_search(
    comments: pl.DataFrame, comments_pandas: pd.DataFrame
) -> None:
    lfs = pattern_lfs()
    ours = apply(lfs, comments, classes=CLASSES, progress=False).votes
    theirs = snorkel_votes([snorkel_twin(lf) for lf in lfs], comments_pandas)
    assert_same_votes(ours, theirs, [lf.name for lf in lfs])
    fired = (ours != ABSTAIN).sum(axis=0)
    assert (fired > 0).all(), dict(zip([lf.name for lf in lfs], fired.tolist(), strict=True))


def test_row_wise_lfs_vote_like_snorkel(
    comments: pl.DataFrame, comments_pandas: pd.DataFrame
) -> None:
    ours_lfs = [labeling_function(label=label)(f) for f, label in ROW_FUNCTIONS.items()]
    theirs_lfs = [snorkel_labeling_function(name=f.__name__)(f) for f in ROW_FUNCTIONS]
    ours = apply(ours_lfs, comments, classes=CLASSES, progress=False).votes
    theirs = snorkel_votes(theirs_lfs, comments_pandas)
    assert_same_votes(ours, theirs, [lf.name for lf in ours_lfs])
    assert ((ours != ABSTAIN).sum(axis=0) > 0).all()


def test_snorkel_lfs_passed_to_enrich_vote_like_pandas_lf_applier(
    comments: pl.DataFrame, comments_pandas: pd.DataFrame
) -> None:
    snorkel_lfs = [snorkel_twin(lf) for lf in pattern_lfs()[:4]]
    snorkel_lfs += [snorkel_labeling_function(name=f.__name__)(f) for f in ROW_FUNCTIONS]
    names = [lf.name for lf in snorkel_lfs]
    vote_matrix = apply(snorkel_lfs, comments, classes=CLASSES, progress=False)
    assert vote_matrix.lf_names == tuple(names)
    assert_same_votes(vote_matrix.votes, snorkel_votes(snorkel_lfs, comments_pandas), names)
