"""The domain error tree. The API edge maps each class to the modelled AWS error of the operation."""

from __future__ import annotations


class RunyardError(Exception):
    """Base of every error a caller is meant to see. `message` is safe to show (no secrets)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(RunyardError):
    """The request is well-formed but asks for something that is not allowed."""


class NotFound(RunyardError):
    """The named resource does not exist (or no longer exists)."""


class AlreadyExists(RunyardError):
    """A resource with that name already exists."""


class InvalidState(RunyardError):
    """The resource exists but its state does not allow the request."""


class InUse(InvalidState):
    """The resource is referenced by another one and cannot be removed."""


class QuotaExceeded(RunyardError):
    """A configured quota would be exceeded."""


class TagLimitExceeded(RunyardError):
    """Too many tags on one resource: a limit of the request, not an account quota."""


class NotSupported(RunyardError):
    """The operation or option is not implemented by Runyard (yet); the message names it."""


class UnsupportedProvider(NotSupported):
    """The provider type cannot be used for this request."""


class DeploymentFailed(RunyardError):
    """A deployment step (fetch, build, start, health check) failed; the message says which and why."""
