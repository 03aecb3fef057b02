"""Automatic deployments from a private repository: push -> provider webhook -> deployed, a burst of pushes
coalesced, a paused service left alone, and push -> polling -> deployed for servers the provider cannot reach."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_connection_handshake import (
    APP,
    WEBHOOK_SECRET,
    complete_handshake,
    forge,
    forge_env,
    private_service_request,
    runyard,
)
from tests.forge.app import Forge
from tests.support import RunyardProcess, get_via_dataplane, wait_for_status

__all__ = ["forge", "runyard"]  # module fixtures shared with the handshake tests


def deployments(client: Any, arn: str) -> list[dict[str, Any]]:
    return [
        op for op in client.list_operations(ServiceArn=arn)["OperationSummaryList"] if op["Type"] == "START_DEPLOYMENT"
    ]


def wait_until_serving(server: RunyardProcess, client: Any, arn: str, text: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        service = client.describe_service(ServiceArn=arn)["Service"]
        if service["Status"] == "RUNNING" and get_via_dataplane(server, service["ServiceUrl"]).text == text:
            return
        time.sleep(0.3)
    raise AssertionError(f"{arn} does not serve {text!r} after {timeout} s:\n{server.log()[-3000:]}")


def private_service(
    server: RunyardProcess, forge: Forge, region: str, tmp_path: Path, name: str
) -> tuple[Any, str, str, str]:
    """A RUNNING auto-deployed service of a private forge repository: (client, service ARN, repo, owner token)."""
    client = server.client("apprunner", region)
    owner = forge.issue_token("mona")
    full_name = f"mona/{name}-{region}"
    url = forge.create_repo(full_name)
    forge.push(full_name, {"server.py": APP, "version.txt": "v1\n"}, token=owner)
    connection = client.create_connection(ConnectionName=f"{name}-conn", ProviderType="GITHUB")["Connection"]
    assert (
        complete_handshake(server, connection["ConnectionArn"], forge.issue_token("mona"), tmp_path, region).returncode
        == 0
    )
    request = private_service_request(name, url, connection["ConnectionArn"], AutoDeploymentsEnabled=True)
    arn = client.create_service(**request)["Service"]["ServiceArn"]
    assert wait_for_status(client, arn)["Status"] == "RUNNING", server.log()[-3000:]
    return client, arn, full_name, owner


def test_push_webhook_deploys_coalesces_and_skips_paused(
    runyard: RunyardProcess, forge: Forge, region: str, tmp_path: Path
) -> None:
    client, arn, full_name, owner = private_service(runyard, forge, region, tmp_path, "hooked")
    forge.add_hook(full_name, "github", runyard.endpoint + "/webhooks/github", WEBHOOK_SECRET)

    forge.push(full_name, {"version.txt": "v2\n"}, token=owner)
    wait_until_serving(runyard, client, arn, "v2")
    assert len(deployments(client, arn)) == 1

    # A burst of pushes: the newest commit is deployed, with fewer deployments than pushes.
    for version in ("v3", "v4", "v5", "v6"):
        forge.push(full_name, {"version.txt": version + "\n"}, token=owner)
    wait_until_serving(runyard, client, arn, "v6")
    assert 2 <= len(deployments(client, arn)) <= 3
    assert all(status == 202 for _, status in forge.deliveries)

    # A paused service does not auto-deploy.
    client.pause_service(ServiceArn=arn)
    assert wait_for_status(client, arn)["Status"] == "PAUSED"
    before = len(deployments(client, arn))
    forge.push(full_name, {"version.txt": "v7\n"}, token=owner)
    time.sleep(3)
    assert client.describe_service(ServiceArn=arn)["Service"]["Status"] == "PAUSED"
    assert len(deployments(client, arn)) == before


def test_webhook_signatures_are_verified(runyard: RunyardProcess, forge: Forge, region: str) -> None:
    body = json.dumps({"ref": "refs/heads/main", "after": "a" * 40, "repository": {"clone_url": "x"}}).encode()
    headers = {"X-GitHub-Event": "push", "Content-Type": "application/json"}
    url = runyard.endpoint + "/webhooks/github"
    assert httpx.post(url, content=body, headers=headers).status_code == 401
    wrong = "sha256=" + hmac.new(b"not-the-secret", body, hashlib.sha256).hexdigest()
    assert httpx.post(url, content=body, headers={**headers, "X-Hub-Signature-256": wrong}).status_code == 401
    right = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    answer = httpx.post(url, content=body, headers={**headers, "X-Hub-Signature-256": right})
    assert answer.status_code == 202 and answer.json()["services"] == []
    gitlab = httpx.post(
        runyard.endpoint + "/webhooks/gitlab",
        content=b"{}",
        headers={"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "wrong"},
    )
    assert gitlab.status_code == 401
    assert httpx.post(runyard.endpoint + "/webhooks/sourceforge", content=b"{}").status_code == 404


@pytest.fixture
def polling_runyard(forge: Forge, tmp_path: Path) -> Iterator[RunyardProcess]:
    process = RunyardProcess(tmp_path / "data", extra_env=forge_env(forge, forge.register_client(), poll_interval=1))
    process.start()
    yield process
    process.stop()


def test_push_is_deployed_by_polling(
    polling_runyard: RunyardProcess, forge: Forge, region: str, tmp_path: Path
) -> None:
    client, arn, full_name, owner = private_service(polling_runyard, forge, region, tmp_path, "polled")
    forge.push(full_name, {"version.txt": "v2\n"}, token=owner)  # no webhook: only `git ls-remote` sees it
    wait_until_serving(polling_runyard, client, arn, "v2")
    assert len(deployments(client, arn)) == 1
    time.sleep(2.5)  # further polls see nothing new
    assert len(deployments(client, arn)) == 1
