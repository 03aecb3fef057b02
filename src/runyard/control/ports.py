"""The interfaces the control plane needs from the outside: store/ implements the store, app.py wires the rest."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import ClassVar, Protocol, TypeVar

from runyard.control.model.service import Revision, Service, ServiceSpec


class Resource(Protocol):
    KIND: ClassVar[str]

    @property
    def key(self) -> str: ...
    @property
    def account(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def created_at(self) -> float: ...


R = TypeVar("R", bound=Resource)


class Repository(Protocol[R]):
    def get(self, key: str) -> R | None: ...

    def find(self, *, account: str, region: str | None = None, name: str | None = None) -> list[R]:
        """Matching resources in creation order (region None: every region)."""
        ...

    def add(self, item: R) -> None: ...
    def save(self, item: R) -> None: ...
    def remove(self, key: str) -> None: ...


Tag = tuple[str, str]


class TagStore(Protocol):
    def get(self, kind: str, key: str) -> list[Tag]: ...
    def merge(self, kind: str, key: str, tags: list[Tag]) -> None: ...
    def remove(self, kind: str, key: str, tag_keys: list[str]) -> None: ...
    def clear(self, kind: str, key: str) -> None: ...


class UnitOfWork(Protocol):
    tags: TagStore

    def repo(self, cls: type[R]) -> Repository[R]: ...


class Store(Protocol):
    def read(self) -> AbstractContextManager[UnitOfWork]:
        """A consistent snapshot for queries."""
        ...

    def write(self) -> AbstractContextManager[UnitOfWork]:
        """A serialized transaction: commits on success, changes nothing on any error."""
        ...


# -- the workload side: where services are built, run and routed (implemented outside control/) ---------

DeploymentLog = Callable[[str], None]


class Workloads(Protocol):
    def check_source(self, spec: ServiceSpec) -> None:
        """What can be known before any work starts (a readable URL, an installed runtime); raises InvalidInput."""
        ...

    async def build(self, service: Service, log: DeploymentLog) -> Revision:
        """Fetch the source and build it; raises DeploymentFailed."""
        ...

    async def start(self, service: Service, revision: Revision, log: DeploymentLog) -> None:
        """Start the revision's instances, wait until they are healthy, route traffic to them; DeploymentFailed."""
        ...

    async def roll(self, service: Service, revision: Revision, log: DeploymentLog) -> None:
        """Start healthy instances of `revision` beside the current ones, move traffic, drain and stop the old.

        On DeploymentFailed the current instances have kept serving throughout (the rollback is free).
        """
        ...

    async def stop(self, service: Service) -> None:
        """Drain and stop every instance of the service; its host keeps answering through the activator."""
        ...

    async def remove(self, service: Service) -> None:
        """Stop every instance, remove the routing and the service's artifacts."""
        ...

    async def restore(self, service: Service) -> None:
        """After a restart of Runyard: re-adopt or restart the instances of a running service."""
        ...

    async def close(self) -> None:
        """Runyard stops: stop monitoring and every instance (restore brings them back)."""
        ...


class ServiceLogs(Protocol):
    def deployment(self, service: Service, operation_id: str, line: str) -> None: ...
    def event(self, service: Service, message: str) -> None: ...
    def remove(self, service: Service) -> None: ...


class ServiceEvents(Protocol):
    def publish(self, service: Service, detail_type: str, detail: Mapping[str, str]) -> None:
        """One event in EventBridge's envelope: to the service's events stream and to the matching event rules."""
        ...


# -- connections: provider look-ups and secrets at rest (implemented outside control/) -------------------


class ConnectionProviders(Protocol):
    """The git providers behind connections. `endpoint` is an installed provider's host ProviderEndpoint."""

    def verify_token(self, provider_type: str, endpoint: str | None, token: str) -> str:
        """The provider account the token belongs to; raises InvalidInput when the provider refuses it."""
        ...

    def owns(self, provider_type: str, endpoint: str | None, repository_url: str) -> bool:
        """Whether the repository URL is on that provider (under its web URL or the host's endpoint)."""
        ...

    def check_host(self, provider_type: str, endpoint: str) -> None:
        """Set-up of an installed provider's host: raises InvalidInput unless the endpoint answers as that provider."""
        ...

    def token_accepted(self, provider_type: str, endpoint: str | None, token: str) -> bool | None:
        """The periodic check: True if the provider accepts the token, False if it refuses it, None if unknown."""
        ...

    def oauth_available(self, provider_type: str, endpoint: str | None) -> bool:
        """Whether Runyard has OAuth app credentials (client id and secret) for that provider."""
        ...

    def authorize_url(
        self, provider_type: str, endpoint: str | None, *, state: str, redirect_uri: str, verifier: str
    ) -> str:
        """Where to send the user to authorize Runyard (OAuth 2.0 authorization code, PKCE S256 where supported)."""
        ...

    def exchange_code(
        self, provider_type: str, endpoint: str | None, *, code: str, redirect_uri: str, verifier: str
    ) -> str:
        """The access token for an authorization code; raises InvalidInput when the provider refuses the code."""
        ...


class Sealer(Protocol):
    """Encryption at rest; `context` binds a sealed value to the record it belongs to."""

    def seal(self, plaintext: str, *, context: str) -> str: ...
    def open(self, sealed: str, *, context: str) -> str: ...
