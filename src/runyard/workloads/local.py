"""The Workloads port on this machine: git source -> managed-runtime build -> instances behind HAProxy.

Image services (OCI runtime only): the tag is resolved to a digest at the registry, the image is pulled by that
digest, and instances run it. Code services on the OCI runtime are built as on the process runtime, then packed
into an image (build/images.py) that is pushed to Runyard's local registry and run by digest the same way.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from runyard.build.images import EngineCredential, EngineImages, ImageBuildFailed, containerfile
from runyard.build.pipeline import Builder, BuildFailed, BuildInput, BuildResult
from runyard.build.runtimes import Toolchain, require_runtime
from runyard.control.model.git_credential import OpenedGitCredential
from runyard.control.model.service import DELETED, Revision, Service, ServiceSpec, image_port
from runyard.control.ports import DeploymentLog, Store
from runyard.errors import DeploymentFailed, InvalidInput, RunyardError
from runyard.ids import IdSource
from runyard.secrets import SecretsError
from runyard.source.git import (
    AuthenticationFailed,
    Credentials,
    GitCredentials,
    RepositoryLocation,
    SourceError,
    SshIdentity,
    classify_repository_url,
    fetch,
    resolve_branch,
)
from runyard.source.image_locations import ECR_PUBLIC_HOST, ImageLocations
from runyard.source.providers.access import ProviderAccess
from runyard.source.registry import (
    ImageReference,
    ReferenceError,
    RegistryClient,
    RegistryCredential,
    RegistryError,
    RegistryUnreachable,
)
from runyard.workloads.fleet import Fleet

NO_CONNECTIONS = "This Runyard was built without connections: AuthenticationConfiguration.ConnectionArn cannot be used."
GIT_CREDENTIAL_HINT = "add a git credential for it (`runyard git-credentials add`) or use a connection"


class ConnectionAccess(Protocol):
    """What reading a repository through a connection needs from the control plane (control.Connections)."""

    def check_usable(self, arn: str, repository_url: str) -> None: ...
    def git_token(self, arn: str) -> tuple[str, str]: ...
    def reject(self, arn: str, reason: str) -> None: ...


class GitCredentialAccess(Protocol):
    """Git credentials by URL prefix (control.GitCredentials): for repositories read without a connection."""

    def matching(self, account: str, url: str) -> object | None: ...
    def open(self, account: str, url: str) -> OpenedGitCredential | None: ...


IMAGES_NEED_OCI = (
    "Image-based services (ImageRepository) run on the OCI runtime: start Runyard with `--runtime oci` "
    "(RUNYARD_RUNTIME=oci; podman or dockerd). This Runyard runs instances as processes. Nothing was changed."
)
_LOOPBACK_NAMES = ("127.0.0.1", "localhost")


@dataclass(frozen=True, slots=True)
class OciImages:
    """What image services and packed code services need; None in LocalWorkloads: the process runtime."""

    engine: EngineImages
    registry: RegistryClient
    locations: ImageLocations
    base_images: Mapping[str, str]  # language ("python", "nodejs") -> base image of code services


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
        known_hosts_dir: Path | None = None,
        oci: OciImages | None = None,
    ) -> None:
        self._builder = builder
        self._toolchains = toolchains
        self._fleet = fleet
        self._store = store
        self._ids = ids
        self._account = account
        self._sources_dir = sources_dir
        self._providers = providers
        self._oci = oci
        self._connections: ConnectionAccess | None = None
        self._git_credentials: GitCredentialAccess | None = None
        self._known_hosts_dir = known_hosts_dir  # the host keys learned for SSH credentials without pinned ones

    def bind_connections(self, connections: ConnectionAccess) -> None:
        """The control plane is built after the workloads (it needs them): app.py binds its connections here."""
        self._connections = connections

    def bind_git_credentials(self, git_credentials: GitCredentialAccess) -> None:
        """The git credentials (built after the workloads, which forget their learned host keys)."""
        self._git_credentials = git_credentials

    def forget_host_keys(self, credential_id: str) -> None:
        """A git credential was replaced or removed: its learned known_hosts goes with it."""
        if self._known_hosts_dir is not None:
            (self._known_hosts_dir / credential_id).unlink(missing_ok=True)

    def check_source(self, spec: ServiceSpec) -> None:
        image = spec.source.image
        if image is not None:
            if self._oci is None:
                raise InvalidInput(IMAGES_NEED_OCI)
            if image.secrets:
                raise InvalidInput(SECRETS_LATER)
            try:
                self._oci.locations.locate(image.identifier, image.repository_type)
            except ReferenceError as error:
                raise InvalidInput(error.message) from None
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
            if location.is_local or location.kind == "ssh":
                raise InvalidInput("A repository read through a connection must be an https:// URL of its provider.")
            self._connections.check_usable(spec.source.connection_arn, code.repository_url)
        elif location.kind == "ssh" and (
            self._git_credentials is None or self._git_credentials.matching(self._account, location.url) is None
        ):
            raise InvalidInput(_no_ssh_credential(location))
        if code.configuration_source == "API" and code.runtime is not None:
            require_runtime(code.runtime, self._toolchains)

    async def build(self, service: Service, log: DeploymentLog) -> Revision:
        code = service.spec.source.code
        if code is None:
            return await self._pull_image(service, log)
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
                hint = "" if credentials is not None else f"; {GIT_CREDENTIAL_HINT}"
                raise DeploymentFailed(f"Failed to pull your application source code: {error.message}{hint}") from None
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
        revision = Revision(
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
        if self._oci is None:
            return revision
        image, digest = await self._pack(result, log)
        return replace(revision, image=image, image_digest=digest)

    # -- images (OCI runtime) ----------------------------------------------------------------------

    async def _pull_image(self, service: Service, log: DeploymentLog) -> Revision:
        """Resolve the tag to the digest it points at now, and pull that digest into the engine."""
        image = service.spec.source.image
        assert image is not None
        if self._oci is None:
            raise DeploymentFailed(IMAGES_NEED_OCI)
        oci = self._oci
        log("[AppRunner] Starting to pull your application image.")
        try:
            located = oci.locations.locate(image.identifier, image.repository_type)
            credential = oci.locations.credential(located.registry, service.spec.source.access_role_arn)
            if str(located) != image.identifier:
                log(f"[AppRunner] Image {image.identifier} is pulled from {located} on this Runyard.")
            digest = await oci.registry.resolve(located, credential)
        except (ReferenceError, RegistryError) as error:
            hint = _unreachable_hint(located.registry) if isinstance(error, RegistryUnreachable) else ""
            raise DeploymentFailed(f"Failed to pull your application image: {error.message}{hint}") from None
        pinned = f"{located.name}@{digest}"
        log(f"[AppRunner] Image {image.identifier} resolved to digest {digest}.")
        try:
            await asyncio.to_thread(
                oci.engine.pull,
                pinned,
                credential=_engine_credential(credential),
                insecure=oci.locations.is_insecure(located.registry),
            )
        except ImageBuildFailed as error:
            raise DeploymentFailed(f"Failed to pull your application image: {error.message}") from None
        log(f"[AppRunner] Successfully pulled your application image: {pinned}.")
        return Revision(
            artifact_id=digest,
            artifact_path="",
            commit_sha="",
            command=image.start_command or "",
            port=image_port(image),
            env=image.env,
            image=pinned,
            image_digest=digest,
        )

    async def _pack(self, result: BuildResult, log: DeploymentLog) -> tuple[str, str]:
        """The code service's image: base image + artifact, in the local registry; (pinned reference, digest)."""
        oci = self._oci
        assert oci is not None
        registry = oci.locations.local_registry
        if registry is None:
            raise DeploymentFailed("The OCI runtime packs code services into Runyard's local registry; it is not set.")
        artifact = result.artifact
        language = "python" if artifact.runtime.startswith("PYTHON") else "nodejs"
        base = oci.base_images.get(language)
        if not base:
            raise DeploymentFailed(f"No base image is configured for {artifact.runtime} (RUNYARD_BASE_IMAGE_*).")
        reference = ImageReference(registry, f"runyard/{language}", artifact.artifact_id)
        try:
            digest = await oci.registry.resolve(reference)
            log(f"[AppRunner] The image of this build exists already: {reference.name}@{digest}.")
        except RegistryError:
            log(f"[AppRunner] Packing the build into an image: {base} + {artifact.path}.")
            text = containerfile(base, str(artifact.path), "")
            try:
                if base.startswith("localhost/") and not await asyncio.to_thread(oci.engine.has, base):
                    raise DeploymentFailed(
                        f"The base image {base} is not in the container engine: make it with "
                        "`runyard images bootstrap` (or name another in RUNYARD_BASE_IMAGE_*)."
                    )
                await asyncio.to_thread(oci.engine.build, artifact.path, text, str(reference), log)
                await asyncio.to_thread(oci.engine.push, str(reference), insecure=True)
                digest = await oci.registry.resolve(reference)
            except (ImageBuildFailed, RegistryError) as error:
                raise DeploymentFailed(f"Failed to pack your application into an image: {error.message}") from None
        pinned = f"{reference.name}@{digest}"
        log(f"[AppRunner] Image {reference} resolved to digest {digest}.")
        try:
            await asyncio.to_thread(oci.engine.pull, pinned, credential=None, insecure=True)
        except ImageBuildFailed as error:
            raise DeploymentFailed(f"Failed to pull your application image: {error.message}") from None
        log(f"[AppRunner] Instances run the image {pinned}.")
        return pinned, digest

    def tracks_image(self, service: Service, registry: str | None, repository: str, tag: str) -> bool:
        """Whether a push of `repository:tag` (to `registry`, when known) is the tag the service deploys."""
        image = service.spec.source.image
        if image is None or self._oci is None:
            return False
        try:
            located = self._oci.locations.locate(image.identifier, image.repository_type)
        except ReferenceError:
            return False
        if located.repository != repository or located.tag != tag or located.digest is not None:
            return False
        return registry is None or _same_registry(registry, located.registry)

    def pollable(self, service: Service) -> bool:
        """Remote repositories are polled for automatic deployments; local paths change only by a StartDeployment."""
        if service.spec.source.image is not None:
            return self._oci is not None  # the tag's digest, at the registry
        code = service.spec.source.code
        try:
            return code is not None and not classify_repository_url(code.repository_url).is_local
        except SourceError:
            return False

    async def branch_head(self, service: Service) -> str:
        """The commit the service's branch points at now (`git ls-remote`, with the connection's credentials);
        for an image service, the digest its tag points at now."""
        image = service.spec.source.image
        if image is not None:
            if self._oci is None:
                raise DeploymentFailed(IMAGES_NEED_OCI)
            located = self._oci.locations.locate(image.identifier, image.repository_type)
            credential = self._oci.locations.credential(located.registry, service.spec.source.access_role_arn)
            return await self._oci.registry.resolve(located, credential)
        code = service.spec.source.code
        if code is None:
            raise DeploymentFailed("The service has neither a code nor an image repository.")
        credentials = await self._credentials(service)
        try:
            location = classify_repository_url(code.repository_url)
            return await asyncio.to_thread(resolve_branch, location, code.branch, credentials=credentials, timeout=60)
        except AuthenticationFailed as error:
            await self._rejected(service, error.message)
            raise

    async def _credentials(self, service: Service) -> Credentials | None:
        """The connection's (or else the matching git credential's) credentials for git, opened only for this fetch;
        None for a public repository."""
        arn = service.connection_arn
        if arn is None:
            return await asyncio.to_thread(self._git_credential, service)
        if self._connections is None or self._providers is None:
            raise DeploymentFailed(NO_CONNECTIONS)
        try:
            provider_type, token = await asyncio.to_thread(self._connections.git_token, arn)
        except RunyardError as error:
            raise DeploymentFailed(f"Failed to pull your application source code: {error.message}") from None
        return self._providers.provider(provider_type, None).git_credentials(token)

    def _git_credential(self, service: Service) -> Credentials | None:
        code = service.spec.source.code
        if code is None:
            return None
        try:
            location = classify_repository_url(code.repository_url)
        except SourceError:
            return None  # the fetch reports it
        try:
            opened = None
            if self._git_credentials is not None and not location.is_local:
                opened = self._git_credentials.open(self._account, location.url)
        except (RunyardError, SecretsError) as error:
            message = getattr(error, "message", None) or str(error)
            raise DeploymentFailed(f"Failed to pull your application source code: {message}") from None
        if opened is None:
            if location.kind == "ssh":  # never let ssh fall back to the host's own keys
                raise DeploymentFailed(f"Failed to pull your application source code: {_no_ssh_credential(location)}")
            return None
        if opened.credential_type == "HTTPS":
            return GitCredentials(opened.username or "", opened.secret)
        if self._known_hosts_dir is None:
            raise DeploymentFailed("This Runyard was built without a place for SSH host keys.")
        return SshIdentity(opened.secret, self._known_hosts_dir / opened.credential_id, opened.known_hosts)

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
        if (
            service.revision is not None
            and not service.revision.from_image
            and not self._artifact_in_use(service, service.revision.artifact_id)
        ):
            await asyncio.to_thread(self._builder.remove, service.revision.artifact_id)

    async def restore(self, service: Service) -> None:
        if service.revision is None:
            raise DeploymentFailed("The service has no deployed revision to run.")
        if not service.revision.from_image and self._builder.artifact(service.revision.artifact_id) is None:
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


def _no_ssh_credential(location: RepositoryLocation) -> str:
    return (
        f"{location.url} is an SSH URL and no git credential's URL prefix matches it: add one with "
        f"`runyard git-credentials add NAME --url-prefix PREFIX --ssh-key-file KEY`, or use the https:// URL "
        "(with a connection if the repository is private)."
    )


def _unreachable_hint(registry: str) -> str:
    if registry == ECR_PUBLIC_HOST:
        return " ECR Public needs the internet, or a mirror of it in RUNYARD_ECR_PUBLIC_MIRROR."
    return " A registry that serves plain HTTP must be listed in RUNYARD_INSECURE_REGISTRIES."


def _engine_credential(credential: RegistryCredential | None) -> EngineCredential | None:
    return None if credential is None else EngineCredential(credential.username, credential.password)


def _same_registry(a: str, b: str) -> bool:
    """`localhost:5000` and `127.0.0.1:5000` are one registry (what a pusher typed is what the registry reports)."""

    def normal(host: str) -> str:
        name, _, port = host.rpartition(":") if ":" in host else (host, "", "")
        return f"{'127.0.0.1' if name in _LOOPBACK_NAMES else name}:{port}"

    return a == b or normal(a) == normal(b)
