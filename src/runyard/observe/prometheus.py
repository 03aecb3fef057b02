"""The metrics in Prometheus' text exposition format (0.0.4), rendered by prometheus_client.

Counters count since Runyard started (Prometheus' rate() handles the reset a restart is); gauges are the last
sample. The CloudWatch-compatible API has the stored history.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

# Every name and label here is a legacy (ASCII) one, so generate_latest writes the classic 0.0.4 text format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "runyard_apprunner_"
SERVICE_LABELS = ("region", "service_name", "service_id")
INSTANCE_LABELS = (*SERVICE_LABELS, "instance")


@dataclass(frozen=True, slots=True)
class ServiceSample:
    region: str
    service_name: str
    service_id: str
    requests: int  # counters: totals since Runyard started
    status_2xx: int
    status_4xx: int
    status_5xx: int
    latency_ms_sum: float
    latency_count: int
    active_instances: int  # gauge


@dataclass(frozen=True, slots=True)
class InstanceSample:
    region: str
    service_name: str
    service_id: str
    instance_id: str
    cpu_percent: float | None  # None until two samples give a rate
    memory_percent: float


@dataclass(frozen=True, slots=True)
class Snapshot:
    services: tuple[ServiceSample, ...] = ()
    instances: tuple[InstanceSample, ...] = ()


class _SnapshotCollector(Collector):
    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            PREFIX + "requests", "HTTP requests the service received.", labels=SERVICE_LABELS
        )
        responses = CounterMetricFamily(
            PREFIX + "responses",
            "HTTP responses by status class (2xx, 4xx, 5xx).",
            labels=(*SERVICE_LABELS, "status_class"),
        )
        latency = SummaryMetricFamily(
            PREFIX + "request_latency_milliseconds",
            "Time to process HTTP requests (HAProxy's per-server averages, weighted by requests).",
            labels=SERVICE_LABELS,
        )
        active = GaugeMetricFamily(
            PREFIX + "active_instances", "Instances processing HTTP requests for the service.", labels=SERVICE_LABELS
        )
        cpu = GaugeMetricFamily(
            PREFIX + "cpu_utilization_percent",
            "CPU used in the last interval, percent of the instance's configured vCPUs.",
            labels=INSTANCE_LABELS,
        )
        memory = GaugeMetricFamily(
            PREFIX + "memory_utilization_percent",
            "Memory in use, percent of the instance's configured memory.",
            labels=INSTANCE_LABELS,
        )
        for s in self._snapshot.services:
            labels = [s.region, s.service_name, s.service_id]
            requests.add_metric(labels, s.requests)
            for status_class, value in (("2xx", s.status_2xx), ("4xx", s.status_4xx), ("5xx", s.status_5xx)):
                responses.add_metric([*labels, status_class], value)
            latency.add_metric(labels, count_value=s.latency_count, sum_value=s.latency_ms_sum)
            active.add_metric(labels, s.active_instances)
        for i in self._snapshot.instances:
            labels = [i.region, i.service_name, i.service_id, i.instance_id]
            if i.cpu_percent is not None:
                cpu.add_metric(labels, i.cpu_percent)
            memory.add_metric(labels, i.memory_percent)
        yield from (requests, responses, latency, active, cpu, memory)


def render(snapshot: Snapshot) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snapshot))
    return generate_latest(registry)
