"""Model-driven fuzzing of every operation of the three service models, over the raw wire.

For each operation of botocore's `apprunner`, `codeconnections` and `codestar-connections` models the
input shape is walked to build, with a seeded `random.Random`:

* valid inputs (required members, lengths, ranges, enums, and strings that match the model's patterns,
  with real ARNs of resources created first so lookups find something), which must never be rejected by
  model validation;
* invalid inputs (one targeted mutation of a valid input: a dropped or null required member, a wrong JSON
  type, a too short or too long string or list, an out-of-range integer, an unknown enum value, a
  pattern mismatch, deeply nested junk), which must be rejected as a validation error;
* junk bodies (not JSON, not an object, nested far past any parser's depth, odd characters), which must
  never break the server.

Every response is checked: status < 500, a JSON object body, an x-amzn-RequestId header; a 200 body has
only modelled members (recursively), numeric timestamps, and parses with botocore's JSON parser; a 4xx
body carries `__type` and `Message`, with `__type` a modelled error of the service or a common AWS error.

The fuzzer runs against a server of its own: CodeConnections connections are account-global, and the
fuzzer creates and deletes many of them.
"""

from __future__ import annotations

import copy
import json
import random
import re
import string
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import botocore.session
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape
from botocore.parsers import create_parser

from tests.support import ACCESS_KEY, SECRET_KEY, RunyardProcess, unique_region

SERVICES = ("apprunner", "codeconnections", "codestar-connections")
OPERATION_COUNTS = {"apprunner": 37, "codeconnections": 27, "codestar-connections": 27}
SEED = 20261121
VALID_CASES = 8
INVALID_CASES = 14
ACCOUNT = "000000000000"  # the server's default account id
JSON_CONTENT_TYPE = "application/x-amz-json-1.0"

AUTH_ERRORS = frozenset(
    {
        "MissingAuthenticationTokenException",
        "IncompleteSignatureException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
    }
)
COMMON_ERRORS = frozenset({"ValidationException", "SerializationException", "UnknownOperationException"}) | AUTH_ERRORS
VALIDATION_CODES = {
    "apprunner": frozenset({"InvalidRequestException"}),
    "codeconnections": frozenset({"InvalidInputException", "ValidationException"}),
    "codestar-connections": frozenset({"InvalidInputException", "ValidationException"}),
}
VALIDATION_MESSAGE = re.compile(r"\d+ validation errors? detected: ")

Json = Any
DocPath = tuple[str | int, ...]


# -- models ---------------------------------------------------------------------------------------


@cache
def service_model(name: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(name)


def operation_model(service: str, operation: str) -> OperationModel:
    return service_model(service).operation_model(operation)


def target(service: str, operation: str) -> str:
    return f"{service_model(service).metadata['targetPrefix']}.{operation}"


@cache
def service_errors(service: str) -> frozenset[str]:
    return frozenset(shape.name for shape in service_model(service).error_shapes)


def all_operations() -> list[tuple[str, str]]:
    return [(service, op) for service in SERVICES for op in sorted(service_model(service).operation_names)]


def _pattern(shape: Shape) -> re.Pattern[str] | None:
    text = shape.metadata.get("pattern")
    # Same reading as the server and AWS: the value must match as a whole.
    return re.compile(text, re.DOTALL) if text else None


def conforms(shape: Shape, value: Json) -> bool:
    """Whether a scalar value satisfies its shape's model constraints (the fuzzer's own self-check)."""
    kind = shape.type_name
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if kind == "string":
        if not isinstance(value, str):
            return False
        pattern = _pattern(shape)
        return (
            (low is None or len(value) >= low)
            and (high is None or len(value) <= high)
            and (not shape.enum or value in shape.enum)
            and (pattern is None or pattern.fullmatch(value) is not None)
        )
    if kind in {"integer", "long"}:
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and (low is None or value >= low)
            and (high is None or value <= high)
        )
    if kind == "boolean":
        return isinstance(value, bool)
    return True


# -- the wire -------------------------------------------------------------------------------------


@dataclass
class Wire:
    """Signed raw JSON 1.0 POSTs, exactly as botocore would send them."""

    endpoint: str
    http: httpx.Client
    sent: int = 0
    statuses: Counter[tuple[str, str, int]] = field(default_factory=Counter)  # (service, target, status)

    def post(
        self,
        service: str,
        target_header: str,
        body: bytes,
        region: str,
        *,
        sign: bool = True,
        secret: str = SECRET_KEY,
        access_key: str = ACCESS_KEY,
        signing_name: str | None = None,
    ) -> httpx.Response:
        url = f"{self.endpoint}/"
        request = AWSRequest(
            method="POST",
            url=url,
            data=body,
            headers={"Content-Type": JSON_CONTENT_TYPE, "X-Amz-Target": target_header},
        )
        if sign:
            name = signing_name or str(service_model(service).signing_name)
            SigV4Auth(Credentials(access_key, secret), name, region).add_auth(request)
        self.sent += 1
        response = self.http.post(url, content=body, headers=dict(request.headers.items()))
        self.statuses[service, target_header.rpartition(".")[2], response.status_code] += 1
        return response

    def call(self, service: str, operation: str, body: bytes | Json, region: str) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.post(service, target(service, operation), raw, region)


# -- response checks ------------------------------------------------------------------------------


def output_problems(shape: Shape | None, value: Json, path: str) -> Iterator[str]:
    """Members the output shape does not model, wrong JSON types, missing required members."""
    if shape is None:
        if value:
            yield f"{path or '<body>'}: the operation has no output, got {value!r:.200}"
        return
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        if not isinstance(value, dict):
            yield f"{path}: expected an object, got {type(value).__name__}"
            return
        for name, item in value.items():
            if name not in shape.members:
                yield f"{path}.{name}: not modelled in {shape.name}"
            elif item is not None:
                yield from output_problems(shape.members[name], item, f"{path}.{name}")
        for name in shape.required_members:
            if value.get(name) is None:
                yield f"{path}.{name}: required by {shape.name} but missing"
    elif kind == "list":
        assert isinstance(shape, ListShape)
        if not isinstance(value, list):
            yield f"{path}: expected a list, got {type(value).__name__}"
            return
        for i, item in enumerate(value):
            yield from output_problems(shape.member, item, f"{path}[{i}]")
    elif kind == "map":
        assert isinstance(shape, MapShape)
        if not isinstance(value, dict):
            yield f"{path}: expected a map, got {type(value).__name__}"
            return
        for key, item in value.items():
            yield from output_problems(shape.value, item, f"{path}{{{key}}}")
    elif kind == "timestamp":
        if isinstance(value, bool) or not isinstance(value, int | float):
            yield f"{path}: a timestamp must be epoch seconds as a JSON number, got {value!r}"
    elif kind in {"integer", "long"}:
        if isinstance(value, bool) or not isinstance(value, int):
            yield f"{path}: expected an integer, got {value!r}"
    elif kind in {"double", "float"}:
        if isinstance(value, bool) or not isinstance(value, int | float):
            yield f"{path}: expected a number, got {value!r}"
    elif kind == "boolean":
        if not isinstance(value, bool):
            yield f"{path}: expected a boolean, got {value!r}"
    elif kind == "string" and not isinstance(value, str):
        # Output enums are not checked: some statuses are sent in lower case, as the real service does.
        yield f"{path}: expected a string, got {value!r}"


def check_response(service: str, operation: str | None, response: httpx.Response) -> dict[str, Any]:
    """The checks every response must pass; returns the decoded body."""
    where = f"{service} {operation}: HTTP {response.status_code} {response.text[:400]!r}"
    assert response.status_code < 500, where
    assert response.headers.get("x-amzn-RequestId"), f"no x-amzn-RequestId: {where}"
    try:
        body = response.json()
    except ValueError:
        pytest.fail(f"the body is not JSON: {where}")
    assert isinstance(body, dict), where
    output = operation_model(service, operation).output_shape if operation else None
    parsed = create_parser("json").parse(
        {"status_code": response.status_code, "headers": response.headers, "body": response.content}, output
    )
    if response.status_code == 200:
        assert operation is not None, where
        problems = list(output_problems(output, body, ""))
        assert not problems, f"{where}\n" + "\n".join(problems)
        assert "Error" not in parsed, where
        return body
    assert 400 <= response.status_code < 500, where
    assert isinstance(body.get("__type"), str), where
    assert isinstance(body.get("Message"), str), where
    code = body["__type"].rsplit("#", 1)[-1]
    assert code in service_errors(service) | COMMON_ERRORS, f"unmodelled error {code}: {where}"
    assert parsed["Error"]["Code"] == code, where
    return body


def is_validation_error(service: str, response: httpx.Response) -> bool:
    if response.status_code != 400:
        return False
    body = response.json()
    return body.get("__type") in VALIDATION_CODES[service] and bool(VALIDATION_MESSAGE.match(body.get("Message", "")))


# -- resources the fuzz can point at --------------------------------------------------------------

APPRUNNER_ARN_KINDS = {
    "ConnectionArn": "connection",
    "AutoScalingConfigurationArn": "autoscalingconfiguration",
    "ObservabilityConfigurationArn": "observabilityconfiguration",
    "VpcConnectorArn": "vpcconnector",
    "ServiceArn": "service",
    "VpcIngressConnectionArn": "vpcingressconnection",
}
CODECONNECTIONS_ARN_KINDS = {"ConnectionArn": "connection", "HostArn": "host", "HostArnFilter": "host"}


def _hex32(rng: random.Random) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(32))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _name(rng: random.Random, low: int, high: int, rest: str = string.ascii_letters + string.digits + "-_") -> str:
    length = rng.randint(low, min(high, low + 16))
    return rng.choice(string.ascii_letters + string.digits) + "".join(rng.choice(rest) for _ in range(length - 1))


@dataclass
class Pool:
    """Real resources of one service in one region, created through the wire (valid sequences)."""

    wire: Wire | None  # None: generate only, create nothing
    service: str
    region: str
    rng: random.Random
    arns: dict[str, list[str]] = field(default_factory=dict)

    def create(self, kind: str, *, strict: bool = True, keep: bool = True) -> str | None:
        """Create one resource of `kind`: its ARN, or None if this service cannot create that kind (or,
        unless strict, if a quota says no)."""
        request = self._create_request(kind)
        if request is None or self.wire is None:
            return None
        operation, body, extract = request
        response = self.wire.call(self.service, operation, body, self.region)
        answer = check_response(self.service, operation, response)
        if not strict and response.status_code != 200:
            return None
        assert response.status_code == 200, f"{operation} {body}: {response.text}"
        arn = str(extract(answer))
        if keep:  # resources made to be deleted stay out of the pool the other operations draw from
            self.arns.setdefault(kind, []).append(arn)
        return arn

    def _create_request(self, kind: str) -> tuple[str, Json, Callable[[Json], Json]] | None:
        rng = self.rng
        tags = [{"Key": f"fuzz-{rng.randint(0, 999)}", "Value": "seed"}]
        if self.service == "apprunner":
            name = _name(rng, 4, 24)
            requests: dict[str, tuple[str, Json, Callable[[Json], Json]]] = {
                "connection": (
                    "CreateConnection",
                    {"ConnectionName": name, "ProviderType": rng.choice(["GITHUB", "BITBUCKET"]), "Tags": tags},
                    lambda a: a["Connection"]["ConnectionArn"],
                ),
                "autoscalingconfiguration": (
                    "CreateAutoScalingConfiguration",
                    {"AutoScalingConfigurationName": name, "MaxConcurrency": 50, "MinSize": 2, "MaxSize": 10},
                    lambda a: a["AutoScalingConfiguration"]["AutoScalingConfigurationArn"],
                ),
                "observabilityconfiguration": (
                    "CreateObservabilityConfiguration",
                    {"ObservabilityConfigurationName": name, "TraceConfiguration": {"Vendor": "AWSXRAY"}},
                    lambda a: a["ObservabilityConfiguration"]["ObservabilityConfigurationArn"],
                ),
                "vpcconnector": (
                    "CreateVpcConnector",
                    {"VpcConnectorName": name, "Subnets": ["subnet-0123abcd"], "SecurityGroups": ["sg-0123abcd"]},
                    lambda a: a["VpcConnector"]["VpcConnectorArn"],
                ),
            }
            return requests.get(kind)
        if kind == "connection":
            return (
                "CreateConnection",
                {
                    "ConnectionName": _name(rng, 1, 32),
                    "ProviderType": rng.choice(["GitHub", "Bitbucket"]),
                    "Tags": tags,
                },
                lambda a: a["ConnectionArn"],
            )
        if kind == "host":
            return (
                "CreateHost",
                {
                    "Name": _name(rng, 1, 40),
                    "ProviderType": "GitHubEnterpriseServer",
                    "ProviderEndpoint": "https://ghe.example.com",
                    "Tags": tags,
                },
                lambda a: a["HostArn"],
            )
        return None

    def kinds(self) -> list[str]:
        if self.service == "apprunner":
            return ["connection", "autoscalingconfiguration", "observabilityconfiguration", "vpcconnector"]
        return ["connection", "host"]

    def seed(self, per_kind: int = 2) -> None:
        for kind in self.kinds():
            for _ in range(per_kind):
                self.create(kind)

    def existing(self, kind: str | None) -> str | None:
        choices = [arn for k, arns in self.arns.items() if kind in (None, k) for arn in arns]
        return self.rng.choice(choices) if choices else None


# -- valid inputs ---------------------------------------------------------------------------------

TEXT = string.ascii_letters + string.digits + " -_.,:;/@+=()[]{}!?#%&*'\"\\<>|~^$`" + "éßøñ日本語ü" + "\U0001f680"
SEPARATORS = "/: "  # the characters that break naive ARN and path handling: made frequent


def free_text(rng: random.Random, low: int, high: int | None, alphabet: str | None = None) -> str:
    top = low + 24 if high is None else min(high, low + 24)

    def char() -> str:
        if alphabet is not None:
            return rng.choice(alphabet)
        return rng.choice(SEPARATORS if rng.random() < 0.1 else TEXT)

    return "".join(char() for _ in range(rng.randint(low, top)))


@dataclass
class ValidGenerator:
    """Model-valid input documents for one service; ARN members point at real resources when it can."""

    service: str
    rng: random.Random
    pool: Pool
    fresh: bool = False  # Delete*: create the resource the request names, so deletes hit real ones
    real: float = field(default=0.7, init=False)  # how often an ARN names a real resource, not a made-up one

    def document(self, operation: str, *, real: float = 0.7) -> dict[str, Any]:
        self.real = real
        shape = operation_model(self.service, operation).input_shape
        return self.structure(shape, depth=0) if shape is not None else {}

    def structure(self, shape: StructureShape, depth: int) -> dict[str, Any]:
        required = set(shape.required_members)
        result: dict[str, Any] = {}
        for name, member in shape.members.items():
            if name in required or (depth < 6 and self.rng.random() < 0.5):
                result[name] = self.value(member, name, depth + 1)
        return result

    def value(self, shape: Shape, member: str, depth: int) -> Json:
        kind = shape.type_name
        if kind == "structure":
            assert isinstance(shape, StructureShape)
            return self.structure(shape, depth)
        if kind == "list":
            assert isinstance(shape, ListShape)
            low = shape.metadata.get("min", 0)
            high = min(shape.metadata.get("max", 3), 3)
            items = [self.value(shape.member, member, depth + 1) for _ in range(self.rng.randint(low, max(low, high)))]
            if member in {"Tags", "TagKeys"}:  # a repeated tag key is a (semantic) error of its own
                unique = {(i.get("Key") if isinstance(i, dict) else i): i for i in items}
                items = list(unique.values())
            return items
        if kind == "map":
            assert isinstance(shape, MapShape)
            return {
                self.value(shape.key, f"{member}.key", depth + 1): self.value(shape.value, member, depth + 1)
                for _ in range(self.rng.randint(0, 3))
            }
        if kind in {"integer", "long"}:
            low = shape.metadata.get("min", 0)
            high = shape.metadata.get("max", low + 30)
            return self.rng.randint(low, high)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "string":
            value = self.rng.choice(shape.enum) if shape.enum else self.string(shape, member)
            assert conforms(shape, value), f"fuzzer bug: {value!r} does not conform to {shape.name}"
            return value
        raise AssertionError(f"fuzzer bug: no generator for input type {kind} ({shape.name})")

    def arn(self, kind: str | None) -> str | None:
        if self.fresh and kind is not None:
            # Never the pool's own resources (others use them); a made-up ARN if a quota says no.
            return self.pool.create(kind, strict=False, keep=False)
        return self.pool.existing(kind) if self.rng.random() < self.real else None

    def string(self, shape: Shape, member: str) -> str:
        rng, region, ns = self.rng, self.pool.region, self.service
        low, high = shape.metadata.get("min", 0), shape.metadata.get("max")
        name = shape.name
        if self.service == "apprunner":
            if name == "AppRunnerResourceArn":
                kind = APPRUNNER_ARN_KINDS.get(member)
                real = self.arn(kind)
                if real:
                    return real
                kind = kind or rng.choice(sorted(set(APPRUNNER_ARN_KINDS.values())))
                label = _name(rng, 4, 20)
                parts = (
                    [label, str(rng.randint(1, 3))] if "configuration" in kind or kind == "vpcconnector" else [label]
                )
                return f"arn:aws:apprunner:{region}:{ACCOUNT}:{kind}/{'/'.join(parts)}/{_hex32(rng)}"
            generators: dict[str, Callable[[], str]] = {
                "DomainName": lambda: (
                    rng.choice(["", "*.", "www."]) + f"{_name(rng, 1, 20, 'abcdefgh0123-')}.example.com"
                ),
                "TagKey": lambda: "fuzz-" + free_text(rng, 0, 40),
                "ImageIdentifier": lambda: rng.choice(
                    [
                        "public.ecr.aws/nginx/nginx:latest",
                        "public.ecr.aws/aws-containers/hello-app-runner:latest",
                        f"123456789012.dkr.ecr.us-east-1.amazonaws.com/my-repo/app:v{rng.randint(1, 9)}",
                        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app@sha256:0123abcd",
                    ]
                ),
                "RoleArn": lambda: (
                    f"arn:aws:iam::123456789012:role/{rng.choice(['', 'service-role/'])}Role{rng.randint(1, 99)}"
                ),
                "KmsKeyArn": lambda: f"arn:aws:kms:us-east-1:123456789012:key/{_uuid(rng)}",
                "Cpu": lambda: rng.choice(["256", "512", "1024", "2048", "4096", "0.25 vCPU", "1 vCPU", "4 vCPU"]),
                "Memory": lambda: rng.choice(["512", "2048", "3072", "12288", "0.5 GB", "2 GB", "12 GB"]),
                "SourceDirectory": lambda: rng.choice(["/", "app", "services/api", "src/ü"]),
                "BuildCommand": lambda: free_text(rng, 1, 60),
                "StartCommand": lambda: free_text(rng, 1, 60),
                "HealthCheckPath": lambda: "/" + free_text(rng, 0, 20, string.ascii_lowercase + "/-_"),
                "RuntimeEnvironmentVariablesKey": lambda: _name(rng, 1, 20, string.ascii_uppercase + "_"),
            }
            if name in generators:
                return generators[name]()
            if name in {"ConnectionName", "AutoScalingConfigurationName", "ObservabilityConfigurationName"}:
                return _name(rng, 4, 32)
            if name in {"ServiceName", "VpcConnectorName", "VpcIngressConnectionName"}:
                return _name(rng, 4, 40)
            by_member: dict[str, Callable[[], str]] = {
                "Port": lambda: str(rng.choice([80, 3000, 8080, 65535])),
                "RepositoryUrl": lambda: f"https://github.com/{_name(rng, 3, 10)}/{_name(rng, 3, 10)}",
                "VpcId": lambda: f"vpc-{_hex32(rng)[:17]}",
                "VpcEndpointId": lambda: f"vpce-{_hex32(rng)[:17]}",
                "Subnets": lambda: f"subnet-{_hex32(rng)[:8]}",
                "SecurityGroups": lambda: f"sg-{_hex32(rng)[:8]}",
                "Value": lambda: rng.choice(["main", "release/1.0", "feature-ü"]),
            }
            if name == "String" and member in by_member:
                return by_member[member]()
        else:
            if name in {"ConnectionArn", "HostArn", "AmazonResourceName"}:
                kind = CODECONNECTIONS_ARN_KINDS.get(member)
                real = self.arn(kind)
                if real:
                    return real
                if name == "HostArn" or (kind is None and rng.random() < 0.5):
                    return f"arn:aws:{ns}:{region}:{ACCOUNT}:host/{_name(rng, 1, 20)}-{_hex32(rng)[:8]}"
                return f"arn:aws:{ns}:{region}:{ACCOUNT}:connection/{_uuid(rng)}"
            generators = {
                "VpcId": lambda: "vpc-" + rng.choice([_hex32(rng)[:8], _hex32(rng)[:17]]),
                "SubnetId": lambda: "subnet-" + rng.choice([_hex32(rng)[:8], _hex32(rng)[:17]]),
                "SecurityGroupId": lambda: "sg-" + rng.choice([_hex32(rng)[:8], _hex32(rng)[:17]]),
                "KmsKeyArn": lambda: f"arn:aws:kms:us-east-1:123456789012:key/{_uuid(rng)}",
                "IamRoleArn": lambda: f"arn:aws:iam::123456789012:role/sync-{rng.randint(1, 99)}",
                "RepositoryLinkId": lambda: _uuid(rng),
                "ResourceName": lambda: _name(rng, 1, 100),
                "Url": lambda: rng.choice(["https://ghe.example.com", "https://gitlab.example.org:8443/base"]),
                "TagKey": lambda: "fuzz-" + free_text(rng, 0, 40),
                "TlsCertificate": lambda: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            }
            if name in generators:
                return generators[name]()
        if member == "NextToken":
            return free_text(rng, max(low, 1), 40, string.ascii_letters + string.digits + "-_=")
        return free_text(rng, low, high)


# -- invalid inputs -------------------------------------------------------------------------------


def _sites(shape: Shape, value: Json, path: DocPath) -> Iterator[tuple[DocPath, Shape, Json]]:
    """Every member present in a valid document, with its shape (the document root excluded)."""
    if path:
        yield path, shape, value
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        for name, item in value.items():
            yield from _sites(shape.members[name], item, (*path, name))
    elif isinstance(shape, ListShape) and isinstance(value, list):
        for i, item in enumerate(value):
            yield from _sites(shape.member, item, (*path, i))
    elif isinstance(shape, MapShape) and isinstance(value, dict):
        for key, item in value.items():
            yield from _sites(shape.value, item, (*path, key))


def _missing_required(shape: Shape, value: Json, path: DocPath) -> Iterator[DocPath]:
    """Paths of required members present in a valid document (dropping one makes it invalid)."""
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        for name in shape.required_members:
            yield (*path, name)
        for name, item in value.items():
            yield from _missing_required(shape.members[name], item, (*path, name))
    elif isinstance(shape, ListShape) and isinstance(value, list):
        for i, item in enumerate(value):
            yield from _missing_required(shape.member, item, (*path, i))
    elif isinstance(shape, MapShape) and isinstance(value, dict):
        for key, item in value.items():
            yield from _missing_required(shape.value, item, (*path, key))


def _nested(rng: random.Random, depth: int) -> Json:
    junk: Json = rng.choice([1, "x", True, None, {}])
    for _ in range(depth):
        junk = rng.choice([[junk], {"a": junk}, [1, junk, "z"]])
    return junk


WRONG_TYPES: dict[str, list[Json]] = {
    "string": [123, True, ["x"], {"a": "b"}, 1.5],
    "integer": ["12", True, 1.5, [1], {"n": 1}],
    "long": ["12", True, 1.5, [1]],
    "boolean": ["true", 1, 0, [True], {"b": True}],
    "list": ["x", {"a": 1}, 7, True],
    "map": [["x"], "x", 7, False],
    "structure": [["x"], "x", 7, True],
    "timestamp": [True, [1], {"t": 1}, "not a date"],
}


def _bad_string(shape: Shape, rng: random.Random) -> list[Json]:
    """Strings that break a string shape's constraints (checked against the model before use)."""
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    candidates: list[Json] = []
    if low:
        candidates.append("x" * (low - 1) if low > 1 else "")
    if high is not None and high < 60_000:
        candidates.append("a" * (high + 1))
    if shape.enum:
        candidates += ["NOT_" + rng.choice(shape.enum), rng.choice(shape.enum).swapcase(), ""]
    if shape.metadata.get("pattern"):
        base = "x" * max(low or 1, 4)
        candidates += ["!! bad value !!", f" {base}", f"{base}\n{base}", "aws:" + base, "\x00" + base, "-" + base]
    return [c for c in candidates if not conforms(shape, c)]


def _bad_integer(shape: Shape) -> list[Json]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    values: list[Json] = []
    if low is not None:
        values += [low - 1, low - 10**6]
    if high is not None:
        values += [high + 1, 10**30]
    return values


def _bad_list(shape: ListShape, value: list[Json]) -> list[Json]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    values: list[Json] = []
    if low:
        values.append([])
    if high is not None and value:
        values.append([value[0]] * (high + 1))
    return values


def _set(document: Json, path: DocPath, value: Json) -> Json:
    result = copy.deepcopy(document)
    target_container = result
    for key in path[:-1]:
        target_container = target_container[key]
    target_container[path[-1]] = value
    return result


def _drop(document: Json, path: DocPath) -> Json:
    result = copy.deepcopy(document)
    target_container = result
    for key in path[:-1]:
        target_container = target_container[key]
    if isinstance(target_container, dict):
        target_container.pop(path[-1], None)
    return result


def invalid_documents(
    service: str, operation: str, rng: random.Random, valid: list[dict[str, Any]], count: int
) -> list[tuple[str, Json]]:
    """Up to `count` (description, document) pairs, each one targeted model violation of a valid input."""
    shape = operation_model(service, operation).input_shape
    if shape is None:
        return []
    mutations: list[tuple[str, Json]] = []
    for document in valid:
        for path in _missing_required(shape, document, ()):
            mutations.append((f"drop required {path}", _drop(document, path)))
            mutations.append((f"null required {path}", _set(document, path, None)))
        for path, member, value in _sites(shape, document, ()):
            kind = member.type_name
            for wrong in WRONG_TYPES.get(kind, []):
                mutations.append((f"wrong type at {path}: {wrong!r}", _set(document, path, wrong)))
            junk = _nested(rng, rng.randint(20, 200))
            # Outermost container of the other kind: a list for a list member would be a (valid) list.
            junk = {"a": junk} if kind == "list" else [junk]
            mutations.append((f"nested junk at {path}", _set(document, path, junk)))
            if kind == "string":
                for bad in _bad_string(member, rng):
                    mutations.append((f"bad string at {path}: {bad!r:.40}", _set(document, path, bad)))
            elif kind in {"integer", "long"}:
                for bad in _bad_integer(member):
                    mutations.append((f"out of range at {path}: {bad}", _set(document, path, bad)))
            elif isinstance(member, ListShape):
                for bad in _bad_list(member, value):
                    mutations.append((f"bad list length at {path}: {len(bad)}", _set(document, path, bad)))
    # A third of the cases drop or null a required member; the rest is sampled from every other kind.
    required = [m for m in mutations if m[0].startswith(("drop required", "null required"))]
    rest = [m for m in mutations if not m[0].startswith(("drop required", "null required"))]
    picked = rng.sample(required, min(len(required), count // 3))
    picked += rng.sample(rest, min(len(rest), count - len(picked)))
    return picked


def with_prefix(service: str, operation: str, document: Json, prefix: str) -> Json:
    """`document` with `prefix` put in front of every string member whose constraints still hold."""
    shape = operation_model(service, operation).input_shape
    result = document
    for path, member, value in list(_sites(shape, document, ())) if shape else []:
        if member.type_name == "string" and not member.enum and conforms(member, prefix + value):
            result = _set(result, path, prefix + value)
    return result


JUNK_BODIES: list[tuple[str, bytes]] = [
    ("JSON array", b"[]"),
    ("JSON string", b'"AppRunner"'),
    ("JSON number", b"42"),
    ("JSON null", b"null"),
    ("JSON true", b"true"),
    ("truncated JSON", b'{"a": '),
    ("trailing garbage", b"{}}"),
    ("invalid UTF-8", b"\xff\xfe{}"),
    ("nested past any parser depth", b"[" * 100_000 + b"]" * 100_000),
    ("object nested past any parser depth", b'{"Junk":' + b'{"a":' * 50_000 + b"1" + b"}" * 50_001),
]


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunyardProcess]:
    process = RunyardProcess(tmp_path_factory.mktemp("fuzz") / "data").start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def wire(fuzz_server: RunyardProcess) -> Iterator[Wire]:
    with httpx.Client(timeout=30) as http:
        yield Wire(fuzz_server.endpoint, http)


@pytest.fixture(scope="module")
def pools(wire: Wire) -> dict[str, Pool]:
    """Per service: a region of its own with real resources of every kind the service can create."""
    result = {}
    for i, service in enumerate(SERVICES):
        pool = Pool(wire, service, unique_region(), random.Random(SEED + i))
        pool.seed()
        result[service] = pool
    return result


# Operations that cannot answer 200 yet: Runyard runs no workloads (so no service exists, and VPC
# ingress connections need one), and repository links / sync configurations are not implemented.
NO_SUCCESS_YET = {
    "apprunner": frozenset(
        {
            "CreateService",
            "DescribeService",
            "UpdateService",
            "DeleteService",
            "PauseService",
            "ResumeService",
            "StartDeployment",
            "ListOperations",
            "AssociateCustomDomain",
            "DisassociateCustomDomain",
            "DescribeCustomDomains",
            "CreateVpcIngressConnection",
            "DescribeVpcIngressConnection",
            "UpdateVpcIngressConnection",
            "DeleteVpcIngressConnection",
        }
    ),
    "codeconnections": frozenset(
        {
            "CreateRepositoryLink",
            "GetRepositoryLink",
            "ListRepositoryLinks",
            "UpdateRepositoryLink",
            "DeleteRepositoryLink",
            "CreateSyncConfiguration",
            "GetSyncConfiguration",
            "ListSyncConfigurations",
            "UpdateSyncConfiguration",
            "DeleteSyncConfiguration",
            "GetRepositorySyncStatus",
            "GetResourceSyncStatus",
            "GetSyncBlockerSummary",
            "UpdateSyncBlocker",
            "ListRepositorySyncDefinitions",
        }
    ),
}
NO_SUCCESS_YET["codestar-connections"] = NO_SUCCESS_YET["codeconnections"]


def follow_up(wire: Wire, service: str, operation: str, document: Json, answer: Json, region: str) -> None:
    """After a successful create: the new resource is found through its own ARN, with the tags sent."""
    arn: str | None = None
    if service == "apprunner" and operation == "CreateConnection":
        arn = answer["Connection"]["ConnectionArn"]
        listed = check_response(
            service,
            "ListConnections",
            wire.call(service, "ListConnections", {"ConnectionName": document["ConnectionName"]}, region),
        )
        assert [c["ConnectionArn"] for c in listed["ConnectionSummaryList"]] == [arn], listed
    elif service == "apprunner" and operation.startswith("Create"):
        resource = operation.removeprefix("Create")  # AutoScalingConfiguration, VpcConnector, ...
        arn = answer[resource][f"{resource}Arn"]
        response = wire.call(service, f"Describe{resource}", {f"{resource}Arn": arn}, region)
        assert check_response(service, f"Describe{resource}", response)[resource] == answer[resource]
    elif operation in {"CreateConnection", "CreateHost"}:
        resource = operation.removeprefix("Create")
        arn = answer[f"{resource}Arn"]
        response = wire.call(service, f"Get{resource}", {f"{resource}Arn": arn}, region)
        check_response(service, f"Get{resource}", response)
        assert response.status_code == 200, (
            f"{operation} answered {arn}, which Get{resource} cannot find: {response.text}"
        )
    if arn is None:
        return
    tags = check_response(
        service, "ListTagsForResource", wire.call(service, "ListTagsForResource", {"ResourceArn": arn}, region)
    )
    listed = {tag["Key"]: tag["Value"] for tag in tags.get("Tags", [])}
    sent = {tag["Key"]: tag.get("Value", "") for tag in document.get("Tags", []) if "Key" in tag}
    assert listed == sent, f"{operation} {arn}: sent tags {sent}, listed {listed}"


# -- tests ----------------------------------------------------------------------------------------


def test_models_have_the_expected_operations() -> None:
    for service, count in OPERATION_COUNTS.items():
        assert len(service_model(service).operation_names) == count, service


def test_the_generator_covers_every_input_string() -> None:
    """Every string shape reachable from an input gets values that satisfy its model constraints."""
    for service in SERVICES:
        generator = ValidGenerator(service, random.Random(SEED), Pool(None, service, "us-east-1", random.Random(SEED)))
        for operation in service_model(service).operation_names:
            for _ in range(20):  # conforms() is asserted on every generated string
                generator.document(operation)


@pytest.mark.parametrize(("service", "operation"), all_operations())
def test_fuzz_operation(wire: Wire, pools: dict[str, Pool], service: str, operation: str) -> None:
    rng = random.Random(f"{SEED}/{service}/{operation}")
    pool = pools[service]
    deleting = operation.startswith("Delete")
    if deleting:  # fresh resources to delete, in a region of their own (Create* fuzz may have met quotas)
        pool = Pool(wire, service, unique_region(), rng)
    generator = ValidGenerator(service, rng, pool, fresh=deleting)

    # Valid inputs: never a model-validation error, never a serialization error.
    # The first valid input always names existing resources, the others mostly.
    valid = [generator.document(operation, real=1.0 if i == 0 else 0.7) for i in range(VALID_CASES)]
    for document in valid:
        response = wire.call(service, operation, document, pool.region)
        body = check_response(service, operation, response)
        assert not is_validation_error(service, response), f"valid input rejected: {document} -> {body}"
        assert body.get("__type") != "SerializationException", f"{document} -> {body}"
        if response.status_code == 200:
            follow_up(wire, service, operation, document, body, pool.region)
            if body.get("NextToken"):  # the token of a page is good for the next one, same parameters
                following = {**document, "NextToken": body["NextToken"]}
                response = wire.call(service, operation, following, pool.region)
                check_response(service, operation, response)
                assert response.status_code == 200, f"{following} -> {response.text}"
        # Unknown members are ignored (forward compatibility), however deep the junk in them is.
        if rng.random() < 0.3:
            noisy = {**document, "FuzzJunk": _nested(rng, rng.randint(5, 300))}
            response = wire.call(service, operation, noisy, pool.region)
            check_response(service, operation, response)
            assert not is_validation_error(service, response), f"unknown member not ignored: {response.text}"

    # Invalid inputs: one targeted violation each, always answered as a validation error.
    for description, document in invalid_documents(service, operation, rng, valid, INVALID_CASES):
        response = wire.call(service, operation, document, pool.region)
        body = check_response(service, operation, response)
        assert is_validation_error(service, response), f"{description}: {str(document)[:300]} -> {body}"

    # Junk bodies: a SerializationException, never a crash.
    for description, raw in rng.sample(JUNK_BODIES, 4):
        response = wire.call(service, operation, raw, pool.region)
        body = check_response(service, operation, response)
        assert body.get("__type") == "SerializationException", f"{description}: {body}"

    # Odd but model-legal characters (NUL, astral, zero-width) in every free-text member: still valid.
    odd = with_prefix(service, operation, valid[0], "\x00\U0001f680\u200b")
    response = wire.call(service, operation, odd, pool.region)
    check_response(service, operation, response)
    assert not is_validation_error(service, response), f"{odd} -> {response.text}"
    # A lone surrogate is not Unicode: it may be refused, but must not break the server.
    lonely = with_prefix(service, operation, valid[0], "\ud800")
    check_response(service, operation, wire.call(service, operation, lonely, pool.region))


def test_created_resources_are_listed_described_and_tagged(wire: Wire) -> None:
    """Valid sequences: what the pool created is found by List/Describe/Get, and can be tagged."""
    lookups = {
        "apprunner": {
            "connection": ("ListConnections", {}, "ConnectionSummaryList", None),
            "autoscalingconfiguration": (
                "ListAutoScalingConfigurations",
                {"LatestOnly": False},
                "AutoScalingConfigurationSummaryList",
                ("DescribeAutoScalingConfiguration", "AutoScalingConfigurationArn"),
            ),
            "observabilityconfiguration": (
                "ListObservabilityConfigurations",
                {"LatestOnly": False},
                "ObservabilityConfigurationSummaryList",
                ("DescribeObservabilityConfiguration", "ObservabilityConfigurationArn"),
            ),
            "vpcconnector": ("ListVpcConnectors", {}, "VpcConnectors", ("DescribeVpcConnector", "VpcConnectorArn")),
        },
        "codeconnections": {
            "connection": ("ListConnections", {}, "Connections", ("GetConnection", "ConnectionArn")),
            "host": ("ListHosts", {}, "Hosts", ("GetHost", "HostArn")),
        },
    }
    lookups["codestar-connections"] = lookups["codeconnections"]
    for i, service in enumerate(SERVICES):
        # A region of its own: the fuzz above may have used up quotas in the pools' regions.
        pool = Pool(wire, service, unique_region(), random.Random(SEED - i))
        pool.seed(per_kind=1)
        region = pool.region
        for kind, (list_op, list_args, list_member, describe) in lookups[service].items():
            arn = pool.create(kind)
            assert arn is not None
            listed = check_response(service, list_op, wire.call(service, list_op, list_args, region))
            assert listed[list_member], f"{service} {list_op} is empty after creates"
            assert arn in json.dumps(listed), f"{service} {list_op} does not list {arn}"
            if describe:
                op, member = describe
                response = wire.call(service, op, {member: arn}, region)
                check_response(service, op, response)
                assert response.status_code == 200, f"{op} {arn}: {response.text}"
            tag = {"Key": "fuzz-sequence", "Value": kind}
            response = wire.call(service, "TagResource", {"ResourceArn": arn, "Tags": [tag]}, region)
            check_response(service, "TagResource", response)
            assert response.status_code == 200, response.text
            tags = check_response(
                service, "ListTagsForResource", wire.call(service, "ListTagsForResource", {"ResourceArn": arn}, region)
            )
            assert tag in tags["Tags"]


def test_unknown_operations_and_bad_signatures(wire: Wire, pools: dict[str, Pool]) -> None:
    body = b"{}"
    for service in SERVICES:
        region = pools[service].region
        prefix = str(service_model(service).metadata["targetPrefix"])
        short = prefix.rsplit(".", 1)[-1]
        # The Go SDK's short prefix routes like the full one.
        list_op = "ListConnections"
        response = wire.post(service, f"{short}.{list_op}", body, region)
        check_response(service, list_op, response)
        assert response.status_code == 200, response.text
        full = f"{prefix}.{list_op}"
        cases = [
            ("UnknownOperationException", wire.post(service, f"{prefix}.FuzzNoSuchOperation", body, region)),
            ("UnknownOperationException", wire.post(service, "NoSuchService_20200101.ListConnections", body, region)),
            ("UnknownOperationException", wire.post(service, "", body, region)),
            ("MissingAuthenticationTokenException", wire.post(service, full, body, region, sign=False)),
            ("InvalidSignatureException", wire.post(service, full, body, region, secret="x" * 40)),
            ("UnrecognizedClientException", wire.post(service, full, body, region, access_key="AKIANOSUCHKEY0000000")),
            ("InvalidSignatureException", wire.post(service, full, body, region, signing_name="s3")),
        ]
        for expected, response in cases:
            answer = check_response(service, None, response)
            assert answer["__type"] == expected, f"{service} {response.request.headers}: {answer}"


def test_the_fuzz_reached_every_supported_operation(wire: Wire) -> None:
    """Runs last in this module: the fuzz above really exercised the server, successes included."""
    if {(service, op) for service, op, _ in wire.statuses} < set(all_operations()):
        pytest.skip("only meaningful after the whole fuzz ran (it was deselected in part)")
    operations = sum(OPERATION_COUNTS.values())
    assert wire.sent >= operations * (VALID_CASES + 4), wire.sent
    answered = {(service, op) for service, op, status in wire.statuses if status == 200}
    never = {
        (service, op)
        for service, op in all_operations()
        if (service, op) not in answered and op not in NO_SUCCESS_YET[service]
    }
    assert not never, f"valid fuzz inputs never succeeded for {sorted(never)}"
