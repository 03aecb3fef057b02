"""Reading an instance's log file: complete lines from a byte offset, so a reader can follow it."""

from __future__ import annotations

from pathlib import Path

from runyard.runtime.base import LogChunk

_LOG_READ_MAX = 1 << 20


def read_lines(path: Path, offset: int) -> LogChunk:
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            data = log.read(_LOG_READ_MAX)
    except FileNotFoundError:
        return LogChunk((), offset)
    end = data.rfind(b"\n") + 1
    if end == 0 and len(data) == _LOG_READ_MAX:  # one huge line: hand it over rather than stall the reader
        end = len(data)
    lines = data[:end].decode("utf-8", "replace").split("\n")
    return LogChunk(tuple(lines[:-1] if lines[-1] == "" else lines), offset + end)
