"""GitLab (gitlab.com) and GitLab self-managed: REST API v4 and OAuth 2.0 with PKCE, as GitLab documents them."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from runyard.source.providers.base import Provider, ProviderAccount, ProviderUnavailable, PushEvent, json_object


class GitLab(Provider):
    display_name = "GitLab"
    git_username = "oauth2"

    def current_user(self, token: str) -> ProviderAccount:
        user = self._get_json("/user", token)  # GET /api/v4/user: {"username": ..., "id": ...}
        if not isinstance(user, dict) or not user.get("username"):
            raise ProviderUnavailable(f"{self.display_name} answered GET /user without a username")
        return ProviderAccount(str(user["username"]), str(user.get("id", "")))

    def authorize_path(self) -> str:
        return "/oauth/authorize"

    def token_path(self) -> str:
        return "/oauth/token"

    def authorize_scopes(self) -> str:
        return "read_user read_repository"

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> bool:
        # GitLab sends the configured secret token itself in X-Gitlab-Token.
        secret, sent = self.endpoints.webhook_secret, headers.get("x-gitlab-token")
        return bool(secret and sent) and hmac.compare_digest(secret.encode(), str(sent).encode())

    def parse_push(self, headers: Mapping[str, str], body: bytes) -> PushEvent | None:
        if headers.get("x-gitlab-event") != "Push Hook":
            return None
        event = json_object(body)
        ref, after = event.get("ref"), event.get("after") or event.get("checkout_sha")
        if not isinstance(ref, str) or not ref.startswith("refs/heads/") or not isinstance(after, str):
            return None
        if set(after) == {"0"}:
            return None
        project = event.get("project") or event.get("repository") or {}
        urls = tuple(
            str(project[name])
            for name in ("git_http_url", "http_url", "web_url", "homepage", "url")
            if project.get(name)
        )
        return PushEvent(urls, ref.removeprefix("refs/heads/"), after)


class GitLabSelfManaged(GitLab):
    display_name = "GitLab self-managed"
