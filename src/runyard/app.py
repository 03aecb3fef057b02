"""Composition root: Settings -> store, control plane, providers, ASGI app. The only module that
knows every concrete class."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from runyard import __version__
from runyard.api.apprunner import AppRunnerProvider
from runyard.api.codeconnections import CodeConnectionsProvider
from runyard.api.models import APPRUNNER, CODECONNECTIONS, CODESTAR_CONNECTIONS
from runyard.api.server import ApiEndpoint
from runyard.clock import Clock, SystemClock
from runyard.config import Settings
from runyard.control.context import Deps, Scope
from runyard.control.plane import ControlPlane
from runyard.credentials import RootCredentials, load_or_create
from runyard.ids import IdSource, RandomIds
from runyard.store.database import Database

log = logging.getLogger("runyard")


@dataclass
class Runyard:
    settings: Settings
    credentials: RootCredentials
    database: Database
    control: ControlPlane

    def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.database.migrate()
        self.control.autoscaling.ensure_region(Scope(self.settings.account_id, self.settings.region))

    def stop(self) -> None:
        self.database.close()


def build(settings: Settings, *, clock: Clock | None = None, ids: IdSource | None = None) -> Runyard:
    clock = clock or SystemClock()
    database = Database(settings.effective_database_url, clock=clock)
    deps = Deps(
        store=database,
        clock=clock,
        ids=ids or RandomIds(),
        quotas=settings.quotas,
        domain_suffix=settings.domain_suffix,
    )
    return Runyard(settings, load_or_create(settings), database, ControlPlane(deps))


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
            runyard.stop()

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/{path:path}", endpoint.handle, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
