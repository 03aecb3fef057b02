"""`runyard git-credentials`: credentials for any git server over HTTPS or SSH, by repository URL prefix.

Like `runyard connections`, these call a running Runyard (its Runyard-extension endpoints), signed with SigV4
using the root credentials. Passwords and keys are read from files (or stdin with `-`): never from the process
arguments; `list` never prints them.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from runyard.api.git_credentials import ADD_PATH, LIST_PATH, REMOVE_PATH
from runyard.cli.common import call_runyard, settings_from


def _options(command: Any) -> Any:
    command = click.option("--endpoint-url", help="The Runyard to call [http://<host>:<port> of the settings].")(
        command
    )
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


def _read(path: str, what: str) -> str:
    try:
        return sys.stdin.read() if path == "-" else Path(path).read_text()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise click.ClickException(f"cannot read the {what} file: {reason}") from None


@click.group("git-credentials")
def git_credentials() -> None:
    """Credentials for git servers (HTTPS user and password, or an SSH key), used by URL prefix."""


@git_credentials.command("add")
@click.argument("name")
@click.option("--url-prefix", required=True, help="Repository URLs starting with this use the credential.")
@click.option("--username", help="HTTPS: the user name.")
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=str),
    help="HTTPS: a file holding the password or access token (`-` reads stdin).",
)
@click.option(
    "--ssh-key-file",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=str),
    help="SSH: a file holding the private key, without a passphrase (`-` reads stdin).",
)
@click.option(
    "--known-hosts-file",
    type=click.Path(dir_okay=False, exists=True, path_type=str),
    help="SSH: the server's host keys (known_hosts format); without it the first key seen is trusted and kept.",
)
@_options
def add(
    name: str,
    url_prefix: str,
    username: str | None,
    password_file: str | None,
    ssh_key_file: str | None,
    known_hosts_file: str | None,
    endpoint_url: str | None,
    config_file: Path | None,
    **flags: Any,
) -> None:
    """Keep a credential NAME for repositories under --url-prefix (adding an existing NAME replaces it)."""
    settings = settings_from(flags, config_file)
    document = {"Name": name, "UrlPrefix": url_prefix}
    if ssh_key_file is not None:
        if username is not None or password_file is not None:
            raise click.UsageError("give --ssh-key-file, or --username with --password-file, not both")
        document["SshPrivateKey"] = _read(ssh_key_file, "SSH key")
        if known_hosts_file is not None:
            document["KnownHosts"] = _read(known_hosts_file, "known hosts")
    elif username is not None and password_file is not None:
        if known_hosts_file is not None:
            raise click.UsageError("--known-hosts-file goes with --ssh-key-file")
        password = _read(password_file, "password").rstrip("\r\n")
        if not password:
            raise click.ClickException("the password file is empty")
        document.update(Username=username, Password=password)
    else:
        raise click.UsageError("give --username and --password-file (HTTPS), or --ssh-key-file (SSH)")
    answer = call_runyard(settings, None, endpoint_url, ADD_PATH, document)["GitCredential"]
    click.echo(f"{answer['Name']}: {_describe(answer)}")


@git_credentials.command("list")
@_options
def list_credentials(endpoint_url: str | None, config_file: Path | None, **flags: Any) -> None:
    """The credentials, their URL prefixes and types (never their secrets)."""
    settings = settings_from(flags, config_file)
    found = call_runyard(settings, None, endpoint_url, LIST_PATH, {})["GitCredentials"]
    if not found:
        click.echo("no git credentials")
        return
    rows = [(c["Name"], c["Type"], c["UrlPrefix"], _detail(c), _when(c["CreatedAt"])) for c in found]
    header = ("NAME", "TYPE", "URL PREFIX", "", "ADDED")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@git_credentials.command("remove")
@click.argument("name")
@_options
def remove(name: str, endpoint_url: str | None, config_file: Path | None, **flags: Any) -> None:
    """Forget the credential NAME (refused while a service reads its repository through it)."""
    settings = settings_from(flags, config_file)
    answer = call_runyard(settings, None, endpoint_url, REMOVE_PATH, {"Name": name})["GitCredential"]
    click.echo(f"{answer['Name']} removed")


def _describe(credential: dict[str, Any]) -> str:
    return f"{credential['Type']} credential for {credential['UrlPrefix']} ({_detail(credential)})"


def _detail(credential: dict[str, Any]) -> str:
    if credential["Type"] == "HTTPS":
        return f"user {credential.get('Username')}"
    return "host keys pinned" if credential.get("HostKeyChecking") == "PINNED" else "host key learned on first use"


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")
