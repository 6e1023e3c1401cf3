"""Small inline SVG charts for the HTML run report.

The report is written by every nightly run; drawing its five plots with matplotlib cost about
0.8 s a run (import and rendering), more than the rest of a small incremental run's analysis.
These charts are plain SVG text: no import, a few milliseconds, crisp at any zoom, and the
page stays one self-contained file. Each function returns one ``<svg>`` element; labels are
escaped.

>>> svg = horizontal_bars(["keyword", "regex"], [0.25, 0.5], title="LF coverage",
...                       xlabel="coverage", xmax=1)
>>> svg.startswith("<svg") and "LF coverage" in svg and svg.count("<rect") == 2
True
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Series", "horizontal_bars", "intervals", "steps", "vertical_bars"]

BLUE, GREY_BLUE, GREEN, RED = "#2680c2", "#9fb3c8", "#3ebd93", "#cf1124"
INK, MUTED, GRID = "#1f2933", "#7b8794", "#e4e7eb"
_FONT = "font-family='system-ui,sans-serif' font-size='12'"
_CHAR_PX = 7.0  # rough width of a 12 px character, to size the label margin
_ROW_PX = 22
_TOP, _BOTTOM, _RIGHT = 30, 42, 20


@dataclass(frozen=True)
class Series:
    """One named series of values drawn in one colour."""

    name: str
    values: Sequence[float]
    color: str = BLUE


@dataclass(frozen=True)
class _Frame:
    """The plot area of a chart and its linear value scale."""

    width: float
    height: float
    left: float
    lo: float
    hi: float
    horizontal: bool  # values run along x (True) or y (False)

    @property
    def plot_width(self) -> float:
        return self.width - self.left - _RIGHT

    @property
    def plot_height(self) -> float:
        return self.height - _TOP - _BOTTOM

    def at(self, value: float) -> float:
        """Pixel position of ``value`` along the value axis."""
        share = (value - self.lo) / (self.hi - self.lo) if self.hi > self.lo else 0.0
        share = min(max(share, 0.0), 1.0)
        if self.horizontal:
            return self.left + share * self.plot_width
        return _TOP + (1 - share) * self.plot_height


def vertical_bars(
    categories: Sequence[str], series: Sequence[Series], *, title: str, ylabel: str
) -> str:
    """Grouped vertical bars: one group per category, one bar per series (legend if > 1).

    >>> "previous" in vertical_bars(["HAM", "SPAM"], [Series("previous", [0.4, 0.6]),
    ...                             Series("now", [0.5, 0.5])], title="Class balance",
    ...                             ylabel="share")
    True
    """
    top = max([v for s in series for v in s.values] + [0.0])
    frame = _Frame(560, 260, 56, 0.0, _nice_max(top), horizontal=False)
    out = _open(frame, title) + _value_grid(frame) + _axis_label(frame, ylabel)
    slot = frame.plot_width / max(len(categories), 1)
    bar = slot * 0.8 / max(len(series), 1)
    for i, name in enumerate(categories):
        x0 = frame.left + i * slot + slot * 0.1
        for j, s in enumerate(series):
            y = frame.at(s.values[i])
            out += _rect(x0 + j * bar, y, bar, frame.at(0) - y, s.color, f"{s.name}: {name}")
        out += _text(frame.left + (i + 0.5) * slot, frame.height - _BOTTOM + 16, name, "middle")
    return out + _legend(frame, series) + "</svg>"


def horizontal_bars(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    xlabel: str,
    colors: str | Sequence[str] = BLUE,
    xmax: float | None = None,
    xmin: float | None = None,
    reference: float | None = None,
) -> str:
    """One horizontal bar per label, read top to bottom; optional dashed ``reference`` line.

    Bars start at 0; negative values (changes) extend left of it.
    """
    lo = min([0.0, *values]) if xmin is None else xmin
    hi = _nice_max(max([0.0, *values])) if xmax is None else xmax
    if lo < 0:
        lo = -_nice_max(-lo)
    frame = _frame_for_rows(labels, lo, hi)
    out = _open(frame, title) + _value_grid(frame) + _axis_label(frame, xlabel)
    fills = [colors] * len(values) if isinstance(colors, str) else list(colors)
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = _TOP + i * _ROW_PX + 4
        x0, x1 = sorted((frame.at(0), frame.at(value)))
        out += _rect(x0, y, x1 - x0, _ROW_PX - 8, fills[i], f"{label}: {value:.3g}")
        out += _text(frame.left - 6, y + _ROW_PX / 2, label, "end")
    if reference is not None:
        out += _vline(frame, reference, RED)
    return out + "</svg>"


def steps(
    edges: Sequence[float], series: Sequence[Series], *, title: str, xlabel: str, ylabel: str
) -> str:
    """Histograms as step lines over shared bin ``edges``; the first series is filled."""
    top = max([v for s in series for v in s.values] + [0.0])
    value_scale = _Frame(560, 260, 56, 0.0, _nice_max(top), horizontal=False)
    along = _Frame(560, 260, 56, edges[0], edges[-1], horizontal=True)
    out = _open(value_scale, title) + _value_grid(value_scale) + _axis_label(value_scale, ylabel)
    for tick in _ticks(edges[0], edges[-1]):
        out += _text(along.at(tick), value_scale.height - _BOTTOM + 16, f"{tick:g}", "middle")
    out += _text(along.left + along.plot_width / 2, value_scale.height - 6, xlabel, "middle")
    for k, s in enumerate(series):
        points = [(along.at(edges[0]), value_scale.at(0))]
        for i, v in enumerate(s.values):
            points += [
                (along.at(edges[i]), value_scale.at(v)),
                (along.at(edges[i + 1]), value_scale.at(v)),
            ]
        points.append((along.at(edges[-1]), value_scale.at(0)))
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        fill = f"fill='{s.color}' fill-opacity='0.6'" if k == 0 else "fill='none'"
        out += f"<polyline points='{path}' {fill} stroke='{s.color}' stroke-width='1.5'/>"
    return out + _legend(value_scale, series) + "</svg>"


def intervals(
    labels: Sequence[str],
    values: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    *,
    title: str,
    xlabel: str,
    colors: Sequence[str],
    reference: float | None = None,
) -> str:
    """A dot per label with its interval as whiskers (e.g. slice accuracy and its CI)."""
    span = [*lows, *values, *highs, *([] if reference is None else [reference])]
    lo, hi = min(span), max(span)
    pad = max((hi - lo) * 0.1, 0.01)
    frame = _frame_for_rows(labels, lo - pad, hi + pad)
    out = _open(frame, title) + _value_grid(frame) + _axis_label(frame, xlabel)
    for i, label in enumerate(labels):
        y = _TOP + (i + 0.5) * _ROW_PX
        out += _line(frame.at(lows[i]), frame.at(highs[i]), y, y, MUTED, " stroke-width='1.5'")
        out += (
            f"<circle cx='{frame.at(values[i]):.1f}' cy='{y:.1f}' r='4' fill='{colors[i]}'>"
            f"<title>{_e(label)}: {values[i]:.3g} [{lows[i]:.3g}, {highs[i]:.3g}]</title></circle>"
        )
        out += _text(frame.left - 6, y, label, "end")
    if reference is not None:
        out += _vline(frame, reference, INK)
    return out + "</svg>"


# -- pieces --------------------------------------------------------------------------------
def _frame_for_rows(labels: Sequence[str], lo: float, hi: float) -> _Frame:
    longest = max((len(str(label)) for label in labels), default=0)
    left = min(max(60.0, 12 + _CHAR_PX * longest), 260.0)
    height = _TOP + _BOTTOM + _ROW_PX * max(len(labels), 1)
    return _Frame(left + 420, height, left, lo, hi, horizontal=True)


def _open(frame: _Frame, title: str) -> str:
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{frame.width:.0f}' "
        f"height='{frame.height:.0f}' viewBox='0 0 {frame.width:.0f} {frame.height:.0f}' "
        f"role='img' {_FONT}><title>{_e(title)}</title>"
        f"<text x='{frame.left:.1f}' y='18' font-weight='600' fill='{INK}'>{_e(title)}</text>"
    )


def _value_grid(frame: _Frame) -> str:
    out = ""
    bottom, right = frame.height - _BOTTOM, frame.width - _RIGHT
    for tick in _ticks(frame.lo, frame.hi):
        pos = frame.at(tick)
        if frame.horizontal:
            out += _line(pos, pos, _TOP, bottom, GRID)
            out += _text(pos, bottom + 16, f"{tick:g}", "middle")
        else:
            out += _line(frame.left, right, pos, pos, GRID)
            out += _text(frame.left - 6, pos, f"{tick:g}", "end")
    return out


def _line(x1: float, x2: float, y1: float, y2: float, color: str, extra: str = "") -> str:
    return (
        f"<line x1='{x1:.1f}' x2='{x2:.1f}' y1='{y1:.1f}' y2='{y2:.1f}' stroke='{color}'{extra}/>"
    )


def _axis_label(frame: _Frame, label: str) -> str:
    if frame.horizontal:
        return _text(frame.left + frame.plot_width / 2, frame.height - 6, label, "middle")
    y = _TOP + frame.plot_height / 2
    return (
        f"<text x='14' y='{y:.1f}' text-anchor='middle' fill='{MUTED}' "
        f"transform='rotate(-90 14 {y:.1f})'>{_e(label)}</text>"
    )


def _legend(frame: _Frame, series: Sequence[Series]) -> str:
    """The series' names in a row at the right end of the title line."""
    if len(series) < 2:
        return ""
    out = ""
    x = frame.width - _RIGHT - sum(20 + _CHAR_PX * len(s.name) for s in series)
    for s in series:
        out += f"<rect x='{x:.1f}' y='13' width='10' height='10' fill='{s.color}'/>"
        out += _text(x + 14, 18, s.name, "start")
        x += 20 + _CHAR_PX * len(s.name)
    return out


def _rect(x: float, y: float, width: float, height: float, color: str, tip: str) -> str:
    return (
        f"<rect x='{x:.1f}' y='{y:.1f}' width='{max(width, 0):.1f}' "
        f"height='{max(height, 0):.1f}' fill='{color}'><title>{_e(tip)}</title></rect>"
    )


def _vline(frame: _Frame, value: float, color: str) -> str:
    x = frame.at(value)
    return _line(x, x, _TOP, frame.height - _BOTTOM, color, " stroke-dasharray='4 3'")


def _text(x: float, y: float, text: str, anchor: str) -> str:
    return (
        f"<text x='{x:.1f}' y='{y:.1f}' text-anchor='{anchor}' dominant-baseline='middle' "
        f"fill='{INK}'>{_e(text)}</text>"
    )


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values from ``lo`` to ``hi``."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if raw <= step * m)
    first = math.ceil(lo / step - 1e-9)
    return [round(i * step, 10) for i in range(first, math.floor(hi / step + 1e-9) + 1)]


def _nice_max(value: float) -> float:
    """A round upper bound for an axis that shows ``value``."""
    if value <= 0:
        return 1.0
    ticks = _ticks(0, value)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else value
    return ticks[-1] if ticks[-1] >= value else ticks[-1] + step


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)
