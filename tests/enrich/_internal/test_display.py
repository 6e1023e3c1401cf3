"""TableDisplay renders result objects alike in plain text, rich and notebook HTML."""

from __future__ import annotations

import datetime as dt
import html

import polars as pl
import pytest
from rich.console import Console

from enrich._internal.display import Highlight, TableDisplay, format_value


class Result(TableDisplay):
    """A small real result object, as enrich's own result classes are written."""

    def __init__(self, table, *, caption=None, totals=None, formats=None, highlights=()):
        self.table = table
        self.caption = caption
        self.totals = totals or {}
        self.formats = formats or {}
        self.highlights = highlights

    def _display_table(self):
        return self.table

    def _display_caption(self):
        return self.caption

    def _display_totals(self):
        return self.totals

    def _display_formats(self):
        return self.formats

    def _display_highlights(self):
        return self.highlights


def rich_text(obj) -> str:
    console = Console(record=True, width=120, color_system=None)
    console.print(obj)
    return console.export_text()


def scores() -> Result:
    return Result(
        pl.DataFrame(
            {"lf": ["url", "short", "caps"], "acc": [0.91, 0.42, None], "n": [1586, 3, 0]}
        ),
        caption="accuracy on the gold rows",
        totals={"coverage": "87.7%"},
        formats={"acc": "percent", "n": "int"},
        highlights=[Highlight("acc", lambda v: v < 0.5, "accuracy below 50%")],
    )


def test_plain_text_is_an_aligned_table():
    text = str(scores())
    assert repr(scores()) == text
    lines = text.splitlines()
    assert lines[0] == "Result"
    assert lines[1].split() == ["lf", "acc", "n"]
    assert set(lines[2].replace(" ", "")) == {"-"}
    assert lines[3].split() == ["url", "91.0%", "1,586"]
    assert lines[4].split() == ["short", "42.0%", "!", "3"]
    assert lines[5].split() == ["caps", "-", "0"]  # null written as "-"
    # numbers are right-aligned: the numeric cells end in the same column
    assert len({len(line) for line in lines[3:6]}) == 1
    assert "coverage: 87.7%" in text
    assert "! accuracy below 50%" in text
    assert lines[-1] == "accuracy on the gold rows"


def test_html_formats_flags_and_escapes():
    obj = Result(
        pl.DataFrame({"<b>name</b>": ["<script>alert(1)</script>", "a & b"], "acc": [0.3, 0.8]}),
        caption="x < y",
        totals={"n & m": "<2>"},
        formats={"acc": "percent"},
        highlights=[Highlight("acc", lambda v: v < 0.5, 'low "accuracy"')],
    )
    page = obj._repr_html_()
    assert "<script>" not in page
    assert "<b>name</b>" not in page
    assert html.escape("<script>alert(1)</script>") in page
    assert "&lt;b&gt;name&lt;/b&gt;" in page
    assert "a &amp; b" in page
    assert "x &lt; y" in page
    assert "n &amp; m" in page and "&lt;2&gt;" in page
    # the low cell is styled and carries the note as its tooltip; the other is plain
    assert 'title="low &quot;accuracy&quot;"' in page
    assert page.count("title=") == 1
    assert ">30.0%</td>" in page and ">80.0%</td>" in page
    assert page.startswith("<div") and page.endswith("</div>")


def test_rich_rendering_has_the_same_content():
    out = rich_text(scores())
    for piece in ("Result", "url", "91.0%", "42.0%", "1,586", "coverage: 87.7%"):
        assert piece in out
    assert "! accuracy below 50%" in out
    assert "accuracy on the gold rows" in out


def test_long_tables_are_truncated_with_a_note():
    obj = Result(pl.DataFrame({"i": list(range(120))}))
    text = str(obj)
    assert "... 70 more rows" in text
    assert "\n49\n" in text.replace(" ", "") and "\n50\n" not in text.replace(" ", "")
    assert "... 70 more rows" in obj._repr_html_()
    assert obj._repr_html_().count("<tr>") == 1 + 50
    assert "... 70 more rows" in rich_text(obj)
    obj.display_max_rows = 200
    assert "more rows" not in str(obj)


def test_long_and_multiline_cells_are_shortened():
    obj = Result(pl.DataFrame({"text": ["line one\nline two", "x" * 500]}))
    text = str(obj)
    assert "line one line two" in text
    assert "x" * 59 + "…" in text
    assert "x" * 60 not in text


def test_empty_table_says_so():
    obj = Result(pl.DataFrame({"lf": [], "acc": []}, schema={"lf": pl.String, "acc": pl.Float64}))
    assert "(no rows)" in str(obj)
    assert "(no rows)" in obj._repr_html_()
    assert "lf" in rich_text(obj)


def test_format_value_covers_the_usual_types():
    assert format_value(0.5, "percent") == "50.0%"
    assert format_value(1234567, "int") == "1,234,567"
    assert format_value(2 / 3, "float") == "0.667"
    assert format_value(7, "text") == "7"
    assert format_value(0.5, lambda v: f"<{v}>") == "<0.5>"
    assert format_value(float("nan")) == "-"
    assert format_value([]) == "-"
    assert format_value(["HAM", "SPAM"]) == "HAM, SPAM"
    assert format_value({"a": 1, "b": None}) == "a=1, b=-"
    assert format_value(False) == "no"
    assert format_value(dt.datetime(2015, 5, 28, 21, 39, 52)) == "2015-05-28 21:39:52"
    with pytest.raises(ValueError, match="'percentage'"):
        format_value(0.5, "percentage")


def test_list_struct_and_datetime_columns_render():
    obj = Result(
        pl.DataFrame(
            {
                "polarity": [[0, 1], []],
                "when": [dt.datetime(2015, 1, 2, 3, 4, 5), None],
                "flag": [True, False],
            }
        )
    )
    text = str(obj)
    assert "0, 1" in text and "2015-01-02 03:04:05" in text and "yes" in text


def test_a_subclass_must_provide_a_polars_table():
    class Missing(TableDisplay):
        pass

    with pytest.raises(NotImplementedError, match="Missing must implement _display_table"):
        str(Missing())

    class Wrong(TableDisplay):
        def _display_table(self):
            return {"a": [1]}

    with pytest.raises(TypeError, match="returned dict"):
        Wrong()._repr_html_()
