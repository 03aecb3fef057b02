"""`runyard connections`: finish a connection's handshake with an access token, set up a host.

These call a running Runyard (its Runyard-extension endpoints), signed with SigV4 like any API call, using
the root credentials from RUNYARD_ACCESS_KEY_ID / RUNYARD_SECRET_ACCESS_KEY or the data directory. The token
is read from a file (or stdin with `-`): it never appears in the process arguments.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from runyard.api.handshake import HANDSHAKE_PATH, HOST_SETUP_PATH
from runyard.cli.common import call_runyard, settings_from


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
    settings = settings_from(flags, config_file)
    try:
        token = sys.stdin.read() if token_file == "-" else Path(token_file).read_text()
    except OSError as error:
        raise click.ClickException(f"cannot read the token file: {error.strerror}") from None
    token = token.strip()
    if not token:
        raise click.ClickException("the token file is empty")
    answer = call_runyard(settings, region, endpoint_url, HANDSHAKE_PATH, {"Connection": connection, "Token": token})
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
    settings = settings_from(flags, config_file)
    answer = call_runyard(settings, region, endpoint_url, HOST_SETUP_PATH, {"HostArn": host_arn})
    click.echo(f"{answer['Name']} is {answer['Status']}: {answer['HostArn']}")
