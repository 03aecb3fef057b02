"""AWS JSON 1.0 and Smithy RPC v2 CBOR by walking botocore shapes.

    request body ──decode_body / decode_cbor──▶ parse_input ──▶ validated dict (model-typed values)
    provider result ──serialize_output──▶ JSON- or CBOR-ready dict (modelled members only, epoch timestamps;
                                           CBOR timestamps carry tag 1 as Smithy's RPC v2 CBOR protocol says)

Every constraint the model states is enforced on input: required members, types, min/max
(length, size, value), enums and patterns (full match: Smithy patterns are unanchored, but a
name like "ab cd" must not pass because "b cd" would). No operation hand-parses JSON.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any

import cbor2
from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape

from runyard.source.registry import is_reference

MAX_MESSAGE = 600  # ErrorMessage max length in both models
_MAX_ECHO = 64  # how much of an offending value a validation message repeats
# Shapes whose model pattern is widened for self-hosting: an ImageIdentifier may name any OCI registry (the model
# admits ECR forms only), as a self-hoster's `127.0.0.1:5000/app:1`.
_ALSO_ADMITTED: dict[str, Callable[[str], bool]] = {"ImageIdentifier": is_reference}


class SerializationError(Exception):
    """The body is not a JSON object, or not a CBOR map (AWS: SerializationException)."""


class ValidationFailure(Exception):
    """One or more model constraints failed; `message` is AWS's "N validation errors detected: ..."."""

    def __init__(self, problems: list[str]) -> None:
        count = len(problems)
        noun = "error" if count == 1 else "errors"
        message = f"{count} validation {noun} detected: " + "; ".join(problems)
        super().__init__(message)
        self.message = truncate(message)


class UnmodelledMember(Exception):
    """A provider returned a member the output shape does not have: a bug, never sent to clients."""


def truncate(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


@cache
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text, re.DOTALL)


def _wire_path(path: str, member: str) -> str:
    name = member[:1].lower() + member[1:]
    return f"{path}.{name}" if path else name


def _echo(shape: Shape, value: object) -> str:
    if shape.metadata.get("sensitive"):
        return "Value"
    if value is None:
        return "Value null"
    text = value if isinstance(value, str) else json.dumps(value)
    if len(text) > _MAX_ECHO:
        text = text[:_MAX_ECHO] + "..."
    return f"Value '{text}'"


class _Validator:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, shape: Shape, value: object, path: str, constraint: str) -> None:
        self.problems.append(f"{_echo(shape, value)} at '{path}' failed to satisfy constraint: {constraint}")

    def walk(self, shape: Shape, value: Any, path: str) -> Any:
        handler: Callable[[Shape, Any, str], Any] = getattr(self, "_" + shape.type_name, self._unsupported)
        return handler(shape, value, path)

    def _unsupported(self, shape: Shape, value: Any, path: str) -> Any:
        self.fail(shape, value, path, f"Member type {shape.type_name} is not supported")
        return None

    def _structure(self, shape: Shape, value: Any, path: str) -> Any:
        assert isinstance(shape, StructureShape)
        if not isinstance(value, dict):
            self.fail(shape, value, path, "Member must be a structure")
            return None
        result: dict[str, Any] = {}
        members = shape.members
        for name in shape.required_members:
            if value.get(name) is None:
                self.fail(members[name], None, _wire_path(path, name), "Member must not be null")
        # Unknown members are ignored, as AWS and every SDK do (forward compatibility).
        for name, member_shape in members.items():
            raw = value.get(name)
            if raw is None:
                continue
            parsed = self.walk(member_shape, raw, _wire_path(path, name))
            if parsed is not None:
                result[name] = parsed
        return result

    def _length(self, shape: Shape, value: Any, size: int, path: str, unit: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and size < low:
            self.fail(shape, value, path, f"Member must have {unit} greater than or equal to {low}")
        if high is not None and size > high:
            self.fail(shape, value, path, f"Member must have {unit} less than or equal to {high}")

    def _list(self, shape: Shape, value: Any, path: str) -> Any:
        assert isinstance(shape, ListShape)
        if not isinstance(value, list):
            self.fail(shape, value, path, "Member must be a list")
            return None
        self._length(shape, value, len(value), path, "length")
        return [self.walk(shape.member, item, f"{path}.{i + 1}.member") for i, item in enumerate(value)]

    def _map(self, shape: Shape, value: Any, path: str) -> Any:
        assert isinstance(shape, MapShape)
        if not isinstance(value, dict):
            self.fail(shape, value, path, "Member must be a map")
            return None
        self._length(shape, value, len(value), path, "length")
        result: dict[str, Any] = {}
        for key, item in value.items():
            parsed_key = self.walk(shape.key, key, f"{path}.key")
            if item is None:
                self.fail(shape.value, None, f"{path}.{key}", "Member must not be null")
                continue
            result[str(parsed_key)] = self.walk(shape.value, item, f"{path}.{key}")
        return result

    def _string(self, shape: Shape, value: Any, path: str) -> Any:
        if not isinstance(value, str):
            self.fail(shape, value, path, "Member must be of type String")
            return None
        self._length(shape, value, len(value), path, "length")
        enum = shape.enum
        if enum and value not in enum:
            self.fail(shape, value, path, f"Member must satisfy enum value set: [{', '.join(enum)}]")
        pattern = shape.metadata.get("pattern")
        admitted = _ALSO_ADMITTED.get(shape.name)
        if pattern and not _pattern(pattern).fullmatch(value) and not (admitted and admitted(value)):
            self.fail(shape, value, path, f"Member must satisfy regular expression pattern: {pattern}")
        return value

    def _integer(self, shape: Shape, value: Any, path: str) -> Any:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(shape, value, path, "Member must be of type Integer")
            return None
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and value < low:
            self.fail(shape, value, path, f"Member must have value greater than or equal to {low}")
        if high is not None and value > high:
            self.fail(shape, value, path, f"Member must have value less than or equal to {high}")
        return value

    _long = _integer

    def _boolean(self, shape: Shape, value: Any, path: str) -> Any:
        if not isinstance(value, bool):
            self.fail(shape, value, path, "Member must be of type Boolean")
            return None
        return value

    def _double(self, shape: Shape, value: Any, path: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(shape, value, path, "Member must be a finite number")
            return None
        return float(value)

    _float = _double

    def _timestamp(self, shape: Shape, value: Any, path: str) -> Any:
        if isinstance(value, bool):
            self.fail(shape, value, path, "Member must be a timestamp")
            return None
        if isinstance(value, int | float) and math.isfinite(value):
            return float(value)
        if isinstance(value, datetime):  # CBOR tag 1, decoded by cbor2
            return value.timestamp()
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                pass
        self.fail(shape, value, path, "Member must be a timestamp")
        return None


def decode_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        document = json.loads(body)
        json.dumps(document, ensure_ascii=False).encode()  # lone surrogates ("\ud800") are not text
    except (UnicodeDecodeError, UnicodeEncodeError, json.JSONDecodeError, RecursionError):
        raise SerializationError("The request body is not valid JSON.") from None
    if not isinstance(document, dict):
        raise SerializationError("The request body must be a JSON object.")
    return document


def decode_cbor(body: bytes) -> dict[str, Any]:
    """A Smithy RPC v2 CBOR request body: a CBOR map, or nothing for an operation without input members."""
    if not body:
        return {}
    try:
        document = cbor2.loads(body)
    except (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError, OverflowError):
        raise SerializationError("The request body is not valid CBOR.") from None
    if not isinstance(document, dict):
        raise SerializationError("The request body must be a CBOR map.")
    return document


def encode_cbor(document: dict[str, Any]) -> bytes:
    return bytes(cbor2.dumps(document))


def cbor_timestamp(stamp: float) -> Any:
    return cbor2.CBORTag(1, stamp)


def parse_input(operation: OperationModel, document: dict[str, Any]) -> dict[str, Any]:
    """Validate a decoded request against the operation's input shape; return the parsed members."""
    shape = operation.input_shape
    if shape is None:
        return {}
    validator = _Validator()
    parsed = validator.walk(shape, document, "")
    if validator.problems:
        raise ValidationFailure(validator.problems)
    return dict(parsed or {})


Timestamp = Callable[[float], Any]


def _epoch(stamp: float) -> Any:
    return stamp


def _serialize(shape: Shape, value: Any, path: str, timestamp: Timestamp = _epoch) -> Any:
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        if not isinstance(value, dict):
            raise UnmodelledMember(f"{path or shape.name}: expected a structure, got {type(value).__name__}")
        unknown = set(value) - set(shape.members)
        if unknown:
            raise UnmodelledMember(f"{path or shape.name}: unmodelled members {sorted(unknown)}")
        return {
            name: _serialize(shape.members[name], item, f"{path}.{name}" if path else name, timestamp)
            for name, item in value.items()
            if item is not None
        }
    if kind == "list":
        assert isinstance(shape, ListShape)
        return [_serialize(shape.member, item, f"{path}[]", timestamp) for item in value]
    if kind == "map":
        assert isinstance(shape, MapShape)
        return {str(k): _serialize(shape.value, v, f"{path}{{}}", timestamp) for k, v in value.items()}
    if kind == "timestamp":
        stamp = value.timestamp() if isinstance(value, datetime) else float(value)
        return timestamp(round(stamp, 3))
    if kind in {"integer", "long"}:
        return int(value)
    if kind == "boolean":
        return bool(value)
    if kind in {"double", "float"}:
        return float(value)
    return str(value)


def serialize_output(
    operation: OperationModel, result: dict[str, Any] | None, *, timestamp: Timestamp = _epoch
) -> dict[str, Any]:
    """`timestamp` wraps each epoch-seconds timestamp (`cbor_timestamp` for CBOR; JSON takes the number)."""
    shape = operation.output_shape
    if shape is None:
        if result:
            raise UnmodelledMember(f"{operation.name} has no output, got {sorted(result)}")
        return {}
    serialized = _serialize(shape, result or {}, "", timestamp)
    assert isinstance(serialized, dict)
    return serialized


def error_status(operation_errors: list[StructureShape], all_errors: list[StructureShape], code: str) -> int:
    """HTTP status of an error: the model's httpStatusCode where it has one, else 500 for faults, 400."""
    for shape in [*operation_errors, *all_errors]:
        if shape.name == code:
            declared = shape.metadata.get("error", {}).get("httpStatusCode")
            if declared:
                return int(declared)
            return 500 if shape.metadata.get("fault") else 400
    return 400


def query_error(all_errors: list[StructureShape], code: str) -> str | None:
    """`x-amzn-query-error` of an awsQueryCompatible service: the error's query code and who is at fault, which
    botocore turns back into the code its exception classes know (e.g. InvalidParameterValue;Sender)."""
    for shape in all_errors:
        if shape.name == code:
            error = shape.metadata.get("error", {})
            query_code = error.get("code")
            if not query_code:
                return None
            return f"{query_code};{'Sender' if error.get('senderFault') else 'Receiver'}"
    return None
