"""`runyard metrics`: durations, and the table printed from stored buckets."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from runyard.cli.metrics import parse_duration, service_report
from runyard.clock import FakeClock
from runyard.control.context import Scope
from runyard.control.model.service import ImageSource, Service, ServiceSpec, SourceSpec
from runyard.ids import apprunner_arn
from runyard.observe import metrics as m
from runyard.store.database import Database
from runyard.store.metrics import SqlMetricStore

ACCOUNT, REGION, SERVICE_ID = "000000000000", "us-east-1", "ac7ec8b51ff34746bcb6654e0bcb23da"
T0 = 1_800_000_000
WEB = Service(
    arn=apprunner_arn(REGION, ACCOUNT, "service", "web", SERVICE_ID),
    name="web",
    service_id=SERVICE_ID,
    account=ACCOUNT,
    region=REGION,
    status="RUNNING",
    created_at=T0,
    auto_scaling_configuration_arn=apprunner_arn(REGION, ACCOUNT, "autoscalingconfiguration", "DefaultConfiguration"),
    spec=ServiceSpec(source=SourceSpec(code=None, image=ImageSource("public.ecr.aws/x/y:latest", "ECR_PUBLIC"))),
)


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("1h", 3600), ("2d", 172800)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1", "h", "0m", "1w", "-1h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_duration(text)


def test_the_report_has_a_row_per_period_and_a_line_per_instance(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path}/runyard.db", clock=FakeClock())
    database.migrate()
    store = SqlMetricStore(database)
    clock = FakeClock(T0 + 600)
    metrics = m.Metrics(store, clock, m.Retention())
    scope = Scope(ACCOUNT, REGION)
    dims = m.service_dimensions("web", SERVICE_ID)
    instance = m.instance_dimensions("web", SERVICE_ID, "i-abc")
    samples = {m.REQUESTS: [4, 6, 5], m.STATUS_2XX: [4, 5, 5], m.STATUS_4XX: [0, 1, 0], m.ACTIVE_INSTANCES: [1, 1, 2]}
    for metric, values in samples.items():
        for i, value in enumerate(values):  # 50 s apart: the first two in one minute, the third in the next
            store.add(m.points_for(scope, metric, dims, T0 + 50 * i, m.Aggregate.of(value)))
    store.add(m.points_for(scope, m.MEMORY_UTILIZATION, instance, T0, m.Aggregate.of(12.5)))

    lines = service_report(metrics, WEB, start=T0, end=T0 + 600, period=60)
    table = [re.split(r"\s{2,}", line) for line in lines]
    assert lines[0] == f"Service web ({SERVICE_ID}), us-east-1: every 60 s"
    assert table[1][:5] == ["Time (UTC)", "Requests", "2xx", "4xx", "5xx"]
    assert table[2] == ["2027-01-15 08:00:00", "10", "9", "1", "-", "-", "-", "1"]
    assert table[3] == ["2027-01-15 08:01:00", "5", "5", "0", "-", "-", "-", "2"]
    assert table[-2] == ["Instance", "CPU % (avg)", "Memory % (avg)"]
    assert table[-1] == ["i-abc", "-", "12.50"]
    assert service_report(metrics, WEB, start=T0 + 3600, end=T0 + 7200, period=60)[1].startswith("No metrics")
