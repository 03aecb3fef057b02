"""What every console page shares: the collaborators it is given, rendering, flash messages, the sign-in guard,
and running control-plane commands off the event loop."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from runyard.console.forms import status_words, words
from runyard.console.session import csrf_token, sign_in_redirect, signed_in
from runyard.control.context import Scope
from runyard.control.model.service import Service
from runyard.control.plane import ControlPlane
from runyard.errors import NotFound
from runyard.observe.logs import LogStore
from runyard.observe.metrics import Metrics

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")

P = ParamSpec("P")
T = TypeVar("T")


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "—"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


TEMPLATES.env.filters["when"] = _when
TEMPLATES.env.filters["status_words"] = status_words
TEMPLATES.env.filters["words"] = words


@dataclass(frozen=True, slots=True)
class Console:
    """The console's collaborators, handed in by the composition root."""

    control: ControlPlane
    logs: LogStore
    account: str
    region: str
    http_port: int
    runtimes: Mapping[str, str]  # API runtime name -> what this host runs it with, e.g. "Python 3.11.2"
    metrics: Metrics  # the AWS/AppRunner metrics (Metrics tab)
    check_credentials: Callable[[str, str], bool]

    @property
    def scope(self) -> Scope:
        return Scope(self.account, self.region)

    def service_url(self, service: Service) -> str:
        """The service's default domain (its ServiceUrl): `<label>.<region>.<suffix>[:<port>]`."""
        host = f"{service.url_label}.{service.region}.{self.control.deps.domain_suffix}"
        return host if self.http_port == 80 else f"{host}:{self.http_port}"

    async def call(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A control-plane command or query (they block on the store): in a worker thread."""
        return await run_in_threadpool(function, *args, **kwargs)

    async def service(self, service_id: str) -> Service:
        """The service of a console URL (`/console/services/<service id>`), deleted ones included."""
        for service in await self.call(self.control.services.find_all, self.scope):
            if service.service_id == service_id:
                return service
        raise NotFound(f"Service not found: {service_id}")


def form_text(form: Mapping[str, object], name: str) -> str | None:
    """A posted text field (None when absent or a file)."""
    value = form.get(name)
    return value if isinstance(value, str) else None


def posted(form: FormData) -> dict[str, list[str]]:
    """Every posted text field with its values (files are not console input)."""
    return {key: [v for v in form.getlist(key) if isinstance(v, str)] for key in form}


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    flashed = request.session.pop("flash", None)
    if isinstance(flashed, dict):
        for key in ("notice", "error"):
            context.setdefault(key, flashed.get(key))
    return TEMPLATES.TemplateResponse(
        request, template, {"csrf_token": csrf_token(request), **context}, status_code=status_code
    )


def redirect(url: str, *, notice: str | None = None, error: str | None = None, request: Request) -> Response:
    """303 to `url` (after a POST), with a message for the next page."""
    if notice or error:
        request.session["flash"] = {"notice": notice, "error": error}
    return RedirectResponse(url, status_code=303)


Page = Callable[[Request], Awaitable[Response]]


def page(handler: Page) -> Page:
    """Only for signed-in users; everyone else goes to the sign-in page and comes back afterwards.

    A resource the URL names that is not there (a deleted service, a stale link) is a 404 page for a GET, and
    for a form post a return to the services list saying so.
    """

    @functools.wraps(handler)
    async def guarded(request: Request) -> Response:
        if not signed_in(request):
            return sign_in_redirect(request)
        try:
            return await handler(request)
        except NotFound as error:
            if request.method == "GET":
                return render(request, "not_found.html", status_code=404, nav="services", message=error.message)
            return redirect("/console/services", error=error.message, request=request)

    return guarded
