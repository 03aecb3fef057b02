"""`runyard connections`: finish a connection's handshake with an access token, set up a host.

These call a running Runyard (its Runyard-extension endpoints), signed with SigV4 like any API call, using
the root credentials from RUNYARD_ACCESS_KEY_ID / RUNYARD_SECRET_ACCESS_KEY or the data directory. The token
is read from a file (or stdin with `-`): it never appears in the process arguments.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from runyard.api.handshake import HANDSHAKE_PATH, HOST_SETUP_PATH
from runyard.config import Settings, SettingsError, load_settings
from runyard.credentials import read_existing


def _settings(flags: dict[str, Any], config_file: Path | None) -> Settings:
    try:
        return load_settings(flags={k: v for k, v in flags.items() if v is not None}, config_file=config_file)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None


def _options(command: Any) -> Any:
    command = click.option("--endpoint-url", help="The Runyard to call [http://<host>:<port> of the settings].")(
        command
    )
    command = click.option("--region", help="The region of the connection [the settings' region].")(command)
    command = click.option(
        "--config",
        "config_file",
        type=click.Path(path_type=Path, dir_okay=False, exists=True),
        help="A TOML settings file (below environment variables and flags).",
    )(command)
    return click.option(
        "--data-dir",
        type=click.Path(path_type=Path, file_okay=False),
        help="Where Runyard keeps everything (for its root credentials) [~/.runyard].",
    )(command)


def _call(
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


@click.group()
def connections() -> None:
    """Connections to git providers: complete a handshake with a token, set up a host."""


@connections.command("complete-handshake")
@click.argument("connection")
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=str),
    required=True,
    help="A file holding the provider access token (`-` reads stdin).",
)
@_options
def complete_handshake(
    connection: str,
    token_file: str,
    region: str | None,
    endpoint_url: str | None,
    config_file: Path | None,
    **flags: Any,
) -> None:
    """Verify an access token with the provider and make CONNECTION (a name or an ARN) AVAILABLE."""
    settings = _settings(flags, config_file)
    try:
        token = sys.stdin.read() if token_file == "-" else Path(token_file).read_text()
    except OSError as error:
        raise click.ClickException(f"cannot read the token file: {error.strerror}") from None
    token = token.strip()
    if not token:
        raise click.ClickException("the token file is empty")
    answer = _call(settings, region, endpoint_url, HANDSHAKE_PATH, {"Connection": connection, "Token": token})
    click.echo(
        f"{answer['ConnectionName']} is {answer['Status']} "
        f"({answer['ProviderType']} account {answer.get('ProviderAccount')}): {answer['ConnectionArn']}"
    )


@connections.command("set-up-host")
@click.argument("host_arn")
@_options
def set_up_host(
    host_arn: str, region: str | None, endpoint_url: str | None, config_file: Path | None, **flags: Any
) -> None:
    """Check that a host's ProviderEndpoint answers as its provider and make the host AVAILABLE."""
    settings = _settings(flags, config_file)
    answer = _call(settings, region, endpoint_url, HOST_SETUP_PATH, {"HostArn": host_arn})
    click.echo(f"{answer['Name']} is {answer['Status']}: {answer['HostArn']}")
