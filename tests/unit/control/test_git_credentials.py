"""Git credentials: URL-prefix rules, sealing, replacement and removal (the e2e tests use them with real git)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from runyard.clock import FakeClock
from runyard.config import Quotas
from runyard.control.context import Deps
from runyard.control.git_credentials import GitCredentials, best_match, prefix_matches, prefix_type
from runyard.control.model.git_credential import GitCredential
from runyard.errors import InvalidInput, NotFound, NotSupported
from runyard.ids import SequentialIds
from runyard.secrets import SecretBox
from runyard.store.database import Database

ACCOUNT = "000000000000"
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\n-----END OPENSSH PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("prefix", "url", "matches"),
    [
        ("https://git.example.com", "https://git.example.com/team/app.git", True),
        ("https://git.example.com", "https://git.example.com", True),
        ("https://git.example.com", "https://git.example.com.evil.net/team/app.git", False),
        ("https://git.example.com", "https://git.example.com:8443/team/app.git", False),
        ("https://git.example.com/team", "https://git.example.com/team/app.git", True),
        ("https://git.example.com/team", "https://git.example.com/teamster/app.git", False),
        ("https://git.example.com/team/", "https://git.example.com/team/app.git", True),
        ("https://git.example.com/", "http://git.example.com/team/app.git", False),
        ("ssh://git@host:2222", "ssh://git@host:2222/srv/app.git", True),
        ("ssh://git@host", "ssh://git@host:2222/srv/app.git", False),
        ("ssh://git@host", "ssh://git@hostile/srv/app.git", False),
        ("git@host", "git@host:team/app.git", True),
        ("git@host", "git@hostile:team/app.git", False),
        ("git@host:", "git@host:team/app.git", True),
        ("git@host:team", "git@host:team/app.git", True),
        ("git@host:team", "git@host:teamster/app.git", False),
    ],
)
def test_a_prefix_matches_at_a_boundary_only(prefix: str, url: str, matches: bool) -> None:
    assert prefix_matches(prefix, url) is matches


@pytest.mark.parametrize(
    ("prefix", "kind"),
    [
        ("https://git.example.com", "HTTPS"),
        ("http://127.0.0.1:8080/", "HTTPS"),
        ("ssh://git@git.example.com:2222/", "SSH"),
        ("git+ssh://git.example.com", "SSH"),
        ("git@git.example.com:", "SSH"),
        ("git.example.com:team", "SSH"),
    ],
)
def test_prefix_type(prefix: str, kind: str) -> None:
    assert prefix_type(prefix) == kind


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        ("", "empty"),
        ("https://git.example.com/a b", "spaces"),
        ("https://user:pw@git.example.com", "must not contain a user name or password"),
        ("ssh://git:pw@git.example.com", "must not contain a password"),
        ("ftp://git.example.com", "must start with https://"),
        ("https:///team", "no host name"),
        ("https://git.example.com:port/", "not a valid URL"),
        ("-oProxyCommand=x", "not a URL"),
        ("/srv/git", "not an https://"),
    ],
)
def test_bad_prefixes_are_refused(prefix: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        prefix_type(prefix)


def _credential(name: str, prefix: str) -> GitCredential:
    return GitCredential(ACCOUNT, name, name, prefix, "HTTPS", "v1:x", 0.0, username="u")


def test_the_longest_matching_prefix_wins() -> None:
    found = [_credential("server", "https://git.example.com"), _credential("team", "https://git.example.com/team")]
    assert best_match(found, "https://git.example.com/team/app.git") == found[1]
    assert best_match(found, "https://git.example.com/other/app.git") == found[0]
    assert best_match(found, " https://git.example.com/x.git\n") == found[0]
    assert best_match(found, "https://elsewhere.example.com/x.git") is None


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[GitCredentials, Database, list[str]]]:
    clock = FakeClock()
    database = Database(f"sqlite:///{tmp_path / 'db.sqlite'}", clock=clock)
    database.migrate()
    deps = Deps(store=database, clock=clock, ids=SequentialIds(), quotas=Quotas(), domain_suffix="localhost")
    forgotten: list[str] = []
    yield (
        GitCredentials(deps, SecretBox.load_or_create(tmp_path), forget_host_keys=forgotten.append),
        database,
        forgotten,
    )
    database.close()


def test_credentials_are_sealed_opened_by_url_replaced_and_removed(
    world: tuple[GitCredentials, Database, list[str]],
) -> None:
    credentials, database, forgotten = world
    https = credentials.add(
        ACCOUNT, name="forge", url_prefix="https://git.example.com", username="deploy", password="s3cret-pw"
    )
    ssh = credentials.add(ACCOUNT, name="box", url_prefix="git@box.internal:", ssh_key=KEY)
    with database.read() as uow:
        stored = uow.repo(GitCredential).find(account=ACCOUNT)
    assert [c.name for c in stored] == ["forge", "box"]
    assert all("s3cret-pw" not in c.sealed_secret and "OPENSSH" not in c.sealed_secret for c in stored)

    opened = credentials.open(ACCOUNT, "https://git.example.com/team/app.git")
    assert opened is not None and (opened.credential_type, opened.username, opened.secret) == (
        "HTTPS",
        "deploy",
        "s3cret-pw",
    )
    assert "s3cret-pw" not in repr(opened)
    opened_ssh = credentials.open(ACCOUNT, "git@box.internal:team/app.git")
    assert opened_ssh is not None and opened_ssh.secret == KEY + "\n" and opened_ssh.known_hosts is None
    assert credentials.open(ACCOUNT, "https://elsewhere.example.com/app.git") is None
    assert credentials.open("111111111111", "https://git.example.com/team/app.git") is None

    # Adding a name again replaces it: a new secret, and the learned host keys of the old one are forgotten.
    replaced = credentials.add(
        ACCOUNT, name="box", url_prefix="git@box.internal:", ssh_key=KEY, known_hosts="box.internal ssh-ed25519 AAAA"
    )
    assert forgotten == [ssh.credential_id]
    assert replaced.credential_id != ssh.credential_id
    opened_ssh = credentials.open(ACCOUNT, "git@box.internal:team/app.git")
    assert opened_ssh is not None and opened_ssh.known_hosts == "box.internal ssh-ed25519 AAAA\n"

    with pytest.raises(InvalidInput, match="already has the URL prefix"):
        credentials.add(ACCOUNT, name="other", url_prefix="https://git.example.com", username="u", password="p")

    assert credentials.remove(ACCOUNT, "forge").name == "forge"
    assert forgotten[-1] == https.credential_id
    assert credentials.open(ACCOUNT, "https://git.example.com/team/app.git") is None
    with pytest.raises(NotFound):
        credentials.remove(ACCOUNT, "forge")


def test_a_sealed_secret_does_not_open_on_another_record(world: tuple[GitCredentials, Database, list[str]]) -> None:
    credentials, database, _ = world
    credentials.add(ACCOUNT, name="a", url_prefix="https://a.example.com", username="u", password="pa")
    credentials.add(ACCOUNT, name="b", url_prefix="https://b.example.com", username="u", password="pb")
    with database.write() as uow:
        repo = uow.repo(GitCredential)
        a, b = repo.get(f"{ACCOUNT}/a"), repo.get(f"{ACCOUNT}/b")
        assert a is not None and b is not None
        repo.save(dataclasses.replace(b, sealed_secret=a.sealed_secret))
    with pytest.raises(RuntimeError, match="does not open"):
        credentials.open(ACCOUNT, "https://b.example.com/x.git")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url_prefix": "https://h", "username": "u"}, "needs a user name and a password"),
        ({"url_prefix": "https://h", "ssh_key": KEY}, "not an SSH key"),
        ({"url_prefix": "https://h", "username": "u", "password": "a\nb"}, "control characters"),
        ({"url_prefix": "git@h:", "username": "u", "password": "p"}, "not a user name and password"),
        ({"url_prefix": "git@h:", "ssh_key": "  "}, "needs a private key"),
        ({"url_prefix": "git@h:", "ssh_key": "x" * 70000}, "longer than"),
    ],
)
def test_options_must_fit_the_prefix(
    world: tuple[GitCredentials, Database, list[str]], options: dict[str, str], message: str
) -> None:
    credentials, _, _ = world
    with pytest.raises(InvalidInput, match=message):
        credentials.add(ACCOUNT, name="c", **options)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="name"):
        credentials.add(ACCOUNT, name="no spaces", url_prefix="https://h", username="u", password="p")
    assert credentials.find_all(ACCOUNT) == []


def test_without_a_secrets_key_nothing_is_kept(tmp_path: Path) -> None:
    clock = FakeClock()
    database = Database(f"sqlite:///{tmp_path / 'db.sqlite'}", clock=clock)
    database.migrate()
    deps = Deps(store=database, clock=clock, ids=SequentialIds(), quotas=Quotas(), domain_suffix="localhost")
    with pytest.raises(NotSupported, match="secrets key"):
        GitCredentials(deps, None).add(ACCOUNT, name="c", url_prefix="https://h", username="u", password="p")
    database.close()
