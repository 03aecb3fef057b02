"""Operations: the asynchronous work a mutating service call starts, as ListOperations reports it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

from runyard.control.model.service import ServiceSpec
from runyard.control.model.transitions import TransitionTable

CREATE_SERVICE = "CREATE_SERVICE"
START_DEPLOYMENT = "START_DEPLOYMENT"
UPDATE_SERVICE = "UPDATE_SERVICE"
PAUSE_SERVICE = "PAUSE_SERVICE"
RESUME_SERVICE = "RESUME_SERVICE"
DELETE_SERVICE = "DELETE_SERVICE"

PENDING = "PENDING"
IN_PROGRESS = "IN_PROGRESS"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
ROLLBACK_IN_PROGRESS = "ROLLBACK_IN_PROGRESS"
ROLLBACK_SUCCEEDED = "ROLLBACK_SUCCEEDED"
ROLLBACK_FAILED = "ROLLBACK_FAILED"

FINISHED = frozenset({SUCCEEDED, FAILED, ROLLBACK_SUCCEEDED, ROLLBACK_FAILED})

OPERATION_TRANSITIONS = TransitionTable(
    "operation",
    {
        PENDING: frozenset({IN_PROGRESS, FAILED}),
        # IN_PROGRESS -> IN_PROGRESS: an operation interrupted by a restart starts its phases again.
        IN_PROGRESS: frozenset({IN_PROGRESS, SUCCEEDED, FAILED, ROLLBACK_IN_PROGRESS}),
        ROLLBACK_IN_PROGRESS: frozenset({ROLLBACK_SUCCEEDED, ROLLBACK_FAILED}),
    },
)


@dataclass(frozen=True, slots=True)
class Operation:
    KIND: ClassVar[str] = "apprunner.operation"
    id: str  # a dashed UUID, as App Runner's OperationId
    account: str
    region: str
    target_arn: str
    type: str
    status: str
    created_at: float
    started_at: float | None = None
    updated_at: float | None = None
    ended_at: float | None = None
    reason: str | None = None  # why it failed, for the events stream and the deployment log
    spec: ServiceSpec | None = None  # UPDATE_SERVICE: the configuration it applies once it succeeds

    @property
    def key(self) -> str:
        return self.id

    @property
    def name(self) -> str:
        # The store's name column: lets the operations of one service be found without a scan.
        return self.target_arn

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def moved(self, status: str, now: float, *, reason: str | None = None) -> Operation:
        OPERATION_TRANSITIONS.check(self.status, status)
        return replace(
            self,
            status=status,
            started_at=self.started_at if self.started_at is not None else now,
            updated_at=now,
            ended_at=now if status in FINISHED else None,
            reason=reason if reason is not None else self.reason,
        )


# The "Service Operation Status Change" event of each operation type (developer guide, EventBridge reference).
EVENT_PREFIX = {
    CREATE_SERVICE: "CreateService",
    DELETE_SERVICE: "DeleteService",
    UPDATE_SERVICE: "UpdateService",
    START_DEPLOYMENT: "Deployment",
    PAUSE_SERVICE: "PauseService",
    RESUME_SERVICE: "ResumeService",
}
EVENT_MESSAGES = {
    "CreateServiceStarted": "Service creation started.",
    "CreateServiceCompletedSuccessfully": "Service creation completed successfully.",
    "CreateServiceFailed": "Service creation failed. For details, see service logs.",
    "DeleteServiceStarted": "Service deletion started.",
    "DeleteServiceCompletedSuccessfully": "Service deletion completed successfully.",
    "DeleteServiceFailed": "Service deletion failed.",
    "UpdateServiceStarted": "Service update started.",
    "UpdateServiceCompletedSuccessfully": "Service update completed successfully. New configuration is deployed.",
    "UpdateServiceFailed": "Service update failed. For details, see service logs.",
    "DeploymentStarted": "Deployment started.",
    "DeploymentCompletedSuccessfully": "Deployment completed successfully.",
    "DeploymentFailed": "Deployment failed. For details, see service logs.",
    "PauseServiceStarted": "Service pause started.",
    "PauseServiceCompletedSuccessfully": "Service pause completed successfully.",
    "PauseServiceFailed": "Service pause failed.",
    "ResumeServiceStarted": "Service resume started.",
    "ResumeServiceCompletedSuccessfully": "Service resume completed successfully.",
    "ResumeServiceFailed": "Service resume failed.",
}
NEW_APPLICATION = "Service update completed successfully. New application and configuration is deployed."
