"""What a provider method knows about the request it serves."""

from __future__ import annotations

from dataclasses import dataclass

from runyard.control.context import Scope


@dataclass(frozen=True, slots=True)
class RequestContext:
    request_id: str
    service: str  # botocore service name the request was addressed to
    operation: str
    scope: Scope
