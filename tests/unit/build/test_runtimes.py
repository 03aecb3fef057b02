from __future__ import annotations

import json
from pathlib import Path

import botocore.session
import pytest

from runyard.build.runtimes import (
    API_RUNTIMES,
    NODE_RUNTIMES,
    RuntimeUnavailable,
    Toolchain,
    detect_toolchains,
    require_runtime,
)
from runyard.errors import InvalidInput

NODES = list(NODE_RUNTIMES)


def _script(directory: Path, name: str, body: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def _fake_python(directory: Path, name: str, version: str) -> Path:
    """A `python` that answers the probe like a real interpreter living at its own path would."""
    path = directory / name
    answer = json.dumps({"version": version, "executable": str(path)})
    return _script(directory, name, f"echo '{answer}'")


def _fake_node(directory: Path, version: str = "v18.19.0", *, npm: bool = True) -> None:
    _script(directory, "node", f"echo {version}")
    if npm:
        _script(directory, "npm", "echo 10.2.3")


def test_python3_of_any_minor_version_serves_python_3_only(tmp_path: Path) -> None:
    python = _fake_python(tmp_path, "python3", "3.12.1")

    found = detect_toolchains(str(tmp_path))

    assert found == {"PYTHON_3": Toolchain("PYTHON_3", "python", python, "3.12.1", ())}


def test_python_311_prefers_python3_11_next_to_a_newer_python3(tmp_path: Path) -> None:
    _fake_python(tmp_path / "a", "python3", "3.12.1")
    python311 = _fake_python(tmp_path / "b", "python3.11", "3.11.9")

    found = detect_toolchains(f"{tmp_path / 'a'}:{tmp_path / 'b'}")

    assert found["PYTHON_3"].version == "3.12.1"
    assert found["PYTHON_311"] == Toolchain("PYTHON_311", "python", python311, "3.11.9", ())


def test_a_python3_that_is_3_11_serves_both_python_runtimes(tmp_path: Path) -> None:
    _fake_python(tmp_path, "python3", "3.11.4")

    assert sorted(detect_toolchains(str(tmp_path))) == ["PYTHON_3", "PYTHON_311"]


@pytest.mark.parametrize("body", ["exit 1", "echo not-json", 'echo \'{"version": "2.7.18", "executable": "/bin/sh"}\''])
def test_a_python3_that_fails_the_probe_or_is_not_python_3_is_ignored(tmp_path: Path, body: str) -> None:
    _script(tmp_path, "python3", body)

    assert detect_toolchains(str(tmp_path)) == {}


def test_every_nodejs_runtime_uses_the_one_node_on_path(tmp_path: Path) -> None:
    _fake_node(tmp_path)

    found = detect_toolchains(str(tmp_path))

    assert sorted(found) == sorted(NODES)
    for runtime in NODES:
        assert found[runtime] == Toolchain(runtime, "node", tmp_path / "node", "18.19.0", (tmp_path,))
    assert found["NODEJS_22"].display_name == "Node.js 18.19.0"
    assert found["NODEJS_22"].major == 18


def test_node_and_npm_in_different_directories_both_go_on_path(tmp_path: Path) -> None:
    _script(tmp_path / "node-bin", "node", "echo v22.1.0")
    _script(tmp_path / "npm-bin", "npm", "echo 10.0.0")

    found = detect_toolchains(f"{tmp_path / 'node-bin'}:{tmp_path / 'npm-bin'}")

    assert found["NODEJS_22"].bin_dirs == (tmp_path / "node-bin", tmp_path / "npm-bin")


def test_node_without_npm_is_not_a_runtime(tmp_path: Path) -> None:
    _fake_node(tmp_path, npm=False)

    assert detect_toolchains(str(tmp_path)) == {}


def test_an_empty_path_finds_nothing(tmp_path: Path) -> None:
    assert detect_toolchains(str(tmp_path / "nothing-here")) == {}


def test_the_host_python_is_found_with_its_real_interpreter() -> None:
    found = detect_toolchains()

    python = found["PYTHON_3"]
    assert python.language == "python" and python.executable.is_file()
    assert python.version.startswith("3.")
    assert ".venv" not in python.executable.parts  # the interpreter a venv is based on, not Runyard's venv


def test_require_runtime_returns_the_toolchain(tmp_path: Path) -> None:
    toolchain = Toolchain("PYTHON_3", "python", tmp_path / "python3", "3.11.7", ())

    assert require_runtime("PYTHON_3", {"PYTHON_3": toolchain}) is toolchain


def test_missing_node_names_what_is_installed(tmp_path: Path) -> None:
    pythons = {
        name: Toolchain(name, "python", tmp_path / "python3", "3.11.7", ()) for name in ("PYTHON_311", "PYTHON_3")
    }

    with pytest.raises(RuntimeUnavailable) as raised:
        require_runtime("NODEJS_18", pythons)

    assert raised.value.message == (
        "Runtime NODEJS_18 is not available on this Runyard host: node and npm were not found on PATH. "
        "Available runtimes: PYTHON_3, PYTHON_311."
    )
    assert isinstance(raised.value, InvalidInput)


@pytest.mark.parametrize(
    ("runtime", "reason"),
    [
        ("PYTHON_3", "python3 was not found on PATH"),
        ("PYTHON_311", "Python 3.11 (python3.11 or python3) was not found on PATH"),
        ("CORRETTO_11", "Runyard builds Python and Node.js code only"),
        ("RUBY_31", "Runyard builds Python and Node.js code only"),
        ("COBOL_1", "it is not an App Runner runtime"),
    ],
)
def test_unavailable_runtimes_say_why(runtime: str, reason: str) -> None:
    with pytest.raises(RuntimeUnavailable) as raised:
        require_runtime(runtime, {})

    assert raised.value.message == (
        f"Runtime {runtime} is not available on this Runyard host: {reason}. Available runtimes: none."
    )


def test_api_runtimes_are_the_api_models_runtime_enum() -> None:
    model = botocore.session.get_session().get_service_model("apprunner")

    assert sorted(API_RUNTIMES) == sorted(model.shape_for("Runtime").enum)
