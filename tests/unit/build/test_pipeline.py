"""The build pipeline with plain shell commands: no package installs, so these stay fast.

Most builds use a Node.js toolchain whose binary is never called (the commands are shell built-ins),
which exercises everything but the virtual environment; the Python tests create real, empty venvs.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runyard.build.artifacts import ArtifactStore
from runyard.build.pipeline import (
    BuildCancelled,
    Builder,
    BuildFailed,
    BuildInput,
    _build_environment,
)
from runyard.build.runtimes import NODE_RUNTIMES, Toolchain, detect_toolchains

SHA = "0123456789abcdef0123456789abcdef01234567"
OTHER_SHA = "fedcba9876543210fedcba9876543210fedcba98"
SECRET = "s3cr3t-Value-4711"
NODE = {runtime: Toolchain(runtime, "node", Path("/bin/true"), "20.11.1", ()) for runtime in NODE_RUNTIMES}


class Log(list[str]):
    def __call__(self, line: str) -> None:
        assert "\n" not in line
        self.append(line)

    def running(self) -> list[str]:
        return [line for line in self if line.startswith("[AppRunner] Running ")]


@pytest.fixture
def builder(tmp_path: Path) -> Builder:
    return Builder(tmp_path / "builds", toolchains=NODE)


@pytest.fixture
def app(tmp_path: Path) -> Path:
    directory = tmp_path / "app"
    directory.mkdir()
    (directory / "index.js").write_text("console.log('hi')\n")
    return directory


def api(app: Path, build_command: str | None = "echo built > built.txt", **overrides: Any) -> BuildInput:
    request = BuildInput(
        app_dir=app,
        commit_sha=SHA,
        source_directory=None,
        configuration_source="API",
        runtime="NODEJS_22",
        build_command=build_command,
        start_command="node index.js",
    )
    return dataclasses.replace(request, **overrides)


def repository(app: Path, config: str, **overrides: Any) -> BuildInput:
    (app / "apprunner.yaml").write_text(textwrap.dedent(config))
    values: dict[str, Any] = {"configuration_source": "REPOSITORY", "runtime": None, "start_command": None}
    return api(app, **{**values, **overrides})


def artifacts(builder_root: Path) -> list[str]:
    return sorted(path.name for path in (builder_root / "artifacts").iterdir())


# -- configuration from the API ------------------------------------------------------------------------


def test_api_configuration_builds_and_describes_how_to_run(builder: Builder, app: Path) -> None:
    log = Log()
    request = api(app, port="3000", env=(("GREETING", "hello"),))

    result = builder.build(request, log)

    artifact = result.artifact
    assert len(artifact.artifact_id) == 64 and artifact.path.name == artifact.artifact_id
    assert (artifact.runtime, artifact.toolchain_version, artifact.reused) == ("NODEJS_22", "20.11.1", False)
    assert (artifact.path / "built.txt").read_text() == "built\n"
    assert (artifact.path / "index.js").is_file()
    assert result.run.command == "node index.js"
    assert (result.run.port, result.run.port_env_name, result.run.env) == (3000, None, (("GREETING", "hello"),))
    runtime_env = dict(result.run.runtime_env)
    assert set(runtime_env) == {"PATH", "HOME", "LANG", "PYTHONUNBUFFERED"}
    assert runtime_env["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    assert runtime_env["HOME"] == str(artifact.path)
    assert log[0] == "[AppRunner] Starting source code build of commit 0123456."
    assert "[AppRunner] Using runtime NODEJS_22 (Node.js 20.11.1)." in log
    assert "[AppRunner] Running build command: echo built > built.txt" in log
    assert log[-2:] == ["[AppRunner] Successfully built source code.", log[-1]]
    assert log[-1].startswith("[AppRunner] Build completed in ") and log[-1].endswith(" s.")
    assert builder.artifact(artifact.artifact_id) == dataclasses.replace(artifact, reused=True)
    assert builder.run_config(artifact.artifact_id) == result.run


def test_no_build_command_means_no_build_step_and_port_8080(builder: Builder, app: Path) -> None:
    log = Log()

    result = builder.build(api(app, build_command="  "), log)

    assert log.running() == []
    assert result.run.port == 8080
    assert sorted(path.name for path in result.artifact.path.iterdir()) == ["index.js"]


def test_a_missing_start_command_fails_before_anything_is_built(builder: Builder, app: Path, tmp_path: Path) -> None:
    log = Log()

    with pytest.raises(BuildFailed) as raised:
        builder.build(api(app, start_command=None), log)

    message = "The code configuration has no StartCommand (CodeConfigurationValues.StartCommand is required)."
    assert raised.value.message == message
    assert f"[AppRunner] {message}" in log
    assert log[-1] == "[AppRunner] Failed to build your application source code."
    assert artifacts(tmp_path / "builds") == []


@pytest.mark.parametrize("port", ["0", "65536", "http", "-1"])
def test_an_invalid_port_fails_the_build(builder: Builder, app: Path, port: str) -> None:
    with pytest.raises(BuildFailed, match=r"^Port must be a number from 1 to 65535"):
        builder.build(api(app, port=port), Log())


def test_an_unavailable_runtime_fails_with_what_is_installed(builder: Builder, app: Path) -> None:
    log = Log()

    with pytest.raises(BuildFailed) as raised:
        builder.build(api(app, runtime="CORRETTO_11"), log)

    assert raised.value.message == (
        "Runtime CORRETTO_11 is not available on this Runyard host: Runyard builds Python and Node.js code only. "
        "Available runtimes: NODEJS_12, NODEJS_14, NODEJS_16, NODEJS_18, NODEJS_22."
    )
    assert f"[AppRunner] {raised.value.message}" in log


def test_a_node_major_version_other_than_the_hosts_is_announced(builder: Builder, app: Path) -> None:
    log = Log()

    builder.build(api(app, runtime="NODEJS_18"), log)

    assert (
        "[AppRunner] NODEJS_18 asks for Node.js 18; this host has Node.js 20.11.1, which the build and the service use."
        in log
    )


# -- configuration from apprunner.yaml ----------------------------------------------------------------

FULL_CONFIG = """\
    version: 1.0
    runtime: nodejs18
    build:
      commands:
        pre-build:
          - echo pre-build >> order.txt
        build:
          - echo build >> order.txt
          - echo "$STAGE" > stage.txt
        post-build:
          - echo post-build >> order.txt
      env:
        - name: STAGE
          value: production
    run:
      runtime-version: 18.19.0
      pre-run:
        - echo pre-run >> order.txt
      command: node server.js
      network:
        port: 8000
        env: APP_PORT
      env:
        - name: MY_VAR_EXAMPLE
          value: example
    """


def test_apprunner_yaml_runs_every_phase_in_order_with_build_env(builder: Builder, app: Path) -> None:
    log = Log()

    result = builder.build(repository(app, FULL_CONFIG, runtime="PYTHON_3", start_command="ignored"), log)

    path = result.artifact.path
    assert (path / "order.txt").read_text().split() == ["pre-build", "build", "post-build", "pre-run"]
    assert (path / "stage.txt").read_text() == "production\n"
    assert result.artifact.runtime == "NODEJS_18"  # the file's runtime; the API values are ignored
    assert (result.run.command, result.run.port, result.run.port_env_name) == ("node server.js", 8000, "APP_PORT")
    assert result.run.env == (("MY_VAR_EXAMPLE", "example"),)
    assert log.running() == [
        "[AppRunner] Running build command: echo pre-build >> order.txt",
        "[AppRunner] Running build command: echo build >> order.txt",
        '[AppRunner] Running build command: echo "$STAGE" > stage.txt',
        "[AppRunner] Running build command: echo post-build >> order.txt",
        "[AppRunner] Running pre-run command: echo pre-run >> order.txt",
    ]
    assert "[AppRunner] Reading the configuration file apprunner.yaml." in log
    assert "[AppRunner] Successfully validated apprunner.yaml." in log
    assert (
        "[AppRunner] apprunner.yaml asks for runtime version 18.19.0; this host has Node.js 20.11.1, "
        "which the build and the service use." in log
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            "version: 1.0\nruntime: nodejs18\nbuild:\n  commands:\n    build: [echo]\nrun: {}\n",
            "Invalid apprunner.yaml: missing required key run.command",
        ),
        (
            "version: 1.0\nruntime: nodejs18\nbuild: [\n",
            "Invalid apprunner.yaml line 4, column 1: YAML syntax error: while parsing a flow node, "
            "expected the node content, but found '<stream end>'",
        ),
        (
            "version: 1.0\nruntime: java8\n",
            "Invalid apprunner.yaml: runtime 'java8' is not a managed runtime (expected one of python3, python311, "
            "nodejs12, nodejs14, nodejs16, nodejs18, nodejs22, corretto8, corretto11, go1, dotnet6, php81, ruby31)",
        ),
    ],
)
def test_an_invalid_apprunner_yaml_fails_with_the_exact_problem(
    builder: Builder, app: Path, tmp_path: Path, config: str, message: str
) -> None:
    log = Log()

    with pytest.raises(BuildFailed) as raised:
        builder.build(repository(app, config), log)

    assert raised.value.message == message
    assert f"[AppRunner] {message}" in log
    assert artifacts(tmp_path / "builds") == []


def test_a_missing_apprunner_yaml_fails(builder: Builder, app: Path) -> None:
    request = api(app, configuration_source="REPOSITORY")

    with pytest.raises(BuildFailed) as raised:
        builder.build(request, Log())

    assert raised.value.message == (
        "No apprunner.yaml in the source directory (the service reads its configuration from the repository)."
    )


def test_run_secrets_are_refused_by_name(builder: Builder, app: Path) -> None:
    config = FULL_CONFIG.replace(
        "      env:\n        - name: MY_VAR",
        "      secrets:\n        - name: DB\n          value-from: arn:aws:secretsmanager:us-east-1:1:secret:db\n"
        "      env:\n        - name: MY_VAR",
    )

    with pytest.raises(BuildFailed, match=r"^apprunner.yaml run.secrets is not supported yet: Runyard cannot resolve"):
        builder.build(repository(app, config), Log())


def test_an_unavailable_runtime_in_apprunner_yaml_fails(builder: Builder, app: Path) -> None:
    config = "version: 1.0\nruntime: go1\nbuild:\n  commands:\n    build: [go build]\nrun:\n  command: ./app\n"

    with pytest.raises(BuildFailed, match=r"^Runtime GO_1 is not available on this Runyard host"):
        builder.build(repository(app, config), Log())


# -- commands ------------------------------------------------------------------------------------------


def test_a_failing_command_reports_its_exit_code_and_its_output_is_logged(
    builder: Builder, app: Path, tmp_path: Path
) -> None:
    log = Log()
    command = "echo to-stdout; echo to-stderr >&2; exit 3"

    with pytest.raises(BuildFailed) as raised:
        builder.build(api(app, build_command=command), log)

    assert raised.value.message == f"Build command '{command}' failed with exit code 3."
    assert "[Build] to-stdout" in log and "[Build] to-stderr" in log
    assert log[-2:] == [
        f"[AppRunner] {raised.value.message}",
        "[AppRunner] Failed to build your application source code.",
    ]
    assert artifacts(tmp_path / "builds") == []  # the partial artifact is gone
    assert list((tmp_path / "builds" / "tmp").iterdir()) == []  # and so is the build's HOME


def test_a_command_killed_by_a_signal_says_so(builder: Builder, app: Path) -> None:
    with pytest.raises(BuildFailed, match=r"^Build command 'kill -TERM \$\$' failed with signal SIGTERM\.$"):
        builder.build(api(app, build_command="kill -TERM $$"), Log())


def test_output_lines_are_split_on_newlines_and_carriage_returns(builder: Builder, app: Path) -> None:
    log = Log()

    builder.build(api(app, build_command=r"printf 'one\rtwo\r\nthree\n\n   \nfour'"), log)

    assert [line for line in log if line.startswith("[Build]")] == [
        "[Build] one",
        "[Build] two",
        "[Build] three",
        "[Build] four",
    ]


def test_a_multi_line_command_is_logged_on_one_line(builder: Builder, app: Path) -> None:
    log = Log()

    builder.build(api(app, build_command="echo a\necho b"), log)

    assert "[AppRunner] Running build command: echo a\\necho b" in log
    assert "[Build] a" in log and "[Build] b" in log


def test_commands_run_in_a_clean_environment(
    builder: Builder, app: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNYARD_HOST_ONLY", "leak")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "leak")
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.example/simple")
    monkeypatch.setenv("npm_config_registry", "https://npm.example/")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")

    result = builder.build(api(app, build_command="env > env.txt; pwd > pwd.txt"), Log())

    lines = (result.artifact.path / "env.txt").read_text().splitlines()
    env = dict(line.split("=", 1) for line in lines if "=" in line)
    assert "RUNYARD_HOST_ONLY" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert env["PIP_INDEX_URL"] == "https://mirror.example/simple"
    assert env["npm_config_registry"] == "https://npm.example/"
    assert env["HTTPS_PROXY"] == "http://proxy.example:3128"
    assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    assert env["LANG"] == "C.UTF-8" and env["PYTHONUNBUFFERED"] == "1"
    assert env["PIP_CACHE_DIR"] == str(tmp_path / "builds" / "cache" / "pip")
    assert env["npm_config_cache"] == str(tmp_path / "builds" / "cache" / "npm")
    home, scratch = Path(env["HOME"]), Path(env["TMPDIR"])
    assert home.parent.parent == tmp_path / "builds" / "tmp" and scratch.parent == home.parent
    assert not home.parent.exists()  # deleted after the build
    assert (result.artifact.path / "pwd.txt").read_text().strip() == str(result.artifact.path)


def test_the_build_environment_passes_only_package_index_proxy_and_ca_settings(tmp_path: Path) -> None:
    environ = {
        "HOME": "/root",
        "USER": "root",
        "PATH": "/opt/host/bin:/usr/bin",
        "AWS_ACCESS_KEY_ID": "AKIA",
        "PIP_FIND_LINKS": "/opt/wheels",
        "PIP_CONFIG_FILE": "/etc/operator/pip.conf",
        "PIP_CACHE_DIR": "/host/cache",
        "NPM_CONFIG_REGISTRY": "https://npm.example/",
        "NPM_CONFIG_CACHE": "/host/npm",
        "npm_config_cache": "/host/npm",
        "http_proxy": "http://p:1",
        "no_proxy": "localhost",
        "NO_PROXY": "localhost",
        "SSL_CERT_FILE": "/etc/ssl/ca.pem",
        "SSL_CERT_DIR": "/etc/ssl/certs",
        "REQUESTS_CA_BUNDLE": "/etc/ssl/ca.pem",
    }
    toolchain = Toolchain("PYTHON_3", "python", Path("/usr/bin/python3"), "3.11.2", ())
    venv = tmp_path / "artifact" / ".venv"

    env = _build_environment(
        home=tmp_path / "home",
        tmp=tmp_path / "tmp",
        cache=tmp_path / "cache",
        toolchain=toolchain,
        venv=venv,
        build_env=(("NAME", "value"), ("npm_config_fund", "true")),
        environ=environ,
    )

    assert env == {
        "PATH": f"{venv}/bin:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "TMPDIR": str(tmp_path / "tmp"),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "npm_config_update_notifier": "false",
        "npm_config_fund": "true",  # the user's build env wins
        "npm_config_audit": "false",
        "PIP_FIND_LINKS": "/opt/wheels",
        "PIP_CONFIG_FILE": "/etc/operator/pip.conf",
        "NPM_CONFIG_REGISTRY": "https://npm.example/",
        "http_proxy": "http://p:1",
        "no_proxy": "localhost",
        "NO_PROXY": "localhost",
        "SSL_CERT_FILE": "/etc/ssl/ca.pem",
        "SSL_CERT_DIR": "/etc/ssl/certs",
        "PIP_CACHE_DIR": str(tmp_path / "cache" / "pip"),
        "npm_config_cache": str(tmp_path / "cache" / "npm"),
        "VIRTUAL_ENV": str(venv),
        "NAME": "value",
    }


def test_env_values_never_appear_in_the_log(builder: Builder, app: Path) -> None:
    config = f"""\
        version: 1.0
        runtime: nodejs22
        build:
          commands:
            build:
              - test "$TOKEN" = "{SECRET}"
              - test -n "$TOKEN" && exit 7
          env:
            - name: TOKEN
              value: {SECRET}
        run:
          command: node index.js
          env:
            - name: RUN_TOKEN
              value: {SECRET}
        """
    log = Log()

    with pytest.raises(BuildFailed) as raised:
        builder.build(repository(app, config), log)

    assert raised.value.message == """Build command 'test -n "$TOKEN" && exit 7' failed with exit code 7."""
    assert log.running()[0].startswith('[AppRunner] Running build command: test "$TOKEN" = ')  # commands are shown
    assert not [line for line in log if SECRET in line and not line.startswith("[AppRunner] Running ")]
    log.clear()

    with pytest.raises(BuildFailed):
        builder.build(api(app, build_command="exit 1", env=(("RUN_TOKEN", SECRET),)), log)
    assert not [line for line in log if SECRET in line]


@pytest.mark.parametrize("name", ["A=B", ""])
def test_env_names_a_process_cannot_hold_are_refused(builder: Builder, app: Path, name: str) -> None:
    with pytest.raises(BuildFailed, match=r"^RuntimeEnvironmentVariables: .* is not a valid environment variable"):
        builder.build(api(app, env=((name, SECRET),)), Log())


def test_cancel_stops_a_long_command_and_its_children(builder: Builder, app: Path, tmp_path: Path) -> None:
    cancel = threading.Event()
    pid_file = tmp_path / "sleep.pid"
    log = Log()
    threading.Timer(0.5, cancel.set).start()
    started = time.monotonic()

    with pytest.raises(BuildCancelled) as raised:
        builder.build(api(app, build_command=f"sleep 60 & echo $! > {pid_file}; wait"), log, cancel)

    assert time.monotonic() - started < 5
    assert raised.value.message == "The build was cancelled."
    assert log[-2:] == [
        "[AppRunner] The build was cancelled.",
        "[AppRunner] Failed to build your application source code.",
    ]
    _assert_ends(int(pid_file.read_text()))
    assert artifacts(tmp_path / "builds") == []


def test_the_build_times_out(tmp_path: Path, app: Path) -> None:
    builder = Builder(tmp_path / "builds", toolchains=NODE, timeout=0.5)

    with pytest.raises(BuildFailed) as raised:
        builder.build(api(app, build_command="sleep 30"), Log())

    assert raised.value.message == "The build timed out after 0.5 s while running 'sleep 30'."
    assert not isinstance(raised.value, BuildCancelled)


def test_background_processes_do_not_hold_the_build(builder: Builder, app: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "daemon.pid"
    started = time.monotonic()

    builder.build(api(app, build_command=f"sleep 30 & echo $! > {pid_file}; echo done"), Log())

    assert time.monotonic() - started < 5
    _assert_ends(int(pid_file.read_text()))


def test_a_command_that_closes_its_output_still_runs_to_the_end(builder: Builder, app: Path) -> None:
    result = builder.build(api(app, build_command="exec >/dev/null 2>&1; sleep 0.3; echo late > late.txt"), Log())

    assert (result.artifact.path / "late.txt").read_text() == "late\n"


def _assert_ends(pid: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return
        if stat.rpartition(")")[2].split()[0] == "Z":  # killed, waiting for init to reap it
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    pytest.fail(f"process {pid} outlived the build")


# -- artifacts -----------------------------------------------------------------------------------------


def test_an_identical_build_reuses_the_artifact_without_running_commands(builder: Builder, app: Path) -> None:
    first = builder.build(api(app), Log())
    log = Log()

    second = builder.build(api(app), log)

    assert second.artifact == dataclasses.replace(first.artifact, reused=True)
    assert log.running() == []
    assert f"[AppRunner] Reusing the build of commit 0123456 (artifact {first.artifact.artifact_id[:12]})" in log


def test_run_settings_do_not_change_the_artifact(builder: Builder, app: Path) -> None:
    first = builder.build(api(app, env=(("A", "1"),), port="8080"), Log())

    second = builder.build(api(app, env=(("A", "2"),), port="9000", start_command="node other.js"), Log())

    assert second.artifact.artifact_id == first.artifact.artifact_id and second.artifact.reused
    assert (second.run.env, second.run.port, second.run.command) == ((("A", "2"),), 9000, "node other.js")


@pytest.mark.parametrize(
    "change",
    [
        {"commit_sha": OTHER_SHA},
        {"source_directory": "service"},
        {"build_command": "echo other"},
        {"runtime": "NODEJS_18"},
    ],
)
def test_what_determines_the_build_changes_the_artifact(builder: Builder, app: Path, change: dict[str, str]) -> None:
    first = builder.build(api(app), Log())

    second = builder.build(api(app, **change), Log())

    assert second.artifact.artifact_id != first.artifact.artifact_id and not second.artifact.reused


def test_equivalent_source_directories_share_the_artifact(builder: Builder, app: Path) -> None:
    first = builder.build(api(app, source_directory="/service/"), Log())

    assert builder.build(api(app, source_directory="service"), Log()).artifact.artifact_id == first.artifact.artifact_id
    assert builder.build(api(app, source_directory="/"), Log()).artifact.artifact_id == (
        builder.build(api(app, source_directory=None), Log()).artifact.artifact_id
    )


def test_a_build_env_change_changes_the_artifact(builder: Builder, app: Path) -> None:
    first = builder.build(repository(app, FULL_CONFIG), Log())

    second = builder.build(repository(app, FULL_CONFIG.replace("value: production", "value: staging")), Log())

    assert second.artifact.artifact_id != first.artifact.artifact_id


def test_a_partial_artifact_left_by_a_crash_is_rebuilt(builder: Builder, app: Path, tmp_path: Path) -> None:
    first = builder.build(api(app), Log())
    artifact_id = first.artifact.artifact_id
    (tmp_path / "builds" / "artifacts" / f"{artifact_id}.json").unlink()  # as if the build never finished
    (first.artifact.path / "stale.txt").write_text("from the crashed build")
    assert builder.artifact(artifact_id) is None
    log = Log()

    second = builder.build(api(app), log)

    assert not second.artifact.reused and second.artifact.artifact_id == artifact_id
    assert "[AppRunner] Removed an incomplete earlier build of the same source and configuration." in log
    assert not (second.artifact.path / "stale.txt").exists()
    assert builder.artifact(artifact_id) is not None


def test_concurrent_builds_of_one_artifact_build_it_once(builder: Builder, app: Path) -> None:
    logs = [Log(), Log()]
    results = []

    def build(log: Log) -> None:
        results.append(builder.build(api(app, build_command="sleep 0.5; echo built > built.txt"), log))

    threads = [threading.Thread(target=build, args=(log,)) for log in logs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(result.artifact.reused for result in results) == [False, True]
    assert len({result.artifact.artifact_id for result in results}) == 1
    assert sum(len(log.running()) for log in logs) == 1
    assert any(
        "[AppRunner] Waiting for another build of the same source and configuration to finish." in log for log in logs
    )


def test_cancel_while_waiting_for_another_build(builder: Builder, app: Path) -> None:
    request = api(app, build_command="sleep 1")
    other = threading.Thread(target=builder.build, args=(request, Log()))
    other.start()
    time.sleep(0.2)
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()

    with pytest.raises(BuildCancelled):
        builder.build(request, Log(), cancel)
    other.join()


def test_remove_deletes_an_artifact_and_tolerates_absent_ones(builder: Builder, app: Path, tmp_path: Path) -> None:
    result = builder.build(api(app), Log())

    builder.remove(result.artifact.artifact_id)
    builder.remove(result.artifact.artifact_id)
    builder.remove("../../etc")

    assert builder.artifact(result.artifact.artifact_id) is None
    assert builder.run_config(result.artifact.artifact_id) is None
    assert artifacts(tmp_path / "builds") == []
    assert builder.artifact("not-an-id") is None


def test_the_source_is_copied_without_git_or_links_leaving_the_tree(
    builder: Builder, app: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "host-secret.txt"
    outside.write_text("host file")
    (app / ".git").mkdir()
    (app / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (app / "lib").mkdir()
    (app / "lib" / "util.js").write_text("module.exports = 1\n")
    (app / "run.sh").write_text("#!/bin/sh\n")
    (app / "run.sh").chmod(0o755)
    (app / "inside").symlink_to("lib/util.js")
    (app / "absolute-inside").symlink_to(app / "lib")
    (app / "lib" / "up").symlink_to("../index.js")
    (app / "outside").symlink_to(outside)
    (app / "escape").symlink_to("../host-secret.txt")
    before = sorted(str(path.relative_to(app)) for path in app.rglob("*"))
    log = Log()

    path = builder.build(api(app, build_command=None), log).artifact.path

    assert sorted(str(item.relative_to(path)) for item in path.rglob("*")) == sorted(
        ["absolute-inside", "index.js", "inside", "lib", "lib/up", "lib/util.js", "run.sh"]
    )
    assert os.readlink(path / "inside") == "lib/util.js"
    assert os.readlink(path / "absolute-inside") == "lib"  # relative now: it must not point into the checkout
    assert (path / "lib" / "up").read_text() == "console.log('hi')\n"
    assert os.access(path / "run.sh", os.X_OK)
    for name in ("escape", "outside"):
        assert f"[AppRunner] Leaving out the symbolic link {name} (it points outside the source directory)." in log
    assert sorted(str(item.relative_to(app)) for item in app.rglob("*")) == before  # the source is untouched


# -- Python: a real virtual environment, no package installs --------------------------------------------


@pytest.fixture(scope="module")
def python_toolchains() -> dict[str, Toolchain]:
    toolchains = {name: tool for name, tool in detect_toolchains().items() if tool.language == "python"}
    if "PYTHON_3" not in toolchains:
        pytest.skip("no python3 on PATH")
    return toolchains


@pytest.fixture
def python_builder(tmp_path: Path, python_toolchains: dict[str, Toolchain]) -> Iterator[Builder]:
    yield Builder(tmp_path / "builds", toolchains=python_toolchains)


def test_python_builds_get_a_fresh_venv_first_on_path(python_builder: Builder, app: Path) -> None:
    (app / ".venv" / "bin").mkdir(parents=True)
    (app / ".venv" / "bin" / "python").write_text("committed by mistake")
    log = Log()

    result = python_builder.build(
        api(app, runtime="PYTHON_3", build_command='python -c "import sys; print(sys.prefix)"'), log
    )

    venv = result.artifact.path / ".venv"
    assert f"[Build] {venv}" in log  # `python` in build commands is the venv's
    assert (venv / "bin" / "pip").is_file()
    assert "[AppRunner] Creating the Python virtual environment .venv." in log
    assert "[AppRunner] Leaving out the source's .venv: the build creates a fresh virtual environment." in log
    runtime_env = dict(result.run.runtime_env)
    assert runtime_env["PATH"] == f"{venv}/bin:/usr/local/bin:/usr/bin:/bin"
    assert runtime_env["VIRTUAL_ENV"] == str(venv)


def test_a_new_builder_sweeps_what_a_crash_left_but_not_running_builds(
    builder: Builder, app: Path, tmp_path: Path
) -> None:
    root = tmp_path / "builds"
    done = builder.build(api(app), Log()).artifact
    crashed = builder.build(api(app, commit_sha=OTHER_SHA), Log()).artifact
    (root / "artifacts" / f"{crashed.artifact_id}.json").rename(root / "artifacts" / f".{crashed.artifact_id}.json.1.2")
    stale_workspace, fresh_workspace = root / "tmp" / "stale", root / "tmp" / "fresh"
    for workspace in (stale_workspace, fresh_workspace):
        (workspace / "home").mkdir(parents=True)
    os.utime(stale_workspace, (time.time() - 7200, time.time() - 7200))
    running = "a" * 64
    (root / "artifacts" / running).mkdir()
    store = ArtifactStore(root)

    with store.locked(running):  # a build of this id is under way elsewhere
        Builder(root, toolchains=NODE, timeout=600)

    assert artifacts(root) == sorted([done.artifact_id, f"{done.artifact_id}.json", running])
    assert not stale_workspace.exists() and fresh_workspace.exists()
