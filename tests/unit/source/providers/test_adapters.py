"""The adapters' pure parts: webhook verification, push parsing, ownership, OAuth URLs."""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from runyard.source.providers import Pkce, ProviderDirectory, ProviderEndpoints

DIRECTORY = ProviderDirectory(
    github=ProviderEndpoints("https://api.github.com", "https://github.com", "cid", "csecret", "hooksecret"),
    gitlab=ProviderEndpoints("https://gitlab.com/api/v4", "https://gitlab.com", "gid", "gsecret", "gl-token"),
    bitbucket=ProviderEndpoints("https://api.bitbucket.org/2.0", "https://bitbucket.org", "bid", "bsecret", "bb"),
)
SHA = "a" * 40


def _sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_github_webhook_signature_and_push() -> None:
    github = DIRECTORY.provider("GITHUB")
    body = json.dumps(
        {"ref": "refs/heads/main", "after": SHA, "repository": {"clone_url": "https://github.com/o/r.git"}}
    ).encode()
    headers = {"x-github-event": "push", "x-hub-signature-256": _sign("hooksecret", body)}
    assert github.verify_webhook(headers, body)
    assert not github.verify_webhook({**headers, "x-hub-signature-256": _sign("other", body)}, body)
    assert not github.verify_webhook({"x-github-event": "push"}, body)
    push = github.parse_push(headers, body)
    assert push is not None and (push.branch, push.commit_sha) == ("main", SHA)
    assert push.repository_urls == ("https://github.com/o/r.git",)
    assert github.parse_push({"x-github-event": "ping"}, body) is None
    tag = body.replace(b"refs/heads/main", b"refs/tags/v1")
    assert github.parse_push(headers, tag) is None


def test_gitlab_webhook_token_and_push() -> None:
    gitlab = DIRECTORY.provider("GitLab")
    body = json.dumps(
        {"ref": "refs/heads/dev", "after": SHA, "project": {"git_http_url": "https://gitlab.com/g/p.git"}}
    ).encode()
    headers = {"x-gitlab-event": "Push Hook", "x-gitlab-token": "gl-token"}
    assert gitlab.verify_webhook(headers, body)
    assert not gitlab.verify_webhook({**headers, "x-gitlab-token": "nope"}, body)
    push = gitlab.parse_push(headers, body)
    assert push is not None and push.branch == "dev" and push.repository_urls == ("https://gitlab.com/g/p.git",)


def test_bitbucket_webhook_signature_and_push() -> None:
    bitbucket = DIRECTORY.provider("BITBUCKET")
    body = json.dumps(
        {
            "push": {"changes": [{"new": {"type": "branch", "name": "main", "target": {"hash": SHA}}}]},
            "repository": {"links": {"html": {"href": "https://bitbucket.org/w/r"}}},
        }
    ).encode()
    headers = {"x-event-key": "repo:push", "x-hub-signature": _sign("bb", body)}
    assert bitbucket.verify_webhook(headers, body)
    push = bitbucket.parse_push(headers, body)
    assert push is not None and push.commit_sha == SHA and push.repository_urls == ("https://bitbucket.org/w/r",)


def test_webhooks_are_refused_without_a_configured_secret() -> None:
    github = ProviderDirectory(
        github=ProviderEndpoints("https://api.github.com", "https://github.com"),
        gitlab=DIRECTORY.gitlab,
        bitbucket=DIRECTORY.bitbucket,
    ).provider("GITHUB")
    body = b"{}"
    assert not github.verify_webhook({"x-hub-signature-256": _sign("", body)}, body)


@pytest.mark.parametrize(
    ("url", "owned"),
    [
        ("https://github.com/org/repo", True),
        ("https://github.com/org/repo.git", True),
        ("https://GitHub.com/org/repo/", True),
        ("https://github.com", False),
        ("https://github.com.evil.example/org/repo", False),
        ("http://github.com/org/repo", False),
        ("https://gitlab.com/org/repo", False),
    ],
)
def test_repository_belongs_to_the_provider_under_its_web_url(url: str, owned: bool) -> None:
    assert DIRECTORY.provider("GITHUB").owns(url) is owned


def test_installed_providers_live_under_their_host_endpoint() -> None:
    ghes = DIRECTORY.provider("GitHubEnterpriseServer", "https://git.example.com/")
    assert ghes.endpoints.api_url == "https://git.example.com/api/v3"
    assert ghes.owns("https://git.example.com/team/app.git") and not ghes.owns("https://github.com/team/app")
    assert not ghes.oauth_configured  # the token handshake only
    gitlab = DIRECTORY.provider("GitLabSelfManaged", "http://gl.internal:8080")
    assert gitlab.endpoints.api_url == "http://gl.internal:8080/api/v4"
    with pytest.raises(KeyError):
        DIRECTORY.provider("GitLabSelfManaged")
    with pytest.raises(KeyError):
        DIRECTORY.provider("AzureDevOps")


def test_authorize_url_carries_state_and_pkce_where_supported() -> None:
    pkce = Pkce.new()
    url = DIRECTORY.provider("GITHUB").authorize_url(state="st", redirect_uri="http://r/cb", pkce=pkce)
    query = parse_qs(urlsplit(url).query)
    assert url.startswith("https://github.com/login/oauth/authorize?")
    assert query["state"] == ["st"] and query["client_id"] == ["cid"]
    assert query["code_challenge"] == [pkce.challenge] and query["code_challenge_method"] == ["S256"]
    assert pkce.verifier not in url
    bitbucket = DIRECTORY.provider("BITBUCKET").authorize_url(state="st", redirect_uri="http://r/cb", pkce=pkce)
    assert bitbucket.startswith("https://bitbucket.org/site/oauth2/authorize?") and "code_challenge" not in bitbucket


def test_reprs_never_show_secrets() -> None:
    assert "csecret" not in repr(DIRECTORY) and "hooksecret" not in repr(DIRECTORY)
    assert "s3cr3t" not in repr(DIRECTORY.provider("GITHUB").git_credentials("s3cr3t"))
