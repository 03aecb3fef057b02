"""Git provider adapters, one per flavour, and the directory that picks one for a connection's provider type."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from runyard.source.providers.base import (
    CredentialRejected,
    Pkce,
    Provider,
    ProviderAccount,
    ProviderEndpoints,
    ProviderUnavailable,
    PushEvent,
)
from runyard.source.providers.bitbucket import Bitbucket
from runyard.source.providers.github import GitHub, GitHubEnterpriseServer
from runyard.source.providers.gitlab import GitLab, GitLabSelfManaged

__all__ = [
    "CredentialRejected",
    "Pkce",
    "Provider",
    "ProviderAccount",
    "ProviderDirectory",
    "ProviderEndpoints",
    "ProviderUnavailable",
    "PushEvent",
]

# App Runner (GITHUB, BITBUCKET) and CodeConnections (GitHub, GitLab, ...) names of the same flavours.
FLAVOURS = {
    "GITHUB": "github",
    "GitHub": "github",
    "BITBUCKET": "bitbucket",
    "Bitbucket": "bitbucket",
    "GitLab": "gitlab",
    "GitHubEnterpriseServer": "github-enterprise",
    "GitLabSelfManaged": "gitlab-self-managed",
}
WEBHOOK_FLAVOURS = ("github", "gitlab", "bitbucket")


@dataclass(frozen=True, slots=True)
class ProviderDirectory:
    """The configured cloud providers; installed providers are built from their host's ProviderEndpoint."""

    github: ProviderEndpoints
    gitlab: ProviderEndpoints
    bitbucket: ProviderEndpoints

    @classmethod
    def from_settings(cls, settings: Any) -> ProviderDirectory:
        """From runyard.config.Settings: `<flavour>_api_url`, `_web_url`, `_client_id`, `_client_secret`, ..."""

        def endpoints(flavour: str) -> ProviderEndpoints:
            parts = ("api_url", "web_url", "client_id", "client_secret", "webhook_secret")
            return ProviderEndpoints(*(str(getattr(settings, f"{flavour}_{part}")) for part in parts))

        return cls(github=endpoints("github"), gitlab=endpoints("gitlab"), bitbucket=endpoints("bitbucket"))

    def flavour(self, provider_type: str) -> str | None:
        return FLAVOURS.get(provider_type)

    def provider(self, provider_type: str, host_endpoint: str | None = None) -> Provider:
        """The adapter for a connection. Raises KeyError for a provider type Runyard cannot talk to."""
        flavour = FLAVOURS[provider_type]
        if flavour == "github-enterprise":
            return GitHubEnterpriseServer(self._installed(self.github, host_endpoint, "/api/v3"))
        if flavour == "gitlab-self-managed":
            return GitLabSelfManaged(self._installed(self.gitlab, host_endpoint, "/api/v4"))
        return self.cloud(flavour)

    def cloud(self, flavour: str) -> Provider:
        """The cloud provider of a webhook path: github, gitlab or bitbucket. KeyError otherwise."""
        return {"github": GitHub(self.github), "gitlab": GitLab(self.gitlab), "bitbucket": Bitbucket(self.bitbucket)}[
            flavour
        ]

    @staticmethod
    def _installed(cloud: ProviderEndpoints, endpoint: str | None, api_path: str) -> ProviderEndpoints:
        if not endpoint:
            raise KeyError("an installed provider needs its host's ProviderEndpoint")
        base = endpoint.rstrip("/")
        # The OAuth app of an installed provider is registered on that server, not on the cloud service:
        # only the token handshake applies, but webhooks share the provider's configured secret.
        return replace(cloud, api_url=base + api_path, web_url=base, client_id="", client_secret="")
