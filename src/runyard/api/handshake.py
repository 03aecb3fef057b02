"""Runyard extensions for connections, signed like the API (SigV4 with the root credentials):

    POST /runyard/connections/complete-handshake  {"Connection": name or ARN, "Token": "..."}
    POST /runyard/connections/set-up-host         {"HostArn": "..."}

The access-token handshake is for self-hosters whose forge has no OAuth app for Runyard; the token is
verified with the provider's "current user" endpoint before the connection becomes AVAILABLE. Answers
are JSON; errors are `{"__type": <AWS error name>, "Message": ...}`. Tokens never appear in a log line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from runyard.api.extensions import SignedJsonEndpoint
from runyard.control.codeconnections import NAMESPACES
from runyard.control.context import Scope
from runyard.control.plane import ControlPlane
from runyard.errors import InvalidInput
from runyard.ids import Arn, parse_arn

HANDSHAKE_PATH = "/runyard/connections/complete-handshake"
HOST_SETUP_PATH = "/runyard/connections/set-up-host"


class ConnectionExtensions:
    def __init__(self, control: ControlPlane, *, secrets: Callable[[], Mapping[str, str]], account_id: str) -> None:
        self._control = control
        self._endpoint = SignedJsonEndpoint(secrets=secrets, account_id=account_id)

    def routes(self) -> list[BaseRoute]:
        return [
            Route(HANDSHAKE_PATH, self.complete_handshake, methods=["POST"]),
            Route(HOST_SETUP_PATH, self.set_up_host, methods=["POST"]),
        ]

    async def complete_handshake(self, request: Request) -> Response:
        return await self._endpoint.run(request, ("Connection", "Token"), self._complete)

    async def set_up_host(self, request: Request) -> Response:
        return await self._endpoint.run(request, ("HostArn",), self._set_up)

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
