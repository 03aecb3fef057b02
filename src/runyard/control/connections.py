"""App Runner connections (GITHUB, BITBUCKET): created PENDING_HANDSHAKE, AVAILABLE once a handshake verified a
credential with the provider, ERROR when the provider later refuses it; deleted outright."""

from __future__ import annotations

import dataclasses
import logging
import secrets
import threading
from dataclasses import dataclass

from runyard.control.arns import read_arn
from runyard.control.context import Deps, Scope
from runyard.control.credentials import CredentialVault
from runyard.control.model.apprunner import CONNECTION_TRANSITIONS, Connection
from runyard.control.model.service import Service
from runyard.control.ports import Tag, UnitOfWork
from runyard.control.tags import check_new_tags
from runyard.errors import AlreadyExists, InUse, InvalidInput, NotFound, QuotaExceeded
from runyard.ids import apprunner_arn

log = logging.getLogger(__name__)
AVAILABLE = "AVAILABLE"
ERROR = "ERROR"
HANDSHAKE_HINT = "complete its handshake in the console or with `runyard connections complete-handshake`"
OAUTH_STATE_LIFETIME = 600.0  # seconds a started OAuth handshake may take


@dataclass(frozen=True, slots=True)
class OAuthStart:
    state: str  # bound to the connection; the console also keeps it in the user's session
    authorize_url: str


@dataclass(frozen=True, slots=True)
class _PendingOAuth:
    scope: Scope
    arn: str
    verifier: str  # PKCE: stays here, only its S256 challenge goes to the provider
    redirect_uri: str
    expires_at: float


class Connections:
    def __init__(self, deps: Deps, vault: CredentialVault | None = None) -> None:
        self._deps = deps
        self._vault = vault or CredentialVault(deps, None, None)
        self._pending: dict[str, _PendingOAuth] = {}  # OAuth state -> the handshake it belongs to
        self._lock = threading.Lock()

    def create(self, scope: Scope, *, name: str, provider_type: str, tags: list[Tag]) -> Connection:
        deps = self._deps
        check_new_tags(deps, tags)
        with deps.store.write() as uow:
            repo = uow.repo(Connection)
            existing = repo.find(account=scope.account, region=scope.region)
            if any(c.name == name for c in existing):
                raise AlreadyExists(f"A connection named {name!r} already exists in {scope.region}.")
            if len(existing) >= deps.quotas.connections:
                raise QuotaExceeded(
                    f"You have reached the quota of {deps.quotas.connections} connections in {scope.region}. "
                    "Delete a connection before you create another."
                )
            connection = Connection(
                arn=apprunner_arn(scope.region, scope.account, "connection", name, deps.ids.hex32()),
                name=name,
                account=scope.account,
                region=scope.region,
                provider_type=provider_type,
                status="PENDING_HANDSHAKE",
                created_at=deps.clock.now(),
            )
            repo.add(connection)
            uow.tags.merge(Connection.KIND, connection.key, tags)
            return connection

    def find_all(self, scope: Scope, *, name: str | None = None) -> list[Connection]:
        with self._deps.store.read() as uow:
            return uow.repo(Connection).find(account=scope.account, region=scope.region, name=name)

    def get(self, scope: Scope, arn: str) -> Connection:
        read_arn(scope, arn, "connection", label="Connection")
        with self._deps.store.read() as uow:
            connection = uow.repo(Connection).get(arn)
        if connection is None:
            raise NotFound(f"Connection not found: {arn}")
        return connection

    def resolve(self, scope: Scope, name_or_arn: str) -> Connection:
        """A connection by ARN, or by name in the scope's region."""
        if name_or_arn.startswith("arn:"):
            return self.get(scope, name_or_arn)
        found = self.find_all(scope, name=name_or_arn)
        if not found:
            raise NotFound(f"Connection not found: {name_or_arn} (in {scope.region})")
        return found[0]

    def delete(self, scope: Scope, arn: str) -> Connection:
        read_arn(scope, arn, "connection", label="Connection")
        with self._deps.store.write() as uow:
            repo = uow.repo(Connection)
            connection = repo.get(arn)
            if connection is None:
                raise NotFound(f"Connection not found: {arn}")
            users = [s.name for s in self._users(uow, connection)]
            if users:
                raise InUse(f"The connection is used by services {', '.join(users)}; delete them first.")
            repo.remove(arn)
            self._vault.forget(uow, arn)
            return dataclasses.replace(connection, status=CONNECTION_TRANSITIONS.check(connection.status, "DELETED"))

    # -- the handshake ----------------------------------------------------------------------------

    def complete_handshake(self, scope: Scope, name_or_arn: str, token: str) -> Connection:
        """Verify `token` with the provider, keep it sealed and make the connection AVAILABLE (again)."""
        connection = self.resolve(scope, name_or_arn)
        account = self._vault.verify(connection.provider_type, None, token)
        with self._deps.store.write() as uow:
            current = uow.repo(Connection).get(connection.arn)
            if current is None:
                raise NotFound(f"Connection not found: {connection.arn}")
            if current.status != AVAILABLE:
                CONNECTION_TRANSITIONS.check(current.status, AVAILABLE)
            self._vault.keep(
                uow,
                key=current.arn,
                account=current.account,
                region=current.region,
                name=current.name,
                token=token,
                provider_account=account,
            )
            done = dataclasses.replace(current, status=AVAILABLE, provider_account=account, status_message=None)
            uow.repo(Connection).save(done)
            users = self._users(uow, done)
        if current.status != AVAILABLE:
            self._vault.announce(users, _detail(done, current.status))
        return done

    def oauth_available(self, connection: Connection) -> bool:
        return self._vault.providers.oauth_available(connection.provider_type, None)

    def start_oauth(self, scope: Scope, arn: str, redirect_uri: str) -> OAuthStart:
        """The first leg of the OAuth 2.0 handshake: a state bound to the connection, a PKCE verifier kept here."""
        connection = self.get(scope, arn)
        state, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(48)
        url = self._vault.providers.authorize_url(
            connection.provider_type, None, state=state, redirect_uri=redirect_uri, verifier=verifier
        )
        now = self._deps.clock.now()
        with self._lock:
            self._pending = {k: v for k, v in self._pending.items() if v.expires_at > now}
            self._pending[state] = _PendingOAuth(scope, arn, verifier, redirect_uri, now + OAUTH_STATE_LIFETIME)
        return OAuthStart(state, url)

    def finish_oauth(self, state: str, code: str) -> Connection:
        """The callback: the code is exchanged for a token (with the verifier), which is verified and kept."""
        with self._lock:
            pending = self._pending.pop(state, None)
        if pending is None or pending.expires_at <= self._deps.clock.now():
            raise InvalidInput("The handshake expired or was already used; start it again from the Connections page.")
        connection = self.get(pending.scope, pending.arn)
        token = self._vault.providers.exchange_code(
            connection.provider_type, None, code=code, redirect_uri=pending.redirect_uri, verifier=pending.verifier
        )
        return self.complete_handshake(pending.scope, pending.arn, token)

    # -- use by services --------------------------------------------------------------------------

    def check_usable(self, arn: str, repository_url: str) -> None:
        """CreateService/UpdateService: the connection must be AVAILABLE and the repository on its provider."""
        with self._deps.store.read() as uow:
            connection = uow.repo(Connection).get(arn)
        if connection is None:
            raise NotFound(f"Connection not found: {arn}")
        if connection.status != AVAILABLE:
            raise InvalidInput(
                f"Connection {connection.name} is {connection.status}: {HANDSHAKE_HINT} before a service uses it."
            )
        if not self._vault.providers.owns(connection.provider_type, None, repository_url):
            raise InvalidInput(
                f"RepositoryUrl {repository_url} is not a repository of connection {connection.name}'s provider "
                f"({connection.provider_type})."
            )

    def git_token(self, arn: str) -> tuple[str, str]:
        """(provider type, token) to read a repository through the connection; InvalidInput when it cannot."""
        with self._deps.store.read() as uow:
            connection = uow.repo(Connection).get(arn)
            if connection is None:
                raise NotFound(f"Connection not found: {arn}")
            token = self._vault.token(uow, arn) if connection.status == AVAILABLE else None
        if token is None:
            raise InvalidInput(f"Connection {connection.name} is {connection.status}: {HANDSHAKE_HINT}.")
        return connection.provider_type, token

    def reject(self, arn: str, reason: str) -> None:
        """The provider refused the connection's credential (on use or on a periodic check): ERROR, with an event."""
        with self._deps.store.write() as uow:
            connection = uow.repo(Connection).get(arn)
            if connection is None or connection.status != AVAILABLE:
                return
            failed = dataclasses.replace(
                connection, status=CONNECTION_TRANSITIONS.check(AVAILABLE, ERROR), status_message=reason
            )
            uow.repo(Connection).save(failed)
            users = self._users(uow, failed)
        log.warning("connection %s is now ERROR: %s", failed.name, reason)
        self._vault.announce(users, _detail(failed, AVAILABLE))

    def check_credentials(self, account: str) -> list[str]:
        """Ask the provider about every AVAILABLE connection's credential; a refused one turns ERROR. Returns those."""
        refused: list[str] = []
        for connection in self.available(account):
            with self._deps.store.read() as uow:
                token = self._vault.token(uow, connection.arn)
            if token is None:
                continue
            if self._vault.providers.token_accepted(connection.provider_type, None, token) is False:
                self.reject(connection.arn, "the provider no longer accepts the credential (periodic check)")
                refused.append(connection.arn)
        return refused

    def available(self, account: str) -> list[Connection]:
        """Every AVAILABLE connection of the account, in every region (for the periodic credential check)."""
        with self._deps.store.read() as uow:
            return [c for c in uow.repo(Connection).find(account=account) if c.status == AVAILABLE]

    def _users(self, uow: UnitOfWork, connection: Connection) -> list[Service]:
        return [
            s
            for s in uow.repo(Service).find(account=connection.account, region=connection.region)
            if s.live and s.connection_arn == connection.arn
        ]


def _detail(connection: Connection, previous: str) -> dict[str, str]:
    detail = {
        "connectionName": connection.name,
        "connectionArn": connection.arn,
        "providerType": connection.provider_type,
        "previousStatus": previous,
        "currentStatus": connection.status,
    }
    if connection.status_message:
        detail["message"] = connection.status_message
    return detail
