"""The control plane's view of the log store: a service's events and deployment logs (the ServiceLogs port)."""

from __future__ import annotations

from runyard.control.model.service import Service
from runyard.observe.logs import (
    EVENTS_STREAM,
    LogStore,
    application_log_group,
    deployment_stream,
    service_log_group,
)


class ServiceLogBook:
    def __init__(self, store: LogStore) -> None:
        self._store = store

    def deployment(self, service: Service, operation_id: str, line: str) -> None:
        self._store.append(service_log_group(service.name, service.service_id), deployment_stream(operation_id), line)

    def event(self, service: Service, message: str) -> None:
        self._store.append(service_log_group(service.name, service.service_id), EVENTS_STREAM, message)

    def remove(self, service: Service) -> None:
        self._store.delete_group(service_log_group(service.name, service.service_id))
        self._store.delete_group(application_log_group(service.name, service.service_id))
