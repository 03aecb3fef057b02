"""`git push` to Runyard deploys (a Runyard extension, Heroku/piku style)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx

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


def push(work: Path, remote: str, password: str = SECRET_KEY) -> subprocess.CompletedProcess[str]:
    helper = '!f() { test "$1" = get && printf "username=%s\\npassword=%s\\n" "$PUSH_USER" "$PUSH_PASSWORD"; }; f'
    env = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"}
    env.update(PUSH_USER=ACCESS_KEY, PUSH_PASSWORD=password)
    return subprocess.run(
        ["git", "-C", str(work), "-c", f"credential.helper={helper}", "push", "-q", remote, "main"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_git_push_creates_the_repository_and_deploys(server: RunyardProcess, region: str, tmp_path: Path) -> None:
    name = f"pushed-{region}"
    remote = f"{server.endpoint}/git/{name}.git"
    work = git_repo(tmp_path / "work", {"server.py": APP, "version.txt": "v1\n"})

    refused = push(work, remote, password="wrong")
    assert refused.returncode != 0 and "Authentication failed" in refused.stderr
    assert httpx.get(f"{remote}/info/refs", params={"service": "git-upload-pack"}).status_code == 401

    first = push(work, remote)
    assert first.returncode == 0, first.stderr
    hosted = server.data_dir / "git" / f"{name}.git"
    assert hosted.is_dir()

    client = server.client("apprunner", region)
    values = {"Runtime": "PYTHON_3", "StartCommand": "python server.py"}
    arn = client.create_service(
        ServiceName="pushed",
        SourceConfiguration={
            "CodeRepository": {
                "RepositoryUrl": hosted.resolve().as_uri(),
                "SourceCodeVersion": {"Type": "BRANCH", "Value": "main"},
                "CodeConfiguration": {"ConfigurationSource": "API", "CodeConfigurationValues": values},
            },
            "AutoDeploymentsEnabled": True,
        },
    )["Service"]["ServiceArn"]
    service = wait_for_status(client, arn)
    assert service["Status"] == "RUNNING"
    assert get_via_dataplane(server, service["ServiceUrl"]).text == "v1"

    git_repo(work, {"version.txt": "v2\n"}, message="v2")
    assert push(work, remote).returncode == 0
    deadline = time.monotonic() + 120
    while get_via_dataplane(server, service["ServiceUrl"]).text != "v2":
        assert time.monotonic() < deadline, server.log()[-3000:]
        time.sleep(0.3)
    operations = client.list_operations(ServiceArn=arn)["OperationSummaryList"]
    assert [op["Type"] for op in operations][:1] == ["START_DEPLOYMENT"]
