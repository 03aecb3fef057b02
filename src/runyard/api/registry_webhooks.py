"""Registry notifications: POST /registry/notifications (a Runyard extension, like the provider webhooks).

A registry (distribution's `notifications.endpoints`) reports pushes here; a push of a tag that image services
auto-deploy starts their deployment at once. The registry authenticates with a header its configuration sends,
`Authorization: Bearer <token>`: Runyard's own registry gets a random token per start, other registries the one
set in RUNYARD_REGISTRY_NOTIFICATION_TOKEN (without it they are refused). The digest named in an event only wakes
the deployment: the deployment itself resolves the tag at the registry again.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from runyard.control.autodeploy import AutoDeployments
from runyard.source.registry_events import MalformedNotification, parse_notifications

log = logging.getLogger("runyard.webhooks")
PATH = "/registry/notifications"
MAX_BODY = 5 * 1024 * 1024


class RegistryNotifications:
    def __init__(self, autodeploy: AutoDeployments, tokens: Callable[[], list[str]]) -> None:
        self._autodeploy = autodeploy
        self._tokens = tokens

    def routes(self) -> list[BaseRoute]:
        return [Route(PATH, self.receive, methods=["POST"])]

    def _authorized(self, request: Request) -> bool:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            return False
        return any(hmac.compare_digest(given.encode(), token.encode()) for token in self._tokens() if token)

    async def receive(self, request: Request) -> Response:
        if not self._authorized(request):
            log.warning("a registry notification without a valid token was refused")
            return JSONResponse({"message": "A valid notification token (Authorization: Bearer) is required."}, 401)
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"message": "The payload is too large."}, 413)
        try:
            pushes = parse_notifications(body)
        except MalformedNotification as error:
            return JSONResponse({"message": f"Not a registry notification: {error}."}, 400)
        deployed: list[str] = []
        for push in pushes:
            services = await run_in_threadpool(
                self._autodeploy.tracking_image, push.registry, push.repository, push.tag
            )
            for service in services:
                self._autodeploy.pushed(service, push.digest)
                deployed.append(service.arn)
            if services:
                log.info(
                    "registry push of %s:%s (%s): %d service(s) to deploy",
                    push.repository,
                    push.tag,
                    push.digest,
                    len(services),
                )
        return JSONResponse({"message": "Accepted.", "services": deployed}, 200)
