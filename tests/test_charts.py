"""Server-side SVG charts: well-formed, escaped, offline, and drawn to scale."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jinja2 import Environment
from markupsafe import Markup

from followthrough.domain.metrics import format_duration
from followthrough.reporting.charts import PALETTE, bar_chart, line_chart, nice_ticks, percent_ring

NS = "{http://www.w3.org/2000/svg}"
XMLNS = 'xmlns="http://www.w3.org/2000/svg"'
NASTY = 'checkout <script>alert("x")</script> & co'


def parse(svg: Markup) -> ET.Element:
    return ET.fromstring(str(svg))


def texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{NS}text")]


def is_accessible(root: ET.Element, title: str) -> bool:
    first = root[0]
    return (
        root.tag == f"{NS}svg"
        and root.get("role") == "img"
        and root.get("aria-label") == title
        and first.tag == f"{NS}title"
        and first.text == title
    )


def hours(value: float) -> str:
    return format_duration(timedelta(hours=value))


CHARTS = [
    lambda title: bar_chart(title, [(NASTY, 0.5), ("search", 0.25)]),
    lambda title: bar_chart(title, []),
    lambda title: line_chart(title, ["2026-10", NASTY], {NASTY: [1.0, 2.0], "SEV2": [None, 3.0]}),
    lambda title: line_chart(title, [], {}),
    lambda title: percent_ring(title, 0.6),
    lambda title: percent_ring(title, None),
]


@pytest.mark.parametrize("chart", CHARTS)
def test_every_chart_parses_is_labelled_and_references_nothing(
    chart: Callable[[str], Markup],
) -> None:
    svg = chart(NASTY)
    assert isinstance(svg, Markup)
    root = parse(svg)  # a label with <, & and quotes is escaped, so the SVG still parses
    assert is_accessible(root, NASTY)
    assert "<script>" not in str(svg)
    assert "http" not in str(svg).replace(XMLNS, "")
    assert root.get("font-family") == "system-ui, sans-serif"


def test_jinja_embeds_a_chart_without_escaping_it_again() -> None:
    template = Environment(autoescape=True).from_string("<div>{{ chart }}</div>")
    html = template.render(chart=bar_chart(NASTY, [(NASTY, 1.0)]))
    assert html.startswith("<div><svg ")
    assert "&amp;lt;" not in html  # escaped once, by the chart
    assert "checkout &lt;script&gt;" in html


def bar_widths(svg: Markup) -> list[float]:
    return [
        float(r.get("width", "nan"))
        for r in parse(svg).iter(f"{NS}rect")
        if r.get("class") == "bar"
    ]


def test_bars_are_drawn_to_scale_with_their_labels_and_values() -> None:
    svg = bar_chart(
        "Budget consumed",
        [("checkout", 0.8), ("search", 0.4), ("login", 0.1), ("idle", 0.0)],
        format_value=lambda v: f"{v:.0%}",
    )
    widths = bar_widths(svg)
    assert len(widths) == 4
    # 0.8 : 0.4 : 0.1 : 0 (to a tenth of a pixel)
    assert widths[1] == pytest.approx(widths[0] / 2, abs=0.1)
    assert widths[2] == pytest.approx(widths[0] / 8, abs=0.1)
    assert widths[3] == 0
    assert widths[0] > 300  # the largest bar uses the room there is
    shown = texts(parse(svg))
    for label, value in [("checkout", "80%"), ("search", "40%"), ("login", "10%"), ("idle", "0%")]:
        assert label in shown
        assert value in shown


def test_a_negative_value_draws_no_bar_but_is_written() -> None:
    svg = bar_chart("Change", [("up", 2.0), ("down", -1.0)])
    assert bar_widths(svg)[1] == 0
    assert "-1" in texts(parse(svg))


def test_all_zero_bars_draw_nothing_and_still_parse() -> None:
    assert bar_widths(bar_chart("Zero", [("a", 0.0), ("b", 0.0)])) == [0, 0]


def test_a_long_label_is_cut_but_kept_whole_in_the_tooltip() -> None:
    label = "a-service-name-that-is-far-too-long-to-fit"
    root = parse(bar_chart("Budget", [(label, 1.0)]))
    assert label not in texts(root)
    assert any(t.startswith("a-service-name") and t.endswith("…") for t in texts(root))
    tooltips = [t.text for g in root.iter(f"{NS}g") for t in g.iter(f"{NS}title")]
    assert f"{label}: 1" in tooltips


@pytest.mark.parametrize(
    "chart",
    [
        bar_chart("Empty", []),
        line_chart("Empty", [], {}),
        line_chart("Empty", ["2026-10", "2026-11"], {}),
        line_chart("Empty", ["2026-10", "2026-11"], {"SEV1": [None, None], "SEV2": [None, None]}),
        percent_ring("Empty", None),
    ],
)
def test_no_data_says_so(chart: Markup) -> None:
    root = parse(chart)
    assert texts(root)[1:] == ["No data"]  # after the chart's title
    assert not list(root.iter(f"{NS}polyline"))


def series_group(root: ET.Element, name: str) -> ET.Element:
    return next(g for g in root.iter(f"{NS}g") if g.get("data-series") == name)


def points(polyline: ET.Element) -> list[tuple[float, float]]:
    pairs = (p.split(",") for p in polyline.get("points", "").split())
    return [(float(x), float(y)) for x, y in pairs]


def test_a_none_leaves_a_gap_in_the_line() -> None:
    months = ["2026-08", "2026-09", "2026-10", "2026-11", "2026-12"]
    svg = line_chart(
        "Median time to resolve",
        months,
        {"SEV1": [1.0, 2.0, None, 3.0, 4.0], "SEV2": [1.0, None, 2.0, None, None]},
        format_value=hours,
    )
    root = parse(svg)
    sev1 = series_group(root, "SEV1")
    runs = [points(p) for p in sev1.iter(f"{NS}polyline")]
    # two runs, Aug-Sep and Nov-Dec; nothing crosses October
    assert [len(run) for run in runs] == [2, 2]
    (_, y1), (x2, y2) = runs[0]
    (x4, y4), (_, y5) = runs[1]
    assert x2 < x4
    assert y1 > y2 > y4 > y5  # larger values are drawn higher (smaller y)
    # SEV2 has no two neighbouring values: no line at all, a dot per value
    sev2 = series_group(root, "SEV2")
    assert not list(sev2.iter(f"{NS}polyline"))
    assert len(list(sev2.iter(f"{NS}circle"))) == 2
    assert [c.get("fill") for c in sev2.iter(f"{NS}circle")] == [PALETTE[1]] * 2


def test_the_line_chart_has_months_a_legend_and_three_to_five_ticks() -> None:
    months = ["2026-10", "2026-11", "2026-12"]
    svg = line_chart(
        "Median time to detect",
        months,
        {"SEV1": [0.25, 0.5, None], "SEV2": [1.5, None, 0.75]},
        format_value=hours,
    )
    root = parse(svg)
    shown = texts(root)
    assert all(month in shown for month in months)
    assert "SEV1" in shown and "SEV2" in shown
    ticks = [t.text for t in root.iter(f"{NS}text") if t.get("class") == "tick"]
    # values up to 1.5 h: steps of 0.5 h from 0 -> 0, 30 min, 1 h, 1.5 h
    assert ticks == ["0 s", "30 min", "1 h", "1.5 h"]


def test_a_series_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="series 'SEV1' has 2 values for 3 x labels"):
        line_chart("Trend", ["a", "b", "c"], {"SEV1": [1.0, 2.0]})


def test_a_single_month_is_a_dot() -> None:
    root = parse(line_chart("Trend", ["2026-10"], {"SEV1": [2.0]}))
    assert not list(root.iter(f"{NS}polyline"))
    assert len(list(root.iter(f"{NS}circle"))) == 1


def test_the_percent_ring_fills_its_share() -> None:
    root = parse(percent_ring("On time", 0.25))
    filled = next(c for c in root.iter(f"{NS}circle") if c.get("class") == "filled")
    drawn, circumference = (float(v) for v in filled.get("stroke-dasharray", "").split())
    assert drawn == pytest.approx(circumference / 4, abs=0.1)
    assert "25%" in texts(root)
    with pytest.raises(ValueError, match=r"share 1\.5 is not between 0 and 1"):
        percent_ring("On time", 1.5)


@given(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.floats(min_value=0, max_value=1e6, allow_nan=False),
)
def test_ticks_are_three_to_five_even_steps_covering_the_range(low: float, spread: float) -> None:
    high = low + spread
    ticks = nice_ticks(low, high)
    assert 3 <= len(ticks) <= 5
    slack = 1e-9 * max(abs(low), abs(high), 1.0)  # the last bit of a float's rounding
    assert ticks[0] <= low + slack and ticks[-1] >= high - slack
    steps = [b - a for a, b in itertools.pairwise(ticks)]
    assert all(step == pytest.approx(steps[0], rel=1e-6) for step in steps)
