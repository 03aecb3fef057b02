"""Image-based services and code services on the OCI runtime, end to end: a real `runyard serve --runtime oci`
(podman), real registries (Debian's docker-registry, started here, one of them with htpasswd auth), images built
here with podman from a busybox root filesystem, boto3 as the client.

- an image service answers at its URL; the deployed digest is pinned and named in the deployment log;
- a new digest pushed to the tag is deployed automatically: by registry notification (Runyard's own registry,
  which a private ECR identifier maps to) and by polling the tag (any registry);
- a private registry with credentials, granted to one AccessRoleArn only;
- the getting-started guide's python-hello (PORT = 8080 hard-coded) as a code service in a container;
- with the process runtime, CreateService of an image is refused and names `--runtime oci`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
import yaml
from botocore.exceptions import ClientError

from runyard.build.base_images import RootFs
from tests.support import RunyardProcess, free_port, get_via_dataplane, git_repo, wait_for_status

pytestmark = pytest.mark.skipif(
    not (shutil.which("podman") and shutil.which("docker-registry")), reason="needs podman and docker-registry"
)

ROLE = "arn:aws:iam::000000000000:role/pull-app"
OTHER_ROLE = "arn:aws:iam::000000000000:role/someone-else"
ACCOUNT = "000000000000"
PRIVATE_USER, PRIVATE_PASSWORD = "deploy", "registry-s3cret-pw"
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
log_driver = "k8s-file"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""
HELLO_SERVER = """\
from flask import Flask
import os

PORT = 8080
name = os.environ.get('NAME')
if name == None or len(name) == 0:
    name = "world"
MESSAGE = "Hello, " + name + "!"
print("Message: " + MESSAGE)

app = Flask(__name__)

@app.route("/")
def root():
    print("Handling web request. Returning message.")
    result = MESSAGE.encode("utf-8")
    return result


if __name__ == "__main__":
    app.run(debug=True, host="0.0.0.0", port=PORT)
"""


@dataclass
class Registry:
    """`docker-registry serve` on a free loopback port."""

    directory: Path
    htpasswd: Path | None = None
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Registry:
        self.port = free_port()
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "warn"},
            "storage": {"filesystem": {"rootdirectory": str(self.directory / "data")}},
            "http": {"addr": self.host},
        }
        if self.htpasswd is not None:
            config["auth"] = {"htpasswd": {"realm": "test", "path": str(self.htpasswd)}}
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "config.yml").write_text(yaml.safe_dump(config))
        with (self.directory / "registry.log").open("ab") as log:
            self.process = subprocess.Popen(
                ["docker-registry", "serve", str(self.directory / "config.yml")], stdout=log, stderr=log
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://{self.host}/v2/"]).returncode == 0:
                return self
            time.sleep(0.1)
        raise RuntimeError("docker-registry did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)


class Podman:
    """The podman CLI with the containers.conf this machine needs (the same one Runyard writes for its service)."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        conf = directory / "containers.conf"
        conf.write_text(CONTAINERS_CONF)
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}
        self.directory = directory

    def __call__(self, *args: str, stdin: bytes | None = None) -> str:
        done = subprocess.run(["podman", *args], input=stdin, capture_output=True, env=self.env, timeout=300)
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout.decode()

    def busybox_base(self) -> str:
        """A busybox image, imported from a root filesystem (no Docker Hub here)."""
        tag = "localhost/runyard-test/busybox:1"
        root = self.directory / "busybox-rootfs"
        if not root.exists():
            root.mkdir()
            rootfs = RootFs(root)
            rootfs.add_busybox()
            archive = self.directory / "busybox.tar"
            rootfs.tar(archive)
            self("import", "--change", 'CMD ["/bin/sh"]', str(archive), tag)
        return tag

    def web_image(self, target: str, text: str, *, push_creds: str | None = None) -> None:
        """An image serving `text` at / on port 8080 (busybox httpd), built and pushed to `target`."""
        context = self.directory / f"ctx-{abs(hash((target, text)))}"
        context.mkdir(exist_ok=True)
        (context / "index.html").write_text(text)
        (context / "Containerfile").write_text(
            f"FROM {self.busybox_base()}\n"
            "COPY index.html /www/index.html\n"
            'CMD ["httpd", "-f", "-v", "-p", "8080", "-h", "/www"]\n'
        )
        self("build", "-q", "-t", target, str(context))
        creds = ["--creds", push_creds] if push_creds else []
        self("push", "-q", "--tls-verify=false", *creds, target)


@dataclass
class Rig:
    server: RunyardProcess
    public: Registry
    private: Registry
    podman: Podman
    local_registry: str


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    base = tmp_path_factory.mktemp("images")
    podman = Podman(base / "podman")
    with contextlib.ExitStack() as cleanup:  # every registry and server stops, whatever failed
        public = Registry(base / "public").start()
        cleanup.callback(public.stop)
        htpasswd = base / "htpasswd"
        hashed = bcrypt.hashpw(PRIVATE_PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()
        htpasswd.write_text(f"{PRIVATE_USER}:{hashed}\n")
        private = Registry(base / "private", htpasswd=htpasswd).start()
        cleanup.callback(private.stop)
        credentials = base / "registries.toml"
        credentials.write_text(
            f'[[registry]]\nhost = "{private.host}"\nusername = "{PRIVATE_USER}"\npassword = "{PRIVATE_PASSWORD}"\n'
            f'access_role_arns = ["{ROLE}"]\n'
        )
        local_port = free_port()
        server = RunyardProcess(
            base / "data",
            extra_env={
                "RUNYARD_RUNTIME": "oci",
                "RUNYARD_LOCAL_REGISTRY_PORT": str(local_port),
                "RUNYARD_INSECURE_REGISTRIES": f"{public.host},{private.host}",
                "RUNYARD_REGISTRY_CREDENTIALS": str(credentials),
                "RUNYARD_SOURCE_POLL_INTERVAL": "3600",  # notifications only, unless a test's server says otherwise
                "RUNYARD_ECR_PUBLIC_MIRROR": public.host,
            },
        )
        cleanup.callback(server.stop)
        yield Rig(server.start(timeout=60), public, private, podman, f"127.0.0.1:{local_port}")


def image_service(name: str, identifier: str, *, role: str | None = ROLE, **extra: Any) -> dict[str, Any]:
    auth = {"AuthenticationConfiguration": {"AccessRoleArn": role}} if role else {}
    return {
        "ServiceName": name,
        "SourceConfiguration": {
            "ImageRepository": {
                "ImageIdentifier": identifier,
                "ImageRepositoryType": "ECR",
                "ImageConfiguration": {"Port": "8080", "RuntimeEnvironmentVariables": {"GREETING": "hi"}},
            },
            **auth,
            **extra,
        },
    }


def deployment_log(server: RunyardProcess, region: str, name: str, operation: str = "latest") -> str:
    where = ["--region", region, "--data-dir", str(server.data_dir)]
    result = subprocess.run(
        [sys.executable, "-m", "runyard", "logs", name, "--deployment", operation, *where],
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def digest_of(podman: Podman, reference: str) -> str:
    done = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}", f"docker://{reference}"],
        capture_output=True,
        text=True,
        timeout=60,
        env=podman.env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def wait_until_serving(server: RunyardProcess, client: Any, arn: str, text: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        service = client.describe_service(ServiceArn=arn)["Service"]
        if service["Status"] == "RUNNING":
            last = get_via_dataplane(server, service["ServiceUrl"]).text
            if last == text:
                return
        time.sleep(0.3)
    raise AssertionError(f"{arn} serves {last!r}, not {text!r}, after {timeout} s:\n{server.log()[-3000:]}")


def test_an_image_service_answers_at_its_url_with_the_digest_pinned(rig: Rig, region: str) -> None:
    target = f"{rig.public.host}/team/web:1"
    rig.podman.web_image(target, "hello from an image\n")
    digest = digest_of(rig.podman, target)
    client = rig.server.client("apprunner", region)

    created = client.create_service(**image_service("web-app", target, AutoDeploymentsEnabled=False))
    service = wait_for_status(client, created["Service"]["ServiceArn"])
    assert service["Status"] == "RUNNING", deployment_log(rig.server, region, "web-app")
    response = get_via_dataplane(rig.server, service["ServiceUrl"])
    assert response.status_code == 200 and response.text == "hello from an image\n"
    image = service["SourceConfiguration"]["ImageRepository"]
    assert image["ImageIdentifier"] == target and image["ImageConfiguration"]["Port"] == "8080"

    log = deployment_log(rig.server, region, "web-app", created["OperationId"])
    assert f"[AppRunner] Image {target} resolved to digest {digest}." in log
    assert f"{rig.public.host}/team/web@{digest}" in log


def test_a_push_to_runyards_registry_deploys_at_once_by_notification(rig: Rig, region: str) -> None:
    """A private ECR identifier of the account maps to Runyard's own registry, which notifies Runyard of pushes."""
    identifier = f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com/team/api:live"
    pushed_to = f"{rig.local_registry}/team/api:live"
    rig.podman.web_image(pushed_to, "v1\n")
    client = rig.server.client("apprunner", region)
    arn = client.create_service(**image_service("api-app", identifier))["Service"]["ServiceArn"]
    running = wait_for_status(client, arn)
    assert running["Status"] == "RUNNING", deployment_log(rig.server, region, "api-app")
    assert running["SourceConfiguration"]["AutoDeploymentsEnabled"] is True
    assert get_via_dataplane(rig.server, running["ServiceUrl"]).text == "v1\n"
    assert f"is pulled from {pushed_to} on this Runyard" in deployment_log(rig.server, region, "api-app")

    rig.podman.web_image(pushed_to, "v2\n")  # the poll interval is an hour: only the notification can do this
    new_digest = digest_of(rig.podman, pushed_to)
    wait_until_serving(rig.server, client, arn, "v2\n", timeout=90)
    operations = client.list_operations(ServiceArn=arn)["OperationSummaryList"]
    assert [op["Type"] for op in operations][:1] == ["START_DEPLOYMENT"]
    assert f"resolved to digest {new_digest}" in deployment_log(rig.server, region, "api-app", operations[0]["Id"])


def test_a_private_registry_with_credentials_granted_to_one_role(rig: Rig, region: str) -> None:
    target = f"{rig.private.host}/secret/app:1"
    rig.podman.web_image(target, "private\n", push_creds=f"{PRIVATE_USER}:{PRIVATE_PASSWORD}")
    client = rig.server.client("apprunner", region)

    allowed = client.create_service(**image_service("granted", target, AutoDeploymentsEnabled=False))
    service = wait_for_status(client, allowed["Service"]["ServiceArn"])
    assert service["Status"] == "RUNNING", deployment_log(rig.server, region, "granted")
    assert get_via_dataplane(rig.server, service["ServiceUrl"]).text == "private\n"

    refused = client.create_service(**image_service("refused", target, role=OTHER_ROLE, AutoDeploymentsEnabled=False))
    failed = wait_for_status(client, refused["Service"]["ServiceArn"])
    assert failed["Status"] == "CREATE_FAILED"
    log = deployment_log(rig.server, region, "refused")
    assert "not granted to the AccessRoleArn" in log and OTHER_ROLE in log
    assert PRIVATE_PASSWORD not in log and PRIVATE_PASSWORD not in rig.server.log()


def test_a_missing_tag_fails_the_creation_with_the_reason(rig: Rig, region: str) -> None:
    client = rig.server.client("apprunner", region)
    created = client.create_service(**image_service("missing", f"{rig.public.host}/team/nothing:9"))
    assert wait_for_status(client, created["Service"]["ServiceArn"])["Status"] == "CREATE_FAILED"
    assert "does not exist in the registry" in deployment_log(rig.server, region, "missing")


def test_ecr_public_with_auto_deployments_is_refused_as_app_runner_does(rig: Rig, region: str) -> None:
    client = rig.server.client("apprunner", region)
    request = image_service("public-app", "public.ecr.aws/nginx/nginx:latest", role=None, AutoDeploymentsEnabled=True)
    request["SourceConfiguration"]["ImageRepository"]["ImageRepositoryType"] = "ECR_PUBLIC"
    with pytest.raises(ClientError) as raised:
        client.create_service(**request)
    assert raised.value.response["Error"]["Code"] == "InvalidRequestException"
    assert raised.value.response["Error"]["Message"] == (
        "App Runner doesn't support automatic deployments for an image in an ECR Public repository."
    )


def test_the_python_hello_code_service_runs_in_a_container(rig: Rig, region: str, tmp_path: Path) -> None:
    """The guide's server.py hard-codes PORT = 8080: in its own network namespace that just works."""
    bootstrap = subprocess.run(
        [sys.executable, "-m", "runyard", "images", "bootstrap", "--language", "python"],
        env=rig.server.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bootstrap.returncode == 0, bootstrap.stderr
    repository = git_repo(tmp_path / "python-hello", {"requirements.txt": "Flask>=2.2,<4\n", "server.py": HELLO_SERVER})
    client = rig.server.client("apprunner", region)
    created = client.create_service(
        ServiceName="python-hello",
        SourceConfiguration={
            "CodeRepository": {
                "RepositoryUrl": str(repository),
                "SourceCodeVersion": {"Type": "BRANCH", "Value": "main"},
                "CodeConfiguration": {
                    "ConfigurationSource": "API",
                    "CodeConfigurationValues": {
                        "Runtime": "PYTHON_311",
                        "BuildCommand": "pip install -r requirements.txt",
                        "StartCommand": "python server.py",
                        "Port": "8080",
                        "RuntimeEnvironmentVariables": {"NAME": "Jane"},
                    },
                },
            },
            "AutoDeploymentsEnabled": False,
        },
    )
    service = wait_for_status(client, created["Service"]["ServiceArn"])
    assert service["Status"] == "RUNNING", deployment_log(rig.server, region, "python-hello")
    assert get_via_dataplane(rig.server, service["ServiceUrl"]).text == "Hello, Jane!"
    log = deployment_log(rig.server, region, "python-hello", created["OperationId"])
    assert f"{rig.local_registry}/runyard/python@sha256:" in log, log


def test_a_polled_tag_deploys_its_new_digest(tmp_path: Path, region: str) -> None:
    """Any registry, no notifications: the tag's digest is polled at RUNYARD_SOURCE_POLL_INTERVAL."""
    podman = Podman(tmp_path / "podman")
    registry = Registry(tmp_path / "registry").start()
    server = RunyardProcess(
        tmp_path / "data",
        extra_env={
            "RUNYARD_RUNTIME": "oci",
            "RUNYARD_LOCAL_REGISTRY_PORT": str(free_port()),
            "RUNYARD_INSECURE_REGISTRIES": registry.host,
            "RUNYARD_SOURCE_POLL_INTERVAL": "1",
        },
    )
    try:
        server.start(timeout=60)
        target = f"{registry.host}/polled/web:stable"
        podman.web_image(target, "one\n")
        client = server.client("apprunner", region)
        arn = client.create_service(**image_service("polled", target))["Service"]["ServiceArn"]
        assert wait_for_status(client, arn)["Status"] == "RUNNING", deployment_log(server, region, "polled")
        podman.web_image(target, "two\n")
        wait_until_serving(server, client, arn, "two\n", timeout=90)

        # A restart of Runyard brings the pinned digest back up (no pull of the tag again).
        podman.web_image(target, "three\n")
        server.stop()
        server.start(timeout=60)
        service = client.describe_service(ServiceArn=arn)["Service"]
        assert service["Status"] == "RUNNING"
        deadline = time.monotonic() + 60
        while (served := get_via_dataplane(server, service["ServiceUrl"])).status_code != 200:
            assert time.monotonic() < deadline, served.text
            time.sleep(0.2)
        assert served.text in ("two\n", "three\n")  # "three" once the poll after the restart has deployed it
        wait_until_serving(server, client, arn, "three\n", timeout=90)

        # No mirror configured on this server: ECR Public needs the internet, and the deployment says so.
        if not _resolves("public.ecr.aws"):
            identifier = "public.ecr.aws/nginx/nginx:1"
            request = image_service("public-app", identifier, role=None, AutoDeploymentsEnabled=False)
            request["SourceConfiguration"]["ImageRepository"]["ImageRepositoryType"] = "ECR_PUBLIC"
            created = client.create_service(**request)
            assert wait_for_status(client, created["Service"]["ServiceArn"])["Status"] == "CREATE_FAILED"
            log = deployment_log(server, region, "public-app")
            assert "Cannot reach the registry public.ecr.aws" in log and "RUNYARD_ECR_PUBLIC_MIRROR" in log
    finally:
        server.stop()
        registry.stop()


def test_the_process_runtime_refuses_image_services_naming_the_oci_runtime(tmp_path: Path, region: str) -> None:
    server = RunyardProcess(tmp_path / "data", extra_env={"RUNYARD_RUNTIME": "process"})
    try:
        server.start()
        client = server.client("apprunner", region)
        with pytest.raises(ClientError) as raised:
            client.create_service(**image_service("image-app", "127.0.0.1:5000/app:1"))
        assert raised.value.response["Error"]["Code"] == "InvalidRequestException"
        assert "--runtime oci" in raised.value.response["Error"]["Message"]
        assert client.list_services()["ServiceSummaryList"] == []
    finally:
        server.stop()


def test_registry_notifications_need_the_token(rig: Rig) -> None:
    url = f"{rig.server.endpoint}/registry/notifications"
    body = b'{"events": []}'
    assert httpx.post(url, content=body).status_code == 401
    assert httpx.post(url, content=body, headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_ecr_public_is_pulled_from_the_configured_mirror(rig: Rig, region: str) -> None:
    rig.podman.web_image(f"{rig.public.host}/nginx/nginx:latest", "mirrored\n")
    client = rig.server.client("apprunner", region)
    request = image_service("public-app", "public.ecr.aws/nginx/nginx:latest", role=None, AutoDeploymentsEnabled=False)
    request["SourceConfiguration"]["ImageRepository"]["ImageRepositoryType"] = "ECR_PUBLIC"
    created = client.create_service(**request)
    service = wait_for_status(client, created["Service"]["ServiceArn"])
    assert service["Status"] == "RUNNING", deployment_log(rig.server, region, "public-app")
    assert get_via_dataplane(rig.server, service["ServiceUrl"]).text == "mirrored\n"
    assert f"is pulled from {rig.public.host}/nginx/nginx:latest" in deployment_log(rig.server, region, "public-app")
