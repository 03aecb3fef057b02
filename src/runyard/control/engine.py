"""The operation engine: runs the operations that mutating calls store, in the background.

One operation at a time per service (the API refuses a second one while the service is
OPERATION_IN_PROGRESS). Every phase is idempotent, so an operation that a restart interrupted is simply
run again from its start: builds are reused by content, stale instances are replaced. A status changes
only once the work it names is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from runyard.control.context import Deps
from runyard.control.model.operation import (
    CREATE_SERVICE,
    DELETE_SERVICE,
    EVENT_MESSAGES,
    EVENT_PREFIX,
    FAILED,
    IN_PROGRESS,
    NEW_APPLICATION,
    PAUSE_SERVICE,
    RESUME_SERVICE,
    ROLLBACK_IN_PROGRESS,
    ROLLBACK_SUCCEEDED,
    START_DEPLOYMENT,
    SUCCEEDED,
    UPDATE_SERVICE,
    Operation,
)
from runyard.control.model.service import (
    CREATE_FAILED,
    DELETE_FAILED,
    DELETED,
    OPERATION_IN_PROGRESS,
    PAUSED,
    RUNNING,
    SERVICE_TRANSITIONS,
    Service,
    needs_build,
    needs_new_instances,
    rerun,
    updated,
)
from runyard.control.ports import DeploymentLog, ServiceEvents, ServiceLogs, Workloads
from runyard.errors import DeploymentFailed

log = logging.getLogger(__name__)
HOUSEKEEPING_INTERVAL = 60.0
SERVICE_STATUS_CHANGE = "Service Status Change"
OPERATION_STATUS_CHANGE = "Service Operation Status Change"
# Where a service lands when an operation fails unexpectedly (not through DeploymentFailed).
FAILURE_STATUS = {
    CREATE_SERVICE: CREATE_FAILED,
    DELETE_SERVICE: DELETE_FAILED,
    START_DEPLOYMENT: RUNNING,
    UPDATE_SERVICE: RUNNING,
    PAUSE_SERVICE: RUNNING,
    RESUME_SERVICE: PAUSED,
}


class OperationEngine:
    def __init__(
        self,
        deps: Deps,
        workloads: Workloads,
        logs: ServiceLogs,
        events: ServiceEvents,
        *,
        account: str,
        deleted_retention: float,
    ) -> None:
        self._deps = deps
        self._workloads = workloads
        self._logs = logs
        self._events = events
        self._account = account
        self._deleted_retention = deleted_retention
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}  # by service ARN
        self._background: set[asyncio.Task[None]] = set()

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Bring running services back, then resume every operation a restart interrupted."""
        self._loop = asyncio.get_running_loop()
        with self._deps.store.read() as uow:
            unfinished = [op for op in uow.repo(Operation).find(account=self._account) if not op.finished]
        await self.restore_running()
        for operation in unfinished:
            self._schedule(operation.id)
        self._spawn(self._housekeeping())

    async def restore_running(self) -> None:
        """Re-adopt or restart the instances of every running service (at start, and after the data plane restarts)."""
        with self._deps.store.read() as uow:
            services = uow.repo(Service).find(account=self._account)
        for service in services:
            if service.status == RUNNING:
                self._spawn(self._restore(service))

    async def stop(self) -> None:
        """Cancel running operations (they stay IN_PROGRESS and resume at the next start), stop the workloads."""
        tasks = [*self._tasks.values(), *self._background]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self._background.clear()
        await self._workloads.close()
        self._loop = None

    def submit(self, operation_id: str) -> None:
        """Run a stored operation soon. Safe from any thread; before start() the operation waits in the store."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._schedule, operation_id)

    async def idle(self, service_arn: str) -> None:
        """Wait until the service's current operation (if any) is done (tests and benchmarks)."""
        task = self._tasks.get(service_arn)
        if task is not None:
            await asyncio.shield(task)

    # -- scheduling -------------------------------------------------------------------------------

    def _spawn(self, coroutine: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _schedule(self, operation_id: str) -> None:
        with self._deps.store.read() as uow:
            operation = uow.repo(Operation).get(operation_id)
        if operation is None or operation.finished:
            return
        current = self._tasks.get(operation.target_arn)
        if current is not None and not current.done():
            # The API admits one operation per service; this one runs once the current one is done.
            current.add_done_callback(lambda _: self._schedule(operation_id))
            return
        task = asyncio.ensure_future(self._run(operation_id))
        arn = operation.target_arn
        self._tasks[arn] = task
        task.add_done_callback(lambda done: self._forget(arn, done))

    def _forget(self, service_arn: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(service_arn) is task:
            del self._tasks[service_arn]

    # -- running an operation ---------------------------------------------------------------------

    async def _run(self, operation_id: str) -> None:
        operation = self._move_operation(operation_id, IN_PROGRESS)
        if operation is None:
            return
        with self._deps.store.read() as uow:
            service = uow.repo(Service).get(operation.target_arn)
        if service is None:
            self._move_operation(operation_id, FAILED, reason="The service no longer exists.")
            return
        handlers: dict[str, Callable[[Service, Operation, DeploymentLog], Awaitable[None]]] = {
            CREATE_SERVICE: self._create,
            DELETE_SERVICE: self._delete,
            START_DEPLOYMENT: self._deploy,
            UPDATE_SERVICE: self._deploy,
            PAUSE_SERVICE: self._pause,
            RESUME_SERVICE: self._resume,
        }

        def deployment_log(line: str) -> None:
            self._logs.deployment(service, operation.id, line)

        self._operation_event(service, operation, "Started")
        try:
            await handlers[operation.type](service, operation, deployment_log)
        except asyncio.CancelledError:
            raise  # Runyard is stopping: the operation stays IN_PROGRESS and runs again at the next start
        except Exception:
            log.exception("operation %s (%s) of %s failed unexpectedly", operation.id, operation.type, service.arn)
            reason = f"Runyard failed unexpectedly while running {operation.type} (see Runyard's own log)."
            self._fail(service, operation, FAILURE_STATUS[operation.type], FAILED, reason)

    async def _create(self, service: Service, operation: Operation, deployment_log: DeploymentLog) -> None:
        deployment_log(f"[AppRunner] Deployment with ID : {operation.id} started. Triggering event : SERVICE_CREATE")
        try:
            revision = await self._workloads.build(service, deployment_log)
            service = self._update(service.arn, revision=revision)
            await self._workloads.start(service, revision, deployment_log)
        except DeploymentFailed as failure:
            deployment_log(
                f"[AppRunner] Deployment with ID : {operation.id} failed. Failure reason : {failure.message}"
            )
            await self._workloads.stop(service)
            self._fail(service, operation, CREATE_FAILED, FAILED, failure.message)
            return
        deployment_log(f"[AppRunner] Deployment with ID : {operation.id} successful.")
        self._finish(service, operation, RUNNING, SUCCEEDED)

    async def _deploy(self, service: Service, operation: Operation, deployment_log: DeploymentLog) -> None:
        """START_DEPLOYMENT (the branch head) and UPDATE_SERVICE (a new configuration, rebuilt if it must be)."""
        trigger = "MANUAL_DEPLOYMENT" if operation.type == START_DEPLOYMENT else "CONFIGURATION_UPDATE"
        deployment_log(f"[AppRunner] Deployment with ID : {operation.id} started. Triggering event : {trigger}")
        spec = operation.spec or service.spec
        target = updated(service, spec)
        message = None
        try:
            if operation.type == START_DEPLOYMENT or needs_build(service.spec, spec) or service.revision is None:
                revision = await self._workloads.build(target, deployment_log)
                message = NEW_APPLICATION
            else:
                revision = rerun(service.revision, spec)
                deployment_log("[AppRunner] The configuration changed, not the application: no build is needed.")
            if message is None and not needs_new_instances(service, spec, revision):
                # Auto scaling and observability apply to the running instances once stored: no new instances.
                deployment_log("[AppRunner] The running instances take the new configuration as they are.")
            else:
                await self._workloads.roll(target, revision, deployment_log)
        except DeploymentFailed as failure:
            deployment_log(
                f"[AppRunner] Deployment with ID : {operation.id} failed. Failure reason : {failure.message}"
            )
            self._move_operation(operation.id, ROLLBACK_IN_PROGRESS, reason=failure.message)
            deployment_log("[AppRunner] Rollback: the previous version kept serving throughout; nothing to undo.")
            self._fail(service, operation, RUNNING, ROLLBACK_SUCCEEDED, failure.message)
            return
        deployment_log(f"[AppRunner] Deployment with ID : {operation.id} successful.")
        self._update(
            service.arn,
            spec=spec,
            auto_scaling_configuration_arn=target.auto_scaling_configuration_arn,
            revision=revision,
        )
        self._finish(service, operation, RUNNING, SUCCEEDED, message=message)

    async def _pause(self, service: Service, operation: Operation, deployment_log: DeploymentLog) -> None:
        await self._workloads.stop(service)
        self._finish(service, operation, PAUSED, SUCCEEDED)

    async def _resume(self, service: Service, operation: Operation, deployment_log: DeploymentLog) -> None:
        if service.revision is None:
            self._fail(service, operation, PAUSED, FAILED, "The service has no deployed version to resume.")
            return
        try:
            # The version deployed before the pause, without a build and without newer commits (spec).
            await self._workloads.start(service, service.revision, deployment_log)
        except DeploymentFailed as failure:
            await self._workloads.stop(service)
            self._fail(service, operation, PAUSED, FAILED, failure.message)
            return
        self._finish(service, operation, RUNNING, SUCCEEDED)

    async def _delete(self, service: Service, operation: Operation, deployment_log: DeploymentLog) -> None:
        try:
            await self._workloads.remove(service)
        except DeploymentFailed as failure:
            self._fail(service, operation, DELETE_FAILED, FAILED, failure.message)
            return
        self._finish(service, operation, DELETED, SUCCEEDED)

    async def _restore(self, service: Service) -> None:
        try:
            await self._workloads.restore(service)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.exception("restoring %s failed", service.arn)
            message = error.message if isinstance(error, DeploymentFailed) else "see Runyard's own log"
            self._logs.event(service, f"Runyard could not bring the service's instances back: {message}")

    async def _housekeeping(self) -> None:
        """Deleted services stay describable for a while (api-contract §6.5), then they are gone."""
        while True:
            self._purge_deleted()
            await asyncio.sleep(HOUSEKEEPING_INTERVAL)

    def _purge_deleted(self) -> None:
        horizon = self._deps.clock.now() - self._deleted_retention
        with self._deps.store.write() as uow:
            expired = [
                s
                for s in uow.repo(Service).find(account=self._account)
                if s.status == DELETED and (s.deleted_at or 0) <= horizon
            ]
            for service in expired:
                for operation in uow.repo(Operation).find(account=self._account, name=service.arn):
                    uow.repo(Operation).remove(operation.id)
                uow.repo(Service).remove(service.arn)
        for service in expired:
            self._logs.remove(service)

    # -- state changes ----------------------------------------------------------------------------

    def _move_operation(self, operation_id: str, status: str, *, reason: str | None = None) -> Operation | None:
        now = self._deps.clock.now()
        with self._deps.store.write() as uow:
            operation = uow.repo(Operation).get(operation_id)
            if operation is None or operation.finished:
                return None
            operation = operation.moved(status, now, reason=reason)
            uow.repo(Operation).save(operation)
        return operation

    def _update(self, service_arn: str, **changes: Any) -> Service:
        with self._deps.store.write() as uow:
            service = uow.repo(Service).get(service_arn)
            if service is None:
                raise DeploymentFailed("The service was removed while it was being deployed.")
            service = replace(service, updated_at=self._deps.clock.now(), **changes)
            uow.repo(Service).save(service)
        return service

    def _fail(self, service: Service, operation: Operation, service_status: str, status: str, reason: str) -> None:
        headline = EVENT_MESSAGES[EVENT_PREFIX[operation.type] + "Failed"].split(".")[0]
        self._logs.event(service, f"{headline}: {reason}")  # e.g. "Service creation failed: <why>"
        self._finish(service, operation, service_status, status, reason=reason)

    def _finish(
        self,
        service: Service,
        operation: Operation,
        service_status: str,
        status: str,
        *,
        reason: str | None = None,
        message: str | None = None,
    ) -> None:
        """The operation's outcome and the service's new status, in one transaction; then their events."""
        now = self._deps.clock.now()
        with self._deps.store.write() as uow:
            current = uow.repo(Service).get(service.arn)
            stored = uow.repo(Operation).get(operation.id)
            if stored is not None and not stored.finished:
                uow.repo(Operation).save(stored.moved(status, now, reason=reason))
            changed = current is not None and current.status == OPERATION_IN_PROGRESS
            if current is not None and changed:
                SERVICE_TRANSITIONS.check(current.status, service_status)
                deleted_at = now if service_status == DELETED else current.deleted_at
                current = replace(current, status=service_status, updated_at=now, deleted_at=deleted_at)
                uow.repo(Service).save(current)
        self._operation_event(service, operation, "CompletedSuccessfully" if status == SUCCEEDED else "Failed", message)
        if changed:
            self._status_event(service, OPERATION_IN_PROGRESS, service_status)

    def _operation_event(
        self, service: Service, operation: Operation, outcome: str, message: str | None = None
    ) -> None:
        status = EVENT_PREFIX[operation.type] + outcome
        detail = {
            "Status": status,
            "ServiceName": service.name,
            "ServiceId": service.service_id,
            "Message": message or EVENT_MESSAGES[status],
            "Severity": "ERROR" if outcome == "Failed" else "INFO",
        }
        self._events.publish(service, OPERATION_STATUS_CHANGE, detail)

    def _status_event(self, service: Service, previous: str, current: str) -> None:
        self._events.publish(service, SERVICE_STATUS_CHANGE, status_detail(service, previous, current))


def status_detail(service: Service, previous: str, current: str) -> dict[str, str]:
    """The detail of a "Service Status Change" event (developer guide, EventBridge reference)."""
    return {
        "PreviousStatus": previous,
        "CurrentStatus": current,
        "ServiceName": service.name,
        "ServiceId": service.service_id,
        "Message": f"Service status is set to {current}.",
        "Severity": "ERROR" if current in (CREATE_FAILED, DELETE_FAILED) else "INFO",
    }
