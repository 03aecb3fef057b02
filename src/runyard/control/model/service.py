"""The Service resource: what other resources need to know of it (its references and status).

Running services arrive with the workload runtime; until then no Service is ever stored, and the
queries below simply find none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

LIVE_STATUSES = frozenset({"CREATE_FAILED", "RUNNING", "DELETE_FAILED", "PAUSED", "OPERATION_IN_PROGRESS"})


@dataclass(frozen=True, slots=True)
class Service:
    KIND: ClassVar[str] = "apprunner.service"
    arn: str
    name: str
    service_id: str
    account: str
    region: str
    status: str
    created_at: float
    auto_scaling_configuration_arn: str
    observability_configuration_arn: str | None = None
    vpc_connector_arn: str | None = None
    connection_arn: str | None = None
    deleted_at: float | None = None

    @property
    def key(self) -> str:
        return self.arn

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES
