"""Connections' handshake rules with the provider seam replaced (the forge-backed tests cover the real adapters)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from runyard.clock import FakeClock
from runyard.config import Quotas
from runyard.control.connections import Connections
from runyard.control.context import Deps, Scope
from runyard.control.credentials import CredentialVault
from runyard.control.model.credential import ConnectionCredential
from runyard.control.model.service import Service
from runyard.errors import InvalidInput, NotFound, NotSupported
from runyard.ids import SequentialIds
from runyard.secrets import SecretBox
from runyard.store.database import Database

SCOPE = Scope("000000000000", "us-east-1")


@dataclass
class Providers:
    """The ConnectionProviders seam: tokens it knows map to accounts; everything is under https://forge.test."""

    accounts: dict[str, str] = field(default_factory=lambda: {"good": "mona"})
    codes: dict[str, str] = field(default_factory=dict)  # code -> token
    verifiers: list[str] = field(default_factory=list)

    def verify_token(self, provider_type: str, endpoint: str | None, token: str) -> str:
        if token not in self.accounts:
            raise InvalidInput("The handshake failed: rejected")
        return self.accounts[token]

    def token_accepted(self, provider_type: str, endpoint: str | None, token: str) -> bool | None:
        return token in self.accounts

    def owns(self, provider_type: str, endpoint: str | None, repository_url: str) -> bool:
        return repository_url.startswith("https://forge.test/")

    def check_host(self, provider_type: str, endpoint: str) -> None:
        return None

    def oauth_available(self, provider_type: str, endpoint: str | None) -> bool:
        return True

    def authorize_url(
        self, provider_type: str, endpoint: str | None, *, state: str, redirect_uri: str, verifier: str
    ) -> str:
        self.verifiers.append(verifier)
        return f"https://forge.test/authorize?state={state}"

    def exchange_code(
        self, provider_type: str, endpoint: str | None, *, code: str, redirect_uri: str, verifier: str
    ) -> str:
        assert verifier in self.verifiers
        return self.codes[code]


@dataclass
class Events:
    published: list[tuple[str, str, Mapping[str, str]]] = field(default_factory=list)

    def publish(self, service: Service, detail_type: str, detail: Mapping[str, str]) -> None:
        self.published.append((service.name, detail_type, detail))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Connections, Providers, Database, FakeClock]]:
    clock = FakeClock()
    database = Database(f"sqlite:///{tmp_path / 'db.sqlite'}", clock=clock)
    database.migrate()
    deps = Deps(store=database, clock=clock, ids=SequentialIds(), quotas=Quotas(), domain_suffix="localhost")
    providers = Providers()
    vault = CredentialVault(deps, providers, SecretBox.load_or_create(tmp_path), Events())
    yield Connections(deps, vault), providers, database, clock
    database.close()


def test_handshake_verifies_seals_and_recovers(world: tuple[Connections, Providers, Database, FakeClock]) -> None:
    connections, _, database, _ = world
    created = connections.create(SCOPE, name="conn", provider_type="GITHUB", tags=[])
    with pytest.raises(InvalidInput):
        connections.complete_handshake(SCOPE, "conn", "bad")
    assert connections.get(SCOPE, created.arn).status == "PENDING_HANDSHAKE"
    with pytest.raises(InvalidInput, match="empty"):
        connections.complete_handshake(SCOPE, "conn", "  ")

    done = connections.complete_handshake(SCOPE, "conn", "good")
    assert (done.status, done.provider_account) == ("AVAILABLE", "mona")
    with database.read() as uow:
        sealed = uow.repo(ConnectionCredential).get(created.arn)
    assert sealed is not None and "good" not in sealed.sealed_token
    assert connections.git_token(created.arn) == ("GITHUB", "good")

    connections.reject(created.arn, "refused")
    failed = connections.get(SCOPE, created.arn)
    assert (failed.status, failed.status_message) == ("ERROR", "refused")
    with pytest.raises(InvalidInput, match="ERROR"):
        connections.git_token(created.arn)
    assert connections.complete_handshake(SCOPE, created.arn, "good").status == "AVAILABLE"

    connections.delete(SCOPE, created.arn)
    with database.read() as uow:
        assert uow.repo(ConnectionCredential).get(created.arn) is None
    with pytest.raises(NotFound):
        connections.complete_handshake(SCOPE, "conn", "good")


def test_usable_only_when_available_and_on_the_provider(
    world: tuple[Connections, Providers, Database, FakeClock],
) -> None:
    connections, _, _, _ = world
    arn = connections.create(SCOPE, name="conn", provider_type="GITHUB", tags=[]).arn
    with pytest.raises(InvalidInput, match="PENDING_HANDSHAKE"):
        connections.check_usable(arn, "https://forge.test/o/r")
    connections.complete_handshake(SCOPE, arn, "good")
    connections.check_usable(arn, "https://forge.test/o/r")
    with pytest.raises(InvalidInput, match="is not a repository of connection conn"):
        connections.check_usable(arn, "https://elsewhere.test/o/r")


def test_oauth_state_is_single_use_and_expires(world: tuple[Connections, Providers, Database, FakeClock]) -> None:
    connections, providers, _, clock = world
    arn = connections.create(SCOPE, name="conn", provider_type="GITHUB", tags=[]).arn
    started = connections.start_oauth(SCOPE, arn, "http://r/cb")
    assert started.state in started.authorize_url and providers.verifiers[-1] not in started.authorize_url
    providers.codes["c1"] = "good"
    assert connections.finish_oauth(started.state, "c1").status == "AVAILABLE"
    with pytest.raises(InvalidInput, match="expired or was already used"):
        connections.finish_oauth(started.state, "c1")
    late = connections.start_oauth(SCOPE, arn, "http://r/cb")
    clock.advance(601)
    with pytest.raises(InvalidInput, match="expired"):
        connections.finish_oauth(late.state, "c1")


def test_periodic_check_turns_refused_credentials_to_error(
    world: tuple[Connections, Providers, Database, FakeClock],
) -> None:
    connections, providers, _, _ = world
    arn = connections.create(SCOPE, name="conn", provider_type="GITHUB", tags=[]).arn
    connections.complete_handshake(SCOPE, arn, "good")
    assert connections.check_credentials(SCOPE.account) == []
    del providers.accounts["good"]
    assert connections.check_credentials(SCOPE.account) == [arn]
    assert connections.get(SCOPE, arn).status == "ERROR"


def test_without_providers_the_handshake_says_so(tmp_path: Path) -> None:
    clock = FakeClock()
    database = Database(f"sqlite:///{tmp_path / 'db.sqlite'}", clock=clock)
    database.migrate()
    deps = Deps(store=database, clock=clock, ids=SequentialIds(), quotas=Quotas(), domain_suffix="localhost")
    connections = Connections(deps)
    connections.create(SCOPE, name="conn", provider_type="GITHUB", tags=[])
    with pytest.raises(NotSupported):
        connections.complete_handshake(SCOPE, "conn", "good")
    database.close()
