"""Composition root: Settings -> store, data plane, runtime, builder, control plane, providers, ASGI app.
The only module that knows every concrete class."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from runyard import __version__
from runyard.api.apprunner import AppRunnerProvider
from runyard.api.codeconnections import CodeConnectionsProvider
from runyard.api.models import APPRUNNER, CODECONNECTIONS, CODESTAR_CONNECTIONS
from runyard.api.server import ApiEndpoint
from runyard.build.pipeline import Builder
from runyard.build.runtimes import detect_toolchains
from runyard.clock import Clock, SystemClock
from runyard.config import Settings
from runyard.control.context import Deps, Scope
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
from runyard.observe.events import EventBus
from runyard.observe.logs import LogStore
from runyard.observe.service_logs import ServiceLogBook
from runyard.runtime.process import ProcessBackend
from runyard.store.database import Database
from runyard.workloads.fleet import Fleet, FleetSettings
from runyard.workloads.local import LocalWorkloads

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

    def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.database.migrate()
        self.control.autoscaling.ensure_region(Scope(self.settings.account_id, self.settings.region))

    async def start_workloads(self) -> None:
        """The data plane first (routes must exist before instances come back), then the operation engine."""
        await self.events.start()
        await self.dataplane.start(on_restart=self.control.engine.restore_running)
        await self.control.engine.start()

    async def stop_workloads(self) -> None:
        await self.control.engine.stop()
        await self.dataplane.stop()
        await self.events.stop()

    def stop(self) -> None:
        self.database.close()


def build(settings: Settings, *, clock: Clock | None = None, ids: IdSource | None = None) -> Runyard:
    """Construct everything; nothing starts (no process, no port) until start() and start_workloads()."""
    clock = clock or SystemClock()
    ids = ids or RandomIds()
    database = Database(settings.effective_database_url, clock=clock)
    deps = Deps(store=database, clock=clock, ids=ids, quotas=settings.quotas, domain_suffix=settings.domain_suffix)
    data_dir = settings.data_dir
    haproxy_settings = HAProxySettings(http_port=settings.http_port, activator_port=settings.activator_port or 1)
    haproxy = HAProxyProcess(data_dir / "dataplane", settings.haproxy_binary, settings=haproxy_settings)
    log_store = LogStore(data_dir / "logs", clock)
    log_book = ServiceLogBook(log_store)
    events = EventBus(store=database, logs=log_store, clock=clock, ids=ids, account=settings.account_id)
    fleet = Fleet(
        backend=ProcessBackend(data_dir / "runtime"),
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
    workloads = LocalWorkloads(
        builder=Builder(data_dir / "builds", toolchains=toolchains),
        toolchains=toolchains,
        fleet=fleet,
        store=database,
        ids=ids,
        account=settings.account_id,
        sources_dir=data_dir / "sources",
    )
    control = ControlPlane(
        deps,
        workloads=workloads,
        logs=log_book,
        events=events,
        account=settings.account_id,
        pool_size=haproxy_settings.pool_size,
        deleted_retention=settings.deleted_service_retention,
    )
    activator = ActivatorServer(activator_app(_host_lookup(control, settings)), "127.0.0.1", settings.activator_port)
    dataplane = DataPlane(haproxy, activator, haproxy_settings)
    return Runyard(settings, load_or_create(settings), database, control, dataplane, events)


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


def asgi_app(runyard: Runyard) -> Starlette:
    credentials = runyard.credentials
    secrets = {credentials.access_key_id: credentials.secret_access_key}
    codeconnections = CodeConnectionsProvider(runyard.control)
    endpoint = ApiEndpoint(
        providers={
            APPRUNNER: AppRunnerProvider(runyard.control, http_port=runyard.settings.http_port),
            CODECONNECTIONS: codeconnections,
            CODESTAR_CONNECTIONS: codeconnections,
        },
        secrets=lambda: secrets,
        account_id=runyard.settings.account_id,
    )

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__})

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
            Route("/{path:path}", endpoint.handle, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
