"""GitHub (github.com) and GitHub Enterprise Server: REST v3 and OAuth apps, as GitHub documents them."""

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


class GitHub(Provider):
    display_name = "GitHub"
    git_username = "x-access-token"

    def current_user(self, token: str) -> ProviderAccount:
        user = self._get_json("/user", token)  # GET /user: {"login": ..., "id": ...}
        if not isinstance(user, dict) or not user.get("login"):
            raise ProviderUnavailable(f"{self.display_name} answered GET /user without a login")
        return ProviderAccount(str(user["login"]), str(user.get("id", "")))

    def authorize_path(self) -> str:
        return "/login/oauth/authorize"

    def token_path(self) -> str:
        return "/login/oauth/access_token"

    def authorize_scopes(self) -> str:
        return "repo read:user"

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> bool:
        return hmac_sha256_matches(self.endpoints.webhook_secret, body, headers.get("x-hub-signature-256"))

    def parse_push(self, headers: Mapping[str, str], body: bytes) -> PushEvent | None:
        if headers.get("x-github-event") != "push":
            return None
        event = json_object(body)
        ref, after = event.get("ref"), event.get("after")
        if not isinstance(ref, str) or not ref.startswith("refs/heads/") or not isinstance(after, str):
            return None
        if event.get("deleted") or set(after) == {"0"}:
            return None
        repository = event.get("repository") or {}
        urls = tuple(
            str(repository[name]) for name in ("clone_url", "html_url", "git_url", "ssh_url") if repository.get(name)
        )
        return PushEvent(urls, ref.removeprefix("refs/heads/"), after)


class GitHubEnterpriseServer(GitHub):
    """An installed GitHub: the REST API lives under `<endpoint>/api/v3`."""

    display_name = "GitHub Enterprise Server"
