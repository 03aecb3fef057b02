"""The console's ASGI app, mounted at /console on the API port by the composition root (runyard/app.py).

Sign-in with the root credentials; a signed session cookie; every form post carries the session's CSRF token.
Pages call the same control-plane commands as the API: there is no second path to the data.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from runyard.console import logs, resources, services
from runyard.console.session import COOKIE_NAME, check_csrf, end_session, signed_in, start_session
from runyard.console.web import HERE, Console, form_text, render

SESSION_MAX_AGE = 12 * 3600  # seconds: a working day, then sign in again


def _safe_next(target: str | None) -> str:
    """Only a path inside the console: never an open redirect to another site."""
    if not target:
        return "/console/services"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/console/") or target.startswith("//"):
        return "/console/services"
    return target


async def sign_in_page(request: Request) -> Response:
    if signed_in(request):
        return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    return render(request, "signin.html", next=_safe_next(request.query_params.get("next")))


async def sign_in(request: Request) -> Response:
    console: Console = request.app.state.console
    form = await request.form()
    check_csrf(request, form_text(form, "csrf_token"))
    access_key = (form_text(form, "access_key_id") or "").strip()
    secret = form_text(form, "secret_access_key") or ""
    target = _safe_next(form_text(form, "next"))
    if not console.check_credentials(access_key, secret):
        return render(
            request,
            "signin.html",
            status_code=401,
            next=target,
            access_key_id=access_key,
            error="The access key ID or the secret access key is not right.",
        )
    start_session(request, access_key)
    return RedirectResponse(target, status_code=303)


async def sign_out(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, form_text(form, "csrf_token"))
    end_session(request)
    return RedirectResponse("/console/signin", status_code=303)


async def home(_: Request) -> Response:
    return RedirectResponse("/console/services", status_code=303)


async def console_entry(_: Request) -> Response:
    """GET /console (no slash): outside the console's mount, so the server routes it here."""
    return RedirectResponse("/console/services", status_code=303)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return render(request, "error.html", status_code=exc.status_code, message=exc.detail)


def root_credentials_check(access_key_id: str, secret_access_key: str) -> Callable[[str, str], bool]:
    """A credential check against the root credentials, in constant time."""

    def check(access_key: str, secret: str) -> bool:
        same_key = secrets.compare_digest(access_key.encode(), access_key_id.encode())
        same_secret = secrets.compare_digest(secret.encode(), secret_access_key.encode())
        return same_key and same_secret

    return check


def console_app(console: Console, *, session_key: str, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The console; `extra_routes` (e.g. console/handshake.py's) are served under /console like its own pages."""
    app = Starlette(
        routes=[
            Route("/", home, methods=["GET"]),
            Route("/signin", sign_in_page, methods=["GET"]),
            Route("/signin", sign_in, methods=["POST"]),
            Route("/signout", sign_out, methods=["POST"]),
            *services.routes(),
            *logs.routes(),
            *resources.routes(),
            *extra_routes,
            Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
        ],
        middleware=[
            Middleware(
                SessionMiddleware,
                secret_key=session_key,
                session_cookie=COOKIE_NAME,
                max_age=SESSION_MAX_AGE,
                path="/console",
                same_site="lax",
            )
        ],
        exception_handlers={HTTPException: http_error},
    )
    app.state.console = console
    return app
