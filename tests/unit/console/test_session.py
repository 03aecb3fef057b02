"""Console sessions: the sign-in guard, CSRF tokens, the signing key, sign-in and sign-out."""

from __future__ import annotations

import asyncio
import re
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from runyard.console.app import console_app, root_credentials_check
from runyard.console.session import (
    check_csrf,
    csrf_token,
    load_or_create_key,
    sign_in_redirect,
    signed_in,
    start_session,
)
from runyard.console.web import Console


class AsgiBrowser:
    """A browser-like client over the ASGI app in this process: keeps the cookies, follows no redirects."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cookies = httpx.Cookies()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver", cookies=self.cookies) as c:
                answer = await c.request(method, url, **kwargs)
                self.cookies = httpx.Cookies(c.cookies)
                return answer

        return asyncio.run(send())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)


async def guarded(request: Request) -> Response:
    if not signed_in(request):
        return sign_in_redirect(request)
    return PlainTextResponse("inside")


async def token(request: Request) -> Response:
    return PlainTextResponse(csrf_token(request))


async def login(request: Request) -> Response:
    start_session(request, "AKIA")
    return PlainTextResponse(csrf_token(request))


async def act(request: Request) -> Response:
    form = await request.form()
    submitted = form.get("csrf_token")
    check_csrf(request, submitted if isinstance(submitted, str) else None)
    return PlainTextResponse("done")


@pytest.fixture
def client() -> AsgiBrowser:
    app = Starlette(
        routes=[
            Route("/console/services", guarded),
            Route("/console/token", token),
            Route("/console/login", login, methods=["POST"]),
            Route("/console/act", act, methods=["POST"]),
        ],
        middleware=[Middleware(SessionMiddleware, secret_key="k" * 40)],
    )
    return AsgiBrowser(app)


def test_a_stranger_is_sent_to_sign_in_and_back(client: AsgiBrowser) -> None:
    answer = client.get("/console/services?find=web")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/signin?next=%2Fconsole%2Fservices%3Ffind%3Dweb"
    client.post("/console/login")
    assert client.get("/console/services").text == "inside"


def test_a_post_needs_the_sessions_csrf_token(client: AsgiBrowser) -> None:
    issued = client.get("/console/token").text
    assert client.get("/console/token").text == issued  # one token per session
    assert client.post("/console/act", data={"csrf_token": issued}).text == "done"
    for bad in ({}, {"csrf_token": ""}, {"csrf_token": issued[:-1] + "x"}):
        assert client.post("/console/act", data=bad).status_code == 403


def test_a_new_session_has_no_token_to_match(client: AsgiBrowser) -> None:
    assert client.post("/console/act", data={"csrf_token": "guessed"}).status_code == 403


def test_signing_in_starts_a_fresh_session_with_a_new_token(client: AsgiBrowser) -> None:
    before = client.get("/console/token").text
    after = client.post("/console/login").text
    assert after != before


def test_check_csrf_raises_403() -> None:
    request = Request({"type": "http", "session": {"csrf": "abc"}})
    with pytest.raises(HTTPException) as raised:
        check_csrf(request, "abd")
    assert raised.value.status_code == 403
    check_csrf(request, "abc")


def test_the_signing_key_is_made_once_and_private(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path / "data")
    path = tmp_path / "data" / "console-session.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) >= 48
    assert load_or_create_key(tmp_path / "data") == key


def test_root_credentials_check() -> None:
    check = root_credentials_check("AKIAROOT", "s3cret")
    assert check("AKIAROOT", "s3cret")
    assert not check("AKIAROOT", "s3cre")
    assert not check("AKIAOTHER", "s3cret")
    assert not check("", "")


@pytest.fixture
def console() -> AsgiBrowser:
    """The real console app (sign-in and sign-out need nothing of the control plane)."""
    parts = Console(
        control=cast(Any, None),
        logs=cast(Any, None),
        account="000000000000",
        region="us-east-1",
        http_port=9080,
        runtimes={},
        metrics=cast(Any, None),
        check_credentials=root_credentials_check("AKIAROOT", "s3cret"),
    )
    return AsgiBrowser(Starlette(routes=[Mount("/console", app=console_app(parts, session_key="x" * 48))]))


def _form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_sign_in_and_sign_out(console: AsgiBrowser) -> None:
    page = console.get("/console/signin", params={"next": "/console/services/abc?tab=logs"})
    assert "Access key ID" in page.text and "Secret access key" in page.text
    token = _form_token(page.text)
    form = {"csrf_token": token, "access_key_id": "AKIAROOT", "next": "/console/services/abc?tab=logs"}
    wrong = console.post("/console/signin", data={**form, "secret_access_key": "nope"})
    assert wrong.status_code == 401 and "not right" in wrong.text
    assert (
        console.post("/console/signin", data={**form, "secret_access_key": "s3cret", "csrf_token": "x"}).status_code
        == 403
    )
    signed = console.post("/console/signin", data={**form, "secret_access_key": "s3cret"})
    assert (signed.status_code, signed.headers["location"]) == (303, "/console/services/abc?tab=logs")
    # Signed in: the sign-in page sends straight on; sign out needs the (new) token, then the session is gone.
    assert console.get("/console/signin").status_code == 303
    assert console.post("/console/signout", data={"csrf_token": token}).status_code == 403
    home = console.get("/console/signin", params={"next": "/console/autoscaling"})
    assert home.headers["location"] == "/console/autoscaling"
    out = console.post("/console/signout", data={"csrf_token": _session_token(console)})
    assert (out.status_code, out.headers["location"]) == (303, "/console/signin")
    assert console.get("/console/services").status_code == 303


def _session_token(console: AsgiBrowser) -> str:
    """The signed-in session's token, as every page's sign-out form carries it (the error page is one)."""
    return _form_token(console.get("/console/no-such-page").text)


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/elsewhere", "javascript:alert(1)"])
def test_sign_in_never_redirects_off_the_console(console: AsgiBrowser, target: str) -> None:
    token = _form_token(console.get("/console/signin").text)
    answer = console.post(
        "/console/signin",
        data={"csrf_token": token, "access_key_id": "AKIAROOT", "secret_access_key": "s3cret", "next": target},
    )
    assert answer.headers["location"] == "/console/services"


def test_a_service_that_is_not_there_is_a_404_page_or_a_return_to_the_list() -> None:
    """One place (`page`) answers for every console URL naming a service that does not exist (or no longer)."""
    control = SimpleNamespace(services=SimpleNamespace(find_all=lambda scope: []))
    parts = Console(
        control=cast(Any, control),
        logs=cast(Any, None),
        account="000000000000",
        region="us-east-1",
        http_port=9080,
        runtimes={},
        metrics=cast(Any, None),
        check_credentials=root_credentials_check("AKIAROOT", "s3cret"),
    )
    console = AsgiBrowser(Starlette(routes=[Mount("/console", app=console_app(parts, session_key="x" * 48))]))
    token = _form_token(console.get("/console/signin").text)
    signed = {"csrf_token": token, "access_key_id": "AKIAROOT", "secret_access_key": "s3cret"}
    assert console.post("/console/signin", data=signed).status_code == 303
    for url in ("/console/services/gone", "/console/services/gone/delete", "/console/services/gone/logs/events"):
        answer = console.get(url)
        assert (answer.status_code, "Service not found: gone" in answer.text) == (404, True), url
    token = _session_token(console)
    for action in ("pause", "delete"):
        answer = console.post(f"/console/services/gone/{action}", data={"csrf_token": token, "confirm": "delete"})
        assert (answer.status_code, answer.headers["location"]) == (303, "/console/services"), action
    assert "Service not found: gone" in console.get("/console/services").text
