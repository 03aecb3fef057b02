"""What every git provider adapter does: account look-up, OAuth 2.0, webhooks, repository ownership, git access.

Adapters follow each provider's published REST and OAuth shapes; the URLs come from the settings (or a
host's ProviderEndpoint), so the public service, a self-hosted forge and the test forge work the same way.
Tokens are passed in and never logged, raised or returned in a message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from runyard.source.git import GitCredentials, SourceError

DEFAULT_TIMEOUT = 10.0


class CredentialRejected(SourceError):
    """The provider answered that the token is not (or no longer) valid."""


class ProviderUnavailable(SourceError):
    """The provider could not be reached or answered with an error that says nothing about the token."""


@dataclass(frozen=True, slots=True)
class ProviderEndpoints:
    api_url: str
    web_url: str
    client_id: str = ""
    client_secret: str = ""
    webhook_secret: str = ""

    def __repr__(self) -> str:  # the client and webhook secrets stay out of every repr
        return f"ProviderEndpoints(api_url={self.api_url!r}, web_url={self.web_url!r})"


@dataclass(frozen=True, slots=True)
class ProviderAccount:
    login: str  # the user name on the provider
    account_id: str  # the provider's stable id of that user


@dataclass(frozen=True, slots=True)
class PushEvent:
    """A push to one branch: the repository's URLs as the provider names them, the branch and its new head."""

    repository_urls: tuple[str, ...]
    branch: str
    commit_sha: str


@dataclass(frozen=True, slots=True)
class Pkce:
    """RFC 7636 S256: the verifier stays with Runyard, the challenge goes to the provider."""

    verifier: str

    @classmethod
    def new(cls) -> Pkce:
        return cls(secrets.token_urlsafe(48))

    @property
    def challenge(self) -> str:
        digest = hashlib.sha256(self.verifier.encode()).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def normalized_repository_url(url: str) -> str:
    """scheme://host[:port]/path without user info, trailing slash or `.git`, lower-cased host: for comparing."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    netloc = f"{host}:{parts.port}" if parts.port else host
    path = parts.path.rstrip("/").removesuffix(".git").rstrip("/")
    return f"{parts.scheme.lower()}://{netloc}{path}"


class Provider(ABC):
    """One provider flavour at one set of URLs."""

    display_name: str
    git_username: str  # the user name that goes with a token over HTTPS
    supports_pkce: bool = True
    client_auth_basic: bool = False  # client credentials in HTTP basic auth instead of the form

    def __init__(self, endpoints: ProviderEndpoints, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.endpoints = endpoints
        self._timeout = timeout

    # -- accounts ---------------------------------------------------------------------------------

    @abstractmethod
    def current_user(self, token: str) -> ProviderAccount:
        """The account the token belongs to (the provider's "current user" endpoint)."""

    def _get_json(self, path: str, token: str) -> Any:
        url = self.endpoints.api_url.rstrip("/") + path
        try:
            response = httpx.get(
                url,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                timeout=self._timeout,
            )
        except httpx.HTTPError as error:
            raise ProviderUnavailable(f"cannot reach {self.display_name} at {url}: {type(error).__name__}") from None
        if response.status_code in (401, 403):
            raise CredentialRejected(f"{self.display_name} rejected the token (HTTP {response.status_code} from {url})")
        if response.status_code != 200:
            raise ProviderUnavailable(f"{self.display_name} answered HTTP {response.status_code} from {url}")
        try:
            return response.json()
        except ValueError:
            raise ProviderUnavailable(f"{self.display_name} answered {url} with something that is not JSON") from None

    # -- OAuth 2.0 authorization code -------------------------------------------------------------

    @property
    def oauth_configured(self) -> bool:
        return bool(self.endpoints.client_id and self.endpoints.client_secret)

    @abstractmethod
    def authorize_path(self) -> str: ...

    @abstractmethod
    def token_path(self) -> str: ...

    def authorize_scopes(self) -> str:
        return ""

    def authorize_url(self, *, state: str, redirect_uri: str, pkce: Pkce | None) -> str:
        query = {
            "client_id": self.endpoints.client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "state": state,
        }
        if self.authorize_scopes():
            query["scope"] = self.authorize_scopes()
        if pkce is not None and self.supports_pkce:
            query.update(code_challenge=pkce.challenge, code_challenge_method="S256")
        return self.endpoints.web_url.rstrip("/") + self.authorize_path() + "?" + urlencode(query)

    def exchange_code(self, *, code: str, redirect_uri: str, pkce: Pkce | None) -> str:
        """The access token for an authorization code (the provider's token endpoint)."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        if pkce is not None and self.supports_pkce:
            form["code_verifier"] = pkce.verifier
        url = self.endpoints.web_url.rstrip("/") + self.token_path()
        auth: tuple[str, str] | None = None
        if self.client_auth_basic:
            auth = (self.endpoints.client_id, self.endpoints.client_secret)
        else:
            form.update(client_id=self.endpoints.client_id, client_secret=self.endpoints.client_secret)
        try:
            response = httpx.post(
                url,
                data=form,
                auth=auth,
                headers={"Accept": "application/json"},
                timeout=self._timeout,
            )
        except httpx.HTTPError as error:
            raise ProviderUnavailable(f"cannot reach {self.display_name} at {url}: {type(error).__name__}") from None
        try:
            document = response.json()
        except ValueError:
            document = {}
        token = document.get("access_token") if isinstance(document, dict) else None
        if response.status_code != 200 or not isinstance(token, str) or not token:
            reason = document.get("error", f"HTTP {response.status_code}") if isinstance(document, dict) else ""
            raise CredentialRejected(f"{self.display_name} refused the authorization code ({reason})")
        return token

    # -- webhooks ---------------------------------------------------------------------------------

    @abstractmethod
    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> bool:
        """Whether the request carries this provider's proof of the configured webhook secret."""

    @abstractmethod
    def parse_push(self, headers: Mapping[str, str], body: bytes) -> PushEvent | None:
        """The branch push a webhook reports; None for other events (pings, tags, deleted branches)."""

    # -- repositories -----------------------------------------------------------------------------

    def owns(self, repository_url: str) -> bool:
        """Whether the repository URL is on this provider: under its web URL (same scheme, host and port)."""
        base = normalized_repository_url(self.endpoints.web_url)
        url = normalized_repository_url(repository_url)
        return url.startswith(base + "/") and len(url) > len(base) + 1

    def git_credentials(self, token: str) -> GitCredentials:
        return GitCredentials(self.git_username, token)


def json_object(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def hmac_sha256_matches(secret: str, body: bytes, signature: str | None) -> bool:
    """`sha256=<hex HMAC>` over the raw body, compared in constant time (GitHub's and Bitbucket's scheme)."""
    if not secret or not signature or not signature.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.removeprefix("sha256=").strip().lower())
