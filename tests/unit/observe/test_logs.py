from __future__ import annotations

import asyncio
import json
import os
import threading
from pathlib import Path

import pytest

from runyard.clock import FakeClock
from runyard.observe.logs import (
    EVENTS_STREAM,
    LogEvent,
    LogStore,
    application_log_group,
    deployment_stream,
    instance_stream,
    service_log_group,
)

GROUP = service_log_group("python-test", "ac7ec8b51ff34746bcb6654e0bcb23da")
APP = application_log_group("python-test", "ac7ec8b51ff34746bcb6654e0bcb23da")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.5)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> LogStore:
    return LogStore(tmp_path / "logs", clock)


def test_names_are_the_specs() -> None:
    assert GROUP == "/aws/apprunner/python-test/ac7ec8b51ff34746bcb6654e0bcb23da/service"
    assert APP == "/aws/apprunner/python-test/ac7ec8b51ff34746bcb6654e0bcb23da/application"
    assert deployment_stream("C2C8EEED-EA16-4F45-9CF7-8F12A8953390") == "deployment/c2c8eeedea164f459cf78f12a8953390"
    assert deployment_stream("c2c8eeedea164f459cf78f12a8953390") == "deployment/c2c8eeedea164f459cf78f12a8953390"
    assert instance_stream("1a80bc9134a84699b7b3432ebbeb591") == "instance/1a80bc9134a84699b7b3432ebbeb591"
    assert EVENTS_STREAM == "events"


@pytest.mark.parametrize(
    ("group", "stream"),
    [
        ("/aws/../../etc", "events"),
        ("/aws/./x", "events"),
        ("/aws//x", "events"),
        ("/aws/x/", "events"),
        ("/", "events"),
        ("", "events"),
        ("aws/x", "events"),  # a group name starts with "/"
        ("/aws/x\0y", "events"),
        (GROUP, ""),
        (GROUP, ".."),
        (GROUP, "deployment/.."),
        (GROUP, "deployment//x"),
        (GROUP, "/etc/passwd"),
        (GROUP, "a\0b"),
        (GROUP, "x" * 300),
    ],
)
def test_unsafe_names_are_refused(store: LogStore, group: str, stream: str) -> None:
    with pytest.raises(ValueError):
        store.append(group, stream, "hello")
    with pytest.raises(ValueError):
        store.read(group, stream)
    with pytest.raises(ValueError):
        store.raw_path(group, stream)
    assert not store.root.exists()


def test_files_stay_under_the_root_and_streams_are_not_nested_groups(store: LogStore) -> None:
    store.append(GROUP, deployment_stream("ab-12"), "x")
    store.append(GROUP, "odd name%/é", "y")
    files = sorted(p.relative_to(store.root).as_posix() for p in store.root.rglob("*") if p.is_file())
    assert files == [
        "aws/apprunner/python-test/ac7ec8b51ff34746bcb6654e0bcb23da/service/deployment%2Fab12.jsonl",
        "aws/apprunner/python-test/ac7ec8b51ff34746bcb6654e0bcb23da/service/odd%20name%25%2F%C3%A9.jsonl",
    ]
    assert store.streams(GROUP) == ["deployment/ab12", "odd name%/é"]
    assert store.groups() == [GROUP]


def test_append_writes_one_event_per_line_with_the_clock_time(store: LogStore, clock: FakeClock) -> None:
    store.append(GROUP, EVENTS_STREAM, "Service creation started.")
    clock.advance(2)
    store.append(GROUP, EVENTS_STREAM, "first\nsecond\r\n\nlast\n")
    store.append(GROUP, EVENTS_STREAM, "")  # no line: no event
    events, offset = store.read(GROUP, EVENTS_STREAM)
    t = 1_700_000_000.5
    assert events == [
        LogEvent(t, "Service creation started."),
        LogEvent(t + 2, "first"),
        LogEvent(t + 2, "second"),
        LogEvent(t + 2, ""),
        LogEvent(t + 2, "last"),
    ]
    assert offset == next(store.root.rglob("events.jsonl")).stat().st_size
    assert store.read(GROUP, EVENTS_STREAM, offset=offset) == ([], offset)


def test_any_unicode_round_trips(store: LogStore) -> None:
    messages = ['quote " backslash \\ tab \t', "émoji 🚀 日本語", "sep \u2028 inside", "lone \udc80 surrogate"]
    for message in messages:
        store.append(GROUP, EVENTS_STREAM, message)
    events, _ = store.read(GROUP, EVENTS_STREAM)
    assert [e.message for e in events] == messages


def test_offsets_continue_where_the_last_read_stopped(store: LogStore, clock: FakeClock) -> None:
    store.append(GROUP, EVENTS_STREAM, "one\ntwo")
    first, offset = store.read(GROUP, EVENTS_STREAM)
    store.append(GROUP, EVENTS_STREAM, "three")
    second, offset2 = store.read(GROUP, EVENTS_STREAM, offset=offset)
    assert [e.message for e in first] == ["one", "two"]
    assert [e.message for e in second] == ["three"]
    assert offset2 > offset


def test_max_bytes_reads_in_chunks_without_splitting_lines(store: LogStore) -> None:
    store.append(GROUP, EVENTS_STREAM, "\n".join(f"line {n}" for n in range(50)))
    store.append(GROUP, EVENTS_STREAM, "x" * 5000)  # longer than a chunk: returned whole, not stalled
    seen: list[str] = []
    offset = 0
    reads = 0
    while True:
        events, offset = store.read(GROUP, EVENTS_STREAM, offset=offset, max_bytes=100)
        if not events:
            break
        reads += 1
        seen += [e.message for e in events]
    assert seen == [f"line {n}" for n in range(50)] + ["x" * 5000]
    assert reads > 10


def test_a_partial_last_line_waits_for_its_newline(store: LogStore) -> None:
    path = store.raw_path(APP, instance_stream("i1"))
    with path.open("ab") as out:
        out.write(b"complete\npart")
        out.flush()
        events, offset = store.read(APP, instance_stream("i1"))
        assert [e.message for e in events] == ["complete"]
        assert store.read(APP, instance_stream("i1"), offset=offset)[0] == []
        out.write(b"ial\n")
    events, _ = store.read(APP, instance_stream("i1"), offset=offset)
    assert [e.message for e in events] == ["partial"]


def test_a_partial_appended_line_waits_too(store: LogStore, clock: FakeClock) -> None:
    store.append(GROUP, EVENTS_STREAM, "done")
    path = next(store.root.rglob("events.jsonl"))
    whole = json.dumps({"t": clock.now(), "m": "later"}) + "\n"
    with path.open("a") as out:
        out.write(whole[:10])
    events, offset = store.read(GROUP, EVENTS_STREAM)
    assert [e.message for e in events] == ["done"]
    with path.open("a") as out:
        out.write(whole[10:])
    assert store.read(GROUP, EVENTS_STREAM, offset=offset)[0] == [LogEvent(clock.now(), "later")]


def test_raw_streams_are_plain_lines_dated_by_the_file(store: LogStore) -> None:
    stream = instance_stream("i-1")
    path = store.raw_path(APP, stream)
    assert path.exists() and path.read_bytes() == b""  # listed before its first line
    assert store.streams(APP) == [stream]
    assert store.is_raw(APP, stream)
    path.write_bytes('{"t": 1, "m": "not json to me"}\nGET / 200 \xe2\x9c\x93\r\nbad \xff byte\n'.encode("latin-1"))
    os.utime(path, (1_600_000_000.25, 1_600_000_000.25))
    events, offset = store.read(APP, stream)
    assert events == [
        LogEvent(1_600_000_000.25, '{"t": 1, "m": "not json to me"}'),
        LogEvent(1_600_000_000.25, "GET / 200 ✓"),
        LogEvent(1_600_000_000.25, "bad \ufffd byte"),
    ]
    assert offset == path.stat().st_size
    assert store.last_modified(APP, stream) == 1_600_000_000.25


def test_a_stream_is_either_appended_or_raw(store: LogStore) -> None:
    store.append(GROUP, EVENTS_STREAM, "x")
    with pytest.raises(ValueError, match="appended"):
        store.raw_path(GROUP, EVENTS_STREAM)
    store.raw_path(APP, instance_stream("i1"))
    with pytest.raises(ValueError, match="another process"):
        store.append(APP, instance_stream("i1"), "y")
    assert not store.is_raw(GROUP, EVENTS_STREAM)


def test_a_damaged_appended_line_is_shown_not_lost(store: LogStore) -> None:
    store.append(GROUP, EVENTS_STREAM, "good")
    path = next(store.root.rglob("events.jsonl"))
    with path.open("a") as out:
        out.write('{"t": 1, "m": "cut{"t": 2, "m": "x"}\n[1]\n')
    events, _ = store.read(GROUP, EVENTS_STREAM)
    modified = path.stat().st_mtime
    assert events[1:] == [LogEvent(modified, '{"t": 1, "m": "cut{"t": 2, "m": "x"}'), LogEvent(modified, "[1]")]


def test_a_missing_stream_has_no_events_and_a_recreated_one_starts_over(store: LogStore) -> None:
    assert store.read(GROUP, EVENTS_STREAM, offset=7) == ([], 7)
    assert store.last_modified(GROUP, EVENTS_STREAM) is None
    store.append(GROUP, EVENTS_STREAM, "a long first life of the stream")
    _, offset = store.read(GROUP, EVENTS_STREAM)
    store.delete_group(GROUP)
    store.append(GROUP, EVENTS_STREAM, "again")
    events, _ = store.read(GROUP, EVENTS_STREAM, offset=offset)
    assert [e.message for e in events] == ["again"]


def test_streams_and_groups_are_listed_sorted(store: LogStore) -> None:
    other = service_log_group("other-svc", "0" * 32)
    store.append(GROUP, EVENTS_STREAM, "e")
    store.append(GROUP, deployment_stream("b" * 32), "d")
    store.append(GROUP, deployment_stream("a" * 32), "d")
    store.raw_path(APP, instance_stream("i2"))
    store.raw_path(APP, instance_stream("i1"))
    store.append(other, EVENTS_STREAM, "e")
    (store.root / "aws" / "stray.txt").write_text("not a stream")
    assert store.streams(GROUP) == [f"deployment/{'a' * 32}", f"deployment/{'b' * 32}", "events"]
    assert store.streams(APP) == ["instance/i1", "instance/i2"]
    assert store.streams("/aws/apprunner/nothing/here/service") == []
    assert store.groups() == [other, APP, GROUP]
    assert store.groups("/aws/apprunner/python-test/") == [APP, GROUP]
    assert store.groups("/aws/apprunner/python") == [APP, GROUP]
    assert store.groups(GROUP) == [GROUP]
    assert store.groups("/aws/apprunner/nobody") == []
    assert store.groups("/nowhere/at/all/") == []


def test_delete_group_removes_its_streams_and_empty_directories_only(store: LogStore) -> None:
    other = service_log_group("python-test", "f" * 32)
    store.append(GROUP, EVENTS_STREAM, "e")
    store.append(GROUP, deployment_stream("a" * 32), "d")
    store.raw_path(APP, instance_stream("i1"))
    store.append(other, EVENTS_STREAM, "e")
    store.delete_group(GROUP)
    assert store.streams(GROUP) == []
    assert store.groups() == [APP, other]
    assert not (store.root / "aws/apprunner/python-test/ac7ec8b51ff34746bcb6654e0bcb23da/service").exists()
    store.delete_group(APP)
    assert not (store.root / "aws/apprunner/python-test/ac7ec8b51ff34746bcb6654e0bcb23da").exists()
    assert (store.root / "aws/apprunner/python-test").is_dir()  # `other` still lives there
    store.delete_group(GROUP)  # already gone: nothing to do
    store.delete_group(other)
    assert store.groups() == []
    assert store.root.is_dir() and list(store.root.iterdir()) == []


def test_concurrent_appends_from_threads_never_interleave(store: LogStore) -> None:
    threads, lines = 8, 200
    start = threading.Barrier(threads)

    def writer(n: int) -> None:
        start.wait()
        for i in range(lines):
            store.append(GROUP, EVENTS_STREAM, f"writer {n} line {i} " + "z" * 300 + f"\nwriter {n} tail {i}")

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    messages = [e.message for e in store.read(GROUP, EVENTS_STREAM)[0]]
    assert len(messages) == threads * lines * 2
    for n in range(threads):
        own = [m for m in messages if m.startswith(f"writer {n} ")]
        expected: list[str] = []
        for i in range(lines):
            expected += [f"writer {n} line {i} " + "z" * 300, f"writer {n} tail {i}"]
        assert own == expected  # in order, whole, each message's lines together
    pairs = list(zip(messages[::2], messages[1::2], strict=True))
    assert all(a.split(" ")[:2] == b.split(" ")[:2] for a, b in pairs)


def test_follow_yields_old_then_new_events_and_ends_after_stop(store: LogStore) -> None:
    stream = instance_stream("i1")

    async def scenario() -> list[str]:
        stop = asyncio.Event()
        seen: list[str] = []
        store.append(APP + "-x", EVENTS_STREAM, "unrelated")

        async def consume() -> None:
            async for event in store.follow(APP, stream, poll=0.01, stop=stop):
                seen.append(event.message)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.05)  # the stream does not exist yet: follow waits for it
        path = store.raw_path(APP, stream)
        with path.open("a") as out:
            out.write("first\nsec")
        while seen != ["first"]:
            await asyncio.sleep(0.01)
        with path.open("a") as out:
            out.write("ond\nthird\n")
        stop.set()  # what was written before the stop is still yielded
        await asyncio.wait_for(task, 5)
        return seen

    assert asyncio.run(scenario()) == ["first", "second", "third"]


def test_follow_from_an_offset_without_a_stop_event(store: LogStore) -> None:
    store.append(GROUP, EVENTS_STREAM, "old")
    _, offset = store.read(GROUP, EVENTS_STREAM)
    store.append(GROUP, EVENTS_STREAM, "new")

    async def first() -> LogEvent:
        follower = store.follow(GROUP, EVENTS_STREAM, offset=offset, poll=0.01)
        try:
            return await anext(follower)
        finally:
            await follower.aclose()

    assert asyncio.run(first()).message == "new"
