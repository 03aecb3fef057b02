"""An instance of a service: one running copy of its revision, and the data plane slot that routes to it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

STARTING = "STARTING"  # spawned, not yet healthy: no traffic
ACTIVE = "ACTIVE"  # healthy and routed


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    KIND: ClassVar[str] = "apprunner.instance"
    instance_id: str
    service_arn: str
    account: str
    region: str
    status: str
    created_at: float
    artifact_id: str
    slot: int
    host: str = ""
    port: int = 0

    @property
    def key(self) -> str:
        return self.instance_id

    @property
    def name(self) -> str:
        return self.service_arn
