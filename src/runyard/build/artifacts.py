"""Build artifacts on disk: content-addressed directories, one lock per id, completion last.

Layout under the builder's root:

    artifacts/<id>/        the built application (instances run with it as working directory)
    artifacts/<id>.json    metadata, written last by an atomic rename: its presence means "complete"
    locks/<id>.lock        flock(2) file serialising builds and removals of one id

A Python virtual environment records absolute paths, so an artifact is built at its final path; a
directory without metadata is what a crash left behind, and the next build of that id replaces it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

_FORMAT = 1  # bump when the layout of an artifact changes, so old ids are never reused
_ID = re.compile(r"[0-9a-f]{64}")
_LOCK_POLL = 0.1


@dataclass(frozen=True, slots=True)
class RunConfig:
    """How instances of a build are started."""

    command: str
    port: int  # the configured port (the process runtime allocates its own and sets PORT)
    port_env_name: str | None  # run.network.env: also receives the port
    env: tuple[tuple[str, str], ...]  # the user's run env (RuntimeEnvironmentVariables or run.env)
    # What the runtime needs: PATH (the venv's bin first), LANG, PYTHONUNBUFFERED, HOME...; no host env.
    runtime_env: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Artifact:
    artifact_id: str  # hex content hash of what determines the build (not the run settings)
    path: Path  # the built application directory
    runtime: str
    toolchain_version: str
    reused: bool  # True when an identical complete artifact existed and nothing was built


@dataclass(frozen=True, slots=True)
class BuildKey:
    """Everything that determines an artifact's content; its hash is the artifact id."""

    commit_sha: str
    source_directory: str
    runtime: str
    toolchain_version: str
    toolchain_executable: str  # a venv points at its interpreter: another python is another artifact
    commands: tuple[tuple[str, tuple[str, ...]], ...]  # (phase, commands), in the order they run
    build_env: tuple[tuple[str, str], ...]

    def artifact_id(self) -> str:
        document = {"format": _FORMAT, **asdict(self)}
        encoded = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


class Cancelled(Exception):
    """Raised while waiting for a lock when the caller's cancel event is set."""


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self._artifacts = root / "artifacts"
        self._locks = root / "locks"
        for directory in (self._artifacts, self._locks):
            directory.mkdir(parents=True, exist_ok=True)

    def path(self, artifact_id: str) -> Path:
        return self._artifacts / _checked(artifact_id)

    def load(self, artifact_id: str) -> tuple[Artifact, RunConfig] | None:
        """A complete artifact and the run settings recorded when it was built, or None."""
        if not _ID.fullmatch(artifact_id):
            return None
        try:
            document = json.loads(self._metadata(artifact_id).read_text("utf-8"))
        except (OSError, ValueError):
            return None
        path = self.path(artifact_id)
        if not isinstance(document, dict) or document.get("format") != _FORMAT or not path.is_dir():
            return None
        try:
            artifact = Artifact(artifact_id, path, str(document["runtime"]), str(document["toolchain_version"]), True)
            return artifact, _run_config(document["run"])
        except (KeyError, TypeError, ValueError):
            return None

    def complete(self, artifact: Artifact, run: RunConfig, extra: dict[str, Any]) -> None:
        """Record the artifact as complete: metadata goes to a temporary file, then renamed into place."""
        document = {
            "format": _FORMAT,
            "artifact_id": artifact.artifact_id,
            "runtime": artifact.runtime,
            "toolchain_version": artifact.toolchain_version,
            "run": asdict(run),
            **extra,
        }
        final = self._metadata(artifact.artifact_id)
        partial = final.with_name(f".{final.name}.{os.getpid()}.{threading.get_ident()}")
        # 0600: the recorded run settings include the user's environment values.
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            json.dump(document, stream, indent=1, sort_keys=True)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(partial, final)

    def discard(self, artifact_id: str) -> bool:
        """Delete an artifact, complete or partial (metadata first, so it never looks complete half-deleted).
        The caller holds the id's lock. Returns whether anything was there."""
        metadata, path = self._metadata(artifact_id), self.path(artifact_id)
        existed = metadata.exists() or path.exists() or path.is_symlink()
        metadata.unlink(missing_ok=True)
        _remove_tree(path)
        return existed

    def sweep(self) -> list[str]:
        """Delete what crashed builds left incomplete (never a build running now); returns the ids."""
        removed = []
        for entry in sorted(self._artifacts.iterdir()):
            unrenamed = entry.name.startswith(".") and ".json." in entry.name  # metadata a crash left unrenamed
            artifact_id = entry.name[1:65] if unrenamed else entry.name
            if not is_artifact_id(artifact_id) or (not unrenamed and self._metadata(artifact_id).exists()):
                continue
            with self._lock_file(artifact_id) as descriptor:
                if not _try_lock(descriptor):
                    continue  # a build of this id is under way
                if unrenamed:
                    entry.unlink(missing_ok=True)
                elif entry.is_dir() and not self._metadata(artifact_id).exists():
                    self.discard(artifact_id)
                    removed.append(artifact_id)
        return removed

    @contextlib.contextmanager
    def locked(
        self, artifact_id: str, cancel: threading.Event | None = None, on_wait: Callable[[], None] | None = None
    ) -> Iterator[None]:
        """Hold the id's lock; flock locks belong to the open file, so threads exclude each other too.
        Polls rather than blocks, so that a waiting build can still be cancelled."""
        with self._lock_file(artifact_id) as descriptor:
            waiting = False
            while not _try_lock(descriptor):
                if not waiting and on_wait is not None:
                    on_wait()
                waiting = True
                if cancel is not None and cancel.wait(_LOCK_POLL):
                    raise Cancelled()
                if cancel is None:
                    time.sleep(_LOCK_POLL)
            yield

    @contextlib.contextmanager
    def _lock_file(self, artifact_id: str) -> Iterator[int]:
        descriptor = os.open(self._locks / f"{_checked(artifact_id)}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            yield descriptor
        finally:
            os.close(descriptor)  # also releases a lock held through it

    def _metadata(self, artifact_id: str) -> Path:
        return self._artifacts / f"{_checked(artifact_id)}.json"


def _try_lock(descriptor: int) -> bool:
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def is_artifact_id(value: str) -> bool:
    return bool(_ID.fullmatch(value))


def copy_source(source: Path, dest: Path, *, skip: frozenset[str], on_skipped: Callable[[str], None]) -> None:
    """Copy the application tree into the new, not yet existing, directory `dest`.

    Symbolic links are copied as links when they point inside the tree (rewritten relative, so they do
    not point back into the fetched checkout) and left out otherwise: a build must not read or modify
    host files through them. Top-level names in `skip` are left out; `.git` is never copied; sockets,
    FIFOs and devices are ignored.
    """
    root = source.resolve()
    dest.mkdir(parents=True)
    _copy_directory(root, root, dest, skip, on_skipped)


def _copy_directory(
    root: Path, directory: Path, dest: Path, skip: frozenset[str], on_skipped: Callable[[str], None]
) -> None:
    with os.scandir(directory) as entries:
        for entry in sorted(entries, key=lambda item: item.name):
            if entry.name == ".git" or (directory == root and entry.name in skip):
                continue
            origin, target = Path(entry.path), dest / entry.name
            if entry.is_symlink():
                _copy_link(root, origin, target, on_skipped)
            elif entry.is_dir(follow_symlinks=False):
                target.mkdir()
                _copy_directory(root, origin, target, skip, on_skipped)
                shutil.copystat(origin, target)
            elif entry.is_file(follow_symlinks=False):
                shutil.copy2(origin, target, follow_symlinks=False)


def _copy_link(root: Path, origin: Path, target: Path, on_skipped: Callable[[str], None]) -> None:
    resolved = Path(os.path.realpath(origin))
    if resolved != root and not resolved.is_relative_to(root):
        on_skipped(str(origin.relative_to(root)))
        return
    # The same place in the copy, expressed relative to the link's own directory.
    relative = os.path.relpath(resolved, os.path.realpath(origin.parent))
    target.symlink_to(relative)


def _remove_tree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
        return
    if not path.exists():
        return
    try:
        shutil.rmtree(path)
    except PermissionError:
        # Read-only directories (some packages ship them) refuse the deletion of their entries.
        for directory, _, _ in os.walk(path):
            os.chmod(directory, os.stat(directory).st_mode | stat.S_IRWXU)
        shutil.rmtree(path)


def _run_config(document: Any) -> RunConfig:
    def pairs(value: Any) -> tuple[tuple[str, str], ...]:
        return tuple((str(name), str(text)) for name, text in value)

    port_env = document["port_env_name"]
    return RunConfig(
        command=str(document["command"]),
        port=int(document["port"]),
        port_env_name=None if port_env is None else str(port_env),
        env=pairs(document["env"]),
        runtime_env=pairs(document["runtime_env"]),
    )


def _checked(artifact_id: str) -> str:
    """Ids become file names: only ever a full hex digest, never a path."""
    if not _ID.fullmatch(artifact_id):
        raise ValueError(f"not an artifact id: {artifact_id!r}")
    return artifact_id
