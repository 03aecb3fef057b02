"""CodeConnections connections and hosts, shared by the codeconnections and codestar-connections APIs.

Connections are global per account (any region lists them; their ARN keeps the creation region).
Hosts belong to one region. Both namespaces' ARN forms name the same resource.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from runyard.control.context import Deps, Scope
from runyard.control.credentials import CredentialVault
from runyard.control.model.codeconnections import (
    CLOUD_PROVIDERS,
    CONNECTION_TRANSITIONS,
    HOST_TRANSITIONS,
    INSTALLED_PROVIDERS,
    CodeConnection,
    Host,
    HostRef,
    VpcSettings,
    connection_key,
    host_key,
)
from runyard.control.ports import Tag, UnitOfWork
from runyard.control.tags import check_new_tags
from runyard.errors import InUse, InvalidInput, InvalidState, NotFound, QuotaExceeded, UnsupportedProvider
from runyard.ids import parse_arn

NAMESPACES = frozenset({"codeconnections", "codestar-connections"})
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True, slots=True)
class ConnectionRef:
    account: str
    connection_id: str


@dataclass(frozen=True, slots=True)
class HostArnRef:
    account: str
    region: str
    host_id: str


def read_connection_arn(text: str) -> ConnectionRef:
    arn = parse_arn(text)
    if arn is None or arn.service not in NAMESPACES or arn.resource_type != "connection" or len(arn.parts) != 1:
        raise NotFound(f"Connection not found: {text}")
    if not _UUID.fullmatch(arn.parts[0]):
        raise NotFound(f"Connection not found: {text}")
    return ConnectionRef(arn.account, arn.parts[0])


def read_host_arn(text: str) -> HostArnRef:
    arn = parse_arn(text)
    # The host id is "<name>-<8 hex>" and a host name may contain "/": the id is all after "host/".
    if arn is None or arn.service not in NAMESPACES or arn.resource_type != "host" or not "/".join(arn.parts):
        raise NotFound(f"Host not found: {text}")
    return HostArnRef(arn.account, arn.region, "/".join(arn.parts))


class CodeConnections:
    def __init__(self, deps: Deps, vault: CredentialVault | None = None) -> None:
        self._deps = deps
        self._vault = vault or CredentialVault(deps, None, None)

    # -- connections ----------------------------------------------------------------------------

    def create_connection(
        self,
        scope: Scope,
        *,
        name: str,
        provider_type: str | None,
        host_arn: str | None,
        tags: list[Tag],
    ) -> CodeConnection:
        deps = self._deps
        if provider_type is None and host_arn is None:
            raise InvalidInput("Specify a ProviderType or a HostArn.")
        check_new_tags(deps, tags)
        with deps.store.write() as uow:
            host: Host | None = None
            if host_arn is not None:
                host = self._host(uow, scope, host_arn)
                if provider_type is not None and provider_type != host.provider_type:
                    raise InvalidInput(
                        f"ProviderType {provider_type} does not match the host's provider type {host.provider_type}."
                    )
            elif provider_type in INSTALLED_PROVIDERS:
                raise InvalidInput(f"A {provider_type} connection needs a HostArn: create a host first.")
            repo = uow.repo(CodeConnection)
            if len(repo.find(account=scope.account)) >= deps.quotas.codeconnections_connections:
                raise QuotaExceeded(
                    f"You have reached the quota of {deps.quotas.codeconnections_connections} connections."
                )
            connection = CodeConnection(
                connection_id=deps.ids.uuid(),
                name=name,
                account=scope.account,
                region=scope.region,
                provider_type=host.provider_type if host else str(provider_type),
                status="PENDING",
                created_at=deps.clock.now(),
                host=HostRef(host.region, host.host_id) if host else None,
            )
            repo.add(connection)
            uow.tags.merge(CodeConnection.KIND, connection.key, tags)
            return connection

    def get_connection(self, scope: Scope, arn: str) -> CodeConnection:
        with self._deps.store.read() as uow:
            return self._connection(uow, scope, arn)

    def list_connections(
        self, scope: Scope, *, provider_type: str | None, host_arn: str | None
    ) -> list[CodeConnection]:
        host_filter: HostRef | None = None
        if host_arn is not None:
            ref = read_host_arn(host_arn)
            host_filter = HostRef(ref.region, ref.host_id)
        with self._deps.store.read() as uow:
            found = uow.repo(CodeConnection).find(account=scope.account)
        return [
            c
            for c in found
            if (provider_type is None or c.provider_type == provider_type)
            and (host_filter is None or c.host == host_filter)
        ]

    def delete_connection(self, scope: Scope, arn: str) -> None:
        with self._deps.store.write() as uow:
            connection = self._connection(uow, scope, arn)
            uow.repo(CodeConnection).remove(connection.key)
            self._vault.forget(uow, connection.key)

    def find_by_name(self, scope: Scope, name: str) -> list[CodeConnection]:
        with self._deps.store.read() as uow:
            return [c for c in uow.repo(CodeConnection).find(account=scope.account) if c.name == name]

    def complete_handshake(self, scope: Scope, arn: str, token: str) -> CodeConnection:
        """Verify `token` with the provider (through the host for an installed one), keep it sealed: AVAILABLE."""
        with self._deps.store.read() as uow:
            connection = self._connection(uow, scope, arn)
            endpoint = self._endpoint(uow, connection)
        account = self._vault.verify(connection.provider_type, endpoint, token)
        with self._deps.store.write() as uow:
            current = self._connection(uow, scope, arn)
            if current.status != "AVAILABLE":
                CONNECTION_TRANSITIONS.check(current.status, "AVAILABLE")
            self._vault.keep(
                uow,
                key=current.key,
                account=current.account,
                region=current.region,
                name=current.name,
                token=token,
                provider_account=account,
            )
            done = dataclasses.replace(current, status="AVAILABLE", provider_account=account, status_message=None)
            uow.repo(CodeConnection).save(done)
            return done

    def _endpoint(self, uow: UnitOfWork, connection: CodeConnection) -> str | None:
        if connection.host is None:
            return None
        host = uow.repo(Host).get(host_key(connection.account, connection.host.region, connection.host.host_id))
        if host is None:
            raise NotFound(f"The host of connection {connection.name} no longer exists.")
        if host.status != "AVAILABLE":
            raise InvalidState(
                f"Host {host.name} is {host.status}: set it up first (`runyard connections set-up-host`)."
            )
        return host.provider_endpoint

    # -- hosts ----------------------------------------------------------------------------------

    def create_host(
        self,
        scope: Scope,
        *,
        name: str,
        provider_type: str,
        provider_endpoint: str,
        vpc: VpcSettings | None,
        tags: list[Tag],
    ) -> Host:
        deps = self._deps
        if provider_type not in INSTALLED_PROVIDERS:
            kind = "a cloud provider" if provider_type in CLOUD_PROVIDERS else "not an installed provider"
            raise UnsupportedProvider(
                f"Hosts are for installed providers ({', '.join(sorted(INSTALLED_PROVIDERS))}); "
                f"{provider_type} is {kind}."
            )
        _check_endpoint(provider_endpoint)
        check_new_tags(deps, tags)
        with deps.store.write() as uow:
            repo = uow.repo(Host)
            existing = repo.find(account=scope.account, region=scope.region)
            if len(existing) >= deps.quotas.codeconnections_hosts:
                raise QuotaExceeded(f"You have reached the quota of {deps.quotas.codeconnections_hosts} hosts.")
            host = Host(
                host_id=f"{name}-{deps.ids.hex32()[:8]}",
                name=name,
                account=scope.account,
                region=scope.region,
                provider_type=provider_type,
                provider_endpoint=provider_endpoint,
                status="PENDING",
                created_at=deps.clock.now(),
                vpc=vpc,
            )
            repo.add(host)
            uow.tags.merge(Host.KIND, host.key, tags)
            return host

    def get_host(self, scope: Scope, arn: str) -> Host:
        with self._deps.store.read() as uow:
            return self._host(uow, scope, arn)

    def list_hosts(self, scope: Scope) -> list[Host]:
        with self._deps.store.read() as uow:
            return uow.repo(Host).find(account=scope.account, region=scope.region)

    def update_host(self, scope: Scope, arn: str, *, provider_endpoint: str | None, vpc: VpcSettings | None) -> Host:
        if provider_endpoint is not None:
            _check_endpoint(provider_endpoint)
        with self._deps.store.write() as uow:
            host = self._host(uow, scope, arn)
            changed = dataclasses.replace(
                host,
                provider_endpoint=provider_endpoint or host.provider_endpoint,
                vpc=vpc if vpc is not None else host.vpc,
            )
            if changed.provider_endpoint != host.provider_endpoint:
                # A new endpoint has to be set up (verified and registered) again.
                changed = dataclasses.replace(changed, status="PENDING", status_message=None)
            uow.repo(Host).save(changed)
            return changed

    def set_up_host(self, scope: Scope, arn: str) -> Host:
        """The host's set-up: its ProviderEndpoint must answer as its provider; then the host is AVAILABLE."""
        host = self.get_host(scope, arn)
        try:
            self._vault.providers.check_host(host.provider_type, host.provider_endpoint)
        except InvalidInput as error:
            with self._deps.store.write() as uow:
                current = self._host(uow, scope, arn)
                uow.repo(Host).save(dataclasses.replace(current, status_message=error.message))
            raise
        with self._deps.store.write() as uow:
            current = self._host(uow, scope, arn)
            if current.provider_endpoint != host.provider_endpoint:
                raise InvalidState(f"Host {host.name}'s ProviderEndpoint changed during set-up; set it up again.")
            if current.status != "AVAILABLE":
                HOST_TRANSITIONS.check(current.status, "AVAILABLE")
            done = dataclasses.replace(current, status="AVAILABLE", status_message=None)
            uow.repo(Host).save(done)
            return done

    def delete_host(self, scope: Scope, arn: str) -> None:
        with self._deps.store.write() as uow:
            host = self._host(uow, scope, arn)
            ref = HostRef(host.region, host.host_id)
            users = [c for c in uow.repo(CodeConnection).find(account=scope.account) if c.host == ref]
            if users:
                raise InUse(f"The host is used by {len(users)} connection(s); delete them before you delete the host.")
            uow.repo(Host).remove(host.key)

    # -- tags -----------------------------------------------------------------------------------

    def tag_target(self, uow: UnitOfWork, scope: Scope, arn: str) -> tuple[str, str]:
        parsed = parse_arn(arn)
        if parsed is not None and parsed.resource_type == "host":
            return Host.KIND, self._host(uow, scope, arn).key
        return CodeConnection.KIND, self._connection(uow, scope, arn).key

    # -- helpers --------------------------------------------------------------------------------

    def _connection(self, uow: UnitOfWork, scope: Scope, arn: str) -> CodeConnection:
        ref = read_connection_arn(arn)
        connection = uow.repo(CodeConnection).get(connection_key(ref.account, ref.connection_id))
        if ref.account != scope.account or connection is None:
            raise NotFound(f"Connection not found: {arn}")
        return connection

    def _host(self, uow: UnitOfWork, scope: Scope, arn: str) -> Host:
        ref = read_host_arn(arn)
        # Hosts are regional: a host ARN is found only in its own region.
        if ref.account != scope.account or ref.region != scope.region:
            raise NotFound(f"Host not found: {arn}")
        host = uow.repo(Host).get(host_key(ref.account, ref.region, ref.host_id))
        if host is None:
            raise NotFound(f"Host not found: {arn}")
        return host


def _check_endpoint(url: str) -> None:
    if not re.fullmatch(r"https?://[^\s/?#]+(:\d+)?(/\S*)?", url):
        raise InvalidInput(f"ProviderEndpoint must be an http(s) URL, got {url!r}.")
