"""The App Runner provider: one thin method per operation, grouped by resource."""

from __future__ import annotations

from runyard.api.apprunner.autoscaling import AutoScalingOperations
from runyard.api.apprunner.connections import ConnectionOperations
from runyard.api.apprunner.networking import NetworkingOperations
from runyard.api.apprunner.observability import ObservabilityOperations
from runyard.api.apprunner.services import ServiceOperations
from runyard.api.apprunner.tags import TagOperations


class AppRunnerProvider(
    ServiceOperations,
    ConnectionOperations,
    AutoScalingOperations,
    ObservabilityOperations,
    NetworkingOperations,
    TagOperations,
):
    """Implements botocore's `apprunner` 2020-05-15 operations (method = xform_name(operation))."""
