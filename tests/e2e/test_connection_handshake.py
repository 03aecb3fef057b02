"""Connections that really connect: the token handshake through the CLI, private repositories through a
connection, a revoked token turning the connection to ERROR, and the token never at rest in plaintext.

The git provider is the test forge (tests/forge): GitHub's, GitLab's and Bitbucket's REST and OAuth shapes,
and real repositories behind `git http-backend` that need a token.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.forge.app import Forge, OAuthClient
from tests.support import ACCESS_KEY, SECRET_KEY, RunyardProcess, get_via_dataplane, wait_for_status

APP = """\
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = open("version.txt").read().strip().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""
WEBHOOK_SECRET = "forge-webhook-secret"


def forge_env(forge: Forge, client: OAuthClient, poll_interval: float = 0) -> dict[str, str]:
    env = {"RUNYARD_SOURCE_POLL_INTERVAL": str(poll_interval)}
    for flavour, api in (("GITHUB", ""), ("GITLAB", "/api/v4"), ("BITBUCKET", "/2.0")):
        env.update(
            {
                f"RUNYARD_{flavour}_API_URL": forge.url + api,
                f"RUNYARD_{flavour}_WEB_URL": forge.url,
                f"RUNYARD_{flavour}_CLIENT_ID": client.client_id,
                f"RUNYARD_{flavour}_CLIENT_SECRET": client.client_secret,
                f"RUNYARD_{flavour}_WEBHOOK_SECRET": WEBHOOK_SECRET,
            }
        )
    return env


@pytest.fixture(scope="module")
def forge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Forge]:
    running = Forge(tmp_path_factory.mktemp("forge")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def runyard(forge: Forge, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunyardProcess]:
    client = forge.register_client()
    process = RunyardProcess(tmp_path_factory.mktemp("runyard") / "data", extra_env=forge_env(forge, client))
    process.start()
    yield process
    process.stop()


def complete_handshake(
    server: RunyardProcess, connection: str, token: str, tmp_path: Path, region: str
) -> subprocess.CompletedProcess[str]:
    token_file = tmp_path / "token.txt"
    token_file.write_text(token + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNYARD_", "AWS_"))}
    env.update(RUNYARD_ACCESS_KEY_ID=ACCESS_KEY, RUNYARD_SECRET_ACCESS_KEY=SECRET_KEY)
    return subprocess.run(
        [
            *(sys.executable, "-m", "runyard", "connections", "complete-handshake", connection),
            *("--token-file", str(token_file), "--endpoint-url", server.endpoint, "--region", region),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def private_service_request(name: str, repository_url: str, connection_arn: str, **source: Any) -> dict[str, Any]:
    values = {"Runtime": "PYTHON_3", "StartCommand": "python server.py"}
    return {
        "ServiceName": name,
        "SourceConfiguration": {
            "CodeRepository": {
                "RepositoryUrl": repository_url,
                "SourceCodeVersion": {"Type": "BRANCH", "Value": "main"},
                "CodeConfiguration": {"ConfigurationSource": "API", "CodeConfigurationValues": values},
            },
            "AuthenticationConfiguration": {"ConnectionArn": connection_arn},
            "AutoDeploymentsEnabled": False,
            **source,
        },
    }


def connection_status(client: Any, name: str) -> str:
    return str(client.list_connections(ConnectionName=name)["ConnectionSummaryList"][0]["Status"])


def assert_nowhere_in_plaintext(token: str, server: RunyardProcess) -> None:
    needle = token.encode()
    for path in server.data_dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert needle not in path.read_bytes(), f"the token is in {path}"
    assert token not in server.log()


def test_token_handshake_through_the_cli(runyard: RunyardProcess, forge: Forge, region: str, tmp_path: Path) -> None:
    client = runyard.client("apprunner", region)
    created = client.create_connection(ConnectionName="cli-handshake", ProviderType="GITHUB")["Connection"]
    assert created["Status"] == "PENDING_HANDSHAKE"

    # A token the provider refuses changes nothing.
    refused = complete_handshake(runyard, "cli-handshake", "forge_not_a_token", tmp_path, region)
    assert refused.returncode != 0 and "rejected the token" in refused.stderr
    assert connection_status(client, "cli-handshake") == "PENDING_HANDSHAKE"

    token = forge.issue_token("mona")
    done = complete_handshake(runyard, "cli-handshake", token, tmp_path, region)
    assert done.returncode == 0, done.stderr
    assert "cli-handshake is AVAILABLE (GITHUB account mona)" in done.stdout
    assert token not in done.stdout + done.stderr
    assert connection_status(client, "cli-handshake") == "AVAILABLE"
    assert_nowhere_in_plaintext(token, runyard)

    # By ARN, and for a connection that does not exist.
    again = complete_handshake(runyard, created["ConnectionArn"], forge.issue_token("mona"), tmp_path, region)
    assert again.returncode == 0, again.stderr
    missing = complete_handshake(runyard, "no-such-connection", token, tmp_path, region)
    assert missing.returncode != 0 and "ResourceNotFoundException" in missing.stderr


@pytest.mark.parametrize(("provider_type", "login"), [("BITBUCKET", "atlassian-user")])
def test_bitbucket_token_handshake(
    runyard: RunyardProcess, forge: Forge, region: str, tmp_path: Path, provider_type: str, login: str
) -> None:
    client = runyard.client("apprunner", region)
    client.create_connection(ConnectionName="bb-conn", ProviderType=provider_type)
    done = complete_handshake(runyard, "bb-conn", forge.issue_token(login), tmp_path, region)
    assert done.returncode == 0 and f"account {login}" in done.stdout


def test_unsigned_handshake_is_refused(runyard: RunyardProcess) -> None:
    import httpx

    answer = httpx.post(
        runyard.endpoint + "/runyard/connections/complete-handshake", json={"Connection": "x", "Token": "y"}
    )
    assert answer.status_code == 403 and answer.json()["__type"] == "MissingAuthenticationTokenException"


def test_private_repository_through_a_connection(
    runyard: RunyardProcess, forge: Forge, region: str, tmp_path: Path
) -> None:
    client = runyard.client("apprunner", region)
    owner_token = forge.issue_token("mona")
    repository_url = forge.create_repo(f"mona/private-{region}")
    forge.push(f"mona/private-{region}", {"server.py": APP, "version.txt": "v1\n"}, token=owner_token)
    connection = client.create_connection(ConnectionName="private-conn", ProviderType="GITHUB")["Connection"]
    arn = connection["ConnectionArn"]

    # Not AVAILABLE yet: a clear InvalidRequestException, nothing created.
    with pytest.raises(client.exceptions.InvalidRequestException, match="PENDING_HANDSHAKE"):
        client.create_service(**private_service_request("private-app", repository_url, arn))

    token = forge.issue_token("mona")
    assert complete_handshake(runyard, "private-conn", token, tmp_path, region).returncode == 0

    # A repository that is not on the connection's provider.
    with pytest.raises(client.exceptions.InvalidRequestException, match="is not a repository of connection"):
        client.create_service(**private_service_request("elsewhere", "https://example.com/a/b.git", arn))
    assert client.list_services()["ServiceSummaryList"] == []

    # Two services share the connection; both clone the private repository with its credentials.
    services = [
        client.create_service(**private_service_request(name, repository_url, arn))["Service"]["ServiceArn"]
        for name in ("private-app", "private-twin")
    ]
    for service_arn in services:
        service = wait_for_status(client, service_arn)
        assert service["Status"] == "RUNNING", runyard.log()[-3000:]
        assert get_via_dataplane(runyard, service["ServiceUrl"]).text == "v1"

    # In use: the connection cannot be deleted.
    with pytest.raises(client.exceptions.InvalidRequestException, match="used by services"):
        client.delete_connection(ConnectionArn=arn)

    # The provider revokes the token: the next deployment fails, the connection is ERROR, with an event.
    forge.revoke(token)
    forge.push(f"mona/private-{region}", {"version.txt": "v2\n"}, token=owner_token)
    client.start_deployment(ServiceArn=services[0])
    assert wait_for_status(client, services[0])["Status"] == "RUNNING"  # the old version keeps serving
    operation = client.list_operations(ServiceArn=services[0])["OperationSummaryList"][0]
    assert operation["Status"] == "ROLLBACK_SUCCEEDED"
    assert connection_status(client, "private-conn") == "ERROR"
    events = list((runyard.data_dir / "logs").rglob("*"))
    assert any(p.is_file() and b"Connection Status Change" in p.read_bytes() for p in events)

    # A new handshake recovers it; the deployment then takes the new commit.
    fresh = forge.issue_token("mona")
    assert complete_handshake(runyard, arn, fresh, tmp_path, region).returncode == 0
    assert connection_status(client, "private-conn") == "AVAILABLE"
    client.start_deployment(ServiceArn=services[0])
    service = wait_for_status(client, services[0])
    assert get_via_dataplane(runyard, service["ServiceUrl"]).text == "v2"

    for secret in (token, fresh, owner_token):
        assert_nowhere_in_plaintext(secret, runyard)


def test_host_lifecycle_for_a_self_managed_forge(
    runyard: RunyardProcess, forge: Forge, region: str, tmp_path: Path
) -> None:
    """CreateHost -> PENDING; set-up verifies the ProviderEndpoint -> AVAILABLE; its connection's handshake goes
    to the forge through the host's endpoint (GitHub Enterprise Server's /api/v3)."""
    codeconnections = runyard.client("codeconnections", region)
    host_arn = codeconnections.create_host(
        Name="forge-host", ProviderType="GitHubEnterpriseServer", ProviderEndpoint=forge.url
    )["HostArn"]
    assert codeconnections.get_host(HostArn=host_arn)["Status"] == "PENDING"
    connection_arn = codeconnections.create_connection(ConnectionName="ghes-conn", HostArn=host_arn)["ConnectionArn"]

    # Before set-up, the handshake is refused.
    early = complete_handshake(runyard, connection_arn, forge.issue_token("hubot"), tmp_path, region)
    assert early.returncode != 0 and "set it up first" in early.stderr

    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNYARD_", "AWS_"))}
    env.update(RUNYARD_ACCESS_KEY_ID=ACCESS_KEY, RUNYARD_SECRET_ACCESS_KEY=SECRET_KEY)
    command = [sys.executable, "-m", "runyard", "connections", "set-up-host"]
    options = ["--endpoint-url", runyard.endpoint, "--region", region]
    done = subprocess.run([*command, host_arn, *options], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert codeconnections.get_host(HostArn=host_arn)["Status"] == "AVAILABLE"
    assert "GET /api/v3/user" in forge.requests

    # A host whose endpoint is not that provider stays PENDING.
    bogus = codeconnections.create_host(
        Name="bogus-host", ProviderType="GitLabSelfManaged", ProviderEndpoint=runyard.endpoint
    )["HostArn"]
    refused = subprocess.run([*command, bogus, *options], env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "does not answer as GitLab self-managed" in refused.stderr
    assert codeconnections.get_host(HostArn=bogus)["Status"] == "PENDING"

    handshake = complete_handshake(runyard, connection_arn, forge.issue_token("hubot"), tmp_path, region)
    assert handshake.returncode == 0, handshake.stderr
    assert "account hubot" in handshake.stdout
    assert codeconnections.get_connection(ConnectionArn=connection_arn)["Connection"]["ConnectionStatus"] == "AVAILABLE"
    # By name too, in the codestar-connections namespace as well.
    codestar = runyard.client("codestar-connections", region)
    listed = codestar.list_connections(HostArnFilter=host_arn.replace("codeconnections", "codestar-connections"))
    assert [c["ConnectionStatus"] for c in listed["Connections"]] == ["AVAILABLE"]


def test_periodic_check_turns_a_revoked_credential_to_error(forge: Forge, tmp_path: Path, region: str) -> None:
    env = {**forge_env(forge, forge.register_client()), "RUNYARD_CONNECTION_CHECK_INTERVAL": "0.5"}
    server = RunyardProcess(tmp_path / "data", extra_env=env).start()
    try:
        client = server.client("apprunner", region)
        client.create_connection(ConnectionName="checked", ProviderType="GITHUB")
        token = forge.issue_token("mona")
        assert complete_handshake(server, "checked", token, tmp_path, region).returncode == 0
        time.sleep(1.5)
        assert connection_status(client, "checked") == "AVAILABLE"  # still accepted: nothing changes
        forge.revoke(token)
        deadline = time.monotonic() + 15
        while connection_status(client, "checked") != "ERROR":
            assert time.monotonic() < deadline, server.log()[-2000:]
            time.sleep(0.2)
        assert "connection checked is now ERROR" in server.log()
        assert complete_handshake(server, "checked", forge.issue_token("mona"), tmp_path, region).returncode == 0
        assert connection_status(client, "checked") == "AVAILABLE"
    finally:
        server.stop()
