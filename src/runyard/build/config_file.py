"""`apprunner.yaml`, the App Runner configuration file: parsed and validated into frozen values.

Follows the guide's "App Runner configuration file reference": a top section (`version`, `runtime`),
a build section (`commands` in pre-build/build/post-build phases, `env`) and a run section
(`runtime-version`, `pre-run`, `command`, `network`, `env`, `secrets`). Unknown keys are refused
because they are almost always typos that would otherwise be silently ignored. Every error is a
`ConfigFileError` naming the key path; messages never repeat an environment or secret value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

CONFIG_FILE_NAME = "apprunner.yaml"
SUPPORTED_VERSION = "1.0"
DEFAULT_PORT = "8080"

# The file's runtime names (`<language-name><major-version>`) and the API's `Runtime` enum.
RUNTIME_TO_API: Mapping[str, str] = MappingProxyType(
    {
        "python3": "PYTHON_3",
        "python311": "PYTHON_311",
        "nodejs12": "NODEJS_12",
        "nodejs14": "NODEJS_14",
        "nodejs16": "NODEJS_16",
        "nodejs18": "NODEJS_18",
        "nodejs22": "NODEJS_22",
        "corretto8": "CORRETTO_8",
        "corretto11": "CORRETTO_11",
        "go1": "GO_1",
        "dotnet6": "DOTNET_6",
        "php81": "PHP_81",
        "ruby31": "RUBY_31",
    }
)

_TOP_KEYS = ("version", "runtime", "build", "run")
_BUILD_KEYS = ("commands", "env")
_PHASE_KEYS = ("pre-build", "build", "post-build")
_RUN_KEYS = ("runtime-version", "pre-run", "command", "network", "env", "secrets")
_NETWORK_KEYS = ("port", "env")
_RUNTIME_VERSION = re.compile(r"\d+(\.\d+){0,2}")
_PORT = re.compile(r"\d{1,5}")


class ConfigFileError(ValueError):
    """apprunner.yaml is missing, unreadable or not as the reference defines it; the message says where."""


@dataclass(frozen=True, slots=True)
class BuildSection:
    build: tuple[str, ...]
    pre_build: tuple[str, ...] = ()
    post_build: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class NetworkSection:
    port: str = DEFAULT_PORT
    env: str | None = None  # also receives the port number, in addition to PORT


@dataclass(frozen=True, slots=True)
class RunSection:
    command: str
    runtime_version: str | None = None  # major[.minor[.patch]]; None means the latest
    pre_run: tuple[str, ...] = ()
    network: NetworkSection = field(default_factory=NetworkSection)
    env: tuple[tuple[str, str], ...] = ()
    secrets: tuple[tuple[str, str], ...] = ()  # (name, value-from ARN or parameter name)


@dataclass(frozen=True, slots=True)
class ConfigFile:
    version: str
    runtime: str
    build: BuildSection
    run: RunSection

    @property
    def api_runtime(self) -> str:
        """The API's `Runtime` value for this file's runtime, e.g. `PYTHON_3` for `python3`."""
        return RUNTIME_TO_API[self.runtime]


class _Loader(yaml.SafeLoader):
    """A SafeLoader that keeps plain scalars as the text written.

    Without this, `runtime-version: 3.10` would arrive as the float 3.1, `value: 1.10` as 1.1 and
    `value: yes` as True; App Runner treats these values as strings, so the text is what counts.
    """


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if not tag.endswith((":bool", ":int", ":float", ":timestamp"))]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_config_file(source_dir: Path) -> ConfigFile:
    """Read and parse `apprunner.yaml` from the root of a source directory."""
    path = source_dir / CONFIG_FILE_NAME
    if not path.is_file():
        hint = (
            " (found apprunner.yml; App Runner reads only apprunner.yaml)"
            if (source_dir / "apprunner.yml").exists()
            else ""
        )
        raise ConfigFileError(f"no {CONFIG_FILE_NAME} in the source directory{hint}")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigFileError(f"{CONFIG_FILE_NAME}: the file is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigFileError(f"{CONFIG_FILE_NAME}: cannot read the file ({exc.strerror})") from None
    return parse_config_file(text)


def parse_config_file(text: str) -> ConfigFile:
    """Parse the text of an `apprunner.yaml`; raises `ConfigFileError` saying what to fix."""
    try:
        document = yaml.load(text, Loader=_Loader)  # a SafeLoader: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        # Only the problem and its position: PyYAML's snippet of the line could show a secret.
        mark = exc.problem_mark or exc.context_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = ", ".join(part for part in (exc.context, exc.problem) if part)
        raise ConfigFileError(f"{CONFIG_FILE_NAME}{where}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:  # the reader's bad-character errors: no mark, a position instead
        raise ConfigFileError(f"{CONFIG_FILE_NAME}: YAML error: {str(exc).splitlines()[0]}") from None
    if document is None:
        raise _error("the file is empty (expected version, runtime, build, run)")
    if not isinstance(document, dict):
        raise _error(f"the file must be a mapping of keys (version, runtime, build, run), got {_describe(document)}")
    top = _mapping(document, "", _TOP_KEYS)

    version = _string(top.get("version"), "version")
    if version != SUPPORTED_VERSION:
        raise _error(f"version must be {SUPPORTED_VERSION}, got {version!r}")
    runtime = _string(top.get("runtime"), "runtime")
    if runtime not in RUNTIME_TO_API:
        raise _error(f"runtime {runtime!r} is not a managed runtime (expected one of {', '.join(RUNTIME_TO_API)})")
    return ConfigFile(version, runtime, _build_section(top.get("build")), _run_section(top.get("run")))


def _build_section(value: object) -> BuildSection:
    section = _mapping(value, "build", _BUILD_KEYS)
    phases = _mapping(section.get("commands"), "build.commands", _PHASE_KEYS)
    build = _commands(phases.get("build"), "build.commands.build")
    if not build:
        raise _error("missing required key build.commands.build")
    return BuildSection(
        build=build,
        pre_build=_commands(phases.get("pre-build"), "build.commands.pre-build"),
        post_build=_commands(phases.get("post-build"), "build.commands.post-build"),
        env=_pairs(section.get("env"), "build.env", "value"),
    )


def _run_section(value: object) -> RunSection:
    section = _mapping(value, "run", _RUN_KEYS)
    runtime_version: str | None = None
    if section.get("runtime-version") is not None:
        runtime_version = _string(section["runtime-version"], "run.runtime-version")
        if not _RUNTIME_VERSION.fullmatch(runtime_version):
            example = "major[.minor[.patch]], for example 3.11 or 18.19.0"
            raise _error(f"run.runtime-version must be {example}, got {runtime_version!r}")
    return RunSection(
        command=_string(section.get("command"), "run.command"),
        runtime_version=runtime_version,
        pre_run=_commands(section.get("pre-run"), "run.pre-run"),
        network=_network(section.get("network")),
        env=_pairs(section.get("env"), "run.env", "value"),
        secrets=_pairs(section.get("secrets"), "run.secrets", "value-from"),
    )


def _network(value: object) -> NetworkSection:
    section = _mapping(value, "run.network", _NETWORK_KEYS)
    port = section.get("port")
    if port is None:
        port = DEFAULT_PORT
    elif not (isinstance(port, str) and _PORT.fullmatch(port) and 1 <= int(port) <= 65535):
        raise _error(f"run.network.port must be a port number from 1 to 65535, got {_describe(port)}")
    env = section.get("env")
    return NetworkSection(port=str(int(port)), env=None if env is None else _string(env, "run.network.env"))


def _mapping(value: object, path: str, allowed: tuple[str, ...], *, sensitive: bool = False) -> dict[str, Any]:
    """A section as a dict; an absent or empty section is {}, so its required keys are reported by full path."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _error(f"{path} must be a mapping, got {_describe(value, sensitive)}")
    for key in value:
        if key not in allowed:
            where = f"in {path}" if path else "at the top level"
            raise _error(f"unknown key {str(key)!r} {where} (expected {', '.join(allowed)})")
    return value


def _string(value: object, path: str, *, allow_empty: bool = False, sensitive: bool = False) -> str:
    if value is None:
        raise _error(f"missing required key {path}")
    if not isinstance(value, str):
        raise _error(f"{path} must be a string, got {_describe(value, sensitive)}")
    if not value and not allow_empty:
        raise _error(f"{path} must not be empty")
    return value


def _commands(value: object, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _error(f"{path} must be a list of commands, one per '- ' line, got {_describe(value)}")
    for index, command in enumerate(value):
        if isinstance(command, dict):
            # `- echo a: b` is a mapping in YAML; the fix is quoting, so say so.
            raise _error(f"{path}[{index}] must be a command string, got a mapping (quote commands that contain ': ')")
        if not isinstance(command, str) or not command:
            raise _error(f"{path}[{index}] must be a command string, got {_describe(command)}")
    return tuple(value)


def _pairs(value: object, path: str, value_key: str) -> tuple[tuple[str, str], ...]:
    """`- name: …` / `value-key: …` entries (env or secrets) as (name, value) pairs."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _error(f"{path} must be a list of entries with name and {value_key}, got {_describe(value)}")
    pairs = []
    for index, entry in enumerate(value):
        # Values never appear in messages: env values hold credentials as often as secrets do.
        where = f"{path}[{index}]"
        item = _mapping(entry, where, ("name", value_key), sensitive=True)
        name = _string(item.get("name"), f"{where}.name")
        text = _string(item.get(value_key), f"{where}.{value_key}", allow_empty=value_key == "value", sensitive=True)
        pairs.append((name, text))
    return tuple(pairs)


def _describe(value: object, sensitive: bool = False) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return "a plain value" if sensitive else repr(value)


def _error(message: str) -> ConfigFileError:
    return ConfigFileError(f"{CONFIG_FILE_NAME}: {message}")
