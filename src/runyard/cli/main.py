"""The `runyard` command."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click
import uvicorn

from runyard import __version__
from runyard.cli.common import settings_from
from runyard.cli.connections import connections
from runyard.cli.events import events
from runyard.cli.git_credentials import git_credentials
from runyard.cli.images import images
from runyard.cli.logs import logs
from runyard.cli.metrics import metrics
from runyard.credentials import read_existing

_data_dir = click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where Runyard keeps everything [~/.runyard].",
)
_config = click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="A TOML settings file (below environment variables and flags).",
)


@click.group()
@click.version_option(__version__, prog_name="runyard")
def cli() -> None:
    """Runyard: a self-hosted platform that speaks AWS App Runner's API."""


@cli.command()
@_data_dir
@_config
@click.option("--host", help="Address of the API and console [127.0.0.1].")
@click.option("--port", type=int, help="Port of the API and console [9000].")
@click.option("--http-port", type=int, help="Data-plane HTTP port [9080].")
@click.option("--https-port", type=int, help="Data-plane HTTPS port [9443].")
@click.option("--region", help="Default region [us-east-1].")
@click.option("--account-id", help="The account id of every resource [000000000000].")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.option(
    "--runtime",
    type=click.Choice(["auto", "process", "oci"]),
    help="Where instances run: child processes, or OCI containers through podman/dockerd [auto: oci when a "
    "container API is reachable, else process].",
)
def serve(config_file: Path | None, **flags: Any) -> None:
    """Start Runyard: the App Runner and CodeConnections APIs on one endpoint."""
    from runyard.app import asgi_app, build

    settings = settings_from(flags, config_file)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    runyard = build(settings)
    click.echo(
        f"Runyard {__version__} on http://{settings.host}:{settings.port}  "
        f"(access key {runyard.credentials.access_key_id}; `runyard credentials` prints the secret)",
        err=True,
    )
    uvicorn.run(
        asgi_app(runyard),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        server_header=False,
    )


@cli.command()
@_data_dir
@_config
@click.option("--shell", is_flag=True, help="Print `export` lines for the AWS SDKs and CLI.")
def credentials(config_file: Path | None, shell: bool, **flags: Any) -> None:
    """Print the root credentials API requests are signed with."""
    settings = settings_from(flags, config_file)
    found = read_existing(settings)
    if found is None:
        raise click.ClickException(f"no credentials yet in {settings.data_dir}: start `runyard serve` once first")
    if shell:
        click.echo(f"export AWS_ACCESS_KEY_ID={found.access_key_id}")
        click.echo(f"export AWS_SECRET_ACCESS_KEY={found.secret_access_key}")
        click.echo(f"export AWS_DEFAULT_REGION={settings.region}")
        click.echo(f"export AWS_ENDPOINT_URL=http://{settings.host}:{settings.port}")
    else:
        click.echo(f"AccessKeyId:     {found.access_key_id}")
        click.echo(f"SecretAccessKey: {found.secret_access_key}")


cli.add_command(logs)
cli.add_command(events)
cli.add_command(connections)
cli.add_command(git_credentials)
cli.add_command(images)
cli.add_command(metrics)


def main() -> None:
    cli()
