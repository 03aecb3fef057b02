"""The Workloads port on this machine: git source -> managed-runtime build -> instances behind HAProxy."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Mapping
from pathlib import Path

from runyard.build.pipeline import Builder, BuildFailed, BuildInput
from runyard.build.runtimes import Toolchain, require_runtime
from runyard.control.model.service import DELETED, Revision, Service, ServiceSpec
from runyard.control.ports import DeploymentLog, Store
from runyard.errors import DeploymentFailed, InvalidInput
from runyard.ids import IdSource
from runyard.source.git import SourceError, classify_repository_url, fetch, resolve_branch
from runyard.workloads.fleet import Fleet

CONNECTIONS_LATER = (
    "Runyard cannot clone through a connection yet (AuthenticationConfiguration.ConnectionArn): connection-backed "
    "repositories arrive with provider connections. Use a public https:// URL, a file:// URL or a local path."
)

SECRETS_LATER = (
    "Runyard cannot resolve RuntimeEnvironmentSecrets yet (Secrets Manager and SSM Parameter Store are not "
    "available here). Use RuntimeEnvironmentVariables. Nothing was changed."
)


class LocalWorkloads:
    def __init__(
        self,
        *,
        builder: Builder,
        toolchains: Mapping[str, Toolchain],
        fleet: Fleet,
        store: Store,
        ids: IdSource,
        account: str,
        sources_dir: Path,
    ) -> None:
        self._builder = builder
        self._toolchains = toolchains
        self._fleet = fleet
        self._store = store
        self._ids = ids
        self._account = account
        self._sources_dir = sources_dir

    def check_source(self, spec: ServiceSpec) -> None:
        code = spec.source.code
        if code is None:
            return
        if spec.source.connection_arn is not None:
            raise InvalidInput(CONNECTIONS_LATER)
        if code.secrets:
            raise InvalidInput(SECRETS_LATER)
        try:
            classify_repository_url(code.repository_url)
        except SourceError as error:
            raise InvalidInput(error.message) from None
        if code.configuration_source == "API" and code.runtime is not None:
            require_runtime(code.runtime, self._toolchains)

    async def build(self, service: Service, log: DeploymentLog) -> Revision:
        code = service.spec.source.code
        if code is None:
            raise DeploymentFailed("Runyard cannot run image-based services yet.")
        log("[AppRunner] Starting to pull your application source code.")
        checkout = self._sources_dir / f"{service.service_id}-{self._ids.hex32()[:8]}"
        try:
            try:
                location = classify_repository_url(code.repository_url)
                sha = await asyncio.to_thread(resolve_branch, location, code.branch)
                fetched = await asyncio.to_thread(
                    fetch, location, sha, checkout, source_directory=code.source_directory
                )
            except SourceError as error:
                raise DeploymentFailed(f"Failed to pull your application source code: {error.message}") from None
            log(f"[AppRunner] Successfully pulled your application source code: commit {sha[:7]} {fetched.message!r}.")
            request = BuildInput(
                app_dir=fetched.app_directory,
                commit_sha=sha,
                source_directory=code.source_directory,
                configuration_source="API" if code.configuration_source == "API" else "REPOSITORY",
                runtime=code.runtime,
                build_command=code.build_command,
                start_command=code.start_command,
                port=code.port,
                env=code.env,
            )
            cancel = threading.Event()
            try:
                result = await asyncio.to_thread(self._builder.build, request, log, cancel)
            except asyncio.CancelledError:
                cancel.set()  # the build thread stops its command; the artifact stays incomplete and is rebuilt
                raise
            except BuildFailed as error:
                raise DeploymentFailed(f"Failed to build your application source code: {error.message}") from None
        finally:
            shutil.rmtree(checkout, ignore_errors=True)
        run = result.run
        return Revision(
            artifact_id=result.artifact.artifact_id,
            artifact_path=str(result.artifact.path),
            commit_sha=sha,
            command=run.command,
            port=run.port,
            port_env_name=run.port_env_name,
            env=run.env,
            runtime_env=run.runtime_env,
            runtime=result.artifact.runtime,
        )

    async def start(self, service: Service, revision: Revision, log: DeploymentLog) -> None:
        await self._fleet.deploy(service, revision, log)

    async def roll(self, service: Service, revision: Revision, log: DeploymentLog) -> None:
        await self._fleet.roll(service, revision, log)

    async def stop(self, service: Service) -> None:
        await self._fleet.stop_service(service)

    async def remove(self, service: Service) -> None:
        await self._fleet.remove_service(service)
        if service.revision is not None and not self._artifact_in_use(service, service.revision.artifact_id):
            await asyncio.to_thread(self._builder.remove, service.revision.artifact_id)

    async def restore(self, service: Service) -> None:
        if service.revision is None:
            raise DeploymentFailed("The service has no deployed revision to run.")
        if self._builder.artifact(service.revision.artifact_id) is None:
            raise DeploymentFailed(f"The build artifact {service.revision.artifact_id[:12]} is missing.")
        await self._fleet.restore(service, service.revision)

    async def close(self) -> None:
        await self._fleet.close()

    def _artifact_in_use(self, removed: Service, artifact_id: str) -> bool:
        """Artifacts are content-addressed, so two services built from the same commit share one."""
        with self._store.read() as uow:
            services = uow.repo(Service).find(account=self._account)
        return any(
            s.arn != removed.arn and s.status != DELETED and s.revision and s.revision.artifact_id == artifact_id
            for s in services
        )
