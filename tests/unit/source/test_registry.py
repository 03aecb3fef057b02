"""Image references and the registry client, against a small registry that follows the Registry API v2 shapes
(the e2e tests use Debian's real docker-registry; this one exists for the auth edge cases it cannot show)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from runyard.source.registry import (
    ImageNotFound,
    ImageReference,
    ReferenceError,
    RegistryAuthError,
    RegistryClient,
    RegistryCredential,
    RegistryError,
    is_reference,
    parse_reference,
)

MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}).encode()
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()


# -- references ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5000/app:1", ImageReference("127.0.0.1:5000", "app", "1")),
        ("localhost/team/app", ImageReference("localhost", "team/app", "latest")),
        ("busybox", ImageReference("docker.io", "library/busybox", "latest")),
        ("user/app:v2", ImageReference("docker.io", "user/app", "v2")),
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-app:latest",
            ImageReference("123456789012.dkr.ecr.us-east-1.amazonaws.com", "my-app", "latest"),
        ),
        (f"public.ecr.aws/nginx/nginx@{DIGEST}", ImageReference("public.ecr.aws", "nginx/nginx", None, DIGEST)),
        (f"reg.example:443/a/b:1@{DIGEST}", ImageReference("reg.example:443", "a/b", "1", DIGEST)),
    ],
)
def test_references_parse_as_docker_reads_them(text: str, expected: ImageReference) -> None:
    assert parse_reference(text) == expected


@pytest.mark.parametrize(
    "text", ["", " app", "App:1", "127.0.0.1:5000/app:bad tag", "app@sha256:xyz", "reg.example/UP/app", "a//b"]
)
def test_malformed_references_are_refused_with_the_reason(text: str) -> None:
    assert not is_reference(text)
    with pytest.raises(ReferenceError):
        parse_reference(text)


def test_a_pinned_reference_keeps_its_tag_for_display() -> None:
    image = parse_reference("127.0.0.1:5000/app:1").pinned(DIGEST)
    assert image.reference == DIGEST
    assert str(image) == f"127.0.0.1:5000/app:1@{DIGEST}"


# -- a registry speaking the API v2 shapes ------------------------------------------------------------


@dataclass
class FakeRegistry:
    auth: str = "none"  # "none" | "basic" | "bearer"
    manifests: dict[str, bytes] = field(default_factory=lambda: {"app:1": MANIFEST})
    send_digest_on_head: bool = True
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    port: int = 0

    USER = "deploy"
    PASSWORD = "s3cret-pass"
    TOKEN = "tok-123"

    def authorized(self, headers: dict[str, str]) -> bool:
        given = headers.get("Authorization", "")
        if self.auth == "basic":
            return given == "Basic " + base64.b64encode(f"{self.USER}:{self.PASSWORD}".encode()).decode()
        if self.auth == "bearer":
            return given == f"Bearer {self.TOKEN}"
        return True


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    state = FakeRegistry()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

        def _answer(self, status: int, headers: dict[str, str], body: bytes = b"", *, head: bool = False) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _manifest(self, head: bool) -> None:
            headers = dict(self.headers.items())
            state.requests.append((self.command, self.path, headers))
            url = urlsplit(self.path)
            if url.path == "/token":
                query = parse_qs(url.query)
                expected = "Basic " + base64.b64encode(f"{state.USER}:{state.PASSWORD}".encode()).decode()
                if headers.get("Authorization") != expected or query.get("scope") != ["repository:app:pull"]:
                    self._answer(401, {}, b"{}")
                    return
                self._answer(200, {"Content-Type": "application/json"}, json.dumps({"token": state.TOKEN}).encode())
                return
            if not state.authorized(headers):
                challenge = (
                    'Basic realm="Registry"'
                    if state.auth == "basic"
                    else f'Bearer realm="http://127.0.0.1:{state.port}/token",service="fake",'
                    'scope="repository:app:pull"'
                )
                self._answer(401, {"WWW-Authenticate": challenge}, b'{"errors":[{"code":"UNAUTHORIZED"}]}', head=head)
                return
            name, _, reference = url.path.removeprefix("/v2/").partition("/manifests/")
            body = state.manifests.get(f"{name}:{reference}")
            if body is None:
                self._answer(404, {}, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}', head=head)
                return
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
            headers_out = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
            if state.send_digest_on_head or not head:
                headers_out["Docker-Content-Digest"] = digest if state.send_digest_on_head else ""
            self._answer(200, {k: v for k, v in headers_out.items() if v}, body, head=head)

        def do_HEAD(self) -> None:
            self._manifest(head=True)

        def do_GET(self) -> None:
            self._manifest(head=False)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def _resolve(registry: FakeRegistry, text: str = "", credential: RegistryCredential | None = None) -> str:
    host = f"127.0.0.1:{registry.port}"
    client = RegistryClient(insecure=frozenset({host}))
    return asyncio.run(client.resolve(parse_reference(text or f"{host}/app:1"), credential))


def test_a_tag_resolves_to_the_digest_with_the_manifest_types_accepted(registry: FakeRegistry) -> None:
    assert _resolve(registry) == DIGEST
    method, _, headers = registry.requests[-1]
    assert method == "HEAD"
    assert "application/vnd.oci.image.manifest.v1+json" in headers["Accept"]
    assert "application/vnd.docker.distribution.manifest.v2+json" in headers["Accept"]


def test_without_the_digest_header_the_digest_is_the_manifest_bodys_hash(registry: FakeRegistry) -> None:
    registry.send_digest_on_head = False
    assert _resolve(registry) == DIGEST
    assert [method for method, _, _ in registry.requests] == ["HEAD", "GET"]


def test_a_missing_tag_is_image_not_found(registry: FakeRegistry) -> None:
    with pytest.raises(ImageNotFound, match="app:2 does not exist"):
        _resolve(registry, f"127.0.0.1:{registry.port}/app:2")


def test_basic_auth_is_answered_with_the_credential(registry: FakeRegistry) -> None:
    registry.auth = "basic"
    assert _resolve(registry, credential=RegistryCredential(registry.USER, registry.PASSWORD)) == DIGEST


def test_a_basic_challenge_without_a_credential_asks_for_one(registry: FakeRegistry) -> None:
    registry.auth = "basic"
    with pytest.raises(RegistryAuthError, match="needs credentials"):
        _resolve(registry)


def test_a_wrong_password_is_refused_and_never_repeated(registry: FakeRegistry) -> None:
    registry.auth = "basic"
    with pytest.raises(RegistryAuthError) as raised:
        _resolve(registry, credential=RegistryCredential(registry.USER, "wrong-password"))
    assert "refused the configured credentials" in raised.value.message
    assert "wrong-password" not in raised.value.message


def test_a_bearer_challenge_gets_a_token_from_the_realm(registry: FakeRegistry) -> None:
    registry.auth = "bearer"
    assert _resolve(registry, credential=RegistryCredential(registry.USER, registry.PASSWORD)) == DIGEST
    paths = [path for _, path, _ in registry.requests]
    assert any(path.startswith("/token?") for path in paths)
    assert registry.requests[-1][2]["Authorization"] == f"Bearer {registry.TOKEN}"


def test_a_token_server_refusing_the_credential_is_an_auth_error(registry: FakeRegistry) -> None:
    registry.auth = "bearer"
    with pytest.raises(RegistryAuthError):
        _resolve(registry, credential=RegistryCredential(registry.USER, "nope"))


def test_an_unreachable_registry_says_so() -> None:
    with pytest.raises(RegistryError, match=r"Cannot reach the registry 127\.0\.0\.1:9"):
        asyncio.run(RegistryClient(insecure=frozenset({"127.0.0.1:9"})).resolve(parse_reference("127.0.0.1:9/a:1")))


def test_credentials_never_show_in_their_repr() -> None:
    assert "s3cret" not in repr(RegistryCredential("u", "s3cret"))
