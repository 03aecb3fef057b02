"""Log groups and streams, named as App Runner names them, kept as files under `<data_dir>/logs`.

Layout: a group is a directory, one level per segment of its name (`/aws/apprunner/web/ab12/service` ->
`aws/apprunner/web/ab12/service/`); a stream is one file in it, named after the stream with every `/`
percent-encoded (`deployment/c2c8` -> `deployment%2Fc2c8`), so a stream can never be mistaken for a nested
group. A stream has one of two formats:

- `<stream>.jsonl`: events Runyard appends, one JSON object a line, `{"t": epoch seconds, "m": message}`;
- `<stream>.log`: plain text another process writes (an instance's stdout and stderr). Its lines carry no
  time of their own, so they are reported with the file's modification time.

Readers take complete lines only: a line a writer is still writing is returned once its newline is there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, unquote

from runyard.clock import Clock

EVENTS_STREAM = "events"
DEPLOYMENT_PREFIX = "deployment/"
INSTANCE_PREFIX = "instance/"

_EVENTS_SUFFIX = ".jsonl"
_RAW_SUFFIX = ".log"
_NAME_MAX = 255 - len(_EVENTS_SUFFIX)  # bytes in one file name, the longer suffix included
_CHUNK = 1 << 20  # follow() reads at most about this much at a time


def service_log_group(service_name: str, service_id: str) -> str:
    return f"/aws/apprunner/{service_name}/{service_id}/service"


def application_log_group(service_name: str, service_id: str) -> str:
    return f"/aws/apprunner/{service_name}/{service_id}/application"


def deployment_stream(operation_id: str) -> str:
    """The spec's deployment streams end in the operation id as 32 lower-case hex digits, without dashes."""
    return DEPLOYMENT_PREFIX + operation_id.replace("-", "").lower()


def instance_stream(instance_id: str) -> str:
    return INSTANCE_PREFIX + instance_id


@dataclass(frozen=True, slots=True)
class LogEvent:
    timestamp: float  # seconds since the epoch
    message: str


class LogStore:
    """Every log group of one Runyard. Appends are safe from several threads (and, being single O_APPEND
    writes, from several processes); reads need no lock."""

    def __init__(self, root: Path, clock: Clock) -> None:
        self._root = root
        self._clock = clock
        self._lock = threading.Lock()

    @property
    def root(self) -> Path:
        return self._root

    # -- writing ---------------------------------------------------------------------------------------

    def append(self, group: str, stream: str, message: str) -> None:
        """One event per line of `message`, all with the clock's current time; in the file (unbuffered)
        when this returns."""
        events_path, raw_path = self._paths(group, stream)
        lines = _split_lines(message)
        if not lines:
            return
        timestamp = self._clock.now()
        text = "".join(json.dumps({"t": timestamp, "m": line}, ensure_ascii=False) + "\n" for line in lines)
        # A lone surrogate cannot be UTF-8: written as a \udXXX escape it is still valid JSON inside the
        # string, and reads back as the same character.
        data = text.encode("utf-8", "backslashreplace")
        with self._lock:
            if raw_path.exists():
                raise ValueError(f"Log stream {stream!r} of {group!r} is written by another process, not appended")
            _append_bytes(events_path, data)

    def raw_path(self, group: str, stream: str) -> Path:
        """The file another process appends plain text lines to. Created empty here, so the stream is
        listed from the start (an instance's stream before its first line)."""
        events_path, raw_path = self._paths(group, stream)
        with self._lock:
            if events_path.exists():
                raise ValueError(f"Log stream {stream!r} of {group!r} holds appended events, not raw text")
            raw_path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(raw_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600))
        return raw_path

    def delete_group(self, group: str) -> None:
        """Remove the group's streams, then its directories as far up as they are empty (a group whose name
        extends this one keeps its own streams)."""
        directory = self._group_dir(group)
        with self._lock:
            for entry in _scan(directory):
                if entry.is_file(follow_symlinks=False) and _stream_of_file(entry.name) is not None:
                    Path(entry.path).unlink(missing_ok=True)
            current = directory
            while current != self._root:
                try:
                    current.rmdir()
                except OSError:  # not empty, or already gone
                    break
                current = current.parent

    # -- reading ---------------------------------------------------------------------------------------

    def read(
        self, group: str, stream: str, *, offset: int = 0, max_bytes: int | None = None
    ) -> tuple[list[LogEvent], int]:
        """The complete lines from byte `offset` on (about `max_bytes` of them if given), and the offset to
        pass next time. An offset past the end means the stream was deleted and written anew: it restarts
        at 0. A stream that does not exist has no events."""
        events, next_offset, _ = self._read(group, stream, offset, max_bytes)
        return events, next_offset

    async def follow(
        self,
        group: str,
        stream: str,
        *,
        offset: int = 0,
        poll: float = 0.25,
        stop: asyncio.Event | None = None,
    ) -> AsyncGenerator[LogEvent, None]:
        """The stream's events from `offset`, then each new one as it is written (the stream need not exist
        yet). Once `stop` is set, what was written until then is still yielded, then the iteration ends."""
        while True:
            stopping = stop is not None and stop.is_set()
            events, offset, more = await asyncio.to_thread(self._read, group, stream, offset, _CHUNK)
            for event in events:
                yield event
            if more:
                continue
            if stopping:
                return
            if stop is None:
                await asyncio.sleep(poll)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), poll)

    def streams(self, group: str) -> list[str]:
        entries = _scan(self._group_dir(group))
        names = {_stream_of_file(entry.name) for entry in entries if entry.is_file(follow_symlinks=False)}
        return sorted(name for name in names if name is not None)

    def groups(self, prefix: str = "") -> list[str]:
        found: list[str] = []
        for directory, _, files in os.walk(self._walk_start(prefix)):
            if not any(_stream_of_file(name) is not None for name in files):
                continue
            segments = [_decode_component(part) for part in Path(directory).relative_to(self._root).parts]
            if segments and all(s is not None for s in segments):
                name = "/" + "/".join(s for s in segments if s is not None)
                if name.startswith(prefix):
                    found.append(name)
        return sorted(found)

    def is_raw(self, group: str, stream: str) -> bool:
        """Whether the stream is plain text another process writes (its lines carry no time of their own)."""
        _, raw_path = self._paths(group, stream)
        return raw_path.is_file()

    def last_modified(self, group: str, stream: str) -> float | None:
        """When the stream was last written (epoch seconds); None if it does not exist."""
        for path in self._paths(group, stream):
            try:
                return path.stat().st_mtime
            except FileNotFoundError:
                continue
        return None

    # -- internals -------------------------------------------------------------------------------------

    def _group_dir(self, group: str) -> Path:
        # CloudWatch-style names: one leading "/", then segments. Without the rule "/a" and "a" would share
        # a directory.
        if not group.startswith("/"):
            raise ValueError(f"A log group name starts with '/': {group!r}")
        return self._root.joinpath(*(_encode_component(s) for s in _segments(group[1:], "log group", group)))

    def _paths(self, group: str, stream: str) -> tuple[Path, Path]:
        """(appended events file, raw text file) of a stream."""
        if stream.startswith("/"):
            raise ValueError(f"A log stream name is relative: {stream!r}")
        _segments(stream, "log stream", stream)
        base = _encode_component(stream)
        directory = self._group_dir(group)
        return directory / (base + _EVENTS_SUFFIX), directory / (base + _RAW_SUFFIX)

    def _read(self, group: str, stream: str, offset: int, max_bytes: int | None) -> tuple[list[LogEvent], int, bool]:
        """(events, next offset, whether a full chunk was read so more may follow at once)."""
        if offset < 0:
            raise ValueError(f"offset must not be negative, got {offset}")
        if max_bytes is not None and max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        for path, raw in zip(self._paths(group, stream), (False, True), strict=True):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
            except FileNotFoundError:
                continue
            with os.fdopen(fd, "rb") as handle:
                if offset > os.fstat(fd).st_size:
                    offset = 0
                handle.seek(offset)
                data = _read_through_a_newline(handle, max_bytes)
                modified = os.fstat(fd).st_mtime  # after the read: no line is dated before it was there
            end = data.rfind(b"\n") + 1
            lines = data[:end].split(b"\n")[:-1]
            events = [_raw_event(line, modified) if raw else _decode_event(line, modified) for line in lines]
            return events, offset + end, max_bytes is not None and len(data) >= max_bytes
        return [], offset, False

    def _walk_start(self, prefix: str) -> Path:
        """Where groups matching `prefix` can be: below its complete segments, when they name a directory."""
        head = prefix[1:].rpartition("/")[0] if prefix.startswith("/") else ""
        if not head:
            return self._root
        try:
            return self._root.joinpath(*(_encode_component(s) for s in _segments(head, "prefix", prefix)))
        except ValueError:
            return self._root  # not a group's beginning: the filter below finds nothing


# -- names -----------------------------------------------------------------------------------------------


def _segments(name: str, what: str, full: str) -> list[str]:
    if "\0" in name:
        raise ValueError(f"A {what} name cannot contain NUL: {full!r}")
    segments = name.split("/")
    for segment in segments:
        if segment in {"", ".", ".."}:
            raise ValueError(f"A {what} name cannot have an empty, '.' or '..' segment: {full!r}")
    return segments


def _encode_component(text: str) -> str:
    """One file name for `text`: percent-encoded (so a `/` stays inside it), and short enough for any
    file system."""
    encoded = quote(text, safe="")
    if len(encoded) > _NAME_MAX:
        raise ValueError(f"Log name too long: {text[:40]!r}...")
    return encoded


def _decode_component(encoded: str) -> str | None:
    """The name a file name stands for; None for a file name this store would not have made."""
    try:
        text = unquote(encoded, errors="strict")
        return text if _encode_component(text) == encoded else None
    except ValueError:  # UnicodeDecodeError included
        return None


def _stream_of_file(file_name: str) -> str | None:
    for suffix in (_EVENTS_SUFFIX, _RAW_SUFFIX):
        if file_name.endswith(suffix):
            stream = _decode_component(file_name.removesuffix(suffix))
            if stream is None or stream.startswith("/"):
                return None
            try:
                _segments(stream, "log stream", stream)
            except ValueError:
                return None
            return stream
    return None


def _scan(directory: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as entries:
            return list(entries)
    except (FileNotFoundError, NotADirectoryError):
        return []


# -- files -----------------------------------------------------------------------------------------------


def _split_lines(message: str) -> list[str]:
    """The lines of a message: a final newline ends the last line rather than starting an empty one."""
    lines = message.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def _append_bytes(path: Path, data: bytes) -> None:
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        fd = os.open(path, flags, 0o600)
    except FileNotFoundError:  # the group's first stream
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, flags, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _read_through_a_newline(handle: BinaryIO, max_bytes: int | None) -> bytes:
    """Up to `max_bytes` from the handle, or on to the next newline when a single line is longer (a line is
    never split, and a long one never stalls a reader)."""
    if max_bytes is None:
        return handle.read()
    data = chunk = handle.read(max_bytes)
    while len(chunk) == max_bytes and b"\n" not in chunk:
        chunk = handle.read(max_bytes)
        data += chunk
    return data


def _raw_event(line: bytes, modified: float) -> LogEvent:
    return LogEvent(modified, line.decode("utf-8", "replace").removesuffix("\r"))


def _decode_event(line: bytes, modified: float) -> LogEvent:
    text = line.decode("utf-8", "replace")
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if isinstance(document, dict):
        timestamp, message = document.get("t"), document.get("m")
        if isinstance(timestamp, int | float) and not isinstance(timestamp, bool) and isinstance(message, str):
            return LogEvent(float(timestamp), message)
    # A damaged line (a writer that died mid-line): shown as it is rather than lost.
    return LogEvent(modified, text)
