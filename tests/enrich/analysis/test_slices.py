"""slice_report(): intervals by hand, slice kinds, the under-performing rule, real YouTube data."""

from __future__ import annotations

import math

import pandas as pd
import polars as pl
import pytest

from enrich.analysis.slices import slice_report, wilson_interval
from enrich.datasets import load_youtube_spam
from enrich.errors import InputError, MissingColumnError


def frame(groups: dict[str, tuple[int, int]]) -> pl.DataFrame:
    """One row per asset: ``group`` and ``correct``, from {group: (n_right, n_wrong)}."""
    rows = []
    for name, (right, wrong) in groups.items():
        rows += [(name, True)] * right + [(name, False)] * wrong
    return pl.DataFrame(rows, schema={"group": pl.String, "correct": pl.Boolean}, orient="row")


# -- Wilson score interval -----------------------------------------------------------------
def test_wilson_interval_by_hand():
    # p = 0.8, n = 10, z = 1.959964: centre (0.8 + z^2/20) / (1 + z^2/10) = 0.71674,
    # half-width z / (1 + z^2/10) * sqrt(0.016 + z^2/400) = 0.22658.
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.49016, abs=1e-5)
    assert high == pytest.approx(0.94332, abs=1e-5)


def test_wilson_interval_at_the_edges_stays_in_unit_range():
    low, high = wilson_interval(0, 10)
    z2 = 1.959964**2
    assert low == 0.0
    assert high == pytest.approx(z2 / (10 + z2), abs=1e-6)  # closed form when p = 0
    assert wilson_interval(10, 10)[1] == 1.0
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_wider_confidence_gives_a_wider_interval():
    narrow = wilson_interval(30, 50, confidence=0.8)
    wide = wilson_interval(30, 50, confidence=0.99)
    assert wide[0] < narrow[0] < 0.6 < narrow[1] < wide[1]


# -- slices and the under-performing rule ----------------------------------------------------
def test_column_slices_metrics_intervals_and_ranking():
    data = frame({"a": (95, 5), "b": (30, 30), "c": (45, 15), "d": (3, 7)})
    report = slice_report(data, correct="correct", slices=["group"], min_size=30)
    overall = (95 + 30 + 45 + 3) / 230
    assert report.overall["n"] == 230
    assert report.overall["metric"] == pytest.approx(overall)
    rows = {r["slice"]: r for r in report.table.iter_rows(named=True)}
    assert rows["group=a"]["metric"] == pytest.approx(0.95)
    assert (rows["group=b"]["ci_low"], rows["group=b"]["ci_high"]) == pytest.approx(
        wilson_interval(30, 60)
    )
    assert rows["group=b"]["delta"] == pytest.approx(0.5 - overall)
    # b's upper bound (0.625) is below the overall 0.752: under-performing. c (0.75, interval
    # 0.63-0.84) straddles the overall: ok. d has 10 rows < 30: too small, whatever its score.
    assert rows["group=b"]["status"] == "under-performing"
    assert rows["group=c"]["status"] == "ok"
    assert rows["group=a"]["status"] == "ok"
    assert rows["group=d"]["status"] == "too small to judge"
    assert report.underperforming.select("rank", "slice").rows() == [(1, "group=b")]
    assert report.too_small["slice"].to_list() == ["group=d"]
    assert report.table["slice"].to_list() == ["group=b", "group=c", "group=a", "group=d"]


def test_ranking_puts_the_clearest_shortfall_first():
    data = frame({"ok": (900, 100), "bad_small": (20, 20), "bad_big": (200, 200), "worse": (5, 45)})
    report = slice_report(data, correct="correct", slices=["group"], min_size=30)
    # All three are under-performing; margin = overall - ci_high, largest first.
    assert report.underperforming["slice"].to_list() == [
        "group=worse",
        "group=bad_big",
        "group=bad_small",
    ]
    overall = report.overall["metric"]
    margins = [overall - h for h in report.underperforming["ci_high"]]
    assert margins == sorted(margins, reverse=True)


def test_small_slices_are_listed_not_dropped():
    data = frame({"big": (50, 50), "tiny": (0, 3)})
    report = slice_report(data, correct="correct", slices=["group"], min_size=30)
    assert report.too_small.select("slice", "n", "metric").rows() == [("group=tiny", 3, 0.0)]
    assert report.underperforming.height == 0
    assert "1 too small to judge" in str(report)


def test_unknown_correctness_is_left_out_of_n_but_counted_in_n_assets():
    data = pl.DataFrame(
        {"group": ["a"] * 4 + ["b"] * 2, "correct": [True, False, None, None, True, True]}
    )
    report = slice_report(data, correct="correct", slices=["group"], min_size=1)
    rows = {r["slice"]: r for r in report.table.iter_rows(named=True)}
    assert (rows["group=a"]["n_assets"], rows["group=a"]["n"]) == (4, 2)
    assert rows["group=a"]["metric"] == 0.5
    assert report.overall["n"] == 4 and report.overall["metric"] == 0.75


def test_null_column_values_form_their_own_slice():
    data = pl.DataFrame({"src": ["x", None, "x", None], "correct": [True, False, True, True]})
    report = slice_report(data, correct="correct", slices=["src"], min_size=1)
    assert sorted(report.table["slice"].to_list()) == ["src=null", "src=x"]


def test_expression_and_function_slices_may_overlap():
    data = pl.DataFrame(
        {"length": [5, 50, 500, 20, 300], "correct": [True, False, False, True, True]}
    )

    def short(row):
        return row["length"] < 30

    report = slice_report(
        data,
        correct="correct",
        slices=[
            ("long", pl.col("length") > 100),
            short,
            ("mid", lambda r: 10 <= r["length"] < 400),
        ],
        min_size=1,
    )
    rows = {r["slice"]: r for r in report.table.iter_rows(named=True)}
    assert rows["long"]["n"] == 2 and rows["long"]["metric"] == 0.5
    assert rows["short"]["n"] == 2 and rows["short"]["metric"] == 1.0
    assert rows["mid"]["n"] == 3 and rows["mid"]["metric"] == pytest.approx(2 / 3)
    assert rows["short"]["source"] == "short"


def test_correct_may_be_an_expression_and_input_pandas():
    data = pd.DataFrame({"g": ["a", "a", "b"], "label": [1, 0, 1], "gold": [1, 1, 1]})
    report = slice_report(data, correct=pl.col("label") == pl.col("gold"), slices=["g"], min_size=1)
    assert report.metric_name == "accuracy"
    assert dict(report.table.select("slice", "metric").rows()) == {"g=a": 0.5, "g=b": 1.0}


def test_mean_of_a_value_column_with_a_t_interval():
    data = pl.DataFrame({"g": ["a"] * 4 + ["b"] * 3, "confidence": [1.0, 2, 3, 4, 9, 9, 9]})
    report = slice_report(data, value="confidence", slices=["g"], min_size=2)
    a = report.table.filter(pl.col("slice") == "g=a").row(0, named=True)
    # mean 2.5, sd 1.290994, t(0.975, 3) = 3.182446: half-width 2.054265.
    assert a["metric"] == 2.5
    assert (a["ci_low"], a["ci_high"]) == pytest.approx((0.445735, 4.554265), abs=1e-5)
    assert report.metric_name == "mean confidence"
    assert report.table.filter(pl.col("slice") == "g=a")["status"].item() == "under-performing"


def test_lower_is_better_flags_slices_above_the_overall():
    data = frame({"a": (10, 90), "b": (60, 40), "c": (25, 75)})
    report = slice_report(data, correct="correct", slices=["group"], higher_is_better=False)
    assert report.underperforming["slice"].to_list() == ["group=b"]
    assert "lower bound" in str(report)


def test_renders_as_a_table():
    report = slice_report(frame({"a": (40, 0), "b": (10, 30)}), correct="correct", slices=["group"])
    text = str(report)
    assert text.startswith("Slices: accuracy on 2 slices (1 under-performing")
    assert "! under-performing slice" in text
    assert "<table" in report._repr_html_()
    assert report.to_pandas().shape[0] == 2


# -- real data -------------------------------------------------------------------------------
def test_youtube_spam_by_video_matches_a_direct_group_by():
    data = load_youtube_spam()
    rule = pl.col("text").str.contains(r"(?i)check|subscribe|http|channel|\.com")
    data = data.with_columns((rule.cast(pl.Int8) == pl.col("label")).alias("correct"))

    def long_comment(row):
        return len(row["text"]) > 100

    report = slice_report(data, correct="correct", slices=["video", long_comment])
    direct = data.group_by("video").agg(pl.len().alias("n"), pl.col("correct").mean().alias("m"))
    for video, n, m in direct.iter_rows():
        row = report.table.filter(pl.col("slice") == f"video={video}").row(0, named=True)
        assert (row["n"], row["metric"]) == (n, pytest.approx(m))
        assert row["ci_low"] <= row["metric"] <= row["ci_high"]
    assert report.overall["metric"] == pytest.approx(data["correct"].mean())
    assert report.table.height == 6
    long_n = int((data["text"].str.len_chars() > 100).sum())
    assert report.table.filter(pl.col("slice") == "long_comment")["n"].item() == long_n
    for row in report.underperforming.iter_rows(named=True):
        assert row["ci_high"] < report.overall["metric"] and row["n"] >= 30


# -- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"slices": ["g"]}, InputError, "exactly one of correct="),
        ({"correct": "c", "value": "v", "slices": ["g"]}, InputError, "got both"),
        ({"correct": "v", "slices": ["g"]}, InputError, "must be a boolean column"),
        ({"value": "g", "slices": ["g"]}, InputError, "value= must be numeric"),
        ({"correct": "c", "slices": ["nope"]}, MissingColumnError, "'nope'"),
        ({"correct": "nope", "slices": ["g"]}, MissingColumnError, "'nope'"),
        ({"correct": "c", "slices": []}, InputError, "non-empty list"),
        ({"correct": "c", "slices": "g"}, InputError, "non-empty list"),
        ({"correct": "c", "slices": ["g"], "min_size": 0}, InputError, "min_size"),
        ({"correct": "c", "slices": ["g"], "confidence": 1.5}, InputError, "confidence"),
        ({"correct": "c", "slices": [("x", pl.col("v") + 1)]}, InputError, "must be boolean"),
        ({"correct": "c", "slices": [("x", lambda r: 1)]}, InputError, "returned 1 on row 0"),
        ({"correct": "c", "slices": [("x", lambda r: r["zz"])]}, InputError, "raised KeyError"),
        ({"correct": "c", "slices": ["g", ("g=a", pl.col("c"))]}, InputError, "repeat"),
        ({"correct": "c", "slices": [42]}, InputError, "cannot use 42"),
    ],
)
def test_bad_arguments_are_refused(kwargs, error, match):
    data = pl.DataFrame({"g": ["a", "b"], "c": [True, False], "v": [1.0, 2.0]})
    with pytest.raises(error, match=match):
        slice_report(data, **kwargs)
