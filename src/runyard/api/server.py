"""The API endpoint: AWS JSON 1.0 POSTs routed on X-Amz-Target to one provider per service.

    request ─▶ request id ─▶ SigV4 ─▶ target ─▶ decode ─▶ validate (model) ─▶ provider method
                                                                               │ (worker thread)
    response ◀─ serialize (model) ◀──────────────────── result / domain error ◀┘

Unknown failures become the service's internal error with the request id; no traceback leaves.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from botocore import xform_name
from botocore.model import OperationModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from runyard.api import protocol
from runyard.api.context import RequestContext
from runyard.api.errors import WireError, validation_error, wire_error
from runyard.api.models import APPRUNNER, WireService, resolve_target
from runyard.api.sigv4 import AuthFailure, verify
from runyard.control.context import Scope
from runyard.errors import NotSupported, RunyardError

log = logging.getLogger("runyard.api")
JSON_CONTENT_TYPE = "application/x-amz-json-1.0"
_INTERNAL = {APPRUNNER: "InternalServiceErrorException"}
_INTERNAL_DEFAULT = "InternalServerException"

Handler = Callable[[RequestContext, dict[str, Any]], dict[str, Any]]


def _json(status: int, body: dict[str, Any], request_id: str, error_code: str | None = None) -> Response:
    headers = {"x-amzn-RequestId": request_id}
    if error_code:
        headers["x-amzn-ErrorType"] = error_code
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        media_type=JSON_CONTENT_TYPE,
        headers=headers,
    )


def _error(status: int, code: str, message: str, request_id: str) -> Response:
    return _json(status, {"__type": code, "Message": protocol.truncate(message)}, request_id, code)


class ApiEndpoint:
    """The ASGI endpoint behind POST on any path (botocore keeps an endpoint URL's path)."""

    def __init__(
        self,
        *,
        providers: Mapping[str, object],
        secrets: Callable[[], Mapping[str, str]],
        account_id: str,
    ) -> None:
        self._providers = providers
        self._secrets = secrets
        self._account_id = account_id

    async def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        try:
            response = await self._handle(request, request_id)
        except Exception:
            # Whatever failed before or after the provider, the client still gets a JSON error with an id.
            log.exception("%s request failed", request_id)
            response = _error(
                500, "InternalFailure", f"An internal error occurred (request id {request_id}).", request_id
            )
        log.info(
            "%s %s %s %d %.1fms",
            request_id,
            request.headers.get("x-amz-target", "-"),
            request.client.host if request.client else "-",
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response

    async def _handle(self, request: Request, request_id: str) -> Response:
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
            return _error(403, failure.code, failure.message, request_id)

        resolved = resolve_target(request.headers.get("x-amz-target", ""))
        operation = resolved[0].operation(resolved[1]) if resolved else None
        if resolved is None or operation is None:
            return _error(400, "UnknownOperationException", "The requested operation is not recognized.", request_id)
        service, _ = resolved
        if identity.service != service.signing_name:
            return _error(
                403,
                "InvalidSignatureException",
                f"Credential should be scoped to correct service: '{service.signing_name}'.",
                request_id,
            )
        try:
            params = protocol.parse_input(operation, protocol.decode_body(body))
        except protocol.SerializationError as exc:
            return _error(400, "SerializationException", str(exc), request_id)
        except protocol.ValidationFailure as failure:
            return self._wire_error(
                service, operation, validation_error(service.name, operation, failure.message), request_id
            )
        ctx = RequestContext(
            request_id=request_id,
            service=service.name,
            operation=operation.name,
            scope=Scope(account=self._account_id, region=identity.region),
        )
        try:
            handler = self._handler(service, operation)
            result = await run_in_threadpool(handler, ctx, params)
            return _json(200, protocol.serialize_output(operation, result), request_id)
        except RunyardError as error:
            return self._wire_error(service, operation, wire_error(service.name, operation, error), request_id)
        except Exception:
            log.exception("%s %s.%s failed", request_id, service.name, operation.name)
            code = _INTERNAL.get(service.name, _INTERNAL_DEFAULT)
            status = max(
                500,
                protocol.error_status(list(operation.error_shapes), list(service.model.error_shapes), code),
            )
            return _error(status, code, f"An internal error occurred (request id {request_id}).", request_id)

    def _handler(self, service: WireService, operation: OperationModel) -> Handler:
        provider = self._providers[service.name]
        handler: Handler | None = getattr(provider, xform_name(operation.name), None)
        if handler is None:
            raise NotSupported(f"Runyard does not implement {service.name} {operation.name} yet.")
        return handler

    def _wire_error(
        self, service: WireService, operation: OperationModel, error: WireError, request_id: str
    ) -> Response:
        status = protocol.error_status(list(operation.error_shapes), list(service.model.error_shapes), error.code)
        return _error(status, error.code, error.message, request_id)
