"""Charts as SVG drawn on the server: no JavaScript, readable by screen readers.

Each chart is an image (``role="img"``) named by its ``<title>`` and described in words by
its ``<desc>``; every bar or point carries its own ``<title>`` ("2024-03: 12 hours").
Values are printed beside the marks, so colour never carries meaning alone, and all text is
escaped. The drawing is 640 units wide (about 260 high) and scales to its container.

Bars stand upright when their labels fit under them (months: thinned to every second or
third label if need be); bars with longer labels (kinds of help, areas, organisations) lie
on their side, with each label written in full to the left of its bar.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 60, 16, 40, 46
ROW = 22  # height of one lying bar's row
INK = "#1a1a1a"  # text: 17:1 on white
MARK = "#1f4e8c"  # bars and the line: 8:1 on white
GRID = "#c4c4c4"
AXIS = "#4d4d4d"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif"
CHAR_WIDTH = 6.6  # a generous average character at 11 units, for fitting labels
SHORT_LABEL = 8  # labels up to this long (months) may be thinned rather than laid sideways
MAX_TICKS = 5


def bar_chart(labels: Sequence[str], values: Sequence[float], *, title: str, unit: str,
              x_label: str = "") -> Markup:
    """A bar per value with the value printed at its end."""
    data = _Data.of(labels, values, title=title, unit=unit, x_label=x_label, kind="Bar")
    if data.empty:
        return _svg(data, HEIGHT, _upright(data, ""))
    if not data.fits_under(_slot(len(data.values))) and data.widest > SHORT_LABEL:
        height = max(HEIGHT, TOP + 4 + ROW * len(data.values) + 40)
        return _svg(data, height, _lying(data, height))
    scale = _Upright(data)
    bar = min(scale.slot * 0.7, 56.0)
    marks: list[str] = []
    for i, (label, value) in enumerate(zip(data.labels, data.values, strict=True)):
        top = scale.y(value)
        marks.append(
            f'<rect class="bar" x="{scale.x(i) - bar / 2:.1f}" y="{top:.1f}" '
            f'width="{bar:.1f}" height="{scale.bottom - top:.1f}" fill="{MARK}">'
            f"{data.mark_title(label, value)}</rect>"
            f"{scale.value_text(i, value, top)}"
        )
    return _svg(data, HEIGHT, _upright(data, "".join(marks)))


def line_chart(labels: Sequence[str], values: Sequence[float], *, title: str, unit: str,
               x_label: str = "") -> Markup:
    """A line through the values with a round marker at each (shape, not colour, shows the
    points)."""
    data = _Data.of(labels, values, title=title, unit=unit, x_label=x_label, kind="Line")
    if data.empty:
        return _svg(data, HEIGHT, _upright(data, ""))
    scale = _Upright(data)
    points = [(scale.x(i), scale.y(v)) for i, v in enumerate(data.values)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    marks = [
        f'<polyline class="line" points="{path}" fill="none" stroke="{MARK}" '
        f'stroke-width="2.5" stroke-linejoin="round"/>'
    ]
    for i, ((x, y), label, value) in enumerate(
        zip(points, data.labels, data.values, strict=True)
    ):
        marks.append(
            f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="#ffffff" '
            f'stroke="{MARK}" stroke-width="2.5">{data.mark_title(label, value)}</circle>'
            f"{scale.value_text(i, value, y - 4)}"
        )
    return _svg(data, HEIGHT, _upright(data, "".join(marks)))


@dataclass(frozen=True)
class _Data:
    """The numbers and words of a chart, with its round gridline values."""

    labels: tuple[str, ...]
    values: tuple[float, ...]
    title: str
    unit: str
    x_label: str
    kind: str
    ticks: tuple[float, ...]

    @classmethod
    def of(cls, labels: Sequence[str], values: Sequence[float], *, title: str, unit: str,
           x_label: str, kind: str) -> _Data:
        if len(labels) != len(values):
            raise ValueError("a chart needs one label per value")
        clean = tuple(max(float(v), 0.0) for v in values)  # negative values are not drawn
        return cls(tuple(str(label) for label in labels), clean, title, unit, x_label, kind,
                   _ticks(max(clean, default=0.0), all(v.is_integer() for v in clean)))

    @property
    def empty(self) -> bool:
        return not any(self.values)

    @property
    def widest(self) -> int:
        return max((len(label) for label in self.labels), default=0)

    @property
    def empty_text(self) -> str:
        return f"No {self.unit} in this period"

    def fits_under(self, slot: float) -> bool:
        return self.widest * CHAR_WIDTH + 4 <= slot

    def mark_title(self, label: str, value: float) -> str:
        return f"<title>{escape(label)}: {_number(value)} {escape(self.unit)}</title>"

    def describe(self) -> str:
        if self.empty:
            return f"{self.kind} chart: {self.empty_text}."
        items = "; ".join(
            f"{label}: {_number(value)}"
            for label, value in zip(self.labels, self.values, strict=True)
        )
        peak = max(range(len(self.values)), key=lambda i: self.values[i])
        return (
            f"{self.kind} chart of {self.unit} for {len(self.values)} items. "
            f"Highest: {self.labels[peak]} with {_number(self.values[peak])} {self.unit}. "
            f"Values: {items}."
        )


def _svg(data: _Data, height: int, body: str) -> Markup:
    """The image: its name and description, a white ground, the title, then ``body``."""
    ident = "chart-" + hashlib.sha1(
        repr((data.kind, data.title, data.labels, data.values)).encode()
    ).hexdigest()[:10]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" preserveAspectRatio="xMidYMid meet" role="img" '
        f'aria-labelledby="{ident}-title {ident}-desc" font-family="{FONT}" '
        f'font-size="12" class="chart">',
        f'<title id="{ident}-title">{escape(data.title)}</title>',
        f'<desc id="{ident}-desc">{escape(data.describe())}</desc>',
        f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>',
        f'<text class="chart-title" x="{LEFT}" y="22" font-size="15" font-weight="bold" '
        f'fill="{INK}">{escape(data.title)}</text>',
        body,
    ]
    if data.empty:
        parts.append(
            f'<text class="empty" x="{(LEFT + WIDTH - RIGHT) / 2:.1f}" '
            f'y="{(TOP + height - BOTTOM) / 2:.1f}" text-anchor="middle" font-size="14" '
            f'fill="{INK}">{escape(data.empty_text)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _slot(count: int) -> float:
    return (WIDTH - LEFT - RIGHT) / max(count, 1)


@dataclass(frozen=True)
class _Upright:
    """Labels along the bottom, values up the side."""

    data: _Data

    @property
    def bottom(self) -> float:
        return float(HEIGHT - BOTTOM)

    @property
    def slot(self) -> float:
        return _slot(len(self.data.values))

    def x(self, index: int) -> float:
        return LEFT + self.slot * (index + 0.5)

    def y(self, value: float) -> float:
        return self.bottom - (self.bottom - TOP) * value / self.data.ticks[-1]

    def value_text(self, index: int, value: float, above: float) -> str:
        text = _number(value)
        if len(text) * CHAR_WIDTH > self.slot:
            return ""  # no room: the mark's own title still gives the value
        return (
            f'<text class="value" x="{self.x(index):.1f}" y="{above - 4:.1f}" '
            f'text-anchor="middle" font-size="11" fill="{INK}">{text}</text>'
        )

    def label_step(self) -> int:
        """Every label when they fit, else every second, third…"""
        needed = min(self.data.widest, SHORT_LABEL) * CHAR_WIDTH + 4
        return max(1, math.ceil(needed / self.slot))


def _upright(data: _Data, marks: str) -> str:
    scale = _Upright(data)
    parts = []
    for tick in data.ticks:
        y = scale.y(tick)
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" '
            f'fill="{INK}">{_number(tick)}</text>'
        )
    parts.append(f'<g class="marks">{marks}</g>')
    middle = (TOP + scale.bottom) / 2
    parts.append(
        f'<line x1="{LEFT}" y1="{scale.bottom:.1f}" x2="{WIDTH - RIGHT}" '
        f'y2="{scale.bottom:.1f}" stroke="{AXIS}" stroke-width="1.5"/>'
        f'<text class="axis-label" x="16" y="{middle:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 16 {middle:.1f})" fill="{INK}">'
        f"{escape(data.unit.capitalize())}</text>"
    )
    if data.x_label:
        parts.append(
            f'<text class="axis-label" x="{(LEFT + WIDTH - RIGHT) / 2:.1f}" '
            f'y="{HEIGHT - 6}" text-anchor="middle" fill="{INK}">{escape(data.x_label)}</text>'
        )
    every = scale.label_step()
    room = max(int((scale.slot * every - 4) / CHAR_WIDTH), 3)
    for i, label in enumerate(data.labels):
        if i % every == 0:
            parts.append(
                f'<text class="x-label" x="{scale.x(i):.1f}" y="{scale.bottom + 16:.1f}" '
                f'text-anchor="middle" font-size="11" fill="{INK}">'
                f"{escape(_shorten(label, room))}</text>"
            )
    return "".join(parts)


def _lying(data: _Data, height: int) -> str:
    """Bars on their side: labels in full on the left, values along the bottom."""
    label_width = min(data.widest * CHAR_WIDTH + 8, WIDTH * 0.4)
    left, right = label_width + 8, WIDTH - RIGHT - 36  # room for the value after a bar
    top, bottom = TOP + 4, height - 40
    band = (bottom - top) / len(data.values)
    thick = min(band * 0.7, 28.0)

    def x(value: float) -> float:
        return left + (right - left) * value / data.ticks[-1]

    parts = []
    for tick in data.ticks:
        parts.append(
            f'<line x1="{x(tick):.1f}" y1="{top}" x2="{x(tick):.1f}" y2="{bottom}" '
            f'stroke="{GRID}" stroke-width="1"/>'
            f'<text class="tick" x="{x(tick):.1f}" y="{bottom + 16}" text-anchor="middle" '
            f'fill="{INK}">{_number(tick)}</text>'
        )
    if data.x_label:
        parts.append(
            f'<text class="axis-label" x="{label_width:.1f}" y="{top - 6}" '
            f'text-anchor="end" font-weight="bold" fill="{INK}">{escape(data.x_label)}</text>'
        )
    room = max(int(label_width / CHAR_WIDTH), 3)
    marks = []
    for i, (label, value) in enumerate(zip(data.labels, data.values, strict=True)):
        middle = top + band * (i + 0.5)
        marks.append(
            f'<text class="y-label" x="{label_width:.1f}" y="{middle + 4:.1f}" '
            f'text-anchor="end" font-size="11" fill="{INK}">'
            f"{escape(_shorten(label, room))}</text>"
            f'<rect class="bar" x="{left:.1f}" y="{middle - thick / 2:.1f}" '
            f'width="{x(value) - left:.1f}" height="{thick:.1f}" fill="{MARK}">'
            f"{data.mark_title(label, value)}</rect>"
            f'<text class="value" x="{x(value) + 4:.1f}" y="{middle + 4:.1f}" '
            f'font-size="11" fill="{INK}">{_number(value)}</text>'
        )
    parts.append(f'<g class="marks">{"".join(marks)}</g>')
    parts.append(
        f'<line x1="{left:.1f}" y1="{top}" x2="{left:.1f}" y2="{bottom}" stroke="{AXIS}" '
        f'stroke-width="1.5"/>'
        f'<text class="axis-label" x="{(left + right) / 2:.1f}" y="{height - 6}" '
        f'text-anchor="middle" fill="{INK}">{escape(data.unit.capitalize())}</text>'
    )
    return "".join(parts)


def _shorten(label: str, room: int) -> str:
    return label if len(label) <= room else label[: room - 1] + "…"


def _ticks(top: float, whole: bool) -> tuple[float, ...]:
    """Round gridline values from 0 to at least ``top``: steps of 1, 2, 2.5 or 5 × 10ⁿ
    (never 2.5, nor under 1, for whole numbers such as members)."""
    if top <= 0:
        return (0.0, 1.0)
    raw = top / (MAX_TICKS - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    steps = (1.0, 2.0, 5.0, 10.0) if whole else (1.0, 2.0, 2.5, 5.0, 10.0)
    step = next(m * magnitude for m in steps if m * magnitude >= raw)
    if whole:
        step = max(step, 1.0)
    count = math.ceil(top / step - 1e-9)
    return tuple(round(i * step, 10) for i in range(count + 1))


def _number(value: float) -> str:
    """3 → "3", 2.5 → "2.5", 1.25 → "1.25"."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text or "0"
