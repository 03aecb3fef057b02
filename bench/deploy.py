"""Deploy time: CreateService -> RUNNING -> first answer through the data plane, for the spec's python-hello.

Runs a real `runyard serve` on free ports with a fresh data directory and measures, in one run:
  cold    - first deployment: empty pip cache, no venv seed, no artifact
  warm    - a new commit of the same app: caches warm, the build runs again
  reused  - a second service of the same commit: the artifact is reused, nothing is built

Usage: .venv/bin/python bench/deploy.py [--keep]
The last line is `ratio: X` = cold / warm deploy time.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import httpx
from common import commit, create_service, runyard

SERVER = """\
import os
from flask import Flask

name = os.environ.get("NAME") or "world"
app = Flask(__name__)


@app.route("/")
def root():
    return "Hello, " + name + "!"


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=int(os.environ["PORT"]))
"""


def deploy(client: Any, http_port: int, name: str, repository: Path) -> tuple[float, float]:
    """Seconds from CreateService to RUNNING, and to the first `Hello, Jane!` through HAProxy."""
    started = time.perf_counter()
    values = {
        "Runtime": "PYTHON_3",
        "BuildCommand": "pip install -r requirements.txt",
        "StartCommand": "python server.py",
        "RuntimeEnvironmentVariables": {"NAME": "Jane"},
    }
    service = create_service(client, name, repository, values)
    host = service["ServiceUrl"].split(":")[0]
    deadline = started + 300
    running: float | None = None
    while time.perf_counter() < deadline:
        status = client.describe_service(ServiceArn=service["ServiceArn"])["Service"]["Status"]
        if status == "RUNNING":
            running = running or time.perf_counter() - started
            answer = httpx.get(f"http://127.0.0.1:{http_port}/", headers={"Host": host}, timeout=10)
            if answer.text == "Hello, Jane!":
                return running, time.perf_counter() - started
        elif status != "OPERATION_IN_PROGRESS":
            raise SystemExit(f"{name} ended {status}")
        time.sleep(0.05)
    raise SystemExit(f"{name} was not running after 300 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    args = parser.parse_args()
    with runyard(keep=args.keep) as server:
        client = server.client()
        repository = server.workdir / "python-hello"
        commit(repository, {"requirements.txt": "Flask\n", "server.py": SERVER}, "first")
        print("deploying python-hello (Flask from the package index) on", f"{os.cpu_count()} cores", flush=True)
        print("          RUNNING  first answer")
        cold = deploy(client, server.http_port, "hello-cold", repository)
        print(f"cold:   {cold[0]:6.2f} s  {cold[1]:6.2f} s  (empty caches, full build)", flush=True)
        commit(repository, {"README.md": "a new commit\n"}, "second")
        warm = deploy(client, server.http_port, "hello-warm", repository)
        print(f"warm:   {warm[0]:6.2f} s  {warm[1]:6.2f} s  (warm caches, new commit: build runs again)", flush=True)
        reused = deploy(client, server.http_port, "hello-reused", repository)
        print(f"reused: {reused[0]:6.2f} s  {reused[1]:6.2f} s  (same commit: artifact reused, no build)", flush=True)
        print(f"ratio: {cold[1] / warm[1]:.2f}")


if __name__ == "__main__":
    main()
