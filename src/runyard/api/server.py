"""The API endpoint: AWS JSON 1.0 POSTs routed on X-Amz-Target, and Smithy RPC v2 CBOR POSTs routed on their
path (`/service/<targetPrefix>/operation/<Operation>`: botocore's CloudWatch client), to one provider per service.

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
from runyard.api.models import APPRUNNER, CLOUDWATCH, WireService, resolve_rpc_v2_path, resolve_target
from runyard.api.sigv4 import AuthFailure, verify
from runyard.control.context import Scope
from runyard.errors import NotSupported, RunyardError

log = logging.getLogger("runyard.api")
JSON_CONTENT_TYPE = "application/x-amz-json-1.0"
CBOR_CONTENT_TYPE = "application/cbor"
RPC_V2_CBOR = "rpc-v2-cbor"
_INTERNAL = {APPRUNNER: "InternalServiceErrorException", CLOUDWATCH: "InternalServiceFault"}
_INTERNAL_DEFAULT = "InternalServerException"

Handler = Callable[[RequestContext, dict[str, Any]], dict[str, Any]]


class _Wire:
    """AWS JSON 1.0 bodies."""

    def decode(self, body: bytes) -> dict[str, Any]:
        return protocol.decode_body(body)

    def serialize(self, operation: OperationModel, result: dict[str, Any] | None) -> dict[str, Any]:
        return protocol.serialize_output(operation, result)

    def encode(self, document: dict[str, Any]) -> tuple[bytes, str]:
        return json.dumps(document, separators=(",", ":")).encode(), JSON_CONTENT_TYPE

    def respond(
        self, status: int, document: dict[str, Any], request_id: str, headers: dict[str, str] | None = None
    ) -> Response:
        body, media_type = self.encode(document)
        return Response(
            body, status_code=status, media_type=media_type, headers={"x-amzn-RequestId": request_id, **(headers or {})}
        )

    def error(self, status: int, code: str, message: str, request_id: str, query_error: str | None = None) -> Response:
        headers = {"x-amzn-ErrorType": code}
        if query_error:
            headers["x-amzn-query-error"] = query_error
        return self.respond(status, self.error_body(code, protocol.truncate(message)), request_id, headers)

    def error_body(self, code: str, message: str) -> dict[str, Any]:
        return {"__type": code, "Message": message}


class _CborWire(_Wire):
    """Smithy RPC v2 CBOR bodies: a CBOR map each way, timestamps as tag 1, `smithy-protocol` on every answer."""

    def decode(self, body: bytes) -> dict[str, Any]:
        return protocol.decode_cbor(body)

    def serialize(self, operation: OperationModel, result: dict[str, Any] | None) -> dict[str, Any]:
        return protocol.serialize_output(operation, result, timestamp=protocol.cbor_timestamp)

    def encode(self, document: dict[str, Any]) -> tuple[bytes, str]:
        return protocol.encode_cbor(document), CBOR_CONTENT_TYPE

    def respond(
        self, status: int, document: dict[str, Any], request_id: str, headers: dict[str, str] | None = None
    ) -> Response:
        return super().respond(status, document, request_id, {"smithy-protocol": RPC_V2_CBOR, **(headers or {})})

    def error_body(self, code: str, message: str) -> dict[str, Any]:
        return {"__type": code, "message": message}


_JSON_WIRE = _Wire()
_CBOR_WIRE = _CborWire()


def _wire_for(request: Request) -> _Wire:
    return _CBOR_WIRE if request.headers.get("smithy-protocol") == RPC_V2_CBOR else _JSON_WIRE


def _error(status: int, code: str, message: str, request_id: str, wire: _Wire = _JSON_WIRE) -> Response:
    return wire.error(status, code, message, request_id)


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
            # Whatever failed before or after the provider, the client still gets an error it can parse, with an id.
            log.exception("%s request failed", request_id)
            response = _error(
                500,
                "InternalFailure",
                f"An internal error occurred (request id {request_id}).",
                request_id,
                _wire_for(request),
            )
        log.info(
            "%s %s %s %d %.1fms",
            request_id,
            request.headers.get("x-amz-target") or request.url.path,
            request.client.host if request.client else "-",
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response

    async def _handle(self, request: Request, request_id: str) -> Response:
        wire = _wire_for(request)
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
            return _error(403, failure.code, failure.message, request_id, wire)

        if wire is _CBOR_WIRE:
            resolved = resolve_rpc_v2_path(request.url.path)
        else:
            resolved = resolve_target(request.headers.get("x-amz-target", ""))
        operation = resolved[0].operation(resolved[1]) if resolved else None
        if resolved is None or operation is None:
            return _error(
                400, "UnknownOperationException", "The requested operation is not recognized.", request_id, wire
            )
        service, _ = resolved
        if identity.service != service.signing_name:
            return _error(
                403,
                "InvalidSignatureException",
                f"Credential should be scoped to correct service: '{service.signing_name}'.",
                request_id,
                wire,
            )
        try:
            params = protocol.parse_input(operation, wire.decode(body))
        except protocol.SerializationError as exc:
            return _error(400, "SerializationException", str(exc), request_id, wire)
        except protocol.ValidationFailure as failure:
            return self._wire_error(
                service, operation, validation_error(service.name, operation, failure.message), request_id, wire
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
            return wire.respond(200, wire.serialize(operation, result), request_id)
        except RunyardError as error:
            return self._wire_error(service, operation, wire_error(service.name, operation, error), request_id, wire)
        except Exception:
            log.exception("%s %s.%s failed", request_id, service.name, operation.name)
            code = _INTERNAL.get(service.name, _INTERNAL_DEFAULT)
            status = max(
                500,
                protocol.error_status(list(operation.error_shapes), list(service.model.error_shapes), code),
            )
            message = f"An internal error occurred (request id {request_id})."
            return self._wire_error(service, operation, WireError(code, message), request_id, wire, status)

    def _handler(self, service: WireService, operation: OperationModel) -> Handler:
        provider = self._providers[service.name]
        handler: Handler | None = getattr(provider, xform_name(operation.name), None)
        if handler is None:
            raise NotSupported(f"Runyard does not implement {service.name} {operation.name} yet.")
        return handler

    def _wire_error(
        self,
        service: WireService,
        operation: OperationModel,
        error: WireError,
        request_id: str,
        wire: _Wire,
        status: int | None = None,
    ) -> Response:
        all_errors = list(service.model.error_shapes)
        if status is None:
            status = protocol.error_status(list(operation.error_shapes), all_errors, error.code)
        query_error = protocol.query_error(all_errors, error.code) if service.query_compatible else None
        return wire.error(status, error.code, error.message, request_id, query_error)
