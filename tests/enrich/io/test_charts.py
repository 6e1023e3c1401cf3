"""The report's inline SVG charts: well-formed, escaped, scaled."""

import re
import xml.etree.ElementTree as ET

import pytest

from enrich.io import charts
from enrich.io.report import render_html

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def bar_widths(root: ET.Element) -> list[float]:
    return [float(r.get("width")) for r in root.iter(f"{SVG}rect")]


def test_horizontal_bars_are_proportional_and_labels_escaped():
    root = parse(
        charts.horizontal_bars(
            ["<script>", "b & c"], [0.2, 0.4], title="LF <coverage>", xlabel="x", xmax=0.8
        )
    )
    small, large = bar_widths(root)
    assert large == pytest.approx(2 * small, rel=0.01)
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "<script>" in texts and "b & c" in texts and "LF <coverage>" in texts


def test_negative_changes_extend_left_of_zero():
    root = parse(charts.horizontal_bars(["up", "down"], [0.02, -0.01], title="t", xlabel="x"))
    up, down = list(root.iter(f"{SVG}rect"))
    assert float(down.get("x")) < float(up.get("x"))  # starts left of zero
    assert float(down.get("x")) + float(down.get("width")) == pytest.approx(float(up.get("x")))


def test_grouped_bars_have_a_legend_and_one_bar_per_class_and_series():
    series = [charts.Series("previous run", [0.3, 0.7]), charts.Series("this run", [0.4, 0.6])]
    root = parse(charts.vertical_bars(["HAM", "SPAM"], series, title="t", ylabel="share"))
    bars = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert len(bars) == 4
    assert {t.text for t in root.iter(f"{SVG}text")} >= {"previous run", "this run", "HAM"}


def test_steps_and_intervals_are_well_formed():
    steps = charts.steps(
        [0, 0.5, 1], [charts.Series("now", [0.2, 0.8])], title="t", xlabel="x", ylabel="y"
    )
    assert len(parse(steps).findall(f"{SVG}polyline")) == 1
    interval = charts.intervals(
        ["a", "b"],
        [0.5, 0.9],
        [0.4, 0.85],
        [0.6, 0.95],
        title="t",
        xlabel="acc",
        colors=[charts.RED, charts.BLUE],
        reference=0.8,
    )
    assert len(parse(interval).findall(f"{SVG}circle")) == 2


@pytest.mark.parametrize(
    ("lo", "hi", "ticks"),
    [
        (0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1]),
        (0, 0.23, [0, 0.05, 0.1, 0.15, 0.2]),
        (-0.02, 0.02, [-0.02, -0.01, 0, 0.01, 0.02]),
    ],
)
def test_ticks_are_round(lo, hi, ticks):
    assert charts._ticks(lo, hi) == pytest.approx(ticks)


def test_every_chart_of_a_report_parses_as_svg():
    record = {
        "run_id": "r2",
        "classes": ["HAM", "SPAM"],
        "metrics": {
            "class_balance": {"HAM": 0.4, "SPAM": 0.6},
            "lfs": [{"lf": "kw", "coverage": 0.3, "estimated_accuracy": 0.9}],
            "confidence_hist": {"edges": [0, 0.5, 1], "counts": [3, 7]},
            "slices": {
                "metric": "accuracy",
                "overall": {"metric": 0.8},
                "table": [{"slice": "video=a", "metric": 0.7, "ci_low": 0.6, "ci_high": 0.8}],
            },
            "drift": {"coverage_change": {"kw": -0.05}},
        },
    }
    previous = {
        "metrics": {
            "class_balance": {"HAM": 0.5, "SPAM": 0.5},
            "confidence_hist": {"counts": [5, 5]},
        }
    }
    page = render_html(record, previous)
    svgs = re.findall(r"<svg.*?</svg>", page, flags=re.S)
    assert len(svgs) == 6  # balance, LF coverage, LF accuracy, confidence, slices, drift
    for svg in svgs:
        parse(svg)
