"""Charts as inline SVG, drawn on the server: no scripts, no web fonts, nothing fetched.

Every function returns markupsafe.Markup, so Jinja embeds it as is; every piece of text in it
(titles, labels, values) is escaped here. Each chart carries a <title>, role="img" and an
aria-label for screen readers, and a <desc> listing its values.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from html import escape

from markupsafe import Markup

from followthrough.domain.metrics import format_percent

# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies, and dark enough
# to read on white.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
TEXT = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
FONT = "system-ui, sans-serif"
FONT_SIZE = 12  # px
TITLE_SIZE = 14  # px
CHAR_WIDTH = 7  # px: a rough average glyph width at FONT_SIZE, for laying out text
LABEL_CHARS = 28  # longer bar labels are cut (the full label stays in the bar's tooltip)

ValueFormat = Callable[[float], str]


def _plain(value: float) -> str:
    return f"{value:g}"


def _num(value: float) -> str:
    # Coordinates: one decimal is finer than a pixel and keeps the SVG small.
    return f"{value:.1f}".removesuffix(".0")


def _text(content: str, x: float, y: float, **attributes: str | float) -> str:
    # Keyword names to SVG attributes: text_anchor -> text-anchor, class_ -> class.
    extra = "".join(
        f' {name.rstrip("_").replace("_", "-")}="{escape(str(v))}"'
        for name, v in attributes.items()
    )
    return f'<text x="{_num(x)}" y="{_num(y)}"{extra}>{escape(content)}</text>'


def _svg(title: str, width: int, height: int, body: list[str], desc: str = "") -> Markup:
    label = escape(title)
    description = f"<desc>{escape(desc)}</desc>" if desc else ""
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{label}" '
        f'font-family="{FONT}" font-size="{FONT_SIZE}px" fill="{TEXT}">'
        f"<title>{label}</title>{description}"
        + _text(title, 0, TITLE_SIZE + 2, font_size=f"{TITLE_SIZE}px", font_weight="600")
        + "".join(body)
        + "</svg>"
    )


def no_data(title: str, width: int = 640) -> Markup:
    """A chart-sized box saying there is nothing to draw."""
    height = 80
    body = [_text("No data", width / 2, 54, text_anchor="middle", fill=MUTED)]
    return _svg(title, width, height, body, desc="No data")


def _shorten(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def bar_chart(
    title: str,
    bars: list[tuple[str, float]],
    *,
    format_value: ValueFormat = _plain,
    width: int = 640,
) -> Markup:
    """Horizontal bars, longest for the largest value, each with its label and formatted value.

    Negative values draw no bar (their value is still written).
    """
    if not bars:
        return no_data(title, width)
    row, bar_height, top = 26, 18, 34
    label_width = min(LABEL_CHARS, max(len(label) for label, _ in bars)) * CHAR_WIDTH + 12
    value_width = max(len(format_value(v)) for _, v in bars) * CHAR_WIDTH + 12
    room = max(width - label_width - value_width, 10)
    largest = max(max(v for _, v in bars), 0.0)
    body = []
    for n, (label, value) in enumerate(bars):
        y = top + n * row
        length = room * max(value, 0.0) / largest if largest > 0 else 0.0
        shown = format_value(value)
        body.append(
            f"<g><title>{escape(label)}: {escape(shown)}</title>"
            + _text(_shorten(label), label_width - 8, y + 13, text_anchor="end")
            + f'<rect class="bar" x="{label_width}" y="{y}" width="{_num(length)}" '
            f'height="{bar_height}" fill="{PALETTE[0]}" rx="2"/>'
            + _text(shown, label_width + length + 6, y + 13)
            + "</g>"
        )
    desc = "; ".join(f"{label}: {format_value(value)}" for label, value in bars)
    return _svg(title, width, top + len(bars) * row + 4, body, desc)


def nice_ticks(low: float, high: float) -> list[float]:
    """3 to 5 round axis values (steps of 1, 2, 2.5 or 5 times a power of ten) covering
    [low, high]."""
    low, high = min(low, high), max(low, high)
    if high - low <= 1e-9 * max(abs(low), abs(high), 1.0):
        # A flat line (or one too flat for float steps): give it an axis around its value.
        high = low + (abs(low) if abs(low) > 1e-6 else 1.0)
    magnitude = 10.0 ** math.floor(math.log10((high - low) / 4))
    for factor in (1.0, 2.0, 2.5, 5.0, 10.0, 20.0, 25.0, 50.0):
        step = factor * magnitude
        first, last = math.floor(low / step), math.ceil(high / step)
        if last - first + 1 <= 5:
            break
    # Rounded to the step's precision: in binary floats 3 * 0.1 is 0.30000000000000004.
    places = max(0, 2 - math.floor(math.log10(step)))
    ticks = [round(k * step, places) for k in range(first, last + 1)]
    while len(ticks) < 3:
        ticks.append(round(ticks[-1] + step, places))
    return ticks


def _legend(names: list[str], width: int, y: float) -> tuple[list[str], float]:
    """Swatch and name per series, wrapping into rows; the parts and the height used."""
    parts: list[str] = []
    x, row = 0.0, 0
    for n, name in enumerate(names):
        entry = 22 + len(name) * CHAR_WIDTH + 16
        if x > 0 and x + entry > width:
            x, row = 0.0, row + 1
        top = y + row * 20
        colour = PALETTE[n % len(PALETTE)]
        parts.append(
            f'<rect x="{_num(x)}" y="{_num(top)}" width="14" height="4" fill="{colour}"/>'
            + _text(name, x + 20, top + 6)
        )
        x += entry
    return parts, (row + 1) * 20


def line_chart(
    title: str,
    x_labels: list[str],
    series: dict[str, list[float | None]],
    *,
    format_value: ValueFormat = _plain,
    width: int = 640,
    height: int = 300,
) -> Markup:
    """One line per series over x_labels (e.g. months); a None leaves a gap in its line."""
    for name, values in series.items():
        if len(values) != len(x_labels):
            raise ValueError(
                f"series '{name}' has {len(values)} values for {len(x_labels)} x labels"
            )
    present = [v for values in series.values() for v in values if v is not None]
    if not x_labels or not present:
        return no_data(title, width)
    ticks = nice_ticks(min(min(present), 0.0), max(present))
    axis_width = max(len(format_value(t)) for t in ticks) * CHAR_WIDTH + 10
    # Inset the first and last x positions by half a label, so their labels stay inside.
    inset = max(len(label) for label in x_labels) * CHAR_WIDTH / 2 + 4
    left, right, top, plot_height = axis_width + inset, width - inset, 34, height - 34 - 40
    bottom = top + plot_height

    def x_of(n: int) -> float:
        if len(x_labels) == 1:
            return (left + right) / 2
        return left + (right - left) * n / (len(x_labels) - 1)

    def y_of(value: float) -> float:
        return bottom - plot_height * (value - ticks[0]) / (ticks[-1] - ticks[0])

    body = []
    for tick in ticks:
        y = y_of(tick)
        body.append(
            f'<line x1="{_num(axis_width)}" y1="{_num(y)}" x2="{_num(width)}" y2="{_num(y)}" '
            f'stroke="{GRID}"/>'
            + _text(
                format_value(tick),
                axis_width - 6,
                y + 4,
                class_="tick",
                text_anchor="end",
                fill=MUTED,
            )
        )
    # Only as many x labels as fit side by side, so they do not overlap.
    label_room = max(len(label) for label in x_labels) * CHAR_WIDTH + 12
    every = math.ceil(len(x_labels) / max(1, int((right - left) // label_room) + 1))
    for n, label in enumerate(x_labels):
        if n % every == 0:
            body.append(_text(label, x_of(n), bottom + 16, text_anchor="middle", fill=MUTED))
    for n, (name, values) in enumerate(series.items()):
        body.append(_line(name, values, PALETTE[n % len(PALETTE)], x_of, y_of, format_value))
    legend, legend_height = _legend(list(series), width, bottom + 28)
    body.extend(legend)
    desc = "; ".join(
        f"{name}: "
        + ", ".join(
            f"{x} {'no data' if v is None else format_value(v)}"
            for x, v in zip(x_labels, values, strict=True)
        )
        for name, values in series.items()
    )
    return _svg(title, width, int(bottom + 28 + legend_height), body, desc)


def _line(
    name: str,
    values: list[float | None],
    colour: str,
    x_of: Callable[[int], float],
    y_of: Callable[[float], float],
    format_value: ValueFormat,
) -> str:
    """A series: a polyline per run of values without a None, and a dot on every value."""
    runs: list[list[str]] = [[]]
    dots = []
    for n, value in enumerate(values):
        if value is None:
            runs.append([])
            continue
        point = f"{_num(x_of(n))},{_num(y_of(value))}"
        runs[-1].append(point)
        dots.append(
            f'<circle cx="{_num(x_of(n))}" cy="{_num(y_of(value))}" r="3" fill="{colour}">'
            f"<title>{escape(name)}: {escape(format_value(value))}</title></circle>"
        )
    lines = [
        f'<polyline points="{" ".join(run)}" fill="none" stroke="{colour}" stroke-width="2"/>'
        for run in runs
        if len(run) >= 2
    ]
    return f'<g class="series" data-series="{escape(name)}">' + "".join(lines + dots) + "</g>"


def percent_ring(title: str, share: float | None, *, size: int = 120) -> Markup:
    """A ring filled to `share` (0 to 1) with the percentage in the middle."""
    if share is None:
        return no_data(title, max(size, 160))
    if not 0 <= share <= 1:
        raise ValueError(f"share {share} is not between 0 and 1")
    radius, stroke = size / 2 - 10, 10
    centre_x, centre_y = size / 2, 24 + size / 2
    circumference = 2 * math.pi * radius
    filled = circumference * share
    percent = format_percent(share)
    body = [
        f'<circle cx="{_num(centre_x)}" cy="{_num(centre_y)}" r="{_num(radius)}" fill="none" '
        f'stroke="{GRID}" stroke-width="{stroke}"/>',
        # Starts at twelve o'clock and runs clockwise.
        f'<circle class="filled" cx="{_num(centre_x)}" cy="{_num(centre_y)}" r="{_num(radius)}" '
        f'fill="none" stroke="{PALETTE[0]}" stroke-width="{stroke}" '
        f'stroke-dasharray="{_num(filled)} {_num(circumference)}" '
        f'transform="rotate(-90 {_num(centre_x)} {_num(centre_y)})"/>',
        _text(percent, centre_x, centre_y + 6, text_anchor="middle", font_size="18px"),
    ]
    return _svg(title, max(size, len(title) * 9), int(24 + size + 4), body, desc=percent)
