from __future__ import annotations

import os
import shlex
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runyard.source import git
from runyard.source.git import (
    FetchedSource,
    RepositoryLocation,
    SourceError,
    SshIdentity,
    classify_repository_url,
    fetch,
    resolve_branch,
)


def _git(cwd: Path, *args: str) -> str:
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(cwd),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "Ada Lovelace",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Ada Lovelace",
        "GIT_COMMITTER_EMAIL": "ada@example.com",
    }
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, content in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(content)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


@dataclass(frozen=True)
class Monorepo:
    path: Path
    first: str  # main's first commit
    main: str  # main's tip
    feature: str  # tip of branch feature/login


@pytest.fixture
def monorepo(tmp_path: Path) -> Monorepo:
    path = tmp_path / "monorepo"
    path.mkdir()
    _git(path, "init", "-q", "-b", "main")
    first = _commit(
        path,
        {"README.md": "v1\n", "apps/api/app.py": "print('api v1')\n", "apps/web/index.html": "<h1>v1</h1>\n"},
        "first commit",
    )
    main = _commit(path, {"apps/api/app.py": "print('api v2')\n"}, "api v2\n\nlonger description")
    _git(path, "checkout", "-q", "-b", "feature/login")
    feature = _commit(path, {"apps/web/login.html": "<form></form>\n"}, "login page")
    _git(path, "checkout", "-q", "main")
    return Monorepo(path, first, main, feature)


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "checkout"


def _local(repo: Monorepo) -> RepositoryLocation:
    return classify_repository_url(str(repo.path))


# --- classify ---------------------------------------------------------------------------------------


def test_classify_accepts_what_needs_no_connection(monorepo: Monorepo) -> None:
    assert classify_repository_url(str(monorepo.path)) == RepositoryLocation(str(monorepo.path), "local")
    assert classify_repository_url(f"  {monorepo.path}\n") == RepositoryLocation(str(monorepo.path), "local")
    file_url = monorepo.path.as_uri()
    assert classify_repository_url(file_url) == RepositoryLocation(file_url, "file")
    https = "https://github.com/aws-containers/hello-app-runner.git"
    assert classify_repository_url(https) == RepositoryLocation(https, "https")
    assert classify_repository_url("http://git.internal:8080/team/app").kind == "http"
    assert classify_repository_url(file_url).is_local
    assert not classify_repository_url(https).is_local


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("ssh:///org/repo.git", "has no valid host name"),
        ("ssh://-oProxyCommand=x/repo.git", "has no valid host name"),
        ("-oProxyCommand=x@host:repo.git", "not a valid SSH URL"),
        ("host:", "not a valid SSH URL"),
        ("git://github.com/org/repo.git", "unsupported URL scheme 'git'"),
        ("ftp://example.com/repo", "unsupported URL scheme 'ftp'"),
        ("relative/repo", "relative path"),
        ("./repo", "relative path"),
        ("-upload-pack=evil", "relative path"),
        ("/does/not/exist/repo", "/does/not/exist/repo does not exist"),
        ("file:///does/not/exist/repo", "does not exist"),
        ("file://otherhost/srv/repo", "remote host"),
        ("https:///org/repo", "no host name"),
        ("https://github.com:notaport/org/repo", "not a valid URL"),
        ("https://github.com/org/repo\n.git", "control characters"),
    ],
)
def test_classify_refuses_with_an_actionable_message(url: str, expected: str) -> None:
    with pytest.raises(SourceError, match=expected):
        classify_repository_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "git@github.com:org/repo.git",
        "ssh://git@github.com/org/repo.git",
        "ssh://root@127.0.0.1:2222/srv/repo.git",
        "git+ssh://github.com/org/repo.git",
        "git.internal:team/app.git",
    ],
)
def test_classify_accepts_ssh_urls(url: str) -> None:
    location = classify_repository_url(url)
    assert location == RepositoryLocation(url, "ssh")
    assert not location.is_local


def test_ssh_command_uses_only_the_given_key_and_checks_host_keys(tmp_path: Path) -> None:
    key, hosts = tmp_path / "it's key", tmp_path / "known hosts"
    pinned = shlex.split(git.ssh_command(key, hosts, pinned=True))
    assert pinned[:5] == ["ssh", "-F", os.devnull, "-i", str(key)]
    options = dict(value.split("=", 1) for flag, value in zip(pinned[5::2], pinned[6::2], strict=True) if flag == "-o")
    assert options["IdentitiesOnly"] == "yes"
    assert options["BatchMode"] == "yes"
    assert options["UserKnownHostsFile"] == str(hosts)
    assert options["GlobalKnownHostsFile"] == os.devnull
    assert options["StrictHostKeyChecking"] == "yes"
    learned = shlex.split(git.ssh_command(key, hosts, pinned=False))
    assert "StrictHostKeyChecking=accept-new" in learned


def test_ssh_key_lives_only_while_one_git_command_runs(tmp_path: Path) -> None:
    identity = SshIdentity(
        "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----", tmp_path / "kh"
    )
    assert "BEGIN" not in repr(identity)
    with git._ssh_environment(identity) as env:
        words = shlex.split(env["GIT_SSH_COMMAND"])
        key = Path(words[words.index("-i") + 1])
        assert key.read_text().endswith("-----END OPENSSH PRIVATE KEY-----\n")
        assert key.stat().st_mode & 0o777 == 0o600
        assert key.parent.stat().st_mode & 0o777 == 0o700
        assert f"UserKnownHostsFile={tmp_path / 'kh'}" in words
    assert not key.parent.exists()
    pinned = SshIdentity("key", tmp_path / "kh", known_hosts="[127.0.0.1]:22 ssh-ed25519 AAAA")
    with git._ssh_environment(pinned) as env:
        words = shlex.split(env["GIT_SSH_COMMAND"])
        hosts = Path(next(w for w in words if w.startswith("UserKnownHostsFile=")).split("=", 1)[1])
        assert hosts.read_text() == "[127.0.0.1]:22 ssh-ed25519 AAAA\n"
        assert "StrictHostKeyChecking=yes" in words
    assert not hosts.exists()
    with git._ssh_environment(git.GitCredentials("u", "p")) as env:
        assert env == {}


def test_classify_refuses_a_file_as_repository(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(SourceError, match="is not a directory"):
        classify_repository_url(str(tmp_path / "file.txt"))


@pytest.mark.parametrize(
    ("url", "secret", "shown"),
    [
        ("https://alice:s3cr3t-token@github.com/org/repo.git", "s3cr3t-token", "https://***@github.com/org/repo.git"),
        ("https://ghp_0123456789abcdef@github.com/org/repo.git", "ghp_0123456789abcdef", "https://***@github.com"),
        ("http://bob:p@ss@git.internal/repo", "ss@git", "http://***@git.internal/repo"),
        ("ssh://deploy:hunter2@git.internal/repo", "hunter2", "ssh://***@git.internal/repo"),
    ],
)
def test_classify_refuses_credentials_without_echoing_them(url: str, secret: str, shown: str) -> None:
    with pytest.raises(SourceError) as raised:
        classify_repository_url(url)
    assert secret not in raised.value.message
    assert shown in raised.value.message


# --- resolve_branch ---------------------------------------------------------------------------------


def test_resolve_branch_main_and_feature(monorepo: Monorepo) -> None:
    location = _local(monorepo)
    assert resolve_branch(location, "main") == monorepo.main
    assert resolve_branch(location, "feature/login") == monorepo.feature


def test_resolve_branch_is_exact(monorepo: Monorepo) -> None:
    # ls-remote patterns match ref tails; "login" must not pick up "feature/login".
    with pytest.raises(SourceError, match="branch 'login' not found in"):
        resolve_branch(_local(monorepo), "login")


def test_resolve_missing_branch(monorepo: Monorepo) -> None:
    with pytest.raises(SourceError, match=f"branch 'nope' not found in {monorepo.path}"):
        resolve_branch(_local(monorepo), "nope")


def test_resolve_invalid_branch_name(monorepo: Monorepo) -> None:
    with pytest.raises(SourceError, match="not a valid branch name"):
        resolve_branch(_local(monorepo), "bad..name")


def test_resolve_unreadable_repository_includes_git_error(tmp_path: Path) -> None:
    location = classify_repository_url(str(tmp_path))  # a directory, but not a repository
    with pytest.raises(SourceError, match=r"cannot read repository .*: fatal: .*not.*a git repository"):
        resolve_branch(location, "main")


def test_git_times_out_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    for proxy in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    # A listening socket that never answers: git connects and waits for a response that never comes.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        location = classify_repository_url(f"http://127.0.0.1:{server.getsockname()[1]}/repo.git")
        with pytest.raises(SourceError, match=r"git ls-remote timed out after 0.5 s"):
            resolve_branch(location, "main", timeout=0.5)


def test_inherited_git_environment_is_ignored(monorepo: Monorepo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_DIR", "/nonexistent")
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'url.file:///nonexistent/.insteadOf'='/'")
    assert resolve_branch(_local(monorepo), "main") == monorepo.main


# --- fetch ------------------------------------------------------------------------------------------


def test_fetch_checks_out_the_commit_without_git_metadata(monorepo: Monorepo, dest: Path) -> None:
    fetched = fetch(_local(monorepo), monorepo.main, dest, source_directory=None)
    assert fetched == FetchedSource(monorepo.main, "api v2", "Ada Lovelace <ada@example.com>", dest)
    assert (dest / "apps/api/app.py").read_text() == "print('api v2')\n"
    assert (dest / "README.md").read_text() == "v1\n"
    assert not (dest / "apps/web/login.html").exists()  # that file is only on the feature branch
    assert not (dest / ".git").exists()
    assert sorted(path.name for path in dest.iterdir()) == ["README.md", "apps"]


@pytest.mark.parametrize(
    ("source_directory", "app"),
    [(None, ""), ("", ""), ("/", ""), ("apps/api", "apps/api"), ("/apps/api/", "apps/api"), ("apps/web", "apps/web")],
)
def test_fetch_source_directory(monorepo: Monorepo, dest: Path, source_directory: str | None, app: str) -> None:
    fetched = fetch(_local(monorepo), monorepo.main, dest, source_directory=source_directory)
    assert fetched.app_directory == dest / app
    assert fetched.app_directory.is_dir()


@pytest.mark.parametrize("source_directory", ["../etc", "apps/../../etc", "/../etc"])
def test_fetch_refuses_escaping_source_directory(monorepo: Monorepo, dest: Path, source_directory: str) -> None:
    with pytest.raises(SourceError, match="must stay inside the repository"):
        fetch(_local(monorepo), monorepo.main, dest, source_directory=source_directory)
    assert not dest.exists()  # refused before anything was fetched


def test_fetch_refuses_a_symlink_out_of_the_repository(monorepo: Monorepo, dest: Path, tmp_path: Path) -> None:
    (monorepo.path / "apps/outside").symlink_to(tmp_path)
    sha = _commit(monorepo.path, {}, "add a link")
    with pytest.raises(SourceError, match="'apps/outside' must stay inside the repository"):
        fetch(_local(monorepo), sha, dest, source_directory="apps/outside")
    assert list(dest.iterdir()) == []


def test_fetch_missing_source_directory(monorepo: Monorepo, dest: Path) -> None:
    with pytest.raises(SourceError, match=f"source directory 'apps/worker' does not exist in commit {monorepo.main}"):
        fetch(_local(monorepo), monorepo.main, dest, source_directory="apps/worker")
    assert list(dest.iterdir()) == []  # no partial checkout left behind


def test_fetch_older_commit_gets_older_content(monorepo: Monorepo, dest: Path) -> None:
    fetched = fetch(_local(monorepo), monorepo.first, dest, source_directory="apps/api")
    assert fetched.message == "first commit"
    assert (fetched.app_directory / "app.py").read_text() == "print('api v1')\n"


def test_fetch_falls_back_when_the_server_refuses_a_sha(
    monorepo: Monorepo, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Protocol v0 servers refuse a non-tip SHA unless uploadpack.allowReachableSHA1InWant is set.
    monkeypatch.setattr(git, "_BASE_CONFIG", (*git._BASE_CONFIG, "protocol.version=0"))
    lines: list[str] = []
    fetched = fetch(_local(monorepo), monorepo.first, dest, source_directory=None, on_progress=lines.append)
    assert (fetched.app_directory / "apps/api/app.py").read_text() == "print('api v1')\n"
    assert any("fetching all branches and tags" in line for line in lines)
    assert not (dest / ".git").exists()


def test_fetch_reports_progress(monorepo: Monorepo, dest: Path) -> None:
    lines: list[str] = []
    fetch(_local(monorepo), monorepo.main, dest, source_directory=None, on_progress=lines.append)
    assert any(line.startswith(("remote:", "Receiving objects", "Unpacking objects")) for line in lines)
    assert all(line == line.strip() and line for line in lines)


def test_fetch_unknown_commit(monorepo: Monorepo, dest: Path) -> None:
    with pytest.raises(SourceError, match=f"commit {'0' * 40} not found in {monorepo.path}"):
        fetch(_local(monorepo), "0" * 40, dest, source_directory=None)
    assert list(dest.iterdir()) == []


@pytest.mark.parametrize("sha", ["main", "abc123", "g" * 40, ""])
def test_fetch_needs_a_full_sha(monorepo: Monorepo, dest: Path, sha: str) -> None:
    with pytest.raises(SourceError, match="is not a full commit SHA"):
        fetch(_local(monorepo), sha, dest, source_directory=None)


def test_fetch_needs_an_empty_destination(monorepo: Monorepo, dest: Path) -> None:
    dest.mkdir()
    (dest / "leftover").write_text("x")
    with pytest.raises(SourceError, match="must be an empty directory"):
        fetch(_local(monorepo), monorepo.main, dest, source_directory=None)
    assert (dest / "leftover").exists()


@pytest.fixture
def bare(monorepo: Monorepo, tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "bare.git"
    _git(tmp_path, "clone", "-q", "--bare", str(monorepo.path), str(path))
    yield path


@pytest.mark.parametrize("as_url", [False, True], ids=["path", "file-url"])
def test_bare_repository_by_path_and_file_url(monorepo: Monorepo, bare: Path, dest: Path, as_url: bool) -> None:
    location = classify_repository_url(bare.as_uri() if as_url else str(bare))
    assert location.kind == ("file" if as_url else "local")
    sha = resolve_branch(location, "feature/login")
    assert sha == monorepo.feature
    fetched = fetch(location, sha, dest, source_directory="/apps/web")
    assert fetched.message == "login page"
    assert (fetched.app_directory / "login.html").exists()
    assert not (dest / ".git").exists()
