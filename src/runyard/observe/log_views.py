"""What `runyard logs` and the console's Logs tab show of a service: which streams, and each line as printed.

One place, so the terminal and the browser show the same lines for the same stream.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from runyard.control.model.service import Service
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
            modified = {s: store.last_modified(group, s) or 0.0 for s in deployments(store, group)}
            return [max(modified, key=lambda s: (modified[s], s))] if modified else []

        return Selection(group, newest, f"No deployment logs yet for service {name}.")
    operation_id = deployment.removeprefix(DEPLOYMENT_PREFIX)
    if not _OPERATION_ID.fullmatch(operation_id):
        raise ValueError(f"not an operation id: {deployment!r}")
    stream = deployment_stream(operation_id)
    return Selection(
        group,
        lambda store: [s for s in store.streams(group) if s == stream],
        f"No deployment log {deployment} for service {name}.",
    )


def deployments(store: LogStore, group: str) -> list[str]:
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
                        line = event_line(event)
                    else:
                        line = with_time(event)
                    self.emit(f"{stream} | {line}" if label else line)
                printed += len(events)
        return printed


def with_time(event: LogEvent) -> str:
    when = datetime.fromtimestamp(event.timestamp, UTC).isoformat(timespec="milliseconds")
    return f"{when.removesuffix('+00:00')}Z {event.message}"


def event_line(event: LogEvent) -> str:
    """An event-envelope line of the events stream as `<time> <Severity> <Message>` (plus ` [<Status>]` for an
    operation's event); any other line as it is."""
    try:
        document = json.loads(event.message)
    except ValueError:
        return with_time(event)
    detail = document.get("detail") if isinstance(document, dict) and "detail-type" in document else None
    if not isinstance(detail, dict) or not isinstance(detail.get("Message"), str):
        return with_time(event)
    severity = detail.get("Severity") or "INFO"
    text = f"{severity} {detail['Message']}"
    if document["detail-type"] == OPERATION_STATUS_CHANGE and detail.get("Status"):
        text += f" [{detail['Status']}]"
    return with_time(LogEvent(event.timestamp, text))
