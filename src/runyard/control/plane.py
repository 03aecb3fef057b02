"""The control plane as one object: the commands and queries the API and the console both call."""

from __future__ import annotations

from runyard.control.autoscaling import AutoScaling
from runyard.control.codeconnections import CodeConnections
from runyard.control.connections import Connections
from runyard.control.context import Deps
from runyard.control.credentials import CredentialVault
from runyard.control.engine import OperationEngine
from runyard.control.networking import VpcConnectors, VpcIngressConnections
from runyard.control.observability import Observability
from runyard.control.ports import ConnectionProviders, Sealer, ServiceEvents, ServiceLogs, Workloads
from runyard.control.services import Services
from runyard.control.tags import Tagging


class ControlPlane:
    def __init__(
        self,
        deps: Deps,
        *,
        workloads: Workloads,
        logs: ServiceLogs,
        events: ServiceEvents,
        account: str,
        pool_size: int,
        deleted_retention: float,
        providers: ConnectionProviders | None = None,
        sealer: Sealer | None = None,
    ) -> None:
        self.deps = deps
        self.engine = OperationEngine(
            deps, workloads, logs, events, account=account, deleted_retention=deleted_retention
        )
        vault = CredentialVault(deps, providers, sealer, events)
        self.connections = Connections(deps, vault)
        self.autoscaling = AutoScaling(deps)
        self.observability = Observability(deps)
        self.vpc_connectors = VpcConnectors(deps)
        self.vpc_ingress = VpcIngressConnections(deps)
        self.services = Services(
            deps, self.autoscaling, self.observability, workloads, self.engine, events, pool_size=pool_size
        )
        self.codeconnections = CodeConnections(deps, vault)
        self.tagging = Tagging(deps)
