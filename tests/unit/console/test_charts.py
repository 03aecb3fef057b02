"""The Metrics tab's SVG graphs."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest

from runyard.console.charts import HEIGHT, LEFT, WIDTH, line_chart, nice_ceiling

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize(
    ("top", "ceiling"), [(0, 1), (0.3, 0.5), (1, 1), (1.1, 2), (4.4, 5), (69, 100), (101, 200), (1000, 1000)]
)
def test_the_y_axis_ends_on_a_round_number(top: float, ceiling: float) -> None:
    assert nice_ceiling(top) == pytest.approx(ceiling)


def test_no_data_says_so() -> None:
    svg = ElementTree.fromstring(line_chart([], 0, 3600, "Requests"))
    assert svg.find(f"{SVG}polyline") is None
    assert "No data" in [t.text for t in svg.iter(f"{SVG}text")]


def test_points_are_placed_by_time_and_value() -> None:
    svg = ElementTree.fromstring(line_chart([(0, 0), (1800, 5), (3600, 10)], 0, 3600, 'A "quoted" <title>'))
    assert svg.get("aria-label") == 'A "quoted" <title>'
    line = svg.find(f"{SVG}polyline")
    assert line is not None
    coordinates = [tuple(map(float, pair.split(","))) for pair in (line.get("points") or "").split()]
    xs, ys = [x for x, _ in coordinates], [y for _, y in coordinates]
    assert xs[0] == LEFT and xs[2] == pytest.approx(WIDTH - 8) and xs[1] == pytest.approx((xs[0] + xs[2]) / 2)
    assert ys[0] > ys[1] > ys[2] >= 0 and ys[0] < HEIGHT  # higher values are drawn higher up
