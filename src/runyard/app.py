"""Composition root: Settings -> store, data plane, runtime, builder, control plane, providers, ASGI app.
The only module that knows every concrete class."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from runyard import __version__
from runyard.api.apprunner import AppRunnerProvider
from runyard.api.cloudwatch import CloudWatchProvider
from runyard.api.codeconnections import CodeConnectionsProvider
from runyard.api.git_credentials import GitCredentialEndpoints
from runyard.api.git_remote import GitRemote
from runyard.api.handshake import ConnectionExtensions
from runyard.api.models import APPRUNNER, CLOUDWATCH, CODECONNECTIONS, CODESTAR_CONNECTIONS
from runyard.api.registry_webhooks import PATH as NOTIFICATIONS_PATH
from runyard.api.registry_webhooks import RegistryNotifications
from runyard.api.server import ApiEndpoint
from runyard.api.webhooks import PushWebhooks
from runyard.autoscale.scaler import Scaler
from runyard.build.images import EngineImages
from runyard.build.pipeline import Builder
from runyard.build.runtimes import detect_toolchains
from runyard.clock import Clock, SystemClock
from runyard.config import Settings, SettingsError
from runyard.console.app import console_app, console_entry, root_credentials_check
from runyard.console.handshake import handshake_routes
from runyard.console.session import load_or_create_key
from runyard.console.web import Console
from runyard.control.autodeploy import AutoDeployments
from runyard.control.context import Deps, Scope
from runyard.control.credentials import PeriodicCheck
from runyard.control.git_credentials import GitCredentials
from runyard.control.model.service import (
    CREATE_FAILED,
    DELETE_FAILED,
    DELETED,
    OPERATION_IN_PROGRESS,
    PAUSED,
    RUNNING,
)
from runyard.control.plane import ControlPlane
from runyard.credentials import RootCredentials, load_or_create
from runyard.dataplane.activator import ActivatorServer, HostInfo, HostState, activator_app
from runyard.dataplane.haproxy import HAProxyProcess, HAProxySettings
from runyard.ids import IdSource, RandomIds
from runyard.observe import prometheus
from runyard.observe.events import EventBus
from runyard.observe.logs import LogStore
from runyard.observe.metrics import Metrics, Retention
from runyard.observe.service_logs import ServiceLogBook
from runyard.runtime.base import RuntimeKind
from runyard.runtime.oci import OciBackend
from runyard.runtime.podman_service import ContainerApi, PodmanService, find_container_api
from runyard.runtime.process import ProcessBackend
from runyard.secrets import SecretBox
from runyard.source.hosted import HostedRepositories
from runyard.source.image_locations import (
    ImageLocations,
    RegistryConfigError,
    load_registry_credentials,
    parse_registry_list,
)
from runyard.source.local_registry import LocalRegistry
from runyard.source.providers import ProviderDirectory
from runyard.source.providers.access import ProviderAccess
from runyard.source.registry import RegistryClient
from runyard.store.database import Database
from runyard.store.metrics import SqlMetricStore
from runyard.workloads.fleet import Fleet, FleetSettings
from runyard.workloads.local import LocalWorkloads, OciImages
from runyard.workloads.metrics_collector import CollectorSettings, MetricsCollector
from runyard.workloads.scaling import FleetScaling, ScalingTuning

log = logging.getLogger("runyard")
WATCHDOG_INTERVAL = 1.0


@dataclass
class DataPlane:
    """HAProxy and the activator behind it: started and stopped with Runyard."""

    haproxy: HAProxyProcess
    activator: ActivatorServer
    settings: HAProxySettings

    watchdog: asyncio.Task[None] | None = None

    async def start(self, on_restart: Callable[[], Awaitable[None]]) -> None:
        await self.activator.start()
        # The activator's port is known only now when it was 0 ("any free port"); HAProxy is rendered with it.
        self.haproxy.settings = replace(self.settings, activator_port=self.activator.port)
        await self.haproxy.start()
        self.watchdog = asyncio.ensure_future(self._watch(on_restart))

    async def _watch(self, on_restart: Callable[[], Awaitable[None]]) -> None:
        """Supervision: an HAProxy that dies is started again, and the routes to live instances are restored."""
        while True:
            await asyncio.sleep(WATCHDOG_INTERVAL)
            if self.haproxy.running:
                continue
            log.warning("HAProxy exited; starting it again")
            try:
                await self.haproxy.stop(grace=0)  # reap the dead master and forget it
                await self.haproxy.start()
                await on_restart()
            except Exception:
                log.exception("could not start HAProxy again; retrying")

    async def stop(self) -> None:
        if self.watchdog is not None:
            self.watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.watchdog
            self.watchdog = None
        await self.haproxy.stop()
        await self.activator.stop()


@dataclass
class Runyard:
    settings: Settings
    credentials: RootCredentials
    database: Database
    control: ControlPlane
    dataplane: DataPlane
    events: EventBus
    scaler: Scaler
    logs: LogStore  # read by the console's Logs tab
    runtimes: dict[str, str]  # API runtime -> the toolchain that builds it here (the console's choices)
    collector: MetricsCollector  # samples the AWS/AppRunner metrics into the store
    metrics: Metrics  # queries them (CloudWatch API, `runyard metrics`)
    autodeploy: AutoDeployments  # provider webhooks and branch polling -> START_DEPLOYMENT
    providers: ProviderAccess  # the git providers behind connections (OAuth, webhooks)
    credential_checks: PeriodicCheck  # connections whose credential the provider now refuses -> ERROR
    git_credentials: GitCredentials  # any git server over HTTPS or SSH, by URL prefix (a Runyard extension)
    runtime_kind: RuntimeKind = RuntimeKind.PROCESS  # where instances run (`--runtime`, resolved)
    container_api: ContainerApi | None = None  # the OCI runtime's engine (closed, and podman stopped, at stop)
    local_registry: LocalRegistry | None = None  # the OCI runtime's image registry (started and stopped with us)

    def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.database.migrate()
        self.control.autoscaling.ensure_region(Scope(self.settings.account_id, self.settings.region))

    async def start_workloads(self) -> None:
        """The data plane first (routes must exist before instances come back), then the operation engine."""
        await self.events.start()
        await self.dataplane.start(on_restart=self.control.engine.restore_running)
        await self.collector.start()  # right after HAProxy started: its counters start from zero
        if self.local_registry is not None:  # before the engine: deployments resume pulling from it
            await asyncio.to_thread(self.local_registry.start)
        await self.control.engine.start()
        self.scaler.start()
        self.autodeploy.start()
        self.credential_checks.start()

    async def stop_workloads(self) -> None:
        await self.autodeploy.stop()
        await self.credential_checks.stop()
        await self.collector.stop()  # the last interval is stored while instances and HAProxy still run
        await self.scaler.stop()
        await self.control.engine.stop()
        if self.local_registry is not None:
            await asyncio.to_thread(self.local_registry.stop)
        await self.dataplane.stop()
        await self.events.stop()
        if self.container_api is not None:  # ends log streams; stops the podman service if Runyard started it
            await asyncio.to_thread(self.container_api.close)

    def stop(self) -> None:
        self.database.close()


def build(settings: Settings, *, clock: Clock | None = None, ids: IdSource | None = None) -> Runyard:
    """Construct everything; nothing starts (no process, no port) until start() and start_workloads()."""
    clock = clock or SystemClock()
    ids = ids or RandomIds()
    database = Database(settings.effective_database_url, clock=clock)
    deps = Deps(store=database, clock=clock, ids=ids, quotas=settings.quotas, domain_suffix=settings.domain_suffix)
    data_dir = settings.data_dir
    haproxy_settings = HAProxySettings(
        http_port=settings.http_port, activator_port=settings.activator_port or 1, max_queue=settings.max_queue
    )
    haproxy = HAProxyProcess(data_dir / "dataplane", settings.haproxy_binary, settings=haproxy_settings)
    log_store = LogStore(data_dir / "logs", clock)
    log_book = ServiceLogBook(log_store)
    secret_box = SecretBox.load_or_create(data_dir, settings.secrets_key)
    events = EventBus(
        store=database, logs=log_store, clock=clock, ids=ids, account=settings.account_id, secrets=secret_box
    )
    runtime_backend, container_api = _runtime_backend(settings)
    oci_images, local_registry = _oci_images(settings, container_api, secret_box)
    fleet = Fleet(
        backend=runtime_backend,
        router=haproxy.runtime(),
        store=database,
        clock=clock,
        ids=ids,
        logs=log_store,
        settings=FleetSettings(
            account=settings.account_id,
            domain_suffix=settings.domain_suffix,
            slots_per_backend=haproxy_settings.slots_per_backend,
            start_timeout=settings.start_timeout,
            stop_grace=settings.stop_grace,
        ),
        notify=log_book.event,
    )
    toolchains = detect_toolchains()
    providers = ProviderAccess(ProviderDirectory.from_settings(settings))
    workloads = LocalWorkloads(
        builder=Builder(data_dir / "builds", toolchains=toolchains),
        toolchains=toolchains,
        fleet=fleet,
        store=database,
        ids=ids,
        account=settings.account_id,
        sources_dir=data_dir / "sources",
        providers=providers,
        known_hosts_dir=data_dir / "git-known-hosts",
        oci=oci_images,
    )
    control = ControlPlane(
        deps,
        workloads=workloads,
        logs=log_book,
        events=events,
        account=settings.account_id,
        pool_size=haproxy_settings.pool_size,
        deleted_retention=settings.deleted_service_retention,
        providers=providers,
        sealer=secret_box,
    )
    workloads.bind_connections(control.connections)
    git_credentials = GitCredentials(deps, secret_box, forget_host_keys=workloads.forget_host_keys)
    workloads.bind_git_credentials(git_credentials)
    scaling = FleetScaling(
        fleet=fleet,
        router=haproxy.runtime(),
        store=database,
        account=settings.account_id,
        tuning=ScalingTuning(
            stable_window=settings.autoscale_stable_window, scale_down_delay=settings.autoscale_scale_down_delay
        ),
    )
    scaler = Scaler(scaling, now=clock.now, interval=settings.autoscale_interval)
    activator = ActivatorServer(activator_app(_host_lookup(control, settings)), "127.0.0.1", settings.activator_port)
    dataplane = DataPlane(haproxy, activator, haproxy_settings)
    metric_store = SqlMetricStore(database)
    retention = Retention(high=settings.metrics_retention_10s, standard=settings.metrics_retention_1m)
    collector = MetricsCollector(
        store=database,
        metrics=metric_store,
        router=haproxy.runtime(),
        backend=runtime_backend,
        clock=clock,
        settings=CollectorSettings(account=settings.account_id, retention=retention),
    )
    return Runyard(
        settings,
        load_or_create(settings),
        database,
        control,
        dataplane,
        events,
        scaler,
        logs=log_store,
        runtimes={name: toolchain.display_name for name, toolchain in toolchains.items()},
        collector=collector,
        metrics=Metrics(metric_store, clock, retention),
        autodeploy=AutoDeployments(
            deps,
            control.services,
            account=settings.account_id,
            branch_head=workloads.branch_head,
            poll_interval=settings.source_poll_interval,
            pollable=workloads.pollable,
            tracks_image=workloads.tracks_image,
        ),
        providers=providers,
        credential_checks=PeriodicCheck(
            lambda: control.connections.check_credentials(settings.account_id),
            settings.connection_check_interval,
            name="the connection credential check",
        ),
        git_credentials=git_credentials,
        runtime_kind=runtime_backend.kind,
        container_api=container_api,
        local_registry=local_registry,
    )


def _runtime_backend(settings: Settings) -> tuple[ProcessBackend | OciBackend, ContainerApi | None]:
    """`--runtime`: process; oci (podman's service started on first use when no engine answers); auto: oci only
    when a container API is already reachable, else process."""
    data_dir = settings.data_dir
    endpoint = None if settings.runtime == "process" else find_container_api()
    if settings.runtime == "process" or (settings.runtime == "auto" and endpoint is None):
        log.info("runtime: processes (--runtime %s)", settings.runtime)
        return ProcessBackend(data_dir / "runtime"), None
    log.info("runtime: OCI containers through %s", endpoint or "podman's API service, started on first use")
    api = ContainerApi(endpoint, service=None if endpoint else PodmanService(data_dir / "podman"))
    insecure = [name.strip() for name in settings.insecure_registries.split(",") if name.strip()]
    if settings.local_registry_port:  # Runyard's own registry speaks plain HTTP on loopback (see _oci_images)
        insecure.append(f"127.0.0.1:{settings.local_registry_port}")
    owner = str(data_dir.resolve())
    return OciBackend(api, data_dir / "containers", owner=owner, insecure_registries=insecure), api


def _oci_images(
    settings: Settings, api: ContainerApi | None, box: SecretBox
) -> tuple[OciImages | None, LocalRegistry | None]:
    """Image services and packed code services: only on the OCI runtime, with Runyard's own registry."""
    if api is None:
        return None, None
    api_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    registry = LocalRegistry(
        settings.data_dir / "registry",
        port=settings.local_registry_port or _free_port(),
        notify_url=f"http://{api_host}:{settings.port}{NOTIFICATIONS_PATH}",
    )
    try:
        credentials = (
            load_registry_credentials(Path(settings.registry_credentials).expanduser(), box)
            if settings.registry_credentials
            else {}
        )
    except RegistryConfigError as error:
        raise SettingsError(str(error)) from None
    insecure = parse_registry_list(settings.insecure_registries)
    locations = ImageLocations(
        local_registry=registry.address,
        ecr_registry=settings.ecr_registry,
        ecr_public_mirror=settings.ecr_public_mirror,
        insecure=insecure,
        credentials=credentials,
    )
    images = OciImages(
        engine=EngineImages(api.client),
        registry=RegistryClient(insecure=insecure | {registry.address}),
        locations=locations,
        base_images={"python": settings.base_image_python, "nodejs": settings.base_image_nodejs},
    )
    return images, registry


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


_HOST_STATES = {
    OPERATION_IN_PROGRESS: HostState.STARTING,
    RUNNING: HostState.UNAVAILABLE,
    PAUSED: HostState.PAUSED,
    CREATE_FAILED: HostState.FAILED,
    DELETE_FAILED: HostState.UNAVAILABLE,
    DELETED: HostState.DELETED,
}


def _host_lookup(control: ControlPlane, settings: Settings) -> Callable[[str], Awaitable[HostInfo | None]]:
    """The activator asks which service a host belongs to: `<label>.<region>.<domain suffix>`."""
    suffix = "." + settings.domain_suffix

    def find(host: str) -> HostInfo | None:
        if not host.endswith(suffix):
            return None
        label, _, region = host.removesuffix(suffix).partition(".")
        for service in control.services.find_all(Scope(settings.account_id, region)):
            if service.url_label == label:
                state = _HOST_STATES.get(service.status, HostState.UNAVAILABLE)
                if service.status == OPERATION_IN_PROGRESS and service.revision is not None:
                    state = HostState.UNAVAILABLE
                return HostInfo(service.name, state)
        return None

    async def lookup(host: str) -> HostInfo | None:
        return await asyncio.to_thread(find, host)

    return lookup


def _console(runyard: Runyard) -> Starlette:
    settings, credentials = runyard.settings, runyard.credentials
    console = Console(
        control=runyard.control,
        logs=runyard.logs,
        account=settings.account_id,
        region=settings.region,
        http_port=settings.http_port,
        runtimes=runyard.runtimes,
        metrics=runyard.metrics,
        check_credentials=root_credentials_check(credentials.access_key_id, credentials.secret_access_key),
    )
    return console_app(console, session_key=load_or_create_key(settings.data_dir), extra_routes=handshake_routes())


def _notification_tokens(runyard: Runyard) -> list[str]:
    """Who may report registry pushes: Runyard's own registry, and registries given the configured token."""
    tokens = [runyard.settings.registry_notification_token]
    if runyard.local_registry is not None:
        tokens.append(runyard.local_registry.notification_token)
    return [token for token in tokens if token]


def asgi_app(runyard: Runyard) -> Starlette:
    credentials = runyard.credentials
    secrets = {credentials.access_key_id: credentials.secret_access_key}
    codeconnections = CodeConnectionsProvider(runyard.control)
    endpoint = ApiEndpoint(
        providers={
            APPRUNNER: AppRunnerProvider(runyard.control, http_port=runyard.settings.http_port),
            CODECONNECTIONS: codeconnections,
            CODESTAR_CONNECTIONS: codeconnections,
            CLOUDWATCH: CloudWatchProvider(runyard.metrics),
        },
        secrets=lambda: secrets,
        account_id=runyard.settings.account_id,
    )

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__})

    async def metrics(_: Request) -> Response:
        """Prometheus' text exposition of the AWS/AppRunner metrics (unauthenticated, like /health)."""
        return Response(prometheus.render(runyard.collector.snapshot()), media_type=prometheus.CONTENT_TYPE)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        runyard.start()
        await runyard.start_workloads()
        log.info(
            "Runyard %s ready: API http://%s:%d (region %s, account %s), data in %s",
            __version__,
            runyard.settings.host,
            runyard.settings.port,
            runyard.settings.region,
            runyard.settings.account_id,
            runyard.settings.data_dir,
        )
        try:
            yield
        finally:
            await runyard.stop_workloads()
            runyard.stop()

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/console", console_entry, methods=["GET"]),
            Mount("/console", app=_console(runyard)),  # before the API's catch-all POST route
            *ConnectionExtensions(
                runyard.control, secrets=lambda: secrets, account_id=runyard.settings.account_id
            ).routes(),
            *GitCredentialEndpoints(
                runyard.git_credentials, secrets=lambda: secrets, account_id=runyard.settings.account_id
            ).routes(),
            *PushWebhooks(runyard.providers.directory, runyard.autodeploy).routes(),
            *RegistryNotifications(runyard.autodeploy, lambda: _notification_tokens(runyard)).routes(),
            *GitRemote(
                HostedRepositories(runyard.settings.data_dir / "git"), runyard.autodeploy, lambda: secrets
            ).routes(),
            Route("/{path:path}", endpoint.handle, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
