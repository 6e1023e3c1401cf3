import re

import polars as pl
import pytest

from labeling_functions import (
    LFDefinitionError,
    expression_lf,
    keyword_lf,
    regex_lf,
)

TEXTS = pl.DataFrame(
    {
        "text": [
            "Check out my channel!",
            "checkers is a game",
            "CHECK OUT this café ☕",
            "",
            None,
            "Subscribe pls 🙏",
        ]
    }
)


def test_keyword_matches_whole_words_ignoring_case():
    lf = keyword_lf("check_out", ["check out", "café"], label="SPAM")
    assert lf.fires(TEXTS).tolist() == [True, False, True, False, False, False]


def test_keyword_substring_mode_matches_inside_words():
    lf = keyword_lf("check", "check", label=1, whole_word=False)
    assert lf.fires(TEXTS).tolist() == [True, True, True, False, False, False]


def test_keyword_case_sensitive():
    lf = keyword_lf("upper", ["CHECK"], label=1, ignore_case=False)
    assert lf.fires(TEXTS).tolist() == [False, False, True, False, False, False]


def test_keyword_with_non_ascii_and_emoji():
    lf = keyword_lf("pray", ["pls 🙏"], label=1, whole_word=False)
    assert lf.fires(TEXTS).tolist() == [False, False, False, False, False, True]


def test_keyword_requires_keywords():
    with pytest.raises(LFDefinitionError, match="at least one non-empty keyword"):
        keyword_lf("empty", [], label=1)


def test_regex_equals_python_re_including_lookaround_fallback():
    texts = TEXTS.get_column("text").to_list()
    for pattern in [r"\bout\b", r"check(?!ers)", r"(\w)\1"]:  # the last two need Python's re
        lf = regex_lf("rx", pattern, label=1, ignore_case=True)
        expected = [t is not None and re.search(pattern, t, re.I) is not None for t in texts]
        assert lf.fires(TEXTS).tolist() == expected, pattern


def test_invalid_regex_is_refused_at_definition():
    with pytest.raises(LFDefinitionError, match=r"not a valid regular expression"):
        regex_lf("bad", "(unclosed", label=1)


def test_text_lf_on_a_numeric_column_names_the_column_and_dtype():
    lf = keyword_lf("kw", ["1"], label=1, column="n")
    with pytest.raises(LFDefinitionError, match=r"column 'n' as text, but its dtype is Int64"):
        lf.fires(pl.DataFrame({"n": [1, 2]}))


def test_expression_lf_thresholds_and_nulls():
    frame = pl.DataFrame({"n_links": [0, 3, None, 5]})
    lf = expression_lf("many_links", pl.col("n_links") >= 3, label="SPAM")
    assert lf.columns == ("n_links",)
    assert lf.fires(frame).tolist() == [False, True, False, True]


def test_expression_lf_must_be_boolean():
    lf = expression_lf("not_bool", pl.col("n") + 1, label=1)
    with pytest.raises(LFDefinitionError, match="one boolean per row"):
        lf.fires(pl.DataFrame({"n": [1]}))


def test_expression_lf_requires_an_expression():
    with pytest.raises(LFDefinitionError, match="polars expression"):
        expression_lf("x", "n > 1", label=1)


def test_versions_follow_the_definition():
    a = keyword_lf("a", ["spam"], label=1)
    assert a.version == keyword_lf("renamed", ["spam"], label=1).version
    assert a.version != keyword_lf("a", ["spam", "ham"], label=1).version
    e1 = expression_lf("e", pl.col("n") > 1, label=1)
    assert e1.version == expression_lf("e", pl.col("n") > 1, label=1).version
    assert e1.version != expression_lf("e", pl.col("n") > 2, label=1).version


def test_lfs_are_frozen():
    lf = keyword_lf("a", ["spam"], label=1)
    with pytest.raises(AttributeError):
        lf.label = 0
