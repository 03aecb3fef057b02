"""Provider adapters and git credentials against the test forge (real HTTP, real git http-backend)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runyard.source.git import AuthenticationFailed, classify_repository_url, fetch, resolve_branch
from runyard.source.providers import CredentialRejected, Pkce, ProviderDirectory, ProviderEndpoints
from tests.forge.app import Forge


@pytest.fixture(scope="module")
def forge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Forge]:
    running = Forge(tmp_path_factory.mktemp("forge")).start()
    yield running
    running.stop()


def directory(forge: Forge) -> ProviderDirectory:
    client = forge.register_client()
    return ProviderDirectory(
        github=ProviderEndpoints(forge.url, forge.url, client.client_id, client.client_secret),
        gitlab=ProviderEndpoints(forge.url + "/api/v4", forge.url, client.client_id, client.client_secret),
        bitbucket=ProviderEndpoints(forge.url + "/2.0", forge.url, client.client_id, client.client_secret),
    )


@pytest.mark.parametrize("provider_type", ["GITHUB", "GitLab", "BITBUCKET"])
def test_current_user_and_revocation(forge: Forge, provider_type: str) -> None:
    provider = directory(forge).provider(provider_type)
    token = forge.issue_token("mona")
    account = provider.current_user(token)
    assert account.login == "mona" and account.account_id
    forge.revoke(token)
    with pytest.raises(CredentialRejected) as raised:
        provider.current_user(token)
    assert token not in raised.value.message


@pytest.mark.parametrize("provider_type", ["GitHubEnterpriseServer", "GitLabSelfManaged"])
def test_installed_providers_current_user(forge: Forge, provider_type: str) -> None:
    provider = directory(forge).provider(provider_type, forge.url)
    assert provider.current_user(forge.issue_token("hubot")).login == "hubot"


@pytest.mark.parametrize("provider_type", ["GITHUB", "GitLab", "BITBUCKET"])
def test_oauth_authorization_code_flow(forge: Forge, provider_type: str) -> None:
    provider = directory(forge).provider(provider_type)
    pkce = Pkce.new()
    url = provider.authorize_url(state="s1", redirect_uri="http://runyard.invalid/cb", pkce=pkce)
    answer = httpx.get(url, follow_redirects=False)
    assert answer.status_code == 302
    location = httpx.URL(answer.headers["location"])
    assert location.params["state"] == "s1"
    token = provider.exchange_code(code=location.params["code"], redirect_uri="http://runyard.invalid/cb", pkce=pkce)
    assert provider.current_user(token).login == forge.signed_in
    with pytest.raises(CredentialRejected):  # a code is good once
        provider.exchange_code(code=location.params["code"], redirect_uri="http://runyard.invalid/cb", pkce=pkce)


def test_pkce_verifier_must_match(forge: Forge) -> None:
    provider = directory(forge).provider("GITHUB")
    url = provider.authorize_url(state="s", redirect_uri="http://r/cb", pkce=Pkce.new())
    code = httpx.URL(httpx.get(url).headers["location"]).params["code"]
    with pytest.raises(CredentialRejected):
        provider.exchange_code(code=code, redirect_uri="http://r/cb", pkce=Pkce.new())


def test_private_repository_reads_with_credentials_only(forge: Forge, tmp_path: Path) -> None:
    token = forge.issue_token("mona")
    url = forge.create_repo("mona/private-app")
    sha = forge.push("mona/private-app", {"app.py": "print('hi')\n"}, token=token)
    location = classify_repository_url(url)
    credentials = directory(forge).provider("GITHUB").git_credentials(token)

    with pytest.raises(AuthenticationFailed):
        resolve_branch(location, "main")
    assert resolve_branch(location, "main", credentials=credentials) == sha
    fetched = fetch(location, sha, tmp_path / "out", source_directory=None, credentials=credentials)
    assert (fetched.app_directory / "app.py").read_text() == "print('hi')\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["app.py"]

    forge.revoke(token)
    with pytest.raises(AuthenticationFailed) as raised:
        resolve_branch(location, "main", credentials=credentials)
    assert token not in raised.value.message
