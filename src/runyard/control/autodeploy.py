"""Automatic deployments (AutoDeploymentsEnabled): pushes reported by provider webhooks, or seen by polling the
branch heads, become START_DEPLOYMENT operations. For an image service the same goes for its tag: a new digest
reported by a registry notification, or seen by polling the tag's digest, is a push.

A burst of pushes coalesces: only the newest commit per service is remembered, and a deployment starts when the
service is RUNNING (a deployment builds the branch head, so it takes the newest commit). A paused service does
not auto-deploy: what was pushed while it was paused is dropped (StartDeployment after a resume takes it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from runyard.control.context import Deps, Scope
from runyard.control.model.service import OPERATION_IN_PROGRESS, RUNNING, Service, tracked_version
from runyard.control.services import Services
from runyard.errors import RunyardError

log = logging.getLogger(__name__)
TICK = 1.0  # seconds between looks at the remembered pushes
BranchHead = Callable[[Service], Awaitable[str]]  # the branch's commit, or the image tag's digest
TracksImage = Callable[[Service, str | None, str, str], bool]  # (service, registry, repository, tag)


def auto_deploys(service: Service) -> bool:
    """App Runner's default is on for a code repository and a private (ECR) image, off for ECR Public."""
    source = service.spec.source
    if source.image is not None:
        return source.image.repository_type != "ECR_PUBLIC" and source.auto_deployments is not False
    return source.code is not None and source.auto_deployments is not False


@dataclass(frozen=True, slots=True)
class Push:
    commit_sha: str
    seen_at: float


class AutoDeployments:
    def __init__(
        self,
        deps: Deps,
        services: Services,
        *,
        account: str,
        branch_head: BranchHead | None,
        poll_interval: float,
        pollable: Callable[[Service], bool] = lambda _: True,
        tracks_image: TracksImage | None = None,
    ) -> None:
        self._deps = deps
        self._services = services
        self._account = account
        self._branch_head = branch_head
        self._poll_interval = poll_interval
        self._pollable = pollable
        self._tracks_image = tracks_image
        self._wanted: dict[str, Push] = {}  # service ARN -> the newest pushed commit not deployed yet
        self._attempted: dict[str, str] = {}  # service ARN -> the commit whose deployment was started last
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- pushes -----------------------------------------------------------------------------------

    def tracking(self, same_repository: Callable[[str], bool], branch: str) -> list[Service]:
        """Live services that auto-deploy `branch` of a repository for which `same_repository(url)` holds."""
        with self._deps.store.read() as uow:
            services = uow.repo(Service).find(account=self._account)
        return [
            s
            for s in services
            if s.live
            and auto_deploys(s)
            and s.spec.source.code is not None
            and s.spec.source.code.branch == branch
            and same_repository(s.spec.source.code.repository_url)
        ]

    def tracking_image(self, registry: str | None, repository: str, tag: str) -> list[Service]:
        """Live image services that auto-deploy `repository:tag` (of `registry`, when the notification names it)."""
        if self._tracks_image is None:
            return []
        tracks = self._tracks_image
        with self._deps.store.read() as uow:
            services = uow.repo(Service).find(account=self._account)
        return [
            s
            for s in services
            if s.live and s.spec.source.image is not None and auto_deploys(s) and tracks(s, registry, repository, tag)
        ]

    def pushed(self, service: Service, commit_sha: str) -> None:
        """Remember the newest commit of a service's branch; the loop deploys it when it can."""
        self._wanted[service.arn] = Push(commit_sha, time.monotonic())
        self._wake.set()

    # -- the loop ---------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        next_poll = time.monotonic() + (self._poll_interval or 0)
        while True:
            try:
                if self._poll_interval > 0 and self._branch_head is not None and time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + self._poll_interval
                    await self.poll()
                await self.deploy_wanted()
            except Exception:
                log.exception("automatic deployments: a round failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=TICK)
            self._wake.clear()

    async def poll(self) -> None:
        """`git ls-remote` of every auto-deployed service's branch: a head that moved is a push."""
        assert self._branch_head is not None
        for service in await asyncio.to_thread(self._pollable_services):
            try:
                head = await self._branch_head(service)
            except Exception as error:  # an unreachable or refusing server: the next round tries again
                log.info("polling %s: %s", service.name, getattr(error, "message", type(error).__name__))
                continue
            if head != tracked_version(service) and self._attempted.get(service.arn) != head:
                self.pushed(service, head)

    async def deploy_wanted(self) -> None:
        for arn, push in list(self._wanted.items()):
            service = await asyncio.to_thread(self._service, arn)
            if service is None or not service.live or not auto_deploys(service):
                self._wanted.pop(arn, None)
                continue
            if service.status == OPERATION_IN_PROGRESS:
                continue  # after this operation; newer pushes replace the commit meanwhile
            if service.status != RUNNING:
                self._wanted.pop(arn, None)  # paused (or failed): no automatic deployment
                continue
            if tracked_version(service) == push.commit_sha:
                self._wanted.pop(arn, None)
                continue
            scope = Scope(service.account, service.region)
            try:
                operation_id = await asyncio.to_thread(self._services.start_deployment, scope, arn)
            except RunyardError as error:
                log.info("automatic deployment of %s waits: %s", service.name, error.message)
                continue
            self._attempted[arn] = push.commit_sha
            if self._wanted.get(arn) is push:
                del self._wanted[arn]
            version = push.commit_sha if ":" in push.commit_sha else f"commit {push.commit_sha[:7]}"
            log.info("automatic deployment of %s (%s): operation %s", service.name, version, operation_id)

    def _pollable_services(self) -> list[Service]:
        with self._deps.store.read() as uow:
            return [
                s
                for s in uow.repo(Service).find(account=self._account)
                if s.status == RUNNING and auto_deploys(s) and s.revision is not None and self._pollable(s)
            ]

    def _service(self, arn: str) -> Service | None:
        with self._deps.store.read() as uow:
            return uow.repo(Service).get(arn)
