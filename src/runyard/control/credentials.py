"""Connection credentials: verified against the provider, sealed at rest, opened only to read a repository."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping

from runyard.control.context import Deps
from runyard.control.model.credential import ConnectionCredential
from runyard.control.model.service import DELETED, Service
from runyard.control.ports import ConnectionProviders, Sealer, ServiceEvents, UnitOfWork
from runyard.errors import InvalidInput, NotSupported

log = logging.getLogger(__name__)
NOT_WIRED = "Connection handshakes need the provider adapters and the secrets key; this Runyard was built without."
CONNECTION_STATUS_CHANGE = "Connection Status Change"  # a Runyard event, published to the services it affects


class CredentialVault:
    def __init__(
        self,
        deps: Deps,
        providers: ConnectionProviders | None,
        sealer: Sealer | None,
        events: ServiceEvents | None = None,
    ) -> None:
        self._deps = deps
        self._providers = providers
        self._sealer = sealer
        self._events = events

    @property
    def providers(self) -> ConnectionProviders:
        if self._providers is None:
            raise NotSupported(NOT_WIRED)
        return self._providers

    @property
    def sealer(self) -> Sealer:
        if self._sealer is None:
            raise NotSupported(NOT_WIRED)
        return self._sealer

    def verify(self, provider_type: str, endpoint: str | None, token: str) -> str:
        """The provider account of `token` (a network call: never inside a store transaction)."""
        if not token.strip():
            raise InvalidInput("The token is empty.")
        return self.providers.verify_token(provider_type, endpoint, token.strip())

    def keep(
        self, uow: UnitOfWork, *, key: str, account: str, region: str, name: str, token: str, provider_account: str
    ) -> None:
        credential = ConnectionCredential(
            connection_key=key,
            account=account,
            region=region,
            name=name,
            provider_account=provider_account,
            sealed_token=self.sealer.seal(token.strip(), context=key),
            created_at=self._deps.clock.now(),
        )
        repo = uow.repo(ConnectionCredential)
        if repo.get(key) is None:
            repo.add(credential)
        else:
            repo.save(credential)

    def token(self, uow: UnitOfWork, key: str) -> str | None:
        credential = uow.repo(ConnectionCredential).get(key)
        return None if credential is None else self.sealer.open(credential.sealed_token, context=key)

    def forget(self, uow: UnitOfWork, key: str) -> None:
        uow.repo(ConnectionCredential).remove(key)

    def announce(self, services: list[Service], detail: Mapping[str, str]) -> None:
        """A connection changed status: an event for every live service that reads through it (outside writes)."""
        if self._events is None:
            return
        for service in services:
            if service.status != DELETED:
                self._events.publish(service, CONNECTION_STATUS_CHANGE, detail)


class PeriodicCheck:
    """Runs a blocking check (e.g. Connections.check_credentials) every `interval` seconds; 0 turns it off."""

    def __init__(self, check: Callable[[], object], interval: float, *, name: str) -> None:
        self._check = check
        self._interval = interval
        self._name = name
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._interval > 0 and self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await asyncio.to_thread(self._check)
            except Exception:
                log.exception("%s failed; trying again in %g s", self._name, self._interval)
