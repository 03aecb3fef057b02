"""Plain git for self-hosters: `runyard git-credentials` against real git servers, without a connection.

HTTPS: the test forge's `git http-backend` behind basic auth (a user name and a password). SSH: a real OpenSSH
sshd on a loopback port, serving a bare repository. Both through a real `runyard serve`, its CLI and boto3.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.forge.app import Forge
from tests.support import ACCESS_KEY, SECRET_KEY, RunyardProcess, get_via_dataplane, git_repo, wait_for_status

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
SSHD = Path("/usr/sbin/sshd")


def git_credentials(server: RunyardProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNYARD_", "AWS_"))}
    env.update(RUNYARD_ACCESS_KEY_ID=ACCESS_KEY, RUNYARD_SECRET_ACCESS_KEY=SECRET_KEY)
    return subprocess.run(
        [sys.executable, "-m", "runyard", "git-credentials", *args, "--endpoint-url", server.endpoint],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def service_request(name: str, repository_url: str, *, auto: bool = False) -> dict[str, Any]:
    values = {"Runtime": "PYTHON_3", "StartCommand": "python server.py"}
    return {
        "ServiceName": name,
        "SourceConfiguration": {
            "CodeRepository": {
                "RepositoryUrl": repository_url,
                "SourceCodeVersion": {"Type": "BRANCH", "Value": "main"},
                "CodeConfiguration": {"ConfigurationSource": "API", "CodeConfigurationValues": values},
            },
            "AutoDeploymentsEnabled": auto,
        },
    }


def runyard_logs(server: RunyardProcess, region: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "runyard", "logs", *args, "--region", region, "--data-dir", str(server.data_dir)],
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def wait_until_serving(server: RunyardProcess, service: dict[str, Any], text: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    answer = ""
    while time.monotonic() < deadline:
        response = get_via_dataplane(server, service["ServiceUrl"])
        answer = response.text if response.status_code == 200 else f"HTTP {response.status_code}"
        if answer == text:
            return
        time.sleep(0.5)
    raise AssertionError(f"the service answers {answer!r}, not {text!r}, after {timeout} s")


def assert_nowhere_in_plaintext(secret: str, server: RunyardProcess) -> None:
    needle = secret.encode()
    for path in server.data_dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert needle not in path.read_bytes(), f"the secret is in {path}"
    assert secret not in server.log(), "the secret is in the server log"


@pytest.fixture
def runyard(tmp_path: Path) -> Iterator[RunyardProcess]:
    process = RunyardProcess(tmp_path / "data", extra_env={"RUNYARD_SOURCE_POLL_INTERVAL": "1"}).start()
    yield process
    process.stop()


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[Forge]:
    running = Forge(tmp_path / "forge").start()
    yield running
    running.stop()


def test_https_git_server_with_basic_auth(runyard: RunyardProcess, forge: Forge, tmp_path: Path) -> None:
    client = runyard.client("apprunner")
    url = forge.create_repo("team/app")
    forge.push("team/app", {"server.py": APP, "version.txt": "v1\n"}, token=forge.issue_token())
    password = "pw-" + secrets.token_hex(16)
    forge.passwords["deploy"] = password

    # Without credentials the server refuses the fetch: the service fails with a message that says what to do.
    failed = client.create_service(**service_request("no-credential", url))["Service"]
    assert wait_for_status(client, failed["ServiceArn"])["Status"] == "CREATE_FAILED"
    log = runyard_logs(runyard, "us-east-1", "no-credential", "--deployment", "latest")
    assert "the server refused the credentials" in log and "runyard git-credentials add" in log

    password_file = tmp_path / "password.txt"
    password_file.write_text(password + "\n")
    added = git_credentials(
        runyard,
        "add",
        "forge",
        "--url-prefix",
        forge.url,
        "--username",
        "deploy",
        "--password-file",
        str(password_file),
    )
    assert added.returncode == 0, added.stderr
    assert f"HTTPS credential for {forge.url} (user deploy)" in added.stdout
    unsigned = httpx.post(f"{runyard.endpoint}/runyard/git-credentials/list", json={}, timeout=10)
    assert unsigned.status_code == 403 and "forge" not in unsigned.text
    listed = git_credentials(runyard, "list")
    assert listed.returncode == 0, listed.stderr
    assert "forge" in listed.stdout and forge.url in listed.stdout and password not in listed.stdout

    service = client.create_service(**service_request("private", url, auto=True))["Service"]
    assert wait_for_status(client, service["ServiceArn"])["Status"] == "RUNNING"
    wait_until_serving(runyard, service, "v1")

    # Polling for automatic deployments reads the branch head with the same credential.
    forge.push("team/app", {"version.txt": "v2\n"}, token=forge.issue_token(), message="v2")
    wait_until_serving(runyard, service, "v2")

    refused = git_credentials(runyard, "remove", "forge")
    assert refused.returncode != 0 and "is used by services no-credential, private" in refused.stderr

    # A wrong password: the fetch fails as refused credentials, and the password is still never written anywhere.
    forge.passwords["deploy"] = "changed-" + secrets.token_hex(8)
    operation = client.start_deployment(ServiceArn=service["ServiceArn"])["OperationId"]
    assert wait_for_status(client, service["ServiceArn"])["Status"] == "RUNNING"
    latest = client.list_operations(ServiceArn=service["ServiceArn"])["OperationSummaryList"][0]
    assert (latest["Id"], latest["Status"]) == (operation, "ROLLBACK_SUCCEEDED")
    assert_nowhere_in_plaintext(password, runyard)
    assert forge.passwords["deploy"] not in runyard.log()


# -- SSH ---------------------------------------------------------------------------------------------------------


def _keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)], check=True)
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[tuple[int, Path, Path]]:
    """A real sshd on a loopback port: (port, its host public key, the client's private key)."""
    if not SSHD.exists():
        pytest.skip("sshd is not installed (Debian's openssh-server: `make deps`)")
    if os.geteuid() != 0:
        pytest.skip("sshd runs as root here (it must switch to the repository's user); the tests do not run as root")
    root = tmp_path / "sshd"
    root.mkdir()
    host_key, client_key = _keygen(root / "host_key"), _keygen(root / "client_key")
    authorized = root / "authorized_keys"
    authorized.write_text(Path(f"{client_key}.pub").read_text())
    port = _free_port()
    config = root / "sshd_config"
    config.write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {host_key}\nAuthorizedKeysFile {authorized}\n"
        f"PidFile {root / 'sshd.pid'}\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    log = (root / "sshd.log").open("wb")
    process = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.skip(f"sshd could not start: {(root / 'sshd.log').read_text(errors='replace')[-500:]}")
            time.sleep(0.05)
    yield port, Path(f"{host_key}.pub"), client_key
    process.terminate()
    process.wait(timeout=10)
    log.close()


def test_ssh_git_server_with_a_deploy_key(
    runyard: RunyardProcess, sshd: tuple[int, Path, Path], tmp_path: Path
) -> None:
    port, host_public_key, client_key = sshd
    client = runyard.client("apprunner")
    work = git_repo(tmp_path / "work", {"server.py": APP, "version.txt": "over ssh\n"})
    bare = tmp_path / "srv" / "app.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True, capture_output=True)
    url = f"ssh://root@127.0.0.1:{port}{bare}"

    # No credential matches: refused at request time, nothing stored.
    with pytest.raises(client.exceptions.InvalidRequestException, match="runyard git-credentials add"):
        client.create_service(**service_request("over-ssh", url))
    with pytest.raises(client.exceptions.InvalidRequestException, match="runyard git-credentials add"):
        client.create_service(**service_request("over-ssh", f"root@127.0.0.1:{bare}"))
    assert client.list_services()["ServiceSummaryList"] == []

    not_a_key = tmp_path / "not-a-key"
    not_a_key.write_text("hello\n")
    wrong = git_credentials(
        runyard, "add", "box", "--url-prefix", f"ssh://root@127.0.0.1:{port}/", "--ssh-key-file", str(not_a_key)
    )
    assert wrong.returncode != 0 and "does not hold a private key" in wrong.stderr

    prefix = f"ssh://root@127.0.0.1:{port}/"
    added = git_credentials(runyard, "add", "box", "--url-prefix", prefix, "--ssh-key-file", str(client_key))
    assert added.returncode == 0, added.stderr
    assert "host key learned on first use" in added.stdout
    service = client.create_service(**service_request("over-ssh", url))["Service"]
    assert wait_for_status(client, service["ServiceArn"])["Status"] == "RUNNING"
    wait_until_serving(runyard, service, "over ssh")
    learned = list((runyard.data_dir / "git-known-hosts").iterdir())
    assert len(learned) == 1 and host_public_key.read_text().split()[1] in learned[0].read_text()

    # Pinned host keys: the right one deploys, another one is refused (StrictHostKeyChecking=yes).
    pinned = tmp_path / "known_hosts"
    pinned.write_text(f"[127.0.0.1]:{port} {host_public_key.read_text()}")
    added = git_credentials(
        runyard,
        "add",
        "box",
        "--url-prefix",
        prefix,
        "--ssh-key-file",
        str(client_key),
        "--known-hosts-file",
        str(pinned),
    )
    assert added.returncode == 0, added.stderr
    assert not learned[0].exists()  # the replaced credential's learned host key is forgotten
    git_repo(work, {"version.txt": "pinned\n"}, message="pinned")
    subprocess.run(["git", "-C", str(work), "push", "-q", str(bare), "main"], check=True, capture_output=True)
    client.start_deployment(ServiceArn=service["ServiceArn"])
    assert wait_for_status(client, service["ServiceArn"])["Status"] == "RUNNING"
    wait_until_serving(runyard, service, "pinned")

    other_host = _keygen(tmp_path / "other_host")
    pinned.write_text(f"[127.0.0.1]:{port} {Path(f'{other_host}.pub').read_text()}")
    added = git_credentials(
        runyard,
        "add",
        "box",
        "--url-prefix",
        prefix,
        "--ssh-key-file",
        str(client_key),
        "--known-hosts-file",
        str(pinned),
    )
    assert added.returncode == 0, added.stderr
    operation = client.start_deployment(ServiceArn=service["ServiceArn"])["OperationId"]
    assert wait_for_status(client, service["ServiceArn"])["Status"] == "RUNNING"
    latest = client.list_operations(ServiceArn=service["ServiceArn"])["OperationSummaryList"][0]
    assert (latest["Id"], latest["Status"]) == (operation, "ROLLBACK_SUCCEEDED")
    assert "Host key verification failed" in runyard_logs(runyard, "us-east-1", "over-ssh", "--deployment", operation)

    private_key = client_key.read_text().strip().splitlines()[1]  # a line of the key's base64 body
    assert_nowhere_in_plaintext(private_key, runyard)
    assert list(Path(tempfile.gettempdir()).glob("runyard-ssh-*")) == []  # each key lived for one git command
