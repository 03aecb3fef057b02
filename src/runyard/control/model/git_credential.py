"""A git credential (a Runyard extension): a user name and password, or an SSH key, for every repository whose
URL starts with its prefix. Account-wide: a git server is not a region's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

GitCredentialType = Literal["HTTPS", "SSH"]
SEALED = "SEALED"
ALL_REGIONS = ""  # the store's region column: a git credential serves services in every region


@dataclass(frozen=True, slots=True)
class GitCredential:
    KIND: ClassVar[str] = "git.credential"
    account: str
    name: str
    credential_id: str  # new on every add: the sealing context, and the name of its learned known_hosts
    url_prefix: str
    credential_type: GitCredentialType
    sealed_secret: str  # SecretBox output (the password or the private key), bound to `context`; never the secret
    created_at: float
    username: str | None = None  # HTTPS only; not a secret, `list` shows it
    known_hosts: str | None = None  # SSH only: pinned host keys (public), else the first key seen is kept
    region: str = ALL_REGIONS
    status: str = SEALED

    @property
    def key(self) -> str:
        return f"{self.account}/{self.name}"

    @property
    def context(self) -> str:
        return f"git-credential:{self.key}:{self.credential_id}"


@dataclass(frozen=True, slots=True)
class OpenedGitCredential:
    """A credential with its secret, opened for one git command: never stored, logged or returned by the API."""

    credential_id: str
    credential_type: GitCredentialType
    secret: str
    username: str | None
    known_hosts: str | None

    def __repr__(self) -> str:
        return f"OpenedGitCredential({self.credential_id!r}, {self.credential_type!r}, secret='***')"
