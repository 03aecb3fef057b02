"""App Runner's managed runtimes, mapped onto the toolchains installed on this host.

Runyard builds Python services with the host's `python3` (a fresh virtual environment per build) and
Node.js services with the host's `node` and `npm`. Every NODEJS_<n> runtime uses the one `node` found
on PATH: the build says so when the major versions differ rather than refusing a service that would
most likely run fine. The other runtimes of the API (Corretto, Go, .NET, PHP, Ruby) are not offered.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from runyard.build.config_file import RUNTIME_TO_API
from runyard.errors import InvalidInput

Language = Literal["python", "node"]

# runtime -> (executables to try in order, required (major, minor) or None for any Python 3)
_PYTHON_RUNTIMES: Mapping[str, tuple[tuple[str, ...], tuple[int, int] | None]] = {
    "PYTHON_3": (("python3",), None),
    "PYTHON_311": (("python3.11", "python3"), (3, 11)),
}
NODE_RUNTIMES: Mapping[str, int] = {"NODEJS_12": 12, "NODEJS_14": 14, "NODEJS_16": 16, "NODEJS_18": 18, "NODEJS_22": 22}
# Every runtime of the API's enum, in the API's order (also the order of messages).
API_RUNTIMES: tuple[str, ...] = tuple(RUNTIME_TO_API.values())

_PROBE_TIMEOUT = 20.0
# Asks an interpreter where its real (non-virtual-environment) executable is: venvs are created from
# that, so a Runyard running inside a venv never builds services on top of its own packages.
_PYTHON_PROBE = (
    "import json, platform, sys; "
    "print(json.dumps({'version': platform.python_version(), "
    "'executable': getattr(sys, '_base_executable', '') or sys.executable}))"
)
_NODE_VERSION = re.compile(r"v?(\d+\.\d+\.\d+)")


class RuntimeUnavailable(InvalidInput):
    """The requested runtime cannot be built on this host; the message names the runtimes that can."""


@dataclass(frozen=True, slots=True)
class Toolchain:
    runtime: str  # the API name, e.g. "PYTHON_3"
    language: Language
    executable: Path  # the python3 or node binary
    version: str  # e.g. "3.11.7" / "20.20.2"
    # Directories put on PATH for builds and runs. Empty for Python: the build's virtual environment
    # provides python and pip, and the interpreter's own bin directory would expose the host's tools.
    bin_dirs: tuple[Path, ...]

    @property
    def display_name(self) -> str:
        """e.g. "Python 3.11.7" or "Node.js 20.20.2"."""
        return f"{'Python' if self.language == 'python' else 'Node.js'} {self.version}"

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


def detect_toolchains(path: str | None = None) -> dict[str, Toolchain]:
    """Every API runtime usable on this host (path: a PATH string to search; default os.environ PATH)."""
    search = os.environ.get("PATH", os.defpath) if path is None else path
    found: dict[str, Toolchain] = {}
    for runtime, (names, required) in _PYTHON_RUNTIMES.items():
        python = _find_python(runtime, names, required, search)
        if python is not None:
            found[runtime] = python
    node = _find_node(search)
    if node is not None:
        for runtime in NODE_RUNTIMES:
            found[runtime] = Toolchain(runtime, "node", *node)
    return found


def require_runtime(runtime: str, toolchains: Mapping[str, Toolchain]) -> Toolchain:
    """The toolchain for `runtime`, or `RuntimeUnavailable` saying why not and what is installed."""
    toolchain = toolchains.get(runtime)
    if toolchain is not None:
        return toolchain
    available = ", ".join(_in_api_order(toolchains)) or "none"
    raise RuntimeUnavailable(
        f"Runtime {runtime} is not available on this Runyard host: {_missing_reason(runtime)}. "
        f"Available runtimes: {available}."
    )


def _missing_reason(runtime: str) -> str:
    if runtime in _PYTHON_RUNTIMES:
        names, required = _PYTHON_RUNTIMES[runtime]
        if required is None:
            return "python3 was not found on PATH"
        return f"Python {required[0]}.{required[1]} ({' or '.join(names)}) was not found on PATH"
    if runtime in NODE_RUNTIMES:
        return "node and npm were not found on PATH"
    if runtime in API_RUNTIMES:
        return "Runyard builds Python and Node.js code only"
    return "it is not an App Runner runtime"


def _in_api_order(runtimes: Iterable[str]) -> list[str]:
    order = {name: index for index, name in enumerate(API_RUNTIMES)}
    return sorted(runtimes, key=lambda name: (order.get(name, len(order)), name))


def _find_python(runtime: str, names: tuple[str, ...], required: tuple[int, int] | None, path: str) -> Toolchain | None:
    for name in names:
        candidate = shutil.which(name, path=path)
        if candidate is None:
            continue
        output = _probe([candidate, "-c", _PYTHON_PROBE], path)
        try:
            info = json.loads(output or "")
            version, executable = str(info["version"]), Path(info["executable"])
            major, minor = (int(part) for part in version.split(".")[:2])
        except (ValueError, KeyError, TypeError):
            continue
        if major == 3 and (required is None or (major, minor) == required) and executable.is_file():
            return Toolchain(runtime, "python", executable, version, ())
    return None


def _find_node(path: str) -> tuple[Path, str, tuple[Path, ...]] | None:
    """node's executable, version and bin directories, when both node and npm are on PATH."""
    node, npm = shutil.which("node", path=path), shutil.which("npm", path=path)
    if node is None or npm is None:
        return None
    match = _NODE_VERSION.match((_probe([node, "--version"], path) or "").strip())
    if match is None:
        return None
    # The directories as found on PATH (npm is usually a symlink next to node): resolving them would
    # land in node's library tree, where npm's launcher cannot find node.
    bin_dirs = tuple(dict.fromkeys((Path(node).parent, Path(npm).parent)))
    return Path(node), match.group(1), bin_dirs


def _probe(argv: list[str], path: str) -> str | None:
    """Run a version probe in a minimal environment from `/` (no project-local version files apply)."""
    try:
        completed = subprocess.run(
            argv,
            cwd="/",
            env={"PATH": path, "LANG": "C.UTF-8"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_PROBE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if completed.returncode != 0:
        return None
    return completed.stdout.decode("utf-8", "replace")
