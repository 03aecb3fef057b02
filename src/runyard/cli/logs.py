"""`runyard logs`: a service's event log, one of its deployment logs, or its application output.

Read straight from the log files in the data directory, so it works whether or not the server runs. The
database is opened only to find the service, and closed before any log is read (a follow can last hours).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from runyard.clock import SystemClock
from runyard.config import Settings, SettingsError, load_settings
from runyard.control.context import Scope
from runyard.control.model.service import Service
from runyard.ids import parse_arn
from runyard.observe.events import OPERATION_STATUS_CHANGE
from runyard.observe.logs import (
    DEPLOYMENT_PREFIX,
    EVENTS_STREAM,
    INSTANCE_PREFIX,
    LogEvent,
    LogStore,
    application_log_group,
    deployment_stream,
    service_log_group,
)

LATEST = "latest"
_OPERATION_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z-]*")
_READ_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Selection:
    """Which streams of one group to print."""

    group: str
    pick: Callable[[LogStore], list[str]]  # the streams to print now; a follow asks again for new ones
    empty: str  # said when there is nothing to print (yet)
    label_streams: bool = False  # prefix each line with its stream's name when there are several


def service_logs_selection(service: Service, *, deployment: str | None, application: bool) -> Selection:
    name = service.name
    if application:
        group = application_log_group(name, service.service_id)
        return Selection(
            group,
            lambda store: [s for s in store.streams(group) if s.startswith(INSTANCE_PREFIX)],
            f"No application logs yet for service {name}.",
            label_streams=True,
        )
    group = service_log_group(name, service.service_id)
    if deployment is None:
        return Selection(
            group,
            lambda store: [s for s in store.streams(group) if s == EVENTS_STREAM],
            f"No events logged yet for service {name}.",
        )
    if deployment == LATEST:

        def newest(store: LogStore) -> list[str]:
            modified = {s: store.last_modified(group, s) or 0.0 for s in _deployments(store, group)}
            return [max(modified, key=lambda s: (modified[s], s))] if modified else []

        return Selection(group, newest, f"No deployment logs yet for service {name}.")
    operation_id = deployment.removeprefix(DEPLOYMENT_PREFIX)
    if not _OPERATION_ID.fullmatch(operation_id):
        raise click.BadParameter(f"not an operation id: {deployment!r}", param_hint="--deployment")
    stream = deployment_stream(operation_id)
    return Selection(
        group,
        lambda store: [s for s in store.streams(group) if s == stream],
        f"No deployment log {deployment} for service {name}.",
    )


def _deployments(store: LogStore, group: str) -> list[str]:
    return [s for s in store.streams(group) if s.startswith(DEPLOYMENT_PREFIX)]


@dataclass
class Tail:
    """Prints what is new in the selected streams each time it is pumped."""

    store: LogStore
    selection: Selection
    emit: Callable[[str], None]
    offsets: dict[str, int] = field(default_factory=dict)
    raw: dict[str, bool] = field(default_factory=dict)

    def pump(self) -> int:
        """Print every complete line written since the last pump; return how many."""
        group = self.selection.group
        for stream in self.selection.pick(self.store):
            if stream not in self.offsets:
                self.offsets[stream] = 0
                self.raw[stream] = self.store.is_raw(group, stream)
        label = self.selection.label_streams and len(self.offsets) > 1
        printed = 0
        for stream in sorted(self.offsets):
            while True:  # in chunks: a long log is printed as it is read, never held whole
                events, self.offsets[stream] = self.store.read(
                    group, stream, offset=self.offsets[stream], max_bytes=_READ_CHUNK
                )
                if not events:
                    break
                for event in events:
                    if self.raw[stream]:
                        line = event.message
                    elif stream == EVENTS_STREAM:
                        line = _event_line(event)
                    else:
                        line = _with_time(event)
                    self.emit(f"{stream} | {line}" if label else line)
                printed += len(events)
        return printed


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


def _with_time(event: LogEvent) -> str:
    when = datetime.fromtimestamp(event.timestamp, UTC).isoformat(timespec="milliseconds")
    return f"{when.removesuffix('+00:00')}Z {event.message}"


def _event_line(event: LogEvent) -> str:
    """An event-envelope line of the events stream as `<time> <Severity> <Message>` (plus ` [<Status>]` for an
    operation's event); any other line as it is."""
    try:
        document = json.loads(event.message)
    except ValueError:
        return _with_time(event)
    detail = document.get("detail") if isinstance(document, dict) and "detail-type" in document else None
    if not isinstance(detail, dict) or not isinstance(detail.get("Message"), str):
        return _with_time(event)
    severity = detail.get("Severity") or "INFO"
    text = f"{severity} {detail['Message']}"
    if document["detail-type"] == OPERATION_STATUS_CHANGE and detail.get("Status"):
        text += f" [{detail['Status']}]"
    return _with_time(LogEvent(event.timestamp, text))


def _settings(flags: dict[str, Any], config_file: Path | None) -> Settings:
    # As `runyard serve` loads them (cli.main._settings, which this module cannot import without a cycle).
    try:
        return load_settings(flags=flags, config_file=config_file)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None


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
    settings = _settings(flags, config_file)
    found = find_service(settings, service, region)
    selection = service_logs_selection(found, deployment=deployment, application=application)
    store = LogStore(settings.data_dir / "logs", SystemClock())
    if deployment not in (None, LATEST) and not follow and not selection.pick(store):
        known = [s.removeprefix(DEPLOYMENT_PREFIX) for s in _deployments(store, selection.group)]
        raise click.ClickException(
            selection.empty + (f" Deployments with logs: {', '.join(known)}." if known else " It has none yet.")
        )
    show(store, selection, follow=follow, emit=click.echo, note=lambda text: click.echo(text, err=True))
