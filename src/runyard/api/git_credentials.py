"""Git credentials (a Runyard extension), signed like the API (SigV4 with the root credentials):

    POST /runyard/git-credentials/add     {"Name", "UrlPrefix", "Username" + "Password" or "SshPrivateKey",
                                           "KnownHosts" (optional, SSH)}
    POST /runyard/git-credentials/list    {}
    POST /runyard/git-credentials/remove  {"Name"}

They let services read any git server over HTTPS or SSH without a connection. Answers are JSON and never carry a
password or a key; errors are `{"__type": <AWS error name>, "Message": ...}`. Secrets never appear in a log line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_ssh_private_key
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from runyard.api.sigv4 import AuthFailure, verify
from runyard.control.git_credentials import GitCredentials
from runyard.control.model.git_credential import GitCredential
from runyard.errors import InvalidInput, InvalidState, NotFound, RunyardError

log = logging.getLogger("runyard.api")
ADD_PATH = "/runyard/git-credentials/add"
LIST_PATH = "/runyard/git-credentials/list"
REMOVE_PATH = "/runyard/git-credentials/remove"
_STATUS: list[tuple[type[RunyardError], int, str]] = [
    (NotFound, 404, "ResourceNotFoundException"),
    (InvalidState, 409, "InvalidStateException"),
    (RunyardError, 400, "InvalidRequestException"),
]
Action = Callable[[dict[str, Any]], dict[str, Any]]


class GitCredentialEndpoints:
    def __init__(
        self, credentials: GitCredentials, *, secrets: Callable[[], Mapping[str, str]], account_id: str
    ) -> None:
        self._credentials = credentials
        self._secrets = secrets
        self._account_id = account_id

    def routes(self) -> list[BaseRoute]:
        return [
            Route(ADD_PATH, self.add, methods=["POST"]),
            Route(LIST_PATH, self.list, methods=["POST"]),
            Route(REMOVE_PATH, self.remove, methods=["POST"]),
        ]

    async def add(self, request: Request) -> Response:
        return await self._run(request, ("Name", "UrlPrefix"), self._add)

    async def list(self, request: Request) -> Response:
        return await self._run(request, (), self._list)

    async def remove(self, request: Request) -> Response:
        return await self._run(request, ("Name",), self._remove)

    async def _run(self, request: Request, required: tuple[str, ...], action: Action) -> Response:
        body = await request.body()
        try:
            verify(
                method=request.method,
                raw_path=request.scope.get("raw_path", b"/").decode("latin-1") or "/",
                query=request.scope.get("query_string", b"").decode("latin-1"),
                headers=request.headers,
                body=body,
                secrets=self._secrets(),
            )
        except AuthFailure as failure:
            return _error(403, failure.code, failure.message)
        try:
            document = json.loads(body or b"{}")
        except ValueError:
            return _error(400, "SerializationException", "The body is not JSON.")
        if not isinstance(document, dict):
            return _error(400, "SerializationException", "The body must be a JSON object.")
        missing = [name for name in required if not isinstance(document.get(name), str) or not document[name]]
        if missing:
            return _error(400, "InvalidRequestException", f"Missing or empty member: {missing[0]}.")
        wrong = [name for name, value in document.items() if value is not None and not isinstance(value, str)]
        if wrong:
            return _error(400, "SerializationException", f"Member {wrong[0]} must be a string.")
        try:
            result = await run_in_threadpool(action, document)
        except RunyardError as error:
            status, code = next((s, c) for cls, s, c in _STATUS if isinstance(error, cls))
            log.info("%s refused: %s", request.url.path, code)
            return _error(status, code, error.message)
        log.info("%s done", request.url.path)
        return JSONResponse(result)

    def _add(self, document: dict[str, Any]) -> dict[str, Any]:
        key = document.get("SshPrivateKey")
        if key is not None:
            check_private_key(key)
        credential = self._credentials.add(
            self._account_id,
            name=document["Name"],
            url_prefix=document["UrlPrefix"],
            username=document.get("Username"),
            password=document.get("Password"),
            ssh_key=key,
            known_hosts=document.get("KnownHosts"),
        )
        return {"GitCredential": summary(credential)}

    def _list(self, _: dict[str, Any]) -> dict[str, Any]:
        return {"GitCredentials": [summary(c) for c in self._credentials.find_all(self._account_id)]}

    def _remove(self, document: dict[str, Any]) -> dict[str, Any]:
        return {"GitCredential": summary(self._credentials.remove(self._account_id, document["Name"]))}


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


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"__type": code, "Message": message}, status_code=status, headers={"x-amzn-ErrorType": code})
