"""Git credentials (a Runyard extension for self-hosters): any git server over HTTPS or SSH, without a connection.

A credential serves every repository whose RepositoryUrl starts with its URL prefix, at a boundary (`/`, or the
`:` of an scp-like address), so `https://git.example.com` never matches `https://git.example.com.evil.net/...`;
the longest matching prefix wins. A service with a ConnectionArn reads through its connection instead. The
password or private key is sealed at rest and opened only for one git command.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable
from urllib.parse import urlsplit

from runyard.control.context import Deps
from runyard.control.model.git_credential import GitCredential, GitCredentialType, OpenedGitCredential
from runyard.control.model.service import Service
from runyard.control.ports import Sealer
from runyard.errors import InUse, InvalidInput, NotFound, NotSupported

log = logging.getLogger(__name__)
ADD_HINT = "runyard git-credentials add NAME --url-prefix PREFIX --ssh-key-file KEY"
NOT_WIRED = "Git credentials need the secrets key; this Runyard was built without."
MAX_SECRET = 64 * 1024  # a password, or an SSH private key (an RSA-16384 key is about 12 KiB)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SCP_PREFIX = re.compile(r"^(?:[^@/:\s]+@)?[^@/:\s-][^@/:\s]*(?P<colon>:\S*)?$")
_SSH_SCHEMES = ("ssh", "git+ssh", "ssh+git")


def prefix_type(prefix: str) -> GitCredentialType:
    """HTTPS for an http(s):// prefix, SSH for ssh:// or scp-like `[user@]host[:path]`; InvalidInput otherwise."""
    if not prefix or any(ord(char) <= 32 or ord(char) == 127 for char in prefix):
        raise InvalidInput("The URL prefix is empty or contains spaces or control characters.")
    if prefix.startswith("-"):
        raise InvalidInput(f"The URL prefix {prefix!r} is not a URL.")
    if "://" not in prefix:
        if _SCP_PREFIX.match(prefix):
            return "SSH"
        raise InvalidInput(
            f"The URL prefix {prefix!r} is not an https://, http:// or ssh:// URL, nor a `user@host:` address."
        )
    try:
        parts = urlsplit(prefix)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise InvalidInput(f"The URL prefix {prefix!r} is not a valid URL.") from None
    scheme = parts.scheme.lower()
    if not parts.hostname:
        raise InvalidInput(f"The URL prefix {prefix!r} has no host name.")
    if scheme in ("https", "http"):
        if "@" in parts.netloc:
            raise InvalidInput("The URL prefix must not contain a user name or password; give them as options.")
        return "HTTPS"
    if scheme in _SSH_SCHEMES:
        if parts.password is not None:
            raise InvalidInput("The URL prefix must not contain a password.")
        return "SSH"
    raise InvalidInput(f"The URL prefix {prefix!r} must start with https://, http:// or ssh://.")


def prefix_matches(prefix: str, url: str) -> bool:
    """`url` starts with `prefix` and the prefix ends at a boundary of the address."""
    if not url.startswith(prefix):
        return False
    if len(url) == len(prefix) or prefix.endswith(("/", ":")):
        return True
    scp_host_only = "://" not in prefix and ":" not in prefix  # `git@host` is followed by `:path`
    return url[len(prefix)] == (":" if scp_host_only else "/")


def best_match(credentials: list[GitCredential], url: str) -> GitCredential | None:
    """The credential with the longest prefix that matches `url`."""
    url = url.strip()
    matching = [c for c in credentials if prefix_matches(c.url_prefix, url)]
    return max(matching, key=lambda c: len(c.url_prefix), default=None)


class GitCredentials:
    def __init__(
        self, deps: Deps, sealer: Sealer | None, *, forget_host_keys: Callable[[str], None] = lambda _: None
    ) -> None:
        self._deps = deps
        self._sealer = sealer
        self._forget_host_keys = forget_host_keys  # a replaced or removed credential's learned known_hosts

    @property
    def sealer(self) -> Sealer:
        if self._sealer is None:
            raise NotSupported(NOT_WIRED)
        return self._sealer

    def add(
        self,
        account: str,
        *,
        name: str,
        url_prefix: str,
        username: str | None = None,
        password: str | None = None,
        ssh_key: str | None = None,
        known_hosts: str | None = None,
    ) -> GitCredential:
        """Keep a credential sealed; adding an existing NAME replaces it (rotation)."""
        if not _NAME.match(name):
            raise InvalidInput(f"The name {name!r} must be 1 to 64 letters, digits, '.', '_' or '-'.")
        url_prefix = url_prefix.strip()
        credential_type = prefix_type(url_prefix)
        secret = _secret(credential_type, url_prefix, username, password, ssh_key, known_hosts)
        deps = self._deps
        credential_id = deps.ids.hex32()
        credential = GitCredential(
            account=account,
            name=name,
            credential_id=credential_id,
            url_prefix=url_prefix,
            credential_type=credential_type,
            sealed_secret="",
            created_at=deps.clock.now(),
            username=username if credential_type == "HTTPS" else None,
            known_hosts=known_hosts.strip() + "\n" if known_hosts and known_hosts.strip() else None,
        )
        credential = dataclasses.replace(credential, sealed_secret=self.sealer.seal(secret, context=credential.context))
        with deps.store.write() as uow:
            repo = uow.repo(GitCredential)
            previous = repo.get(credential.key)
            clash = [c.name for c in repo.find(account=account) if c.url_prefix == url_prefix and c.name != name]
            if clash:
                raise InvalidInput(
                    f"Git credential {clash[0]} already has the URL prefix {url_prefix}; remove it first, "
                    f"or add {clash[0]} again to replace it."
                )
            if previous is None:
                repo.add(credential)
            else:
                repo.save(credential)
        if previous is not None:
            self._forget_host_keys(previous.credential_id)
        log.info("git credential %s (%s) kept for %s", name, credential_type, url_prefix)
        return credential

    def find_all(self, account: str) -> list[GitCredential]:
        with self._deps.store.read() as uow:
            return uow.repo(GitCredential).find(account=account)

    def remove(self, account: str, name: str) -> GitCredential:
        """Forget a credential; refused while a live service reads its repository through it."""
        with self._deps.store.write() as uow:
            repo = uow.repo(GitCredential)
            credential = repo.get(f"{account}/{name}")
            if credential is None:
                raise NotFound(f"Git credential not found: {name}")
            everything = repo.find(account=account)
            users = [
                s.name
                for s in uow.repo(Service).find(account=account)
                if s.live
                and s.connection_arn is None
                and s.spec.source.code is not None
                and best_match(everything, s.spec.source.code.repository_url) == credential
            ]
            if users:
                raise InUse(
                    f"Git credential {name} is used by services {', '.join(users)}; delete them first, "
                    f"or add {name} again to replace its secret."
                )
            repo.remove(credential.key)
        self._forget_host_keys(credential.credential_id)
        log.info("git credential %s removed", name)
        return credential

    def matching(self, account: str, url: str) -> GitCredential | None:
        """The credential that serves `url` (no secret is opened)."""
        return best_match(self.find_all(account), url)

    def open(self, account: str, url: str) -> OpenedGitCredential | None:
        """The credential that serves `url`, with its secret, for one git command; None when none matches."""
        credential = self.matching(account, url)
        if credential is None:
            return None
        return OpenedGitCredential(
            credential_id=credential.credential_id,
            credential_type=credential.credential_type,
            secret=self.sealer.open(credential.sealed_secret, context=credential.context),
            username=credential.username,
            known_hosts=credential.known_hosts,
        )


def _secret(
    credential_type: GitCredentialType,
    url_prefix: str,
    username: str | None,
    password: str | None,
    ssh_key: str | None,
    known_hosts: str | None,
) -> str:
    """The secret to seal, after checking that the options fit the prefix's transport."""
    if credential_type == "HTTPS":
        if ssh_key is not None or known_hosts is not None:
            raise InvalidInput(f"{url_prefix} is an HTTP(S) prefix: give a user name and password, not an SSH key.")
        if not username or not password:
            raise InvalidInput("An HTTP(S) git credential needs a user name and a password (or access token).")
        if any(ord(char) < 32 or ord(char) == 127 for char in username + password):
            raise InvalidInput("The user name and password must not contain control characters (a line break).")
        secret = password
    else:
        if username is not None or password is not None:
            raise InvalidInput(f"{url_prefix} is an SSH prefix: give an SSH private key, not a user name and password.")
        if not ssh_key or not ssh_key.strip():
            raise InvalidInput("An SSH git credential needs a private key.")
        secret = ssh_key.strip() + "\n"
    if len(secret) > MAX_SECRET:
        raise InvalidInput(f"The secret is longer than {MAX_SECRET} characters.")
    return secret
