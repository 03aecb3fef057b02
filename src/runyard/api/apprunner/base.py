"""What every App Runner provider mixin shares."""

from __future__ import annotations

from runyard.control.plane import ControlPlane


class ProviderBase:
    def __init__(self, control: ControlPlane, *, http_port: int) -> None:
        self.control = control
        self.http_port = http_port

    def service_url(self, label: str, region: str) -> str:
        host = f"{label}.{region}.{self.control.deps.domain_suffix}"
        return host if self.http_port == 80 else f"{host}:{self.http_port}"
