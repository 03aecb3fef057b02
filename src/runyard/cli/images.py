"""`runyard images`: base images for code services on the OCI runtime, and sealed registry passwords.

`bootstrap` works offline: the base images are made from this host's own Python and Node.js (see
build/base_images.py) and tagged with the names the settings give (RUNYARD_BASE_IMAGE_PYTHON / _NODEJS).
`seal-password` seals a registry password with this installation's key for the registry credentials file, so the
file never holds it in plain text.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from runyard.build.base_images import BootstrapFailed, bootstrap
from runyard.build.runtimes import detect_toolchains
from runyard.cli.common import settings_from
from runyard.secrets import SecretBox, SecretsError
from runyard.source.image_locations import credential_context

_PYTHON_PREFERENCE = ("PYTHON_311", "PYTHON_3")
_NODE_PREFERENCE = ("NODEJS_22", "NODEJS_18", "NODEJS_16", "NODEJS_14", "NODEJS_12")


def _common(command: Any) -> Any:
    command = click.option(
        "--config",
        "config_file",
        type=click.Path(path_type=Path, dir_okay=False, exists=True),
        help="A TOML settings file (below environment variables and flags).",
    )(command)
    return click.option(
        "--data-dir", type=click.Path(path_type=Path, file_okay=False), help="Where Runyard keeps everything."
    )(command)


@click.group("images")
def images() -> None:
    """Base images and registry credentials of the OCI runtime."""


@images.command("bootstrap")
@_common
@click.option(
    "--language",
    "languages",
    multiple=True,
    type=click.Choice(["python", "nodejs"]),
    help="Only this base image (repeatable) [all].",
)
def bootstrap_command(config_file: Path | None, languages: tuple[str, ...], **flags: Any) -> None:
    """Make the code services' base images from this host's interpreters (offline, a few seconds each)."""
    settings = settings_from(flags, config_file)
    toolchains = detect_toolchains()

    def interpreter(preference: tuple[str, ...]) -> Path | None:
        found = next((toolchains[name] for name in preference if name in toolchains), None)
        return None if found is None else found.executable

    wanted = {
        "python": (settings.base_image_python, interpreter(_PYTHON_PREFERENCE)),
        "nodejs": (settings.base_image_nodejs, interpreter(_NODE_PREFERENCE)),
    }
    chosen = {language: wanted[language] for language in (languages or tuple(wanted))}
    with tempfile.TemporaryDirectory(prefix="runyard-bootstrap-") as scratch:
        try:
            made = bootstrap(chosen, Path(scratch), dict(os.environ), click.echo)
        except BootstrapFailed as error:
            raise click.ClickException(error.message) from None
    if not made:
        raise click.ClickException("no base image was made: this host has neither Python 3 nor Node.js")
    click.echo(f"base images ready: {', '.join(made)}")


@images.command("seal-password")
@_common
@click.option("--host", required=True, help="The registry host[:port] the password is for.")
def seal_password(config_file: Path | None, host: str, **flags: Any) -> None:
    """Read a registry password from stdin; print it sealed for the registry credentials file."""
    settings = settings_from(flags, config_file)
    password = sys.stdin.read().strip()
    if not password:
        raise click.UsageError("no password on stdin")
    try:
        box = SecretBox.load_or_create(settings.data_dir, settings.secrets_key)
    except SecretsError as error:
        raise click.ClickException(str(error)) from None
    click.echo(box.seal(password, context=credential_context(host)))
