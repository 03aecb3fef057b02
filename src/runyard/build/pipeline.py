"""The build pipeline of code-based services: configuration, managed runtime, commands, artifact.

A build resolves its configuration (the API's CodeConfigurationValues or the repository's
`apprunner.yaml`), hashes what determines its output into an artifact id, and either reuses the
complete artifact of that id or copies the source to the artifact's final path and runs the build
commands there: pre-build, build, post-build, then run.pre-run (App Runner runs those in the run image
during the build). Python builds get a fresh virtual environment at `<artifact>/.venv` first, so
`pip install` installs into it and `python` at run time uses it.

Commands run in an environment built from nothing (no host variables except the operator's proxy,
CA and package-index settings), with a per-build HOME, in their own process group so that a timeout
or a cancellation ends everything they started. Environment values are never logged.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from runyard.build.artifacts import (
    Artifact,
    ArtifactStore,
    BuildKey,
    Cancelled,
    RunConfig,
    copy_source,
    is_artifact_id,
)
from runyard.build.config_file import CONFIG_FILE_NAME, DEFAULT_PORT, ConfigFileError, load_config_file
from runyard.build.runtimes import NODE_RUNTIMES, RuntimeUnavailable, Toolchain, require_runtime
from runyard.errors import RunyardError

__all__ = ["Artifact", "BuildCancelled", "BuildFailed", "BuildInput", "BuildResult", "Builder", "RunConfig"]

Log = Callable[[str], None]

DEFAULT_TIMEOUT = 1800.0
VENV_DIR = ".venv"
_SYSTEM_PATH = ("/usr/local/bin", "/usr/bin", "/bin")
_SHELL = "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"
# From Runyard's own environment, only how the operator reaches package indexes (proxies, CAs, mirrors).
_PASSTHROUGH = frozenset(
    ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR")
)
_PASSTHROUGH_PREFIXES = ("PIP_", "NPM_CONFIG_", "npm_config_")
_OWN_CACHE_SETTINGS = frozenset(("PIP_CACHE_DIR", "npm_config_cache"))  # npm's names are case-insensitive
_ENV_NAME = re.compile(r"[^=\0]+")
_TICK = 0.1  # how often a running command checks for cancellation and its deadline
_DRAIN_GRACE = 1.0  # after a command exits, how long background children may keep its output open
_MAX_LINE = 16384


@dataclass(frozen=True, slots=True)
class BuildInput:
    app_dir: Path  # fetched source tree, SourceDirectory already applied; never modified by the builder
    commit_sha: str
    source_directory: str | None
    configuration_source: Literal["API", "REPOSITORY"]
    # The API's CodeConfigurationValues; ignored when the configuration comes from the repository.
    runtime: str | None = None
    build_command: str | None = None
    start_command: str | None = None
    port: str | None = None
    env: tuple[tuple[str, str], ...] = ()  # RuntimeEnvironmentVariables


@dataclass(frozen=True, slots=True)
class BuildResult:
    artifact: Artifact
    run: RunConfig


class BuildFailed(RunyardError):
    """The build could not produce an artifact; the message says what failed and never holds an env value."""


class BuildCancelled(BuildFailed):
    """The caller cancelled the build."""


@dataclass(frozen=True, slots=True)
class _Step:
    kind: Literal["build", "pre-run"]
    command: str


@dataclass(frozen=True, slots=True)
class _Plan:
    """A build resolved from its input: what to run and how the result is started."""

    app_dir: Path
    key: BuildKey
    toolchain: Toolchain
    steps: tuple[_Step, ...]
    build_env: tuple[tuple[str, str], ...]
    command: str
    port: int
    port_env_name: str | None
    run_env: tuple[tuple[str, str], ...]

    def run_config(self, artifact_path: Path) -> RunConfig:
        return RunConfig(
            self.command, self.port, self.port_env_name, self.run_env, _runtime_env(self.toolchain, artifact_path)
        )


class Builder:
    def __init__(self, root: Path, *, toolchains: Mapping[str, Toolchain], timeout: float = DEFAULT_TIMEOUT) -> None:
        """root = <data_dir>/builds; keeps artifacts/, locks/, cache/ (pip, npm, venv seeds) and tmp/ under it."""
        self._store = ArtifactStore(root)
        self._toolchains = dict(toolchains)
        self._timeout = timeout
        self._cache = root / "cache"
        self._tmp = root / "tmp"
        for directory in (self._cache, self._tmp):
            directory.mkdir(parents=True, exist_ok=True)
        self._sweep()

    def _sweep(self) -> None:
        """Remove what builds interrupted by a crash left: partial artifacts and old workspaces."""
        self._store.sweep()
        # A workspace's directory is not modified after its first second, and no build outlives the timeout.
        expired = time.time() - self._timeout - 60
        for workspace in self._tmp.iterdir():
            with contextlib.suppress(OSError):
                if workspace.lstat().st_mtime < expired:
                    shutil.rmtree(workspace, ignore_errors=True)

    def build(self, request: BuildInput, log: Log, cancel: threading.Event | None = None) -> BuildResult:
        """Build (or reuse) the artifact for `request`. Blocking; calls `log` with complete lines."""
        started = time.monotonic()
        cancel = cancel or threading.Event()
        try:
            log(f"[AppRunner] Starting source code build of commit {_short(request.commit_sha)}.")
            plan = self._plan(request, log)
            artifact_id = plan.key.artifact_id()
            waiting = "[AppRunner] Waiting for another build of the same source and configuration to finish."
            try:
                with self._store.locked(artifact_id, cancel, on_wait=lambda: log(waiting)):
                    result = self._build_locked(plan, artifact_id, log, cancel)
            except Cancelled:
                raise BuildCancelled("The build was cancelled.") from None
        except BuildFailed as error:
            log(f"[AppRunner] {error.message}")
            log("[AppRunner] Failed to build your application source code.")
            raise
        if not result.artifact.reused:
            log("[AppRunner] Successfully built source code.")
            log(f"[AppRunner] Build completed in {time.monotonic() - started:.1f} s.")
        return result

    def artifact(self, artifact_id: str) -> Artifact | None:
        """A complete artifact built earlier, or None."""
        loaded = self._store.load(artifact_id)
        return None if loaded is None else loaded[0]

    def run_config(self, artifact_id: str) -> RunConfig | None:
        """The run settings recorded by the build that produced the artifact. Run settings are not part
        of the artifact id, so for API-configured services keep `BuildResult.run` of each deployment."""
        loaded = self._store.load(artifact_id)
        return None if loaded is None else loaded[1]

    def remove(self, artifact_id: str) -> None:
        """Delete an artifact (not an error when absent); waits for a build of the same id to end."""
        if not is_artifact_id(artifact_id):
            return
        with self._store.locked(artifact_id):
            self._store.discard(artifact_id)

    # -- resolving the configuration ---------------------------------------------------------------

    def _plan(self, request: BuildInput, log: Log) -> _Plan:
        if request.configuration_source == "REPOSITORY":
            plan = self._plan_from_file(request, log)
        elif request.configuration_source == "API":
            plan = self._plan_from_api(request)
        else:
            raise BuildFailed(f"Unknown configuration source {request.configuration_source!r}.")
        log(f"[AppRunner] Using runtime {plan.toolchain.runtime} ({plan.toolchain.display_name}).")
        wanted = NODE_RUNTIMES.get(plan.toolchain.runtime)
        if wanted is not None and wanted != plan.toolchain.major:
            log(
                f"[AppRunner] {plan.toolchain.runtime} asks for Node.js {wanted}; this host has "
                f"{plan.toolchain.display_name}, which the build and the service use."
            )
        return plan

    def _plan_from_file(self, request: BuildInput, log: Log) -> _Plan:
        log(f"[AppRunner] Reading the configuration file {CONFIG_FILE_NAME}.")
        try:
            config = load_config_file(request.app_dir)
        except ConfigFileError as error:
            raise BuildFailed(_config_problem(str(error))) from None
        log(f"[AppRunner] Successfully validated {CONFIG_FILE_NAME}.")
        if config.run.secrets:
            raise BuildFailed(
                f"{CONFIG_FILE_NAME} run.secrets is not supported yet: Runyard cannot resolve Secrets Manager "
                "secrets or SSM Parameter Store parameters. Remove run.secrets to deploy this service."
            )
        toolchain = self._toolchain(config.api_runtime)
        wanted_version = config.run.runtime_version
        if wanted_version and not _version_matches(toolchain.version, wanted_version):
            log(
                f"[AppRunner] {CONFIG_FILE_NAME} asks for runtime version {wanted_version}; this host has "
                f"{toolchain.display_name}, which the build and the service use."
            )
        phases = (
            ("pre-build", config.build.pre_build),
            ("build", config.build.build),
            ("post-build", config.build.post_build),
            ("pre-run", config.run.pre_run),
        )
        _check_env(config.build.env, "build.env")
        _check_env(config.run.env, "run.env")
        run = config.run
        return _make_plan(
            request, toolchain, phases, config.build.env, (run.command, run.network.port, run.network.env, run.env)
        )

    def _plan_from_api(self, request: BuildInput) -> _Plan:
        if not request.runtime:
            raise BuildFailed("The code configuration has no Runtime (CodeConfigurationValues.Runtime is required).")
        toolchain = self._toolchain(request.runtime)
        if not (request.start_command or "").strip():
            raise BuildFailed(
                "The code configuration has no StartCommand (CodeConfigurationValues.StartCommand is required)."
            )
        build_command = (request.build_command or "").strip()
        phases = (("build", (build_command,) if build_command else ()),)
        _check_env(request.env, "RuntimeEnvironmentVariables")
        start_command = (request.start_command or "").strip()
        return _make_plan(request, toolchain, phases, (), (start_command, request.port, None, request.env))

    def _toolchain(self, runtime: str) -> Toolchain:
        try:
            return require_runtime(runtime, self._toolchains)
        except RuntimeUnavailable as error:
            raise BuildFailed(error.message) from None

    # -- building -----------------------------------------------------------------------------------

    def _build_locked(self, plan: _Plan, artifact_id: str, log: Log, cancel: threading.Event) -> BuildResult:
        loaded = self._store.load(artifact_id)
        if loaded is not None:
            artifact = loaded[0]
            log(f"[AppRunner] Reusing the build of commit {_short(plan.key.commit_sha)} (artifact {artifact_id[:12]})")
            return BuildResult(artifact, plan.run_config(artifact.path))
        if self._store.discard(artifact_id):
            log("[AppRunner] Removed an incomplete earlier build of the same source and configuration.")
        path = self._store.path(artifact_id)
        started = time.time()
        try:
            try:
                self._produce(plan, path, log, cancel, time.monotonic() + self._timeout)
            except _TimedOut as timeout:
                raise BuildFailed(f"The build timed out after {self._timeout:g} s while {timeout.args[0]}.") from None
            artifact = Artifact(artifact_id, path, plan.toolchain.runtime, plan.toolchain.version, reused=False)
            run = plan.run_config(path)
            details = {
                "commit_sha": plan.key.commit_sha,
                "source_directory": plan.key.source_directory,
                "built_at": started,
                "seconds": round(time.time() - started, 3),
            }
            self._store.complete(artifact, run, details)
        except BaseException:
            self._store.discard(artifact_id)
            raise
        return BuildResult(artifact, run)

    def _produce(self, plan: _Plan, path: Path, log: Log, cancel: threading.Event, deadline: float) -> None:
        python = plan.toolchain.language == "python"
        app_dir = plan.app_dir
        with self._workspace() as (home, tmp):
            _check_cancel(cancel)
            skip = frozenset((VENV_DIR,)) if python else frozenset()
            if python and (app_dir / VENV_DIR).exists():
                log(f"[AppRunner] Leaving out the source's {VENV_DIR}: the build creates a fresh virtual environment.")
            skipped = "[AppRunner] Leaving out the symbolic link {} (it points outside the source directory)."
            try:
                copy_source(app_dir, path, skip=skip, on_skipped=lambda name: log(skipped.format(_one_line(name))))
            except OSError as error:
                raise BuildFailed(f"Cannot copy the source into the build directory: {error.strerror}.") from None
            venv = path / VENV_DIR if python else None
            env = _build_environment(
                home=home,
                tmp=tmp,
                cache=self._cache,
                toolchain=plan.toolchain,
                venv=venv,
                build_env=plan.build_env,
                environ=os.environ,
            )
            if venv is not None:
                self._create_venv(plan.toolchain, venv, env, log, cancel, deadline)
            for step in plan.steps:
                self._run_step(step, path, env, log, cancel, deadline)

    def _create_venv(
        self, toolchain: Toolchain, venv: Path, env: dict[str, str], log: Log, cancel: threading.Event, deadline: float
    ) -> None:
        log(f"[AppRunner] Creating the Python virtual environment {VENV_DIR}.")
        argv = [
            sys.executable,
            "-m",
            "virtualenv",
            "--quiet",
            "--no-periodic-update",  # else virtualenv starts a background download of newer seed wheels
            "--app-data",
            str(self._cache / "virtualenv"),  # seed packages are copied from here: a new venv takes ~0.3 s
            "--python",
            str(toolchain.executable),
            str(venv),
        ]
        output: list[str] = []
        what = "creating the virtual environment"
        code = _run_process(argv, venv.parent, env, deadline, cancel, output.append, what)
        if code != 0:
            detail = f": {output[-1]}" if output else ""
            raise BuildFailed(f"Creating the Python virtual environment failed ({_exit_text(code)}){detail}")

    def _run_step(
        self, step: _Step, path: Path, env: dict[str, str], log: Log, cancel: threading.Event, deadline: float
    ) -> None:
        shown = _one_line(step.command)
        log(f"[AppRunner] Running {step.kind} command: {shown}")
        code = _run_process(
            [_SHELL, "-c", step.command],
            path,
            env,
            deadline,
            cancel,
            lambda line: log(f"[Build] {line}"),
            f"running '{shown}'",
        )
        if code != 0:
            kind = "Build" if step.kind == "build" else "Pre-run"
            raise BuildFailed(f"{kind} command '{shown}' failed with {_exit_text(code)}.")

    @contextlib.contextmanager
    def _workspace(self) -> Iterator[tuple[Path, Path]]:
        """A fresh HOME and TMPDIR for one build, deleted afterwards."""
        workspace = self._tmp / uuid.uuid4().hex
        home, tmp = workspace / "home", workspace / "tmp"
        home.mkdir(parents=True)
        tmp.mkdir()
        try:
            yield home, tmp
        finally:
            shutil.rmtree(workspace, ignore_errors=True)


def _make_plan(
    request: BuildInput,
    toolchain: Toolchain,
    phases: tuple[tuple[str, tuple[str, ...]], ...],
    build_env: tuple[tuple[str, str], ...],
    run: tuple[str, str | None, str | None, tuple[tuple[str, str], ...]],  # command, port, port env, env
) -> _Plan:
    key = BuildKey(
        commit_sha=request.commit_sha.strip().lower(),
        source_directory=str(PurePosixPath("/", (request.source_directory or "").strip())),
        runtime=toolchain.runtime,
        toolchain_version=toolchain.version,
        toolchain_executable=str(toolchain.executable),
        commands=tuple((phase, commands) for phase, commands in phases if commands),
        build_env=build_env,
    )
    steps = tuple(
        _Step("pre-run" if phase == "pre-run" else "build", command)
        for phase, commands in phases
        for command in commands
    )
    command, port, port_env, run_env = run
    return _Plan(request.app_dir, key, toolchain, steps, build_env, command, _port(port), port_env, run_env)


# -- helpers ---------------------------------------------------------------------------------------


def _build_environment(
    *,
    home: Path,
    tmp: Path,
    cache: Path,
    toolchain: Toolchain,
    venv: Path | None,
    build_env: tuple[tuple[str, str], ...],
    environ: Mapping[str, str],
) -> dict[str, str]:
    """The complete environment of build commands; the user's build env comes last and wins."""
    env = {
        "PATH": _search_path(toolchain, venv),
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        # Quiet, faster installs: no network round-trips for version checks, funding or audit notices.
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "npm_config_update_notifier": "false",
        "npm_config_fund": "false",
        "npm_config_audit": "false",
    }
    for name, value in environ.items():
        if (name in _PASSTHROUGH or name.startswith(_PASSTHROUGH_PREFIXES)) and not _is_cache_setting(name):
            env[name] = value
    # Shared package caches make rebuilds fast; pip and npm both lock their caches for concurrent use.
    env["PIP_CACHE_DIR"] = str(cache / "pip")
    env["npm_config_cache"] = str(cache / "npm")
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
    env.update(build_env)
    return env


def _is_cache_setting(name: str) -> bool:
    return name in _OWN_CACHE_SETTINGS or name.lower() == "npm_config_cache"


def _runtime_env(toolchain: Toolchain, artifact_path: Path) -> tuple[tuple[str, str], ...]:
    """What instances need from the runtime; HOME is the application directory, as on Heroku-style hosts."""
    venv = artifact_path / VENV_DIR if toolchain.language == "python" else None
    env = [("PATH", _search_path(toolchain, venv))]
    if venv is not None:
        env.append(("VIRTUAL_ENV", str(venv)))
    env += [("HOME", str(artifact_path)), ("LANG", "C.UTF-8"), ("PYTHONUNBUFFERED", "1")]
    return tuple(env)


def _search_path(toolchain: Toolchain, venv: Path | None) -> str:
    directories = [str(venv / "bin")] if venv is not None else []
    directories += [str(directory) for directory in toolchain.bin_dirs]
    directories += _SYSTEM_PATH
    return ":".join(dict.fromkeys(directories))


def _run_process(
    argv: list[str],
    cwd: Path,
    env: Mapping[str, str],
    deadline: float,
    cancel: threading.Event,
    on_line: Callable[[str], None],
    what: str,
) -> int:
    """Run `argv` in its own process group, streaming merged output lines; return its exit status.

    Cancellation and the deadline kill the whole group. When the command itself has exited, whatever
    it left running in the background is killed too, after a short grace to flush output.
    """
    _check_cancel(cancel)
    if time.monotonic() >= deadline:
        raise _TimedOut(what)
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert process.stdout is not None
    lines = _Lines(on_line)
    stopped: str | None = None
    exited_at: float | None = None
    open_output = True
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while True:
                if cancel.is_set() or time.monotonic() >= deadline:
                    stopped = "cancelled" if cancel.is_set() else "timeout"
                    break
                if not open_output:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        process.wait(_TICK)
                elif selector.select(_TICK):
                    chunk = os.read(process.stdout.fileno(), 65536)
                    lines.feed(chunk)
                    if not chunk:  # end of output, though the command may still be running
                        open_output = False
                        selector.unregister(process.stdout)
                if process.poll() is not None:
                    exited_at = exited_at or time.monotonic()
                    if not open_output or time.monotonic() - exited_at > _DRAIN_GRACE:
                        break
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        code = process.wait()
        process.stdout.close()
        lines.flush()
    if stopped == "cancelled":
        raise BuildCancelled("The build was cancelled.")
    if stopped == "timeout":
        raise _TimedOut(what)
    return code


class _TimedOut(Exception):
    """The build's deadline passed while `args[0]` (a description of the step) was running."""


class _Lines:
    """Splits output into lines on \\n, \\r\\n and the bare \\r of progress meters; very long lines are cut."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self._emit = emit
        self._pending = b""

    def feed(self, chunk: bytes) -> None:
        *complete, self._pending = re.split(rb"\r\n|\n|\r", self._pending + chunk)
        for raw in complete:
            self._send(raw)
        while len(self._pending) > _MAX_LINE:
            self._send(self._pending[:_MAX_LINE])
            self._pending = self._pending[_MAX_LINE:]

    def flush(self) -> None:
        self._send(self._pending)
        self._pending = b""

    def _send(self, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip()
        if line:
            self._emit(line)


def _check_cancel(cancel: threading.Event) -> None:
    if cancel.is_set():
        raise BuildCancelled("The build was cancelled.")


def _check_env(pairs: tuple[tuple[str, str], ...], where: str) -> None:
    """Names a process environment cannot hold are refused by name; values are never shown."""
    for name, value in pairs:
        if not _ENV_NAME.fullmatch(name):
            raise BuildFailed(f"{where}: {name!r} is not a valid environment variable name.")
        if "\0" in value:
            raise BuildFailed(f"{where}: the value of {name} contains a NUL character.")


def _port(value: str | None) -> int:
    text = (value or "").strip() or DEFAULT_PORT
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise BuildFailed(f"Port must be a number from 1 to 65535, got {text!r}.")
    return int(text)


def _config_problem(message: str) -> str:
    if message.startswith(CONFIG_FILE_NAME):  # "apprunner.yaml: ..." or "apprunner.yaml line 3, column 1: ..."
        return f"Invalid {message}"
    return f"{message[:1].upper()}{message[1:]} (the service reads its configuration from the repository)."


def _version_matches(version: str, wanted: str) -> bool:
    return version.split(".")[: len(wanted.split("."))] == wanted.split(".")


def _exit_text(code: int) -> str:
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"signal {signal.Signals(-code).name}"
    except ValueError:
        return f"signal {-code}"


def _one_line(command: str) -> str:
    return command.strip().replace("\n", "\\n")


def _short(commit_sha: str) -> str:
    return commit_sha.strip()[:7]
