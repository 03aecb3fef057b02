"""Provider push webhooks: POST /webhooks/github, /webhooks/gitlab, /webhooks/bitbucket (a Runyard extension).

Unsigned by SigV4 (the provider calls them) but verified with the provider's own scheme and the configured
webhook secret: GitHub's X-Hub-Signature-256, GitLab's X-Gitlab-Token, Bitbucket's X-Hub-Signature. A push
to a branch is mapped to the services that auto-deploy that repository and branch.
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from runyard.control.autodeploy import AutoDeployments
from runyard.source.providers import ProviderDirectory
from runyard.source.providers.base import normalized_repository_url

log = logging.getLogger("runyard.webhooks")
MAX_BODY = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB


class PushWebhooks:
    def __init__(self, directory: ProviderDirectory, autodeploy: AutoDeployments) -> None:
        self._directory = directory
        self._autodeploy = autodeploy

    def routes(self) -> list[BaseRoute]:
        return [Route("/webhooks/{flavour}", self.receive, methods=["POST"])]

    async def receive(self, request: Request) -> Response:
        flavour = request.path_params["flavour"]
        try:
            provider = self._directory.cloud(flavour)
        except KeyError:
            return JSONResponse({"message": f"No webhook for {flavour}: use github, gitlab or bitbucket."}, 404)
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"message": "The payload is too large."}, 413)
        if not provider.endpoints.webhook_secret:
            return JSONResponse({"message": f"{provider.display_name} webhooks are not configured here."}, 403)
        if not provider.verify_webhook(request.headers, body):
            log.warning("a %s webhook with a wrong or missing signature was refused", flavour)
            return JSONResponse({"message": "The signature does not match the configured webhook secret."}, 401)
        push = provider.parse_push(request.headers, body)
        if push is None:
            return JSONResponse({"message": "Not a branch push: nothing to deploy.", "services": []}, 202)
        urls = {normalized_repository_url(url) for url in push.repository_urls}

        def same_repository(url: str) -> bool:
            return normalized_repository_url(url) in urls

        services = await run_in_threadpool(self._autodeploy.tracking, same_repository, push.branch)
        for service in services:
            self._autodeploy.pushed(service, push.commit_sha)
        log.info(
            "%s push to %s (%s): %d service(s) to deploy", flavour, push.branch, push.commit_sha[:7], len(services)
        )
        return JSONResponse({"message": "Accepted.", "services": [s.arn for s in services]}, 202)
