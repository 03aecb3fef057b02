"""Settings: one frozen object, built once from defaults < config file < environment < flags.

Nothing else in Runyard reads the environment for configuration; components receive the
Settings (or the part they need) from the composition root.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "RUNYARD_"


class SettingsError(ValueError):
    """A configuration value is missing, unknown or malformed."""


@dataclass(frozen=True, slots=True)
class Quotas:
    """Per account and region unless said otherwise (App Runner's defaults)."""

    connections: int = 10
    auto_scaling_names: int = 10
    auto_scaling_revisions: int = 10
    observability_names: int = 10
    observability_revisions: int = 10
    vpc_connectors: int = 10
    vpc_ingress_connections: int = 10
    services: int = 30
    max_instances: int = 25
    tags_per_resource: int = 50
    # CodeConnections: connections are per account (they are global), hosts per region.
    codeconnections_connections: int = 250
    codeconnections_hosts: int = 50


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = field(default_factory=lambda: Path.home() / ".runyard")
    host: str = "127.0.0.1"
    port: int = 9000
    http_port: int = 9080
    https_port: int = 9443
    region: str = "us-east-1"
    account_id: str = "000000000000"
    domain_suffix: str = "localhost"
    database_url: str = ""  # empty: SQLite at <data_dir>/runyard.db
    log_level: str = "info"
    access_key_id: str = ""  # empty: generated on first start into the data directory
    secret_access_key: str = ""
    activator_port: int = 0  # 0: any free loopback port (HAProxy is told which one)
    haproxy_binary: str = "haproxy"
    start_timeout: float = 300.0  # seconds a new instance has to pass its health check
    stop_grace: float = 10.0  # seconds between SIGTERM and SIGKILL when an instance stops
    # Where instances run: "process" (child processes), "oci" (containers through the Docker-compatible API of
    # podman or dockerd; Runyard starts podman's service when none runs) or "auto" (oci when a container API is
    # already reachable, else process).
    runtime: str = "auto"
    # Images (OCI runtime; docs/runtime.md "Images"). Runyard's own registry (Debian's docker-registry) listens on
    # 127.0.0.1:<local_registry_port> (0: any free port); private ECR identifiers map to it unless ecr_registry
    # names another registry; public.ecr.aws is pulled from ecr_public_mirror when set.
    local_registry_port: int = 9500
    ecr_registry: str = ""
    ecr_public_mirror: str = ""
    insecure_registries: str = ""  # host[:port] names spoken to over plain HTTP, separated by commas
    registry_credentials: str = ""  # path of a TOML file of [[registry]] credentials (empty: none)
    registry_notification_token: str = ""  # the Bearer token other registries send to /registry/notifications
    # The base images code services are packed into (`runyard images bootstrap` makes them from this host's
    # interpreters, so the artifacts built here run unchanged inside).
    base_image_python: str = "localhost/runyard/base-python:host"
    base_image_nodejs: str = "localhost/runyard/base-nodejs:host"
    deleted_service_retention: float = 3600.0  # seconds a DELETED service stays describable
    # Auto scaling (Knative KPA knobs App Runner does not expose): seconds between samples of each service's
    # concurrency, the stable window averaged over (the panic window is a tenth of it), and how long a lower
    # desire must last before instances are removed.
    autoscale_interval: float = 1.0
    autoscale_stable_window: float = 60.0
    autoscale_scale_down_delay: float = 0.0
    max_queue: int = 1024  # requests a service's HAProxy queue holds when every instance is at MaxConcurrency
    secrets_key: str = ""  # empty: generated on first start into <data_dir>/secrets.key (AES-256-GCM)
    # Git providers: the public services by default; point them at a self-hosted forge instead.
    github_api_url: str = "https://api.github.com"
    github_web_url: str = "https://github.com"
    github_client_id: str = ""  # OAuth app credentials: empty means the token handshake only
    github_client_secret: str = ""
    github_webhook_secret: str = ""  # empty: push webhooks from this provider are refused
    gitlab_api_url: str = "https://gitlab.com/api/v4"
    gitlab_web_url: str = "https://gitlab.com"
    gitlab_client_id: str = ""
    gitlab_client_secret: str = ""
    gitlab_webhook_secret: str = ""
    bitbucket_api_url: str = "https://api.bitbucket.org/2.0"
    bitbucket_web_url: str = "https://bitbucket.org"
    bitbucket_client_id: str = ""
    bitbucket_client_secret: str = ""
    bitbucket_webhook_secret: str = ""
    source_poll_interval: float = 60.0  # seconds between `git ls-remote` checks of auto-deployed services
    connection_check_interval: float = 3600.0  # seconds between checks of connection credentials (0: off)
    # Metrics (AWS/AppRunner): sampled every 10 s (the 10 s resolution needs exactly that), kept per resolution.
    metrics_retention_10s: float = 3 * 3600.0  # seconds 10-second buckets are kept
    metrics_retention_1m: float = 15 * 86400.0  # seconds 1-minute buckets are kept
    quotas: Quotas = field(default_factory=Quotas)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9]{12}", self.account_id):
            raise SettingsError(f"account_id must be 12 digits, got {self.account_id!r}")
        if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-[0-9]", self.region):
            raise SettingsError(f"region is not a region name: {self.region!r}")
        for name in (
            "start_timeout",
            "stop_grace",
            "deleted_service_retention",
            "source_poll_interval",
            "connection_check_interval",
        ):
            if getattr(self, name) < 0:
                raise SettingsError(f"{name} must not be negative, got {getattr(self, name)}")
        for name in ("port", "http_port", "https_port", "activator_port", "local_registry_port"):
            value = getattr(self, name)
            if not 0 <= value <= 65535:
                raise SettingsError(f"{name} must be a port number, got {value}")
        if self.runtime not in {"auto", "process", "oci"}:
            raise SettingsError(f"runtime must be one of auto/process/oci, got {self.runtime!r}")
        if self.log_level not in {"critical", "error", "warning", "info", "debug"}:
            raise SettingsError(f"log_level must be one of critical/error/warning/info/debug, got {self.log_level!r}")
        for name in ("autoscale_interval", "autoscale_stable_window", "max_queue"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name} must be positive, got {getattr(self, name)}")
        if self.autoscale_scale_down_delay < 0:
            raise SettingsError(
                f"autoscale_scale_down_delay must not be negative, got {self.autoscale_scale_down_delay}"
            )
        for name in ("metrics_retention_10s", "metrics_retention_1m"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name} must be positive, got {getattr(self, name)}")
        if bool(self.access_key_id) != bool(self.secret_access_key):
            raise SettingsError("access_key_id and secret_access_key must be given together")

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "runyard.db"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.sqlite_path}"


# Environment names that differ from RUNYARD_<FIELD>: the credentials use AWS-like names.
_ENV_ALIASES = {"access_key_id": "RUNYARD_ACCESS_KEY_ID", "secret_access_key": "RUNYARD_SECRET_ACCESS_KEY"}


def _coerce(name: str, kind: Any, raw: object) -> object:
    if kind is Path:
        if not isinstance(raw, str | Path):
            raise SettingsError(f"{name}: expected a path, got {raw!r}")
        return Path(raw).expanduser()
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise SettingsError(f"{name}: expected a boolean, got {raw!r}")
    if kind is int:
        if isinstance(raw, bool):
            raise SettingsError(f"{name}: expected an integer, got {raw!r}")
        if isinstance(raw, int):
            return raw
        try:
            return int(str(raw).strip(), 10)
        except ValueError:
            raise SettingsError(f"{name}: expected an integer, got {raw!r}") from None
    if kind is float:
        if isinstance(raw, bool):
            raise SettingsError(f"{name}: expected a number, got {raw!r}")
        if isinstance(raw, int | float):
            return float(raw)
        try:
            return float(str(raw).strip())
        except ValueError:
            raise SettingsError(f"{name}: expected a number, got {raw!r}") from None
    if kind is str:
        if not isinstance(raw, str | int):
            raise SettingsError(f"{name}: expected a string, got {raw!r}")
        return str(raw)
    raise SettingsError(f"{name}: unsupported setting type {kind!r}")


def _layer(cls: type[Any], values: dict[str, Any], source: Mapping[str, object], where: str) -> None:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key, raw in source.items():
        if key not in names:
            raise SettingsError(f"unknown setting {key!r} in {where}")
        values[key] = _coerce(key, hints[key], raw)


def _env_layer(env: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    top: dict[str, str] = {}
    quotas: dict[str, str] = {}
    for f in dataclasses.fields(Settings):
        if f.name == "quotas":
            continue
        env_name = _ENV_ALIASES.get(f.name, ENV_PREFIX + f.name.upper())
        if env_name in env:
            top[f.name] = env[env_name]
    for f in dataclasses.fields(Quotas):
        env_name = f"{ENV_PREFIX}QUOTA_{f.name.upper()}"
        if env_name in env:
            quotas[f.name] = env[env_name]
    return top, quotas


def load_settings(
    *,
    flags: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Build the Settings: defaults < TOML file < RUNYARD_* environment < flags (None flags are unset)."""
    env = os.environ if env is None else env
    top: dict[str, Any] = {}
    quotas: dict[str, Any] = {}
    file_path = config_file or (Path(env["RUNYARD_CONFIG"]) if env.get("RUNYARD_CONFIG") else None)
    if file_path is not None:
        try:
            document = tomllib.loads(file_path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read config file {file_path}: {exc}") from None
        file_quotas = document.pop("quotas", {})
        if not isinstance(file_quotas, dict):
            raise SettingsError(f"[quotas] in {file_path} must be a table")
        _layer(Settings, top, document, str(file_path))
        _layer(Quotas, quotas, file_quotas, f"{file_path} [quotas]")
    env_top, env_quotas = _env_layer(env)
    _layer(Settings, top, env_top, "the environment")
    _layer(Quotas, quotas, env_quotas, "the environment")
    _layer(Settings, top, {k: v for k, v in (flags or {}).items() if v is not None}, "the command line")
    return Settings(**top, quotas=Quotas(**quotas))
