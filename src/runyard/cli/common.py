"""What the `runyard` commands share: settings loaded as `runyard serve` loads them, and signed calls to a
running Runyard's extension endpoints (with the root credentials from the environment or the data directory)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from runyard.config import Settings, SettingsError, load_settings
from runyard.credentials import read_existing


def settings_from(flags: dict[str, Any], config_file: Path | None) -> Settings:
    """Defaults < TOML file < RUNYARD_* environment < the flags given; a bad value is a usage error."""
    try:
        return load_settings(flags={k: v for k, v in flags.items() if v is not None}, config_file=config_file)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None


def call_runyard(
    settings: Settings, region: str | None, endpoint_url: str | None, path: str, document: dict[str, str]
) -> dict[str, Any]:
    found = read_existing(settings)
    if found is None:
        raise click.ClickException(
            f"no root credentials: set RUNYARD_ACCESS_KEY_ID and RUNYARD_SECRET_ACCESS_KEY, "
            f"or start `runyard serve` once with --data-dir {settings.data_dir}"
        )
    url = (endpoint_url or f"http://{settings.host}:{settings.port}").rstrip("/") + path
    body = json.dumps(document).encode()
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(
        Credentials(found.access_key_id, found.secret_access_key), "apprunner", region or settings.region
    ).add_auth(request)
    try:
        response = httpx.post(url, content=body, headers=dict(request.headers.items()), timeout=60)
    except httpx.HTTPError as error:
        raise click.ClickException(f"cannot reach Runyard at {url}: {error}") from None
    try:
        answer = response.json()
    except ValueError:
        raise click.ClickException(f"Runyard answered HTTP {response.status_code} without JSON") from None
    if response.status_code != 200:
        raise click.ClickException(f"{answer.get('__type', response.status_code)}: {answer.get('Message', '')}")
    return dict(answer)
