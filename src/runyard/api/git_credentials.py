"""Git credentials (a Runyard extension), signed like the API (SigV4 with the root credentials):

    POST /runyard/git-credentials/add     {"Name", "UrlPrefix", "Username" + "Password" or "SshPrivateKey",
                                           "KnownHosts" (optional, SSH)}
    POST /runyard/git-credentials/list    {}
    POST /runyard/git-credentials/remove  {"Name"}

They let services read any git server over HTTPS or SSH without a connection. Answers are JSON and never carry a
password or a key; errors are `{"__type": <AWS error name>, "Message": ...}`. Secrets never appear in a log line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_ssh_private_key
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from runyard.api.extensions import SignedJsonEndpoint
from runyard.control.context import Scope
from runyard.control.git_credentials import GitCredentials
from runyard.control.model.git_credential import GitCredential
from runyard.errors import InvalidInput

ADD_PATH = "/runyard/git-credentials/add"
LIST_PATH = "/runyard/git-credentials/list"
REMOVE_PATH = "/runyard/git-credentials/remove"


class GitCredentialEndpoints:
    def __init__(
        self, credentials: GitCredentials, *, secrets: Callable[[], Mapping[str, str]], account_id: str
    ) -> None:
        self._credentials = credentials
        self._endpoint = SignedJsonEndpoint(secrets=secrets, account_id=account_id)

    def routes(self) -> list[BaseRoute]:
        return [
            Route(ADD_PATH, self.add, methods=["POST"]),
            Route(LIST_PATH, self.list, methods=["POST"]),
            Route(REMOVE_PATH, self.remove, methods=["POST"]),
        ]

    async def add(self, request: Request) -> Response:
        return await self._endpoint.run(request, ("Name", "UrlPrefix"), self._add)

    async def list(self, request: Request) -> Response:
        return await self._endpoint.run(request, (), self._list)

    async def remove(self, request: Request) -> Response:
        return await self._endpoint.run(request, ("Name",), self._remove)

    def _add(self, scope: Scope, document: dict[str, Any]) -> dict[str, Any]:
        key = document.get("SshPrivateKey")
        if key is not None:
            check_private_key(key)
        credential = self._credentials.add(
            scope.account,
            name=document["Name"],
            url_prefix=document["UrlPrefix"],
            username=document.get("Username"),
            password=document.get("Password"),
            ssh_key=key,
            known_hosts=document.get("KnownHosts"),
        )
        return {"GitCredential": summary(credential)}

    def _list(self, scope: Scope, _: dict[str, Any]) -> dict[str, Any]:
        # Account-wide (every region): a git server is not a regional resource.
        return {"GitCredentials": [summary(c) for c in self._credentials.find_all(scope.account)]}

    def _remove(self, scope: Scope, document: dict[str, Any]) -> dict[str, Any]:
        return {"GitCredential": summary(self._credentials.remove(scope.account, document["Name"]))}


def summary(credential: GitCredential) -> dict[str, Any]:
    """What the API shows of a credential: never the secret."""
    shown: dict[str, Any] = {
        "Name": credential.name,
        "UrlPrefix": credential.url_prefix,
        "Type": credential.credential_type,
        "CreatedAt": credential.created_at,
    }
    if credential.credential_type == "HTTPS":
        shown["Username"] = credential.username
    else:
        shown["HostKeyChecking"] = "PINNED" if credential.known_hosts else "ACCEPT_NEW"
    return shown


def check_private_key(text: str) -> None:
    """An unencrypted private key (OpenSSH or PEM): git runs without prompts, so a passphrase cannot be typed."""
    data = text.strip().encode() + b"\n"
    try:
        if b"-----BEGIN OPENSSH PRIVATE KEY-----" in data:
            load_ssh_private_key(data, password=None)
        else:
            load_pem_private_key(data, password=None)
    except TypeError:
        raise InvalidInput(
            "The SSH private key has a passphrase; Runyard runs git without prompts: use a key without one "
            "(a deploy key)."
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidInput("The SSH private key file does not hold a private key (OpenSSH or PEM format).") from None
