"""The Connections page (list, filter, complete handshake, delete) and the Auto scaling page (list, create)."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from runyard.console.session import check_csrf
from runyard.console.web import console_of, form_text, page, redirect, render
from runyard.errors import InvalidInput, RunyardError

HANDSHAKE_PATH = "/console/connections/handshake"  # served by console/handshake.py


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


@page
async def connections_page(request: Request) -> Response:
    console = console_of(request)
    find = request.query_params.get("find", "").strip()
    connections = await console.call(console.control.connections.find_all, console.scope)
    needle = find.lower()
    rows = [
        (connection, f"{HANDSHAKE_PATH}?{urlencode({'arn': connection.arn})}")
        for connection in sorted(connections, key=lambda c: c.created_at, reverse=True)
        if not needle
        or any(
            needle in text.lower()
            for text in (
                connection.name,
                connection.provider_type,
                connection.status,
                connection.provider_account or "",
            )
        )
    ]
    return render(request, "connections.html", nav="connections", rows=rows, find=find, total=len(connections))


@page
async def delete_connection(request: Request) -> Response:
    console = console_of(request)
    form = await request.form()
    check_csrf(request, form_text(form, "csrf_token"))
    arn = _text(form.get("arn"))
    try:
        connection = await console.call(console.control.connections.delete, console.scope, arn)
    except RunyardError as error:
        return redirect("/console/connections", error=error.message, request=request)
    return redirect("/console/connections", notice=f"Deleted connection {connection.name}.", request=request)


@page
async def autoscaling_page(request: Request) -> Response:
    console = console_of(request)
    views = await console.call(console.control.autoscaling.find_all, console.scope, name=None, latest_only=False)
    return render(request, "autoscaling.html", nav="autoscaling", views=views, form={})


def _number(form: dict[str, str], name: str, label: str) -> int | None:
    text = form.get(name, "")
    if not text:
        return None
    if not text.isdigit():
        raise InvalidInput(f"{label} must be a whole number, got {text!r}.")
    return int(text)


@page
async def create_autoscaling(request: Request) -> Response:
    console = console_of(request)
    posted = await request.form()
    check_csrf(request, form_text(posted, "csrf_token"))
    form = {key: _text(posted.get(key)) for key in ("name", "max_concurrency", "min_size", "max_size")}
    try:
        name = form["name"]
        # The model's pattern for AutoScalingConfigurationName (the API edge checks it from the model).
        if not (4 <= len(name) <= 32 and name[0].isalnum() and all(c.isalnum() or c in "-_" for c in name)):
            raise InvalidInput(
                "The configuration name must be 4 to 32 letters, numbers, hyphens or underscores, starting with a "
                "letter or number."
            )
        view = await console.call(
            console.control.autoscaling.create,
            console.scope,
            name=name,
            max_concurrency=_number(form, "max_concurrency", "Maximum concurrency"),
            min_size=_number(form, "min_size", "Minimum size"),
            max_size=_number(form, "max_size", "Maximum size"),
            tags=[],
        )
    except RunyardError as error:
        views = await console.call(console.control.autoscaling.find_all, console.scope, name=None, latest_only=False)
        return render(
            request, "autoscaling.html", status_code=400, nav="autoscaling", views=views, form=form, error=error.message
        )
    config = view.config
    return redirect(
        "/console/autoscaling",
        notice=f"Created auto scaling configuration {config.name} (revision {config.revision}).",
        request=request,
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/connections", connections_page, methods=["GET"]),
        Route("/connections/delete", delete_connection, methods=["POST"]),
        Route("/autoscaling", autoscaling_page, methods=["GET"]),
        Route("/autoscaling", create_autoscaling, methods=["POST"]),
    ]
