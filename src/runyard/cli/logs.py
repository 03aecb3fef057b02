"""`runyard logs`: a service's event log, one of its deployment logs, or its application output.

Read straight from the log files in the data directory, so it works whether or not the server runs. The
database is opened only to find the service, and closed before any log is read (a follow can last hours).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from runyard.cli.common import settings_from
from runyard.clock import SystemClock
from runyard.config import Settings
from runyard.control.context import Scope
from runyard.control.model.service import Service
from runyard.ids import parse_arn
from runyard.observe.log_views import LATEST, Selection, Tail, deployments, service_logs_selection
from runyard.observe.logs import DEPLOYMENT_PREFIX, LogStore


def show(
    store: LogStore,
    selection: Selection,
    *,
    follow: bool,
    emit: Callable[[str], None],
    note: Callable[[str], None],
    stop: threading.Event | None = None,
    poll: float = 0.25,
) -> None:
    """Print the selected streams; when following, go on printing new lines (and new streams) until `stop`
    is set (then print what was written until then) or Ctrl-C."""
    tail = Tail(store, selection, emit)
    tail.pump()
    if not tail.offsets:
        note(f"{selection.empty} Waiting (Ctrl-C to stop)." if follow else selection.empty)
    if not follow:
        return
    stop = stop or threading.Event()
    try:
        while not stop.wait(poll):
            tail.pump()
        tail.pump()
    except KeyboardInterrupt:
        pass


def find_service(settings: Settings, reference: str, region: str | None = None) -> Service:
    """The service named (or with the ARN) `reference`: the live one, else the newest deleted one."""
    # Any SigV4 region holds resources, so --region is a scope, not the server's (validated) default region.
    scope = Scope(settings.account_id, region or settings.region)
    arn = None
    if reference.startswith("arn:"):
        arn = parse_arn(reference)
        if arn is None or arn.resource_type != "service":
            raise click.BadParameter(f"not a service ARN: {reference}", param_hint="SERVICE")
        scope = Scope(arn.account, arn.region)
    missing = f"No service named {reference} in {scope.region}"
    if not settings.database_url and not settings.sqlite_path.exists():
        raise click.ClickException(f"{missing} (there is no Runyard database in {settings.data_dir})")

    from runyard.app import build  # the composition root: only this command needs it, only now

    runyard = build(settings)
    try:
        services = runyard.control.services.find_all(scope)
    finally:
        runyard.stop()
    matches = [s for s in services if (s.arn if arn else s.name) == reference]
    # find_all lists oldest first: among several deleted services of one name, the last is the newest.
    chosen = [s for s in matches if s.status != "DELETED"] or matches
    if not chosen:
        raise click.ClickException(missing)
    return chosen[-1]


@click.command()
@click.argument("service")
@click.option(
    "--deployment",
    metavar="ID",
    help="Print a deployment's log: its operation id (with or without dashes), or `latest`.",
)
@click.option("--application", is_flag=True, help="Print the application's output, from every instance.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until Ctrl-C.")
@click.option("--region", help="The service's region [the settings' region].")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where Runyard keeps everything [~/.runyard].",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="A TOML settings file (below environment variables and flags).",
)
def logs(
    service: str,
    deployment: str | None,
    application: bool,
    follow: bool,
    region: str | None,
    config_file: Path | None,
    **flags: Any,
) -> None:
    """Print a service's logs: its event log, a deployment's log (--deployment) or its application's
    output (--application). SERVICE is a service name or ARN."""
    if deployment is not None and application:
        raise click.UsageError("--deployment and --application cannot be used together.")
    settings = settings_from(flags, config_file)
    found = find_service(settings, service, region)
    try:
        selection = service_logs_selection(found, deployment=deployment, application=application)
    except ValueError as problem:
        raise click.BadParameter(str(problem), param_hint="--deployment") from None
    store = LogStore(settings.data_dir / "logs", SystemClock())
    if deployment not in (None, LATEST) and not follow and not selection.pick(store):
        known = [s.removeprefix(DEPLOYMENT_PREFIX) for s in deployments(store, selection.group)]
        raise click.ClickException(
            selection.empty + (f" Deployments with logs: {', '.join(known)}." if known else " It has none yet.")
        )
    show(store, selection, follow=follow, emit=click.echo, note=lambda text: click.echo(text, err=True))
