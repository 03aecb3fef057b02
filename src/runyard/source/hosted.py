"""Git repositories that Runyard hosts itself (a Runyard extension, Heroku/piku style): `git push` to
`http://<runyard>/git/<name>.git` stores the code here, and services built from it deploy on push.

Smart HTTP is served by git's own `git http-backend` (CGI). A repository is created by its first push.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from runyard.source.git import SourceError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_SERVICES = ("info/refs", "git-upload-pack", "git-receive-pack")
_PASSTHROUGH_ENV = ("PATH", "LANG", "LC_ALL")


@dataclass(frozen=True, slots=True)
class CgiAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


class HostedRepositories:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str) -> Path:
        if not NAME.fullmatch(name) or name.endswith(".git") or ".." in name:
            raise SourceError(f"{name!r} is not a repository name (1 to 100 of A-Z a-z 0-9 . _ -)")
        return self.root / f"{name}.git"

    def url_for_services(self, name: str) -> str:
        """The RepositoryUrl a service uses to build from this repository."""
        return self.path(name).resolve().as_uri()

    def ensure(self, name: str) -> Path:
        path = self.path(name)
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            _git("init", "-q", "--bare", "-b", "main", str(path))
            _git("--git-dir", str(path), "config", "http.receivepack", "true")
        return path

    def branches(self, name: str) -> dict[str, str]:
        path = self.path(name)
        if not path.exists():
            return {}
        listing = _git("--git-dir", str(path), "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads")
        return dict(line.split(" ", 1) for line in listing.splitlines() if line)

    async def serve(
        self, *, name: str, service: str, method: str, query: str, headers: Mapping[str, str], body: bytes, user: str
    ) -> CgiAnswer:
        """One smart-HTTP request through `git http-backend`."""
        if service not in _SERVICES:
            return CgiAnswer(404, {"Content-Type": "text/plain"}, b"not found\n")
        path = self.ensure(name) if service != "git-upload-pack" else self.path(name)
        if not path.exists():
            return CgiAnswer(404, {"Content-Type": "text/plain"}, b"no such repository\n")
        env = {key: os.environ[key] for key in _PASSTHROUGH_ENV if key in os.environ}
        env.update(
            GIT_PROJECT_ROOT=str(self.root),
            GIT_HTTP_EXPORT_ALL="1",
            GIT_CONFIG_NOSYSTEM="1",
            GIT_CONFIG_GLOBAL=os.devnull,
            PATH_INFO=f"/{name}.git/{service}",
            REQUEST_METHOD=method,
            QUERY_STRING=query,
            CONTENT_TYPE=headers.get("content-type", ""),
            CONTENT_LENGTH=str(len(body)),
            REMOTE_USER=user,
            REMOTE_ADDR="127.0.0.1",
        )
        for header in ("content-encoding", "git-protocol"):
            if header in headers:
                env["HTTP_" + header.upper().replace("-", "_")] = headers[header]
        process = await asyncio.create_subprocess_exec(
            "git",
            "http-backend",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        out, _ = await process.communicate(body)
        head, _, payload = out.partition(b"\r\n\r\n")
        status, answer_headers = 200, {}
        for line in head.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.strip().split()[0])
            elif key:
                answer_headers[key] = value.strip()
        return CgiAnswer(status, answer_headers, payload)


def _git(*args: str) -> str:
    env = {key: os.environ[key] for key in _PASSTHROUGH_ENV if key in os.environ}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
    done = subprocess.run(["git", *args], capture_output=True, env=env, check=False, timeout=60)
    if done.returncode != 0:
        raise SourceError(f"git {args[0]} failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout.decode()
