"""A test forge: one small server that answers like GitHub, GitLab and Bitbucket do.

It stands in for the providers' OAuth 2.0 and REST APIs (which cannot be reached from the tests), following
their published shapes, and serves real repositories with `git http-backend` behind token authentication.
After a push it sends each flavour's push webhook to the hooks registered for the repository.

    GitHub     GET /user  GET /api/v3/user   /login/oauth/authorize  POST /login/oauth/access_token
    GitLab     GET /api/v4/user              /oauth/authorize        POST /oauth/token
    Bitbucket  GET /2.0/user                 /site/oauth2/authorize  POST /site/oauth2/access_token
    git        /<owner>/<name>.git/...       (basic auth: any user name and a live token, or a user's password)
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import os
import re
import secrets
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.support import free_port

_GIT_PATH = re.compile(
    r"^/(?P<repo>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+\.git)/(info/refs|git-upload-pack|git-receive-pack)$"
)
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "Forge User",
    "GIT_AUTHOR_EMAIL": "user@forge.invalid",
    "GIT_COMMITTER_NAME": "Forge User",
    "GIT_COMMITTER_EMAIL": "user@forge.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
}


@dataclass
class OAuthClient:
    client_id: str
    client_secret: str


@dataclass
class PendingCode:
    client_id: str
    redirect_uri: str
    login: str
    challenge: str | None


@dataclass
class Hook:
    flavour: str  # github | gitlab | bitbucket
    url: str
    secret: str


@dataclass
class Forge:
    root: Path
    port: int = field(default_factory=free_port)
    signed_in: str = "octocat"  # the user who "approves" OAuth authorize requests
    tokens: dict[str, str] = field(default_factory=dict)  # token -> login
    revoked: set[str] = field(default_factory=set)
    passwords: dict[str, str] = field(default_factory=dict)  # user -> password: a plain git server's basic auth
    clients: dict[str, OAuthClient] = field(default_factory=dict)
    codes: dict[str, PendingCode] = field(default_factory=dict)
    hooks: dict[str, list[Hook]] = field(default_factory=dict)  # "owner/name" -> hooks
    deliveries: list[tuple[str, int]] = field(default_factory=list)  # (hook url, HTTP status or 0)
    requests: list[str] = field(default_factory=list)  # "METHOD path" of every request, for assertions
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1001))

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Forge:
        (self.root / "repos").mkdir(parents=True, exist_ok=True)
        config = uvicorn.Config(
            self.app(), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off", ws="none"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test forge did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = None

    # -- accounts and OAuth apps -----------------------------------------------------------------

    def issue_token(self, login: str | None = None) -> str:
        token = "forge_" + secrets.token_hex(20)
        self.tokens[token] = login or self.signed_in
        return token

    def revoke(self, token: str) -> None:
        self.revoked.add(token)

    def register_client(self) -> OAuthClient:
        client = OAuthClient("client-" + secrets.token_hex(6), "secret-" + secrets.token_hex(16))
        self.clients[client.client_id] = client
        return client

    def _login(self, token: str | None) -> str | None:
        if token is None or token in self.revoked:
            return None
        return self.tokens.get(token)

    # -- repositories ------------------------------------------------------------------------------

    def repo_path(self, full_name: str) -> Path:
        return self.root / "repos" / f"{full_name}.git"

    def repo_url(self, full_name: str) -> str:
        return f"{self.url}/{full_name}.git"

    def create_repo(self, full_name: str) -> str:
        path = self.repo_path(full_name)
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True, env=_env())
        return self.repo_url(full_name)

    def push(self, full_name: str, files: dict[str, str], *, token: str, message: str = "change") -> str:
        """Commit `files` on top of main and push it over HTTP with `token`, as a user would; returns the SHA."""
        work = self.root / "work" / full_name
        env = _env()
        if not (work / ".git").exists():
            work.mkdir(parents=True)
            subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True, env=env)
        for name, text in files.items():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_text(text)
        subprocess.run(["git", "-C", str(work), "add", "-A"], check=True, env=env)
        subprocess.run(["git", "-C", str(work), "commit", "-q", "--allow-empty", "-m", message], check=True, env=env)
        # The token goes to git through its environment, as Runyard does it: never in the URL.
        helper = '!f() { test "$1" = get && printf "username=forge\\npassword=%s\\n" "$FORGE_TOKEN"; }; f'
        url = self.repo_url(full_name)
        subprocess.run(
            ["git", "-C", str(work), "-c", f"credential.helper={helper}", "push", "-q", url, "main"],
            check=True,
            env={**env, "FORGE_TOKEN": token},
            capture_output=True,
        )
        out = subprocess.run(["git", "-C", str(work), "rev-parse", "HEAD"], check=True, env=env, capture_output=True)
        return out.stdout.decode().strip()

    def add_hook(self, full_name: str, flavour: str, url: str, secret: str) -> None:
        self.hooks.setdefault(full_name, []).append(Hook(flavour, url, secret))

    # -- the ASGI app ------------------------------------------------------------------------------

    def app(self) -> Starlette:
        routes = [
            Route("/user", self.github_user),
            Route("/api/v3/user", self.github_user),
            Route("/api/v4/user", self.gitlab_user),
            Route("/2.0/user", self.bitbucket_user),
            Route("/login/oauth/authorize", self.authorize),
            Route("/oauth/authorize", self.authorize),
            Route("/site/oauth2/authorize", self.authorize),
            Route("/login/oauth/access_token", self.token, methods=["POST"]),
            Route("/oauth/token", self.token, methods=["POST"]),
            Route("/site/oauth2/access_token", self.token, methods=["POST"]),
            Route("/{path:path}", self.git, methods=["GET", "POST"]),
        ]
        app = Starlette(routes=routes)

        async def logged(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                self.requests.append(f"{scope['method']} {scope['path']}")
            await app(scope, receive, send)

        return logged  # type: ignore[return-value]

    def _bearer(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        return header[7:] if header.lower().startswith("bearer ") else None

    async def github_user(self, request: Request) -> Response:
        login = self._login(self._bearer(request))
        if login is None:
            return JSONResponse(
                {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}, 401
            )
        return JSONResponse({"login": login, "id": _user_id(login), "type": "User", "name": login.title()})

    async def gitlab_user(self, request: Request) -> Response:
        login = self._login(self._bearer(request))
        if login is None:
            return JSONResponse({"message": "401 Unauthorized"}, 401)
        return JSONResponse({"id": _user_id(login), "username": login, "name": login.title(), "state": "active"})

    async def bitbucket_user(self, request: Request) -> Response:
        login = self._login(self._bearer(request))
        if login is None:
            return JSONResponse({"type": "error", "error": {"message": "Access token expired."}}, 401)
        uuid = "{" + f"{_user_id(login):08d}-0000-4000-8000-000000000000" + "}"
        account_id = f"5f{_user_id(login)}"
        return JSONResponse(
            {"type": "user", "username": login, "display_name": login.title(), "account_id": account_id, "uuid": uuid}
        )

    async def authorize(self, request: Request) -> Response:
        query = request.query_params
        client = self.clients.get(query.get("client_id", ""))
        redirect_uri = query.get("redirect_uri")
        if client is None or not redirect_uri or query.get("response_type", "code") != "code":
            return JSONResponse({"error": "invalid_request"}, 400)
        challenge = query.get("code_challenge")
        if challenge is not None and query.get("code_challenge_method") != "S256":
            return JSONResponse({"error": "invalid_request", "error_description": "S256 only"}, 400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = PendingCode(client.client_id, redirect_uri, self.signed_in, challenge)
        separator = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(
            redirect_uri + separator + urlencode({"code": code, "state": query.get("state", "")}), 302
        )

    async def token(self, request: Request) -> Response:
        form = await request.form()
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            client_id, _, client_secret = base64.b64decode(header[6:]).decode().partition(":")
        client = self.clients.get(str(client_id))
        if client is None or not hmac.compare_digest(client.client_secret, str(client_secret)):
            return JSONResponse({"error": "invalid_client"}, 401)
        pending = self.codes.pop(str(form.get("code")), None)
        if pending is None or pending.client_id != client.client_id:
            return JSONResponse({"error": "invalid_grant"}, 400)
        if form.get("redirect_uri") not in (None, pending.redirect_uri):
            return JSONResponse({"error": "invalid_grant", "error_description": "redirect_uri mismatch"}, 400)
        if pending.challenge is not None:
            verifier = str(form.get("code_verifier", ""))
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
            if not hmac.compare_digest(digest, pending.challenge):
                return JSONResponse({"error": "invalid_grant", "error_description": "PKCE verification failed"}, 400)
        token = self.issue_token(pending.login)
        return JSONResponse({"access_token": token, "token_type": "bearer", "scope": "repo"})

    # -- git smart HTTP through git http-backend -------------------------------------------------

    async def git(self, request: Request) -> Response:
        match = _GIT_PATH.match(request.url.path)
        if match is None:
            return JSONResponse({"message": "Not Found"}, 404)
        header = request.headers.get("authorization", "")
        login = None
        if header.lower().startswith("basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            login = self._login(password)
            if user in self.passwords and hmac.compare_digest(self.passwords[user], password):
                login = user
        if login is None:
            return Response("authentication required\n", 401, headers={"WWW-Authenticate": 'Basic realm="forge"'})
        repo = match.group("repo")
        if not (self.root / "repos" / repo).is_dir():
            return JSONResponse({"message": "Not Found"}, 404)
        full_name = repo.removesuffix(".git")
        pushing = request.url.path.endswith("/git-receive-pack")
        before = _branches(self.repo_path(full_name)) if pushing else {}
        body = await request.body()  # Starlette has decoded any chunked transfer encoding
        env = {
            **_env(),
            "GIT_PROJECT_ROOT": str(self.root / "repos"),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": request.url.path,
            "REQUEST_METHOD": request.method,
            "QUERY_STRING": request.url.query,
            "CONTENT_TYPE": request.headers.get("content-type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": login,
            "REMOTE_ADDR": "127.0.0.1",
        }
        for name in ("content-encoding", "git-protocol"):
            if name in request.headers:
                env["HTTP_" + name.upper().replace("-", "_")] = request.headers[name]
        process = await asyncio.create_subprocess_exec(
            "git", "http-backend", stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        out, _ = await process.communicate(body)
        head, _, payload = out.partition(b"\r\n\r\n")
        status, headers = 200, {}
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers[name] = value.strip()
        task = None
        if pushing:
            task = BackgroundTask(self._deliver, full_name, before, _branches(self.repo_path(full_name)))
        return Response(payload, status, headers=headers, background=task)

    async def _deliver(self, full_name: str, before: dict[str, str], after: dict[str, str]) -> None:
        for branch, sha in after.items():
            if before.get(branch) == sha:
                continue
            for hook in self.hooks.get(full_name, []):
                headers, body = self.push_webhook(hook, full_name, branch, before.get(branch, "0" * 40), sha)
                try:
                    async with httpx.AsyncClient() as client:
                        response = await client.post(hook.url, content=body, headers=headers, timeout=10)
                    self.deliveries.append((hook.url, response.status_code))
                except httpx.HTTPError:
                    self.deliveries.append((hook.url, 0))

    def push_webhook(
        self, hook: Hook, full_name: str, branch: str, before: str, after: str
    ) -> tuple[dict[str, str], bytes]:
        """The flavour's push webhook request, headers and body, as the provider documents it."""
        html = f"{self.url}/{full_name}"
        if hook.flavour == "github":
            document: dict[str, Any] = {
                "ref": f"refs/heads/{branch}",
                "before": before,
                "after": after,
                "created": before == "0" * 40,
                "deleted": False,
                "repository": {"full_name": full_name, "html_url": html, "clone_url": html + ".git"},
                "pusher": {"name": self.signed_in},
            }
            body = json.dumps(document).encode()
            signature = "sha256=" + hmac.new(hook.secret.encode(), body, hashlib.sha256).hexdigest()
            headers = {
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": secrets.token_hex(8),
                "X-Hub-Signature-256": signature,
                "Content-Type": "application/json",
            }
        elif hook.flavour == "gitlab":
            document = {
                "object_kind": "push",
                "ref": f"refs/heads/{branch}",
                "before": before,
                "after": after,
                "checkout_sha": after,
                "project": {"path_with_namespace": full_name, "web_url": html, "git_http_url": html + ".git"},
            }
            body = json.dumps(document).encode()
            headers = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": hook.secret, "Content-Type": "application/json"}
        else:
            document = {
                "push": {"changes": [{"new": {"type": "branch", "name": branch, "target": {"hash": after}}}]},
                "repository": {"full_name": full_name, "links": {"html": {"href": html}}},
            }
            body = json.dumps(document).encode()
            signature = "sha256=" + hmac.new(hook.secret.encode(), body, hashlib.sha256).hexdigest()
            headers = {"X-Event-Key": "repo:push", "X-Hub-Signature": signature, "Content-Type": "application/json"}
        return headers, body


def _env() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("GIT_")}, **_GIT_ENV}


def _branches(bare: Path) -> dict[str, str]:
    out = subprocess.run(
        ["git", "--git-dir", str(bare), "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads"],
        check=True,
        capture_output=True,
        env=_env(),
    )
    return dict(line.split(" ", 1) for line in out.stdout.decode().splitlines() if line)


def _user_id(login: str) -> int:
    return int(hashlib.sha256(login.encode()).hexdigest()[:6], 16)
