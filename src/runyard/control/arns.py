"""Reading App Runner ARNs given as input: full or partial, always within the caller's scope."""

from __future__ import annotations

from dataclasses import dataclass

from runyard.control.context import Scope
from runyard.errors import NotFound
from runyard.ids import parse_arn


@dataclass(frozen=True, slots=True)
class ArnRef:
    text: str
    resource_type: str
    parts: tuple[str, ...]  # the path after the resource type


def read_arn(scope: Scope, text: str, resource_type: str, *, label: str) -> ArnRef:
    """Parse an apprunner ARN of one resource type in the caller's account and region, else NotFound."""
    arn = parse_arn(text)
    if (
        arn is None
        or arn.service != "apprunner"
        or arn.resource_type != resource_type
        or arn.account != scope.account
        or arn.region != scope.region
        or not arn.parts
        or any(not part for part in arn.parts)
    ):
        raise NotFound(f"{label} not found: {text}")
    return ArnRef(text=text, resource_type=resource_type, parts=tuple(arn.parts))
