"""The Workloads port on this machine: git source -> managed-runtime build -> instances behind HAProxy."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from runyard.build.pipeline import Builder, BuildFailed, BuildInput
from runyard.build.runtimes import Toolchain, require_runtime
from runyard.control.model.service import DELETED, Revision, Service, ServiceSpec
from runyard.control.ports import DeploymentLog, Store
from runyard.errors import DeploymentFailed, InvalidInput, RunyardError
from runyard.ids import IdSource
from runyard.source.git import (
    AuthenticationFailed,
    GitCredentials,
    SourceError,
    classify_repository_url,
    fetch,
    resolve_branch,
)
from runyard.source.providers.access import ProviderAccess
from runyard.workloads.fleet import Fleet

NO_CONNECTIONS = "This Runyard was built without connections: AuthenticationConfiguration.ConnectionArn cannot be used."


class ConnectionAccess(Protocol):
    """What reading a repository through a connection needs from the control plane (control.Connections)."""

    def check_usable(self, arn: str, repository_url: str) -> None: ...
    def git_token(self, arn: str) -> tuple[str, str]: ...
    def reject(self, arn: str, reason: str) -> None: ...


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
        providers: ProviderAccess | None = None,
    ) -> None:
        self._builder = builder
        self._toolchains = toolchains
        self._fleet = fleet
        self._store = store
        self._ids = ids
        self._account = account
        self._sources_dir = sources_dir
        self._providers = providers
        self._connections: ConnectionAccess | None = None

    def bind_connections(self, connections: ConnectionAccess) -> None:
        """The control plane is built after the workloads (it needs them): app.py binds its connections here."""
        self._connections = connections

    def check_source(self, spec: ServiceSpec) -> None:
        code = spec.source.code
        if code is None:
            return
        if code.secrets:
            raise InvalidInput(SECRETS_LATER)
        try:
            location = classify_repository_url(code.repository_url)
        except SourceError as error:
            raise InvalidInput(error.message) from None
        if spec.source.connection_arn is not None:
            if self._connections is None:
                raise InvalidInput(NO_CONNECTIONS)
            if location.is_local:
                raise InvalidInput("A repository read through a connection must be an https:// URL of its provider.")
            self._connections.check_usable(spec.source.connection_arn, code.repository_url)
        if code.configuration_source == "API" and code.runtime is not None:
            require_runtime(code.runtime, self._toolchains)

    async def build(self, service: Service, log: DeploymentLog) -> Revision:
        code = service.spec.source.code
        if code is None:
            raise DeploymentFailed("Runyard cannot run image-based services yet.")
        log("[AppRunner] Starting to pull your application source code.")
        checkout = self._sources_dir / f"{service.service_id}-{self._ids.hex32()[:8]}"
        try:
            credentials = await self._credentials(service)
            try:
                location = classify_repository_url(code.repository_url)
                sha = await asyncio.to_thread(resolve_branch, location, code.branch, credentials=credentials)
                fetched = await asyncio.to_thread(
                    fetch, location, sha, checkout, source_directory=code.source_directory, credentials=credentials
                )
            except AuthenticationFailed as error:
                await self._rejected(service, error.message)
                raise DeploymentFailed(f"Failed to pull your application source code: {error.message}") from None
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

    def pollable(self, service: Service) -> bool:
        """Remote repositories are polled for automatic deployments; local paths change only by a StartDeployment."""
        code = service.spec.source.code
        try:
            return code is not None and not classify_repository_url(code.repository_url).is_local
        except SourceError:
            return False

    async def branch_head(self, service: Service) -> str:
        """The commit the service's branch points at now (`git ls-remote`, with the connection's credentials)."""
        code = service.spec.source.code
        if code is None:
            raise DeploymentFailed("An image-based service has no branch.")
        credentials = await self._credentials(service)
        try:
            location = classify_repository_url(code.repository_url)
            return await asyncio.to_thread(resolve_branch, location, code.branch, credentials=credentials, timeout=60)
        except AuthenticationFailed as error:
            await self._rejected(service, error.message)
            raise

    async def _credentials(self, service: Service) -> GitCredentials | None:
        """The connection's credentials for git, opened only for this fetch; None for a public repository."""
        arn = service.connection_arn
        if arn is None:
            return None
        if self._connections is None or self._providers is None:
            raise DeploymentFailed(NO_CONNECTIONS)
        try:
            provider_type, token = await asyncio.to_thread(self._connections.git_token, arn)
        except RunyardError as error:
            raise DeploymentFailed(f"Failed to pull your application source code: {error.message}") from None
        return self._providers.provider(provider_type, None).git_credentials(token)

    async def _rejected(self, service: Service, message: str) -> None:
        arn = service.connection_arn
        if arn is not None and self._connections is not None:
            await asyncio.to_thread(self._connections.reject, arn, f"the provider refused the credential ({message})")

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
