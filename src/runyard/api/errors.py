"""Domain errors -> the modelled AWS error of the operation, in one place.

Each domain error has a preference list per service: the first name the operation models wins;
if it models none of them, the last (the service-wide fallback) is used.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.model import OperationModel

from runyard import errors
from runyard.api.models import APPRUNNER, CLOUDWATCH
from runyard.observe import metrics

_APPRUNNER: dict[type[errors.RunyardError], tuple[str, ...]] = {
    errors.NotFound: ("ResourceNotFoundException", "InvalidRequestException"),
    errors.InvalidState: ("InvalidStateException", "InvalidRequestException"),
    errors.QuotaExceeded: ("ServiceQuotaExceededException", "InvalidRequestException"),
    errors.RunyardError: ("InvalidRequestException",),
}
_CODECONNECTIONS: dict[type[errors.RunyardError], tuple[str, ...]] = {
    errors.NotFound: ("ResourceNotFoundException",),
    errors.InvalidState: ("ResourceUnavailableException", "ConflictException"),
    errors.QuotaExceeded: ("LimitExceededException",),
    errors.TagLimitExceeded: ("LimitExceededException", "ValidationException"),
    errors.UnsupportedProvider: ("UnsupportedProviderTypeException",),
    errors.NotSupported: ("UnsupportedOperationException",),
    # ValidationException is AWS's common error for bad input where an operation models none.
    errors.RunyardError: ("InvalidInputException", "ValidationException"),
}
_CLOUDWATCH: dict[type[errors.RunyardError], tuple[str, ...]] = {
    metrics.InvalidNextToken: ("InvalidNextToken", "InvalidParameterValueException"),
    metrics.InvalidParameterCombination: ("InvalidParameterCombinationException",),
    # InvalidAction: CloudWatch's common error for an action it does not offer (the model has no shape for it).
    errors.NotSupported: ("InvalidAction",),
    errors.RunyardError: ("InvalidParameterValueException",),
}
VALIDATION = {
    APPRUNNER: ("InvalidRequestException",),
    CLOUDWATCH: ("InvalidParameterValueException",),
    "*": ("InvalidInputException", "ValidationException"),
}


@dataclass(frozen=True, slots=True)
class WireError:
    code: str
    message: str


def _pick(operation: OperationModel, candidates: tuple[str, ...]) -> str:
    modelled = {shape.name for shape in operation.error_shapes}
    return next((name for name in candidates if name in modelled), candidates[-1])


def wire_error(service: str, operation: OperationModel, error: errors.RunyardError) -> WireError:
    table = {APPRUNNER: _APPRUNNER, CLOUDWATCH: _CLOUDWATCH}.get(service, _CODECONNECTIONS)
    for cls in type(error).__mro__:
        if cls in table:
            return WireError(_pick(operation, table[cls]), error.message)
    raise AssertionError("RunyardError is always in the table")


def validation_error(service: str, operation: OperationModel, message: str) -> WireError:
    return WireError(_pick(operation, VALIDATION.get(service, VALIDATION["*"])), message)
