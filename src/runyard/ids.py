"""Ids and ARNs for every resource kind: one place builds them, one place parses them."""

from __future__ import annotations

import re
import secrets
import string
import uuid
from dataclasses import dataclass
from typing import Protocol

PARTITION = "aws"
_LABEL_ALPHABET = string.ascii_lowercase + string.digits


class IdSource(Protocol):
    def hex32(self) -> str: ...
    def uuid(self) -> str: ...
    def label(self, length: int) -> str: ...


class RandomIds:
    """Cryptographically random ids (the default)."""

    def hex32(self) -> str:
        return secrets.token_hex(16)

    def uuid(self) -> str:
        return str(uuid.uuid4())

    def label(self, length: int) -> str:
        return "".join(secrets.choice(_LABEL_ALPHABET) for _ in range(length))


class SequentialIds:
    """Predictable ids for tests."""

    def __init__(self) -> None:
        self._n = 0

    def _next(self) -> int:
        self._n += 1
        return self._n

    def hex32(self) -> str:
        return f"{self._next():032x}"

    def uuid(self) -> str:
        n = self._next()
        return str(uuid.UUID(int=n, version=4))

    def label(self, length: int) -> str:
        return f"{self._next():0{length}d}"[-length:]


@dataclass(frozen=True, slots=True)
class Arn:
    service: str
    region: str
    account: str
    resource: str

    def __str__(self) -> str:
        return f"arn:{PARTITION}:{self.service}:{self.region}:{self.account}:{self.resource}"

    @property
    def resource_type(self) -> str:
        return self.resource.split("/", 1)[0]

    @property
    def parts(self) -> list[str]:
        """The resource path after its type: `service/name/id` -> ["name", "id"]."""
        return self.resource.split("/")[1:]


_ARN_RE = re.compile(r"arn:aws(?:-[\w]+)*:([a-z0-9.-]*):([a-z0-9.-]*):([0-9]{12}):(.+)", re.DOTALL)


def parse_arn(text: str) -> Arn | None:
    match = _ARN_RE.fullmatch(text)
    if match is None:
        return None
    service, region, account, resource = match.groups()
    return Arn(service=service, region=region, account=account, resource=resource)


def apprunner_arn(region: str, account: str, *parts: str | int) -> str:
    return str(Arn("apprunner", region, account, "/".join(str(p) for p in parts)))
