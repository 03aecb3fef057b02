"""Where an ImageIdentifier is pulled from on this machine, and with which registry credential.

- A private ECR identifier (`<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>`) cannot be reached from
  a self-hosted machine: like LocalStack, Runyard maps it to its own registry (or to the one configured in
  `ecr_registry`), keeping the repository path and tag. `podman push 127.0.0.1:9500/<repository>:<tag>` is how an
  image gets "into ECR" here.
- `public.ecr.aws/...` is pulled from there (the internet), or from `ecr_public_mirror` when one is configured.
- Any other OCI reference (with ImageRepositoryType ECR) is pulled as written: a self-hoster's own registry.

Credentials are configured per registry host in a TOML file (`registry_credentials`):

    [[registry]]
    host = "registry.example.com:5000"
    username = "deploy"
    password = "v1:..."            # sealed with `runyard images seal-password` (plain text is accepted too)
    access_role_arns = ["arn:aws:iam::000000000000:role/pull-app"]   # optional

A service's AccessRoleArn plays the part of the IAM role App Runner assumes to pull: an entry that lists
`access_role_arns` is used only by services whose AccessRoleArn is one of them; an entry without the list is used
by every service that pulls from that host.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from runyard.secrets import SecretBox, SecretsError
from runyard.source.registry import (
    ImageReference,
    ReferenceError,
    RegistryAuthError,
    RegistryCredential,
    parse_reference,
)

ECR_PUBLIC_HOST = "public.ecr.aws"
_ECR_PRIVATE = re.compile(r"(?P<account>[0-9]{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?")
SEALED_PREFIX = "v1:"


class RegistryConfigError(ValueError):
    """The registry credentials file is unreadable or malformed (raised at start-up)."""


def credential_context(host: str) -> str:
    """The SecretBox context a registry password is sealed with: it opens for that host only."""
    return f"registry-credential:{host}"


@dataclass(frozen=True, slots=True)
class RegistryAccess:
    credential: RegistryCredential
    access_role_arns: frozenset[str] = frozenset()  # empty: every service pulling from the host uses it


@dataclass(frozen=True, slots=True)
class ImageLocations:
    local_registry: str | None = None  # host:port of the registry Runyard runs (with the OCI runtime)
    ecr_registry: str = ""  # where private ECR identifiers go; empty: the local registry
    ecr_public_mirror: str = ""  # a registry that mirrors public.ecr.aws
    insecure: frozenset[str] = frozenset()  # registries spoken to over plain HTTP
    credentials: Mapping[str, RegistryAccess] = field(default_factory=dict)

    def locate(self, identifier: str, repository_type: str) -> ImageReference:
        """The reference to pull for an ImageIdentifier; raises ReferenceError with the reason."""
        image = parse_reference(identifier)
        ecr = _ECR_PRIVATE.fullmatch(image.registry)
        if ecr is not None:
            target = self.ecr_registry or self.local_registry
            if not target:
                raise ReferenceError(
                    f"{identifier} is a private ECR image: Runyard maps ECR to its own registry, which runs with "
                    "the OCI runtime (`--runtime oci`), or to the registry set in RUNYARD_ECR_REGISTRY."
                )
            return ImageReference(target, image.repository, image.tag, image.digest)
        if image.registry == ECR_PUBLIC_HOST:
            if repository_type != "ECR_PUBLIC":
                raise ReferenceError(f"{identifier} is in ECR Public: its ImageRepositoryType must be ECR_PUBLIC.")
            if self.ecr_public_mirror:
                return ImageReference(self.ecr_public_mirror, image.repository, image.tag, image.digest)
            return image
        if repository_type == "ECR_PUBLIC":
            raise ReferenceError(f"{identifier} is not in ECR Public (public.ecr.aws): use ImageRepositoryType ECR.")
        return image

    def is_insecure(self, registry: str) -> bool:
        return registry in self.insecure or registry == self.local_registry

    def credential(self, registry: str, access_role_arn: str | None) -> RegistryCredential | None:
        """The credential a service may pull from `registry` with; None: pull anonymously."""
        access = self.credentials.get(registry)
        if access is None:
            return None
        if access.access_role_arns and access_role_arn not in access.access_role_arns:
            raise RegistryAuthError(
                f"The registry credential for {registry} is not granted to the AccessRoleArn "
                f"{access_role_arn or '(none)'}: add it to that registry's access_role_arns."
            )
        return access.credential


def load_registry_credentials(path: Path, box: SecretBox) -> dict[str, RegistryAccess]:
    """Read the operator's credentials file; sealed passwords are opened with the installation's key."""
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise RegistryConfigError(f"cannot read the registry credentials file {path}: {error}") from None
    entries = document.get("registry", [])
    unknown = set(document) - {"registry"}
    if unknown or not isinstance(entries, list):
        raise RegistryConfigError(f"{path}: expected only [[registry]] tables, found {sorted(unknown) or entries!r}")
    found: dict[str, RegistryAccess] = {}
    for number, entry in enumerate(entries, 1):
        where = f"{path}: [[registry]] #{number}"
        if not isinstance(entry, dict):
            raise RegistryConfigError(f"{where} is not a table")
        extra = set(entry) - {"host", "username", "password", "access_role_arns"}
        if extra:
            raise RegistryConfigError(f"{where}: unknown keys {sorted(extra)}")
        host, username, password = entry.get("host"), entry.get("username"), entry.get("password")
        if not all(isinstance(value, str) and value for value in (host, username, password)):
            raise RegistryConfigError(f"{where} needs host, username and password (strings)")
        assert isinstance(host, str) and isinstance(username, str) and isinstance(password, str)
        roles = entry.get("access_role_arns", [])
        if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
            raise RegistryConfigError(f"{where}: access_role_arns must be a list of role ARNs")
        if host in found:
            raise RegistryConfigError(f"{where}: {host} is configured twice")
        if password.startswith(SEALED_PREFIX):
            try:
                password = box.open(password, context=credential_context(host))
            except SecretsError:
                raise RegistryConfigError(
                    f"{where}: the sealed password does not open with this installation's key for host {host}"
                ) from None
        found[host] = RegistryAccess(RegistryCredential(username, password), frozenset(roles))
    return found


def parse_registry_list(text: str) -> frozenset[str]:
    """`RUNYARD_INSECURE_REGISTRIES`: host[:port] names separated by commas or spaces."""
    return frozenset(part for part in re.split(r"[,\s]+", text.strip()) if part)
