"""The control plane's ConnectionProviders port over the provider adapters: source errors become domain errors."""

from __future__ import annotations

import httpx

from runyard.errors import InvalidInput, NotSupported
from runyard.source.providers import ProviderDirectory
from runyard.source.providers.base import CredentialRejected, Pkce, Provider, ProviderUnavailable


class ProviderAccess:
    def __init__(self, directory: ProviderDirectory) -> None:
        self.directory = directory

    def provider(self, provider_type: str, endpoint: str | None) -> Provider:
        try:
            return self.directory.provider(provider_type, endpoint)
        except KeyError:
            raise NotSupported(f"Runyard cannot talk to {provider_type} repositories yet.") from None

    def verify_token(self, provider_type: str, endpoint: str | None, token: str) -> str:
        provider = self.provider(provider_type, endpoint)
        try:
            return provider.current_user(token).login
        except CredentialRejected as error:
            raise InvalidInput(f"The handshake failed: {error.message}. Nothing was changed.") from None
        except ProviderUnavailable as error:
            raise InvalidInput(f"The handshake could not be verified: {error.message}. Nothing was changed.") from None

    def token_accepted(self, provider_type: str, endpoint: str | None, token: str) -> bool | None:
        try:
            self.provider(provider_type, endpoint).current_user(token)
        except CredentialRejected:
            return False
        except ProviderUnavailable:
            return None
        return True

    def owns(self, provider_type: str, endpoint: str | None, repository_url: str) -> bool:
        return self.provider(provider_type, endpoint).owns(repository_url)

    def check_host(self, provider_type: str, endpoint: str) -> None:
        """An installed provider's API answers its "current user" endpoint with 401 and JSON when asked anonymously."""
        provider = self.provider(provider_type, endpoint)
        url = provider.endpoints.api_url.rstrip("/") + "/user"
        try:
            response = httpx.get(url, headers={"Accept": "application/json"}, timeout=10)
        except httpx.HTTPError as error:
            raise InvalidInput(f"Cannot reach {provider.display_name} at {url}: {type(error).__name__}.") from None
        try:
            response.json()
            is_json = True
        except ValueError:
            is_json = False
        if response.status_code not in (200, 401, 403) or not is_json:
            raise InvalidInput(
                f"{endpoint} does not answer as {provider.display_name}: GET {url} gave HTTP {response.status_code}."
            )

    def oauth_available(self, provider_type: str, endpoint: str | None) -> bool:
        return self.provider(provider_type, endpoint).oauth_configured

    def authorize_url(
        self, provider_type: str, endpoint: str | None, *, state: str, redirect_uri: str, verifier: str
    ) -> str:
        provider = self.provider(provider_type, endpoint)
        if not provider.oauth_configured:
            raise InvalidInput(
                f"No OAuth app is configured for {provider.display_name} here (client id and secret): "
                "complete the handshake with an access token instead."
            )
        return provider.authorize_url(state=state, redirect_uri=redirect_uri, pkce=Pkce(verifier))

    def exchange_code(
        self, provider_type: str, endpoint: str | None, *, code: str, redirect_uri: str, verifier: str
    ) -> str:
        provider = self.provider(provider_type, endpoint)
        try:
            return provider.exchange_code(code=code, redirect_uri=redirect_uri, pkce=Pkce(verifier))
        except (CredentialRejected, ProviderUnavailable) as error:
            raise InvalidInput(f"The handshake failed: {error.message}. Nothing was changed.") from None
