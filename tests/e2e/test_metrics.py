"""Metrics end to end: requests sent through the real data plane, read back through boto3's `cloudwatch` client
(Smithy RPC v2 CBOR), the AWS CLI, GET /metrics, and again after a graceful restart of Runyard."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import botocore.exceptions
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import RunyardProcess, get_via_dataplane, git_repo, wait_for_status

AWS = str(Path(sys.executable).parent / "aws")
NAMESPACE = "AWS/AppRunner"
T = TypeVar("T")

APP = """\
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        status = 200 if self.path == "/" else 404
        body = b"hello" if status == 200 else b"no such page"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


def eventually(probe: Callable[[], T | None], *, timeout: float = 40.0, what: str = "metrics") -> T:
    """Poll until `probe` returns something (a collection runs every 10 s)."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout} s")
        time.sleep(1)


def deploy(server: RunyardProcess, region: str, repository: Path, name: str) -> dict[str, Any]:
    client = server.client("apprunner", region)
    values = {"Runtime": "PYTHON_3", "StartCommand": "python server.py"}
    arn = client.create_service(
        ServiceName=name,
        SourceConfiguration={
            "CodeRepository": {
                "RepositoryUrl": f"file://{repository}",
                "SourceCodeVersion": {"Type": "BRANCH", "Value": "main"},
                "CodeConfiguration": {"ConfigurationSource": "API", "CodeConfigurationValues": values},
            },
            "AutoDeploymentsEnabled": False,
        },
        InstanceConfiguration={"Cpu": "1 vCPU", "Memory": "2 GB"},
    )["Service"]["ServiceArn"]
    service = wait_for_status(client, arn)
    assert service["Status"] == "RUNNING"
    return service


def service_dimensions(service: dict[str, Any]) -> list[dict[str, str]]:
    return [
        {"Name": "ServiceName", "Value": service["ServiceName"]},
        {"Name": "ServiceID", "Value": service["ServiceId"]},
    ]


def total(cloudwatch: Any, service: dict[str, Any], metric: str, statistic: str = "Sum", period: int = 60) -> float:
    now = time.time()
    answer = cloudwatch.get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName=metric,
        Dimensions=service_dimensions(service),
        StartTime=now - 900,
        EndTime=now + 60,
        Period=period,
        Statistics=[statistic],
    )
    return float(sum(point[statistic] for point in answer["Datapoints"]))


def memory_dims_instance(dims: list[dict[str, str]]) -> str:
    return next(d["Value"] for d in dims if d["Name"] == "Instance")


def prometheus_samples(server: RunyardProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = httpx.get(f"{server.endpoint}/metrics", timeout=10)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def test_requests_are_counted_and_read_back_everywhere_and_survive_a_restart(
    fresh_server: RunyardProcess, region: str, tmp_path: Path
) -> None:
    server = fresh_server.start()
    service = deploy(server, region, git_repo(tmp_path / "app", {"server.py": APP}), "metered")
    sent_ok, sent_missing = 7, 3
    for _ in range(sent_ok):
        assert get_via_dataplane(server, service["ServiceUrl"]).status_code == 200
    for _ in range(sent_missing):
        assert get_via_dataplane(server, service["ServiceUrl"], "/missing").status_code == 404
    sent = sent_ok + sent_missing
    cloudwatch = server.client("cloudwatch", region)

    # boto3 (Smithy RPC v2 CBOR): the service metrics
    eventually(lambda: total(cloudwatch, service, "Requests") == sent or None, what=f"Requests == {sent}")
    assert total(cloudwatch, service, "2xxStatusResponses") == sent_ok
    assert total(cloudwatch, service, "4xxStatusResponses") == sent_missing
    assert total(cloudwatch, service, "5xxStatusResponses") == 0
    assert total(cloudwatch, service, "Requests", period=10) == sent  # the 10 s resolution agrees
    assert total(cloudwatch, service, "RequestLatency", "SampleCount") == sent
    assert total(cloudwatch, service, "ActiveInstances", "Maximum") == 1

    # ListMetrics: the spec's names and dimensions, instance metrics with the instance id
    listed = cloudwatch.list_metrics(
        Namespace=NAMESPACE, Dimensions=[{"Name": "ServiceID", "Value": service["ServiceId"]}]
    )
    names = {metric["MetricName"] for metric in listed["Metrics"]}
    assert {"Requests", "2xxStatusResponses", "4xxStatusResponses", "5xxStatusResponses", "RequestLatency"} <= names
    assert {"ActiveInstances", "MemoryUtilization"} <= names
    memory_dims = next(m["Dimensions"] for m in listed["Metrics"] if m["MetricName"] == "MemoryUtilization")
    assert {d["Name"] for d in memory_dims} == {"ServiceName", "ServiceID", "Instance"}
    assert cloudwatch.list_metrics(Namespace="AWS/EC2")["Metrics"] == []

    def instance_stat(metric: str) -> float | None:
        now = time.time()
        points = cloudwatch.get_metric_statistics(
            Namespace=NAMESPACE,
            MetricName=metric,
            Dimensions=memory_dims,
            StartTime=now - 900,
            EndTime=now + 60,
            Period=60,
            Statistics=["Average", "Maximum"],
            Unit="Percent",
        )["Datapoints"]
        return points[0]["Average"] if points else None

    memory = eventually(lambda: instance_stat("MemoryUtilization"))
    assert 0 < memory < 100  # a small Python server in 2 GB
    cpu = eventually(lambda: instance_stat("CPUUtilization"), what="CPUUtilization")
    assert 0 <= cpu <= 100

    # GetMetricData, paged one datapoint at a time (10 s periods)
    now = time.time()
    queries = [
        {
            "Id": "requests",
            "MetricStat": {
                "Metric": {"Namespace": NAMESPACE, "MetricName": "Requests", "Dimensions": service_dimensions(service)},
                "Period": 10,
                "Stat": "Sum",
            },
            "Label": "all requests",
        }
    ]
    values: list[float] = []
    pages = 0
    token: dict[str, str] = {}
    while True:
        page = cloudwatch.get_metric_data(
            MetricDataQueries=queries, StartTime=now - 900, EndTime=now + 60, MaxDatapoints=1, **token
        )
        pages += 1
        (result,) = page["MetricDataResults"]
        assert result["Id"] == "requests" and result["Label"] == "all requests"
        values += result["Values"]
        if "NextToken" not in page:
            assert result["StatusCode"] == "Complete"
            break
        assert result["StatusCode"] == "PartialData"
        token = {"NextToken": page["NextToken"]}
    assert sum(values) == sent and pages > 1
    ascending = cloudwatch.get_metric_data(
        MetricDataQueries=queries, StartTime=now - 900, EndTime=now + 60, ScanBy="TimestampAscending"
    )["MetricDataResults"][0]
    assert ascending["Timestamps"] == sorted(ascending["Timestamps"]) and sum(ascending["Values"]) == sent

    # the AWS CLI
    cli = subprocess.run(
        [
            AWS,
            "cloudwatch",
            "get-metric-statistics",
            "--endpoint-url",
            server.endpoint,
            "--namespace",
            NAMESPACE,
            "--metric-name",
            "Requests",
            "--dimensions",
            f"Name=ServiceName,Value={service['ServiceName']}",
            f"Name=ServiceID,Value={service['ServiceId']}",
            "--start-time",
            str(int(now - 900)),
            "--end-time",
            str(int(now + 60)),
            "--period",
            "60",
            "--statistics",
            "Sum",
            "--output",
            "json",
        ],
        env=server.cli_env(region),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    assert sum(point["Sum"] for point in json.loads(cli.stdout)["Datapoints"]) == sent

    # Prometheus text at /metrics
    labels = (("region", region), ("service_id", service["ServiceId"]), ("service_name", "metered"))
    samples = prometheus_samples(server)
    assert samples[("runyard_apprunner_requests_total", labels)] == sent
    assert samples[("runyard_apprunner_responses_total", (*labels, ("status_class", "2xx")))] == sent_ok
    assert samples[("runyard_apprunner_responses_total", (*labels, ("status_class", "4xx")))] == sent_missing
    assert samples[("runyard_apprunner_active_instances", labels)] == 1
    assert samples[("runyard_apprunner_request_latency_milliseconds_count", labels)] == sent

    # a graceful restart keeps the history
    server.stop()
    server.start()
    assert total(server.client("cloudwatch", region), service, "Requests") == sent

    # `runyard metrics`: one row per minute; the Requests column adds up to what was sent
    printed = subprocess.run(
        [sys.executable, "-m", "runyard", "metrics", "metered", "--region", region, "--data-dir", str(server.data_dir)],
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    header = re.split(r"\s{2,}", lines[1])
    assert header[:5] == ["Time (UTC)", "Requests", "2xx", "4xx", "5xx"]
    rows = [re.split(r"\s{2,}", line) for line in lines[2:] if re.match(r"\d{4}-", line)]
    assert sum(float(row[1]) for row in rows) == sent
    assert sum(float(row[3]) for row in rows) == sent_missing
    assert any(line.startswith(memory_dims_instance(memory_dims)) for line in lines)


def test_cloudwatch_errors_are_modelled(server: RunyardProcess, region: str) -> None:
    cloudwatch = server.client("cloudwatch", region)
    now = time.time()
    metric: dict[str, Any] = dict(Namespace=NAMESPACE, MetricName="Requests", EndTime=now)
    request: dict[str, Any] = dict(metric, StartTime=now - 600, Statistics=["Sum"])
    with pytest.raises(cloudwatch.exceptions.InvalidParameterValueException, match="Period"):
        cloudwatch.get_metric_statistics(Period=15, **request)
    with pytest.raises(cloudwatch.exceptions.InvalidParameterCombinationException, match="p99"):
        cloudwatch.get_metric_statistics(Period=60, StartTime=now - 600, ExtendedStatistics=["p99"], **metric)
    with pytest.raises(cloudwatch.exceptions.InvalidParameterCombinationException, match="1440"):
        cloudwatch.get_metric_statistics(Period=10, StartTime=now - 86400, Statistics=["Sum"], **metric)
    # another namespace has no data, as in CloudWatch
    assert cloudwatch.get_metric_statistics(Period=60, **{**request, "Namespace": "AWS/EC2"})["Datapoints"] == []
    with pytest.raises(botocore.exceptions.ClientError, match="Expression"):
        cloudwatch.get_metric_data(
            MetricDataQueries=[{"Id": "m", "Expression": "SUM(METRICS())"}], StartTime=now - 600, EndTime=now
        )
    with pytest.raises(cloudwatch.exceptions.InvalidNextToken):
        cloudwatch.get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "m",
                    "MetricStat": {
                        "Metric": {"Namespace": NAMESPACE, "MetricName": "Requests"},
                        "Period": 60,
                        "Stat": "Sum",
                    },
                }
            ],
            StartTime=now - 600,
            EndTime=now,
            NextToken="not-a-token",
        )
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        cloudwatch.put_metric_data(Namespace="Custom", MetricData=[{"MetricName": "x", "Value": 1.0}])
    assert refused.value.response["Error"]["Code"] == "InvalidAction"
    assert "PutMetricData" in refused.value.response["Error"]["Message"]


def test_requests_the_activator_answers_count_for_the_service(
    server: RunyardProcess, region: str, tmp_path: Path
) -> None:
    service = deploy(server, region, git_repo(tmp_path / "app", {"server.py": APP}), "sleepy")
    apprunner = server.client("apprunner", region)
    apprunner.pause_service(ServiceArn=service["ServiceArn"])
    assert wait_for_status(apprunner, service["ServiceArn"])["Status"] == "PAUSED"
    for _ in range(2):
        assert get_via_dataplane(server, service["ServiceUrl"]).status_code == 503  # the paused page
    cloudwatch = server.client("cloudwatch", region)
    eventually(lambda: total(cloudwatch, service, "Requests") == 2 or None, what="Requests == 2")
    assert total(cloudwatch, service, "5xxStatusResponses") == 2
    assert total(cloudwatch, service, "2xxStatusResponses") == 0

    def latest_active() -> float | None:
        now = time.time()
        points = cloudwatch.get_metric_statistics(
            Namespace=NAMESPACE,
            MetricName="ActiveInstances",
            Dimensions=service_dimensions(service),
            StartTime=now - 60,
            EndTime=now + 10,
            Period=10,
            Statistics=["Maximum"],
        )["Datapoints"]
        return max(points, key=lambda p: p["Timestamp"])["Maximum"] if points else None

    assert eventually(lambda: latest_active() == 0 or None, what="ActiveInstances 0 while paused")
