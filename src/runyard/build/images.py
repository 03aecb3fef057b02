"""Images in the container engine: pulls of image services, and the OCI images of code services.

A code service on the OCI runtime is built exactly as on the process runtime (the managed-runtime build on this
host, offline, with the host's pip/npm configuration), then packed: the artifact directory is copied into the
runtime's base image **at the same absolute path**, so its virtual environment (whose interpreter links point at
the host's `/usr/bin/python3.11`) and PATH stay valid inside the container. The base images `runyard images
bootstrap` makes from the host's own interpreters guarantee those paths; an upstream image fits only when its
interpreter lives where the host's does. The image is pushed to the registry Runyard runs and is then pulled by
digest like any image service's image.

Engine calls go through the Docker-compatible API (podman's or dockerd's). Registry credentials reach the engine
in the X-Registry-Auth header of one request only: never in an argument, a file or a log line. Plain-HTTP
registries are pulled through podman's libpod endpoint, which takes `tlsVerify=false` per request (dockerd takes
127.0.0.0/8 as insecure by itself and others from its own `insecure-registries`).
"""

from __future__ import annotations

import base64
import io
import json
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import docker
from docker.errors import DockerException

from runyard.errors import RunyardError

CONTAINERFILE = "Containerfile"
LIBPOD_API = "/v4.0.0/libpod"
# The runtime's language -> the setting that names its base image (`RUNYARD_BASE_IMAGE_<LANGUAGE>`).
LANGUAGES = ("python", "nodejs")


class ImageBuildFailed(RunyardError):
    """The engine could not pull, build or push an image; the message never carries a credential."""


@dataclass(frozen=True, slots=True)
class EngineCredential:
    username: str
    password: str

    def __repr__(self) -> str:
        return f"EngineCredential(username={self.username!r}, password=***)"

    def header(self) -> str:
        document = json.dumps({"username": self.username, "password": self.password})
        return base64.urlsafe_b64encode(document.encode()).decode()


def containerfile(base_image: str, artifact_path: str, command: str) -> str:
    """The code service's image: its artifact where the host built it, started by its start command."""
    target = json.dumps(artifact_path)
    cmd = json.dumps(["/bin/sh", "-c", command]) if command else None
    lines = [f"FROM {base_image}", f"COPY . {target}", f"WORKDIR {target}"]
    if cmd is not None:
        lines.append(f"CMD {cmd}")
    return "\n".join(lines) + "\n"


def context_tar(directory: Path, containerfile_text: str, out: IO[bytes]) -> None:
    """Write the build context to `out`: the directory (symlinks kept as links), the Containerfile at its root."""
    with tarfile.open(fileobj=out, mode="w") as tar:
        tar.add(str(directory), arcname=".", recursive=True, filter=_skip_containerfile)
        data = containerfile_text.encode()
        info = tarfile.TarInfo(CONTAINERFILE)
        info.size = len(data)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))
    out.seek(0)


def _skip_containerfile(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if info.name in (f"./{CONTAINERFILE}", CONTAINERFILE) else info


class EngineImages:
    """Pull, build and push through the engine's API. Blocking: call from a thread in async code."""

    def __init__(self, client: Callable[[], docker.DockerClient]) -> None:
        self._client = client
        self._podman: bool | None = None

    def is_podman(self) -> bool:
        if self._podman is None:
            try:
                version = self._client().version()
            except DockerException as error:
                raise ImageBuildFailed(f"The container engine does not answer: {type(error).__name__}") from None
            components = version.get("Components") or []
            self._podman = any("podman" in str(c.get("Name", "")).lower() for c in components)
        return self._podman

    def has(self, reference: str) -> bool:
        try:
            self._client().images.get(reference)
        except docker.errors.ImageNotFound:
            return False
        except DockerException as error:
            raise ImageBuildFailed(f"The container engine cannot look up {reference}: {type(error).__name__}") from None
        return True

    def pull(self, reference: str, *, credential: EngineCredential | None, insecure: bool) -> None:
        """Pull `reference` (pinned by digest) into the engine unless it is there already."""
        if self.has(reference):
            return
        headers = {"X-Registry-Auth": credential.header()} if credential is not None else {}
        api = self._client().api
        try:
            if self.is_podman():
                params = {"reference": reference, "tlsVerify": "false" if insecure else "true", "quiet": "true"}
                response = api.post(
                    f"{api.base_url}{LIBPOD_API}/images/pull", params=params, headers=headers, stream=True
                )
            else:
                params = {"fromImage": reference}
                response = api.post(
                    f"{api.base_url}/v{api.api_version}/images/create", params=params, headers=headers, stream=True
                )
            _check_stream(response, f"Pulling {reference}")
        except DockerException as error:
            raise ImageBuildFailed(f"Pulling {reference} failed: {type(error).__name__}") from None

    def build(self, directory: Path, containerfile_text: str, tag: str, log: Callable[[str], None]) -> None:
        """Build the image of a directory with the Containerfile given and tag it (the context goes through a
        temporary file: an artifact with its virtual environment can be large)."""
        with tempfile.TemporaryFile() as context:
            context_tar(directory, containerfile_text, context)
            self._build(context, tag, log)

    def _build(self, context: IO[bytes], tag: str, log: Callable[[str], None]) -> None:
        api = self._client().api
        try:
            stream = api.build(
                fileobj=context, custom_context=True, dockerfile=CONTAINERFILE, tag=tag, rm=True, decode=True
            )
            for chunk in stream:
                if "error" in chunk:
                    raise ImageBuildFailed(f"Building the image failed: {str(chunk['error']).strip()}")
                text = str(chunk.get("stream", "")).strip()
                if text:
                    for line in text.splitlines():
                        log(f"[Build] {line}")
        except DockerException as error:
            raise ImageBuildFailed(f"Building the image failed: {type(error).__name__}: {error}") from None

    def push(self, tag: str, *, insecure: bool) -> None:
        """Push a local tag to its registry (the one Runyard runs: no credential)."""
        api = self._client().api
        try:
            if self.is_podman():
                params = {"tlsVerify": "false" if insecure else "true", "destination": tag}
                url = f"{api.base_url}{LIBPOD_API}/images/{tag}/push"
                response = api.post(url, params=params, headers={"X-Registry-Auth": "e30="}, stream=True)
            else:
                repository, _, name_tag = tag.rpartition(":")
                response = api.post(
                    f"{api.base_url}/v{api.api_version}/images/{repository}/push",
                    params={"tag": name_tag},
                    headers={"X-Registry-Auth": "e30="},
                    stream=True,
                )
            _check_stream(response, f"Pushing {tag}")
        except DockerException as error:
            raise ImageBuildFailed(f"Pushing {tag} failed: {type(error).__name__}") from None


def _check_stream(response: Any, what: str) -> None:
    """The engine answers pulls and pushes with a stream of JSON documents; an `error` in any is the failure."""
    if response.status_code >= 400:
        raise ImageBuildFailed(f"{what} failed: HTTP {response.status_code} {_error_text(response.text)}")
    for document in _json_documents(response.iter_lines()):
        error = document.get("error") or document.get("errorDetail", {}).get("message")
        if error:
            raise ImageBuildFailed(f"{what} failed: {str(error).strip()}")


def _json_documents(lines: Iterator[bytes]) -> Iterator[dict[str, Any]]:
    for raw in lines:
        text = raw.decode(errors="replace").strip() if isinstance(raw, bytes) else str(raw).strip()
        if not text:
            continue
        try:
            document = json.loads(text)
        except ValueError:
            continue
        if isinstance(document, dict):
            yield document


def _error_text(text: str) -> str:
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip()[:300]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("cause") or body)[:300]
    return str(body)[:300]
