"""The console's "Complete handshake" pages for App Runner connections.

    GET  /console/connections/handshake?arn=<ARN>   the page: the connection, an OAuth button, an access-token form
    POST /console/connections/handshake/oauth       -> 303 to the provider's authorize URL (state + PKCE)
    GET  /console/connections/oauth/callback        code -> token -> verified -> AVAILABLE -> back to Connections
    POST /console/connections/handshake/token       the access-token handshake for self-hosters

The OAuth state is bound to the connection (in the control plane) and to the browser (in the session), so a
callback that this browser did not start is refused. Tokens are never rendered, logged or put in a URL.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from runyard.console.session import check_csrf
from runyard.console.web import console_of, form_text, page, redirect, render
from runyard.errors import RunyardError

CONNECTIONS = "/console/connections"
CALLBACK_PATH = "/console/connections/oauth/callback"
_SESSION_STATES = "oauth_states"
PROVIDER_NAMES = {"GITHUB": "GitHub", "BITBUCKET": "Bitbucket"}


def _page_url(arn: str) -> str:
    return f"{CONNECTIONS}/handshake?{urlencode({'arn': arn})}"


@page
async def handshake_page(request: Request) -> Response:
    console = console_of(request)
    arn = request.query_params.get("arn", "")
    try:
        connection = await console.call(console.control.connections.get, console.scope, arn)
        oauth = await console.call(console.control.connections.oauth_available, connection)
    except RunyardError as error:
        return redirect(CONNECTIONS, error=error.message, request=request)
    provider = PROVIDER_NAMES.get(connection.provider_type, connection.provider_type)
    return render(
        request, "handshake_connection.html", nav="connections", connection=connection, oauth=oauth, provider=provider
    )


@page
async def start_oauth(request: Request) -> Response:
    console = console_of(request)
    form = await request.form()
    check_csrf(request, form_text(form, "csrf_token"))
    arn = form_text(form, "arn") or ""
    redirect_uri = f"{request.url.scheme}://{request.url.netloc}{CALLBACK_PATH}"
    try:
        started = await console.call(console.control.connections.start_oauth, console.scope, arn, redirect_uri)
    except RunyardError as error:
        return redirect(_page_url(arn), error=error.message, request=request)
    states = request.session.get(_SESSION_STATES)
    request.session[_SESSION_STATES] = [*(states if isinstance(states, list) else [])[-4:], started.state]
    return RedirectResponse(started.authorize_url, status_code=303)


@page
async def oauth_callback(request: Request) -> Response:
    console = console_of(request)
    state, code = request.query_params.get("state", ""), request.query_params.get("code", "")
    states = request.session.get(_SESSION_STATES)
    if not state or not isinstance(states, list) or state not in states:
        return redirect(CONNECTIONS, error="This handshake was not started from this browser.", request=request)
    request.session[_SESSION_STATES] = [s for s in states if s != state]
    if not code:
        reason = request.query_params.get("error_description") or request.query_params.get("error") or "no code"
        return redirect(CONNECTIONS, error=f"The provider did not authorize Runyard ({reason}).", request=request)
    try:
        connection = await console.call(console.control.connections.finish_oauth, state, code)
    except RunyardError as error:
        return redirect(CONNECTIONS, error=error.message, request=request)
    notice = f"Connection {connection.name} is available ({connection.provider_account})."
    return redirect(CONNECTIONS, notice=notice, request=request)


@page
async def token_handshake(request: Request) -> Response:
    console = console_of(request)
    form = await request.form()
    check_csrf(request, form_text(form, "csrf_token"))
    arn, token = form_text(form, "arn") or "", form_text(form, "token") or ""
    try:
        connection = await console.call(console.control.connections.complete_handshake, console.scope, arn, token)
    except RunyardError as error:
        return redirect(_page_url(arn), error=error.message, request=request)
    notice = f"Connection {connection.name} is available ({connection.provider_account})."
    return redirect(CONNECTIONS, notice=notice, request=request)


def handshake_routes() -> list[BaseRoute]:
    """Mounted under /console by console_app(extra_routes=...)."""
    return [
        Route("/connections/handshake", handshake_page, methods=["GET"]),
        Route("/connections/handshake/oauth", start_oauth, methods=["POST"]),
        Route("/connections/oauth/callback", oauth_callback, methods=["GET"]),
        Route("/connections/handshake/token", token_handshake, methods=["POST"]),
    ]
