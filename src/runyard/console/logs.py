"""The Logs tab: the event log, the deployment logs (one stream per deployment, searchable), the application
logs of every instance combined; each viewable in full and followed live (static/console.js polls `.../lines`).

The streams are read with the same selection and formatting as `runyard logs` (observe/log_views.py), so the console
and the CLI show the same lines.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from runyard.console import forms
from runyard.console.web import console_of, page, render
from runyard.control.model.operation import START_DEPLOYMENT, Operation
from runyard.control.model.service import Service
from runyard.errors import NotFound
from runyard.observe.log_views import Selection, Tail, service_logs_selection
from runyard.observe.logs import DEPLOYMENT_PREFIX, LogStore, service_log_group

LATEST_EVENTS = 20
MAX_LINES = 5000  # one poll answers at most this many lines; the next poll goes on from there
_STREAM_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True, slots=True)
class DeploymentLog:
    stream_id: str  # the operation id without dashes, as the stream name ends
    operation: Operation | None
    last_written: float | None

    @property
    def title(self) -> str:
        if self.operation is None:
            return f"Deployment {self.stream_id}"
        if self.operation.type == START_DEPLOYMENT:
            return "Manual deployment"
        return forms.words(self.operation.type)


def _selection(service: Service, kind: str) -> Selection:
    if kind == "events":
        return service_logs_selection(service, deployment=None, application=False)
    if kind == "application":
        return service_logs_selection(service, deployment=None, application=True)
    stream_id = kind.removeprefix("deployment-")
    if kind.startswith("deployment-") and _STREAM_ID.fullmatch(stream_id):
        return service_logs_selection(service, deployment=stream_id, application=False)
    raise NotFound(f"No log named {kind!r} for service {service.name}.")


def read_lines(store: LogStore, selection: Selection, offsets: dict[str, int]) -> tuple[list[str], dict[str, int]]:
    """The lines written since `offsets` (stream -> byte offset; empty: from the start), and the new offsets."""
    lines: list[str] = []
    tail = Tail(store, selection, lines.append, offsets=dict(offsets))
    tail.raw = {stream: store.is_raw(selection.group, stream) for stream in tail.offsets}
    tail.pump()
    return lines, tail.offsets


def dashboard_logs(store: LogStore, service: Service, operations: list[Operation], find: str) -> dict[str, object]:
    """What the Logs tab shows: the latest events, the deployment logs (filtered by `find`), the application log."""
    events, _ = read_lines(store, _selection(service, "events"), {})
    group = service_log_group(service.name, service.service_id)
    by_stream = {op.id.replace("-", "").lower(): op for op in operations}
    deployments = [
        DeploymentLog(stream_id, by_stream.get(stream_id), store.last_modified(group, stream))
        for stream in store.streams(group)
        if stream.startswith(DEPLOYMENT_PREFIX)
        for stream_id in [stream.removeprefix(DEPLOYMENT_PREFIX)]
    ]
    deployments.sort(key=lambda d: d.operation.created_at if d.operation else d.last_written or 0, reverse=True)
    needle = find.lower()
    shown = [
        d
        for d in deployments
        if not needle
        or any(
            needle in text.lower()
            for text in (
                d.title,
                d.stream_id,
                forms.words(d.operation.status) if d.operation else "",
                forms.status_words(d.operation.status) if d.operation else "",
            )
        )
    ]
    return {"events": events[-LATEST_EVENTS:], "deployments": shown, "deployment_count": len(deployments)}


def deployment_stream_ids(store: LogStore, service: Service) -> set[str]:
    """The operations (ids without dashes) that have a deployment log."""
    group = service_log_group(service.name, service.service_id)
    return {s.removeprefix(DEPLOYMENT_PREFIX) for s in store.streams(group) if s.startswith(DEPLOYMENT_PREFIX)}


@page
async def log_page(request: Request) -> Response:
    console = console_of(request)
    kind = request.path_params["kind"]
    service = await console.service(request.path_params["service_id"])
    selection = _selection(service, kind)
    lines, offsets = await console.call(read_lines, console.logs, selection, {})
    title = {"events": "Event log", "application": "Application logs"}.get(kind, f"Deployment log {kind[11:]}")
    return render(
        request,
        "log.html",
        nav="services",
        service=service,
        title=title,
        lines=lines[-MAX_LINES:],
        cursor=json.dumps(offsets),
        follow_url=f"/console/services/{service.service_id}/logs/{kind}/lines",
        download_name=f"{service.name}-{kind}.log",
        empty=selection.empty,
    )


@page
async def log_lines(request: Request) -> Response:
    """JSON for the live follow: {"lines": [...], "cursor": "<opaque>"}; pass the cursor back next time."""
    console = console_of(request)
    try:
        service = await console.service(request.path_params["service_id"])
        selection = _selection(service, request.path_params["kind"])
    except NotFound as error:
        return JSONResponse({"message": error.message}, status_code=404)
    offsets = _offsets(request.query_params.get("cursor", ""))
    lines, offsets = await console.call(read_lines, console.logs, selection, offsets)
    return JSONResponse({"lines": lines[-MAX_LINES:], "cursor": json.dumps(offsets)})


def _offsets(cursor: str) -> dict[str, int]:
    try:
        decoded = json.loads(cursor) if cursor else {}
    except ValueError:
        return {}
    if not isinstance(decoded, dict):
        return {}
    return {k: v for k, v in decoded.items() if isinstance(k, str) and isinstance(v, int) and v >= 0}


def routes() -> list[BaseRoute]:
    return [
        Route("/services/{service_id}/logs/{kind}", log_page, methods=["GET"]),
        Route("/services/{service_id}/logs/{kind}/lines", log_lines, methods=["GET"]),
    ]
