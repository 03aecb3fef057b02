"""Bitbucket Cloud: REST API 2.0 and OAuth 2.0 (client credentials in basic auth), as Atlassian documents them."""

from __future__ import annotations

from collections.abc import Mapping

from runyard.source.providers.base import (
    Provider,
    ProviderAccount,
    ProviderUnavailable,
    PushEvent,
    hmac_sha256_matches,
    json_object,
)


class Bitbucket(Provider):
    display_name = "Bitbucket"
    git_username = "x-token-auth"
    supports_pkce = False  # Bitbucket Cloud's OAuth 2.0 does not document PKCE
    client_auth_basic = True

    def current_user(self, token: str) -> ProviderAccount:
        user = self._get_json("/user", token)  # GET /2.0/user: {"username": ..., "account_id": ..., "uuid": ...}
        if not isinstance(user, dict) or not (user.get("username") or user.get("nickname")):
            raise ProviderUnavailable(f"{self.display_name} answered GET /user without a username")
        login = user.get("username") or user.get("nickname")
        return ProviderAccount(str(login), str(user.get("account_id") or user.get("uuid") or ""))

    def authorize_path(self) -> str:
        return "/site/oauth2/authorize"

    def token_path(self) -> str:
        return "/site/oauth2/access_token"

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> bool:
        # Webhooks with a secret carry X-Hub-Signature: sha256=<HMAC-SHA256 of the body>.
        return hmac_sha256_matches(self.endpoints.webhook_secret, body, headers.get("x-hub-signature"))

    def parse_push(self, headers: Mapping[str, str], body: bytes) -> PushEvent | None:
        if headers.get("x-event-key") != "repo:push":
            return None
        event = json_object(body)
        repository = event.get("repository") or {}
        links = repository.get("links") or {}
        html = (links.get("html") or {}).get("href")
        urls = (str(html),) if html else ()
        # The newest change to a branch wins; a push may carry several.
        for change in reversed((event.get("push") or {}).get("changes") or []):
            new = change.get("new") or {}
            target = new.get("target") or {}
            if new.get("type") == "branch" and new.get("name") and target.get("hash"):
                return PushEvent(urls, str(new["name"]), str(target["hash"]))
        return None
