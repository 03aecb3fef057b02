"""Runyard extensions for connections, signed like the API (SigV4 with the root credentials):

    POST /runyard/connections/complete-handshake  {"Connection": name or ARN, "Token": "..."}
    POST /runyard/connections/set-up-host         {"HostArn": "..."}

The access-token handshake is for self-hosters whose forge has no OAuth app for Runyard; the token is
verified with the provider's "current user" endpoint before the connection becomes AVAILABLE. Answers
are JSON; errors are `{"__type": <AWS error name>, "Message": ...}`. Tokens never appear in a log line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from runyard.api.sigv4 import AuthFailure, verify
from runyard.control.codeconnections import NAMESPACES
from runyard.control.context import Scope
from runyard.control.plane import ControlPlane
from runyard.errors import InvalidInput, InvalidState, NotFound, NotSupported, RunyardError
from runyard.ids import Arn, parse_arn

log = logging.getLogger("runyard.api")
HANDSHAKE_PATH = "/runyard/connections/complete-handshake"
HOST_SETUP_PATH = "/runyard/connections/set-up-host"
_STATUS: list[tuple[type[RunyardError], int, str]] = [
    (NotFound, 404, "ResourceNotFoundException"),
    (InvalidState, 409, "InvalidStateException"),
    (NotSupported, 400, "InvalidRequestException"),
    (RunyardError, 400, "InvalidRequestException"),
]


class ConnectionExtensions:
    def __init__(self, control: ControlPlane, *, secrets: Callable[[], Mapping[str, str]], account_id: str) -> None:
        self._control = control
        self._secrets = secrets
        self._account_id = account_id

    def routes(self) -> list[BaseRoute]:
        return [
            Route(HANDSHAKE_PATH, self.complete_handshake, methods=["POST"]),
            Route(HOST_SETUP_PATH, self.set_up_host, methods=["POST"]),
        ]

    async def complete_handshake(self, request: Request) -> Response:
        return await self._run(request, ("Connection", "Token"), self._complete)

    async def set_up_host(self, request: Request) -> Response:
        return await self._run(request, ("HostArn",), self._set_up)

    async def _run(
        self, request: Request, required: tuple[str, ...], action: Callable[[Scope, dict[str, Any]], dict[str, Any]]
    ) -> Response:
        body = await request.body()
        try:
            identity = verify(
                method=request.method,
                raw_path=request.scope.get("raw_path", b"/").decode("latin-1") or "/",
                query=request.scope.get("query_string", b"").decode("latin-1"),
                headers=request.headers,
                body=body,
                secrets=self._secrets(),
            )
        except AuthFailure as failure:
            return _error(403, failure.code, failure.message)
        try:
            document = json.loads(body or b"{}")
        except ValueError:
            return _error(400, "SerializationException", "The body is not JSON.")
        if not isinstance(document, dict):
            return _error(400, "SerializationException", "The body must be a JSON object.")
        missing = [name for name in required if not isinstance(document.get(name), str) or not document[name]]
        if missing:
            return _error(400, "InvalidRequestException", f"Missing or empty member: {missing[0]}.")
        scope = Scope(self._account_id, identity.region)
        try:
            result = await run_in_threadpool(action, scope, document)
        except RunyardError as error:
            status, code = next((s, c) for cls, s, c in _STATUS if isinstance(error, cls))
            log.info("%s refused: %s", request.url.path, code)
            return _error(status, code, error.message)
        log.info("%s done for %s", request.url.path, result.get("ConnectionArn") or result.get("HostArn"))
        return JSONResponse(result)

    def _complete(self, scope: Scope, document: dict[str, Any]) -> dict[str, Any]:
        reference, token = str(document["Connection"]), str(document["Token"])
        arn = parse_arn(reference)
        if arn is None and not self._control.connections.find_all(scope, name=reference):
            # Not an App Runner connection's name in this region: a CodeConnections connection's, if unique.
            named = self._control.codeconnections.find_by_name(scope, reference)
            if len(named) > 1:
                raise InvalidInput(f"{len(named)} CodeConnections connections are named {reference}; give its ARN.")
            if named:
                arn = Arn("codeconnections", named[0].region, named[0].account, f"connection/{named[0].connection_id}")
        if arn is not None and arn.service in NAMESPACES:
            done = self._control.codeconnections.complete_handshake(scope, str(arn), token)
            wire_arn = str(Arn(arn.service, done.region, done.account, f"connection/{done.connection_id}"))
            return _answer(wire_arn, done.name, done.provider_type, done.status, done.provider_account)
        connection = self._control.connections.complete_handshake(scope, reference, token)
        return _answer(
            connection.arn,
            connection.name,
            connection.provider_type,
            connection.status,
            connection.provider_account,
        )

    def _set_up(self, scope: Scope, document: dict[str, Any]) -> dict[str, Any]:
        host = self._control.codeconnections.set_up_host(scope, str(document["HostArn"]))
        return {"HostArn": document["HostArn"], "Name": host.name, "Status": host.status}


def _answer(arn: str, name: str, provider_type: str, status: str, account: str | None) -> dict[str, Any]:
    return {
        "ConnectionArn": arn,
        "ConnectionName": name,
        "ProviderType": provider_type,
        "Status": status,
        "ProviderAccount": account,
    }


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"__type": code, "Message": message}, status_code=status, headers={"x-amzn-ErrorType": code})
