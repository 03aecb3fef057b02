"""OCI image references and the registry client (the Docker Registry HTTP API v2, as distribution serves it).

A tag moves; a digest does not. Deployments pin the digest a tag points at when they start, so every instance of
a revision runs the same bytes and a new push of the tag is a new revision. The client resolves a tag with
`HEAD /v2/<name>/manifests/<tag>` (the manifest media types in Accept) and reads Docker-Content-Digest; it answers
the registry's challenges (Basic, or a Bearer token from the realm it names). Credentials travel only in request
headers, never in a URL, a message or a log line.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import httpx

from runyard.errors import RunyardError

DEFAULT_REGISTRY = "docker.io"
_DOCKER_HUB_API = "registry-1.docker.io"
MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
TIMEOUT = 30.0

# The distribution reference grammar (github.com/distribution/reference), in its parts.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAME = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_DOMAIN = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])"
    r"(?::[0-9]+)?"
)
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}")
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class ReferenceError(RunyardError):
    """The text is not an OCI image reference."""


class RegistryError(RunyardError):
    """The registry could not be reached or refused; the message is safe to show (it never carries a secret)."""


class RegistryUnreachable(RegistryError):
    """No HTTP answer: the name does not resolve, the connection or TLS failed, or it timed out."""


class RegistryAuthError(RegistryError):
    """The registry wants credentials, or refused the ones given."""


class ImageNotFound(RegistryError):
    """The repository or the tag does not exist."""


@dataclass(frozen=True, slots=True)
class ImageReference:
    """`registry/repository[:tag][@digest]`; the tag is `latest` when neither a tag nor a digest is given."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """What a manifest is looked up by: the digest when pinned, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    def pinned(self, digest: str) -> ImageReference:
        return ImageReference(self.registry, self.repository, self.tag, digest)

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str) -> ImageReference:
    """Parse as docker does: a first component with a dot or a port, or `localhost`, names the registry."""
    rest = text.strip()
    if not rest or rest != text or len(rest) > 1024:
        raise ReferenceError(f"{text!r} is not an image reference.")
    digest = None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.fullmatch(digest):
            raise ReferenceError(f"{text!r} is not an image reference: the digest {digest!r} is malformed.")
    tag = None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        rest, tag = rest.rsplit(":", 1)
        if not _TAG.fullmatch(tag):
            raise ReferenceError(f"{text!r} is not an image reference: the tag {tag!r} is malformed.")
    first, _, remainder = rest.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, remainder
        if not _DOMAIN.fullmatch(registry):
            raise ReferenceError(f"{text!r} is not an image reference: the registry {registry!r} is malformed.")
    else:
        registry, repository = DEFAULT_REGISTRY, rest
        if "/" not in repository:
            repository = f"library/{repository}"
    if not _NAME.fullmatch(repository):
        raise ReferenceError(f"{text!r} is not an image reference: the repository name {repository!r} is malformed.")
    if tag is None and digest is None:
        tag = "latest"
    return ImageReference(registry, repository, tag, digest)


def is_reference(text: str) -> bool:
    try:
        parse_reference(text)
    except ReferenceError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class RegistryCredential:
    username: str
    password: str

    def __repr__(self) -> str:
        return f"RegistryCredential(username={self.username!r}, password=***)"


class RegistryClient:
    """Resolves tags to digests. Registries named in `insecure` are spoken to over plain HTTP."""

    def __init__(self, *, insecure: frozenset[str] = frozenset(), timeout: float = TIMEOUT) -> None:
        self._insecure = insecure
        self._timeout = timeout

    def base_url(self, registry: str) -> str:
        host = _DOCKER_HUB_API if registry == DEFAULT_REGISTRY else registry
        return f"{'http' if registry in self._insecure else 'https'}://{host}"

    async def resolve(self, image: ImageReference, credential: RegistryCredential | None = None) -> str:
        """The digest the image's tag (or digest) points at now."""
        url = f"{self.base_url(image.registry)}/v2/{image.repository}/manifests/{image.reference}"
        headers = {"Accept": ", ".join(MANIFEST_TYPES)}
        try:
            async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=True, trust_env=False) as http:
                response = await self._request(http, "HEAD", url, headers, image, credential)
                digest: str | None = response.headers.get("Docker-Content-Digest")
                if response.status_code == 200 and not digest:
                    # Some registries send the digest only with the body: it is the body's sha256.
                    response = await self._request(http, "GET", url, headers, image, credential)
                    digest = response.headers.get("Docker-Content-Digest") or (
                        "sha256:" + hashlib.sha256(response.content).hexdigest()
                    )
        except httpx.HTTPError as error:
            raise RegistryUnreachable(f"Cannot reach the registry {image.registry}: {_describe(error)}.") from None
        if response.status_code == 404:
            raise ImageNotFound(f"The image {image} does not exist in the registry {image.registry}.")
        if response.status_code in (401, 403):
            raise RegistryAuthError(_refused(image, credential))
        if response.status_code != 200 or not digest:
            raise RegistryError(
                f"The registry {image.registry} answered HTTP {response.status_code} for the image {image}."
            )
        if not _DIGEST.fullmatch(digest):
            raise RegistryError(f"The registry {image.registry} sent a malformed digest for the image {image}.")
        return digest

    async def _request(
        self,
        http: httpx.AsyncClient,
        method: str,
        url: str,
        headers: dict[str, str],
        image: ImageReference,
        credential: RegistryCredential | None,
    ) -> httpx.Response:
        response = await http.request(method, url, headers=headers)
        if response.status_code != 401:
            return response
        challenge = response.headers.get("WWW-Authenticate", "")
        scheme, _, params_text = challenge.partition(" ")
        if scheme.lower() == "basic":
            if credential is None:
                return response
            return await http.request(method, url, headers=headers, auth=(credential.username, credential.password))
        if scheme.lower() != "bearer":
            return response
        token = await self._token(http, dict(_CHALLENGE_PARAM.findall(params_text)), image, credential)
        if token is None:
            return response
        return await http.request(method, url, headers={**headers, "Authorization": f"Bearer {token}"})

    async def _token(
        self,
        http: httpx.AsyncClient,
        params: dict[str, str],
        image: ImageReference,
        credential: RegistryCredential | None,
    ) -> str | None:
        """The token server's answer (the distribution token spec): anonymous, or with the credential as Basic."""
        realm = params.get("realm")
        if not realm or not realm.startswith(("https://", "http://")):
            return None
        query = {"scope": params.get("scope") or f"repository:{image.repository}:pull"}
        if params.get("service"):
            query["service"] = params["service"]
        auth = (credential.username, credential.password) if credential is not None else None
        response = await http.get(realm, params=query, auth=auth)
        if response.status_code in (401, 403):
            raise RegistryAuthError(_refused(image, credential))
        if response.status_code != 200:
            raise RegistryError(f"The token server of {image.registry} answered HTTP {response.status_code}.")
        try:
            body = response.json()
        except ValueError:
            raise RegistryError(f"The token server of {image.registry} sent no JSON.") from None
        token: object = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"The token server of {image.registry} sent no token.")
        return token


def _refused(image: ImageReference, credential: RegistryCredential | None) -> str:
    if credential is None:
        return (
            f"The registry {image.registry} needs credentials to pull {image}: configure them for this registry "
            "(registry credentials, see docs/runtime.md)."
        )
    return f"The registry {image.registry} refused the configured credentials (user {credential.username!r})."


def _describe(error: httpx.HTTPError) -> str:
    if isinstance(error, httpx.ConnectError):
        return "connection failed"
    if isinstance(error, httpx.TimeoutException):
        return "timed out"
    return type(error).__name__
