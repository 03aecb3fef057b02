"""`runyard metrics`: a service's AWS/AppRunner metrics as a table, read from the data directory's database.

The same store and query semantics as the CloudWatch-compatible API (GetMetricStatistics), so the numbers agree.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from runyard.cli.common import settings_from
from runyard.cli.logs import find_service
from runyard.config import Settings
from runyard.control.context import Scope
from runyard.control.model.service import Service
from runyard.observe import metrics as m

_DURATION = re.compile(r"(\d+)([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# column title, metric, statistic
SERVICE_COLUMNS = (
    ("Requests", m.REQUESTS, "Sum"),
    ("2xx", m.STATUS_2XX, "Sum"),
    ("4xx", m.STATUS_4XX, "Sum"),
    ("5xx", m.STATUS_5XX, "Sum"),
    ("Latency ms (avg)", m.REQUEST_LATENCY, "Average"),
    ("Latency ms (max)", m.REQUEST_LATENCY, "Maximum"),
    ("ActiveInstances", m.ACTIVE_INSTANCES, "Average"),
)
INSTANCE_COLUMNS = (("CPU % (avg)", m.CPU_UTILIZATION, "Average"), ("Memory % (avg)", m.MEMORY_UTILIZATION, "Average"))


def parse_duration(text: str) -> int:
    """`90s`, `15m`, `1h`, `2d` -> seconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise click.BadParameter(f"not a duration like 30m, 1h or 2d: {text!r}", param_hint="--since")
    return int(match.group(1)) * _SECONDS[match.group(2)]


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    line = "  ".join
    return [
        line(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *rows]
    ]


def service_report(metrics: m.Metrics, service: Service, *, start: float, end: float, period: int) -> list[str]:
    """The lines `runyard metrics` prints: one row per period with data, then one per instance."""
    scope = Scope(service.account, service.region)
    dims = m.service_dimensions(service.name, service.service_id)
    columns: dict[int, dict[str, float]] = {}
    for title, metric, statistic in SERVICE_COLUMNS:
        for point in metrics.datapoints(scope, m.MetricId(m.NAMESPACE, metric, dims), start, end, period):
            columns.setdefault(point.timestamp, {})[title] = point.aggregate.statistic(statistic)
    lines = [f"Service {service.name} ({service.service_id}), {service.region}: every {period} s"]
    if not columns:
        return [*lines, "No metrics in this time range yet (they are sampled every 10 s while Runyard runs)."]
    header = ["Time (UTC)", *(title for title, _, _ in SERVICE_COLUMNS)]
    rows = [
        [_time(stamp), *(_number(columns[stamp].get(title)) for title, _, _ in SERVICE_COLUMNS)]
        for stamp in sorted(columns)
    ]
    lines += _table(header, rows)
    instance_rows = []  # each instance's averages over the whole range
    for series in metrics.list_metrics(
        scope,
        namespace=m.NAMESPACE,
        metric=m.MEMORY_UTILIZATION,
        filters=[(m.SERVICE_ID, service.service_id)],
        recently_active=False,
    ):
        instance = dict(series.dimensions).get(m.INSTANCE, "-")
        cells = [instance]
        for _, metric, statistic in INSTANCE_COLUMNS:
            metric_id = m.MetricId(m.NAMESPACE, metric, series.dimensions)
            points = metrics.datapoints(scope, metric_id, start, end, period)
            total = m.merge_all(point.aggregate for point in points)
            cells.append(_number(total.statistic(statistic) if total else None))
        if cells[1:] != ["-", "-"]:
            instance_rows.append(cells)
    if instance_rows:
        lines += ["", *_table(["Instance", *(title for title, _, _ in INSTANCE_COLUMNS)], instance_rows)]
    return lines


def _time(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


@click.command()
@click.argument("service")
@click.option("--region", help="The service's region [the settings' region].")
@click.option("--since", default="1h", show_default=True, help="How far back: 30m, 1h, 2d ...")
@click.option("--period", default=60, show_default=True, type=int, help="Seconds per row: a multiple of 10.")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where Runyard keeps everything [~/.runyard].",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="A TOML settings file (below environment variables and flags).",
)
def metrics(service: str, region: str | None, since: str, period: int, config_file: Path | None, **flags: Any) -> None:
    """Print a service's metrics (AWS/AppRunner): requests, status classes, latency and active instances per
    period, and each instance's CPU and memory utilization. SERVICE is a service name or ARN."""
    span = parse_duration(since)
    try:
        m.check_period(period)
    except m.InvalidParameterValue as error:
        raise click.BadParameter(error.message, param_hint="--period") from None
    settings = settings_from(flags, config_file)
    found = find_service(settings, service, region)
    for line in report(settings, found, span=span, period=period, now=time.time):
        click.echo(line)


def report(settings: Settings, service: Service, *, span: int, period: int, now: Callable[[], float]) -> list[str]:
    from runyard.app import build  # the composition root: only this command needs it, only now

    runyard = build(settings)
    try:
        runyard.database.migrate()  # a data directory from before metrics existed gets its table
        end = now()
        return service_report(runyard.metrics, service, start=end - span, end=end + 1, period=period)
    finally:
        runyard.stop()
