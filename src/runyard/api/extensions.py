"""Runyard's own endpoints beside the AWS APIs (connection handshakes, git credentials): POSTed JSON, signed like
the API (SigV4 with the root credentials), answered with JSON; errors are `{"__type": <AWS error name>,
"Message": ...}` with the status codes the AWS APIs use. Bodies never reach a log line: they carry secrets.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from runyard.api.sigv4 import AuthFailure, verify
from runyard.control.context import Scope
from runyard.errors import InvalidState, NotFound, RunyardError

log = logging.getLogger("runyard.api")
Action = Callable[[Scope, dict[str, Any]], dict[str, Any]]
_STATUS: list[tuple[type[RunyardError], int, str]] = [
    (NotFound, 404, "ResourceNotFoundException"),
    (InvalidState, 409, "InvalidStateException"),
    (RunyardError, 400, "InvalidRequestException"),
]


class SignedJsonEndpoint:
    def __init__(self, *, secrets: Callable[[], Mapping[str, str]], account_id: str) -> None:
        self._secrets = secrets
        self._account_id = account_id

    async def run(self, request: Request, required: tuple[str, ...], action: Action) -> Response:
        """Verify the signature, check the body (a JSON object of strings; `required` ones non-empty), run
        `action` in a worker thread with the caller's scope, and answer its result or its domain error."""
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
            return error_response(403, failure.code, failure.message)
        try:
            document = json.loads(body or b"{}")
        except ValueError:
            return error_response(400, "SerializationException", "The body is not JSON.")
        if not isinstance(document, dict):
            return error_response(400, "SerializationException", "The body must be a JSON object.")
        missing = [name for name in required if not isinstance(document.get(name), str) or not document[name]]
        if missing:
            return error_response(400, "InvalidRequestException", f"Missing or empty member: {missing[0]}.")
        wrong = [name for name, value in document.items() if value is not None and not isinstance(value, str)]
        if wrong:
            return error_response(400, "SerializationException", f"Member {wrong[0]} must be a string.")
        try:
            result = await run_in_threadpool(action, Scope(self._account_id, identity.region), document)
        except RunyardError as error:
            status, code = next((s, c) for cls, s, c in _STATUS if isinstance(error, cls))
            log.info("%s refused: %s", request.url.path, code)
            return error_response(status, code, error.message)
        log.info("%s done", request.url.path)
        return JSONResponse(result)


def error_response(status: int, code: str, message: str) -> Response:
    return JSONResponse({"__type": code, "Message": message}, status_code=status, headers={"x-amzn-ErrorType": code})
