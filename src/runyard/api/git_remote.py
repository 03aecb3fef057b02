"""`git push` to Runyard (a Runyard extension): /git/<name>.git over smart HTTP, basic auth with the root
credentials (user: the access key id, password: the secret access key). A push to a branch deploys the
services that auto-deploy that branch of `file://<data-dir>/git/<name>.git`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from runyard.control.autodeploy import AutoDeployments
from runyard.control.model.service import Service
from runyard.source.git import SourceError
from runyard.source.hosted import HostedRepositories
from runyard.source.providers.base import normalized_repository_url

log = logging.getLogger("runyard.git")


class GitRemote:
    def __init__(
        self, repositories: HostedRepositories, autodeploy: AutoDeployments, secrets: Callable[[], Mapping[str, str]]
    ) -> None:
        self._repositories = repositories
        self._autodeploy = autodeploy
        self._secrets = secrets

    def routes(self) -> list[BaseRoute]:
        return [Route("/git/{name}.git/{service:path}", self.handle, methods=["GET", "POST"])]

    def _user(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        expected = self._secrets().get(user)
        return user if expected is not None and hmac.compare_digest(expected.encode(), password.encode()) else None

    async def handle(self, request: Request) -> Response:
        user = self._user(request)
        if user is None:
            return Response("authentication required\n", 401, headers={"WWW-Authenticate": 'Basic realm="runyard"'})
        name, service = request.path_params["name"], request.path_params["service"]
        try:
            self._repositories.path(name)
        except SourceError as error:
            return Response(error.message + "\n", 404)
        pushing = service == "git-receive-pack"
        before = await run_in_threadpool(self._repositories.branches, name) if pushing else {}
        answer = await self._repositories.serve(
            name=name,
            service=service,
            method=request.method,
            query=request.url.query,
            headers=request.headers,
            body=await request.body(),
            user=user,
        )
        if pushing and answer.status == 200:
            after = await run_in_threadpool(self._repositories.branches, name)
            for service, sha in await run_in_threadpool(self._tracking, name, before, after):
                self._autodeploy.pushed(service, sha)  # on the event loop: it wakes the deployment loop
        return Response(answer.body, answer.status, headers=answer.headers)

    def _tracking(self, name: str, before: dict[str, str], after: dict[str, str]) -> list[tuple[Service, str]]:
        url = normalized_repository_url(self._repositories.url_for_services(name))

        def same(candidate: str) -> bool:  # a file:// URL or a plain local path of the same repository
            as_url = candidate if "://" in candidate else Path(candidate).resolve().as_uri()
            return normalized_repository_url(as_url) == url

        found: list[tuple[Service, str]] = []
        for branch, sha in after.items():
            if before.get(branch) == sha:
                continue
            services = self._autodeploy.tracking(same, branch)
            found += [(service, sha) for service in services]
            log.info("push to %s %s (%s): %d service(s) to deploy", name, branch, sha[:7], len(services))
        return found
