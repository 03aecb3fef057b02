"""The Metrics tab: the service's AWS/AppRunner metrics over the last 1h/12h/24h, drawn as server-side SVG
(no chart library in the browser, nothing fetched from elsewhere)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from runyard.control.context import Scope
from runyard.control.model.service import Service
from runyard.observe.metrics import (
    ACTIVE_INSTANCES,
    NAMESPACE,
    REQUEST_LATENCY,
    REQUESTS,
    STATUS_2XX,
    STATUS_4XX,
    STATUS_5XX,
    MetricId,
    Metrics,
    service_dimensions,
)

# duration label -> (seconds shown, seconds per datapoint): at most 144 points per graph
RANGES: dict[str, tuple[int, int]] = {"1h": (3600, 60), "12h": (12 * 3600, 300), "24h": (24 * 3600, 600)}
# metric, title, statistic (as the App Runner console graphs them)
GRAPHS = (
    (REQUESTS, "Request count", "Sum"),
    (STATUS_2XX, "2xx status responses", "Sum"),
    (STATUS_4XX, "4xx status responses", "Sum"),
    (STATUS_5XX, "5xx status responses", "Sum"),
    (REQUEST_LATENCY, "Request latency (ms, average)", "Average"),
    (ACTIVE_INSTANCES, "Active instances (maximum)", "Maximum"),
)
WIDTH, HEIGHT = 360, 160
LEFT, RIGHT, TOP, BOTTOM = 40, 8, 10, 22  # plot margins for the axis labels


@dataclass(frozen=True, slots=True)
class Graph:
    metric: str
    title: str
    points: tuple[tuple[float, float], ...]  # (timestamp, value), oldest first
    svg: str


def graphs(metrics: Metrics, service: Service, duration: str, now: float) -> list[Graph]:
    seconds, period = RANGES[duration]
    start = now - seconds
    scope = Scope(service.account, service.region)
    dims = service_dimensions(service.name, service.service_id)
    drawn = []
    for metric, title, statistic in GRAPHS:
        datapoints = metrics.datapoints(scope, MetricId(NAMESPACE, metric, dims), start, now, period)
        points = tuple((float(d.timestamp), d.aggregate.statistic(statistic)) for d in datapoints)
        drawn.append(Graph(metric, title, points, line_chart(points, start, now, title)))
    return drawn


def nice_ceiling(top: float) -> float:
    """The smallest of 1, 2, 5 x 10^n at or above `top` (1 for an empty graph): round axis labels."""
    if top <= 0:
        return 1.0
    scale: float = 10.0 ** math.floor(math.log10(top))
    return next(step * scale for step in (1, 2, 5, 10) if step * scale >= top)


def _number(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.2g}"


def _clock(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%H:%M")


def line_chart(points: Sequence[tuple[float, float]], start: float, end: float, title: str) -> str:
    """An SVG line chart of `points` over [start, end]; the y axis starts at 0. Only numbers are interpolated."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = max((value for _, value in points), default=0.0)
    ceiling = nice_ceiling(top)
    span = max(end - start, 1.0)

    def x(timestamp: float) -> float:
        return LEFT + (min(max(timestamp, start), end) - start) / span * plot_w

    def y(value: float) -> float:
        return TOP + plot_h - value / ceiling * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{_escape(title)}">',
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 8}" text-anchor="end">{_number(ceiling)}</text>',
        f'<text x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end">0</text>',
        f'<text x="{LEFT}" y="{HEIGHT - 6}">{_clock(start)}</text>',
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 6}" text-anchor="end">{_clock(end)} UTC</text>',
    ]
    if not points:
        parts.append(f'<text x="{LEFT + plot_w / 2}" y="{TOP + plot_h / 2}" text-anchor="middle">No data</text>')
    else:
        coordinates = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in points)
        parts.append(f'<polyline class="line" points="{coordinates}"/>')
        parts += [f'<circle class="dot" cx="{x(t):.1f}" cy="{y(v):.1f}" r="1.8"/>' for t, v in points]
    parts.append("</svg>")
    return "".join(parts)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
