"""One way to show enrich's result objects: in a terminal (rich or plain text) and in a notebook.

Result objects (the LF summary, vote matrices, label-model results, gaps, candidates, the
review queue) inherit :class:`TableDisplay` and describe themselves through a few hooks;
the mixin turns that into ``_repr_html_`` (notebooks), ``__rich_console__`` (rich) and
``__repr__`` / ``__str__`` (a plain fixed-width table), so all of them look alike.

A subclass implements :meth:`TableDisplay._display_table` and may override the optional
hooks: ``_display_title``, ``_display_caption``, ``_display_totals`` (a line of headline
figures), ``_display_formats`` (per-column :data:`ColumnFormat`) and
``_display_highlights`` (cells to flag, as :class:`Highlight` rules).

Examples
--------
>>> import polars as pl
>>> from enrich._internal.display import Highlight, TableDisplay
>>> class Scores(TableDisplay):
...     def _display_table(self):
...         return pl.DataFrame({"lf": ["url", "short"], "accuracy": [0.91, 0.42]})
...     def _display_formats(self):
...         return {"accuracy": "percent"}
...     def _display_highlights(self):
...         return [Highlight("accuracy", lambda v: v < 0.5, "accuracy below 50%")]
>>> print(Scores())
Scores
lf     accuracy
-----  --------
url       91.0%
short   42.0% !
! accuracy below 50%
"""

from __future__ import annotations

import datetime as dt
import html
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple, TypeAlias

import polars as pl

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult

__all__ = ["ColumnFormat", "Highlight", "TableDisplay", "format_value", "plain_text"]

#: How a column's values are written: ``"percent"`` (0.1234 -> ``12.3%``), ``"float"``
#: (``0.123``), ``"int"`` (``1,586``), ``"text"`` (``str(value)``), or any callable
#: ``value -> str``. Null values are always written as ``-``.
ColumnFormat: TypeAlias = Literal["percent", "float", "int", "text"] | Callable[[Any], str]

_NULL = "-"
_FLAG_MARK = "!"
_FLAG_STYLE_HTML = "background-color:#fde2e1;color:#9b1c1c;font-weight:600"
_FLAG_STYLE_RICH = "bold red"
_WHITESPACE = re.compile(r"\s+")
# C0 and C1 control characters, DEL, and the bidirectional overrides that reorder a line
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def plain_text(text: Any) -> str:
    r"""``text`` safe to print to a terminal: control characters written as escapes.

    An escape sequence inside user data (an asset id, a label, an LF name) would otherwise
    reach the terminal, which then sets its title, moves the cursor or hides text. Each
    control character becomes its Python escape (``\x1b``); everything else is kept.
    Rich markup is not a concern here: render the result with ``rich.text.Text``, which
    never reads markup.

    Examples
    --------
    >>> print(plain_text("id\x1b]0;title\x07"), plain_text("[bold]x[/bold]"))
    id\x1b]0;title\x07 [bold]x[/bold]
    """
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], str(text))


@dataclass(frozen=True)
class Highlight:
    """Flag the cells of ``column`` whose value makes ``when(value)`` true.

    ``when`` receives the raw (unformatted) value and is not called on nulls; ``note`` is the
    legend shown under the table (and the tooltip of a flagged HTML cell).

    Examples
    --------
    >>> rule = Highlight("coverage", lambda v: v == 0, "never fires")
    >>> rule.when(0.0), rule.note
    (True, 'never fires')
    """

    column: str
    when: Callable[[Any], bool]
    note: str


def format_value(value: Any, fmt: ColumnFormat | None = None) -> str:
    """Write one value as display text.

    Parameters
    ----------
    value
        A Python value as polars yields it (number, str, bool, list, dict, datetime, None).
    fmt
        A :data:`ColumnFormat`; ``None`` picks a default from the value's type (floats to 4
        significant digits, bools as ``yes``/``no``, lists comma-separated).

    Returns
    -------
    str

    Examples
    --------
    >>> format_value(0.12345, "percent"), format_value(1586, "int"), format_value(None)
    ('12.3%', '1,586', '-')
    >>> format_value([0, 1]), format_value(0.123456), format_value(True)
    ('0, 1', '0.1235', 'yes')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return _NULL
    if callable(fmt):
        return str(fmt(value))
    if fmt == "percent":
        return f"{value:.1%}"
    if fmt == "float":
        return f"{value:.3f}"
    if fmt == "int":
        return f"{value:,}"
    if fmt == "text":
        return str(value)
    if fmt is not None:
        raise ValueError(
            f"unknown column format {fmt!r}; use 'percent', 'float', 'int', 'text' or a callable"
        )
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(format_value(item) for item in value) if value else _NULL
    if isinstance(value, dict):
        return ", ".join(f"{key}={format_value(item)}" for key, item in value.items())
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, pl.Series):
        return format_value(value.to_list())
    return str(value)


class _Prepared(NamedTuple):
    """A table ready to render: every cell already written as text."""

    title: str | None
    columns: list[str]
    right_aligned: list[bool]
    rows: list[list[str]]
    flags: list[list[str | None]]  # the note of the rule that flagged each cell, or None
    hidden_rows: int
    totals: list[tuple[str, str]]
    notes: list[str]  # legends of the rules that flagged at least one shown cell
    caption: str | None


class TableDisplay:
    """Mixin that renders a result object as a table in notebooks, rich and plain terminals.

    Subclasses implement :meth:`_display_table`; every other hook is optional. Long tables
    show their first :attr:`display_max_rows` rows and a ``... N more rows`` note; cells longer
    than :attr:`display_max_width` characters are cut with ``…``. All text is HTML-escaped in
    ``_repr_html_``.
    """

    #: Rows shown before the rest are summarised as "... N more rows".
    display_max_rows: ClassVar[int] = 50
    #: Longest cell text shown, in characters.
    display_max_width: ClassVar[int] = 60

    # -- hooks ---------------------------------------------------------------------------
    def _display_table(self) -> pl.DataFrame:
        """The rows to show (required)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _display_table()")

    def _display_title(self) -> str | None:
        """A one-line title; the class name by default."""
        return type(self).__name__

    def _display_caption(self) -> str | None:
        """A line of explanation shown under the table."""
        return None

    def _display_totals(self) -> Mapping[str, str]:
        """Headline figures (label -> text already formatted) shown under the table."""
        return {}

    def _display_formats(self) -> Mapping[str, ColumnFormat]:
        """Per-column formats; columns not named use :func:`format_value`'s defaults."""
        return {}

    def _display_highlights(self) -> Sequence[Highlight]:
        """Rules that flag cells (for example low accuracy)."""
        return ()

    def _display_no_wrap(self) -> Sequence[str]:
        """Columns a terminal table never wraps over lines (ids one copies, like run ids)."""
        return ()

    # -- rendering -----------------------------------------------------------------------
    def _display_prepare(self) -> _Prepared:
        table = self._display_table()
        if not isinstance(table, pl.DataFrame):
            raise TypeError(
                f"{type(self).__name__}._display_table() returned {type(table).__name__}; "
                "it must return a polars DataFrame"
            )
        formats = dict(self._display_formats())
        rules: dict[str, list[Highlight]] = {}
        for rule in self._display_highlights():
            rules.setdefault(rule.column, []).append(rule)
        shown = table.head(max(self.display_max_rows, 0))
        columns = list(shown.columns)
        right_aligned = [
            formats.get(name) in ("percent", "float", "int")
            or (formats.get(name) is None and dtype.is_numeric())
            for name, dtype in shown.schema.items()
        ]
        rows: list[list[str]] = []
        flags: list[list[str | None]] = []
        used_notes: dict[str, None] = {}
        for record in shown.iter_rows():
            cells, cell_flags = [], []
            for name, value in zip(columns, record, strict=True):
                cells.append(self._display_cell(format_value(value, formats.get(name))))
                note = None
                if value is not None:
                    for rule in rules.get(name, ()):
                        if rule.when(value):
                            note = rule.note
                            used_notes[note] = None
                            break
                cell_flags.append(note)
            rows.append(cells)
            flags.append(cell_flags)
        title = self._display_title()
        caption = self._display_caption()
        return _Prepared(
            title=None if title is None else plain_text(title),
            columns=[plain_text(c) for c in columns],
            right_aligned=right_aligned,
            rows=rows,
            flags=flags,
            hidden_rows=table.height - shown.height,
            totals=[(plain_text(k), plain_text(v)) for k, v in self._display_totals().items()],
            notes=[plain_text(n) for n in used_notes],
            caption=None if caption is None else plain_text(caption),
        )

    def _display_cell(self, text: str) -> str:
        text = plain_text(_WHITESPACE.sub(" ", text).strip())
        limit = max(self.display_max_width, 2)
        return text if len(text) <= limit else text[: limit - 1] + "…"

    @staticmethod
    def _display_footer(prepared: _Prepared) -> list[str]:
        lines = []
        if prepared.hidden_rows:
            lines.append(f"... {prepared.hidden_rows:,} more rows")
        if prepared.totals:
            lines.append(" | ".join(f"{label}: {text}" for label, text in prepared.totals))
        lines.extend(f"{_FLAG_MARK} {note}" for note in prepared.notes)
        if prepared.caption:
            lines.append(prepared.caption)
        return lines

    def _display_text(self) -> str:
        """The plain fixed-width rendering used by ``__repr__`` and ``__str__``."""
        p = self._display_prepare()
        cells = [
            [text + (f" {_FLAG_MARK}" if flag else "") for text, flag in zip(row, fl, strict=True)]
            for row, fl in zip(p.rows, p.flags, strict=True)
        ]
        widths = [
            max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(p.columns)
        ]

        def line(values: Sequence[str]) -> str:
            parts = [
                v.rjust(w) if right else v.ljust(w)
                for v, w, right in zip(values, widths, p.right_aligned, strict=True)
            ]
            return "  ".join(parts).rstrip()

        out = [p.title] if p.title else []
        if p.columns:
            out.append(line(p.columns))
            out.append("  ".join("-" * w for w in widths))
            out.extend(line(row) for row in cells)
        if not p.rows:
            out.append("(no rows)")
        out.extend(self._display_footer(p))
        return "\n".join(out)

    def __repr__(self) -> str:
        return self._display_text()

    def __str__(self) -> str:
        return self._display_text()

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.table import Table
        from rich.text import Text

        p = self._display_prepare()
        # every text goes in as Text, so markup in user data ("[bold]") is shown, not applied
        table = Table(
            title=None if p.title is None else Text(p.title),
            title_justify="left",
            caption=None if p.caption is None else Text(p.caption),
            caption_justify="left",
        )
        keep_whole = set(self._display_no_wrap())
        for i, (name, right) in enumerate(zip(p.columns, p.right_aligned, strict=True)):
            whole = name in keep_whole
            table.add_column(
                Text(name),
                justify="right" if right else "left",
                overflow="fold",
                no_wrap=whole,
                # other columns give way first: these keep their longest value on one line
                min_width=max((len(row[i]) for row in p.rows), default=0) if whole else None,
            )
        for row, fl in zip(p.rows, p.flags, strict=True):
            table.add_row(
                *(
                    Text(text, style=_FLAG_STYLE_RICH) if flag else Text(text)
                    for text, flag in zip(row, fl, strict=True)
                )
            )
        yield table
        if p.hidden_rows:
            yield Text(f"... {p.hidden_rows:,} more rows", style="dim")
        if p.totals:
            yield Text(" | ".join(f"{label}: {text}" for label, text in p.totals))
        for note in p.notes:
            yield Text(f"{_FLAG_MARK} {note}", style=_FLAG_STYLE_RICH)

    def _repr_html_(self) -> str:
        p = self._display_prepare()
        esc = html.escape
        out = ['<div class="enrich-table">']
        out.append('<table style="border-collapse:collapse">')
        if p.title:
            out.append(f'<caption style="text-align:left;font-weight:600">{esc(p.title)}</caption>')
        out.append("<thead><tr>")
        for name, right in zip(p.columns, p.right_aligned, strict=True):
            align = "right" if right else "left"
            out.append(f'<th style="text-align:{align}">{esc(name)}</th>')
        out.append("</tr></thead><tbody>")
        for row, fl in zip(p.rows, p.flags, strict=True):
            out.append("<tr>")
            for text, flag, right in zip(row, fl, p.right_aligned, strict=True):
                style = f"text-align:{'right' if right else 'left'}"
                if flag:
                    style += f";{_FLAG_STYLE_HTML}"
                    out.append(f'<td style="{style}" title="{esc(flag)}">{esc(text)}</td>')
                else:
                    out.append(f'<td style="{style}">{esc(text)}</td>')
            out.append("</tr>")
        if not p.rows:
            out.append(f'<tr><td colspan="{max(len(p.columns), 1)}">(no rows)</td></tr>')
        out.append("</tbody></table>")
        if p.hidden_rows:
            out.append(f'<p style="color:#666">... {p.hidden_rows:,} more rows</p>')
        if p.totals:
            items = " &middot; ".join(
                f"<b>{esc(label)}</b>: {esc(text)}" for label, text in p.totals
            )
            out.append(f"<p>{items}</p>")
        for note in p.notes:
            out.append(f'<p><span style="{_FLAG_STYLE_HTML};padding:0 4px">{_FLAG_MARK}</span> ')
            out.append(f"{esc(note)}</p>")
        if p.caption:
            out.append(f'<p style="color:#666">{esc(p.caption)}</p>')
        out.append("</div>")
        return "".join(out)
