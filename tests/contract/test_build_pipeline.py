"""Real builds: pip installs Flask from the package index, npm installs express from the npm registry.

The builds are shared by module-scoped fixtures so that each package install happens once.
"""

from __future__ import annotations

import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from runyard.build.pipeline import Builder, BuildFailed, BuildInput, BuildResult
from runyard.build.runtimes import Toolchain, detect_toolchains

SHA = "1111111111111111111111111111111111111111"
SECRET = "Sup3r-Secret-Run-Value"
BUILD_SECRET = "Sup3r-Secret-Build-Value"
SERVER = """\
import os
from flask import Flask

app = Flask(__name__)

@app.route("/")
def root():
    return "Hello, " + os.environ.get("NAME", "world") + "!"

if __name__ == "__main__":
    app.run(host="0.0.0.0", port=int(os.environ.get("PORT", "8080")))
"""


class Log(list[str]):
    def __call__(self, line: str) -> None:
        self.append(line)


@pytest.fixture(scope="module")
def toolchains() -> dict[str, Toolchain]:
    return detect_toolchains()


@pytest.fixture(scope="module")
def builder(tmp_path_factory: pytest.TempPathFactory, toolchains: dict[str, Toolchain]) -> Builder:
    return Builder(tmp_path_factory.mktemp("builds"), toolchains=toolchains)


@pytest.fixture(scope="module")
def flask_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    app = tmp_path_factory.mktemp("flask-app")
    (app / "requirements.txt").write_text("Flask\n")
    (app / "server.py").write_text(SERVER)
    return app


def flask_request(app: Path, **run: str) -> BuildInput:
    return BuildInput(
        app_dir=app,
        commit_sha=SHA,
        source_directory=None,
        configuration_source="API",
        runtime="PYTHON_3",
        build_command="pip install -r requirements.txt",
        start_command="python server.py",
        port=run.get("port", "8000"),
        env=(("NAME", run.get("name", SECRET)),),
    )


@pytest.fixture(scope="module")
def flask_build(builder: Builder, flask_app: Path) -> tuple[BuildResult, Log, float]:
    log = Log()
    started = time.monotonic()
    result = builder.build(flask_request(flask_app), log)
    return result, log, time.monotonic() - started


def run_in(result: BuildResult, *argv: str) -> str:
    """Run a command the way an instance runs: in the artifact, with the runtime env and the user's env."""
    env = {**dict(result.run.runtime_env), **dict(result.run.env)}
    completed = subprocess.run(
        argv, cwd=result.artifact.path, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return completed.stdout.strip()


def test_a_flask_app_builds_into_its_own_venv(flask_build: tuple[BuildResult, Log, float]) -> None:
    result, log, _ = flask_build
    venv = result.artifact.path / ".venv"

    assert run_in(result, str(venv / "bin" / "python"), "-c", "import flask; print(flask.__file__)").startswith(
        str(venv / "lib")
    )
    # `python` on the run PATH is the venv's, so the start command finds Flask.
    assert run_in(result, "python", "-c", "import flask, sys; print(sys.prefix)") == str(venv)
    assert result.run.command == "python server.py"
    assert (result.run.port, result.run.env) == (8000, (("NAME", SECRET),))
    assert any(line.startswith("[Build] Successfully installed") and "Flask" in line for line in log)
    assert "[AppRunner] Running build command: pip install -r requirements.txt" in log


def test_env_values_never_appear_in_the_build_log(flask_build: tuple[BuildResult, Log, float]) -> None:
    _, log, _ = flask_build

    assert not [line for line in log if SECRET in line]


def test_an_identical_build_is_reused_at_once(
    builder: Builder, flask_app: Path, flask_build: tuple[BuildResult, Log, float]
) -> None:
    first, _, first_seconds = flask_build
    log = Log()
    started = time.monotonic()

    second = builder.build(flask_request(flask_app), log)

    seconds = time.monotonic() - started
    assert second.artifact.reused and second.artifact.artifact_id == first.artifact.artifact_id
    assert seconds < 0.5 and seconds < first_seconds / 4
    assert not [line for line in log if line.startswith(("[AppRunner] Running", "[Build]"))]


def test_a_run_settings_change_reuses_the_artifact(
    builder: Builder, flask_app: Path, flask_build: tuple[BuildResult, Log, float]
) -> None:
    first, _, _ = flask_build

    second = builder.build(flask_request(flask_app, name="other", port="9000"), Log())

    assert second.artifact.artifact_id == first.artifact.artifact_id and second.artifact.reused
    assert (second.run.port, second.run.env) == (9000, (("NAME", "other"),))
    assert run_in(second, "sh", "-c", 'echo "$NAME"') == "other"


def test_apprunner_yaml_with_every_section(builder: Builder, tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "requirements.txt").write_text("Flask\n")
    (app / "server.py").write_text(SERVER)
    (app / "apprunner.yaml").write_text(
        textwrap.dedent(
            f"""\
            version: 1.0
            runtime: python3
            build:
              commands:
                pre-build:
                  - python -c "import sys; assert sys.prefix.endswith('.venv')"
                build:
                  - pip install -r requirements.txt
                post-build:
                  - python -c "import flask" && echo "$BUILD_TOKEN" > token.txt
              env:
                - name: BUILD_TOKEN
                  value: {BUILD_SECRET}
            run:
              pre-run:
                - python -c "import flask; open('pre-run.txt', 'w').write('ok')"
              command: python server.py
              network:
                port: 8000
                env: MY_APP_PORT
              env:
                - name: NAME
                  value: {SECRET}
            """
        )
    )
    request = BuildInput(app, SHA.replace("1", "2"), None, "REPOSITORY")
    log = Log()

    result = builder.build(request, log)

    assert (result.artifact.path / "token.txt").read_text() == f"{BUILD_SECRET}\n"
    assert (result.artifact.path / "pre-run.txt").read_text() == "ok"
    assert (result.run.command, result.run.port, result.run.port_env_name) == ("python server.py", 8000, "MY_APP_PORT")
    assert result.run.env == (("NAME", SECRET),)
    assert [line.split(":", 1)[0] for line in log if line.startswith("[AppRunner] Running ")] == [
        "[AppRunner] Running build command",
        "[AppRunner] Running build command",
        "[AppRunner] Running build command",
        "[AppRunner] Running pre-run command",
    ]
    assert not [line for line in log if SECRET in line or BUILD_SECRET in line]


def test_an_invalid_apprunner_yaml_fails_with_the_exact_problem(builder: Builder, tmp_path: Path) -> None:
    (tmp_path / "apprunner.yaml").write_text("version: 1.0\nruntime: python3\nrun:\n  command: python app.py\n")
    log = Log()

    with pytest.raises(BuildFailed) as raised:
        builder.build(BuildInput(tmp_path, SHA.replace("1", "3"), None, "REPOSITORY"), log)

    assert raised.value.message == "Invalid apprunner.yaml: missing required key build.commands.build"
    assert "[AppRunner] Invalid apprunner.yaml: missing required key build.commands.build" in log


def test_a_failing_pip_install_fails_the_build_with_its_output_logged(builder: Builder, tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("this-package-does-not-exist-runyard==0.0.1\n")
    log = Log()
    request = BuildInput(
        tmp_path, SHA.replace("1", "4"), None, "API", "PYTHON_3", "pip install -r requirements.txt", "python app.py"
    )

    with pytest.raises(BuildFailed) as raised:
        builder.build(request, log)

    assert raised.value.message == "Build command 'pip install -r requirements.txt' failed with exit code 1."
    assert any(line.startswith("[Build] ERROR:") for line in log)


def test_a_node_app_installs_express_with_npm(
    builder: Builder, toolchains: dict[str, Toolchain], tmp_path: Path
) -> None:
    if "NODEJS_18" not in toolchains:
        pytest.skip("node and npm are not installed on this host")
    (tmp_path / "package.json").write_text(
        '{"name": "hello", "version": "1.0.0", "private": true, "scripts": {"start": "node index.js"},'
        ' "dependencies": {"express": "^4.19.2"}}\n'
    )
    (tmp_path / "index.js").write_text("require('express')().listen(process.env.PORT || 8080)\n")
    request = BuildInput(tmp_path, SHA.replace("1", "5"), None, "API", "NODEJS_18", "npm install", "npm start")
    log = Log()

    result = builder.build(request, log)

    assert (result.artifact.path / "node_modules" / "express" / "package.json").is_file()
    assert run_in(result, "node", "-e", "require('express'); console.log('ok')") == "ok"
    assert any(line.startswith("[Build] added ") for line in log)
    assert f"[AppRunner] Using runtime NODEJS_18 (Node.js {toolchains['NODEJS_18'].version})." in log
