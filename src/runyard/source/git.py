"""Reading git repositories with the `git` CLI: classify a URL, resolve a branch, fetch one commit.

Every git call runs in a throwaway environment (empty HOME, no system or global config, no prompts, no
inherited GIT_* variables) with a timeout, so the host's git setup can neither leak credentials into
a fetch nor hang a deployment. A private repository's credentials (from a connection or a git credential)
reach git only through a credential helper that reads them from git's own environment: never in a URL, an
argument, a file or a log line. An SSH key is written, mode 0600, into a private temporary directory that
exists only while one git command runs, and reaches ssh through GIT_SSH_COMMAND.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Literal
from urllib.parse import unquote, urlsplit

from runyard.errors import RunyardError

DEFAULT_TIMEOUT = 300.0
Progress = Callable[[str], None]
LocationKind = Literal["local", "file", "https", "http", "ssh"]

# Applied to every call: the throwaway repository never needs background maintenance.
_BASE_CONFIG: tuple[str, ...] = ("gc.auto=0", "maintenance.auto=false")
# Only what git needs to reach a remote (proxies, CA bundles); everything else is set explicitly.
_PROXIES = ("http_proxy", "https_proxy", "no_proxy", "all_proxy")
_PASSTHROUGH_ENV = ("PATH", "SSL_CERT_FILE", "SSL_CERT_DIR", *_PROXIES, *(name.upper() for name in _PROXIES))
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s]*@")
_SCP_LIKE = re.compile(r"^[^/:]+:")
# git's scp-like syntax, `[user@]host:path`; what git would take as an option (a leading dash) is not a host.
_SCP_URL = re.compile(r"^(?:[^@/:\s]+@)?[^@/:\s-][^@/:\s]*:[^\s]+$")
_SSH_SCHEMES = ("ssh", "git+ssh", "ssh+git")
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_CONNECTION_HINT = "private repositories need a connection (AuthenticationConfiguration.ConnectionArn)"
_SUPPORTED = "use an https:// URL, an SSH URL (ssh:// or user@host:path), a file:// URL or an absolute local path"


class SourceError(RunyardError):
    """The source cannot be read as asked; the message says why and never contains a credential."""


class AuthenticationFailed(SourceError):
    """The server refused the credentials (or asked for some when none were given)."""


@dataclass(frozen=True, slots=True)
class GitCredentials:
    """User name and password (a provider token) for git over HTTP(S)."""

    username: str
    password: str

    def __repr__(self) -> str:
        return f"GitCredentials(username={self.username!r}, password='***')"


@dataclass(frozen=True, slots=True)
class SshIdentity:
    """A private key for git over SSH, and how the server's host key is checked.

    `known_hosts` (the text of a known_hosts file) pins the host keys: StrictHostKeyChecking=yes. Without it the
    first key seen is trusted and kept in `learned_hosts` (StrictHostKeyChecking=accept-new), so a later change
    of the server's key is refused.
    """

    private_key: str
    learned_hosts: Path
    known_hosts: str | None = None

    def __repr__(self) -> str:
        return f"SshIdentity(private_key='***', learned_hosts={str(self.learned_hosts)!r}, pinned={self.pinned})"

    @property
    def pinned(self) -> bool:
        return self.known_hosts is not None


Credentials = GitCredentials | SshIdentity


# The helper answers `get` from variables only git and its children see; `credential.helper=` first
# drops any helper configured elsewhere. Config from the environment keeps it out of argv too.
_HELPER = (
    '!f() { test "$1" = get && '
    'printf "username=%s\\npassword=%s\\n" "$RUNYARD_GIT_USERNAME" "$RUNYARD_GIT_PASSWORD"; }; f'
)
_AUTH_FAILURES = (
    "Authentication failed",
    "could not read Username",
    "could not read Password",
    "HTTP 401",
    "HTTP 403",
    "Permission denied (publickey",
)
_HOST_KEY_FAILURES = ("Host key verification failed", "REMOTE HOST IDENTIFICATION HAS CHANGED")
# ssh says why it could not connect without git's prefixes ("user@host: Permission denied (publickey)."): kept too.
_SSH_FAILURES = (*_HOST_KEY_FAILURES, "Permission denied (publickey")


class _GitFailed(SourceError):
    """git exited non-zero; `detail` is its redacted error output, for the caller to put in context."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True, slots=True)
class RepositoryLocation:
    """A repository Runyard can read without a connection. `url` is what git is given and is safe to show."""

    url: str
    kind: LocationKind

    @property
    def is_local(self) -> bool:
        return self.kind in ("local", "file")


@dataclass(frozen=True, slots=True)
class FetchedSource:
    commit_sha: str
    message: str  # first line of the commit message
    author: str  # "Name <email>"
    app_directory: Path


def redact(text: str) -> str:
    """Hide the user-info part (user, password or token) of every URL in `text`."""
    return _USERINFO.sub(r"\g<scheme>***@", text)


def classify_repository_url(url: str) -> RepositoryLocation:
    url = url.strip()
    if not url:
        raise SourceError(f"the repository URL is empty; {_SUPPORTED}")
    if any(ord(char) < 32 or ord(char) == 127 for char in url):
        raise SourceError("the repository URL contains control characters")
    if "://" not in url:
        if url.startswith("/"):
            return RepositoryLocation(_existing_directory(url, url), "local")
        if _SCP_URL.match(url) and not url.startswith("-"):
            return RepositoryLocation(url, "ssh")
        if _SCP_LIKE.match(url):
            raise SourceError(f"{url} is not a valid SSH URL (`user@host:path`)")
        raise SourceError(f"{url} is a relative path; {_SUPPORTED}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise SourceError(f"{redact(url)} is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme in _SSH_SCHEMES:
        # The user name is part of an SSH address (git@, root@); a password in it is a credential.
        if parts.password is not None or not parts.hostname or url.split("://", 1)[1].startswith("-"):
            problem = "contains a password" if parts.password is not None else "has no valid host name"
            raise SourceError(f"{redact(url)} {problem}; an SSH key is given with `runyard git-credentials add`")
        return RepositoryLocation(url, "ssh")
    if "@" in parts.netloc:
        raise SourceError(
            f"{redact(url)} contains credentials; Runyard never keeps credentials in URLs: "
            f"remove them for a public repository ({_CONNECTION_HINT})"
        )
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise SourceError(f"{url} names a remote host; a file:// URL must point at this machine")
        _existing_directory(unquote(parts.path), url)
        return RepositoryLocation(url, "file")
    if scheme in ("https", "http"):
        if not parts.hostname:
            raise SourceError(f"{url} has no host name")
        return RepositoryLocation(url, "https" if scheme == "https" else "http")
    raise SourceError(f"unsupported URL scheme '{scheme}' in {redact(url)}; {_SUPPORTED}")


def _existing_directory(path: str, shown: str) -> str:
    if not Path(path).exists():
        raise SourceError(f"local repository {shown} does not exist")
    if not Path(path).is_dir():
        raise SourceError(f"local repository {shown} is not a directory")
    return path


def resolve_branch(
    location: RepositoryLocation,
    branch: str,
    *,
    credentials: Credentials | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> str:
    """The commit SHA that `branch` points at, read with `git ls-remote` (local and remote alike)."""
    ref = f"refs/heads/{branch}"
    with _workspace() as home:
        git = _Git(home, timeout, _location_config(location), credentials)
        try:
            git("check-ref-format", ref)
        except _GitFailed:
            raise SourceError(f"'{branch}' is not a valid branch name") from None
        try:
            listing = git("ls-remote", "--", location.url, ref)
        except _GitFailed as error:
            raise _read_error(location, error) from None
    for line in listing.splitlines():
        sha, _, name = line.partition("\t")
        if name == ref:
            return sha
    raise SourceError(f"branch '{branch}' not found in {location.url}")


def fetch(
    location: RepositoryLocation,
    commit_sha: str,
    dest: Path,
    *,
    source_directory: str | None,
    on_progress: Progress | None = None,
    credentials: Credentials | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> FetchedSource:
    """Check out exactly `commit_sha` into the empty directory `dest`; return where the application is.

    The git directory lives in a temporary directory next to HOME and is deleted afterwards, so `dest`
    holds the commit's files and nothing else: the same commit always yields the same tree, which keeps
    the build artifact reproducible. On failure `dest` is left empty.
    """
    sha = commit_sha.strip().lower()
    if not _SHA.fullmatch(sha):
        raise SourceError(f"'{commit_sha}' is not a full commit SHA")
    relative = _relative_source_directory(source_directory)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise SourceError(f"the fetch destination {dest} must be an empty directory")
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with _workspace() as home:
            git_dir = home.parent / "repo.git"
            git = _Git(home, timeout, _location_config(location), credentials)
            git("init", "-q", "--bare", str(git_dir))
            _fetch_commit(git, f"--git-dir={git_dir}", location, sha, on_progress)
            checkout = (f"--git-dir={git_dir}", f"--work-tree={dest}", "checkout", "-q", "--progress", "--detach")
            git(*checkout, sha, on_progress=on_progress)
            details = git(f"--git-dir={git_dir}", "show", "-s", "--format=%an <%ae>%x00%B", sha)
        app_directory = _app_directory(dest, relative, sha)
    except BaseException:
        for child in dest.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        raise
    author, _, body = details.partition("\0")
    message = body.strip().splitlines()[0] if body.strip() else ""
    return FetchedSource(sha, message, author, app_directory)


def _fetch_commit(
    git: _Git, git_dir: str, location: RepositoryLocation, sha: str, on_progress: Progress | None
) -> None:
    fetch = (git_dir, "fetch", "-q", "--progress", "--no-tags")
    try:
        git(*fetch, "--depth", "1", "--", location.url, sha, on_progress=on_progress)
    except _GitFailed:
        # Servers speaking protocol v0 refuse a SHA that is not a branch or tag tip unless
        # uploadpack.allowReachableSHA1InWant is set: fetch every branch and tag instead.
        if on_progress:
            on_progress(f"fetching commit {sha} directly failed; fetching all branches and tags")
        try:
            refspecs = ("+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*")
            git(*fetch, "--", location.url, *refspecs, on_progress=on_progress)
        except _GitFailed as error:
            raise _read_error(location, error) from None
    try:
        kind = git(git_dir, "cat-file", "-t", sha).strip()
    except _GitFailed:
        kind = ""
    if kind != "commit":
        raise SourceError(f"commit {sha} not found in {location.url}")


def _read_error(location: RepositoryLocation, error: _GitFailed) -> SourceError:
    if any(marker in error.detail for marker in _HOST_KEY_FAILURES):
        return SourceError(
            f"cannot read repository {location.url}: the server's SSH host key is not the one known for it "
            "(Host key verification failed)"
        )
    if any(marker in error.detail for marker in _AUTH_FAILURES):
        return AuthenticationFailed(f"cannot read repository {location.url}: the server refused the credentials")
    return SourceError(f"cannot read repository {location.url}: {error.detail}")


def _relative_source_directory(source_directory: str | None) -> PurePosixPath:
    """SourceDirectory relative to the repository root; `..` is refused before anything is fetched."""
    relative = PurePosixPath((source_directory or "").strip().lstrip("/"))
    if ".." in relative.parts:
        raise SourceError(f"source directory '{source_directory}' must stay inside the repository")
    return relative


def _app_directory(dest: Path, relative: PurePosixPath, sha: str) -> Path:
    root = dest.resolve()
    app = (root / relative).resolve()  # resolves symlinks: a link pointing outside is an escape too
    if not app.is_relative_to(root):
        raise SourceError(f"source directory '{relative}' must stay inside the repository")
    if not app.is_dir():
        raise SourceError(f"source directory '{relative}' does not exist in commit {sha}")
    return dest / relative


def _location_config(location: RepositoryLocation) -> tuple[str, ...]:
    # Local paths and file:// use git's "file" transport; allow it explicitly for those only.
    return ("protocol.file.allow=always",) if location.is_local else ()


@contextmanager
def _workspace() -> Iterator[Path]:
    """A private temporary directory; yields its empty `home` subdirectory."""
    with tempfile.TemporaryDirectory(prefix="runyard-git-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        yield home


@dataclass(frozen=True, slots=True)
class _Git:
    home: Path
    timeout: float
    config: tuple[str, ...]
    credentials: Credentials | None = None

    def __call__(self, *args: str, on_progress: Progress | None = None) -> str:
        """Run git with `args`; return stdout. Error output is streamed line by line to `on_progress`."""
        with _ssh_environment(self.credentials) as ssh_env:
            return self._run(args, {**self._environment(), **ssh_env}, on_progress)

    def _run(self, args: tuple[str, ...], env: dict[str, str], on_progress: Progress | None) -> str:
        config = [arg for item in (*_BASE_CONFIG, *self.config) for arg in ("-c", item)]
        try:
            process = subprocess.Popen(
                ["git", *config, *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,  # so a timeout can end git's helpers (remote-https, upload-pack) too
            )
        except FileNotFoundError:
            raise SourceError("the git command is not installed (run `make deps`)") from None
        assert process.stdout is not None and process.stderr is not None
        out: IO[bytes] = process.stdout
        stdout: list[bytes] = []
        lines: list[str] = []
        readers = [
            threading.Thread(target=lambda: stdout.append(out.read())),
            threading.Thread(target=_read_lines, args=(process.stderr, lines, on_progress)),
        ]
        for reader in readers:
            reader.start()
        try:
            code = process.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise SourceError(f"git {_subcommand(args)} timed out after {self.timeout:g} s") from None
        finally:
            for reader in readers:
                reader.join()
            process.stdout.close()
            process.stderr.close()
        if code != 0:
            errors = [line for line in lines if _is_error(line)] or lines[-3:]
            detail = "; ".join(errors) or f"exit status {code}"
            raise _GitFailed(f"git {_subcommand(args)} failed: {detail}", detail)
        return b"".join(stdout).decode("utf-8", "replace")

    def _environment(self) -> dict[str, str]:
        env = {name: os.environ[name] for name in _PASSTHROUGH_ENV if name in os.environ}
        env.setdefault("PATH", os.defpath)
        env.update(
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            GIT_CONFIG_NOSYSTEM="1",
            GIT_CONFIG_GLOBAL=os.devnull,
            GIT_TERMINAL_PROMPT="0",
            LC_ALL="C",  # stable, parseable messages
        )
        if isinstance(self.credentials, GitCredentials):
            env.update(
                GIT_CONFIG_COUNT="2",
                GIT_CONFIG_KEY_0="credential.helper",
                GIT_CONFIG_VALUE_0="",
                GIT_CONFIG_KEY_1="credential.helper",
                GIT_CONFIG_VALUE_1=_HELPER,
                RUNYARD_GIT_USERNAME=self.credentials.username,
                RUNYARD_GIT_PASSWORD=self.credentials.password,
            )
        return env


def ssh_command(key_file: Path, known_hosts_file: Path, *, pinned: bool) -> str:
    """GIT_SSH_COMMAND for one identity: that key only, no prompts, host keys checked against `known_hosts_file`.

    `-F /dev/null` keeps the host's ssh configuration out, as git's own configuration is kept out; the global
    known_hosts too, so only the credential's host keys count.
    """
    options = {
        "IdentitiesOnly": "yes",
        "BatchMode": "yes",
        "UserKnownHostsFile": str(known_hosts_file),
        "GlobalKnownHostsFile": os.devnull,
        "StrictHostKeyChecking": "yes" if pinned else "accept-new",
        "ConnectTimeout": "30",
    }
    words = ["ssh", "-F", os.devnull, "-i", str(key_file)]
    for name, value in options.items():
        words += ["-o", f"{name}={value}"]
    return " ".join(shlex.quote(word) for word in words)  # git runs it through the shell


@contextmanager
def _ssh_environment(credentials: Credentials | None) -> Iterator[dict[str, str]]:
    """GIT_SSH_COMMAND for an SshIdentity, with its key in a private directory removed when the command is done."""
    if not isinstance(credentials, SshIdentity):
        yield {}
        return
    with tempfile.TemporaryDirectory(prefix="runyard-ssh-") as tmp:  # mode 0700
        key_file = Path(tmp) / "key"
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(credentials.private_key.strip() + "\n")  # ssh refuses a key without its final newline
        if credentials.known_hosts is not None:
            known_hosts = Path(tmp) / "known_hosts"
            known_hosts.write_text(credentials.known_hosts.strip() + "\n")
        else:
            known_hosts = credentials.learned_hosts
            known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        command = ssh_command(key_file, known_hosts, pinned=credentials.pinned)
        yield {"GIT_SSH_COMMAND": command, "GIT_SSH_VARIANT": "ssh"}


def _read_lines(stream: IO[bytes], lines: list[str], on_progress: Progress | None) -> None:
    """Split git's error output on newlines and the carriage returns of its progress meters."""
    pending = b""
    while chunk := os.read(stream.fileno(), 65536):
        *complete, pending = re.split(rb"[\r\n]", pending + chunk)
        for raw in complete:
            _emit(raw, lines, on_progress)
    _emit(pending, lines, on_progress)


def _emit(raw: bytes, lines: list[str], on_progress: Progress | None) -> None:
    line = redact(raw.decode("utf-8", "replace").strip())
    if line:
        lines.append(line)
        if on_progress:
            on_progress(line)


def _is_error(line: str) -> bool:
    return line.startswith(("fatal:", "error:")) or any(marker in line for marker in _SSH_FAILURES)


def _subcommand(args: tuple[str, ...]) -> str:
    return next((arg for arg in args if not arg.startswith("-")), "command")
